"""Training (§5.1): config contract, reproducibility, checkpoint/resume, loss log, quality sanity."""
import csv
import json
import os

import numpy as np
import pytest
import torch

from scnet.data import synthetic_pair
from scnet.errors import SCNetInputError
from scnet.denoise import denoise_array
from scnet.config import TrainConfig
from scnet.device import resolve_device
from scnet.train import LOG_COLUMNS, train_model


def tiny_cfg(**kw):
    d = dict(patch_size=16, batch_size=2, epochs=1, iterations_per_epoch=3, base_width=2, val_fraction=0.2)
    d.update(kw)
    return TrainConfig(**d)


@pytest.fixture(scope="module")
def pair():
    return synthetic_pair((20, 24, 24), noise=1.0, seed=3)


def test_config_json_roundtrip_and_unknown_key(tmp_path):
    cfg = TrainConfig(patch_size=32, lambda_exp=0.5, use_expectancy=False)
    p = str(tmp_path / "c.json")
    cfg.to_json(p)
    assert set(json.load(open(p))) >= {"patch_size", "batch_size", "epochs", "iterations_per_epoch", "lr", "beta1",
                                      "beta2", "blindspot_size", "blindspot_ratio", "use_expectancy",
                                      "lambda_rec", "lambda_smooth", "lambda_exp", "lambda_reg",
                                      "expectancy_kernel", "sobel_3d", "upsampling_block", "base_width",
                                      "val_fraction", "seed", "device"}
    assert TrainConfig.from_json(p) == cfg
    json.dump({"patch_size": 32, "learning_rate": 1}, open(p, "w"))
    with pytest.raises(SCNetInputError, match="learning_rate"):
        TrainConfig.from_json(p)
    json.dump({"patch_size": "big"}, open(p, "w"))
    with pytest.raises(SCNetInputError, match="patch_size"):
        TrainConfig.from_json(p)


def test_default_weights_follow_paper():
    w = TrainConfig().weights()
    assert (w.rec, w.smooth, w.exp, w.reg) == (0.6, 0.1, 0.2, 0.01)
    w = TrainConfig(use_expectancy=False).weights()
    assert (w.rec, w.smooth, w.exp, w.reg) == (0.8, 0.1, 0.0, 0.01)
    assert TrainConfig(lambda_rec=1.0).weights().rec == 1.0
    c = TrainConfig()
    assert (c.lr, c.beta1, c.beta2, c.blindspot_size, c.blindspot_ratio) == (4e-4, 0.5, 0.999, 3, 0.1)
    # paper §5.1: "the ratio of replaced voxels in a volumetric patch was set to 10%"
    assert c.blindspot_ratio_of == "replaced"
    assert c.centre_ratio() == pytest.approx(-np.log(0.9) / 27)
    assert TrainConfig(blindspot_ratio_of="centres").centre_ratio() == 0.1


@pytest.mark.parametrize("ratio_of", ["replaced", "centres"])
def test_training_draws_the_configured_blind_spot(ratio_of, tmp_path, monkeypatch):
    """train_model hands blindspot_replace the centre ratio that gives 10% replaced (or 10% centres)."""
    import scnet.steps as train_mod  # where the training step draws its blind spot
    seen = []
    real = train_mod.blindspot_replace

    def spy(x, ratio, size, **kw):
        x_bs, mask = real(x, ratio, size, **kw)
        seen.append((ratio, mask.mean().item()))
        return x_bs, mask
    monkeypatch.setattr(train_mod, "blindspot_replace", spy)
    _, noisy, prior = synthetic_pair((24, 24, 24), seed=0)
    cfg = TrainConfig(patch_size=16, epochs=1, iterations_per_epoch=2, base_width=2, val_fraction=0.0,
                      blindspot_ratio_of=ratio_of, mode="single")
    train_model(noisy, prior, cfg, str(tmp_path / "run"), progress=False)
    assert [r for r, _ in seen] == [cfg.centre_ratio()] * 2
    fractions = [f for _, f in seen]
    if ratio_of == "replaced":
        assert all(0.05 < f < 0.15 for f in fractions)
    else:
        assert all(f > 0.85 for f in fractions)


