"""Filter baselines: isotropic 3D low-pass and Gaussian, and the pretrained Topaz-Denoise 3D network.

They wrap :mod:`scnet.filters` (``lowpass_3d``, ``gaussian_3d``, ``topaz_denoise_3d``).
"""
from __future__ import annotations

import importlib.util
from typing import Optional

import numpy as np

from ..config_eval import GaussianConfig, LowpassConfig, Topaz3dConfig
from ._common import Method, _always


def _lowpass(volume: np.ndarray, cutoff: float) -> np.ndarray:
    from ..filters import lowpass_3d
    return lowpass_3d(volume, cutoff)


def _gaussian(volume: np.ndarray, sigma: float) -> np.ndarray:
    from ..filters import gaussian_3d
    return gaussian_3d(volume, sigma)


def _topaz3d(volume: np.ndarray, topaz_model: str, device: str) -> np.ndarray:
    """Topaz's 3D U-Net pools 5 times: odd or small sizes fail ("Output size is too
    small") or misalign, so each axis is reflect-padded to a multiple of 32 first."""
    from ..filters import topaz_denoise_3d
    pad = [(0, (-n) % 32) for n in volume.shape]
    vp = np.pad(volume, pad, mode="symmetric") if any(b for _, b in pad) else volume
    out = topaz_denoise_3d(vp, model=topaz_model, device=device)
    return out[: volume.shape[0], : volume.shape[1], : volume.shape[2]]


def _topaz_why_not() -> Optional[str]:
    if importlib.util.find_spec("topaz") is None:
        return "topaz-em is not installed (see scnet/deps.py for the pinned version)"
    return None


METHODS = (Method("lowpass", _lowpass, LowpassConfig, _always),
           Method("gaussian", _gaussian, GaussianConfig, _always),
           Method("topaz3d", _topaz3d, Topaz3dConfig, _topaz_why_not))
