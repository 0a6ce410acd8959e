"""Noise2Void 3D (Krull et al.) through careamics, trained on the single noisy volume itself.

About careamics and torchvision: careamics 0.3.5 imports
``torchvision.transforms.functional`` at import time (only its LVAE models
use it), while the torchvision wheel that matches this torch does not import
(and topaz does not need it), so the engine env has no torchvision.
:func:`_import_careamics` registers a minimal stand-in package (a version
string and an empty ``transforms.functional``) in ``sys.modules`` ONLY when
torchvision is absent, imports careamics, then removes the stand-in again so
that no other code sees a fake torchvision.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import shutil
import sys
import tempfile
import types
from typing import Optional

import numpy as np

from ..config_eval import N2vConfig
from ..deps import CAREAMICS
from ..errors import SCNetInputError
from ._common import Method, as_volume, pos_int

_D = N2vConfig()  # the declared defaults (scnet.config_eval)

log = logging.getLogger(__name__)


def _install_torchvision_standin() -> Optional[list]:
    """Register a minimal ``torchvision`` in ``sys.modules`` if none is installed.

    Returns the names registered (to remove them again), or None when a real
    torchvision exists (then nothing is done).
    """
    if "torchvision" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        return None
    # lightning / torchmetrics probe for torchvision when they are imported: import them
    # first so that they see the truth (absent) and never try to use the stand-in.
    import lightning  # noqa: F401
    import torchmetrics  # noqa: F401

    from importlib.machinery import ModuleSpec

    def mod(name, package):
        m = types.ModuleType(name, "scnet stand-in for careamics' import (torchvision not installed)")
        m.__spec__ = ModuleSpec(name, None, is_package=package)
        if package:
            m.__path__ = []
        m.__scnet_standin__ = True
        return m

    tv, tr, fn = mod("torchvision", True), mod("torchvision.transforms", True), \
        mod("torchvision.transforms.functional", False)
    tv.__version__ = "0.0.0+scnet-standin"
    tv.transforms, tr.functional = tr, fn
    names = ["torchvision", "torchvision.transforms", "torchvision.transforms.functional"]
    sys.modules.update(dict(zip(names, (tv, tr, fn))))
    return names


def _import_careamics():
    """Import careamics (CAREamist + create_advanced_n2v_config), with the torchvision
    stand-in only while importing and only if torchvision is absent."""
    names = _install_torchvision_standin()
    try:
        careamics = importlib.import_module("careamics")
        from careamics.config import create_advanced_n2v_config
    finally:
        if names:
            for n in names:
                if getattr(sys.modules.get(n), "__scnet_standin__", False):
                    del sys.modules[n]
    return careamics.CAREamist, create_advanced_n2v_config


@contextlib.contextmanager
def _quiet_lightning():
    names = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "careamics")
    old = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.WARNING)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            for n, lv in old.items():
                logging.getLogger(n).setLevel(lv)


def _n2v_config(create_cfg, p, batch_size, epochs, steps, trainer_params, depth, num_channels_init, seed, n_val):
    return create_cfg(
        experiment_name="scnet_n2v_baseline", data_type="array", axes="ZYX", patch_size=[p, p, p],
        batch_size=batch_size, num_epochs=epochs, num_steps=steps, augmentations=["x_flip", "y_flip"],
        n_val_patches=n_val, num_workers=0, trainer_params=trainer_params,
        model_params={"depth": depth, "num_channels_init": num_channels_init}, logger="none",
        seed=max(1, int(seed)))


def _n2v_predict(model, volume: np.ndarray, mult: int, tile_size: Optional[int]) -> np.ndarray:
    # whole-volume prediction: reflect-pad every axis to a multiple of 2**depth
    pad = [(0, (-n) % mult) for n in volume.shape]
    vp = np.pad(volume, pad, mode="reflect") if any(b for _, b in pad) else volume
    # tiles bound memory on big tomograms (a 32-channel full-resolution map of
    # 512x512x200 alone is ~7 GB); small volumes are predicted whole
    if tile_size is None and vp.size > 128 ** 3:
        tile_size = 96
    if tile_size:
        t = max(mult, (pos_int("tile_size", tile_size) // mult) * mult)
        tiles = tuple(min(t, n) for n in vp.shape)
        overlaps = tuple(max(2, min(32, (ti // 4) // 2 * 2)) if ti < n else 0 for ti, n in zip(tiles, vp.shape))
        pred, _ = model.predict(vp, tile_size=tiles, tile_overlap=overlaps)
    else:
        pred, _ = model.predict(vp, tile_size=None, tile_overlap=None)
    out = np.asarray(pred[0] if isinstance(pred, (list, tuple)) else pred, dtype=np.float32)
    out = out.reshape(out.shape[-3:])[: volume.shape[0], : volume.shape[1], : volume.shape[2]]
    return np.ascontiguousarray(out)


def _n2v(volume: np.ndarray, **opts) -> np.ndarray:
    return n2v_denoise(volume, **opts)[0]


def n2v_denoise(volume: np.ndarray, others=(), epochs: int = _D.epochs,
                steps_per_epoch: Optional[int] = _D.steps_per_epoch, patch_size: int = _D.patch_size,
                batch_size: int = _D.batch_size, depth: int = 2, num_channels_init: int = 32, seed: int = _D.seed,
                device: str = _D.device, work_dir: Optional[str] = None, tile_size: Optional[int] = None) -> list:
    """Train careamics Noise2Void 3D on ``volume`` and predict it and each of
    ``others`` (same model; e.g. the even/odd half reconstructions for FSC_e/o).
    Returns the list of float32 predictions, ``volume``'s first."""
    import torch
    from ..device import device_name

    volume = as_volume(volume)
    others = [as_volume(o) for o in others]
    steps = steps_per_epoch or None  # 0 = careamics' own, as unset
    N2vConfig(epochs=epochs, steps_per_epoch=steps, patch_size=patch_size, batch_size=batch_size, seed=seed,
              device=device).validate()
    depth, num_channels_init = pos_int("depth", depth), pos_int("num_channels_init", num_channels_init)
    mult = 2 ** depth
    # careamics: 3D patches are multiples of 8 (and >= 8); clip to the volume
    p = max(8, (min(patch_size, min(volume.shape)) // 8) * 8)
    if min(volume.shape) < 8:
        raise SCNetInputError(f"n2v needs a volume of at least 8 voxels per axis (got {volume.shape}).")
    # careamics samples patches on a grid and sets some aside for validation: keep at
    # least 4 grid cells (smaller patches on tiny volumes)
    while p > 8 and int(np.prod([n // p for n in volume.shape])) < 4:
        p -= 8
    n_val = max(1, min(batch_size // 2, int(np.prod([n // p for n in volume.shape])) // 8))
    device = device_name(device).split(",")[0]  # auto -> cpu or cuda:0
    if device != "cpu" and not torch.cuda.is_available():
        raise SCNetInputError(f"n2v: device {device!r} requested but CUDA is not available; use device 'cpu'.")
    from ..device import set_threads
    set_threads()
    CAREamist, create_cfg = _import_careamics()
    if device == "cpu":
        trainer_params = {"accelerator": "cpu", "devices": 1}
    else:  # "cuda" or "cuda:N"
        trainer_params = {"accelerator": "gpu", "devices": [int(device.split(":")[1])] if ":" in device else 1}
    trainer_params["enable_model_summary"] = False
    with _quiet_lightning():  # pydantic warns about BatchNorm with small batches
        cfg = _n2v_config(create_cfg, p, batch_size, epochs, steps, trainer_params, depth, num_channels_init,
                          seed, n_val)
    tmp = None
    if work_dir is None:
        tmp = work_dir = tempfile.mkdtemp(prefix="scnet-n2v-")
    try:
        with _quiet_lightning():
            model = CAREamist(cfg, work_dir=work_dir, enable_progress_bar=False)
            model.train(train_data=volume)
            results = [_n2v_predict(model, v, mult, tile_size) for v in [volume] + list(others)]
        return results
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _why_not() -> Optional[str]:
    if importlib.util.find_spec("careamics") is None:
        return f"careamics is not installed (pip install --no-deps {CAREAMICS} in the engine env, see scnet/deps.py)"
    return None


METHOD = Method("n2v", _n2v, N2vConfig, _why_not, extra=("depth", "num_channels_init", "work_dir", "tile_size"))
