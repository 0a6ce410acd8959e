"""Tilt series: stacks (.mrc/.mrcs/.st) with their tilt angles (.tlt/.rawtlt).

A tilt stack is ``(n_tilts, Y, X)`` float32 with the tilt axis along Y.
Angle files hold one angle in degrees per line (IMOD ``.tlt`` / ``.rawtlt``);
blank lines and ``#`` comments are ignored.

:func:`split_even_odd` splits a series by **acquisition index** (position in
the stack unless an acquisition order is given) into two half-series whose
reconstructions give the even/odd volumes of the paper's FSC_e/o (eq. 10).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from .angles import check_angles
from .errors import SCNetInputError
from .io import read_volume, write_volume
from .outputs import atomic
from .angles import tilt_angle_errors

STACK_EXTENSIONS = (".mrc", ".mrcs", ".st", ".ali", ".preali", ".map")


@dataclass
class TiltSeries:
    data: np.ndarray          # (n, Y, X) float32
    angles: np.ndarray        # (n,) degrees
    voxel_size: float = 1.0   # Angstrom / pixel
    origin: Tuple[float, float, float] = (0.0, 0.0, 0.0)


def read_angles(path: str) -> np.ndarray:
    """Read a .tlt/.rawtlt file (one angle in degrees per line)."""
    from .files import read_text
    vals = []
    for i, line in enumerate(read_text(path, "Tilt-angle file").splitlines(), 1):  # regular UTF-8 text
        s = line.split("#", 1)[0].strip()
        if not s:
            continue
        try:
            vals.append(float(s.split()[0]))
        except ValueError:
            raise SCNetInputError(f"{path}, line {i}: {line.strip()[:80]!r} is not a tilt angle in degrees.") from None
    if not vals:
        raise SCNetInputError(f"{path} holds no tilt angles (expected one angle in degrees per line).")
    return np.asarray(vals, dtype=np.float64)


def write_angles(path: str, angles: Sequence[float]) -> None:
    """Write one angle per line (IMOD .tlt format, 2 decimals)."""
    a = np.asarray(angles, dtype=np.float64).ravel()
    with atomic(path) as tmp:
        with open(tmp, "w") as fh:
            for v in a:
                fh.write(f"{v:.2f}\n")


def check_tilt_series(data: np.ndarray, angles, stack_name: str = "tilt stack",
                      angles_name: str = "angles") -> np.ndarray:
    """Validate a stack + angles pair (3D, non-empty, counts match, angles sane)."""
    data = np.asarray(data)
    if data.ndim != 3:
        raise SCNetInputError(f"{stack_name}: expected a 3D tilt stack (n_tilts, Y, X), got shape {data.shape}.")
    if data.size == 0:
        raise SCNetInputError(f"{stack_name} is empty (shape {data.shape}).")
    a = np.asarray(angles, dtype=np.float64).ravel()
    if a.size != data.shape[0]:
        raise SCNetInputError(
            f"{angles_name} has {a.size} tilt angles but {stack_name} has {data.shape[0]} images; "
            "they must match (one angle per image, in stack order).")
    errors = tilt_angle_errors(a, name=angles_name)
    if errors:
        raise SCNetInputError(errors[0])
    return check_angles(a, data.shape[0], name=angles_name)


def read_tilt_series(stack_path: str, angles_path: str) -> TiltSeries:
    """Read a stack and its angle file; counts must match (the error names both files)."""
    angles = read_angles(angles_path)
    data, info = read_volume(stack_path, check=False, stack=True)
    data = np.asarray(data, dtype=np.float32)
    angles = check_tilt_series(data, angles, stack_name=stack_path, angles_name=angles_path)
    if not np.all(np.isfinite(data)):
        raise SCNetInputError(f"{stack_path} contains NaN/Inf pixels; fix the stack first.")
    return TiltSeries(data=data, angles=angles, voxel_size=info.voxel_size, origin=info.origin)


def write_tilt_series(stack_path: str, angles_path: str, data: np.ndarray, angles,
                      voxel_size: float = 1.0, origin=None) -> None:
    """Write a stack (.mrcs/.st/.mrc) and its .tlt."""
    a = check_tilt_series(data, angles, stack_name=stack_path, angles_name=angles_path)
    write_volume(stack_path, np.asarray(data, dtype=np.float32), voxel_size, origin)
    write_angles(angles_path, a)


def split_even_odd(data: np.ndarray, angles, order: Optional[Sequence[int]] = None):
    """Split by acquisition index into ``((even_data, even_angles), (odd_data, odd_angles))``.

    ``order[i]`` is the acquisition index of stack image ``i`` (default: its
    position).  Images with even acquisition index go to the first half.
    Stack order (sorted by angle) is kept within each half.
    """
    data = np.asarray(data)
    a = np.asarray(angles, dtype=np.float64).ravel()
    if data.ndim != 3 or data.shape[0] != a.size:
        raise SCNetInputError(f"split_even_odd: stack shape {data.shape} does not match {a.size} angles.")
    if a.size < 4:
        raise SCNetInputError(f"split_even_odd: need at least 4 tilts to split into even/odd halves (got {a.size}).")
    idx = np.arange(a.size) if order is None else np.asarray(order, dtype=int).ravel()
    if idx.size != a.size:
        raise SCNetInputError(f"split_even_odd: acquisition order has {idx.size} entries for {a.size} tilts.")
    even = np.flatnonzero(idx % 2 == 0)
    odd = np.flatnonzero(idx % 2 == 1)
    return (data[even], a[even]), (data[odd], a[odd])
