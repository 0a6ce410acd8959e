"""2D/3D Gaussian and low-pass filters (known answers) and the Topaz pretrained denoisers."""
import numpy as np
import pytest

from scnet.errors import SCNetInputError
from scnet.filters import (TOPAZ_MODELS_2D, gaussian_2d, gaussian_3d, load_topaz_model, lowpass_2d, lowpass_3d,
                           topaz_denoise_2d, topaz_denoise_3d)


def test_gaussian_2d_of_delta_per_image():
    s = np.zeros((3, 33, 33), np.float32)
    s[1, 16, 16] = 1.0
    out = gaussian_2d(s, 2.0)
    assert out[1, 16, 16] == pytest.approx(1 / (2 * np.pi * 4), rel=0.02)
    assert out[1].sum() == pytest.approx(1.0, rel=1e-4)
    assert np.abs(out[0]).max() == 0 and np.abs(out[2]).max() == 0   # no mixing across tilts
    # profile is Gaussian with sigma 2
    assert out[1, 16, 18] / out[1, 16, 16] == pytest.approx(np.exp(-4 / 8), rel=0.02)


def test_gaussian_3d_of_delta():
    v = np.zeros((25, 25, 25), np.float32)
    v[12, 12, 12] = 1.0
    out = gaussian_3d(v, 2.0)
    assert out[12, 12, 12] == pytest.approx((2 * np.pi * 4) ** -1.5, rel=0.03)
    assert out.sum() == pytest.approx(1.0, rel=1e-4)
    assert np.allclose(gaussian_3d(v, 0), v)


def test_lowpass_passes_low_and_removes_high_frequencies():
    n = 64
    x = np.arange(n)
    low = np.cos(2 * np.pi * 4 * x / n)        # 4/32 = 0.125 Nyquist
    high = np.cos(2 * np.pi * 24 * x / n)      # 0.75 Nyquist
    img = (low[None, :] + high[None, :]) * np.ones((n, 1))
    out = lowpass_2d(img[None].astype(np.float32), 0.5)
    assert np.allclose(out[0], low[None, :] * np.ones((n, 1)), atol=1e-4)
    vol = np.broadcast_to(img, (8, n, n)).astype(np.float32)
    out3 = lowpass_3d(vol, 0.5)
    assert np.allclose(out3, np.broadcast_to(low[None, None, :], (8, n, n)), atol=1e-4)


@pytest.mark.parametrize("fn,arg,match", [
    (gaussian_2d, -1.0, "sigma"), (gaussian_3d, -0.5, "sigma"),
    (lowpass_2d, 0.0, "cutoff"), (lowpass_3d, 1.5, "cutoff"),
])
def test_bad_parameters(fn, arg, match):
    with pytest.raises(SCNetInputError, match=match):
        fn(np.ones((4, 8, 8), np.float32), arg)


def _noisy_tilts(n=3, size=64, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    clean = np.stack([np.sin(xx / 6.0 + k) + np.cos(yy / 9.0) + ((xx - 32) ** 2 + (yy - 30) ** 2 < 80)
                      for k in range(n)]).astype(np.float32) * 10 + 100
    return clean, (clean + rng.normal(0, 8, clean.shape)).astype(np.float32)


def test_topaz_2d_denoises_and_keeps_scale():
    clean, noisy = _noisy_tilts()
    out = topaz_denoise_2d(noisy, model="unet")
    assert out.shape == noisy.shape and out.dtype == np.float32 and np.all(np.isfinite(out))
    assert np.mean((out - clean) ** 2) < 0.5 * np.mean((noisy - clean) ** 2)
    assert abs(out.mean() - noisy.mean()) < 2.0
    tiled = topaz_denoise_2d(noisy[:1], model="unet", patch_size=24, padding=16)
    assert np.mean((tiled - out[:1]) ** 2) < 0.05 * np.mean((noisy[:1] - clean[:1]) ** 2)


def test_all_topaz_2d_models_load_and_unknown_rejected():
    for name in TOPAZ_MODELS_2D:
        assert load_topaz_model(name) is not None
    with pytest.raises(SCNetInputError, match="Unknown Topaz"):
        topaz_denoise_2d(np.ones((1, 8, 8), np.float32), model="nope")
    with pytest.raises(SCNetInputError, match="cuda"):
        topaz_denoise_2d(np.ones((1, 8, 8), np.float32), device="tpu")


def test_topaz_3d_denoises_whole_and_tiled():
    rng = np.random.default_rng(1)
    zz, yy, xx = np.mgrid[:32, :32, :32]
    clean = (((zz - 16) ** 2 + (yy - 14) ** 2 + (xx - 18) ** 2) < 60).astype(np.float32)
    noisy = clean + rng.normal(0, 0.5, clean.shape).astype(np.float32)
    out = topaz_denoise_3d(noisy)
    assert out.shape == noisy.shape and np.all(np.isfinite(out))
    assert np.mean((out - clean) ** 2) < 0.5 * np.mean((noisy - clean) ** 2)
    tiled = topaz_denoise_3d(noisy, patch_size=16, padding=8)
    assert np.mean((tiled - clean) ** 2) < 0.6 * np.mean((noisy - clean) ** 2)
