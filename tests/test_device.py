"""scnet.device: device parsing/resolution and the CPU allocation (all testable without a GPU)."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from scnet import device as D
from scnet.errors import SCNetInputError

HAS_CUDA = torch.cuda.is_available()


@pytest.mark.parametrize("spec,expected", [
    (None, ["auto"]), ("", ["auto"]), ("auto", ["auto"]), ("AUTO", ["auto"]), ("cpu", ["cpu"]),
    ("cuda", ["cuda"]), ("cuda:1", ["cuda:1"]), ("cuda:0, cuda:1", ["cuda:0", "cuda:1"]),
    (["cuda:0", "cuda:2"], ["cuda:0", "cuda:2"]),
])
def test_parse_devices(spec, expected):
    assert D.parse_devices(spec) == expected


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cuda:-1", "cpu,cuda:0", "auto,cuda:1", "cuda:0,cuda:0", "mps"])
def test_parse_devices_rejects(spec):
    with pytest.raises(SCNetInputError):
        D.parse_devices(spec)


def test_gpu_devices_maps_ids_as_seen_in_the_job():
    assert D.gpu_devices([]) == "cpu"
    assert D.gpu_devices([0]) == "cuda:0"
    assert D.gpu_devices(["0", 1]) == "cuda:0,cuda:1"
    with pytest.raises(SCNetInputError):
        D.gpu_devices(["a"])


def test_auto_is_cpu_without_cuda_and_cuda0_with(monkeypatch):
    monkeypatch.setattr(D, "_cuda_count", lambda: 0)
    assert D.resolve_device("auto") == torch.device("cpu")
    assert D.device_name(None) == "cpu"
    monkeypatch.setattr(D, "_cuda_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "FakeGPU")
    assert D.resolve_device("auto") == torch.device("cuda:0")
    assert D.resolve_devices("cuda:0,cuda:1") == [torch.device("cuda:0"), torch.device("cuda:1")]
    assert D.device_name("cuda:1") == "cuda:1"


def test_gpu_not_visible_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(D, "_cuda_count", lambda: 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    with pytest.raises(SCNetInputError, match=r"cuda:1 is not visible here, only 1 GPU.*CUDA_VISIBLE_DEVICES=3"):
        D.resolve_device("cuda:1")


@pytest.mark.skipif(HAS_CUDA, reason="checks the message without CUDA")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(SCNetInputError, match="CUDA is not available"):
        D.resolve_device("cuda:0")


def test_allocated_cpus_follows_affinity_and_slurm(monkeypatch):
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7})
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert D.allocated_cpus() == 8                      # the mask, not the node's 64
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
    assert D.allocated_cpus() == 3                      # the job's allocation
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert D.allocated_cpus() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "0")
    assert D.allocated_cpus() == 8                      # unusable values ignored


def test_set_threads_uses_the_allocation(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
        assert D.set_threads() == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_train_and_filters_use_device_module():
    """One place: the engine's device helpers are the device module's."""
    from scnet import filters, train
    assert train.resolve_device is D.resolve_device and train.set_threads is D.set_threads
    assert filters._torch_device("cpu") == torch.device("cpu")
    with pytest.raises(SCNetInputError):
        filters._torch_device("gpu0")


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "scnet", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_cli_default_device_is_auto_and_recorded_concretely(tmp_path):
    """`scnet train` without --device: 'auto' resolved (cpu here) and written to the saved config."""
    import argparse
    import json
    from scnet.cli import engine
    cfg = tmp_path / "cfg.json"
    p = argparse.ArgumentParser()
    engine.add_train_options(p)
    args = p.parse_args(["--save-config", str(cfg)])
    c = engine.config_from_args(args)
    engine._save_config(args, c)
    assert c.device == ("cuda:0" if HAS_CUDA else "cpu")
    assert json.loads(cfg.read_text())["device"] == c.device
    args = p.parse_args(["--device", "cpu"])
    assert engine.config_from_args(args).device == "cpu"
    r = _cli("predict", "--help")
    assert "[auto]" in r.stdout
    r = _cli("predict", "--model", str(tmp_path / "m.pt"), "--input", str(tmp_path / "i.mrc"),
             "--output", str(tmp_path / "o.mrc"), "--device", "gpu0")
    assert r.returncode == 2 and "not understood" in r.stderr


def test_autocast_choices():
    import contextlib
    assert isinstance(D.autocast("cpu", "fp32"), contextlib.nullcontext)
    with pytest.raises(SCNetInputError, match="fp16 needs a CUDA"):
        D.autocast("cpu", "fp16")
    with pytest.raises(SCNetInputError, match="precision"):
        D.autocast("cpu", "int8")


def test_bf16_inference_runs_and_stays_close_to_fp32():
    """The bf16 autocast path of prediction (CUDA's, exercised on the CPU): it really changes the
    arithmetic, and the denoised tile stays within 2% (relative RMS) of the fp32 one."""
    from scnet.model import ModelConfig, SCNet
    from scnet.predict import _run_tile
    torch.manual_seed(0)
    model = SCNet(ModelConfig(base_width=4)).eval()
    tile = np.random.default_rng(0).normal(size=(24, 24, 24)).astype(np.float32)
    with torch.no_grad():
        ref = _run_tile(model, tile, torch.device("cpu"), model.cfg.multiple(), 2)
        half = _run_tile(model, tile, torch.device("cpu"), model.cfg.multiple(), 2,
                         precision="bf16")
    assert half.dtype == np.float32 and half.shape == ref.shape
    rel = float(np.sqrt(np.mean((half - ref) ** 2)) / (np.sqrt(np.mean(ref ** 2)) + 1e-12))
    assert 0 < rel < 0.02, rel


def test_auto_precision_is_bf16_exactly_where_the_hardware_computes_it(monkeypatch):
    """auto -> bf16 on a CPU with AVX-512 BF16 or AMX (or a bf16 GPU), fp32 elsewhere; the explicit ones stay."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert not D.native_bf16("cpu") and D.resolve_precision("cpu", "auto") == "fp32"
    import contextlib
    assert isinstance(D.autocast("cpu", "auto"), contextlib.nullcontext)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert D.native_bf16("cpu") and D.resolve_precision("cpu", "auto") == "bf16"
    assert isinstance(D.autocast("cpu", "auto"), torch.autocast)
    assert D.resolve_precision("cpu", "fp32") == "fp32" and D.resolve_precision("cpu", "bf16") == "bf16"
    from scnet.config import PredictConfig
    assert PredictConfig().precision == "auto"


def test_predict_logs_the_precision_it_resolved(tmp_path, capsys):
    from scnet.config import PredictConfig
    from scnet.predict import predict_stream
    from scnet.data import Normalisation
    from scnet.model import ModelConfig, SCNet
    model = SCNet(ModelConfig(base_width=4, depth=3)).eval()
    vol = np.zeros((8, 16, 16), np.float32)
    predict_stream(model, Normalisation(0.0, 1.0), vol, lambda *a: None, PredictConfig(progress=True, tta=1))
    err = capsys.readouterr().err
    assert f"1 flip(s), {D.resolve_precision('cpu', 'auto')} (auto)" in err


def test_an_unknown_precision_is_refused_by_validate():
    from scnet.config import PredictConfig
    with pytest.raises(SCNetInputError, match="precision"):
        PredictConfig(precision="int8").validate()
    assert PredictConfig(precision="bf16").validate().precision == "bf16"
