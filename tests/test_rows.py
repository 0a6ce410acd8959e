"""The rows' noise (scnet.rows): which pairs stay noise-independent on white, ray-correlated and
interpolated noise (measured, bounded); the row check on tomograms with signal; the row texture."""
import numpy as np
import pytest

from scnet.errors import SCNetInputError
from scnet.recon import ReconConfig, reconstruct
from scnet.rows import (LAGS, RHO_MAX, SLAB_RHO, auto_mode, auto_reason, lag_correlation, pair_correlation, row_check, row_texture,
                        shared_noise)
from scnet.simulate import rotated_and_back

ANGLES = np.arange(-60.0, 61.0, 3.0)


def _tilt_noise(kind, shape=(48, 64), seed=0):
    """Pure-noise tilt images: white, or rotated 4.3 degrees and back (an alignment's one interpolation,
    bilinear or cubic spline), or that then binned by 2 (real data at 20 A/px)."""
    rng = np.random.default_rng(seed)
    n = ANGLES.size
    if kind == "white":
        return rng.standard_normal((n,) + shape).astype(np.float32)
    order = 3 if "cubic" in kind else 1
    big = (shape[0] * 2, shape[1] * 2) if "bin2" in kind else shape
    s = rotated_and_back(np.zeros((n,) + big, np.float32), 1.0, 4.3, order, rng)
    if "bin2" in kind:
        s = s.reshape(n, shape[0], 2, shape[1], 2).mean((2, 4))
    return s


def _noise_tomogram(kind, seed=0):
    """The reconstruction of pure-noise tilts: noise correlated along the rays within each XZ slice."""
    return reconstruct(_tilt_noise(kind, seed=seed), ANGLES, ReconConfig(thickness=32, backend="builtin"))


@pytest.fixture(scope="module")
def noise():
    return {k: _noise_tomogram(k) for k in ("white", "bilinear", "cubic", "bilinear-bin2")}


def test_pairs_on_white_ray_correlated_noise(noise):
    """A reconstruction of white tilt noise: rows along Y are independent (each XZ slice from its own image
    rows), neighbours along Z (the rays) and X (the ramp filter) are not -- a voxel blind spot cannot work."""
    w = noise["white"]
    for lag in (1, 2):
        assert abs(lag_correlation(w, lag, axis=1)) < 0.02   # SE ~0.005
    assert abs(lag_correlation(w, 1, axis=0)) > 0.3
    assert abs(lag_correlation(w, 1, axis=2)) > 0.04
    even, odd = w[:, 0::2], w[:, 1::2]                       # the split mode's pair
    assert abs(pair_correlation(even, odd)) < 0.02


def test_pairs_on_interpolated_noise(noise):
    """Tilts rotated and back (one interpolation): neighbouring rows share noise, so the split mode's
    even/odd pair is not independent; rows two apart stay independent after a bilinear interpolation
    (and after binning), a cubic spline leaves a small lag-2 correlation; rows three apart are clean."""
    b, c, b2 = noise["bilinear"], noise["cubic"], noise["bilinear-bin2"]
    assert 0.2 < lag_correlation(b, 1) < 0.3                 # measured 0.25
    assert 0.08 < lag_correlation(b2, 1) < 0.14              # measured 0.11
    assert 0.08 < lag_correlation(c, 1) < 0.16               # measured 0.12
    assert 0.2 < pair_correlation(b[:, 0:-1:2], b[:, 1::2]) < 0.3   # even/odd rows: shared noise
    for v in (b, b2):
        assert abs(lag_correlation(v, 2)) < 0.02             # the slab mode's pair at gap 1
    assert -0.09 < lag_correlation(c, 2) < -0.03             # measured -0.06: gap 2 for a cubic spline
    for v in (b, c, b2):
        assert abs(lag_correlation(v, 3)) < 0.035


def test_whitening_along_y_makes_interpolated_rows_independent():
    """The slab mode's pair after whitening: a row and any other row (gap 0) -- the rows whitened with the
    correlations the row check reads from the tomogram itself are independent after a bilinear or cubic
    interpolation, binned or not (a larger volume than above: the check needs a 128-row crop to read 3 lags)."""
    from scnet.rows import filter_rows, row_filter_taps
    for kind in ("bilinear", "cubic", "bilinear-bin2"):
        rng = np.random.default_rng(5)
        big = (256, 256) if "bin2" in kind else (128, 128)
        s = rotated_and_back(np.zeros((ANGLES.size,) + big, np.float32), 1.0, 4.3, 3 if kind == "cubic" else 1, rng)
        if "bin2" in kind:
            s = s.reshape(ANGLES.size, 128, 2, 128, 2).mean((2, 4))
        v = reconstruct(s, ANGLES, ReconConfig(thickness=48, backend="builtin"))
        c = row_check(v)
        w = filter_rows(v, row_filter_taps(c["rho"], -0.5))
        before = [lag_correlation(v, lag) for lag in (1, 2, 3)]
        after = [lag_correlation(w, lag) for lag in (1, 2, 3)]
        assert max(abs(x) for x in before) > 0.09, (kind, before)
        assert max(abs(x) for x in after) < 0.03, (kind, before, after)   # measured <= 0.021 (cubic)
    taps = row_filter_taps([0.25, 0.0, 0.0], -0.5)
    np.testing.assert_allclose(filter_rows(filter_rows(v, taps), row_filter_taps([0.25, 0.0, 0.0], 0.5)), v,
                               atol=0.02 * float(np.abs(v).max()))              # colouring undoes it


