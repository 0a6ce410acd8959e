"""The split mode (scnet.split, an explicit mode): even and odd rows along the tilt axis of ONE tomogram.
Which pairs stay noise-independent, and the row check that warns where they do not: tests/test_rows.py."""
import numpy as np
import pytest

from scnet.errors import SCNetInputError
from scnet.split import row_views, split_rows


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
    # the even rows' output comes from the even rows alone, the odd rows' from the odd rows; the two are
    # interleaved and averaged along Y (each set resampled onto the other's rows: no even/odd texture)
    from scnet.predict import load_model, predict_stream
    from scnet.rows import ROW_AVERAGE, filter_rows
    model, norm, _ = load_model(path)
    merged = np.empty_like(out)
    for rows_of in (slice(0, None, 2), slice(1, None, 2)):
        def sink(z0, z1, rows, rows_of=rows_of):
            merged[z0:z1, rows_of] = norm.invert(rows)
        predict_stream(model, norm, noisy[:, rows_of], sink, pcfg)
    np.testing.assert_allclose(out, filter_rows(merged, ROW_AVERAGE), rtol=1e-5, atol=1e-5)


def test_split_mode_warns_where_the_rows_share_noise():
    """The split mode's pair is independent only on rows never mixed: on a tomogram whose rows were
    interpolated once (row check: correlation ~0.25 at lag 1) it says so and points to the slab mode; on
    white rows it does not."""
    from scnet.config import TrainConfig
    from scnet.dataset import split_inputs
    from scnet.recon import ReconConfig, reconstruct
    from scnet.rows import row_check
    from scnet.simulate import rotated_and_back
    ang = np.arange(-60.0, 61.0, 3.0)
    rng = np.random.default_rng(4)
    cfg = TrainConfig(patch_size=16)
    for mixed in (True, False):
        tilts = (rotated_and_back(np.zeros((ang.size, 48, 48), np.float32), 1.0, 4.3, 1, rng) if mixed
                 else rng.standard_normal((ang.size, 48, 48)).astype(np.float32))
        v = reconstruct(tilts, ang, ReconConfig(thickness=24, backend="builtin"))
        said = []
        noisy, prior, (even, odd) = split_inputs(v, v, cfg, row_check(v), said.append)
        assert even.shape == odd.shape == noisy.shape == (24, 24, 48)
        warned = [m for m in said if m.startswith("WARNING")]
        assert bool(warned) == mixed, said
        if mixed:
            assert "share noise" in warned[0] and "slab mode" in warned[0]
