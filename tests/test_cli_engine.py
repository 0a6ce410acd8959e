"""`scnet train / predict / denoise`: options from the dataclass, config in/out, bad input -> exit 2, no output."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from scnet.choices import DEFAULT_TTA
from scnet.cli import build_parser, main
from scnet.data import synthetic_pair
from scnet.io import read_info, read_volume, write_volume
from scnet.config import TrainConfig

TINY = ["--patch-size", "16", "--epochs", "1", "--iterations-per-epoch", "2", "--base-width", "2", "--quiet"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    _, noisy, prior = synthetic_pair((16, 24, 20), seed=0)
    write_volume(str(d / "noisy.mrc"), noisy, voxel_size=2.0, origin=(4.0, 5.0, 6.0))
    write_volume(str(d / "prior.mrc"), prior, voxel_size=2.0)
    return d


def test_every_trainconfig_field_is_an_option():
    from dataclasses import fields
    p = build_parser()
    sub = p._subparsers._group_actions[0].choices
    for cmd in ("train", "denoise"):
        opts = {o for a in sub[cmd]._actions for o in a.option_strings}
        for f in fields(TrainConfig):
            assert "--" + f.name.replace("_", "-") in opts
        assert {"--config", "--save-config", "--noisy", "--prior", "--output-dir"} <= opts
    help_text = sub["train"].format_help()
    assert "model.pt" in help_text and "--resume" in help_text


def test_help_runs():
    r = subprocess.run([sys.executable, "-m", "scnet", "predict", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--tile-size" in r.stdout


def test_train_predict_denoise_roundtrip(files, tmp_path):
    cfg_out = str(tmp_path / "cfg.json")
    json.dump({"lr": 0.001, "seed": 3}, open(tmp_path / "in.json", "w"))
    rc = main(["train", "--noisy", str(files / "noisy.mrc"), "--prior", str(files / "prior.mrc"),
               "--output-dir", str(tmp_path / "run"), "--config", str(tmp_path / "in.json"),
               "--save-config", cfg_out, "--seed", "4"] + TINY)
    assert rc == 0
    saved = json.load(open(cfg_out))
    assert saved["lr"] == 0.001 and saved["seed"] == 4 and saved["patch_size"] == 16  # option > config file
    assert os.path.exists(tmp_path / "run" / "model.pt")
    out = str(tmp_path / "den.mrc")
    assert main(["predict", "--model", str(tmp_path / "run" / "model.pt"), "--input", str(files / "noisy.mrc"),
                 "--output", out, "--tile-size", "16", "--overlap", "4", "--quiet"]) == 0
    info = read_info(out)
    assert info.shape == (16, 24, 20) and info.voxel_size == 2.0 and info.origin == (4.0, 5.0, 6.0)
    # --tta reaches the prediction: the default is DEFAULT_TTA flips, one flip (none) changes the result
    assert DEFAULT_TTA != 1
    out_tta = str(tmp_path / "den_tta1.mrc")
    assert main(["predict", "--model", str(tmp_path / "run" / "model.pt"), "--input", str(files / "noisy.mrc"),
                 "--output", out_tta, "--tile-size", "16", "--overlap", "4", "--tta", "1", "--quiet"]) == 0
    assert not np.allclose(read_volume(out_tta)[0], read_volume(out)[0])
    out2 = str(tmp_path / "den2.mrc")
    assert main(["denoise", "--noisy", str(files / "noisy.mrc"), "--prior", str(files / "prior.mrc"),
                 "--output", out2, "--output-dir", str(tmp_path / "run2"), "--tile-size", "16", "--overlap", "4"] + TINY) == 0
    assert read_volume(out2)[0].shape == (16, 24, 20)


def _bad(tmp_path, name, data=None, raw=None):
    p = tmp_path / name
    if raw is not None:
        p.write_bytes(raw)
    else:
        import mrcfile
        with mrcfile.new(str(p), overwrite=True) as m:
            m.set_data(np.asarray(data, np.float32))
    return str(p)


def _run_cli(args, capsys):
    rc = main(args)
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("case", ["missing", "corrupt", "truncated", "shape", "nan", "constant", "2d"])
def test_bad_input_exit_2_and_no_output(case, files, tmp_path, capsys):
    good = read_volume(str(files / "noisy.mrc"))[0]
    noisy = str(files / "noisy.mrc")
    prior = str(files / "prior.mrc")
    if case == "missing":
        noisy = str(tmp_path / "nope.mrc")
    elif case == "corrupt":
        noisy = _bad(tmp_path, "c.mrc", raw=b"\x00garbage" * 400)
    elif case == "truncated":
        raw = open(files / "noisy.mrc", "rb").read()
        noisy = _bad(tmp_path, "t.mrc", raw=raw[:len(raw) // 2])
    elif case == "shape":
        prior = _bad(tmp_path, "s.mrc", good[:, :, :10])
    elif case == "nan":
        g = good.copy()
        g[3, 3, 3] = np.nan
        noisy = _bad(tmp_path, "n.mrc", g)
    elif case == "constant":
        prior = _bad(tmp_path, "k.mrc", np.full_like(good, 7.0))
    elif case == "2d":
        noisy = _bad(tmp_path, "2.mrc", good[0])
    out = tmp_path / "out.mrc"
    rc, err = _run_cli(["denoise", "--noisy", noisy, "--prior", prior, "--output", str(out),
                        "--output-dir", str(tmp_path / "run")] + TINY, capsys)
    assert rc == 2, err
    assert "error" in err
    assert not out.exists() and not (tmp_path / "run").exists()


def test_bad_options_exit_2(files, tmp_path, capsys):
    json.dump({"patchsize": 16}, open(tmp_path / "bad.json", "w"))
    base = ["train", "--noisy", str(files / "noisy.mrc"), "--prior", str(files / "prior.mrc"),
            "--output-dir", str(tmp_path / "r")]
    rc, err = _run_cli(base + ["--config", str(tmp_path / "bad.json")], capsys)
    assert rc == 2 and "patchsize" in err
    rc, err = _run_cli(base + ["--patch-size", "18"], capsys)
    assert rc == 2 and "patch_size" in err
    rc, err = _run_cli(base + ["--device", "cuda:7"] + TINY, capsys)
    import torch
    if not torch.cuda.is_available():
        assert rc == 2 and "CUDA" in err
    assert not (tmp_path / "r").exists()
    rc, err = _run_cli(["predict", "--model", str(tmp_path / "none.pt"), "--input", str(files / "noisy.mrc"),
                        "--output", str(tmp_path / "o.mrc")], capsys)
    assert rc == 2 and not (tmp_path / "o.mrc").exists()


def test_init_model_option_reaches_training(files, tmp_path):
    base = ["--noisy", str(files / "noisy.mrc"), "--prior", str(files / "prior.mrc")]
    assert main(["train"] + base + ["--output-dir", str(tmp_path / "a")] + TINY) == 0
    src = str(tmp_path / "a" / "model.pt")
    out = str(tmp_path / "d.mrc")
    assert main(["denoise"] + base + ["--output", out, "--output-dir", str(tmp_path / "b"), "--init-model", src,
                                      "--tile-size", "16", "--overlap", "4"] + TINY) == 0
    assert json.load(open(tmp_path / "b" / "training_summary.json"))["init_model"] == os.path.abspath(src)
    before = open(src, "rb").read()
    assert main(["train"] + base + ["--output-dir", str(tmp_path / "a"), "--init-model", src] + TINY) == 2
    assert open(src, "rb").read() == before
