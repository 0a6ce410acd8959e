"""Trust: table-driven bad-input suite for the `scnet` CLI.

* The output guard over EVERY command x EVERY input x (same path, symlink, hard link):
  exit 2, a "same file" error, the input unchanged, nothing written.
* Every case of the trust review (security, silent wrong results, late failures, tracebacks,
  interrupted and concurrent runs): a specific error before any output, or correct behaviour.
* Classic bad inputs that already gave clear errors, kept from regressing.
  (Model files, outputs and rules have their own modules: test_modelfile, test_outputs, test_rules.)

Every CLI case asserts: exit status 2 (never a traceback), the expected words in the message,
inputs byte-identical afterwards, and no output file (or no file beyond those listed).
"""
import json
import os
import shutil

import numpy as np
import pytest
import torch

from _trust import ROOT, TINY, _evil_pickle, _mrc, _sha, _train, _truncated
from scnet.cli import main
from scnet.io import read_volume
from scnet.tiltseries import write_angles

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
    "align": ({"input": "stack.mrcs", "xf": "stack.xf"}, ["--output"],
              lambda i, o: ["align", i["input"], o["--output"], "--xf", i["xf"]]),
    "reconstruct": ({"input": "stack.mrcs", "angles": "stack.tlt", "xf": "stack.xf"}, ["--output"],
                    lambda i, o: ["reconstruct", i["input"], o["--output"], "--angles", i["angles"],
                                  "--xf", i["xf"], "--backend", "builtin"]),
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


# --------------------------------------------------------------------------- bad inputs, table-driven

def _model_variant(fx, tmp_path, edit, name="model.pt"):
    ck = torch.load(str(fx / "run" / "model.pt"), weights_only=True)
    edit(ck)
    p = tmp_path / name
    torch.save(ck, str(p))
    return str(p)


def _first(d):
    return d[sorted(d)[0]]


def _predict(model, fx, tmp_path, *extra):
    return ["predict", "--model", model, "--input", str(fx / "noisy.mrc"), "--output", str(tmp_path / "o.mrc"),
            "--quiet", *extra]


def _denoise(fx, tmp_path, *extra):
    return ["denoise", "--noisy", str(fx / "noisy.mrc"), "--prior", str(fx / "prior.mrc"),
            "--output-dir", str(tmp_path / "run"), "--output", str(tmp_path / "o.mrc")] + TINY + list(extra)


def _big_nan(tmp_path):
    """> 4 M voxels with ONE NaN at an odd index (the old strided check looked at every other voxel)."""
    rng = np.random.default_rng(0)
    v = rng.normal(size=(168, 168, 168)).astype(np.float32)
    v[1, 1, 1] = np.nan
    return _mrc(tmp_path / "big.mrc", v)


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
