"""BM4D (Maggioni et al.) through the OPTIONAL ``bm4d`` package (closed binary, non-commercial licence).

Options: ``sigma`` (noise std in the volume's intensity units; estimated by
:func:`scnet.baselines.noise.estimate_noise_sigma` when not given), ``stages``
("all" | "hard").  Install with ``make bm4d``.
"""
from __future__ import annotations

import importlib.util
import logging
from typing import Optional

import numpy as np

from ..config_eval import Bm4dConfig
from ..deps import BM4D as BM4D_REQUIREMENT
from ._common import Method
from .noise import estimate_noise_sigma

log = logging.getLogger(__name__)


def _bm4d(volume: np.ndarray, sigma, stages: str) -> np.ndarray:
    import bm4d  # optional

    s = sigma
    if s is None:
        s = estimate_noise_sigma(volume)
        log.info("bm4d: estimated noise sigma %.4g", s)
    if s == 0:
        return volume.copy()
    stage = {"all": bm4d.BM4DStages.ALL_STAGES, "hard": bm4d.BM4DStages.HARD_THRESHOLDING}[stages]
    # bm4d works in float64 and expects values of order 1: scale, run, scale back
    mu, sd = float(volume.mean()), float(volume.std()) or 1.0
    z = (volume.astype(np.float64) - mu) / sd
    out = bm4d.bm4d(z, s / sd, stage_arg=stage)
    return (np.asarray(out).reshape(volume.shape) * sd + mu).astype(np.float32)


def _why_not() -> Optional[str]:
    if importlib.util.find_spec("bm4d") is None:
        return ("the optional 'bm4d' package is not installed (closed binary, non-commercial licence); "
                f"install it with `make bm4d` or `pip install {BM4D_REQUIREMENT}` in the engine env")
    return None


METHOD = Method("bm4d", _bm4d, Bm4dConfig, _why_not)
