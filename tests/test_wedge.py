"""The missing wedge: its mask from a tilt range, the power recovered inside it, Z elongation."""
import numpy as np
import pytest

from scnet.errors import SCNetInputError
from scnet.wedge import elongation, fwhm, missing_wedge_mask, wedge_power_ratio


def _analytic_count(n, ny, tilt_max):
    """Unmeasured samples of an n x ny x n grid for +-tilt_max: for each kx index j, the kz indices i
    (in -n/2..n/2-1) with |i| > tan(tilt_max) |j|, i.e. |i| >= floor(t |j|) + 1 on both sides."""
    t, total = np.tan(np.radians(tilt_max)), 0
    for j in range(-n // 2, n // 2):
        m = int(np.floor(t * abs(j)))
        total += max(0, n // 2 - 1 - m) + max(0, n // 2 - m)
    return total * ny


@pytest.mark.parametrize("n,tilt", [(16, 60.0), (24, 60.0), (32, 30.0)])
def test_mask_matches_an_analytic_count(n, tilt):
    mask = missing_wedge_mask((n, 3, n), (-tilt, tilt))
    assert mask.sum() == _analytic_count(n, 3, tilt)
    assert not mask[0, :, 0].any() and not mask[0].any()  # DC and the kx axis are always measured
    assert mask[1:, :, 0].all()                           # the kz axis (beam at +-90) never is


def test_full_range_has_no_wedge_and_the_mask_is_about_kz():
    assert not missing_wedge_mask((8, 4, 8), (-90, 90)).any()
    m = missing_wedge_mask((8, 4, 8), (-60, 60))
    assert (m == m[:, :1, :]).all()  # the same for every ky (tilt axis Y)


def test_mask_matches_the_reconstruction_of_an_asymmetric_tilt_series():
    """Project white noise over -30..+60 and reconstruct: power is left only where the mask of
    (-30, 60) says it is measured (the sign of the convention), not where (-60, 30) says it is."""
    from scnet.recon import ReconConfig, reconstruct, reproject
    rng = np.random.default_rng(0)
    vol = rng.standard_normal((32, 4, 32)).astype(np.float32)
    angles = np.arange(-30, 61, 1.0)
    rec = reconstruct(reproject(vol, angles), angles, ReconConfig(thickness=32, radial=(0.5, 0.0)))
    power = np.abs(np.fft.fftn(rec - rec.mean())) ** 2
    f = [np.fft.fftfreq(n) for n in rec.shape]
    inner = np.sqrt(f[0][:, None, None] ** 2 + f[2][None, None, :] ** 2) < 0.4
    right, wrong = missing_wedge_mask(rec.shape, (-30, 60)), missing_wedge_mask(rec.shape, (-60, 30))
    inside = power[right & inner].mean()
    measured = power[~right & inner].mean()
    assert inside < 0.05 * measured
    assert power[wrong & ~right & inner].mean() > 0.3 * measured


def test_wedge_power_ratio():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((16, 8, 16))
    assert wedge_power_ratio(ref, ref) == pytest.approx(1.0)
    f = np.fft.fftn(ref)
    f[missing_wedge_mask(ref.shape, (-60, 60))] = 0
    wedged = np.real(np.fft.ifftn(f))
    assert wedge_power_ratio(wedged, ref) < 1e-6
    assert wedge_power_ratio(2 * ref, ref) == pytest.approx(4.0)
    with pytest.raises(SCNetInputError, match="differ in shape"):
        wedge_power_ratio(ref[:8], ref)


def test_elongation_sees_a_stretch_along_z():
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(2)
    pts = (rng.random((32, 32, 32)) > 0.995).astype(np.float64)
    ref = gaussian_filter(pts, 1.5)
    assert elongation(ref, ref) == pytest.approx(1.0)
    assert elongation(gaussian_filter(ref, (3.0, 0, 0)), ref) > 1.3
    assert elongation(gaussian_filter(ref, (0, 0, 3.0)), ref) < 0.8


def test_fwhm_of_a_gaussian():
    x = np.arange(64)
    sigma = 3.0
    assert fwhm(np.exp(-(x - 32.0) ** 2 / (2 * sigma ** 2))) == pytest.approx(2.3548 * sigma, rel=0.02)


@pytest.mark.parametrize("bad", [(60, -60), (-100, 60), ("a", 1), (0,)])
def test_bad_tilt_range_is_a_clear_error(bad):
    with pytest.raises(SCNetInputError, match="Tilt range"):
        missing_wedge_mask((8, 8, 8), bad)


def test_isotropic_reference_is_the_phantom_on_the_ground_truths_scale():
    from scnet.wedge import isotropic_reference, radial_window
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(3)
    phantom = gaussian_filter(rng.standard_normal((16, 16, 16)), 1.0)
    like = 3.0 * phantom + 2.0
    ref = isotropic_reference(phantom, like, (-90, 90), radial=(0.5, 0.0))  # no wedge, no band limit
    assert np.allclose(ref, like, atol=1e-4)
    w = radial_window((16, 16, 16), (0.25, 0.0))
    assert w[0, 0, 0] == 1 and w[8, 8, 8] == 0                       # inside R1 kept, Nyquist cut
    wedged = np.real(np.fft.ifftn(np.fft.fftn(like) * ~missing_wedge_mask(like.shape)))
    ref = isotropic_reference(phantom, wedged, (-60, 60), radial=(0.5, 0.0))  # from a wedged one: the phantom
    assert np.allclose(ref, like, atol=1e-4)
    assert wedge_power_ratio(ref, like) == pytest.approx(1.0) and wedge_power_ratio(wedged, like) < 1e-6