def test_bad_options_and_device():
    with pytest.raises(SCNetInputError, match="patch_size"):
        TrainConfig(patch_size=18).validate()
    with pytest.raises(SCNetInputError, match="blindspot_ratio"):
        TrainConfig(blindspot_ratio=0).validate()
    with pytest.raises(SCNetInputError, match="blindspot_ratio"):
        TrainConfig(blindspot_ratio=1.0).validate()  # replacing every voxel leaves no context
    TrainConfig(blindspot_ratio=1.0, blindspot_ratio_of="centres").validate()
    with pytest.raises(SCNetInputError, match="blindspot_ratio_of"):
        TrainConfig(blindspot_ratio_of="blocks").validate()
    if not torch.cuda.is_available():
        with pytest.raises(SCNetInputError, match="CUDA"):
            resolve_device("cuda:0")
    with pytest.raises(SCNetInputError):
        resolve_device("tpu")


def _state(path):
    return torch.load(path, weights_only=False)["state_dict"]


def test_same_seed_same_weights_and_outputs(pair, tmp_path):
    _, noisy, prior = pair
    a = train_model(noisy, prior, tiny_cfg(), str(tmp_path / "a"), progress=False)
    b = train_model(noisy, prior, tiny_cfg(), str(tmp_path / "b"), progress=False)
    c = train_model(noisy, prior, tiny_cfg(seed=1), str(tmp_path / "c"), progress=False)
    sa, sb, sc = _state(a), _state(b), _state(c)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    for f in ("model.pt", "checkpoint.pt", "loss_log.csv", "train_config.json"):
        assert os.path.exists(tmp_path / "a" / f)
    ck = torch.load(a, weights_only=False)
    assert set(ck["normalisation"]) >= {"mean", "std", "prior_a", "prior_b"}
    assert ck["train_config"]["seed"] == 0


def test_resume_reaches_the_uninterrupted_state(pair, tmp_path):
    _, noisy, prior = pair
    full = train_model(noisy, prior, tiny_cfg(epochs=2), str(tmp_path / "full"), progress=False)
    part = str(tmp_path / "part")
    train_model(noisy, prior, tiny_cfg(epochs=1), part, progress=False)
    resumed = train_model(noisy, prior, tiny_cfg(epochs=2), part, resume=True, progress=False)
    sf, sr = _state(full), _state(resumed)
    assert all(torch.equal(sf[k], sr[k]) for k in sf)
    rows = list(csv.DictReader(open(os.path.join(part, "loss_log.csv"))))
    assert [int(r["iteration"]) for r in rows] == list(range(1, 7))
    assert [int(r["epoch"]) for r in rows] == [1, 1, 1, 2, 2, 2]
    full_rows = list(csv.DictReader(open(tmp_path / "full" / "loss_log.csv")))
    assert [r["loss"] for r in rows] == [r["loss"] for r in full_rows]


def test_loss_log_columns_and_progress(pair, tmp_path, capsys):
    _, noisy, prior = pair
    train_model(noisy, prior, tiny_cfg(), str(tmp_path / "r"), progress=True)
    err = capsys.readouterr().err
    assert "ETA" in err and "epoch 1/1" in err
    rows = list(csv.reader(open(tmp_path / "r" / "loss_log.csv")))
    assert rows[0] == LOG_COLUMNS
    last = dict(zip(rows[0], rows[-1]))
    assert float(last["val_loss"]) > 0 and float(last["L_rec"]) > 0 and float(last["seconds"]) >= 0
    assert all(np.isfinite(float(last[k])) for k in ("loss", "L_rec", "L_smooth", "L_exp", "L_reg"))
    # the summary names each logged term's weight (eq. 8), so a viewer can tell the terms not trained on
    summary = json.load(open(tmp_path / "r" / "training_summary.json"))
    weights, w = summary["loss_weights"], tiny_cfg().weights(summary["mode"])
    assert weights == {"L_rec": w.rec, "L_smooth": w.smooth, "L_exp": w.exp, "L_reg": w.reg}
    assert set(weights) == set(LOG_COLUMNS[3:7])


def test_denoised_beats_noisy_and_keeps_intensity_scale():
    clean, noisy, prior = synthetic_pair((32, 32, 32), noise=1.0, seed=7)
    scale, offset = 20.0, 100.0  # arbitrary reconstruction units
    noisy_u, prior_u = noisy * scale + offset, prior * 0.37 - 5  # prior in other units
    cfg = TrainConfig(patch_size=24, epochs=1, iterations_per_epoch=50, base_width=4, val_fraction=0.0, lr=2e-3)
    out = (denoise_array(noisy_u, prior_u, cfg) - offset) / scale

    def psnr(x):
        return 10 * np.log10((clean.max() - clean.min()) ** 2 / np.mean((clean - x) ** 2))
    assert psnr(out) > psnr(noisy) + 3
    # intensity scale kept: mean of the input, std close to the clean signal's (not inflated)
    assert abs(out.mean() - noisy.mean()) < 0.15
    assert 0.5 < out.std() / clean.std() < 1.2


