"""The whole SC-Net in one call: train on one tomogram, then predict it (what ``scnet denoise`` does).

Kept apart from ``train`` and ``predict`` so that neither imports the other.
"""
from __future__ import annotations

import shutil
import tempfile
from typing import Optional, Sequence

import numpy as np

from .config import PredictConfig

from .predict import predict_array, predict_halves_array
from .config import TrainConfig
from .train import train_model


def denoise_array(noisy: np.ndarray, prior: np.ndarray, train_cfg: TrainConfig, predict_cfg=None,
                  work_dir: Optional[str] = None, progress: bool = False,
                  halves: Optional[Sequence[np.ndarray]] = None, on_validation=None,
                  init_model: Optional[str] = None) -> np.ndarray:
    """Train on (noisy, prior[, even/odd halves]) then predict the noisy volume.

    A model trained in the halves mode predicts the mean of its predictions of the two halves.

    ``work_dir`` keeps model.pt / loss_log.csv; a temporary folder is used (and removed) otherwise.
    ``init_model``: start from this trained model's weights (fine-tuning, see ``train_model``).
    """
    predict_cfg = predict_cfg or PredictConfig(device=train_cfg.device)
    tmp = None
    if work_dir is None:
        tmp = work_dir = tempfile.mkdtemp(prefix="scnet_")
    try:
        model_path = train_model(noisy, prior, train_cfg, work_dir, progress=progress, halves=halves,
                                 on_validation=on_validation, init_model=init_model)
        if halves is not None and train_cfg.resolved_mode(True) == "halves":
            return predict_halves_array(model_path, halves, predict_cfg)
        return predict_array(model_path, noisy, predict_cfg)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
