"""Quality metrics of the paper's evaluation (§5.3 and §5.6, eq. 9-10).

Simulated data (ground truth known, Tables 1-2)
    :func:`psnr` and :func:`ssim3d` compare a denoised volume with the ground truth.
    Convention (the paper does not state one): ``data_range`` defaults to the
    dynamic range of the REFERENCE (ground truth), ``max(ref) - min(ref)``, and the
    same value is used for both metrics, so every method is scored on one scale.
    Nothing is rescaled: a method that changes the intensity scale of the volume
    (contrast, offset) pays for it, as it would in the paper's tables.
    SSIM is computed on the whole 3D array with
    :func:`skimage.metrics.structural_similarity` (uniform 7x7x7 window, the
    skimage defaults K1=0.01, K2=0.03), i.e. a true volumetric SSIM, not a mean of
    2D slices.

Real data (no ground truth, Table 3)
    :func:`fsc` is eq. 9, the Fourier shell correlation of two volumes, and
    :func:`fsc_eo` is eq. 10, ``FSC_e/o = 2 FSC / (FSC + 1)``: the correlation of
    the even and odd half reconstructions brought to the full data set's SNR.
    :func:`resolution_at` gives ``FSC^{-1}(0.5)`` in Angstrom.

Frequencies are in 1/Angstrom.  Non-cubic volumes (tomograms are thin) are
handled with per-axis normalised frequencies: voxel ``(kz, ky, kx)`` of the
DFT lies at ``sqrt((kz/Nz)^2 + (ky/Ny)^2 + (kx/Nx)^2) / voxel_size``; shells
are ``1 / (N_max * voxel_size)`` wide (the finest sampling of the grid) and go
up to Nyquist, ``1 / (2 * voxel_size)``; voxels in the corners beyond Nyquist
are left out.

One module for the paper's metrics and the FSC crossings that read their curves (~380 lines): the
crossing rules depend on the shell layout above and are tested together with it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from .errors import SCNetInputError

__all__ = [
    "FSCCurve", "psnr", "ssim3d", "mse", "fsc", "fsc_eo", "resolution_at",
    "central_subvolume", "soft_box_mask", "format_resolution",
]


# --------------------------------------------------------------------------- helpers
def _pair(ref: np.ndarray, x: np.ndarray, names=("reference", "volume")) -> Tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(ref, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if ref.shape != x.shape:
        raise SCNetInputError(
            f"Shapes differ: {names[0]} {ref.shape} vs {names[1]} {x.shape}. "
            "Metrics compare volumes voxel by voxel: give volumes of the same shape "
            "(same reconstruction geometry).")
    if ref.size == 0:
        raise SCNetInputError(f"{names[0]} is empty (shape {ref.shape}).")
    return ref, x


def _data_range(ref: np.ndarray, data_range: Optional[float]) -> float:
    if data_range is None:
        data_range = float(ref.max() - ref.min())
    data_range = float(data_range)
    if not data_range > 0:
        raise SCNetInputError(
            f"data_range must be > 0 (got {data_range}); the reference volume is constant or the "
            "given range is wrong.")
    return data_range


def mse(ref: np.ndarray, x: np.ndarray) -> float:
    """Mean squared error (float64 accumulation)."""
    ref, x = _pair(ref, x)
    return float(np.mean((ref - x) ** 2))


def psnr(ref: np.ndarray, x: np.ndarray, data_range: Optional[float] = None) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)``.

    ``data_range`` defaults to ``ref.max() - ref.min()`` (ground truth's range).
    Identical volumes give ``inf``.
    """
    ref, x = _pair(ref, x)
    dr = _data_range(ref, data_range)
    err = float(np.mean((ref - x) ** 2))
    if err == 0.0:
        return math.inf
    return 10.0 * math.log10(dr * dr / err)


def ssim3d(ref: np.ndarray, x: np.ndarray, data_range: Optional[float] = None, win_size: int = 7) -> float:
    """Volumetric SSIM (skimage ``structural_similarity`` on the 3D array).

    ``data_range`` defaults to ``ref.max() - ref.min()``; ``win_size`` (odd) is
    reduced to the smallest odd number that fits the smallest axis.
    """
    from skimage.metrics import structural_similarity

    ref, x = _pair(ref, x)
    dr = _data_range(ref, data_range)
    w = min(int(win_size), min(ref.shape))
    if w % 2 == 0:
        w -= 1
    if w < 3:
        raise SCNetInputError(f"Volume too small for SSIM (shape {ref.shape}); every axis needs >= 3 voxels.")
    return float(structural_similarity(ref, x, data_range=dr, win_size=w, channel_axis=None))


