"""Tilt angles: validation and the angular weights of weighted back-projection.

Angles are in degrees, one per image of a tilt stack ``(n_tilts, Y, X)``
whose tilt axis is Y (see :mod:`scnet.recon` for the sign convention).
Dependency: numpy only (:func:`tilt_angle_errors`, the rule the plugin's forms share, uses none).  Reading and writing ``.tlt`` files lives in
:mod:`scnet.tiltseries`.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence

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


def tilt_angle_errors(angles: Sequence[float], name: str = "tilt angles") -> List[str]:
    """Errors for tilt angles that cannot be degrees of a real tilt series.

    * all angles equal (e.g. all 0: the angles were never set);
    * all |angle| <= pi/2 while they span more than 0.2: a tilt range of a few degrees
      is not a tomogram, radians are far more likely (convert with degrees = radians * 180 / pi).
    """
    a = [float(x) for x in angles]
    if len(a) < 2:
        return []
    if any(not math.isfinite(x) for x in a):
        return [f"{name}: tilt angles contain NaN/Inf."]
    lo, hi = min(a), max(a)
    if hi == lo:
        return [f"{name}: all {len(a)} tilt angles are equal ({lo:g} deg); the tilt angles were not set. "
                f"Import the tilt series with its .tlt/.rawtlt angles."]
    if max(abs(lo), abs(hi)) <= math.pi / 2 + 1e-6 and hi - lo > 0.2:
        return [f"{name}: the tilt angles span only {lo:g} .. {hi:g}: they look like radians. Tilt angles must be "
                f"in degrees (degrees = radians x 180 / pi, e.g. {lo * 180 / math.pi:.1f} .. {hi * 180 / math.pi:.1f})."]
    return []
