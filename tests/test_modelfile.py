"""Model and checkpoint files (scnet.modelfile, the torch-free reader in scnet.rules): the format loads with
``weights_only``, a malicious pickle is never run, a resume with other data or options is refused, a
truncated or incomplete file is a clear error."""
import shutil

import numpy as np
import pytest
import torch

from _trust import _evil_pickle, _mrc, _sha, _train, _truncated
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