def central_subvolume(vol: np.ndarray, size: Optional[Sequence[Optional[int]]]) -> np.ndarray:
    """Centred crop of ``vol`` to ``size = (Z, Y, X)``.

    Like the paper's ``512^2 x 100`` sub-tomograms (Table 3).  An entry that is
    ``None``, ``<= 0`` or larger than the volume keeps that axis whole.
    """
    if size is None:
        return vol
    if len(size) != vol.ndim:
        raise SCNetInputError(f"Sub-volume size {tuple(size)} must have {vol.ndim} entries (Z,Y,X).")
    sl = []
    for n, s in zip(vol.shape, size):
        if s is None or int(s) <= 0 or int(s) >= n:
            sl.append(slice(None))
        else:
            s = int(s)
            a = (n - s) // 2
            sl.append(slice(a, a + s))
    return vol[tuple(sl)]


def soft_box_mask(shape: Sequence[int], edge: Union[float, Sequence[float]] = 0.1) -> np.ndarray:
    """Box mask with raised-cosine edges (a separable Tukey window).

    ``edge`` is the width of the cosine fall-off as a fraction of each axis
    (one value or one per axis).  Apodising the box edges keeps the volume's
    borders (and the periodic wrap of the DFT) out of the FSC.
    """
    shape = tuple(int(s) for s in shape)
    edges = [float(edge)] * len(shape) if np.isscalar(edge) else [float(e) for e in edge]
    if any(not 0 <= e <= 0.5 for e in edges):
        raise SCNetInputError(f"Mask edge fraction(s) {edges} must be within 0..0.5.")
    mask = np.ones(shape, dtype=np.float64)
    for ax, (n, e) in enumerate(zip(shape, edges)):
        w = np.ones(n)
        m = int(round(e * n))
        if m > 0:
            ramp = 0.5 * (1 - np.cos(np.pi * (np.arange(m) + 0.5) / m))
            w[:m] = ramp
            w[n - m:] = ramp[::-1]
        sh = [1] * len(shape)
        sh[ax] = n
        mask = mask * w.reshape(sh)
    return mask


# --------------------------------------------------------------------------- FSC
NO_POWER = 1e-9  # shell power below this fraction of the strongest shell counts as none (FSC = 0)

@dataclass
class FSCCurve:
    """A Fourier shell correlation curve (eq. 9).

    frequency : shell frequency in 1/A (shell 0 is the origin);
    fsc       : correlation per shell (NaN where a shell has no voxels; 0 where a volume
                has no power in it, e.g. beyond a low-pass cut-off);
    n_voxels  : number of Fourier voxels of the full (not half) transform per shell.
    """

    frequency: np.ndarray
    fsc: np.ndarray
    n_voxels: np.ndarray
    voxel_size: float = 1.0

    @property
    def resolution(self) -> np.ndarray:
        """1 / frequency in A (inf for shell 0)."""
        with np.errstate(divide="ignore"):
            return 1.0 / self.frequency

    @property
    def fsc_eo(self) -> np.ndarray:
        """FSC_e/o of eq. 10 (for half-set volumes)."""
        return fsc_eo(self.fsc)

    def resolution_at(self, threshold: float = 0.5, eo: bool = False) -> float:
        return resolution_at(self.frequency, self.fsc_eo if eo else self.fsc, threshold)


def _shell_index(shape: Tuple[int, int, int]) -> Tuple[np.ndarray, np.ndarray, int]:
    """Shell index of each voxel of an rfftn grid and the weight that turns
    sums over the half transform into sums over the full transform."""
    nz, ny, nx = shape
    nmax = max(shape)
    fz = np.fft.fftfreq(nz)[:, None, None]
    fy = np.fft.fftfreq(ny)[None, :, None]
    fx = np.fft.rfftfreq(nx)[None, None, :]
    r = np.sqrt(fz ** 2 + fy ** 2 + fx ** 2)  # cycles / voxel
    idx = np.rint(r * nmax).astype(np.int64)
    weight = np.full(fx.shape, 2.0)
    weight[..., 0] = 1.0  # kx = 0 plane holds both members of each Hermitian pair
    if nx % 2 == 0:
        weight[..., -1] = 1.0  # so does the kx = Nyquist plane
    weight = np.broadcast_to(weight, idx.shape)
    n_shells = nmax // 2 + 1
    return idx, weight, n_shells


