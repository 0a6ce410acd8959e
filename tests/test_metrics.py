"""Known-answer tests for scnet.metrics (paper §5, eq. 9-10)."""
import math

import numpy as np
import pytest

from scnet.errors import SCNetInputError
from scnet.metrics import (central_subvolume, fsc, fsc_eo, format_resolution, psnr,
                           resolution_at, soft_box_mask, ssim3d)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _filter(vol, transfer):
    """Apply a real transfer function H(|f| in cycles/voxel) exactly (periodic)."""
    f = [np.fft.fftfreq(n) for n in vol.shape[:2]] + [np.fft.rfftfreq(vol.shape[2])]
    r = np.sqrt(f[0][:, None, None] ** 2 + f[1][None, :, None] ** 2 + f[2][None, None, :] ** 2)
    return np.fft.irfftn(np.fft.rfftn(vol) * transfer(r), s=vol.shape, axes=(0, 1, 2))


# ------------------------------------------------------------------ PSNR / SSIM
def test_psnr_of_known_mse_and_range():
    ref = np.zeros((8, 8, 8))
    ref[0, 0, 0] = 10.0  # data range 10
    x = ref + 0.5 * np.where(_rng().random(ref.shape) < 0.5, 1, -1)  # |error| = 0.5 everywhere, MSE 0.25
    assert psnr(ref, x) == pytest.approx(10 * math.log10(100 / 0.25))
    # explicit data range overrides the reference's range
    assert psnr(ref, x, data_range=1.0) == pytest.approx(10 * math.log10(1 / 0.25))
    assert psnr(ref, ref) == math.inf


def test_ssim_identical_is_one_and_noise_lowers_it():
    ref = _filter(_rng().normal(size=(16, 20, 24)), lambda r: np.exp(-(r / 0.1) ** 2))
    assert ssim3d(ref, ref) == pytest.approx(1.0)
    noisy = ref + _rng(1).normal(scale=ref.std(), size=ref.shape)
    s = ssim3d(ref, noisy)
    assert 0.0 < s < 0.8
    # the paper's ordering: less noise, higher SSIM and PSNR
    less = ref + _rng(1).normal(scale=0.3 * ref.std(), size=ref.shape)
    assert ssim3d(ref, less) > s
    assert psnr(ref, less) > psnr(ref, noisy)


def test_metrics_reject_bad_input():
    with pytest.raises(SCNetInputError, match="Shapes differ"):
        psnr(np.zeros((4, 4, 4)), np.zeros((4, 4, 5)))
    with pytest.raises(SCNetInputError, match="Shapes differ"):
        fsc(np.zeros((4, 4, 4)), np.zeros((4, 5, 4)))
    with pytest.raises(SCNetInputError, match="constant"):
        psnr(np.ones((4, 4, 4)), np.zeros((4, 4, 4)))


# ------------------------------------------------------------------ FSC (eq. 9)
def test_fsc_identical_is_one_and_negated_is_minus_one():
    v = _rng().normal(size=(16, 24, 20))  # non-cubic on purpose
    c = fsc(v, v, voxel_size=2.0)
    assert np.allclose(c.fsc[1:], 1.0)
    assert np.allclose(fsc(v, -v).fsc[1:], -1.0)
    # shells: 1/(N_max * voxel) apart, up to Nyquist 1/(2 voxel)
    assert c.frequency[1] == pytest.approx(1 / (24 * 2.0))
    assert c.frequency[-1] == pytest.approx(1 / (2 * 2.0))
    # FSC is symmetric and insensitive to a positive scale factor
    w = _rng(1).normal(size=v.shape)
    assert np.allclose(fsc(v, w).fsc, fsc(w, 3.0 * v).fsc, equal_nan=True)


