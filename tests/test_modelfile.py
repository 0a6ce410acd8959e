"""Model and checkpoint files (scnet.modelfile, the torch-free reader in scnet.modelscan): the format loads with
``weights_only``, a malicious pickle is never run, a resume with other data or options is refused, a
truncated or incomplete file is a clear error, a checkpoint whose states would not apply is refused before
anything is touched, special files, archive bombs and oversized network headers are refused in both readers."""
import os
import shutil
import zipfile

import numpy as np
import pytest
import torch

from _trust import _Alarm, _evil_pickle, _mrc, _sha, _special, _train, _truncated
from scnet.cli import main
from scnet.io import read_volume


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


def test_model_file_rule_without_torch(fx, tmp_path):
    from scnet.modelscan import model_file_errors
    assert model_file_errors(str(fx / "run" / "model.pt")) == []
    assert "checkpoint" in model_file_errors(str(fx / "run" / "checkpoint.pt"))[0]
    torch.save({"weights": torch.zeros(3)}, str(tmp_path / "other.pt"))
    assert "not an SC-Net model" in model_file_errors(str(tmp_path / "other.pt"))[0]
    assert "truncated" in model_file_errors(_truncated(fx, tmp_path))[0]
    (tmp_path / "zip.pt").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    assert model_file_errors(str(tmp_path / "zip.pt"))


def test_model_file_network_read_without_unpickling(tmp_path):
    """The train protocol's 'Start from a trained model' check reads the network from model.pt torch-free."""
    from scnet.data import fit_normalisation
    from scnet.model import SCNet
    from scnet.modelfile import save_model
    from scnet.modelscan import init_model_errors, model_file_network, model_file_voxel_size
    from scnet.config import TrainConfig
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


def _break_optimizer_shape(ck):
    ck["optimizer"]["state"][0]["exp_avg"] = torch.zeros(3)


def _set(key, value):
    def edit(ck):
        ck[key] = value
    return edit


def _edit_opt(fn):
    def edit(ck):
        fn(ck["optimizer"])
    return edit


# name -> (edit of the checkpoint dict, words in the error): each loads, and used to delete model.pt then crash
BAD_STATES = {
    "optimizer moments of another shape": (_break_optimizer_shape, "shape"),
    "no param_groups": (_edit_opt(lambda o: o.pop("param_groups")), "param_groups"),
    "empty param_groups": (_edit_opt(lambda o: o.update(param_groups=[])), "0 parameter groups"),
    "param group missing parameters": (_edit_opt(lambda o: o["param_groups"][0].update(params=[0, 1])), "parameters"),
    "optimizer lr NaN": (_edit_opt(lambda o: o["param_groups"][0].update(lr=float("nan"))), "lr"),
    "optimizer step NaN": (_edit_opt(lambda o: o["state"][0].update(step=torch.tensor(float("nan")))), "step"),
    "state of a parameter that does not exist": (_edit_opt(lambda o: o["state"].update({999: {}})), "999"),
    "garbage numpy RNG state": (_set("numpy_rng", {"bit_generator": "PCG64", "state": "garbage"}), "numpy random"),
    "another numpy bit generator": (_set("numpy_rng", {"bit_generator": "MT19937", "state": {}}), "numpy random"),
    "garbage torch RNG state": (_set("torch_rng", torch.zeros(7, dtype=torch.uint8)), "torch random"),
    "torch RNG state as text": (_set("torch_rng", "seed 0"), "torch random"),
    "non-integer iteration": (_set("iteration", 2.5), "iteration 2.5"),
    "negative epoch": (_set("epoch", -1), "epoch -1"),
    "iteration beyond its epochs": (_set("iteration", 10 ** 6), "do not fit"),
    "boolean epoch": (_set("epoch", True), "epoch True"),
    "stop-rule state garbage": (_set("stopper", {"ema": "low"}), "stop rule"),
    "stop-rule state with unknown keys": (_set("stopper", {"patience_left": 3}), "stop rule"),
    "negative seconds": (_set("seconds", -5.0), "seconds"),
    "data_shape of two sizes": (_set("data_shape", [16, 24]), "data_shape"),
    "train_config not a dict": (_set("train_config", [1, 2]), "train_config"),
}


@pytest.mark.parametrize("name", sorted(BAD_STATES))
def test_resume_validates_the_whole_checkpoint_before_touching_anything(fx, tmp_path, capsys, name):
    """Every state --resume applies is checked first: exit 2 with the reason, and the folder (model.pt, the
    checkpoint, the log, the options) byte-identical -- no model deleted, no traceback."""
    shutil.copytree(fx / "run", tmp_path / "run")
    ck = torch.load(str(fx / "run" / "checkpoint.pt"), weights_only=True)
    edit, words = BAD_STATES[name]
    edit(ck)
    torch.save(ck, str(tmp_path / "run" / "checkpoint.pt"))
    before = {f: _sha(tmp_path / "run" / f) for f in os.listdir(tmp_path / "run")}
    rc = main(_train(fx, tmp_path, "--resume"))
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "cannot be resumed" in err and words in err and "Traceback" not in err, err
    assert {f: _sha(tmp_path / "run" / f) for f in os.listdir(tmp_path / "run")} == before


def test_the_unedited_checkpoint_passes_the_resume_checks(fx):
    from scnet.modelfile import load_checkpoint
    ck = load_checkpoint(str(fx / "run" / "checkpoint.pt"))
    assert ck["epoch"] == 1 and ck["iteration"] == 2