def fsc(v1: np.ndarray, v2: np.ndarray, voxel_size: float = 1.0,
        mask: Union[None, str, np.ndarray] = None) -> FSCCurve:
    """Fourier shell correlation, eq. 9::

        FSC(r) = Re sum_{r_i in r} F1(r_i) F2(r_i)^*
                 / sqrt( sum |F1(r_i)|^2  sum |F2(r_i)|^2 )

    The numerator's sum over a full shell is real for real volumes; the real
    part is taken, so a sign flip or phase shift between the volumes lowers
    (or negates) the correlation.

    A shell where either volume has (almost) no power -- below ``NO_POWER``
    times its strongest shell, e.g. beyond a low-pass cut-off -- gets FSC 0: a
    filter that deletes a band cannot claim correlation there.  With a mask this
    is judged on the unmasked volumes (masking leaks power into emptied shells).

    ``mask``: ``None``; ``"soft"`` for :func:`soft_box_mask` (10% cosine edges);
    or an array of the volumes' shape.  With a mask, each volume's (masked)
    mean is removed before masking so the mask itself does not correlate.
    """
    v1, v2 = _pair(v1, v2, ("volume 1", "volume 2"))
    if v1.ndim != 3:
        raise SCNetInputError(f"FSC needs 3D volumes, got shape {v1.shape}.")
    if not voxel_size > 0:
        raise SCNetInputError(f"voxel size must be > 0 A (got {voxel_size}).")
    raw = (v1, v2) if mask is not None else None
    if mask is not None:
        if isinstance(mask, str):
            if mask != "soft":
                raise SCNetInputError(f"mask must be None, 'soft' or an array, got {mask!r}.")
            m = soft_box_mask(v1.shape)
        else:
            m = np.asarray(mask, dtype=np.float64)
            if m.shape != v1.shape:
                raise SCNetInputError(f"Mask shape {m.shape} differs from the volumes' shape {v1.shape}.")
        wsum = m.sum()
        if not wsum > 0:
            raise SCNetInputError("The FSC mask is empty (all zeros).")
        v1 = (v1 - (v1 * m).sum() / wsum) * m
        v2 = (v2 - (v2 * m).sum() / wsum) * m
    f1 = np.fft.rfftn(v1)
    f2 = np.fft.rfftn(v2)
    idx, weight, n_shells = _shell_index(v1.shape)
    keep = idx < n_shells
    idx_k = idx[keep]
    w_k = weight[keep]
    cross = np.bincount(idx_k, weights=(w_k * (f1 * np.conj(f2)).real[keep]), minlength=n_shells)
    p1 = np.bincount(idx_k, weights=w_k * (np.abs(f1[keep]) ** 2), minlength=n_shells)
    p2 = np.bincount(idx_k, weights=w_k * (np.abs(f2[keep]) ** 2), minlength=n_shells)
    count = np.bincount(idx_k, weights=w_k, minlength=n_shells)
    with np.errstate(divide="ignore", invalid="ignore"):
        curve = cross / np.sqrt(p1 * p2)
    # A shell whose power is ~0 in either volume (e.g. above a low-pass cut-off; left
    # there is only float rounding, itself correlated through the common signal)
    # carries no information: FSC = 0.  Empty shells stay NaN.
    # With a mask, "no power" is judged on the UNMASKED volumes: multiplying by the mask convolves
    # the spectrum and leaks the (common) low-frequency signal into shells a low-pass filter
    # emptied, where it would correlate perfectly between the halves.
    q1, q2 = (p1, p2) if raw is None else (_shell_power(raw[0], idx_k, w_k, keep, n_shells),
                                         _shell_power(raw[1], idx_k, w_k, keep, n_shells))
    ref = max(float(q1[1:].max(initial=0.0)), 1e-300), max(float(q2[1:].max(initial=0.0)), 1e-300)
    dead = (q1 <= NO_POWER * ref[0]) | (q2 <= NO_POWER * ref[1])
    curve[dead] = 0.0
    curve[count == 0] = np.nan
    freq = np.arange(n_shells) / (max(v1.shape) * float(voxel_size))
    return FSCCurve(frequency=freq, fsc=curve, n_voxels=np.rint(count).astype(np.int64),
                    voxel_size=float(voxel_size))


def _shell_power(v, idx_k, w_k, keep, n_shells) -> np.ndarray:
    f = np.fft.rfftn(np.asarray(v, dtype=np.float64) - float(np.mean(v)))
    return np.bincount(idx_k, weights=w_k * (np.abs(f[keep]) ** 2), minlength=n_shells)


