"""Trust: table-driven bad-input suite for the `scnet` CLI.

* The output guard over EVERY command x EVERY input x (same path, symlink, hard link):
  exit 2, a "same file" error, the input unchanged, nothing written.
* Every case of the trust review (security, silent wrong results, late failures, tracebacks,
  interrupted and concurrent runs): a specific error before any output, or correct behaviour.
* Existing devices, FIFOs and sockets as outputs, over EVERY command x EVERY output slot:
  refused, left as they were (never replaced by a regular file).
* Special files, malformed text, odd MRC headers and geometry, identical halves, hostile model
  archives: a specific error before any output (each names the file and what to do).
* Classic bad inputs that already gave clear errors, kept from regressing.
  (Model files, outputs and rules have their own modules: test_modelfile, test_outputs, test_rules.)

Every CLI case asserts: exit status 2 (never a traceback), the expected words in the message,
inputs byte-identical afterwards, and no output file (or no file beyond those listed).
"""
import gzip
import json
import os
import shutil
import struct
import zipfile

import mrcfile
import numpy as np
import pytest
import torch

from _trust import ROOT, TINY, _Alarm, _evil_pickle, _kind, _mrc, _sha, _special, _train, _truncated
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


# --------------------------------------------------------------------------- special files as outputs, table-driven
SPECIAL_CASES = [(cmd, slot, kind) for cmd, (_, slots, _) in COMMANDS.items() for slot in slots
                 for kind in ("fifo", "chardev", "socket")]


@pytest.mark.parametrize("cmd,slot,kind", SPECIAL_CASES, ids=["-".join(c) for c in SPECIAL_CASES])
def test_output_never_replaces_a_device_fifo_or_socket(fx, tmp_path, capsys, cmd, slot, kind):
    """An existing output target that is not a regular file (as root, /dev/null's kind) is refused and kept."""
    roles, slots, argv = COMMANDS[cmd]
    ins = {r: str(fx / name) for r, name in roles.items()}
    outs = {"dir": str(tmp_path / "outdir"), "--output": str(tmp_path / "out.mrc"),
            "--save-config": str(tmp_path / "saved.json"), "--csv": str(tmp_path / "fsc.csv"),
            "--json": str(tmp_path / "res.json")}
    os.makedirs(outs["dir"])
    target = os.path.join(outs["dir"], slot[4:]) if slot.startswith("dir:") else outs[slot]
    _special(target, kind)
    before = {r: _sha(p) for r, p in ins.items()}
    listing = sorted(os.listdir(tmp_path)) + sorted(os.listdir(outs["dir"]))
    with _Alarm(60):
        rc = main(argv(ins, outs))
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "not a regular file" in err and target in err, err
    assert _kind(target) == kind  # still the device / FIFO / socket
    assert {r: _sha(p) for r, p in ins.items()} == before
    assert sorted(os.listdir(tmp_path)) + sorted(os.listdir(outs["dir"])) == listing


def test_special_output_table_covers_every_output_slot():
    assert len(SPECIAL_CASES) == 3 * sum(len(slots) for _, slots, _ in COMMANDS.values()) >= 75


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


def _predict_on(volume, fx, tmp_path, *extra):
    return ["predict", "--model", str(fx / "run" / "model.pt"), "--input", volume, "--output",
            str(tmp_path / "o.mrc"), "--quiet", *extra]


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


def _patched(src, dst, offset, fmt, *values):
    """A copy of MRC ``src`` with header bytes at ``offset`` replaced (little-endian ``fmt``)."""
    raw = bytearray(open(src, "rb").read())
    struct.pack_into("<" + fmt, raw, offset, *values)
    open(dst, "wb").write(bytes(raw))
    return str(dst)


def _voxels(t, xyz, name="v.mrc", origin_data=None):
    """The fixture's noisy volume with the header voxel size ``(x, y, z)`` (any values, even NaN or < 0)."""
    with mrcfile.new(str(t / name), overwrite=True) as m:
        m.set_data(np.ascontiguousarray(read_volume(str(origin_data))[0]) if origin_data else
                   np.random.default_rng(0).normal(size=(16, 24, 20)).astype(np.float32))
        m.header.cella.x, m.header.cella.y, m.header.cella.z = (v * n for v, n in zip(xyz, (20, 24, 16)))
    return str(t / name)


def _text(t, name, raw: bytes):
    (t / name).write_bytes(raw)
    return str(t / name)


