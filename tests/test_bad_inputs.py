"""Trust: table-driven bad-input suite for the `scnet` CLI.

* The output guard over EVERY command x EVERY input x (same path, symlink, hard link):
  exit 2, a "same file" error, the input unchanged, nothing written.
* Every case of the issue (security, silent wrong results, late failures, tracebacks,
  interrupted and concurrent runs): a specific error before any output, or correct behaviour.
* Classic bad inputs that already gave clear errors, kept from regressing.

Every CLI case asserts: exit status 2 (never a traceback), the expected words in the message,
inputs byte-identical afterwards, and no output file (or no file beyond those listed).
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import mrcfile
import numpy as np
import pytest
import torch

from scnet.cli import main
from scnet.data import synthetic_pair
from scnet.errors import SCNetInputError
from scnet.io import read_volume, write_volume
from scnet.tiltseries import write_angles

TINY = ["--patch-size", "16", "--epochs", "1", "--iterations-per-epoch", "2", "--base-width", "2", "--quiet"]
ROOT = os.geteuid() == 0


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest() if os.path.isfile(path) else None


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    """Valid inputs of every kind: volumes, a tilt series + angles, a config, a trained model."""
    d = tmp_path_factory.mktemp("fx")
    _, noisy, prior = synthetic_pair((16, 24, 20), seed=0)
    write_volume(str(d / "noisy.mrc"), noisy, voxel_size=2.0)
    write_volume(str(d / "prior.mrc"), prior, voxel_size=2.0)
    assert main(["phantom", "--output-dir", str(d / "ph"), "--shape", "16,24,24", "--tilt-step", "15"]) == 0
    shutil.copy(d / "ph" / "phantom_ts.mrcs", d / "stack.mrcs")
    shutil.copy(d / "ph" / "phantom_ts.tlt", d / "stack.tlt")
    json.dump({"seed": 1}, open(d / "cfg.json", "w"))
    (d / "particles.txt").write_text("10 12 8 0 0 1\n9 11 7 1 0 0\n")
    assert main(["train", "--noisy", str(d / "noisy.mrc"), "--prior", str(d / "prior.mrc"),
                 "--output-dir", str(d / "run")] + TINY) == 0
    return d


# --------------------------------------------------------------------------- the output guard, table-driven

# command -> (input roles -> fixture file, output slots, argv builder(i, o))
def _train_argv(i, o):
    return ["train", "--noisy", i["noisy"], "--prior", i["prior"], "--config", i["config"],
            "--output-dir", o["dir"], "--save-config", o["--save-config"]] + TINY


def _denoise_argv(i, o):
    return ["denoise", "--noisy", i["noisy"], "--prior", i["prior"], "--config", i["config"],
            "--output-dir", o["dir"], "--save-config", o["--save-config"], "--output", o["--output"]] + TINY


TRAIN_DIR = ["dir:model.pt", "dir:checkpoint.pt", "dir:loss_log.csv", "dir:train_config.json"]
SIM_DIR = ["dir:ground_truth.mrc", "dir:noisy_ts.mrcs", "dir:noisy_ts.tlt", "dir:noisy_rec.mrc", "dir:simulation.json"]
COMMANDS = {
    "train": ({"noisy": "noisy.mrc", "prior": "prior.mrc", "config": "cfg.json"},
              ["--save-config"] + TRAIN_DIR, _train_argv),
    "denoise": ({"noisy": "noisy.mrc", "prior": "prior.mrc", "config": "cfg.json"},
                ["--output", "--save-config"] + TRAIN_DIR, _denoise_argv),
    "predict": ({"model": "run/model.pt", "input": "noisy.mrc"}, ["--output"],
                lambda i, o: ["predict", "--model", i["model"], "--input", i["input"], "--output", o["--output"],
                              "--quiet"]),
    "filter": ({"input": "stack.mrcs"}, ["--output"],
               lambda i, o: ["filter", i["input"], o["--output"], "--method", "gaussian"]),
    "reconstruct": ({"input": "stack.mrcs", "angles": "stack.tlt"}, ["--output"],
                    lambda i, o: ["reconstruct", i["input"], o["--output"], "--angles", i["angles"],
                                  "--backend", "builtin"]),
    "simulate": ({"tilt_series": "stack.mrcs", "angles": "stack.tlt"}, SIM_DIR,
                 lambda i, o: ["simulate", "--tilt-series", i["tilt_series"], "--angles", i["angles"],
                               "--output-dir", o["dir"], "--thickness", "16"]),
    "fsc": ({"vol1": "noisy.mrc", "vol2": "prior.mrc", "mask": "noisy.mrc"}, ["--csv", "--json"],
            lambda i, o: ["fsc", i["vol1"], i["vol2"], "--mask", i["mask"], "--csv", o["--csv"],
                          "--json", o["--json"]]),
    "evaluate": ({"ground_truth": "noisy.mrc", "volume": "prior.mrc"}, ["--json"],
                 lambda i, o: ["evaluate", "--ground-truth", i["ground_truth"], i["volume"], "--json", o["--json"]]),
    "baseline": ({"input": "noisy.mrc"}, ["--output"],
                 lambda i, o: ["baseline", "gaussian", i["input"], o["--output"]]),
    "average": ({"volume": "noisy.mrc", "align": "prior.mrc", "particles": "particles.txt"},
                ["--output", "--json", "--csv"],
                lambda i, o: ["average", "--volume", i["volume"], "--align-on", i["align"], "--particles",
                              i["particles"], "--box", "4", "--output", o["--output"], "--json", o["--json"],
                              "--csv", o["--csv"]]),
}
GUARD_CASES = [(cmd, role, slot, kind) for cmd, (roles, slots, _) in COMMANDS.items()
               for role in roles for slot in slots for kind in ("same", "symlink", "hardlink")]


@pytest.mark.parametrize("cmd,role,slot,kind", GUARD_CASES, ids=["-".join(c) for c in GUARD_CASES])
def test_output_never_overwrites_an_input(fx, tmp_path, capsys, cmd, role, slot, kind):
    roles, slots, argv = COMMANDS[cmd]
    ins = {}
    for r, name in roles.items():  # private copies: the fixture stays intact, bytes are compared after
        p = tmp_path / "in" / r / os.path.basename(name)
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(fx / name, p)
        ins[r] = str(p)
    outs = {"dir": str(tmp_path / "outdir"), "--output": str(tmp_path / "out.mrc"),
            "--save-config": str(tmp_path / "saved.json"), "--csv": str(tmp_path / "fsc.csv"),
            "--json": str(tmp_path / "res.json")}
    if slot.startswith("dir:"):
        os.makedirs(outs["dir"], exist_ok=True)
        target = os.path.join(outs["dir"], slot[4:])
    else:
        target = outs[slot]
    if kind == "same":
        shutil.move(ins[role], target)
        ins[role] = target
    elif kind == "symlink":
        os.symlink(ins[role], target)
    else:
        os.link(ins[role], target)
    if not slot.startswith("dir:"):
        outs[slot] = target
    before = {r: _sha(p) for r, p in ins.items()}
    listing = sorted(os.listdir(tmp_path)) + sorted(os.listdir(outs["dir"]) if os.path.isdir(outs["dir"]) else [])
    rc = main(argv(ins, outs))
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "same file" in err and "error" in err
    assert {r: _sha(p) for r, p in ins.items()} == before
    after = sorted(os.listdir(tmp_path)) + sorted(os.listdir(outs["dir"]) if os.path.isdir(outs["dir"]) else [])
    assert after == listing  # nothing written


def test_guard_table_covers_every_command():
    from scnet.cli import build_parser
    sub = build_parser()._subparsers._group_actions[0].choices
    with_outputs = set(sub) - {"phantom"}  # phantom reads no file
    assert with_outputs == set(COMMANDS)
    assert len(GUARD_CASES) >= 150


# --------------------------------------------------------------------------- the cases, table-driven

def _mrc(path, data, mode=None, voxel=2.0):
    with mrcfile.new(str(path), overwrite=True) as m:
        m.set_data(data)
        m.voxel_size = voxel
    return str(path)


def _model_variant(fx, tmp_path, edit, name="model.pt"):
    ck = torch.load(str(fx / "run" / "model.pt"), weights_only=True)
    edit(ck)
    p = tmp_path / name
    torch.save(ck, str(p))
    return str(p)


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('SCNET_PWNED', '/tmp/scnet_pwned')}",))


def _first(d):
    return d[sorted(d)[0]]


def _predict(model, fx, tmp_path, *extra):
    return ["predict", "--model", model, "--input", str(fx / "noisy.mrc"), "--output", str(tmp_path / "o.mrc"),
            "--quiet", *extra]


def _train(fx, tmp_path, *extra, noisy=None, prior=None):
    return ["train", "--noisy", noisy or str(fx / "noisy.mrc"), "--prior", prior or str(fx / "prior.mrc"),
            "--output-dir", str(tmp_path / "run")] + TINY + list(extra)


def _denoise(fx, tmp_path, *extra):
    return ["denoise", "--noisy", str(fx / "noisy.mrc"), "--prior", str(fx / "prior.mrc"),
            "--output-dir", str(tmp_path / "run"), "--output", str(tmp_path / "o.mrc")] + TINY + list(extra)


def _big_nan(tmp_path):
    """> 4 M voxels with ONE NaN at an odd index (the old strided check looked at every other voxel)."""
    rng = np.random.default_rng(0)
    v = rng.normal(size=(168, 168, 168)).astype(np.float32)
    v[1, 1, 1] = np.nan
    return _mrc(tmp_path / "big.mrc", v)


def _evil_pickle(tmp_path, name="model.pt"):
    p = tmp_path / name
    torch.save({"format": "scnet-model-1", "payload": _Evil()}, str(p))
    return str(p)


def _truncated(fx, tmp_path, src="run/model.pt", name="model.pt"):
    raw = open(fx / src, "rb").read()
    (tmp_path / name).write_bytes(raw[:len(raw) // 2])
    return str(tmp_path / name)


def _angles_file(tmp_path, angles):
    write_angles(str(tmp_path / "a.tlt"), angles)
    return str(tmp_path / "a.tlt")


def _rec(fx, tmp_path, angles):
    return ["reconstruct", str(fx / "stack.mrcs"), str(tmp_path / "o.mrc"), "--angles",
            _angles_file(tmp_path, angles), "--backend", "builtin"]


def _n_tilts(fx):
    return read_volume(str(fx / "stack.mrcs"))[1].shape[0]


def _readonly_dir(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    os.chmod(d, 0o555)
    return str(d / "sub")


# name -> (argv builder(fx, tmp_path), words expected in the error)
CASES = {
    # security
    "malicious pickle as model": (lambda fx, t: _predict(_evil_pickle(t), fx, t), "NOT loaded"),
    "checkpoint given as model": (lambda fx, t: _predict(str(fx / "run" / "checkpoint.pt"), fx, t), "checkpoint"),
    # silent wrong results
    "one NaN in a >4M-voxel tomogram": (lambda fx, t: _train(fx, t, noisy=_big_nan(t), prior=_big_nan(t)), "NaN"),
    "complex64 MRC": (lambda fx, t: _train(fx, t, noisy=_mrc(t / "c.mrc", (np.ones((16, 24, 20)) * (1 + 2j)).astype(
        np.complex64))), "complex"),
    "lr inf": (lambda fx, t: _train(fx, t, "--lr", "inf"), "lr"),
    "lr nan": (lambda fx, t: _train(fx, t, "--lr", "nan"), "lr"),
    "lr that diverges": (lambda fx, t: _train(fx, t, "--lr", "1e30"), "loss became"),
    "non-finite weights": (lambda fx, t: _predict(_model_variant(
        fx, t, lambda ck: _first(ck["state_dict"]).fill_(float("nan"))), fx, t), "NaN"),
    "zero normalisation std": (lambda fx, t: _predict(_model_variant(
        fx, t, lambda ck: ck["normalisation"].update(std=0.0)), fx, t), "std"),
    "tilt angles in radians": (lambda fx, t: _rec(fx, t, np.linspace(-1.0, 1.0, _n_tilts(fx))), "radians"),
    "all tilt angles equal": (lambda fx, t: _rec(fx, t, np.zeros(_n_tilts(fx))), "equal"),
    "model at another sampling rate": (lambda fx, t: ["predict", "--model", str(fx / "run" / "model.pt"), "--input",
                                                      _mrc(t / "n5.mrc", read_volume(str(fx / "noisy.mrc"))[0],
                                                           voxel=5.0), "--output", str(t / "o.mrc")], "--force"),
    # late failures and tracebacks
    "denoise --tile-size 0": (lambda fx, t: _denoise(fx, t, "--tile-size", "0"), "tile_size"),
    "denoise --overlap 100": (lambda fx, t: _denoise(fx, t, "--overlap", "100"), "overlap"),
    "denoise unwritable output dir": (lambda fx, t: ["denoise", "--noisy", str(fx / "noisy.mrc"), "--prior",
                                                     str(fx / "prior.mrc"), "--output-dir", str(t / "f.txt" / "run"),
                                                     "--output", str(t / "o.mrc")] + TINY, "existing file"),
    "--expectancy-kernel 1000": (lambda fx, t: _train(fx, t, "--expectancy-kernel", "1000"), "expectancy_kernel"),
    "--patch-size 100000 (memory)": (lambda fx, t: _train(fx, t, "--patch-size", "100000"), "patch_size"),
    "patch far larger than the volume": (lambda fx, t: _train(fx, t, "--patch-size", "64"), "twice the largest"),
    "--seed -1": (lambda fx, t: _train(fx, t, "--seed", "-1"), "seed"),
    "--base-width 0": (lambda fx, t: _train(fx, t, "--base-width", "0"), "base_width"),
    "--iterations-per-epoch -3": (lambda fx, t: _train(fx, t, "--iterations-per-epoch", "-3"), "iterations"),
    "architecture/config mismatch": (lambda fx, t: _predict(_model_variant(
        fx, t, lambda ck: ck["model_config"].update(base_width=4)), fx, t), "do not match"),
    "unknown config key in model": (lambda fx, t: _predict(_model_variant(
        fx, t, lambda ck: ck["model_config"].update(colour="red")), fx, t), "unknown"),
    "unknown top-level key in model": (lambda fx, t: _predict(_model_variant(
        fx, t, lambda ck: ck.update(extra=1)), fx, t), "unknown"),
    "model missing its weights": (lambda fx, t: _predict(_model_variant(
        fx, t, lambda ck: ck.pop("state_dict")), fx, t), "incomplete"),
    "truncated model": (lambda fx, t: _predict(_truncated(fx, t), fx, t), "truncated"),
    "--output-dir is an existing file": (lambda fx, t: ["train", "--noisy", str(fx / "noisy.mrc"), "--prior",
                                                        str(fx / "prior.mrc"), "--output-dir", str(t / "f.txt")] + TINY,
                                         "existing file"),
    "phantom --output-dir is a file": (lambda fx, t: ["phantom", "--output-dir", str(t / "f.txt")], "existing file"),
    "simulate --output-dir is a file": (lambda fx, t: ["simulate", "--phantom", "--output-dir", str(t / "f.txt")],
                                        "existing file"),
    "output is a folder": (lambda fx, t: ["filter", str(fx / "stack.mrcs"), str(t), "--method", "gaussian"],
                           "folder"),
    "two outputs the same file": (lambda fx, t: ["fsc", str(fx / "noisy.mrc"), str(fx / "prior.mrc"), "--csv",
                                                 str(t / "x.out"), "--json", str(t / "x.out")], "same file"),
    # classic cases that already gave clear errors (kept)
    "missing noisy": (lambda fx, t: _train(fx, t, noisy=str(t / "nope.mrc")), "not found"),
    "corrupt noisy": (lambda fx, t: _train(fx, t, noisy=str(t / "c.mrc")), "not a readable"),
    "shape mismatch": (lambda fx, t: _train(fx, t, prior=_mrc(t / "s.mrc", np.ones((16, 24, 10), np.float32) +
                                                              np.arange(10, dtype=np.float32))), "shape"),
    "constant prior": (lambda fx, t: _train(fx, t, prior=_mrc(t / "k.mrc", np.full((16, 24, 20), 3, np.float32))),
                       "constant"),
    "patch not a multiple": (lambda fx, t: _train(fx, t, "--patch-size", "18"), "patch_size"),
    "unknown config option": (lambda fx, t: _train(fx, t, "--config", str(t / "bad.json")), "patchsize"),
    "missing model": (lambda fx, t: _predict(str(t / "none.pt"), fx, t), "not found"),
    "angle count mismatch": (lambda fx, t: _rec(fx, t, np.linspace(-60, 60, _n_tilts(fx) + 1)), "match"),
    "angles > 90": (lambda fx, t: _rec(fx, t, np.linspace(-120, 120, _n_tilts(fx))), "90"),
    "fsc threshold 2": (lambda fx, t: ["fsc", str(fx / "noisy.mrc"), str(fx / "prior.mrc"), "--threshold", "2"],
                        "threshold"),
    "evaluate shape mismatch": (lambda fx, t: ["evaluate", "--ground-truth", str(fx / "noisy.mrc"),
                                               str(fx / "stack.mrcs")], "Shapes differ"),
    "baseline unknown": (lambda fx, t: ["baseline", "nope", str(fx / "noisy.mrc"), str(t / "o.mrc")], "Unknown"),
    "phantom shape too small": (lambda fx, t: ["phantom", "--output-dir", str(t / "p"), "--shape", "4,4,4"], "shape"),
    "phantom --seed -1": (lambda fx, t: ["phantom", "--output-dir", str(t / "p"), "--seed", "-1"], "seed"),
    "simulate --seed -1": (lambda fx, t: ["simulate", "--phantom", "--output-dir", str(t / "p"), "--seed", "-1"],
                           "seed"),
    "phantom --voxel-size inf": (lambda fx, t: ["phantom", "--output-dir", str(t / "p"), "--voxel-size", "inf"],
                                 "voxel-size"),
    "reconstruct --voxel-size inf": (lambda fx, t: ["reconstruct", str(fx / "stack.mrcs"), str(t / "o.mrc"),
                                                    "--angles", str(fx / "stack.tlt"), "--voxel-size", "inf"],
                                     "voxel-size"),
    "empty --output-dir": (lambda fx, t: ["train", "--noisy", str(fx / "noisy.mrc"), "--prior", str(fx / "prior.mrc"),
                                          "--output-dir", ""] + TINY, "empty"),
    "empty --output": (lambda fx, t: ["predict", "--model", str(fx / "run" / "model.pt"), "--input",
                                      str(fx / "noisy.mrc"), "--output", ""], "empty"),
    "an MRC given as model": (lambda fx, t: _predict(str(fx / "noisy.mrc"), fx, t), "not a torch model"),
    "--radial nan,nan": (lambda fx, t: ["reconstruct", str(fx / "stack.mrcs"), str(t / "o.mrc"), "--angles",
                                        str(fx / "stack.tlt"), "--radial", "nan,nan"], "--radial"),
    "fsc --voxel-size inf": (lambda fx, t: ["fsc", str(fx / "noisy.mrc"), str(fx / "prior.mrc"), "--voxel-size",
                                            "inf"], "voxel-size"),
    "evaluate --data-range inf": (lambda fx, t: ["evaluate", "--ground-truth", str(fx / "noisy.mrc"),
                                                 str(fx / "prior.mrc"), "--data-range", "inf"], "data-range"),
    "filter --cutoff nan with another method": (lambda fx, t: ["filter", str(fx / "stack.mrcs"), str(t / "o.mrcs"),
                                                               "--method", "gaussian", "--cutoff", "nan"], "cutoff"),
    "filter --patch-size -1": (lambda fx, t: ["filter", str(fx / "stack.mrcs"), str(t / "o.mrcs"), "--method",
                                              "gaussian", "--patch-size", "-1"], "patch-size"),
    "reconstruct --sirt-iterations 0 with wbp": (lambda fx, t: ["reconstruct", str(fx / "stack.mrcs"), str(t / "o.mrc"),
                                                                "--angles", str(fx / "stack.tlt"), "--sirt-iterations",
                                                                "0"], "sirt-iterations"),
    "simulate negative sigma": (lambda fx, t: ["simulate", "--phantom", "--output-dir", str(t / "p"), "--sigma", "-1"],
                                "sigma"),
}
if not ROOT:  # root ignores permissions
    CASES["read-only output dir"] = (lambda fx, t: _train(fx, t) [:6] + [_readonly_dir(t)] + TINY, "permission")


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_a_clear_error_before_any_output(fx, tmp_path, capsys, monkeypatch, name):
    monkeypatch.setenv("SCNET_PWNED", str(tmp_path / "PWNED"))
    (tmp_path / "f.txt").write_text("a file\n")
    (tmp_path / "c.mrc").write_bytes(b"\x00garbage" * 400)
    json.dump({"patchsize": 16}, open(tmp_path / "bad.json", "w"))
    argv_of, words = CASES[name]
    argv = argv_of(fx, tmp_path)
    inputs = {p: _sha(p) for p in map(str, argv) if os.path.isfile(p)}
    listing = set(os.listdir(tmp_path))
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert words in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "PWNED").exists()  # no code from a model file ran
    assert {p: _sha(p) for p in inputs} == inputs
    new = set(os.listdir(tmp_path)) - listing
    if name == "lr that diverges":  # stopped the moment the loss was NaN: no model, no checkpoint
        assert not os.path.exists(tmp_path / "run" / "model.pt")
        assert not os.path.exists(tmp_path / "run" / "checkpoint.pt")
    else:
        assert not new, f"written before the error: {new}"


def test_sampling_mismatch_runs_with_force_and_warns(fx, tmp_path, caplog):
    n5 = _mrc(tmp_path / "n5.mrc", read_volume(str(fx / "noisy.mrc"))[0], voxel=5.0)
    out = tmp_path / "o.mrc"
    assert main(["predict", "--model", str(fx / "run" / "model.pt"), "--input", n5, "--output", str(out),
                 "--quiet", "--force", "--tile-size", "16", "--overlap", "4"]) == 0
    assert out.exists() and any("A/px" in r.getMessage() for r in caplog.records)


def test_model_format_loads_with_weights_only(fx):
    ck = torch.load(str(fx / "run" / "model.pt"), weights_only=True)
    assert ck["format"] == "scnet-model-1" and ck["voxel_size"] == pytest.approx(2.0)
    ck = torch.load(str(fx / "run" / "checkpoint.pt"), weights_only=True)
    assert ck["data_shape"] == [16, 24, 20]


def test_malicious_checkpoint_is_not_run_on_resume(fx, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SCNET_PWNED", str(tmp_path / "PWNED"))
    shutil.copytree(fx / "run", tmp_path / "run")
    _evil_pickle(tmp_path / "run", "checkpoint.pt")
    rc = main(_train(fx, tmp_path, "--resume"))
    assert rc == 2 and "NOT loaded" in capsys.readouterr().err
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("change,words", [
    (["--lr", "0.001"], "lr"),
    (["--seed", "5"], "seed"),
    ("data", "data"),
])
def test_resume_with_other_data_or_options_is_refused(fx, tmp_path, capsys, change, words):
    shutil.copytree(fx / "run", tmp_path / "run")
    before = _sha(tmp_path / "run" / "model.pt")
    if change == "data":
        v = read_volume(str(fx / "noisy.mrc"))[0] * 2 + 1
        argv = _train(fx, tmp_path, "--resume", noisy=_mrc(tmp_path / "other.mrc", v))
    else:
        argv = _train(fx, tmp_path, "--resume", *change)
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and "--resume" in err and words in err, err
    assert _sha(tmp_path / "run" / "model.pt") == before


def test_resume_with_more_epochs_is_allowed(fx, tmp_path):
    shutil.copytree(fx / "run", tmp_path / "run")
    argv = _train(fx, tmp_path, "--resume")
    argv[argv.index("--epochs") + 1] = "2"
    assert main(argv) == 0
    ck = torch.load(str(tmp_path / "run" / "checkpoint.pt"), weights_only=True)
    assert ck["epoch"] == 2


def test_truncated_or_incomplete_checkpoint_on_resume(fx, tmp_path, capsys):
    shutil.copytree(fx / "run", tmp_path / "run")
    _truncated(fx, tmp_path / "run", "run/checkpoint.pt", "checkpoint.pt")
    assert main(_train(fx, tmp_path, "--resume")) == 2
    assert "truncated" in capsys.readouterr().err
    ck = torch.load(str(fx / "run" / "checkpoint.pt"), weights_only=True)
    del ck["optimizer"]
    torch.save(ck, str(tmp_path / "run" / "checkpoint.pt"))
    assert main(_train(fx, tmp_path, "--resume")) == 2
    assert "incomplete" in capsys.readouterr().err


# --------------------------------------------------------------------------- interrupted and concurrent runs

def test_second_training_into_a_locked_folder_is_refused(fx, tmp_path, capsys):
    from scnet.outputs import lock_folder
    with lock_folder(str(tmp_path / "run")):
        rc = main(_train(fx, tmp_path))
    err = capsys.readouterr().err
    assert rc == 2 and "in use" in err
    assert not (tmp_path / "run" / "loss_log.csv").exists()
    assert main(_train(fx, tmp_path)) == 0  # released


def test_new_training_removes_the_old_model_first(fx, tmp_path):
    """A re-run that dies must not leave the previous model.pt beside the new log and config."""
    shutil.copytree(fx / "run", tmp_path / "run")
    rc = main(_train(fx, tmp_path, "--lr", "1e30"))  # diverges -> stops in epoch 1
    assert rc == 2
    assert not (tmp_path / "run" / "model.pt").exists() and not (tmp_path / "run" / "checkpoint.pt").exists()


def _kill_during(code, partial_glob_dir, tmp_path):
    p = subprocess.Popen([sys.executable, "-c", code], cwd=str(tmp_path), env={**os.environ})
    deadline = time.time() + 60
    while time.time() < deadline and not any(".partial-" in f for f in os.listdir(partial_glob_dir)):
        time.sleep(0.05)
    assert any(".partial-" in f for f in os.listdir(partial_glob_dir)), "the writer never started"
    p.send_signal(signal.SIGTERM)
    p.wait(30)
    return p.returncode


@pytest.mark.parametrize("writer", ["atomic", "volume_writer"])
def test_sigterm_removes_partial_output(tmp_path, writer):
    out = tmp_path / "out.mrc"
    if writer == "atomic":
        code = (f"import time; from scnet.outputs import atomic\n"
                f"with atomic({str(out)!r}) as t:\n open(t, 'w').write('x')\n time.sleep(60)\n")
    else:
        code = (f"import time; from scnet.io import VolumeWriter\n"
                f"with VolumeWriter({str(out)!r}, (8, 8, 8)) as w:\n w.data[:] = 1\n time.sleep(60)\n")
    rc = _kill_during(code, tmp_path, tmp_path)
    assert rc == -signal.SIGTERM
    assert os.listdir(tmp_path) == []  # neither the output nor a partial file


def test_killed_predict_leaves_no_output_and_no_partial(fx, tmp_path):
    """SIGTERM to a running `scnet predict`: neither OUT.mrc nor OUT.mrc.partial-<pid> remains."""
    vol = np.random.default_rng(0).normal(size=(64, 64, 64)).astype(np.float32)
    write_volume(str(tmp_path / "big.mrc"), vol, voxel_size=2.0)
    work = tmp_path / "out"
    work.mkdir()
    code = ("import sys; from scnet.cli import main; sys.exit(main(['predict', '--model', %r, '--input', %r, "
            "'--output', %r, '--tile-size', '16', '--overlap', '4', '--tta', '8', '--quiet']))"
            % (str(fx / "run" / "model.pt"), str(tmp_path / "big.mrc"), str(work / "den.mrc")))
    rc = _kill_during(code, work, tmp_path)
    assert rc == -signal.SIGTERM
    assert os.listdir(work) == []


def test_stale_partial_of_a_dead_process_is_cleaned_and_never_named_mrc(fx, tmp_path):
    out = tmp_path / "o.mrc"
    stale = tmp_path / "o.mrc.partial-999999999"
    stale.write_bytes(b"half a tomogram")
    assert main(["predict", "--model", str(fx / "run" / "model.pt"), "--input", str(fx / "noisy.mrc"),
                 "--output", str(out), "--quiet", "--tile-size", "16", "--overlap", "4"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["o.mrc"]
    from scnet.outputs import partial_name
    assert not partial_name(str(out)).endswith(".mrc")


def test_write_volume_refuses_non_finite(tmp_path):
    v = np.ones((4, 4, 4), np.float32)
    v[1, 2, 3] = np.inf
    with pytest.raises(SCNetInputError, match="NaN/Inf"):
        write_volume(str(tmp_path / "x.mrc"), v)
    assert os.listdir(tmp_path) == []


def test_every_voxel_is_checked():
    from scnet.io import check_volume
    v = np.random.default_rng(1).normal(size=(33, 40, 41)).astype(np.float32)
    for idx in [(0, 0, 0), (1, 1, 1), (32, 39, 40), (17, 3, 29)]:
        w = v.copy()
        w[idx] = np.nan
        with pytest.raises(SCNetInputError, match=r"1 NaN"):
            check_volume(w, "v", chunk=1000)  # many slabs


def test_rules_are_shared_and_torch_free():
    """The plugin imports scnet.rules in an environment without torch/numpy."""
    code = ("import sys; sys.modules['torch'] = None; sys.modules['numpy'] = None\n"
            "import scnet.rules as r; assert r.train_option_errors({'seed': -1})")
    subprocess.run([sys.executable, "-c", code], check=True)
    from scnet.blindspot import RATIO_OF
    from scnet.rules import RATIO_OF as R2
    assert RATIO_OF == R2


def test_model_file_rule_without_torch(fx, tmp_path):
    from scnet.rules import model_file_errors
    assert model_file_errors(str(fx / "run" / "model.pt")) == []
    assert "checkpoint" in model_file_errors(str(fx / "run" / "checkpoint.pt"))[0]
    torch.save({"weights": torch.zeros(3)}, str(tmp_path / "other.pt"))
    assert "not an SC-Net model" in model_file_errors(str(tmp_path / "other.pt"))[0]
    assert "truncated" in model_file_errors(_truncated(fx, tmp_path))[0]
    (tmp_path / "zip.pt").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    assert model_file_errors(str(tmp_path / "zip.pt"))


def test_rules_of_the_automatic_stop_options():
    """Options of the automatic-stop trainer (when present): epochs 0 allowed, the stop bounds checked."""
    from scnet.rules import train_option_errors
    ok = {"epochs": 0, "iterations_per_epoch": 25, "min_iterations": 300, "max_iterations": 1500, "patience": 4,
          "min_delta": 0.003, "max_minutes": 0.0, "mode": "auto"}
    assert train_option_errors(ok) == []
    for k, v in (("min_iterations", 2000), ("patience", 0), ("min_delta", 1.5), ("max_minutes", -1),
                 ("mode", "both"), ("iterations_per_epoch", 0), ("epochs", -1)):
        assert any(k in e for e in train_option_errors(dict(ok, **{k: v}))), k
    assert any("epochs" in e for e in train_option_errors({"epochs": 0}))  # fixed-epoch trainer


def test_model_file_network_read_without_unpickling(tmp_path):
    """The train protocol's 'Start from a trained model' check reads the network from model.pt torch-free."""
    from scnet.data import fit_normalisation
    from scnet.model import SCNet
    from scnet.modelfile import save_model
    from scnet.rules import init_model_errors, model_file_network, model_file_voxel_size
    from scnet.train import TrainConfig
    x = np.random.default_rng(0).random((8, 8, 8)).astype(np.float32)
    for bw, depth, upb in ((8, 3, True), (4, 2, False), (300, 1, True)):
        cfg = TrainConfig(base_width=bw, depth=depth, upsampling_block=upb)
        p = str(tmp_path / f"m{bw}.pt")
        save_model(p, SCNet(cfg.model_config()), cfg, fit_normalisation(x, x), 7.5)
        assert model_file_network(p) == {"base_width": bw, "depth": depth, "upsampling_block": upb}
        assert model_file_voxel_size(p) == 7.5
    assert model_file_network(str(tmp_path / "absent.pt")) == {}
    assert init_model_errors({"base_width": 8}, {"base_width": 8, "depth": 3}, "m.pt") == []
    assert "base_width 4 in the model, 8 here" in init_model_errors({"base_width": 4}, {"base_width": 8}, "m.pt")[0]


def test_all_zero_loss_weights_rule():
    from scnet.rules import train_option_errors
    zero = {"lambda_rec": 0, "lambda_smooth": 0, "lambda_exp": 0.0, "lambda_reg": 0}
    assert any("all 0" in e for e in train_option_errors(zero))
    assert train_option_errors(dict(zero, lambda_rec=0.6)) == []
    assert train_option_errors(dict(zero, lambda_exp=None)) == []  # unset = the mode's default
