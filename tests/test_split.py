"""The split mode's pairs (scnet.split): even and odd rows along the tilt axis of ONE tomogram."""
import numpy as np
import pytest

from scnet.errors import SCNetInputError
from scnet.recon import ReconConfig, reconstruct
from scnet.split import part_correlation, row_check, row_views, split_rows


def _noise_tomogram(correlated_pixels=False, seed=0):
    """The reconstruction of pure noise tilt images (-60..60 in 3 degree steps): ray-correlated noise."""
    rng = np.random.default_rng(seed)
    angles = np.arange(-60.0, 61.0, 3.0)
    stack = rng.standard_normal((angles.size, 48, 64)).astype(np.float32)
    if correlated_pixels:  # a detector that spreads each pixel over its row neighbours too
        stack = stack + np.roll(stack, 1, axis=1)
    return reconstruct(stack, angles, ReconConfig(thickness=32))


def test_the_rows_of_a_reconstruction_of_white_noise_are_independent_the_other_axes_are_not():
    noise = _noise_tomogram()
    assert abs(part_correlation(noise, axis=1)) < 0.02       # Y: each slice from its own image rows (SE ~0.005)
    assert abs(part_correlation(noise, axis=0)) > 0.3        # Z: along the rays
    assert abs(part_correlation(noise, axis=2)) > 0.04       # X: the ramp filter and the slanted rays


def test_rows_mixed_before_the_reconstruction_are_detected():
    """Pixels correlated between rows (detector, interpolation) break the independence: measured, not assumed."""
    assert part_correlation(_noise_tomogram(correlated_pixels=True), axis=1) > 0.3


def test_row_check_on_the_tomogram_itself():
    """On a phantom's reconstruction with white noise on the tilts the rows pass; with rows mixed before the
    reconstruction (correlated detector pixels) they fail: what `scnet train --mode split` warns about."""
    rng = np.random.default_rng(4)
    angles = np.arange(-60.0, 61.0, 3.0)
    from scnet.phantom import make_phantom
    from scnet.recon import reproject
    ph = make_phantom((32, 64, 64), seed=0)
    ph = ph[0] if isinstance(ph, tuple) else ph
    p = reproject(ph, angles)
    p = (p - p.min()) / (p.max() - p.min()) * 255
    noise = 15 * rng.standard_normal(p.shape)
    good = row_check(reconstruct((p + noise).astype(np.float32), angles, ReconConfig(thickness=32)))
    mixed = row_check(reconstruct((p + noise + np.roll(noise, 1, axis=1)).astype(np.float32), angles,
                                  ReconConfig(thickness=32)))
    assert good["ok"] and good["flatness"] > 0.8, good
    assert not mixed["ok"] and mixed["flatness"] < 0.3, mixed
    # auto without halves: split where the rows pass, the paper's single mode where they do not
    from scnet.config import TrainConfig
    from scnet.split import resolve_mode
    rec = reconstruct((p + noise).astype(np.float32), angles, ReconConfig(thickness=32))
    rec_mixed = reconstruct((p + noise + np.roll(noise, 1, axis=1)).astype(np.float32), angles, ReconConfig(thickness=32))
    assert resolve_mode(TrainConfig(), rec, False)[0] == "split"
    assert resolve_mode(TrainConfig(), rec_mixed, False)[0] == "single"
    assert resolve_mode(TrainConfig(), rec_mixed, True)[0] == "halves"
    assert resolve_mode(TrainConfig(mode="split"), rec_mixed, False)[0] == "split"  # asked for: it warns


def test_split_and_merge_round_trip():
    v = np.random.default_rng(1).standard_normal((5, 9, 7)).astype(np.float32)
    even, odd = split_rows(v)
    assert even.shape == odd.shape == (5, 4, 7)
    np.testing.assert_array_equal(even, v[:, 0:8:2])
    ev, od = row_views(v)   # every row, also the last of an odd count: written back, they are the volume
    out = np.empty_like(v)
    out[:, 0::2], out[:, 1::2] = ev, od
    np.testing.assert_array_equal(out, v)
    with pytest.raises(SCNetInputError, match="2 rows"):
        split_rows(v[:, :1])


def test_split_mode_trains_on_one_tomogram_and_predicts_every_row(tmp_path):
    """mode split: halves steps on the tomogram's even/odd rows; the model records 'split'; predict_array
    and predict_file (streamed, memory-mapped) give the same output, every row of it predicted."""
    import json
    import os
    import torch
    from scnet.config import PredictConfig, TrainConfig
    from scnet.data import synthetic_pair
    from scnet.io import read_volume, write_volume
    from scnet.predict import predict_array, predict_file
    from scnet.train import train_model
    _, noisy, prior = synthetic_pair((20, 33, 24), noise=1.0, seed=2)   # an odd number of rows
    cfg = TrainConfig(mode="split", patch_size=16, iterations_per_epoch=2, base_width=2, val_fraction=0.2,
                      min_iterations=0, max_iterations=4)
    path = train_model(noisy, prior, cfg, str(tmp_path / "s"), progress=False)
    assert torch.load(path, weights_only=True)["mode"] == "split"
    summary = json.load(open(os.path.join(tmp_path, "s", "training_summary.json")))
    assert summary["mode"] == "split" and summary["prior"] == "given"
    pcfg = PredictConfig(tile_size=16, overlap=4, tta=1)
    out = predict_array(path, noisy, pcfg)
    assert out.shape == noisy.shape and np.isfinite(out).all()
    write_volume(str(tmp_path / "n.mrc"), noisy, voxel_size=3.0)
    predict_file(path, str(tmp_path / "n.mrc"), str(tmp_path / "o.mrc"), pcfg)
    np.testing.assert_allclose(read_volume(str(tmp_path / "o.mrc"))[0], out, rtol=1e-5, atol=1e-5)
    # the even rows' output comes from the even rows alone: changing an odd row leaves it untouched
    other = noisy.copy()
    other[:, 1::2] += 5.0
    np.testing.assert_allclose(predict_array(path, other, pcfg)[:, 0::2], out[:, 0::2], rtol=1e-5, atol=1e-5)


def test_split_mode_needs_no_halves_and_accepts_the_wedge():
    from scnet.config import TrainConfig
    assert TrainConfig(mode="split").resolved_mode(False) == "split"
    assert TrainConfig(mode="split", wedge=True, tilt_range="-60,60").resolved_mode(False) == "split"
    assert TrainConfig(mode="split").weights("split").smooth == 0   # the halves weights: no prior needed
