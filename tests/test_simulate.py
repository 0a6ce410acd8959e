"""§5.2 simulation: noise on the projections, GT on the same grid/scale, seeding, prepare_case."""
import numpy as np
import pytest

from scnet.errors import SCNetInputError
from scnet.phantom import make_phantom, phantom_tilt_series
from scnet.recon import ReconConfig, reconstruct
from scnet.simulate import SimulationConfig, prepare_case, simulate, simulate_from_volume

ANG = np.arange(-60, 61, 6.0)


@pytest.fixture(scope="module")
def vol():
    return make_phantom((24, 20, 32), seed=2)


def test_noise_is_added_to_projections_on_0_255_scale(vol):
    r = simulate_from_volume(vol, ANG, SimulationConfig(sigma=15, gaussian_sigma=0, seed=1))
    assert r.clean_stack.min() == pytest.approx(0, abs=1e-3) and r.clean_stack.max() == pytest.approx(255, rel=1e-5)
    noise = r.noisy_stack - r.clean_stack
    assert noise.std() == pytest.approx(15, rel=0.05) and abs(noise.mean()) < 0.5
    assert r.noisy_rec.shape == r.ground_truth.shape == vol.shape
    # reconstruction is linear: noisy_rec - GT is exactly the reconstructed projection noise
    rn = reconstruct(noise, ANG, ReconConfig(thickness=vol.shape[0], backend="builtin"))
    assert np.allclose(r.noisy_rec - r.ground_truth, rn, atol=1e-3 * np.abs(rn).max())
    assert r.params["sigma"] == 15 and r.params["projection_range"] == [0.0, 255.0]


def test_sigma_zero_gives_ground_truth_and_seeds(vol):
    r0 = simulate_from_volume(vol, ANG, SimulationConfig(sigma=0, gaussian_sigma=0))
    assert np.allclose(r0.noisy_rec, r0.ground_truth, atol=1e-4)
    a = simulate_from_volume(vol, ANG, SimulationConfig(sigma=10, gaussian_sigma=0, seed=5))
    b = simulate_from_volume(vol, ANG, SimulationConfig(sigma=10, gaussian_sigma=0, seed=5))
    c = simulate_from_volume(vol, ANG, SimulationConfig(sigma=10, gaussian_sigma=0, seed=6))
    assert np.array_equal(a.noisy_stack, b.noisy_stack) and not np.array_equal(a.noisy_stack, c.noisy_stack)


def test_ground_truth_matches_phantom_better_than_noisy(vol):
    """GT (clean projections, same reconstruction) correlates with the phantom; noise lowers it."""
    r = simulate_from_volume(vol, ANG, SimulationConfig(sigma=20, gaussian_sigma=0))
    cg = np.corrcoef(r.ground_truth.ravel(), vol.ravel())[0, 1]
    cn = np.corrcoef(r.noisy_rec.ravel(), vol.ravel())[0, 1]
    assert cg > 0.6 and cn < cg


def test_simulate_from_raw_tilt_series_applies_paper_filter(vol):
    stack, ang, _ = phantom_tilt_series(vol.shape, seed=2, tilt_step=6, volume=vol)
    r = simulate(stack, ang, SimulationConfig(sigma=10, thickness=24, gaussian_sigma=2.0))
    assert r.params["source"] == "tilt series" and r.params["gaussian_sigma"] == 2.0
    assert r.ground_truth.shape == (24, 20, 32) and r.noisy_stack.shape == stack.shape
    # the paper's GT volume is the sigma-2 filtered reconstruction: smoother than the raw one
    raw = reconstruct(stack, ang, ReconConfig(thickness=24, backend="builtin"))
    assert np.abs(np.diff(r.filtered_volume, axis=2)).mean() < 0.6 * np.abs(np.diff(raw, axis=2)).mean()


@pytest.mark.parametrize("cfg,match", [
    (SimulationConfig(sigma=-1), "sigma"), (SimulationConfig(gaussian_sigma=-2), "gaussian_sigma"),
    (SimulationConfig(thickness=0), "thickness"), (SimulationConfig(thickness=1000), "thickness"),
])
def test_bad_config(vol, cfg, match):
    stack, ang, _ = phantom_tilt_series(vol.shape, seed=2, tilt_step=6, volume=vol)
    with pytest.raises(SCNetInputError, match=match):
        simulate(stack, ang, cfg)


def test_prepare_case_outputs_and_noise_levels():
    lo = prepare_case((24, 24, 24), seed=0, sigma=10, tilt_step=6, prior_filter="gaussian")
    hi = prepare_case((24, 24, 24), seed=0, sigma=25, tilt_step=6, prior_filter="gaussian")
    for k in ("ground_truth", "noisy_rec", "prior_rec", "even_rec", "odd_rec"):
        assert lo[k].shape == (24, 24, 24) and np.all(np.isfinite(lo[k]))
    assert lo["noisy_stack"].shape == (21, 24, 24) and lo["angles"].size == 21
    assert np.array_equal(lo["ground_truth"], hi["ground_truth"])
    err = lambda c, k: np.mean((c[k] - c["ground_truth"]) ** 2)
    assert err(lo, "noisy_rec") < err(hi, "noisy_rec")
    assert err(hi, "prior_rec") < err(hi, "noisy_rec")         # the 2D filter removes noise
    # even/odd halves: independent noise, same signal (scale kept by the angular weights)
    assert np.corrcoef(lo["even_rec"].ravel(), lo["odd_rec"].ravel())[0, 1] > 0.3
    assert lo["even_rec"].std() == pytest.approx(lo["odd_rec"].std(), rel=0.2)


def test_prepare_case_with_topaz_prior():
    c = prepare_case((16, 32, 32), seed=1, sigma=15, tilt_step=10, prior_filter="topaz")
    assert c["prior_rec"].shape == (16, 32, 32) and c["params"]["topaz_model"] == "unet"
    tv = lambda a: np.abs(np.diff(a, axis=2)).mean()
    assert tv(c["prior_stack"]) < 0.5 * tv(c["noisy_stack"])                   # smoothed tilts (V-hat, §4.3)
    assert c["prior_stack"].mean() == pytest.approx(c["noisy_stack"].mean(), rel=0.05)  # scale kept
