"""Tiled inference: whole == tiled (no seams), bounded streaming, de-normalisation, MRC geometry."""
import mrcfile
import numpy as np
import pytest
import torch

from scnet.data import Normalisation, synthetic_pair
from scnet.device import resolve_precision
from scnet.errors import SCNetInputError
from scnet.io import read_volume, write_volume
from scnet.model import ModelConfig, SCNet
from scnet.config import PredictConfig
from scnet.predict import _ramp, load_model, predict_array, predict_file, predict_stream
from scnet.config import TrainConfig
from scnet.train import save_model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.manual_seed(0)
    m = SCNet(ModelConfig(base_width=4))
    with torch.no_grad():  # non-trivial BN statistics
        m.train()
        for _ in range(3):
            m(torch.randn(2, 1, 16, 16, 16))
    p = str(tmp_path_factory.mktemp("m") / "model.pt")
    save_model(p, m, TrainConfig(base_width=4), Normalisation(mean=10.0, std=4.0))
    return p


def _whole(model_path, vol):
    m, norm, _ = load_model(model_path)
    with torch.no_grad():
        y = m(torch.from_numpy(norm.apply(vol))[None, None])[0, 0].numpy()
    return norm.invert(y)


def test_tiled_equals_whole_no_seams(model_path):
    _, noisy, _ = synthetic_pair((32, 48, 40), seed=1)
    vol = 10 + 4 * noisy
    whole = _whole(model_path, vol)
    # blocks of 24 blended over 8 voxels, each predicted with the default context (the network's
    # receptive radius): equal to float tolerance
    tiled = predict_array(model_path, vol, PredictConfig(tile_size=24, overlap=8, tta=1, precision="fp32"))
    assert np.allclose(tiled, whole, atol=1e-4 * np.abs(whole).max()), np.abs(tiled - whole).max()
    assert PredictConfig().context(ModelConfig(depth=4)) == 24 and PredictConfig(margin=5).context(ModelConfig()) == 5
    with pytest.raises(SCNetInputError, match="margin=-1"):
        PredictConfig(margin=-1).validate()
    # without context the blending still hides seams: small error, not concentrated at block borders
    nomargin = predict_array(model_path, vol, PredictConfig(tile_size=24, overlap=8, margin=0, tta=1))
    err = np.abs(nomargin - whole)
    assert np.sqrt(np.mean(err ** 2)) / whole.std() < 0.5
    # a single tile covering everything is exact
    one = predict_array(model_path, vol, PredictConfig(tile_size=64, overlap=8, tta=1, precision="fp32"))
    assert np.allclose(one, whole, atol=1e-4 * np.abs(whole).max())


def test_tta_is_the_mean_over_flipped_predictions(model_path):
    """tta=N averages the whole-volume prediction over the first N axis flips (each un-flipped)."""
    from scnet.predict import TTA_FLIPS
    _, noisy, _ = synthetic_pair((32, 32, 40), seed=2)
    vol = 10 + 4 * noisy
    flips = []
    for axes in TTA_FLIPS[:4]:
        v = np.flip(vol, axes) if axes else vol
        w = _whole(model_path, np.ascontiguousarray(v))
        flips.append(np.flip(w, axes) if axes else w)
    expected = np.mean(flips, axis=0)
    tiled = predict_array(model_path, vol, PredictConfig(tile_size=24, overlap=8, tta=4, precision="fp32"))
    assert np.allclose(tiled, expected, atol=1e-4 * np.abs(expected).max())
    assert not np.allclose(tiled, flips[0], atol=1e-3 * np.abs(expected).max())  # flips do change it
    with pytest.raises(SCNetInputError, match="tta=3"):
        predict_array(model_path, vol, PredictConfig(tta=3))