def test_init_model_starts_from_its_weights(pair, tmp_path):
    """--init-model (fine-tuning): a new run starts from the given model's weights."""
    _, noisy, prior = pair
    src = train_model(noisy, prior, tiny_cfg(), str(tmp_path / "src"), progress=False)
    # a learning rate so small that the weights cannot move: the result must be the source's weights
    tiny_lr = dict(lr=1e-12, seed=5)
    tuned = train_model(noisy, prior, tiny_cfg(**tiny_lr), str(tmp_path / "tuned"), progress=False, init_model=src)
    fresh = train_model(noisy, prior, tiny_cfg(**tiny_lr), str(tmp_path / "fresh"), progress=False)
    s0, st, sf = _state(src), _state(tuned), _state(fresh)
    floats = [k for k in s0 if s0[k].is_floating_point() and "running" not in k]
    assert all(torch.allclose(s0[k], st[k], atol=1e-6) for k in floats)
    assert not all(torch.allclose(s0[k], sf[k], atol=1e-3) for k in floats)
    summary = json.load(open(tmp_path / "tuned" / "training_summary.json"))
    assert summary["init_model"] == os.path.abspath(src)
    assert json.load(open(tmp_path / "fresh" / "training_summary.json"))["init_model"] is None


def test_init_model_refused_before_any_work(pair, tmp_path):
    _, noisy, prior = pair
    src = train_model(noisy, prior, tiny_cfg(), str(tmp_path / "src"), progress=False)
    before = open(src, "rb").read()
    out = tmp_path / "wide"
    with pytest.raises(SCNetInputError, match="base_width 2 in the model, 4 here"):
        train_model(noisy, prior, tiny_cfg(base_width=4), str(out), progress=False, init_model=src)
    assert not out.exists()
    # training into the source model's own folder would overwrite the input model.pt: refused, file intact
    with pytest.raises(SCNetInputError, match="same file as the input"):
        train_model(noisy, prior, tiny_cfg(), str(tmp_path / "src"), progress=False, init_model=src)
    assert open(src, "rb").read() == before
    with pytest.raises(SCNetInputError, match="checkpoint, not a model"):
        train_model(noisy, prior, tiny_cfg(), str(tmp_path / "x"), progress=False,
                    init_model=str(tmp_path / "src" / "checkpoint.pt"))


def test_all_zero_loss_weights_refused(pair, tmp_path):
    _, noisy, prior = pair
    out = tmp_path / "zero"
    with pytest.raises(SCNetInputError, match="all 0"):
        train_model(noisy, prior, tiny_cfg(lambda_rec=0, lambda_smooth=0, lambda_exp=0, lambda_reg=0), str(out),
                    progress=False)
    assert not out.exists()
    # halves mode: the prior terms default to 0 there, so lambda_rec=0 alone leaves nothing to learn
    with pytest.raises(SCNetInputError, match="All loss weights are 0 in the halves mode"):
        train_model(noisy, prior, tiny_cfg(lambda_rec=0, lambda_smooth=0, lambda_reg=0), str(out), progress=False,
                    halves=(noisy, noisy))
    assert not out.exists()


def test_resume_keeps_the_init_model_of_the_run(pair, tmp_path):
    """--resume continues the checkpoint (which started from --init-model): a given --init-model is ignored,
    even a missing one, and the summary names the model the run really started from."""
    _, noisy, prior = pair
    src = train_model(noisy, prior, tiny_cfg(), str(tmp_path / "src"), progress=False)
    run = str(tmp_path / "run")
    train_model(noisy, prior, tiny_cfg(epochs=1), run, progress=False, init_model=src)
    train_model(noisy, prior, tiny_cfg(epochs=2), run, resume=True, progress=False,
                init_model=str(tmp_path / "gone.pt"))
    summary = json.load(open(os.path.join(run, "training_summary.json")))
    assert summary["init_model"] == os.path.abspath(src) and summary["iterations"] == 6