def test_row_check_measures_the_noise_correlation_not_the_signal():
    """On a phantom's §5.2 simulation the check reads the noise's lag-1/lag-2 correlation from the
    tomogram alone: ~0 with white tilt noise even where the signal is strong (σ 5: the noisy volume's own
    neighbouring rows correlate > 0.5), ~0.25 with rows interpolated once; gap = rows to hide."""
    from scnet.phantom import make_phantom
    from scnet.simulate import SimulationConfig, simulate_from_volume
    ph = make_phantom((64, 128, 128), seed=1)   # the quality benchmark's case size
    for sigma in (5.0, 20.0):
        white = simulate_from_volume(ph, ANGLES, SimulationConfig(sigma=sigma, gaussian_sigma=0, seed=2))
        mixed = simulate_from_volume(ph, ANGLES, SimulationConfig(sigma=sigma, gaussian_sigma=0, seed=2,
                                                                 tilt_axis_rotation=4.3))
        if sigma == 5.0:
            assert lag_correlation(white.noisy_rec, 1) > 0.5           # the signal dominates the raw rows
        w, m = row_check(white.noisy_rec), row_check(mixed.noisy_rec)
        assert max(abs(r) for r in w["rho"]) < RHO_MAX / 2, w
        assert w["gap"] == 0 and w["ok"]
        assert 0.2 < m["rho1"] < 0.35 and abs(m["rho2"]) < RHO_MAX, m   # signal only raises it (σ 5: 0.29)
        assert m["gap"] == 1 and not m["ok"]
        assert (auto_mode(w), auto_mode(m)) == ("split", "slab")        # what auto trains without halves
        assert shared_noise(w) is None and shared_noise(m)[0] == pytest.approx(m["rho1"])


def test_row_check_on_noise_alone(noise):
    """The gap, auto's mode and the whitening on noise alone: white rows -> split, not whitened (they read a few
    hundredths either way); interpolated once -> slab, whitened; interpolated then binned by 2 (the real series'
    case, lag-1 ~0.1 or less) -> split; too small to measure -> slab hiding one row."""
    white = row_check(noise["white"])
    assert white["gap"] == 0 and auto_mode(white) == "split" and shared_noise(white) is None
    bilinear = row_check(noise["bilinear"])
    assert bilinear["gap"] == 1 and auto_mode(bilinear) == "slab" and shared_noise(bilinear)[0] > SLAB_RHO
    binned = row_check(noise["bilinear-bin2"])
    assert binned["rho1"] < SLAB_RHO and auto_mode(binned) == "split"
    c = row_check(noise["cubic"])
    assert c["rho1"] > 0.05 and c["gap"] >= 1
    small = row_check(np.zeros((4, 4, 4)))                     # too small to measure: nothing assumed
    assert small["gap"] == LAGS and small["rho"] == [] and not small["ok"] and auto_mode(small) == "slab"
    # the run log says why: the measured correlation against the threshold
    assert "the split mode" in auto_reason(white) and f"{white['rho1']:.3f}" in auto_reason(white)
    assert "the slab mode" in auto_reason(bilinear) and "would not be independent" in auto_reason(bilinear)
    assert "too small" in auto_reason(small)
    with pytest.raises(SCNetInputError, match="3D"):
        row_check(np.zeros((8, 8)))


def test_row_texture_on_a_striped_volume():
    """The texture figure: 1 for the reference itself, large for stripes along X alternating row by row
    (what interleaving two disagreeing row sets gives), < 1 for a volume smoothed along Y."""
    rng = np.random.default_rng(0)
    from scipy.ndimage import gaussian_filter
    ref = gaussian_filter(rng.standard_normal((32, 64, 64)), 1.5)
    ref += 0.02 * rng.standard_normal(ref.shape)             # the fine detail a true volume has
    stripes = np.where(np.arange(64) % 2, 1.0, -1.0)[None, :, None] * 0.2 * ref.std()
    wavy = stripes * (1 + 0.5 * np.cos(2 * np.pi * np.arange(64) / 64))[None, None, :]
    assert row_texture(ref, ref) == pytest.approx(1.0)
    assert row_texture(ref + stripes, ref) > 50              # measured 205
    assert row_texture(ref + wavy, ref) > 30                # stripes that vary along X too (157)
    assert row_texture(gaussian_filter(ref, (0, 1.0, 0)), ref) < 0.3   # 0.11
    with pytest.raises(SCNetInputError, match="shapes differ"):
        row_texture(ref, ref[:, :10])


@pytest.mark.parametrize("name, degree", [("linear", 1), ("cubic", 3), ("quintic", 5)])
def test_row_averages_resample_the_other_row_set_and_cancel_the_interleave(name, degree):
    """Each output average = half the row + half the other row set resampled onto it (Lagrange of that
    order): polynomials along Y up to its degree pass unchanged, the even/odd alternation (the split
    mode's texture, ky = 1/2) is removed, a constant keeps its level."""
    from scnet.rows import ROW_AVERAGES, filter_rows
    taps = np.asarray(ROW_AVERAGES[name])
    assert taps.sum() == pytest.approx(1.0) and taps[len(taps) // 2] == 0.5
    y = np.arange(40, dtype=np.float64)
    poly = ((y - 20) / 10) ** degree
    vol = np.broadcast_to(poly[None, :, None], (2, 40, 3)).astype(np.float32)
    out = filter_rows(vol, taps)
    core = slice(len(taps), 40 - len(taps))                 # away from the reflected borders
    np.testing.assert_allclose(out[:, core], vol[:, core], atol=1e-4 * np.abs(poly).max())
    alt = np.broadcast_to(((-1.0) ** y)[None, :, None], (2, 40, 3)).astype(np.float32)
    assert np.abs(filter_rows(alt, taps)[:, core]).max() < 1e-6
