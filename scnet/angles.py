"""Tilt angles: validation and the angular weights of weighted back-projection.

Angles are in degrees, one per image of a tilt stack ``(n_tilts, Y, X)``
whose tilt axis is Y (see :mod:`scnet.recon` for the sign convention).
Dependency: numpy only.  Reading and writing ``.tlt`` files lives in
:mod:`scnet.tiltseries`.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .errors import SCNetInputError


def check_angles(angles, n_images: Optional[int] = None, name: str = "angles") -> np.ndarray:
    """Validate tilt angles (deg): finite, |theta| <= 90, strictly monotonic, matching count."""
    a = np.asarray(angles, dtype=np.float64).ravel()
    if a.size == 0:
        raise SCNetInputError(f"{name}: no tilt angles given.")
    if not np.all(np.isfinite(a)):
        raise SCNetInputError(f"{name}: tilt angles contain NaN/Inf.")
    if np.any(np.abs(a) > 90):
        raise SCNetInputError(
            f"{name}: tilt angles must lie in [-90, 90] degrees (got min {a.min():g}, max {a.max():g}). "
            "Are they in degrees and is it the right file?")
    if a.size > 1:
        d = np.diff(a)
        if not (np.all(d > 0) or np.all(d < 0)):
            raise SCNetInputError(
                f"{name}: tilt angles must be strictly increasing or decreasing (stack order by angle); "
                f"got {a.tolist()[:8]}{'...' if a.size > 8 else ''}. Sort the stack and angles by angle.")
    if n_images is not None and a.size != n_images:
        raise SCNetInputError(
            f"{name}: {a.size} tilt angles for a stack of {n_images} images; the counts must match.")
    return a


def angular_weights(angles_deg: np.ndarray) -> np.ndarray:
    """Angular spacing (radians) belonging to each tilt: half the gap to each neighbour.

    End tilts get their single neighbour's full gap on the open side.  The
    weights sum to ~ the covered range + one step, so a +-60 deg series is
    scaled like the object, not like a 180 deg one.
    """
    a = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    n = a.size
    if n == 1:
        return np.array([np.pi])
    order = np.argsort(a)
    s = a[order]
    gaps = np.diff(s)
    w = np.empty(n)
    w[1:-1] = 0.5 * (gaps[:-1] + gaps[1:])
    w[0] = gaps[0]
    w[-1] = gaps[-1]
    out = np.empty(n)
    out[order] = w
    return out
