"""The halves mode: even->odd / odd->even (Noise2Noise) with the paper's prior constraints."""
import json
import os

import numpy as np
import pytest
import torch

from scnet.data import synthetic_pair
from scnet.errors import SCNetInputError
from scnet.losses import LossWeights
from scnet.train import TrainConfig, _step_loss, train_model


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
    assert TrainConfig().resolved_mode(False) == "single"
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
    assert json.load(open(os.path.join(tmp_path, "h", "training_summary.json")))["mode"] == "halves"
    with pytest.raises(SCNetInputError, match="odd half"):
        train_model(noisy, prior, cfg, str(tmp_path / "x"), progress=False, halves=(even, odd[:-1]))