def test_network_size_formula_matches_the_network():
    """The torch-free count that bounds a header's network (scnet.modelscan) equals SCNet's state_dict."""
    from scnet.model import ModelConfig, SCNet
    from scnet.modelscan import network_tensor_count
    for cfg in (ModelConfig(), ModelConfig(2, 1, False), ModelConfig(16, 4, True), ModelConfig(32, 5, False),
                ModelConfig(100, 2, True, 200), ModelConfig(8, 3, True, row_gap=0), ModelConfig(4, 2, True, row_gap=2)):
        assert network_tensor_count(cfg.to_dict()) == sum(v.numel() for v in SCNet(cfg).state_dict().values())


def _bomb(fx, tmp_path, mb):
    dst = str(tmp_path / "bomb.pt")
    shutil.copy(fx / "run" / "model.pt", dst)
    with zipfile.ZipFile(dst, "a", zipfile.ZIP_DEFLATED) as z:
        with z.open("archive/extra/padding", "w", force_zip64=True) as fh:
            for _ in range(mb):
                fh.write(bytes(2 ** 20))
    return dst


def test_archive_bomb_is_refused_before_inflating_in_both_readers(fx, tmp_path, monkeypatch):
    """A 0.4 MB model.pt whose extra entry inflates to 512 MB: the plugin's torch-free check refuses it reading
    only the zip directory (peak Python memory < 8 MB), the engine before torch.load runs."""
    import tracemalloc
    from scnet.modelscan import model_file_errors, model_file_network
    bomb = _bomb(fx, tmp_path, 512)
    assert os.path.getsize(bomb) < 2 * 2 ** 20
    tracemalloc.start()
    errors = model_file_errors(bomb)
    assert model_file_network(bomb) == {}
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert errors and "inflate" in errors[0] and peak < 8 * 2 ** 20, (errors, peak)
    from scnet.errors import SCNetInputError
    from scnet.modelfile import load_model_file

    def never(*a, **k):
        raise AssertionError("torch.load ran on an archive bomb")
    monkeypatch.setattr(torch, "load", never)
    with pytest.raises(SCNetInputError, match="inflate"):
        load_model_file(bomb)


def test_a_header_asking_for_a_huge_network_is_refused_before_building_it(fx, tmp_path, monkeypatch):
    """model_config asking for a 1024-wide network (1.2 GB) beside 0.1 MB of weights: refused by the plugin's
    reader and by the engine BEFORE any network is built (it used to build 1.6 GB first)."""
    ck = torch.load(str(fx / "run" / "model.pt"), weights_only=True)
    ck["model_config"].update(base_width=1024, max_width=1024)
    wide = str(tmp_path / "wide.pt")
    torch.save(ck, wide)
    from scnet.modelscan import model_file_errors
    assert "asks for" in model_file_errors(wide)[0]
    import scnet.model
    from scnet.errors import SCNetInputError
    from scnet.modelfile import load_model_file

    class NoNetwork:
        def __init__(self, *a, **k):
            raise AssertionError("a network was built")
    monkeypatch.setattr(scnet.model, "SCNet", NoNetwork)
    with pytest.raises(SCNetInputError, match="asks for"):
        load_model_file(wide)
    assert model_file_errors(str(fx / "run" / "model.pt")) == []  # a real model passes the same bound


def test_special_files_are_refused_by_the_torch_free_reader(tmp_path):
    from scnet.modelscan import model_file_errors, model_file_network
    fifo = _special(tmp_path / "m.pt", "fifo")
    with _Alarm(30):
        assert "named pipe" in model_file_errors(fifo)[0]
        assert "character device" in model_file_errors("/dev/zero")[0]
        assert "folder" in model_file_errors(str(tmp_path))[0]
        assert model_file_network(fifo) == {}


def test_truncated_pickle_in_a_valid_archive(fx, tmp_path, capsys):
    """The zip is intact but its data.pkl stops half-way: a clear error in both readers, no traceback."""
    src, dst = str(fx / "run" / "model.pt"), str(tmp_path / "model.pt")
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            zout.writestr(info.filename, data[:len(data) // 2] if info.filename.endswith("data.pkl") else data)
    from scnet.modelscan import model_file_errors
    assert "damaged" in model_file_errors(dst)[0]
    from scnet.errors import SCNetInputError
    from scnet.modelfile import load_model_file
    with pytest.raises(SCNetInputError, match="not a readable"):
        load_model_file(dst)


def test_an_all_zero_model_is_refused(fx, tmp_path):
    """All weights 0: the network gives one value everywhere; refused at load (predict, --init-model)."""
    ck = torch.load(str(fx / "run" / "model.pt"), weights_only=True)
    for v in ck["state_dict"].values():
        if v.is_floating_point():
            v.zero_()
    p = str(tmp_path / "zero.pt")
    torch.save(ck, p)
    from scnet.errors import SCNetInputError
    from scnet.modelfile import load_initial_weights, load_model_file
    for load in (load_model_file, lambda q: load_initial_weights(q, ck["model_config"])):
        with pytest.raises(SCNetInputError, match="same value for every voxel"):
            load(p)


def test_the_plugin_reader_stays_torch_and_numpy_free(fx):
    """scnet.modelscan (and scnet.files it uses) run in the Scipion environment, which has no torch."""
    import subprocess
    import sys
    code = ("import sys; sys.modules['torch'] = None; sys.modules['numpy'] = None\n"
            "from scnet.modelscan import model_file_errors, model_file_network\n"
            f"assert model_file_errors({str(fx / 'run' / 'model.pt')!r}) == []\n"
            f"assert model_file_network({str(fx / 'run' / 'model.pt')!r})['base_width'] == 2\n"
            "assert 'character device' in model_file_errors('/dev/zero')[0]")
    subprocess.run([sys.executable, "-c", code], check=True)
