"""The released archives: the sdist and the wheel (PEP 517 hooks of pyproject.toml's backend, as
`python -m build` calls them) carry the engine, its lock, the plugin and the metadata Scipion's
installer reads; a plugin installed from the wheel makes its engine from the installed files."""
import os
import subprocess
import sys
import tarfile
import zipfile

import pytest

import scnet
from scnet import engine_env

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
V = scnet.__version__


def _build(kind, src, out):
    code = (f"import sys; from setuptools import build_meta as b; "
            f"print(b.build_{kind}(sys.argv[1]))")
    r = subprocess.run([sys.executable, "-c", code, str(out)], cwd=src, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return os.path.join(out, r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    sdist = _build("sdist", REPO, out)
    with tarfile.open(sdist) as t:
        t.extractall(out / "src")
    # the wheel is built from the sdist, as a user's pip does: the sdist must be complete
    wheel = _build("wheel", out / "src" / f"scipion_em_scnet-{V}", out)
    return sdist, wheel


def test_sdist_holds_the_sources_the_lock_and_the_build_files(archives):
    with tarfile.open(archives[0]) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for f in ("pyproject.toml", "setup.py", "README.md", "LICENSE", "scnet/engine.lock", "scnet/engine_env.py",
              "scnet/deps.py", "scnet_plugin/__init__.py", "scnet_plugin/protocols.conf", "scnet_plugin/scnet_logo.png"):
        assert f in names, f


def test_wheel_carries_engine_lock_plugin_and_scipion_metadata(archives):
    wheel = archives[1]
    assert os.path.basename(wheel) == f"scipion_em_scnet-{V}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = f"scipion_em_scnet-{V}.dist-info"  # what `scipion3 installp` looks for: scipion_em_scnet*
        meta = z.read(f"{info}/METADATA").decode()
        entry = z.read(f"{info}/entry_points.txt").decode()
        top = z.read(f"{info}/top_level.txt").decode().split()
        lock = z.read("scnet/engine.lock").decode()
    for f in ("scnet/engine.lock", "scnet/engine_env.py", "scnet/cli/__init__.py", "scnet_plugin/protocols.conf",
              "scnet_plugin/scnet_logo.png", "scnet_plugin/protocols/protocol_train.py"):
        assert f in names, f
    with open(engine_env.LOCK_FILE) as fh:
        assert lock == fh.read()
    assert "Name: scipion-em-scnet" in meta and f"Version: {V}" in meta and "Requires-Python: >=3.8" in meta
    assert "scnet_plugin = scnet_plugin" in entry and "scnet = scnet.cli:main" in entry
    assert top[0] == "scnet_plugin"  # Scipion's installer imports the first line as the plugin
    assert not any(n.startswith(("tests/", "benchmarks/", "docs/")) for n in names)


def test_installed_wheel_copies_its_engine_files(archives, tmp_path):
    """From the wheel's files (no checkout beside them) the recipe copies the engine and its bin/scnet runs."""
    site = tmp_path / "site-packages"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site),
                        archives[1]], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); from scnet import engine_env as e; "
             "print(e.is_checkout(), e.LOCK_FILE, e.plan('/p', python='py', build='cpu')[4][0])")
    out = subprocess.run([sys.executable, "-I", "-c", probe, str(site)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    checkout, lock, step = out.stdout.split(" ", 2)
    assert checkout == "False" and lock == str(site / "scnet" / "engine.lock") and step.startswith("copy the engine")
    # the copy step itself, into an environment whose Python reads its own site folder first
    prefix, env_site = tmp_path / "env", tmp_path / "env-site"
    (prefix / "bin").mkdir(parents=True)
    env_site.mkdir()
    py = prefix / "bin" / "python"
    py.write_text(f'#!/bin/sh\nPYTHONPATH="{env_site}" exec "{sys.executable}" "$@"\n')
    py.chmod(0o755)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from scnet import engine_env as e; "
            "e._output = lambda argv, real=e._output: sys.argv[3] if 'sysconfig' in ' '.join(argv) else real(argv); "
            "print(e.install_engine_files(sys.argv[2], link=False))")
    out = subprocess.run([sys.executable, "-I", "-c", code, str(site), str(prefix), str(env_site)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert os.path.isfile(env_site / "scnet" / "engine.lock") and not os.path.islink(env_site / "scnet")
    got = subprocess.run([str(prefix / "bin" / "scnet"), "--version"], capture_output=True, text=True)
    assert got.returncode == 0 and got.stdout.strip() == f"scnet {V}", got