def fsc_eo(fsc_values) -> np.ndarray:
    """Eq. 10: ``FSC_e/o = 2 FSC / (FSC + 1)``.

    The even/odd half reconstructions each hold half the signal of the full one;
    eq. 10 (Spearman-Brown) extrapolates their FSC to the full data set.
    FSC = -1 maps to -inf; NaN stays NaN.
    """
    f = np.asarray(fsc_values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 2.0 * f / (f + 1.0)
    return np.where(f == -1.0, -np.inf, out)


def resolution_at(frequency, curve, threshold: float = 0.5) -> float:
    """Resolution (A) where ``curve`` first falls below ``threshold``.

    Searches from the first shell after the origin, skips NaN shells and
    interpolates the frequency linearly between the last shell at or above and
    the first shell below the threshold; returns ``1 / f``.

    Special values:
      * ``math.nan``  -- *not reached*: the curve never falls below the
        threshold up to Nyquist (resolution at or better than ``2 * voxel``);
      * ``math.inf``  -- the curve is below the threshold already at the first
        shell (no correlation at any resolution).
    Use :func:`format_resolution` to print these.
    """
    f = np.asarray(frequency, dtype=np.float64)
    c = np.asarray(curve, dtype=np.float64)
    if f.shape != c.shape:
        raise SCNetInputError(f"frequency {f.shape} and curve {c.shape} differ in length.")
    ok = np.isfinite(c) & (f > 0)
    f, c = f[ok], c[ok]
    if c.size == 0:
        return math.nan
    below = np.nonzero(c < threshold)[0]
    if below.size == 0:
        return math.nan
    i = int(below[0])
    if i == 0:
        return math.inf
    f0, f1, c0, c1 = f[i - 1], f[i], c[i - 1], c[i]
    fx = f0 + (c0 - threshold) * (f1 - f0) / (c0 - c1)
    return float(1.0 / fx)


def format_resolution(value: float, voxel_size: Optional[float] = None) -> str:
    """Text for a resolution from :func:`resolution_at` (handles not reached / none)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        nyq = f" (< {2 * voxel_size:.2f} A, Nyquist)" if voxel_size else ""
        return "not reached" + nyq
    if math.isinf(value):
        return "below threshold at all shells"
    return f"{value:.2f}"


#: thresholds reported by `scnet fsc`: 0.5 (the paper's FSC_e/o criterion, eq. 10) and 0.143
#: (the usual criterion for independent half maps, Rosenthal & Henderson 2003).
FSC_THRESHOLDS = (0.5, 0.143)


def crossing(frequency, curve, threshold: float = 0.5) -> dict:
    """First crossing of ``threshold`` and whether the curve climbs back above it later.

    A denoiser applied to both halves correlates their high frequencies: the curve falls below
    the threshold, then rises again towards Nyquist, and a later crossing would flatter the
    result. Only the FIRST crossing counts (:func:`resolution_at`); this also reports:

      * ``resolution``: :func:`resolution_at` (A; nan = not reached, inf = below at once);
      * ``rises_again``: True when, after the first shell below the threshold, some later
        shell is at or above it again;
      * ``rise_resolution``: 1 / frequency of the first such shell (A), else None;
      * ``max_after``: the highest curve value after the first crossing (None if no crossing).
    """
    f = np.asarray(frequency, dtype=np.float64)
    c = np.asarray(curve, dtype=np.float64)
    res = resolution_at(f, c, threshold)
    ok = np.isfinite(c) & (f > 0)
    f, c = f[ok], c[ok]
    below = np.nonzero(c < threshold)[0]
    out = {"threshold": float(threshold), "resolution": res, "rises_again": False,
           "rise_resolution": None, "max_after": None}
    if below.size:
        after = c[below[0]:]
        out["max_after"] = float(after.max())
        back = np.nonzero(after >= threshold)[0]
        if back.size:
            out["rises_again"] = True
            out["rise_resolution"] = float(1.0 / f[below[0] + back[0]])
    return out


def crossings(frequency, curve, thresholds=FSC_THRESHOLDS) -> list:
    """:func:`crossing` for each threshold (in the given order)."""
    return [crossing(frequency, curve, t) for t in thresholds]


def crossing_warning(cross: dict, name: str = "FSC") -> Optional[str]:
    """A sentence warning that ``name`` rises above the threshold again (None when it does not)."""
    if not cross["rises_again"]:
        return None
    return (f"{name} rises back above {cross['threshold']:g} at {cross['rise_resolution']:.1f} A "
            f"(up to {cross['max_after']:.2f}) after its first crossing: high frequencies correlate "
            f"between the halves (e.g. both denoised by one network); only the first crossing is reported.")
