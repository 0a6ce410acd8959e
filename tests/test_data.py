"""Data (§4.2, §5.1): common intensity scale, robust stats, patches + shared augmentation, val split, padding."""
import numpy as np
import pytest

from scnet.data import (PatchSampler, augment_pair, check_pair, fit_normalisation, pad_to, robust_stats,
                        split_train_val, synthetic_pair)
from scnet.errors import SCNetInputError


def test_prior_is_put_on_the_noisy_scale():
    clean, noisy, prior = synthetic_pair((24, 24, 24), noise=1.0, seed=0)
    noisy = 50 + 7 * noisy          # arbitrary units of the reconstruction
    prior = -3 + 0.01 * prior       # the prior from another pipeline, different units
    n = fit_normalisation(noisy, prior)
    nz, pz = n.apply(noisy), n.apply_prior(prior)
    assert abs(nz.mean()) < 0.05 and abs(nz.std() - 1) < 0.05
    # prior mapped into the noisy units: its std is that of the SIGNAL part (< 1), not 1
    assert abs(pz.mean()) < 0.05
    assert 0.3 < pz.std() < 0.9
    # separate z-scores (the public code) would give the prior unit std: contrast inflation
    sep = fit_normalisation(noisy, prior, common_scale=False)
    assert abs(sep.apply_prior(prior).std() - 1) < 0.1
    # invert is the exact inverse
    assert np.allclose(n.invert(nz), noisy, atol=1e-3)


def test_robust_stats_ignore_outliers():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((32, 32, 32)).astype(np.float32)
    v[0, 0, :4] = 1e6
    m, s = robust_stats(v)
    assert abs(m) < 0.05 and abs(s - 1) < 0.1


def test_patches_shape_and_identical_augmentation():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20, 24, 28)).astype(np.float32)
    b = 2 * a + 1
    s = PatchSampler(a, b, 16)
    x, p = s.sample(rng, 3)
    assert x.shape == p.shape == (3, 1, 16, 16, 16)
    assert np.allclose(p, 2 * x + 1)  # same crop, same flips/rot90
    # augmentation does change orientation sometimes
    cube = np.arange(8 ** 3, dtype=np.float32).reshape(8, 8, 8)
    outs = {augment_pair(cube, cube, rng)[0].tobytes() for _ in range(30)}
    assert len(outs) > 5


def test_val_split_holds_out_longest_axis():
    axis, tr, va = split_train_val((20, 100, 50), 0.1)
    assert axis == 1 and tr == slice(0, 90) and va == slice(90, 100)
    with pytest.raises(SCNetInputError):
        split_train_val((20, 20, 20), 0.7)


def test_patch_larger_than_a_dimension_is_reflect_padded():
    v = np.random.default_rng(0).standard_normal((10, 40, 40)).astype(np.float32)
    p = pad_to(v, 32)
    assert p.shape == (32, 40, 40)
    s = PatchSampler(v, v, 32)
    x, _ = s.sample(np.random.default_rng(0), 1)
    assert x.shape == (1, 1, 32, 32, 32)


def test_check_pair_errors():
    a = np.random.default_rng(0).standard_normal((8, 8, 8)).astype(np.float32)
    with pytest.raises(SCNetInputError, match="shape"):
        check_pair(a, a[:, :, :4])
    bad = a.copy()
    bad[1, 1, 1] = np.nan
    with pytest.raises(SCNetInputError, match="NaN"):
        check_pair(a, bad)
    with pytest.raises(SCNetInputError, match="constant"):
        check_pair(np.ones_like(a), a)
    with pytest.raises(SCNetInputError, match="3D"):
        check_pair(a[0], a[0])
