"""The whole SC-Net in one call: train on one tomogram, then predict it -- the one composition that
``scnet denoise``, the plugin's denoise step (through that command) and the benchmarks run.

Kept apart from ``train`` and ``predict`` so that neither imports the other.  Which volume is predicted
follows the trained model's mode, by the rule of :func:`scnet.predict.predict_volumes` (a halves-mode
model: the mean of its predictions of the two halves; split: the even and odd rows apart).
"""
from __future__ import annotations

import shutil
import tempfile
from typing import Optional, Sequence

import numpy as np

from .config import PredictConfig, TrainConfig
from .io import VolumeWriter
from .predict import predict_volumes
from .train import train_model


def denoise(noisy: np.ndarray, prior: np.ndarray, train_cfg: TrainConfig, predict_cfg: Optional[PredictConfig] = None,
            work_dir: Optional[str] = None, progress: bool = False, halves: Optional[Sequence[np.ndarray]] = None,
            on_validation=None, init_model: Optional[str] = None, resume: bool = False, output: Optional[str] = None,
            voxel_size: Optional[float] = None, origin=None, prior_source: Optional[str] = None,
            checked: bool = False, resolved=None):
    """Train on (noisy, prior[, even/odd halves]) then predict the noisy volume.

    Returns the denoised float32 array; with ``output`` (an MRC path) writes it there instead (bounded
    memory, ``voxel_size`` and ``origin`` in its header, nothing left on an error) and returns the path.
    ``work_dir`` keeps model.pt / loss_log.csv; a temporary folder is used (and removed) otherwise.
    ``init_model``, ``resume``, ``voxel_size``, ``prior_source``, ``checked``, ``resolved``: as
    :func:`scnet.train.train_model` (``checked``: the caller read the arrays with ``read_volume``, which
    checked every voxel, so they are not scanned again).
    """
    predict_cfg = (predict_cfg or PredictConfig(device=train_cfg.device, progress=progress)).validate()
    tmp = None
    if work_dir is None:
        tmp = work_dir = tempfile.mkdtemp(prefix="scnet_")
    try:
        model_path = train_model(noisy, prior, train_cfg, work_dir, resume=resume, progress=progress, halves=halves,
                                 on_validation=on_validation, voxel_size=voxel_size, init_model=init_model,
                                 prior_source=prior_source, checked=checked, resolved=resolved)
        if output is None:
            out = np.empty(np.shape(noisy), np.float32)
            predict_volumes(model_path, noisy, out, predict_cfg, halves)
            return out
        with VolumeWriter(output, np.shape(noisy), 1.0 if voxel_size is None else voxel_size, origin) as w:
            predict_volumes(model_path, noisy, w.data, predict_cfg, halves, out_name=output)
        return output
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
