"""The engine environment's recipe (scnet/engine_env.py), run by `scipion3 installb scnet` and
`make envs`: the exact steps, the torch build choice, the engine's files and the failure paths.
(The whole recipe runs for real in tests/install/test_scipion_install.py.)"""
import os
import stat
import subprocess
import sys

import pytest

import scnet
from scnet import deps, engine_env

PREFIX = "/opt/scnet env"


def _pip_steps(steps):
    return [argv for _, argv in steps if argv[1:4] == ["-m", "pip", "install"]]


def test_cpu_plan_lock_without_resolver_then_cpu_torch_last():
    steps = engine_env.plan(PREFIX, python="/usr/bin/python3.11", build="cpu")
    py = os.path.join(PREFIX, "bin", "python")
    assert steps[1][1] == ["/usr/bin/python3.11", "-m", "venv", PREFIX]
    lock, torch = _pip_steps(steps)
    assert lock[0] == py and lock[-3:] == ["--no-deps", "-r", engine_env.LOCK_FILE]
    assert torch[0] == py and torch[-1] == deps.TORCH
    assert "--no-deps" in torch  # its dependencies are in the lock: no resolver at all
    assert torch[torch.index("--index-url") + 1] == engine_env.CPU_INDEX
    # torch is the last thing pip installs: nothing after it can swap it
    assert [a for _, a in steps].index(torch) > [a for _, a in steps].index(lock)
    assert steps[-1][1] == [os.path.join(PREFIX, "bin", "scnet"), "--version"]
    assert not any("scipion-em-scnet" in " ".join(a) for _, a in steps)  # never the registry under our name


def test_cuda_plan_takes_torch_with_its_cuda_libraries():
    torch = _pip_steps(engine_env.plan(PREFIX, python="py", build="cuda"))[1]
    assert "--no-deps" not in torch and "--index-url" not in torch and torch[-1] == deps.TORCH
    torch = _pip_steps(engine_env.plan(PREFIX, python="py", build="cuda", index="https://x/cu126"))[1]
    assert torch[torch.index("--index-url") + 1] == "https://x/cu126"


def test_auto_build_follows_the_nvidia_driver(monkeypatch):
    monkeypatch.setattr(engine_env, "nvidia_driver_found", lambda: False)
    assert engine_env.resolve_torch_build("auto") == "cpu"
    assert engine_env.resolve_torch_build("") == "cpu"
    monkeypatch.setattr(engine_env, "nvidia_driver_found", lambda: True)
    assert engine_env.resolve_torch_build("auto") == "cuda"
    assert engine_env.resolve_torch_build("CPU") == "cpu"
    with pytest.raises(engine_env.EngineEnvError, match="SCNET_TORCH"):
        engine_env.resolve_torch_build("rocm")


def test_lock_is_the_package_file_and_checkout_is_linked():
    assert os.path.dirname(engine_env.LOCK_FILE) == os.path.dirname(os.path.abspath(scnet.__file__))
    assert engine_env.is_checkout()  # these tests run from the repository
    assert "link the engine" in engine_env.plan(PREFIX, python="py", build="cpu")[4][0]
    assert "copy the engine" in engine_env.plan(PREFIX, python="py", build="cpu", link=False)[4][0]


def test_default_python_is_311_or_newer():
    py = engine_env.default_python()
    assert py == sys.executable if sys.version_info >= (3, 11) else py == "python3.11"


def _fake_prefix(tmp_path):
    """A prefix whose bin/python is this interpreter reading packages from the prefix's own site first."""
    prefix = tmp_path / "env with space"
    site = prefix / "site"
    (prefix / "bin").mkdir(parents=True)
    site.mkdir()
    py = prefix / "bin" / "python"
    py.write_text(f'#!/bin/sh\nPYTHONPATH="{site}" exec "{sys.executable}" "$@"\n')
    py.chmod(py.stat().st_mode | stat.S_IEXEC)
    return str(prefix), str(site)


@pytest.mark.parametrize("link", [True, False])
def test_engine_files_linked_or_copied_and_command_runs(tmp_path, monkeypatch, link):
    prefix, site = _fake_prefix(tmp_path)
    monkeypatch.setattr(engine_env, "_output", lambda argv, _real=engine_env._output: (
        site if "sysconfig" in " ".join(argv) else _real(argv)))
    target = engine_env.install_engine_files(prefix, link=link)
    assert target == os.path.join(site, "scnet")
    if link:
        assert os.path.islink(target) and os.path.realpath(target) == os.path.realpath(engine_env.PACKAGE_DIR)
    else:
        assert not os.path.islink(target) and os.path.isfile(os.path.join(target, "engine.lock"))
        assert not any("__pycache__" in d for d, _, _ in os.walk(target))
    out = subprocess.run([os.path.join(prefix, "bin", "scnet"), "--version"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"scnet {scnet.__version__}"
    # a second run replaces what is there (a link by a copy and back), never writes through a link
    engine_env.install_engine_files(prefix, link=not link)
    assert os.path.islink(target) == (not link)
    assert os.path.isfile(os.path.join(engine_env.PACKAGE_DIR, "engine_env.py"))


def test_too_old_or_missing_python_is_refused_before_any_work(tmp_path):
    old = tmp_path / "python3.8"
    old.write_text("#!/bin/sh\necho 3.8\n")
    old.chmod(old.stat().st_mode | stat.S_IEXEC)
    prefix = tmp_path / "env"
    (prefix / "bin").mkdir(parents=True)
    stale = prefix / "bin" / "scnet"
    stale.write_text("left from an earlier try")
    with pytest.raises(engine_env.EngineEnvError, match=r"needs Python >= 3\.11; .* is Python 3\.8.*SCNET_ENGINE_PYTHON"):
        engine_env.create(str(prefix), python=str(old), build="cpu")
    assert not stale.exists()  # no mark of a finished environment is left
    assert sorted(os.listdir(prefix)) == ["bin"]  # nothing else made
    with pytest.raises(engine_env.EngineEnvError, match="cannot be run.*SCNET_ENGINE_PYTHON"):
        engine_env.create(str(prefix), python=str(tmp_path / "no-such-python"), build="cpu")


def test_cli_dry_run_prints_the_steps_and_errors_are_one_line(tmp_path):
    run = [sys.executable, "-m", "scnet.engine_env"]
    out = subprocess.run(run + [str(tmp_path / "e"), "--torch", "cpu", "--dry-run"], capture_output=True, text=True,
                         cwd=os.path.dirname(engine_env.PACKAGE_DIR))
    assert out.returncode == 0, out.stderr
    assert f"--no-deps -r {engine_env.LOCK_FILE}" in out.stdout and deps.TORCH in out.stdout
    out = subprocess.run(run + [str(tmp_path / "e"), "--python", str(tmp_path / "none")], capture_output=True,
                         text=True, cwd=os.path.dirname(engine_env.PACKAGE_DIR))
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("[scnet engine] ERROR:")
    assert not (tmp_path / "e").exists()