def test_streaming_order_and_weights_normalised(model_path):
    m, norm, _ = load_model(model_path)
    vol = np.random.default_rng(0).standard_normal((40, 20, 20)).astype(np.float32)
    seen = []
    predict_stream(m, norm, vol, lambda z0, z1, rows: seen.append((z0, z1, rows.shape)), PredictConfig(16, 4, tta=1))
    assert seen[0][0] == 0 and seen[-1][1] == 40
    assert all(a[1] == b[0] for a, b in zip(seen, seen[1:]))   # contiguous, in order
    assert max(s[2][0] for s in seen) <= 16                     # never more than one slab in memory
    w = _ramp(16, 4, True, True)  # cosine ramps of neighbouring tiles sum to 1 over the overlap
    assert w.min() > 0 and w.max() == 1 and np.allclose(w[:4] + w[:4][::-1], 1.0)


def test_odd_sizes_and_small_axes(model_path):
    vol = 10 + 4 * np.random.default_rng(1).standard_normal((7, 30, 19)).astype(np.float32)
    out = predict_array(model_path, vol, PredictConfig(tile_size=16, overlap=4, tta=1))
    assert out.shape == vol.shape and np.isfinite(out).all()
    # de-normalised to the input scale (model stats mean 10, std 4)
    assert abs(out.mean() - 10) < 8


def test_predict_file_geometry_and_validation(model_path, tmp_path):
    vol = 10 + 4 * np.random.default_rng(2).standard_normal((16, 24, 20)).astype(np.float32)
    src, dst = str(tmp_path / "in.mrc"), str(tmp_path / "out.mrc")
    write_volume(src, vol, voxel_size=3.5, origin=(1.0, 2.0, 3.0))
    predict_file(model_path, src, dst, PredictConfig(tile_size=16, overlap=4, tta=1))
    assert mrcfile.validate(dst)
    out, info = read_volume(dst)
    assert out.dtype == np.float32 and out.shape == vol.shape
    assert info.voxel_size == pytest.approx(3.5) and info.origin == pytest.approx((1.0, 2.0, 3.0))
    assert np.allclose(out, predict_array(model_path, vol, PredictConfig(tile_size=16, overlap=4, tta=1)), atol=1e-4)


def test_bad_model_file(tmp_path):
    p = tmp_path / "model.pt"
    p.write_bytes(b"not a model")
    with pytest.raises(SCNetInputError, match="model"):
        load_model(str(p))
    with pytest.raises(SCNetInputError, match="not found"):
        load_model(str(tmp_path / "none.pt"))


def test_default_tiling_is_balanced_aligned_and_exact(model_path):
    """The default tile (PredictConfig) over a long axis: the fewest tiles, evenly sized, steps on the
    network's grid, and the tiled prediction equals the whole-volume one to float tolerance."""
    from scnet.predict import _starts, balanced_tile
    d = PredictConfig()
    for n in (100, 400, 512, 1000):
        t = balanced_tile(n, d.tile_size, d.overlap, 8)
        starts = _starts(n, t, d.overlap)
        fewest = 1 if n <= d.tile_size else -(-(n - d.overlap) // (d.tile_size - d.overlap))
        assert t <= d.tile_size and len(starts) == fewest and starts[-1] + t == n, (n, t, starts)
        assert all(s % 8 == 0 for s in starts[:-1]) and (n <= d.tile_size or (t - d.overlap) % 8 == 0)
    _, noisy, _ = synthetic_pair((16, 16, 400), seed=3)
    vol = 10 + 4 * noisy
    tiled = predict_array(model_path, vol, PredictConfig(tta=1, precision="fp32"))
    whole = _whole(model_path, vol)
    assert np.allclose(tiled, whole, atol=1e-4 * np.abs(whole).max()), np.abs(tiled - whole).max()
    # at the default precision (bf16 where the CPU has it): within bf16 rounding of the fp32 whole volume
    default = predict_array(model_path, vol, PredictConfig(tta=1))
    rel = np.sqrt(np.mean((default - whole) ** 2)) / whole.std()
    assert rel < (0.02 if resolve_precision("cpu", d.precision) == "bf16" else 1e-4), rel