def test_fsc_counts_the_full_transform():
    shape = (12, 16, 10)
    c = fsc(_rng().normal(size=shape), _rng(1).normal(size=shape))
    # every voxel of the full DFT within Nyquist is counted once
    fz, fy, fx = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij")
    r = np.rint(np.sqrt(fz ** 2 + fy ** 2 + fx ** 2) * max(shape)).astype(int)
    expected = np.bincount(r[r <= max(shape) // 2], minlength=len(c.n_voxels))
    assert np.array_equal(c.n_voxels, expected)


def test_fsc_of_independent_noise_is_near_zero():
    shape = (32, 32, 32)
    c = fsc(_rng(0).normal(size=shape), _rng(1).normal(size=shape))
    sel = slice(2, None)  # shells with enough voxels for the 1/sqrt(n) statistics
    bound = 3.0 / np.sqrt(c.n_voxels[sel])
    assert np.all(np.abs(c.fsc[sel]) < bound)


def test_fsc_phase_shift_gives_sinc():
    """A pure shift d multiplies F by exp(-2 pi i f.d): for a white volume the shell
    average of cos(2 pi f.d) is sin(2 pi f d)/(2 pi f d) (sphere average).  Checks that
    the real part of F1 F2* is used (a magnitude-only FSC would stay at 1)."""
    shape = (48, 48, 48)
    v = _rng(3).normal(size=shape)
    d = 3
    c = fsc(v, np.roll(v, d, axis=2))
    f = c.frequency[2:]  # cycles/voxel since voxel_size = 1
    expected = np.sinc(2 * f * d)  # numpy sinc(x) = sin(pi x)/(pi x)
    assert np.max(np.abs(c.fsc[2:] - expected)) < 0.12
    # the curve goes negative where cos(2 pi f d) does: sign is kept
    assert c.fsc[2:].min() < -0.15


def test_fsc_blurred_signal_plus_noise_known_crossing():
    """v_i = G*s + n_i (s white, variance 1; n_i independent, variance N): per shell
    FSC = H^2 / (H^2 + N) with Gaussian transfer H(f) = exp(-2 pi^2 sigma^2 f^2), so
    FSC = 0.5 where H^2 = N, i.e. at f = sqrt(ln(1/N)) / (2 pi sigma)."""
    shape = (64, 64, 64)
    sigma, noise_var, voxel = 2.0, 0.05, 3.0
    s = _rng(5).normal(size=shape)
    g = _filter(s, lambda r: np.exp(-2 * np.pi ** 2 * sigma ** 2 * r ** 2))
    v1 = g + _rng(6).normal(scale=np.sqrt(noise_var), size=shape)
    v2 = g + _rng(7).normal(scale=np.sqrt(noise_var), size=shape)
    c = fsc(v1, v2, voxel_size=voxel)
    f_vox = c.frequency * voxel  # cycles/voxel
    h2 = np.exp(-4 * np.pi ** 2 * sigma ** 2 * f_vox ** 2)
    analytic = h2 / (h2 + noise_var)
    sel = slice(2, None)
    assert np.max(np.abs(c.fsc[sel] - analytic[sel])) < 0.1
    f_half = np.sqrt(np.log(1 / noise_var)) / (2 * np.pi * sigma)  # cycles/voxel
    expected_res = voxel / f_half
    assert resolution_at(c.frequency, c.fsc, 0.5) == pytest.approx(expected_res, rel=0.04)
    assert c.resolution_at(0.5) == resolution_at(c.frequency, c.fsc, 0.5)
    # a smaller soft-masked central sub-volume measures the same resolution
    sub1, sub2 = central_subvolume(v1, (32, 48, 48)), central_subvolume(v2, (32, 48, 48))
    cm = fsc(sub1, sub2, voxel_size=voxel, mask="soft")
    assert cm.resolution_at(0.5) == pytest.approx(expected_res, rel=0.1)


def test_fsc_is_zero_where_a_lowpass_removed_everything():
    """Beyond a hard cut-off the filtered halves hold no information: FSC 0 there, so
    the 0.5 crossing is at the cut-off instead of 'not reached'."""
    shape = (32, 32, 32)
    s = _rng(8).normal(size=shape)
    v1 = s + 0.3 * _rng(9).normal(size=shape)
    v2 = s + 0.3 * _rng(10).normal(size=shape)
    cut = 0.2  # cycles / voxel
    lp = lambda v: _filter(v, lambda r: (r <= cut).astype(float)).astype(np.float32)  # noqa: E731
    c = fsc(lp(v1), lp(v2))
    assert np.all(c.fsc[c.frequency > cut + 0.03] == 0.0)
    assert np.all(c.fsc[2:][c.frequency[2:] < cut - 0.03] > 0.8)
    assert resolution_at(c.frequency, c.fsc) == pytest.approx(1 / cut, rel=0.1)
    # a soft mask leaks the common low-pass signal into the emptied shells; they still count as 0
    cm = fsc(lp(v1), lp(v2), mask="soft")
    assert np.all(cm.fsc[cm.frequency > cut + 0.03] == 0.0)
    assert resolution_at(cm.frequency, cm.fsc) == pytest.approx(1 / cut, rel=0.1)


# ------------------------------------------------------------------ eq. 10 and resolution
def test_fsc_eo_values():
    assert np.allclose(fsc_eo([0.0, 1.0, 1 / 3, -0.5]), [0.0, 1.0, 0.5, -2.0])
    assert fsc_eo([-1.0])[0] == -np.inf
    # FSC_e/o >= FSC for 0 <= FSC <= 1: the e/o resolution is never worse
    x = np.linspace(0, 1, 11)
    assert np.all(fsc_eo(x) >= x - 1e-12)


def test_resolution_at_interpolates_and_handles_not_reached():
    freq = np.array([0.0, 0.01, 0.02, 0.03, 0.04])
    curve = np.array([1.0, 0.9, 0.7, 0.3, 0.1])
    # crossing halfway between 0.02 (0.7) and 0.03 (0.3) -> f = 0.025 -> 40 A
    assert resolution_at(freq, curve, 0.5) == pytest.approx(40.0)
    # NaN shells are skipped: interpolation between 0.01 (0.9) and 0.03 (0.1) -> 0.02
    assert resolution_at(freq, [1.0, 0.9, np.nan, 0.1, 0.0], 0.5) == pytest.approx(1 / 0.02)
    not_reached = resolution_at(freq, [1.0, 0.9, 0.8, 0.7, 0.6], 0.5)
    assert math.isnan(not_reached)
    assert "not reached" in format_resolution(not_reached, voxel_size=12.5)
    assert "25.00" in format_resolution(not_reached, voxel_size=12.5)
    never = resolution_at(freq, [1.0, 0.2, 0.1, 0.0, 0.0], 0.5)
    assert never == math.inf
    assert "below" in format_resolution(never)
    assert format_resolution(40.0) == "40.00"


def test_central_subvolume_and_soft_mask():
    v = np.arange(10 * 12 * 14, dtype=float).reshape(10, 12, 14)
    sub = central_subvolume(v, (4, 100, 0))  # too large / 0 keep the axis whole
    assert sub.shape == (4, 12, 14)
    assert np.array_equal(sub, v[3:7])
    with pytest.raises(SCNetInputError):
        central_subvolume(v, (4, 4))
    m = soft_box_mask((10, 12, 14), edge=0.2)
    assert m.shape == (10, 12, 14)
    assert m.max() == pytest.approx(1.0) and m.min() > 0
    assert m[5, 6, 7] == 1.0 and m[0, 6, 7] < 0.5
    assert np.allclose(m, m[::-1, ::-1, ::-1])
