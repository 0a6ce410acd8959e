"""The tomogram's rows along the tilt axis: how far their noise is shared, and the texture at their frequency.

A single-axis reconstruction is computed XZ slice by XZ slice: the slice at row ``y`` (the tilt axis is
Y, :mod:`scnet.recon`) comes from row ``y`` of every tilt image and from nothing else.  Detector noise
is independent between rows, so the reconstructed noise of two Y rows is independent -- unless the rows
were mixed before the reconstruction.  They are on most real tomograms: IMOD, AreTomo and Warp rotate
each tilt image once to put the tilt axis on Y, and one interpolation shares a row's noise with its
neighbours (bilinear: correlation ~0.25 at lag 1, none at lag 2; binned by 2 afterwards ~0.1 at lag 1;
a cubic spline also ~-0.06 at lag 2; ``tests/test_rows.py``).

* :func:`lag_correlation` -- the correlation of a NOISE volume with itself ``lag`` rows away (a
  measure on simulations, where the noise is known).
* :func:`row_check` -- the same correlations measured on the TOMOGRAM itself, where the signal is
  unknown: the ky power spectrum in a shell of high kx/kz (0.25-0.45 cycles/voxel, where the noise of a
  weighted back-projection dominates) is fitted by the spectrum of rows whose noise is correlated
  ``rho1`` at lag 1 and ``rho2`` at lag 2 (``P(ky) = a (1 + 2 rho1 cos 2 pi ky + 2 rho2 cos 4 pi ky)``),
  on ky >= 0.1 only.  Signal that is smooth along Y adds power at low ky, which can only raise the
  estimate (a larger gap, never a smaller one); on the §5.2 simulation it reads |rho| <= 0.02 with white
  noise and 0.25 with interpolated rows, at every σ.  ``gap`` = the number of rows on each side of a row
  that share its noise (every |rho| beyond it below :data:`RHO_MAX`): what the slab mode hides.
* :func:`auto_mode` -- what ``auto`` trains on one tomogram without halves: the split mode (even and odd
  rows as two noise-independent halves) where the rows share little noise, the slab mode (row-blind,
  whitened) where the lag-1 correlation reaches :data:`SLAB_RHO` (interpolated alignment: ~0.25) or
  nothing could be measured.  Measured (docs/benchmarks.md, docs/real_data.md): on interpolated rows
  (0.25 bilinear, 0.158 cubic) slab is far above split; on unmixed simulated rows and on the real series
  after bin 2 (0.015 / 0.09) split is above slab.  The threshold sits between the two measured regimes.
* :func:`row_texture` -- the power of a volume at the row frequency (ky near Nyquist, kx and kz low:
  stripes along X alternating from row to row) over a reference's: ~1 for a clean output, >> 1 where
  rows are predicted apart and disagree (the split mode's even/odd interleave), < 1 for a volume
  smoothed along Y.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .errors import SCNetInputError

AXIS = 1             # Y, the tilt axis
RHO_MAX = 0.05       # a noise correlation at or above this between rows counts as shared
SLAB_RHO = 0.15      # auto without halves: the slab mode from this lag-1 correlation on, the split mode below it
BAND = (0.33, 0.45)  # cycles/voxel in kx, kz where the row check reads the noise
KY_MIN = 0.15        # the row check's fit ignores the lowest ky (where smooth signal lives)
LAGS = 3             # the row check fits the noise correlation at lags 1..LAGS


def lag_correlation(noise: np.ndarray, lag: int = 1, axis: int = AXIS) -> float:
    """Pearson correlation of ``noise`` with itself shifted ``lag`` voxels along ``axis``."""
    v = np.moveaxis(np.asarray(noise, dtype=np.float64), axis, 0)
    if lag < 1 or v.shape[0] <= lag:
        raise SCNetInputError(f"Lag correlation: lag {lag} needs more than {lag} voxels along axis {axis}.")
    a, b = v[:-lag].ravel(), v[lag:].ravel()
    return pair_correlation(a, b)


def pair_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equally shaped arrays (the noise of a pair's two members)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise SCNetInputError(f"Pair correlation: the two members differ in size ({a.size} vs {b.size}).")
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if den == 0:
        raise SCNetInputError("Pair correlation: a member is constant.")
    return float((a * b).sum() / den)


def _crop(volume, size: int) -> np.ndarray:
    v = np.asarray(volume)
    sl = tuple(slice(max(0, (n - size) // 2), max(0, (n - size) // 2) + min(n, size)) for n in v.shape)
    c = np.asarray(v[sl], dtype=np.float64)
    return c - c.mean()


def row_check(volume, size: int = 128) -> dict:
    """The rows' noise correlation measured on the tomogram itself (module docstring).

    Returns ``rho`` (the noise correlation along Y at lags 1..:data:`LAGS`) and ``se`` (its standard error
    from the fit's residuals), ``rho1``, ``rho2`` (its first two), ``gap`` (the largest lag whose |rho|
    reaches :data:`RHO_MAX` and 3 standard errors: rows on each side of a row that share its noise) and
    ``ok`` (True where the rows are independent, gap 0).  A central crop of at most
    ``size`` voxels per axis is read; a tomogram with fewer than 16 rows, or too few voxels in the band,
    gets ``gap`` :data:`LAGS` and no rho (nothing measured, nothing assumed).
    """
    v = np.asarray(volume)
    if v.ndim != 3:
        raise SCNetInputError(f"Row check: expected a 3D tomogram (Z, Y, X), got shape {v.shape}.")
    c = _crop(v, size)
    unmeasured = {"rho": [], "rho1": float("nan"), "rho2": float("nan"), "gap": LAGS, "ok": False}
    if c.shape[AXIS] < 16 or min(c.shape[0], c.shape[2]) < 8:
        return unmeasured
    p = np.abs(np.fft.fftn(c)) ** 2
    kz, ky, kx = (np.fft.fftfreq(n) for n in c.shape)
    kxz = np.sqrt(kz[:, None] ** 2 + kx[None, :] ** 2)
    band = (kxz >= BAND[0]) & (kxz <= BAND[1])
    if band.sum() < 16:
        return unmeasured
    profile = np.moveaxis(p, AXIS, 0)[:, band].mean(1)     # mean band power per ky
    k = np.abs(ky)
    keep = k >= KY_MIN
    design = np.stack([np.ones(keep.sum())] + [2 * np.cos(2 * np.pi * lag * k[keep]) for lag in range(1, LAGS + 1)], 1)
    y = profile[keep]
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    if not coef[0] > 0:
        return unmeasured
    rho = [float(x / coef[0]) for x in coef[1:]]
    dof = max(1, len(y) - design.shape[1])       # the fit's own error: a small crop reads rho less precisely
    cov = float(np.sum((y - design @ coef) ** 2)) / dof * np.linalg.pinv(design.T @ design)
    se = [float(np.sqrt(max(cov[i, i], 0.0)) / coef[0]) for i in range(1, design.shape[1])]
    gap = max([lag for lag, (r, e) in enumerate(zip(rho, se), 1) if abs(r) >= max(RHO_MAX, 3 * e)], default=0)
    return {"rho": rho, "se": se, "rho1": rho[0], "rho2": rho[1], "gap": gap, "ok": gap == 0}


ROW_FILTER = np.array([1.0, -4.0, 6.0, -4.0, 1.0]) / 16.0   # along Y: response sin^4(pi ky), 1 at Nyquist
ROW_SMOOTH = 3.0                                              # Gaussian along X and Z (voxels): low kx, kz


def row_power(volume) -> float:
    """Mean power of ``volume`` at the row frequency: ky near Nyquist (the 4th difference along Y,
    response sin^4(pi ky)) and low kx, kz (a Gaussian of :data:`ROW_SMOOTH` voxels along X and Z):
    stripes along X that alternate from row to row.  Computed in real space, away from the borders (a
    DFT would add the wrap-around edge's power at every ky)."""
    from scipy.ndimage import convolve1d, gaussian_filter1d
    c = np.asarray(volume, dtype=np.float64)
    if c.ndim != 3 or c.shape[AXIS] < 7:
        raise SCNetInputError(f"Row texture: expected a 3D volume with at least 7 rows along Y, got shape {c.shape}.")
    h = convolve1d(c, ROW_FILTER, axis=AXIS, mode="reflect")
    for ax in (0, 2):
        h = gaussian_filter1d(h, ROW_SMOOTH, axis=ax, mode="reflect")
    m = int(3 * ROW_SMOOTH)
    core = h[m:-m or None, 2:-2, m:-m or None] if min(c.shape[0], c.shape[2]) > 2 * m + 2 else h[:, 2:-2]
    return float(np.mean(core ** 2))


def row_texture(volume, reference) -> float:
    """:func:`row_power` of ``volume`` over the ``reference``'s (the ground truth): 1 = as much texture
    at the row frequency as the truth has, 10 = ten times more."""
    if np.shape(volume) != np.shape(reference):
        raise SCNetInputError(f"Row texture: shapes differ ({np.shape(volume)} vs {np.shape(reference)}).")
    ref = row_power(reference)
    if not ref > 0:
        raise SCNetInputError("Row texture: the reference has no power at the row frequency.")
    return row_power(volume) / ref


def rows_share_noise(check: dict) -> bool:
    """True where the row check measured shared noise enough to break the split mode's premise: the lag-1
    correlation at least :data:`SLAB_RHO` and 3 standard errors."""
    return bool(check["rho"]) and check["rho1"] >= max(SLAB_RHO, 3 * check["se"][0])


def auto_mode(check: dict) -> str:
    """``auto`` on one tomogram without halves (module docstring): ``slab`` where the rows share noise
    (:func:`rows_share_noise`) or nothing was measured (too small), else ``split``."""
    return "slab" if not check["rho"] or rows_share_noise(check) else "split"


def auto_reason(check: dict) -> str:
    """Why :func:`auto_mode` picked its mode, for the run log."""
    mode = auto_mode(check)
    if not check["rho"]:
        return f"auto: the {mode} mode (the tomogram is too small for the row check; one row hidden on each side)"
    shared = ("share noise: the split mode's even and odd rows would not be independent" if mode == "slab"
              else "share little noise: the even and odd rows are two nearly independent halves")
    return (f"auto: the {mode} mode -- the rows along Y (the tilt axis) {shared} (correlation of neighbouring rows "
            f"{check['rho1']:.3f} +/- {check['se'][0]:.3f}; the slab mode from {SLAB_RHO})")


def needs_check(cfg, has_halves: bool) -> bool:
    """Whether the training mode needs the row check: the slab and split modes, and ``auto`` without halves."""
    return cfg.mode in ("slab", "split") or (cfg.mode == "auto" and not has_halves)


def resolve_mode(cfg, noisy, has_halves: bool):
    """The training mode for ``cfg`` on this tomogram, and for the slab mode which rows it hides and whether
    it whitens them.  ``auto`` without halves trains the split or the slab mode by the row check
    (:func:`auto_mode`); the slab mode with ``row_gap`` -1 (measured) whitens its rows along Y for the noise
    correlations :func:`row_check` measures where they share noise (:func:`shared_noise`; then no row is
    hidden beyond the predicted one: gap 0), and a tomogram too small to measure hides one row on each side.
    Returns (mode, the row check or None, gap or None, the noise correlations to whiten or None)."""
    check = row_check(noisy) if needs_check(cfg, has_halves) else None
    mode = cfg.resolved_mode(has_halves, check)
    gap, whiten = slab_rows(cfg, check) if mode == "slab" else (None, None)
    return mode, check, gap, whiten


def slab_rows(cfg, check: dict):
    """(rows hidden on each side, noise correlations to whiten or None) of the slab mode for a row check:
    ``row_gap`` when given (no whitening); nothing measured -> 1 row hidden; else gap 0, whitened for the
    measured correlations (:func:`shared_noise`)."""
    if cfg.row_gap >= 0:
        return int(cfg.row_gap), None
    if not check["rho"]:
        return 1, None
    return 0, shared_noise(check)


def combine_checks(checks, names) -> dict:
    """One row check for a data set trained as one model (one whitening for all, as ``model.pt`` stores
    one): the mean of the tomograms' measured correlations, its standard error from theirs.  Refused where
    two tomograms' rows share noise differently (lag-1 correlations apart by more than 0.05 and 3 standard
    errors: processed differently, e.g. one interpolated, one not); tomograms too small to measure are left
    out, and none measured gives the unmeasured check (gap :data:`LAGS`)."""
    measured = [(n, c) for n, c in zip(names, checks) if c is not None and c["rho"]]
    if not measured:
        return {"rho": [], "se": [], "rho1": float("nan"), "rho2": float("nan"), "gap": LAGS, "ok": False}
    for n1, c1 in measured:
        for n2, c2 in measured:
            d, e = abs(c1["rho1"] - c2["rho1"]), float(np.hypot(c1["se"][0], c2["se"][0]))
            if d > max(RHO_MAX, 3 * e):
                raise SCNetInputError(
                    f"Slab mode: the rows of tomograms {n1} and {n2} share noise differently (correlation of "
                    f"neighbouring rows {c1['rho1']:.3f} vs {c2['rho1']:.3f}): they were processed differently "
                    f"(interpolated alignment or binning in one only), and one model whitens its rows one way. "
                    f"Train them apart, or give --row-gap N (N rows hidden on each side, no whitening).")
    k = len(measured)
    rho = [float(np.mean([c["rho"][i] for _, c in measured])) for i in range(LAGS)]
    se = [float(np.sqrt(sum(c["se"][i] ** 2 for _, c in measured)) / k) for i in range(LAGS)]
    gap = max([lag for lag, (r, e) in enumerate(zip(rho, se), 1) if abs(r) >= max(RHO_MAX, 3 * e)], default=0)
    return {"rho": rho, "se": se, "rho1": rho[0], "rho2": rho[1], "gap": gap, "ok": gap == 0}


def shared_noise(check: dict):
    """The noise correlations of :func:`row_check` that are measured (at least 2 standard errors; the others
    0), or None where none is or where the rows share none (``gap`` 0: every |rho| under :data:`RHO_MAX` or
    3 standard errors -- white rows read a few hundredths either way and are not whitened): what the slab
    mode whitens the rows for."""
    if not check.get("gap"):
        return None
    rho = [r if abs(r) >= 2 * e else 0.0 for r, e in zip(check["rho"], check["se"])]
    return rho if any(rho) else None


def row_spectrum(rho, ky: np.ndarray) -> np.ndarray:
    """The rows' noise power along ky for the noise correlations ``rho`` at lags 1, 2, ... (1 for
    independent rows), kept positive (>= 0.05) where a noisy estimate would cross zero."""
    p = 1 + sum(2 * r * np.cos(2 * np.pi * lag * ky) for lag, r in enumerate(rho, 1))
    return np.maximum(p, 0.05)


def row_filter_taps(rho, power: float, half: int = 8) -> np.ndarray:
    """A symmetric FIR along Y of 2 ``half`` + 1 taps with the response ``row_spectrum(rho) ** power``:
    ``power`` -1/2 whitens rows whose noise is correlated, +1/2 colours them back."""
    n = 256
    ky = np.fft.fftfreq(n)
    h = np.real(np.fft.ifft(row_spectrum(rho, ky) ** power))
    taps = np.concatenate([h[-half:], h[:half + 1]])
    return taps / taps.sum()          # unit gain at ky = 0 (the mean and smooth signal unchanged)


# Along Y on the output of the one-tomogram modes.  split: each row set's prediction resampled onto the other
# set's rows and the two averaged -- exactly such a filter on the interleaved output (half the row, half the
# other set resampled), which removes the even/odd disagreement at ky = 1/2 (the row texture).  slab: a row
# predicted from the rows beside it carries their noise at the highest row frequencies (no J-invariant
# predictor cancels it).  Resampling by "linear" (response cos^2(pi ky)), the 4-point Lagrange "cubic"
# (-1, 9, 9, -1)/16 or the 6-point "quintic" (3, -25, 150, 150, -25, 3)/256: all 0 at ky = 1/2, flatter
# below it (at ky 1/8: 0.85, 0.94, 0.98); "none": the raw prediction.  Measured from the same models
# (benchmarks/quality.py --row-averages, docs/benchmarks.md): quintic best in 7 of 8 cells (split: +0.11..0.28
# dB and +0.002..0.007 SSIM over linear, row texture 0.01-0.03 of the truth's; none: 3-12x the truth's; slab:
# +0.21 and -0.07 dB).
ROW_AVERAGES = {"linear": (0.25, 0.5, 0.25),
                "cubic": (-1 / 32, 0.0, 9 / 32, 0.5, 9 / 32, 0.0, -1 / 32),
                "quintic": (3 / 512, 0.0, -25 / 512, 0.0, 150 / 512, 0.5, 150 / 512, 0.0, -25 / 512, 0.0, 3 / 512),
                "none": (1.0,)}
ROW_AVERAGE = ROW_AVERAGES["quintic"]   # measured best of the four (docs/benchmarks.md)


def output_taps(rho=None) -> np.ndarray:
    """The FIR along Y on a split- or slab-mode prediction: :data:`ROW_AVERAGE`, after colouring the rows
    back (``rho``: the correlations a slab model's input was whitened for)."""
    base = row_filter_taps(rho, 0.5) if rho else np.ones(1)
    return np.convolve(base, np.asarray(ROW_AVERAGE))


def filter_rows(volume: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """``volume`` (Z, Y, X) convolved along Y with ``taps`` (reflected at the borders), float32."""
    from scipy.ndimage import convolve1d
    return convolve1d(np.asarray(volume, dtype=np.float32), np.asarray(taps, np.float32), axis=AXIS, mode="reflect")
