"""Training that ends when it has converged: plateau, floor, ceiling, time budget, resume."""
import json
import os

import numpy as np
import pytest
import torch

from scnet.data import synthetic_pair
from scnet.errors import SCNetInputError
from scnet.config import TrainConfig
from scnet.stopping import STOP_REASONS, Stopper
from scnet.train import train_model


def run_stopper(losses, **kw):
    """Feed one validation loss per epoch of 10 iterations; return (iteration, reason) at the stop."""
    cfg = TrainConfig(iterations_per_epoch=10, **kw)
    st = Stopper(cfg)
    it = 0
    for v in losses:
        it += 10
        st.update(v, it)
        r = st.reason(it, 0.0, validated=True)
        if r:
            return it, r, st
    return it, None, st


def test_stops_on_a_plateau_after_patience():
    losses = [1.0, 0.8, 0.6, 0.5, 0.45] + [0.45] * 20
    it, reason, st = run_stopper(losses, min_iterations=0, max_iterations=10_000, patience=3, min_delta=0.01)
    assert reason == "plateau"
    # the smoothed loss still improves for a few validations after the raw one flattens, then 3 without
    assert st.state["bad"] == 3 and it == st.state["best_iteration"] + 30
    assert it < 10 * len(losses)


def test_keeps_going_while_it_improves():
    losses = list(np.geomspace(1.0, 0.1, 30))
    it, reason, _ = run_stopper(losses, min_iterations=0, max_iterations=10_000, patience=3, min_delta=0.01)
    assert reason is None and it == 300


def test_floor_and_ceiling():
    flat = [1.0] * 100
    it, reason, _ = run_stopper(flat, min_iterations=250, max_iterations=10_000, patience=2)
    assert (it, reason) == (250, "plateau")          # flat from the start: the floor decides
    it, reason, _ = run_stopper(list(np.geomspace(1, 0.01, 100)), min_iterations=0, max_iterations=120)
    assert (it, reason) == (120, "max_iterations")


def test_time_budget_and_fixed_count():
    st = Stopper(TrainConfig(max_minutes=2.0))
    assert st.reason(5, 1.9, validated=False) is None
    assert st.reason(5, 2.0, validated=False) == "max_minutes"
    st = Stopper(TrainConfig(epochs=3, iterations_per_epoch=5), total_fixed=15)
    assert st.reason(14, 0, True) is None and st.reason(15, 0, True) == "epochs"
    assert set(STOP_REASONS) == {"plateau", "max_iterations", "max_minutes", "epochs"}


def test_bad_stopping_options():
    for kw, name in [({"min_iterations": 50, "max_iterations": 10}, "min_iterations"),
                     ({"max_minutes": -1}, "max_minutes"), ({"patience": 0}, "patience"),
                     ({"epochs": -1}, "epochs"), ({"min_delta": 1.5}, "min_delta"), ({"mode": "n2n"}, "mode")]:
        with pytest.raises(SCNetInputError, match=name):
            TrainConfig(**kw).validate()


@pytest.fixture(scope="module")
def pair():
    return synthetic_pair((20, 24, 24), noise=1.0, seed=3)


def small(**kw):
    d = dict(patch_size=16, batch_size=2, iterations_per_epoch=3, base_width=2, val_fraction=0.2,
             min_iterations=0, max_iterations=12)
    d.update(kw)
    return TrainConfig(**d)


def summary(d):
    return json.load(open(os.path.join(d, "training_summary.json")))


def test_train_model_stops_at_the_ceiling_or_the_budget_and_says_why(pair, tmp_path, capsys):
    _, noisy, prior = pair
    train_model(noisy, prior, small(min_delta=0.0, patience=100), str(tmp_path / "a"), progress=True)
    s = summary(tmp_path / "a")
    assert s["stop_reason"] == "max_iterations" and s["iterations"] == 12
    assert "ceiling of 12 iterations" in capsys.readouterr().err
    train_model(noisy, prior, small(max_minutes=1e-6), str(tmp_path / "b"), progress=False)
    s = summary(tmp_path / "b")
    assert s["stop_reason"] == "max_minutes" and s["iterations"] == 1
    assert os.path.exists(tmp_path / "b" / "model.pt")


def test_model_keeps_the_best_validated_weights(pair, tmp_path, monkeypatch):
    """The saved weights are those of the validation with the best smoothed loss, not the last."""
    import scnet.train as T
    _, noisy, prior = pair
    fake = iter([3.0, 1.0, 2.0, 2.5])                    # best at the 2nd validation (iteration 6)
    monkeypatch.setattr(T, "validation_loss", lambda *a, **k: next(fake))
    seen = {}

    def on_val(model, it, v):
        seen[it] = {k: t.detach().clone() for k, t in model.state_dict().items()}
    path = train_model(noisy, prior, small(min_delta=0.0, patience=100), str(tmp_path / "c"), progress=False,
                       on_validation=on_val)
    s = summary(tmp_path / "c")
    assert s["best_iteration"] == 6
    saved = torch.load(path, weights_only=False)["state_dict"]
    assert all(torch.equal(saved[k], seen[6][k]) for k in saved)
    assert not all(torch.equal(saved[k], seen[12][k]) for k in saved)


def test_resume_of_an_automatic_run_reaches_the_uninterrupted_state(pair, tmp_path):
    _, noisy, prior = pair
    full = train_model(noisy, prior, small(), str(tmp_path / "full"), progress=False)
    part = str(tmp_path / "part")
    train_model(noisy, prior, small(max_iterations=6), part, progress=False)
    resumed = train_model(noisy, prior, small(), part, resume=True, progress=False)
    sf = torch.load(full, weights_only=False)["state_dict"]
    sr = torch.load(resumed, weights_only=False)["state_dict"]
    assert all(torch.equal(sf[k], sr[k]) for k in sf)
    assert summary(part)["iterations"] == summary(tmp_path / "full")["iterations"]
