"""The slab mode: a row-blind network (no output row sees its own rows), its training on one tomogram,
its tiled prediction, and the mode choice (auto without halves -> split on unshared rows, slab on shared ones;
the gap from the row check)."""
import json
import os

import numpy as np
import pytest
import torch

from scnet.config import PredictConfig, TrainConfig
from scnet.errors import SCNetInputError
from scnet.model import ModelConfig, SCNet


def _rows_seen(model, n, row, shape_zx=8):
    x = torch.randn(1, 1, shape_zx, n, shape_zx, requires_grad=True)
    model(x)[0, 0, shape_zx // 2, row, shape_zx // 2].backward()
    g = x.grad[0, 0].abs().sum((0, 2))
    return (g > 0).nonzero().flatten() - row


@pytest.mark.parametrize("gap", [0, 1, 2])
def test_no_output_row_sees_the_rows_within_its_gap(gap):
    """J-invariance along Y, measured from gradients for rows at the borders and inside: the output row y
    depends on no input row y-gap..y+gap (in eval mode; in training, BatchNorm's batch statistics add a
    1/N coupling), and on rows on both sides beyond them."""
    torch.manual_seed(0)
    m = SCNet(ModelConfig(base_width=2, depth=3, row_gap=gap)).eval()
    for row in (0, 1, 17, 40, 47):
        seen = _rows_seen(m, 48, row)
        assert seen.abs().min() == gap + 1, (row, seen)
        if gap < row < 47 - gap:          # rows exist on both sides beyond the gap
            assert seen.min() < 0 < seen.max()


@pytest.mark.parametrize("depth,gap", [(2, 0), (3, 1), (4, 2)])
def test_row_blind_receptive_radii_are_the_measured_support(depth, gap):
    """receptive_radii (the tiling context per axis) == the farthest input row / column that moves an output
    voxel, over every phase of the network's down-sampling grid."""
    cfg = ModelConfig(base_width=2, depth=depth, row_gap=gap)
    torch.manual_seed(0)
    m = SCNet(cfg).eval()
    rz, ry, rx = cfg.receptive_radii()
    assert rz == rx == ModelConfig(depth=depth).receptive_radius() and cfg.receptive_radius() == ry
    n = 2 * ry + 4 * cfg.multiple()
    n += -n % cfg.multiple()
    reach = max(int(_rows_seen(m, n, n // 2 + off).abs().max()) for off in range(cfg.multiple()))
    assert reach == ry


def test_row_blind_network_needs_the_fast_upsampling_block():
    with pytest.raises(ValueError, match="row-blind"):
        SCNet(ModelConfig(row_gap=1, upsampling_block=False))


def _train_slab(tmp_path, noisy, **kw):
    from scnet.train import train_model
    cfg = TrainConfig(mode=kw.pop("mode", "slab"), patch_size=16, iterations_per_epoch=2, base_width=2, depth=2,
                      val_fraction=0.2, min_iterations=0, max_iterations=4, **kw)
    return train_model(noisy, noisy, cfg, str(tmp_path), progress=False)


def test_slab_mode_trains_on_one_tomogram_and_predicts_every_row_alike(tmp_path):
    """The slab mode on white rows (gap 0, not whitened); model.pt records it; the tiled prediction (zero-padded, per-axis context) equals the whole-volume one, averaged along Y."""
    from scnet.io import read_volume, write_volume
    from scnet.predict import load_model, predict_array, predict_file
    from scnet.rows import ROW_AVERAGE, filter_rows
    rng = np.random.default_rng(3)
    noisy = rng.standard_normal((32, 48, 40)).astype(np.float32)     # white rows: gap 0
    path = _train_slab(tmp_path / "a", noisy)
    ck = torch.load(path, weights_only=True)
    assert ck["mode"] == "slab" and ck["model_config"]["row_gap"] == 0
    summary = json.load(open(os.path.join(tmp_path, "a", "training_summary.json")))
    assert summary["mode"] == "slab"
    assert "row_noise" not in ck                                    # independent rows: not whitened
    model, norm, _ = load_model(path)
    with torch.no_grad():
        net = norm.invert(model(torch.from_numpy(norm.apply(noisy[:, :32, :32]))[None, None])[0, 0].numpy())
    whole = filter_rows(net, ROW_AVERAGE)                           # the output averaged along Y
    tiled = predict_array(path, noisy[:, :32, :32], PredictConfig(tile_size=16, overlap=4, tta=1, precision="fp32"))
    np.testing.assert_allclose(tiled, whole, atol=1e-4 * np.abs(whole).max())
    out = predict_array(path, noisy, PredictConfig(tile_size=16, overlap=4, tta=2, precision="fp32"))
    write_volume(str(tmp_path / "n.mrc"), noisy, voxel_size=3.0)
    predict_file(path, str(tmp_path / "n.mrc"), str(tmp_path / "o.mrc"), PredictConfig(tile_size=16, overlap=4,
                                                                                       tta=2, precision="fp32"))
    np.testing.assert_allclose(read_volume(str(tmp_path / "o.mrc"))[0], out, rtol=1e-5, atol=1e-5)


def _mixed_noise(shape=(48, 48), thickness=24, seed=1):
    from scnet.recon import ReconConfig, reconstruct
    from scnet.simulate import rotated_and_back
    rng = np.random.default_rng(seed)
    ang = np.arange(-60.0, 61.0, 3.0)
    return reconstruct(rotated_and_back(np.zeros((ang.size,) + shape, np.float32), 1.0, 4.3, 1, rng), ang,
                       ReconConfig(thickness=thickness, backend="builtin"))


def test_mixed_rows_are_whitened_or_hidden_as_asked(tmp_path, caplog):
    """Rows that share noise (interpolated tilts): auto -> slab, measured -> whitened along Y and gap 0; row_gap given ->
    that gap, no whitening (a gap below the measured one warns); halves and explicit modes unchanged."""
    from scnet.rows import resolve_mode
    mixed = _mixed_noise()
    mode, check, gap, whiten = resolve_mode(TrainConfig(), mixed, False)
    assert (mode, gap) == ("slab", 0) and check["gap"] >= 1 and 0.1 < whiten[0] < 0.35   # 0.25 (a small crop)
    assert resolve_mode(TrainConfig(row_gap=2), mixed, False)[2:] == (2, None)
    assert resolve_mode(TrainConfig(mode="slab"), mixed, False)[0::2] == ("slab", 0)
    assert resolve_mode(TrainConfig(), np.zeros((4, 8, 8)), False)[2:] == (1, None)   # too small to measure
    assert resolve_mode(TrainConfig(), mixed, True)[0] == "halves"
    assert resolve_mode(TrainConfig(mode="split"), mixed, False)[0] == "split"
    assert resolve_mode(TrainConfig(mode="single"), mixed, False)[0::2] == ("single", None)
    import logging
    with caplog.at_level(logging.WARNING):
        path = _train_slab(tmp_path / "b", mixed, row_gap=0)
    assert torch.load(path, weights_only=True)["model_config"]["row_gap"] == 0
    assert "row_noise" not in torch.load(path, weights_only=True)
    assert "hides fewer rows than share a row's noise" in caplog.text
    with pytest.raises(SCNetInputError, match="wedge"):
        TrainConfig(mode="slab", wedge=True, tilt_range="-60,60").resolved_mode(False)
    with pytest.raises(SCNetInputError, match="wedge"):
        TrainConfig(wedge=True, tilt_range="-60,60").resolved_mode(False, {"rho": []})
    assert TrainConfig(mode="slab").weights("slab").smooth == 0    # the halves weights: no prior needed


def test_a_whitened_model_whitens_its_input_and_colours_its_output_tile_by_tile(tmp_path):
    """model.pt records the rows' noise correlations; prediction = average(colour(net(whiten(volume)))) along Y,
    the same tiled (each window whitened with extra rows) as whole, and from a file."""
    from scnet.io import read_volume, write_volume
    from scnet.predict import load_model, predict_array, predict_file
    from scnet.rows import filter_rows, output_taps, row_filter_taps
    mixed = _mixed_noise((64, 40), thickness=16)
    path = _train_slab(tmp_path / "w", mixed)
    ck = torch.load(path, weights_only=True)
    rho = ck["row_noise"]["rho"]
    assert ck["model_config"]["row_gap"] == 0 and 0.2 < rho[0] < 0.3
    model, norm, _ = load_model(path)
    vol = mixed[:, :, :32]
    with torch.no_grad():
        net = model(torch.from_numpy(norm.apply(filter_rows(vol, row_filter_taps(rho, -0.5))))[None, None])
    whole = filter_rows(norm.invert(net[0, 0].numpy()), output_taps(rho))   # coloured back, averaged along Y
    pcfg = PredictConfig(tile_size=16, overlap=4, tta=1, precision="fp32")
    tiled = predict_array(path, vol, pcfg)
    np.testing.assert_allclose(tiled, whole, atol=1e-4 * np.abs(whole).max())
    write_volume(str(tmp_path / "n.mrc"), vol, voxel_size=3.0)
    predict_file(path, str(tmp_path / "n.mrc"), str(tmp_path / "o.mrc"), pcfg)
    np.testing.assert_allclose(read_volume(str(tmp_path / "o.mrc"))[0], tiled, rtol=1e-5, atol=1e-5)
