"""The missing wedge of a single-axis tilt series, and what a restoration recovers of it.

A tilt series over [theta_min, theta_max] measures, by the central-slice theorem, the Fourier
planes perpendicular to the beam directions: for a volume ``(Z, Y, X)`` tilted about Y (the
convention and sign of :mod:`scnet.recon`), a Fourier sample ``(kz, ky, kx)`` lies on the plane of
tilt ``theta`` when ``kz cos(theta) = kx sin(theta)``.  Every sample whose angle ``atan(kz / kx)``
lies outside the tilt range is never measured: the missing wedge, a wedge about
the kz axis (all of ky).  Objects elongate along Z and structures parallel to the beam fade.

Measures (the wedge rows of ``benchmarks/quality.py``):

* :func:`missing_wedge_mask` -- the unmeasured samples of a ``numpy.fft.fftn`` grid;
* :func:`wedge_power_ratio` -- power of a volume inside the wedge over that of a reference
  without a wedge (the phantom): 0 = nothing restored, 1 = as much power as the truth;
* :func:`elongation` -- Z/X ratio of the full widths at half maximum of the cross-correlation
  peak of a volume with the reference, over the same ratio of the reference's autocorrelation:
  1 = isotropic, > 1 = stretched along Z (the wedge's elongation);
* :func:`isotropic_reference` -- the simulation's second ground truth: the phantom itself at the
  reconstruction's resolution, which has no wedge (the back-projection ground truth has it).
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np

from .choices import RADIAL
from .errors import SCNetInputError


def check_tilt_range(tilt_range: Sequence[float]) -> Tuple[float, float]:
    """``(theta_min, theta_max)`` in degrees, -90 <= min < max <= 90, or a clear error."""
    try:
        lo, hi = (float(v) for v in tilt_range)
    except (TypeError, ValueError):
        raise SCNetInputError(f"Tilt range {tilt_range!r}: give two angles MIN,MAX in degrees, "
                              f"e.g. -60,60.") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and -90 <= lo < hi <= 90):
        raise SCNetInputError(f"Tilt range {lo:g},{hi:g}: must satisfy -90 <= MIN < MAX <= 90 (degrees).")
    return lo, hi


def parse_tilt_range(text: str) -> Tuple[float, float]:
    """``"MIN,MAX"`` (degrees) -> ``(min, max)``, checked; a clear error otherwise."""
    parts = str(text).replace(" ", "").split(",")
    if len(parts) != 2 or not all(parts):
        raise SCNetInputError(f"Tilt range {text!r}: give MIN,MAX in degrees, e.g. -60,60.")
    return check_tilt_range(parts)


def missing_wedge_mask(shape: Sequence[int], tilt_range: Sequence[float] = (-60.0, 60.0)) -> np.ndarray:
    """Boolean ``shape`` array over the ``numpy.fft.fftn`` frequencies: True where no tilt of
    ``tilt_range`` (degrees, about Y, beam along Z at 0) measures the sample (eq. of the module doc).
    The DC sample and the kx axis (kz = 0) are always measured; the mask is symmetric under k -> -k."""
    if len(shape) != 3 or min(shape) < 1:
        raise SCNetInputError(f"Missing-wedge mask: shape {tuple(shape)} must be three positive sizes (Z, Y, X).")
    lo, hi = check_tilt_range(tilt_range)
    kz = np.fft.fftfreq(shape[0])[:, None, None]
    kx = np.fft.fftfreq(shape[2])[None, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = np.degrees(np.arctan(kz / kx))           # the tilt whose plane holds (kz, kx); kx = 0 -> +-90
    theta = np.where(kx == 0, np.where(kz == 0, 0.0, 90.0), theta)
    measured = (theta >= lo) & (theta <= hi)
    if hi >= 90 or lo <= -90:                                # the +-90 plane (kx = 0) is measured too
        measured = measured | (kx == 0)
    measured = measured | (kz == 0)                         # the kx axis lies on every plane
    missing = np.broadcast_to(~measured, tuple(shape)).copy()  # the same for every ky (tilt axis Y)
    # a real volume's samples k and -k are one measurement: keep the mask symmetric (it is, but for
    # the Nyquist planes of even sizes, where -k wraps onto k's own row)
    return missing & np.roll(missing[::-1, ::-1, ::-1], 1, axis=(0, 1, 2))


def _power(volume: np.ndarray) -> np.ndarray:
    v = np.asarray(volume, dtype=np.float64)
    return np.abs(np.fft.fftn(v - v.mean())) ** 2


WEDGE_MARGIN = 5.0  # degrees: the wedge's interior only; a back-projection leaks into its first few degrees


def wedge_power_ratio(volume: np.ndarray, reference: np.ndarray, tilt_range: Sequence[float] = (-60.0, 60.0),
                      max_frequency: float = 0.5, margin: float = WEDGE_MARGIN) -> float:
    """Power of ``volume`` inside the missing wedge over the power of ``reference`` there (same shape,
    mean removed), up to ``max_frequency`` cycles/voxel, at least ``margin`` degrees inside the wedge's
    edges (the back-projection's interpolation spreads measured power over the first degrees: with the
    margin, the back-projection of the clean tilts of the simulation keeps ~0.03 of the phantom's)."""
    volume, reference = np.asarray(volume), np.asarray(reference)
    if volume.shape != reference.shape:
        raise SCNetInputError(f"Wedge power: volume {volume.shape} and reference {reference.shape} differ in shape.")
    lo, hi = check_tilt_range(tilt_range)
    mask = missing_wedge_mask(volume.shape, (max(-90.0, lo - margin), min(90.0, hi + margin)))
    f = [np.fft.fftfreq(n) for n in volume.shape]
    radius = np.sqrt(f[0][:, None, None] ** 2 + f[1][None, :, None] ** 2 + f[2][None, None, :] ** 2)
    mask &= radius <= max_frequency
    ref = float(_power(reference)[mask].sum())
    if ref <= 0:
        raise SCNetInputError("Wedge power: the reference has no power inside the missing wedge.")
    return float(_power(volume)[mask].sum()) / ref


def fwhm(profile: np.ndarray) -> float:
    """Full width at half maximum (voxels, linear interpolation) of a 1D peak at its maximum,
    measured above the profile's minimum."""
    p = np.asarray(profile, dtype=np.float64)
    i = int(np.argmax(p))
    base = float(p.min())
    half = base + (p[i] - base) / 2.0
    if p[i] <= base:
        raise SCNetInputError("FWHM: the profile has no peak.")

    def side(step):
        j = i
        while 0 <= j + step < len(p) and p[j + step] > half:
            j += step
        if not 0 <= j + step < len(p):
            return float(j)
        a, b = p[j], p[j + step]
        return j + step * (a - half) / (a - b)

    return abs(side(1) - side(-1))


def _xcorr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    fa = np.fft.rfftn(a - a.mean())
    fb = np.fft.rfftn(b - b.mean())
    return np.fft.fftshift(np.fft.irfftn(fa * np.conj(fb), s=a.shape, axes=(0, 1, 2)))


def _zx_ratio(c: np.ndarray) -> float:
    z0, y0, x0 = np.unravel_index(int(np.argmax(c)), c.shape)
    return fwhm(c[:, y0, x0]) / fwhm(c[z0, y0, :])


def elongation(volume: np.ndarray, reference: np.ndarray) -> float:
    """Z/X FWHM ratio of the cross-correlation peak of ``volume`` with ``reference``, divided by the
    ratio of the reference's own autocorrelation: 1 = no elongation along Z, the wedge's is > 1."""
    volume = np.asarray(volume, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if volume.shape != reference.shape:
        raise SCNetInputError(f"Elongation: volume {volume.shape} and reference {reference.shape} differ in shape.")
    return _zx_ratio(_xcorr(volume, reference)) / _zx_ratio(_xcorr(reference, reference))


def radial_window(shape: Sequence[int], radial: Sequence[float] = RADIAL) -> np.ndarray:
    """The reconstruction's radial window (1 up to R1, Gaussian fall-off of sigma R2 beyond; the WBP
    filter's window of :mod:`scnet.recon.astra2d`) applied isotropically on a ``fftn`` grid."""
    f = [np.fft.fftfreq(n) for n in shape]
    r = np.sqrt(f[0][:, None, None] ** 2 + f[1][None, :, None] ** 2 + f[2][None, None, :] ** 2)
    r1, r2 = float(radial[0]), float(radial[1])
    if r1 >= 0.5:
        return np.ones(tuple(shape))
    fall = np.exp(-((r - r1) ** 2) / (2 * r2 ** 2)) if r2 > 0 else np.zeros_like(r)
    return np.where(r <= r1, 1.0, fall)


def isotropic_reference(phantom: np.ndarray, like: np.ndarray, tilt_range: Sequence[float] = (-60.0, 60.0),
                        radial: Sequence[float] = RADIAL) -> np.ndarray:
    """A ground truth WITHOUT the wedge: the phantom band-limited like the reconstruction (isotropic
    radial window) on the intensity scale of ``like`` (the back-projection ground truth, which has the
    wedge of ``tilt_range``). The scale ``a * phantom + b`` is fitted by least squares between the
    phantom WITH that wedge and ``like``, then applied to the phantom without it, so PSNR/SSIM against
    it compare with those against ``like``."""
    phantom, like = np.asarray(phantom, dtype=np.float64), np.asarray(like, dtype=np.float64)
    if phantom.shape != like.shape:
        raise SCNetInputError(f"Isotropic reference: phantom {phantom.shape} and ground truth {like.shape} "
                              f"differ in shape.")
    f = np.fft.fftn(phantom) * radial_window(phantom.shape, radial)
    bl = np.real(np.fft.ifftn(f))
    wedged = np.real(np.fft.ifftn(f * ~missing_wedge_mask(phantom.shape, tilt_range)))
    design = np.stack([wedged.ravel(), np.ones(wedged.size)], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, like.ravel(), rcond=None)
    return (a * bl + b).astype(np.float32)
