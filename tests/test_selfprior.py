"""A tomogram alone: the prior made from it (scnet.selfprior) and `scnet train|denoise` without --prior."""
import json

import numpy as np
import pytest

from scnet.choices import DEFAULT_SELF_PRIOR, SELF_PRIORS
from scnet.cli import main
from scnet.data import synthetic_pair
from scnet.errors import SCNetInputError
from scnet.io import read_volume, write_volume
from scnet.losses import LossWeights
from scnet.selfprior import STAND_IN, make_prior, prior_needed

TINY = ["--patch-size", "16", "--epochs", "1", "--iterations-per-epoch", "2", "--base-width", "2", "--quiet"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("selfprior")
    _, noisy, _ = synthetic_pair((16, 32, 32), seed=0)
    rng = np.random.default_rng(1)
    write_volume(str(d / "noisy.mrc"), noisy, voxel_size=40.0)
    for half in ("even", "odd"):
        write_volume(str(d / f"{half}.mrc"), noisy + rng.normal(0, 0.5, noisy.shape).astype(np.float32), 40.0)
    return d


@pytest.mark.parametrize("method", SELF_PRIORS)
def test_each_method_smooths_the_tomogram(method, files):
    noisy = read_volume(str(files / "noisy.mrc"))[0]
    p = make_prior(noisy, method)
    assert p.shape == noisy.shape and p.dtype == np.float32 and np.isfinite(p).all()
    # smoother: less power in the voxel-to-voxel differences, same intensity scale (correlated with the input)
    assert np.abs(np.diff(p, axis=2)).mean() < 0.8 * np.abs(np.diff(noisy, axis=2)).mean()
    assert np.corrcoef(p.ravel(), noisy.ravel())[0, 1] > 0.5


def test_unknown_method_is_refused():
    with pytest.raises(SCNetInputError, match="--prior-from"):
        make_prior(np.zeros((8, 8, 8), np.float32), "median")


def test_prior_needed_only_for_the_prior_terms():
    assert prior_needed(LossWeights.for_mode("single"))
    assert not prior_needed(LossWeights.for_mode("halves"))
    assert prior_needed(LossWeights(rec=0.6, smooth=0.1, exp=0.0, reg=0.0))
    assert not prior_needed(LossWeights(rec=0.6, smooth=0.0, exp=0.0, reg=0.01))  # L_reg needs no prior


def _summary(d):
    return json.load(open(d / "training_summary.json"))


def test_denoise_a_tomogram_alone(files, tmp_path):
    out = tmp_path / "den.mrc"
    assert main(["denoise", "--noisy", str(files / "noisy.mrc"), "--output", str(out), "--mode", "single",
                 "--output-dir", str(tmp_path / "run"), "--tile-size", "16", "--overlap", "4", "--tta", "1"] + TINY) == 0
    v, info = read_volume(str(out))
    assert v.shape == (16, 32, 32) and info.voxel_size == 40.0
    s = _summary(tmp_path / "run")
    assert s["mode"] == "single" and s["prior"] == f"made from the tomogram ({DEFAULT_SELF_PRIOR})"
    # auto without halves trains the split or the slab mode by the row check; neither needs a prior
    from scnet.rows import auto_mode, row_check
    assert main(["train", "--noisy", str(files / "noisy.mrc"), "--output-dir", str(tmp_path / "auto"), "--mode",
                 "auto"] + TINY) == 0
    s = _summary(tmp_path / "auto")
    check = row_check(read_volume(str(files / "noisy.mrc"))[0])
    assert s["mode"] == auto_mode(check)
    assert s["row_check"]["rho"] == pytest.approx(check["rho"], abs=1e-4)   # why auto chose, in the summary
    assert s["mode"] in ("split", "slab") and s["prior"].startswith("none needed")


def test_prior_from_is_used_and_recorded(files, tmp_path):
    assert main(["train", "--noisy", str(files / "noisy.mrc"), "--output-dir", str(tmp_path / "run"),
                 "--prior-from", "lowpass", "--mode", "single"] + TINY) == 0
    assert _summary(tmp_path / "run")["prior"] == "made from the tomogram (lowpass)"


def test_halves_need_no_prior_unless_its_terms_are_on(files, tmp_path, capsys):
    halves = ["--even", str(files / "even.mrc"), "--odd", str(files / "odd.mrc")]
    base = ["train", "--noisy", str(files / "noisy.mrc")] + halves
    assert main(base + ["--output-dir", str(tmp_path / "a")] + TINY) == 0
    s = _summary(tmp_path / "a")
    assert s["mode"] == "halves" and s["prior"].startswith("none needed") and STAND_IN in s["prior"]
    assert main(base + ["--output-dir", str(tmp_path / "b"), "--lambda-smooth", "0.1", "--prior-from", "lowpass"]
                + TINY) == 0
    assert _summary(tmp_path / "b")["prior"] == "made from the tomogram (lowpass)"


def test_bad_prior_from_exit_2_before_any_output(files, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--noisy", str(files / "noisy.mrc"), "--output-dir", str(tmp_path / "r"),
              "--prior-from", "median"] + TINY)
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    # a halves mode asked for without halves: one line, nothing written
    rc = main(["train", "--noisy", str(files / "noisy.mrc"), "--output-dir", str(tmp_path / "r"), "--mode", "halves"]
              + TINY)
    assert rc == 2 and "needs the even and odd half tomograms" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