def _bomb(fx, t, mb=256):
    """model.pt plus one deflated entry of ``mb`` MB of zeros (a few hundred KB on disk)."""
    dst = str(t / "bomb.pt")
    shutil.copy(fx / "run" / "model.pt", dst)
    with zipfile.ZipFile(dst, "a", zipfile.ZIP_DEFLATED) as z:
        with z.open("archive/extra/padding", "w", force_zip64=True) as fh:
            chunk = bytes(2 ** 20)
            for _ in range(mb):
                fh.write(chunk)
    return dst


def _truncated_pickle(fx, t):
    """A valid zip archive whose data.pkl entry stops half-way."""
    src, dst = str(fx / "run" / "model.pt"), str(t / "model.pt")
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            zout.writestr(info.filename, data[:len(data) // 2] if info.filename.endswith("data.pkl") else data)
    return dst


def _wide(ck):
    ck["model_config"].update(base_width=1024, max_width=1024)


def _zero_weights(ck):
    for v in ck["state_dict"].values():
        if v.is_floating_point():
            v.zero_()


def _copy(src, dst):
    shutil.copy(src, dst)
    return str(dst)


def _rec_with(fx, t, angles_file):
    return ["reconstruct", str(fx / "stack.mrcs"), str(t / "o.mrc"), "--angles", angles_file, "--backend", "builtin"]


def _halves_argv(fx, t, even, odd):
    return _train(fx, t, "--even", even, "--odd", odd)


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
    # special files where a regular file is needed: refused before they are opened (no hang, no endless read)
    "FIFO as --model": (lambda fx, t: _predict(_special(t / "m.pt", "fifo"), fx, t), "named pipe"),
    "/dev/zero as --model": (lambda fx, t: _predict("/dev/zero", fx, t), "character device"),
    "FIFO as --config": (lambda fx, t: _train(fx, t, "--config", _special(t / "c.json", "fifo")), "named pipe"),
    "FIFO as a volume": (lambda fx, t: _train(fx, t, noisy=_special(t / "n.mrc", "fifo")), "named pipe"),
    "socket as a volume": (lambda fx, t: ["evaluate", "--ground-truth", _special(t / "s.mrc", "socket"),
                                          str(fx / "noisy.mrc")], "socket"),
    "FIFO as the tilt angles": (lambda fx, t: ["reconstruct", str(fx / "stack.mrcs"), str(t / "o.mrc"), "--angles",
                                               _special(t / "a.tlt", "fifo")], "named pipe"),
    "folder as the tilt angles": (lambda fx, t: ["reconstruct", str(fx / "stack.mrcs"), str(t / "o.mrc"), "--angles",
                                                 str(t)], "is a folder"),
    "FIFO as the particles": (lambda fx, t: ["average", "--volume", str(fx / "noisy.mrc"), "--particles",
                                             _special(t / "p.txt", "fifo"), "--box", "4"], "named pipe"),
    # hostile model archives and headers: bounded before anything is inflated or built
    "archive entry inflates to 256 MB": (lambda fx, t: _predict(_bomb(fx, t), fx, t), "inflate"),
    "header asks for a 1024-wide network": (lambda fx, t: _predict(_model_variant(fx, t, _wide), fx, t), "asks for"),
    "truncated model pickle": (lambda fx, t: _predict(_truncated_pickle(fx, t), fx, t), "not a readable"),
    "all-zero-weight model": (lambda fx, t: _predict(_model_variant(fx, t, _zero_weights), fx, t),
                              "same value for every voxel"),
    # malformed text: a clear line, never a traceback
    "UTF-16 tilt angles": (lambda fx, t: _rec_with(fx, t, _text(t, "a.tlt", "\n".join(
        f"{a:.2f}" for a in np.linspace(-60, 60, _n_tilts(fx))).encode("utf-16"))), "UTF-16"),
    "Latin-1 tilt angles": (lambda fx, t: _rec_with(fx, t, _text(t, "a.tlt", b"# Kippwinkel in \xb0\n" + "\n".join(
        f"{a:.2f}" for a in np.linspace(-60, 60, _n_tilts(fx))).encode())), "not UTF-8"),
    "Latin-1 JSON config": (lambda fx, t: _train(fx, t, "--config", _text(t, "c.json", b'{"tilt_range": "\xb160"}')),
                            "not UTF-8"),
    "deeply nested JSON config": (lambda fx, t: _train(fx, t, "--config", _text(t, "c.json", b"[" * 100000 +
                                                                                b"]" * 100000)), "nests too deeply"),
    "5000-digit integer in a JSON config": (lambda fx, t: _train(fx, t, "--config", _text(
        t, "c.json", b'{"seed": ' + b"7" * 5000 + b"}")), "not valid JSON"),
    "average --seed -1": (lambda fx, t: ["average", "--volume", str(fx / "noisy.mrc"), "--particles",
                                         str(fx / "particles.txt"), "--box", "4", "--seed", "-1"], "seed"),
    "average --voxel-size -1": (lambda fx, t: ["average", "--volume", str(fx / "noisy.mrc"), "--particles",
                                               str(fx / "particles.txt"), "--box", "4", "--voxel-size", "-1"],
                                "voxel-size"),
    # odd MRC headers
    "negative nx in an MRC header": (lambda fx, t: _train(fx, t, noisy=_patched(fx / "noisy.mrc", t / "n.mrc", 0, "i",
                                                                                 -20)), "negative size"),
    "MRC mode 101 (4-bit)": (lambda fx, t: _train(fx, t, noisy=_patched(fx / "noisy.mrc", t / "n.mrc", 12, "i", 101)),
                             "4-bit"),
    "axis order 3,2,1": (lambda fx, t: _train(fx, t, noisy=_patched(fx / "noisy.mrc", t / "n.mrc", 64, "iii", 3, 2, 1)),
                         "mapc"),
    # geometry: one voxel size per volume, the same on every input's grid, never a guessed 1.0
    "anisotropic voxels": (lambda fx, t: _train(fx, t, noisy=_voxels(t, (2.0, 2.0, 4.0))), "anisotropic"),
    "NaN voxel size": (lambda fx, t: _train(fx, t, noisy=_voxels(t, (np.nan,) * 3)), "not a positive number"),
    "negative voxel size under --force": (lambda fx, t: _predict_on(_voxels(t, (-2.0,) * 3), fx, t, "--force"),
                                          "not a positive number"),
    "voxel size 0 under --force": (lambda fx, t: _predict_on(_voxels(t, (0.0,) * 3), fx, t, "--force"),
                                   "sets no voxel size"),
    "prior at another voxel size": (lambda fx, t: _train(fx, t, prior=_voxels(t, (3.0,) * 3, "p.mrc", fx / "prior.mrc")),
                                    "voxel size"),
    "evaluate: ground truth at another voxel size": (lambda fx, t: [
        "evaluate", "--ground-truth", _voxels(t, (5.0,) * 3, "gt.mrc", fx / "noisy.mrc"), str(fx / "prior.mrc")],
        "voxel size"),
    "fsc: volumes at other voxel sizes": (lambda fx, t: ["fsc", str(fx / "noisy.mrc"), _voxels(
        t, (5.0,) * 3, "b.mrc", fx / "prior.mrc")], "voxel size"),
    "fsc: mask at another voxel size": (lambda fx, t: ["fsc", str(fx / "noisy.mrc"), str(fx / "prior.mrc"), "--mask",
                                                       _voxels(t, (5.0,) * 3, "m.mrc", fx / "prior.mrc")], "voxel size"),
    "fsc: no voxel size in the headers": (lambda fx, t: ["fsc", _voxels(t, (0.0,) * 3, "a.mrc", fx / "noisy.mrc"),
                                                         _voxels(t, (0.0,) * 3, "b.mrc", fx / "prior.mrc")],
                                          "--voxel-size"),
    "average: no voxel size in the header": (lambda fx, t: ["average", "--volume", _voxels(
        t, (0.0,) * 3, "a.mrc", fx / "noisy.mrc"), "--particles", str(fx / "particles.txt"), "--box", "4"],
        "--voxel-size"),
    "average --align-on at another voxel size": (lambda fx, t: [
        "average", "--volume", str(fx / "noisy.mrc"), "--align-on", _voxels(t, (5.0,) * 3, "a.mrc", fx / "prior.mrc"),
        "--particles", str(fx / "particles.txt"), "--box", "4"], "voxel size"),
    # identical halves: a network (or an FSC) of a volume against itself learns (or measures) the identity
    "train --even X --odd X": (lambda fx, t: _halves_argv(fx, t, str(fx / "prior.mrc"), str(fx / "prior.mrc")),
                               "same file"),
    "train halves: a copy as the other half": (lambda fx, t: _halves_argv(
        fx, t, str(fx / "prior.mrc"), _copy(fx / "prior.mrc", t / "odd.mrc")), "identical voxels"),
    "predict --halves X X": (lambda fx, t: _predict(str(fx / "run" / "model.pt"), fx, t, "--halves",
                                                    str(fx / "prior.mrc"), str(fx / "prior.mrc")), "same file"),
    "fsc: one file twice": (lambda fx, t: ["fsc", str(fx / "noisy.mrc"), str(fx / "noisy.mrc")], "same file"),
    "fsc: a copy of VOL1": (lambda fx, t: ["fsc", str(fx / "noisy.mrc"), _copy(fx / "noisy.mrc", t / "b.mrc")],
                            "identical voxels"),
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
    with _Alarm(120):  # a FIFO that is opened would block forever
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


# --------------------------------------------------------------------------- correct output where it used to fail

def test_compressed_mrc_is_read_by_train_and_predict_alike(fx, tmp_path):
    """A valid .mrc.gz: train used to read it and predict to refuse it; both read it, and predict's output equals
    the output of the same file uncompressed."""
    gz = tmp_path / "noisy.mrc.gz"
    with open(fx / "noisy.mrc", "rb") as src, gzip.open(gz, "wb") as dst:
        dst.write(src.read())
    assert main(_train(fx, tmp_path, noisy=str(gz))) == 0
    model = str(tmp_path / "run" / "model.pt")
    tiles = ["--tile-size", "16", "--overlap", "4"]
    assert main(["predict", "--model", model, "--input", str(gz), "--output", str(tmp_path / "a.mrc"), "--quiet",
                 *tiles]) == 0
    assert main(["predict", "--model", model, "--input", str(fx / "noisy.mrc"), "--output", str(tmp_path / "b.mrc"),
                 "--quiet", *tiles]) == 0
    assert np.array_equal(read_volume(str(tmp_path / "a.mrc"))[0], read_volume(str(tmp_path / "b.mrc"))[0])


def test_unset_voxel_size_is_carried_never_replaced_by_one(fx, tmp_path):
    """Header voxel size 0 (not set): the model records none, predict writes 0, not a guessed 1.0."""
    with mrcfile.new(str(tmp_path / "n0.mrc")) as m:
        m.set_data(read_volume(str(fx / "noisy.mrc"))[0])
    assert main(_train(fx, tmp_path, noisy=str(tmp_path / "n0.mrc"))) == 0
    model = str(tmp_path / "run" / "model.pt")
    assert "voxel_size" not in torch.load(model, weights_only=True)
    assert main(["predict", "--model", model, "--input", str(tmp_path / "n0.mrc"), "--output", str(tmp_path / "o.mrc"),
                 "--quiet", "--tile-size", "16", "--overlap", "4"]) == 0
    with mrcfile.open(str(tmp_path / "o.mrc")) as m:
        assert float(m.voxel_size.x) == 0.0


@pytest.mark.parametrize("command", sorted(COMMANDS) + ["phantom"])
def test_out_of_memory_advises_only_the_command_s_own_options(command, capsys, monkeypatch):
    """MemoryError -> one line (exit 1) naming memory options the command really has, no others."""
    from scnet.cli import MEMORY_OPTIONS, build_parser
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    own = {o for a in sub._actions for o in a.option_strings}

    def oom(args):
        raise MemoryError
    import scnet.cli as cli
    real = cli.build_parser

    def parser():
        p = real()
        p._subparsers._group_actions[0].choices[command].set_defaults(func=oom)
        return p
    monkeypatch.setattr(cli, "build_parser", parser)
    argv = {"train": ["--noisy", "n", "--output-dir", "d"], "denoise": ["--noisy", "n", "--output", "o",
                                                                        "--output-dir", "d"],
            "predict": ["--model", "m", "--input", "i", "--output", "o"], "filter": ["i", "o"],
            "align": ["i", "o", "--xf", "x"],
            "reconstruct": ["i", "o", "--angles", "a"], "simulate": ["--output-dir", "d"], "fsc": ["a", "b"],
            "evaluate": ["--ground-truth", "g", "v"], "baseline": ["gaussian", "i", "o"],
            "average": ["--volume", "v", "--particles", "p"], "phantom": ["--output-dir", "d"]}[command]
    assert cli.main([command] + argv) == 1
    err = capsys.readouterr().err
    assert "not enough memory" in err and "Traceback" not in err
    named = {o for o in MEMORY_OPTIONS if o in err}
    assert named <= own and named == {o for o in MEMORY_OPTIONS if o in own}, (named, own)
