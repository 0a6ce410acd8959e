"""One tomogram, two noise-independent parts: its even and its odd rows along the tilt axis (``split`` mode).

Why the tilt axis.  A single-axis reconstruction is computed slice by slice: the slice at row ``y``
(the tilt axis is Y, :mod:`scnet.recon`) comes from row ``y`` of every tilt image and from nothing
else.  Noise of the detector pixels is independent between rows, so the reconstructed noise of two
different Y slices is independent, although within a slice it is strongly correlated (along the rays,
i.e. along Z near 0 degrees, and by the ramp filter along X) -- which is why a voxel blind spot fails and
why splitting along X or Z would not give independent parts.  The even rows and the odd rows of ONE
tomogram are thus a Noise2Noise pair at half the sampling along Y (Neighbor2Neighbor's sub-sampling,
along the one axis where it is honest), trained exactly like the even/odd halves
(:mod:`scnet.train`, ``halves`` steps).  Prediction: the network is applied to the even rows and to
the odd rows (:func:`row_views`), each output written into its own rows (:mod:`scnet.predict`).

Where it does not hold: rows mixed before the reconstruction (tilt-axis rotation or alignment
interpolated the images, a tilt axis not along Y, binning of correlated pixels).  :func:`part_correlation`
measures it on a noise estimate; ``tests/test_split.py`` bounds it for white and ray-correlated noise.
:func:`row_check` looks at the tomogram itself (is its noise spectrum flat along the rows?); ``auto``
uses the split mode only where it passes, and an explicit ``--mode split`` warns where it does not.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .errors import SCNetInputError

AXIS = 1  # Y, the tilt axis


def split_rows(volume: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(even rows, odd rows) of ``volume`` (Z, Y, X) along Y, both (Z, Y // 2, X) float32 copies."""
    v = np.asarray(volume)
    if v.ndim != 3 or v.shape[AXIS] < 2:
        raise SCNetInputError(f"Split mode: the tomogram {v.shape} needs at least 2 rows along Y (the tilt axis).")
    n = v.shape[AXIS] // 2
    return (np.ascontiguousarray(v[:, 0:2 * n:2], dtype=np.float32),
            np.ascontiguousarray(v[:, 1:2 * n:2], dtype=np.float32))


def row_views(volume) -> Tuple[np.ndarray, np.ndarray]:
    """Views (no copy; works on memory maps) of all even rows and all odd rows of ``volume`` along Y."""
    return volume[:, 0::2], volume[:, 1::2]


def part_correlation(noise: np.ndarray, axis: int = AXIS) -> float:
    """Pearson correlation of the even and odd parts of a noise volume split along ``axis``: ~0 where the
    two parts are noise-independent (Y for a single-axis reconstruction), large where they are not."""
    v = np.moveaxis(np.asarray(noise, dtype=np.float64), axis, 0)
    n = v.shape[0] // 2
    a, b = v[0:2 * n:2].ravel(), v[1:2 * n:2].ravel()
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if den == 0:
        raise SCNetInputError("Part correlation: the noise volume is constant.")
    return float((a * b).sum() / den)


ROW_CHECK_MIN = 0.5  # flatness of the rows' spectrum below which the rows count as mixed


def row_check(volume, size: int = 128) -> dict:
    """The split mode's assumption checked on the tomogram itself: are its rows' noises independent?

    Independent rows have a noise spectrum that is flat along ky; rows mixed before the reconstruction
    (an interpolation, a smoothing) have one that falls towards the Nyquist row frequency.  Measured where
    noise dominates (kx or kz above 0.3 cycles/voxel, a central crop of at most ``size`` per axis):
    ``flatness`` = mean power at ky >= 0.35 over the mean power at 0.1 <= ky <= 0.25.  The §5.2
    simulation gives 0.97-1.00 (both seeds, σ 10-20), the real HIV-1 tomogram of ``make real-data`` 0.89;
    the same simulation with every two neighbouring rows averaged 0.10.  ``ok`` = flatness >= ROW_CHECK_MIN.
    """
    crop = tuple(slice(max(0, (n - size) // 2), max(0, (n - size) // 2) + min(n, size)) for n in volume.shape)
    c = np.asarray(volume[crop], dtype=np.float64)  # the crop only: a memory map is not read whole
    c = c - c.mean()
    if c.shape[1] < 8:
        return {"flatness": float("nan"), "ok": False}
    p = np.abs(np.fft.fftn(c)) ** 2
    kz, ky, kx = (np.abs(np.fft.fftfreq(n)) for n in c.shape)
    noisy = (kx[None, None, :] > 0.3) | (kz[:, None, None] > 0.3)
    hi = np.broadcast_to(noisy & (ky[None, :, None] >= 0.35), p.shape)
    mid = np.broadcast_to(noisy & (ky[None, :, None] >= 0.1) & (ky[None, :, None] <= 0.25), p.shape)
    flatness = float(p[hi].mean() / max(p[mid].mean(), 1e-30))
    return {"flatness": flatness, "ok": flatness >= ROW_CHECK_MIN}


def resolve_mode(cfg, noisy, has_halves: bool):
    """The training mode for ``cfg`` on this tomogram: ``cfg.resolved_mode`` with the rows checked when
    ``auto`` has no halves to use (so ``auto`` picks ``split`` only where its assumption holds).
    Returns (mode, the :func:`row_check` result or None)."""
    check = row_check(noisy) if cfg.mode in ("auto", "split") and not has_halves else None
    return cfg.resolved_mode(has_halves, bool(check and check["ok"])), check
