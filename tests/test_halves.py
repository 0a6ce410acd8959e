"""The halves mode: even->odd / odd->even (Noise2Noise) with the paper's prior constraints."""
import json
import os

import numpy as np
import pytest
import torch

from scnet.data import synthetic_pair
from scnet.errors import SCNetInputError
from scnet.losses import LossWeights
from scnet.config import TrainConfig
from scnet.steps import step_loss as _step_loss
from scnet.train import train_model


def test_target_is_the_other_half_never_the_input():
    """With the identity as network, L_rec is |even - odd|^2: it would be 0 if the target were the input."""
    g = torch.Generator().manual_seed(0)
    e = torch.randn(4, 1, 8, 8, 8, generator=g)
    o = torch.randn(4, 1, 8, 8, 8, generator=g)
    p = torch.zeros_like(e)
    terms = _step_loss(lambda x: x, (None, p, e, o), "halves", TrainConfig(), LossWeights(), g)
    assert float(terms["L_rec"]) == pytest.approx(float(((e - o) ** 2).mean()), rel=1e-5)
    # and the network sees both directions within a run
    seen = set()
    for _ in range(20):
        def net(x):
            seen.add(bool(torch.equal(x[0], e[0])))
            return x
        _step_loss(net, (None, p, e, o), "halves", TrainConfig(), LossWeights(), g)
    assert seen == {True, False}


def test_auto_mode_uses_the_halves_when_given_and_halves_needs_them():
    assert TrainConfig().resolved_mode(True) == "halves"
    # one tomogram: by the row check -- rows sharing noise -> the row-blind slab network, else the split mode
    shared = {"rho": [0.25, 0.0, 0.0], "se": [0.01] * 3, "rho1": 0.25, "rho2": 0.0, "gap": 1, "ok": False}
    unshared = {"rho": [0.09, 0.0, 0.0], "se": [0.01] * 3, "rho1": 0.09, "rho2": 0.0, "gap": 1, "ok": False}
    assert TrainConfig().resolved_mode(False, shared) == "slab"
    assert TrainConfig().resolved_mode(False, unshared) == "split"     # the real series' odd half after bin 2
    assert TrainConfig(row_gap=1).resolved_mode(False, unshared) == "slab"   # a slab option given: that mode
    with pytest.raises(ValueError, match="row check"):
        TrainConfig().resolved_mode(False)
    assert TrainConfig(mode="single").resolved_mode(True) == "single"
    with pytest.raises(SCNetInputError, match="even and odd"):
        TrainConfig(mode="halves").resolved_mode(False)


def test_train_in_halves_mode_and_shape_check(tmp_path):
    rng = np.random.default_rng(0)
    clean, noisy, prior = synthetic_pair((20, 24, 24), noise=1.0, seed=1)
    n = rng.standard_normal((2,) + clean.shape).astype(np.float32)
    even, odd = clean + 1.4 * n[0], clean + 1.4 * n[1]
    cfg = TrainConfig(patch_size=16, iterations_per_epoch=3, base_width=2, val_fraction=0.2, min_iterations=0,
                      max_iterations=6)
    path = train_model(noisy, prior, cfg, str(tmp_path / "h"), progress=False, halves=(even, odd))
    assert torch.load(path, weights_only=False)["mode"] == "halves"
    summary = json.load(open(os.path.join(tmp_path, "h", "training_summary.json")))
    assert summary["mode"] == "halves"
    assert summary["loss_weights"] == {"L_rec": 0.6, "L_smooth": 0.0, "L_exp": 0.0, "L_reg": 0.0}  # measured defaults
    with pytest.raises(SCNetInputError, match="odd half"):
        train_model(noisy, prior, cfg, str(tmp_path / "x"), progress=False, halves=(even, odd[:-1]))


def test_halves_model_predicts_the_mean_of_its_half_predictions(tmp_path):
    """`scnet predict --halves E O` with a halves-mode model = mean(f(E), f(O)), streamed; the same call
    with a single-mode model ignores the halves."""
    import subprocess
    import sys

    import mrcfile

    from scnet.io import write_volume
    from scnet.config import PredictConfig
    from scnet.predict import predict_array, predict_halves_array
    clean, _, prior = synthetic_pair((20, 24, 24), seed=1)
    rng = np.random.default_rng(0)
    e = (clean + 1.4 * rng.standard_normal(clean.shape)).astype(np.float32)
    o = (clean + 1.4 * rng.standard_normal(clean.shape)).astype(np.float32)
    n = (e + o) / 2
    cfg = TrainConfig(patch_size=16, iterations_per_epoch=3, base_width=2, val_fraction=0.2, min_iterations=0,
                      max_iterations=3)
    mh = train_model(n, prior, cfg, str(tmp_path / "h"), progress=False, halves=(e, o))
    ms = train_model(n, prior, TrainConfig(**dict(cfg.to_dict(), mode="single")), str(tmp_path / "s"), progress=False)
    for name, v in (("n", n), ("e", e), ("o", o)):
        write_volume(str(tmp_path / f"{name}.mrc"), v)
    pc = PredictConfig(tta=2)
    for model, expect in ((mh, predict_halves_array(mh, (e, o), pc)), (ms, predict_array(ms, n, pc))):
        out = str(tmp_path / f"out_{os.path.basename(os.path.dirname(model))}.mrc")
        r = subprocess.run([sys.executable, "-m", "scnet", "predict", "--model", model, "--input",
                            str(tmp_path / "n.mrc"), "--output", out, "--halves", str(tmp_path / "e.mrc"),
                            str(tmp_path / "o.mrc"), "--tta", "2", "--device", "cpu", "--quiet"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        np.testing.assert_allclose(mrcfile.read(out), expect, rtol=1e-5, atol=1e-5)
    assert not np.allclose(predict_halves_array(mh, (e, o), pc), predict_array(mh, n, pc), atol=1e-3)


def test_halves_mode_default_weights_drop_the_prior_terms_single_keeps_the_paper():
    assert TrainConfig().weights("halves") == LossWeights(0.6, 0.0, 0.0, 0.0)
    assert TrainConfig().weights("single") == LossWeights(0.6, 0.1, 0.2, 0.01)
    assert TrainConfig(lambda_smooth=0.1).weights("halves").smooth == 0.1   # the paper's terms one option away
