"""The comparison methods of the paper's Tables 1-3 behind one interface.

``run_baseline(name, volume, **opts) -> volume`` (same shape, float32, same
intensity scale as the input), for ``name`` in:

* ``"bm4d"``    BM4D (Maggioni et al.), ``bm4d`` package 4.2.5.  OPTIONAL: a
  closed binary under a non-commercial licence, never a default dependency;
  install it with ``make bm4d`` (``pip install bm4d==4.2.5`` in the engine env).
  ``sigma`` = noise standard deviation in the volume's intensity units; when
  not given it is estimated (:func:`estimate_noise_sigma`, MAD of the finest
  3D Haar detail band).  Options: ``sigma``, ``stages`` ("all" | "hard").
* ``"n2v"``     Noise2Void 3D (Krull et al.) through careamics 0.3.5, trained on
  the single noisy volume itself (like SC-Net), CPU by default.  Options:
  ``epochs`` (10), ``steps_per_epoch`` (None = careamics' own: the whole volume
  once), ``patch_size`` (32, made a multiple of 8 and clipped to the volume),
  ``batch_size`` (4), ``depth`` (2), ``num_channels_init`` (32), ``seed`` (1),
  ``device`` ("cpu"), ``work_dir`` (None = a temporary folder that is removed:
  lightning logs and checkpoints never land in the working directory),
  ``tile_size`` (prediction tiles; None = whole volume up to 128^3, else 96).
* ``"lowpass"`` isotropic 3D low-pass (:func:`scnet.filters.lowpass_3d`);
  option ``cutoff`` (fraction of Nyquist, default 0.3).
* ``"gaussian"`` isotropic 3D Gaussian (:func:`scnet.filters.gaussian_3d`);
  option ``sigma`` (filter std in voxels, default 1.5).
* ``"topaz3d"`` pretrained Topaz-Denoise 3D Noise2Noise network
  (:func:`scnet.filters.topaz_denoise_3d`); options ``model`` ("unet-3d-10a"),
  ``device`` ("cpu").

Note that ``sigma`` means the noise level for ``bm4d`` but the filter width
for ``gaussian``.

:func:`available_baselines` tells which of them can run here and, for those
that cannot, why.

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
import os
import shutil
import sys
import tempfile
import types
from typing import Callable, Dict, Optional

import numpy as np

from .errors import SCNetInputError

log = logging.getLogger(__name__)

BASELINES = ("bm4d", "n2v", "lowpass", "gaussian", "topaz3d")


# --------------------------------------------------------------------------- helpers
def _as_volume(volume) -> np.ndarray:
    v = np.asarray(volume, dtype=np.float32)
    if v.ndim != 3 or v.size == 0:
        raise SCNetInputError(f"Baselines need a 3D volume (Z, Y, X); got shape {v.shape}.")
    if not np.all(np.isfinite(v)):
        raise SCNetInputError("The input volume contains NaN or Inf voxels; fix it before denoising.")
    return v


def _nonneg(name: str, value, allow_none=True) -> Optional[float]:
    if value is None and allow_none:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SCNetInputError(f"{name} must be a number (got {value!r}).") from None
    if not np.isfinite(v) or v < 0:
        raise SCNetInputError(f"{name} must be >= 0 (got {value}).")
    return v


def _pos_int(name: str, value) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise SCNetInputError(f"{name} must be a positive integer (got {value!r}).") from None
    if v < 1:
        raise SCNetInputError(f"{name} must be a positive integer (got {value}).")
    return v


def _reject_unknown(name: str, opts: dict, allowed) -> None:
    extra = sorted(set(opts) - set(allowed))
    if extra:
        raise SCNetInputError(
            f"Baseline {name!r} does not take option(s) {', '.join(extra)}; it takes: {', '.join(sorted(allowed))}.")


def estimate_noise_sigma(volume) -> float:
    """Noise standard deviation from the finest 3D Haar detail band (HHH):
    ``median(|d|) / 0.6745`` (Donoho's MAD estimator).

    Exact for white noise.  Tomographic reconstruction noise is coloured (the
    ramp filter, the missing wedge), and then this estimates the noise level of
    the highest frequencies, usually somewhat below the total noise std; give
    ``sigma`` explicitly when a better estimate is at hand (e.g. half the std of
    the difference of even/odd reconstructions).
    """
    v = np.asarray(volume, dtype=np.float64)
    v = v[: v.shape[0] // 2 * 2, : v.shape[1] // 2 * 2, : v.shape[2] // 2 * 2]
    if min(v.shape) < 2:
        raise SCNetInputError(f"Volume too small to estimate the noise level (shape {volume.shape}).")
    d = np.zeros([s // 2 for s in v.shape])
    for a in (0, 1):
        for b in (0, 1):
            for c in (0, 1):
                d += (-1) ** (a + b + c) * v[a::2, b::2, c::2]
    d /= np.sqrt(8.0)
    return float(np.median(np.abs(d)) / 0.6744897501960817)


def estimate_noise_sigma_even_odd(even, odd) -> float:
    """Noise std of the FULL reconstruction from its even/odd half reconstructions:
    the signal cancels in ``even - odd`` and, for ``full ~ (even + odd) / 2`` with
    independent half noises, ``std(full noise) = std(even - odd) / 2``.  Coloured
    noise is fine here (no whiteness assumed); each half's own noise std is
    ``std(even - odd) / sqrt(2)``."""
    e = np.asarray(even, dtype=np.float64)
    o = np.asarray(odd, dtype=np.float64)
    if e.shape != o.shape:
        raise SCNetInputError(f"even {e.shape} and odd {o.shape} reconstructions differ in shape.")
    return float(np.std(e - o) / 2.0)


# --------------------------------------------------------------------------- BM4D
def _bm4d(volume: np.ndarray, sigma=None, stages: str = "all") -> np.ndarray:
    import bm4d  # optional

    s = _nonneg("sigma", sigma)
    if s is None:
        s = estimate_noise_sigma(volume)
        log.info("bm4d: estimated noise sigma %.4g", s)
    if s == 0:
        return volume.copy()
    stage = {"all": bm4d.BM4DStages.ALL_STAGES, "hard": bm4d.BM4DStages.HARD_THRESHOLDING}.get(stages)
    if stage is None:
        raise SCNetInputError(f"bm4d stages must be 'all' or 'hard' (got {stages!r}).")
    # bm4d works in float64 and expects values of order 1: scale, run, scale back
    mu, sd = float(volume.mean()), float(volume.std()) or 1.0
    z = (volume.astype(np.float64) - mu) / sd
    out = bm4d.bm4d(z, s / sd, stage_arg=stage)
    return (np.asarray(out).reshape(volume.shape) * sd + mu).astype(np.float32)


# --------------------------------------------------------------------------- N2V (careamics)
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
        t = max(mult, (_pos_int("tile_size", tile_size) // mult) * mult)
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


def n2v_denoise(volume: np.ndarray, others=(), epochs: int = 10, steps_per_epoch: Optional[int] = None,
                patch_size: int = 32, batch_size: int = 4, depth: int = 2, num_channels_init: int = 32,
                seed: int = 1, device: str = "cpu", work_dir: Optional[str] = None,
                tile_size: Optional[int] = None) -> list:
    """Train careamics Noise2Void 3D on ``volume`` and predict it and each of
    ``others`` (same model; e.g. the even/odd half reconstructions for FSC_e/o).
    Returns the list of float32 predictions, ``volume``'s first."""
    import torch

    volume = _as_volume(volume)
    others = [_as_volume(o) for o in others]
    epochs, batch_size, depth = _pos_int("epochs", epochs), _pos_int("batch_size", batch_size), _pos_int("depth", depth)
    num_channels_init = _pos_int("num_channels_init", num_channels_init)
    steps = None if steps_per_epoch in (None, 0) else _pos_int("steps_per_epoch", steps_per_epoch)
    mult = 2 ** depth
    # careamics: 3D patches are multiples of 8 (and >= 8); clip to the volume
    p = max(8, (min(_pos_int("patch_size", patch_size), min(volume.shape)) // 8) * 8)
    if min(volume.shape) < 8:
        raise SCNetInputError(f"n2v needs a volume of at least 8 voxels per axis (got {volume.shape}).")
    # careamics samples patches on a grid and sets some aside for validation: keep at
    # least 4 grid cells (smaller patches on tiny volumes)
    while p > 8 and int(np.prod([n // p for n in volume.shape])) < 4:
        p -= 8
    n_val = max(1, min(batch_size // 2, int(np.prod([n // p for n in volume.shape])) // 8))
    if device != "cpu" and not torch.cuda.is_available():
        raise SCNetInputError(f"n2v: device {device!r} requested but CUDA is not available; use --device cpu.")
    from .device import set_threads
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


# --------------------------------------------------------------------------- filters
def _lowpass(volume: np.ndarray, cutoff: float = 0.3) -> np.ndarray:
    from .filters import lowpass_3d
    return lowpass_3d(volume, cutoff)


def _gaussian(volume: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    from .filters import gaussian_3d
    return gaussian_3d(volume, _nonneg("sigma", sigma, allow_none=False))


def _topaz3d(volume: np.ndarray, model: str = "unet-3d-10a", device: str = "cpu") -> np.ndarray:
    """Topaz's 3D U-Net pools 5 times: odd or small sizes fail ("Output size is too
    small") or misalign, so each axis is reflect-padded to a multiple of 32 first."""
    from .filters import topaz_denoise_3d
    pad = [(0, (-n) % 32) for n in volume.shape]
    vp = np.pad(volume, pad, mode="symmetric") if any(b for _, b in pad) else volume
    out = topaz_denoise_3d(vp, model=model, device=device)
    return out[: volume.shape[0], : volume.shape[1], : volume.shape[2]]


_RUNNERS: Dict[str, Callable] = {"bm4d": _bm4d, "n2v": _n2v, "lowpass": _lowpass, "gaussian": _gaussian,
                                 "topaz3d": _topaz3d}
_OPTIONS = {
    "bm4d": ("sigma", "stages"),
    "n2v": ("epochs", "steps_per_epoch", "patch_size", "batch_size", "depth", "num_channels_init", "seed",
            "device", "work_dir", "tile_size"),
    "lowpass": ("cutoff",),
    "gaussian": ("sigma",),
    "topaz3d": ("model", "device"),
}


# --------------------------------------------------------------------------- public API
def _why_not(name: str) -> Optional[str]:
    try:
        if name == "bm4d":
            if importlib.util.find_spec("bm4d") is None:
                return ("the optional 'bm4d' package is not installed (closed binary, non-commercial licence); "
                        "install it with `make bm4d` or `pip install bm4d==4.2.5` in the engine env")
        elif name == "n2v":
            if importlib.util.find_spec("careamics") is None:
                return "careamics is not installed (pip install careamics==0.3.5 in the engine env)"
        elif name in ("lowpass", "gaussian", "topaz3d"):
            filters = importlib.import_module("scnet.filters")
            fn = {"lowpass": "lowpass_3d", "gaussian": "gaussian_3d", "topaz3d": "topaz_denoise_3d"}[name]
            if not hasattr(filters, fn):
                return f"scnet.filters.{fn} is missing"
            if name == "topaz3d" and importlib.util.find_spec("topaz") is None:
                return "topaz-em is not installed (pip install topaz-em==0.3.20 in the engine env)"
    except Exception as exc:  # a broken optional install must not break the listing
        return f"{type(exc).__name__}: {exc}"
    return None


def available_baselines() -> Dict[str, Optional[str]]:
    """``{name: None}`` when the baseline can run here, else ``{name: reason}``."""
    return {name: _why_not(name) for name in BASELINES}


def run_baseline(name: str, volume, **opts) -> np.ndarray:
    """Denoise ``volume (Z, Y, X)`` with baseline ``name``; see the module docstring for options.

    Returns float32 of the input's shape.  Unknown names or options, and
    negative sigma, raise :class:`SCNetInputError`; an unavailable optional
    baseline raises it with the reason (and how to install it).
    """
    if name not in _RUNNERS:
        raise SCNetInputError(f"Unknown baseline {name!r}; valid baselines: {', '.join(BASELINES)}.")
    _reject_unknown(name, opts, _OPTIONS[name])
    if "sigma" in opts:
        _nonneg("sigma", opts["sigma"])
    why = _why_not(name)
    if why:
        raise SCNetInputError(f"Baseline {name!r} cannot run here: {why}.")
    v = _as_volume(volume)
    out = _RUNNERS[name](v, **{k: val for k, val in opts.items() if val is not None or k == "sigma"})
    out = np.asarray(out, dtype=np.float32)
    if out.shape != v.shape:
        raise RuntimeError(f"Internal error: baseline {name} returned shape {out.shape} for input {v.shape}.")
    return out
