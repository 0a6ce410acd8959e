"""scnet.baselines: one interface for the paper's comparison methods (Tables 1-3)."""
import importlib.util
import os
import sys

import numpy as np
import pytest

from scnet.baselines import (BASELINES, available_baselines, estimate_noise_sigma, estimate_noise_sigma_even_odd,
                             n2v_denoise, run_baseline)
from scnet.errors import SCNetInputError

HAS_BM4D = importlib.util.find_spec("bm4d") is not None
HAS_CAREAMICS = importlib.util.find_spec("careamics") is not None


def _case(shape=(24, 32, 40), noise=0.5, seed=0):
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    clean = (np.sin(x / 3.0) * np.cos(y / 4.0) + (z > shape[0] // 2)).astype(np.float32)
    noisy = (clean + np.random.default_rng(seed).normal(0, noise, clean.shape)).astype(np.float32)
    return clean, noisy


def _mse(a, b):
    return float(np.mean((a.astype(np.float64) - b) ** 2))


def test_available_baselines_lists_all_with_reasons():
    av = available_baselines()
    assert set(av) == set(BASELINES)
    for name in ("lowpass", "gaussian"):
        assert av[name] is None  # pure numpy/scipy: always available
    assert (av["bm4d"] is None) == HAS_BM4D
    if not HAS_BM4D:
        assert "pip install bm4d" in av["bm4d"]


def test_unknown_baseline_and_bad_options_are_input_errors():
    _, noisy = _case()
    with pytest.raises(SCNetInputError) as e:
        run_baseline("bm3d", noisy)
    for name in BASELINES:  # the message lists the valid names
        assert name in str(e.value)
    with pytest.raises(SCNetInputError, match="sigma"):
        run_baseline("gaussian", noisy, sigma=-1)
    with pytest.raises(SCNetInputError, match="sigma"):
        run_baseline("bm4d", noisy, sigma=-0.1)
    with pytest.raises(SCNetInputError, match="does not take"):
        run_baseline("lowpass", noisy, sigma=1.0)
    with pytest.raises(SCNetInputError, match="3D"):
        run_baseline("gaussian", noisy[0])


@pytest.mark.parametrize("name,opts", [("lowpass", {"cutoff": 0.4}), ("gaussian", {"sigma": 1.0})])
def test_filters_denoise_and_keep_shape_and_scale(name, opts):
    clean, noisy = _case()
    out = run_baseline(name, noisy, **opts)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert _mse(out, clean) < 0.3 * _mse(noisy, clean)
    assert abs(out.mean() - noisy.mean()) < 0.05


def test_noise_sigma_estimate_on_white_noise():
    _, noisy = _case(shape=(32, 32, 32), noise=0.5)
    assert estimate_noise_sigma(noisy) == pytest.approx(0.5, rel=0.1)


def test_noise_sigma_from_even_odd_halves():
    """Coloured noise: the even/odd difference still gives the full volume's noise std."""
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(4)
    signal = gaussian_filter(rng.normal(size=(32, 32, 32)), 2) * 5
    n_even = gaussian_filter(rng.normal(size=signal.shape), 1)  # correlated noise
    n_odd = gaussian_filter(rng.normal(size=signal.shape), 1)
    even, odd = signal + n_even, signal + n_odd
    full_noise = (n_even + n_odd) / 2
    assert estimate_noise_sigma_even_odd(even, odd) == pytest.approx(full_noise.std(), rel=0.05)
    # the white-noise MAD estimator underestimates such low-pass noise: why the halves help
    assert estimate_noise_sigma((even + odd) / 2) < 0.7 * full_noise.std()


@pytest.mark.skipif(not HAS_BM4D, reason="optional bm4d package not installed (make bm4d / pip install bm4d==4.2.5)")
def test_bm4d_with_given_and_estimated_sigma():
    clean, noisy = _case(shape=(16, 24, 24))
    est = run_baseline("bm4d", noisy)  # sigma estimated
    given = run_baseline("bm4d", noisy, sigma=0.5, stages="hard")
    for out in (est, given):
        assert out.shape == noisy.shape and out.dtype == np.float32
        assert _mse(out, clean) < 0.3 * _mse(noisy, clean)
    assert np.array_equal(run_baseline("bm4d", noisy, sigma=0), noisy)


def test_topaz3d_runs_on_small_odd_volume():
    """Topaz's U-Net needs sizes divisible by 32; the wrapper pads and crops."""
    if available_baselines()["topaz3d"]:
        pytest.skip(available_baselines()["topaz3d"])
    clean, noisy = _case(shape=(20, 28, 36))
    out = run_baseline("topaz3d", noisy)
    assert out.shape == noisy.shape
    assert _mse(out, clean) < _mse(noisy, clean)


@pytest.mark.skipif(not HAS_CAREAMICS, reason="careamics not installed")
def test_n2v_few_steps_on_tiny_volume(tmp_path, monkeypatch):
    """A handful of careamics N2V steps: runs on CPU, whole and tiled prediction agree,
    keeps the input's scale, leaves no lightning files behind and no fake torchvision."""
    monkeypatch.chdir(tmp_path)
    _, noisy = _case(shape=(20, 24, 28))  # not multiples of 4: exercises the padding
    had_tv = "torchvision" in sys.modules
    out = run_baseline("n2v", noisy, epochs=1, steps_per_epoch=2, patch_size=16, batch_size=2)
    assert out.shape == noisy.shape and np.all(np.isfinite(out))
    assert abs(out.mean() - noisy.mean()) < 0.5 * noisy.std()
    assert out.std() < 2 * noisy.std()  # de-normalised (2 steps: barely trained, no quality claim)
    assert os.listdir(tmp_path) == []  # logs/checkpoints went to a removed temp dir
    tv = sys.modules.get("torchvision")
    assert had_tv or tv is None or not getattr(tv, "__scnet_standin__", False)
    work = tmp_path / "keep"
    tiled = run_baseline("n2v", noisy, epochs=1, steps_per_epoch=2, patch_size=16, batch_size=2,
                         tile_size=16, work_dir=str(work))
    assert any(p.suffix == ".ckpt" for p in work.rglob("*"))  # a given work_dir keeps checkpoints
    assert tiled.shape == noisy.shape and np.all(np.isfinite(tiled))
    # one model, several inputs (the even/odd halves of Table 3): list in input order
    outs = n2v_denoise(noisy, others=[noisy[:, :16], noisy], epochs=1, steps_per_epoch=1, patch_size=8,
                       batch_size=2, seed=3)
    assert [o.shape for o in outs] == [noisy.shape, noisy[:, :16].shape, noisy.shape]
    assert np.allclose(outs[0], outs[2])
