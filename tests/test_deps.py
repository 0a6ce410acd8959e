"""One source for the version and the engine dependencies: scnet.__version__ and scnet/deps.py.
pyproject.toml, setup.py and the plugin read them; scnet/engine.lock must agree with them (no drift)."""
import os
import re
import subprocess
import sys
from importlib import metadata

import pytest

import scnet
from scnet import deps

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _lock(path):
    pins = {}
    with open(os.path.join(REPO, path)) as fh:
        for line in fh:
            line = line.split("#", 1)[0].strip()
            if line:
                assert "==" in line, f"{path}: {line!r} is not pinned"
                pins[deps.name_of(line)] = deps.version_of(line)
    return pins


def test_version_declared_once_and_read_by_setup():
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)?", scnet.__version__)
    out = subprocess.run([sys.executable, "setup.py", "--version"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == scnet.__version__
    # pyproject.toml reads it from scnet.__version__; no other file re-types it
    with open(os.path.join(REPO, "pyproject.toml")) as fh:
        pyproject = fh.read()
    assert re.search(r'^dynamic = \[.*"version"', pyproject, re.M)
    assert re.search(r'^version = \{attr = "scnet.__version__"\}', pyproject, re.M)
    for path in ("pyproject.toml", "setup.py", os.path.join("scnet_plugin", "constants.py"),
                 os.path.join("scnet_plugin", "__init__.py")):
        with open(os.path.join(REPO, path)) as fh:
            assert f'"{scnet.__version__}"' not in fh.read(), f"{path} re-types the version"


def test_engine_lock_matches_deps():
    """The lock holds every engine requirement at deps.py's pin -- but torch, installed after it
    (its build chosen per machine: scnet/engine_env.py) and pinned by deps.TORCH alone."""
    lock = _lock("scnet/engine.lock")
    assert deps.name_of(deps.TORCH) not in lock, "torch is pinned by scnet/deps.py TORCH, not in the lock"
    for req in deps.engine_requirements():
        name = deps.name_of(req)
        if req == deps.TORCH:
            continue
        assert name in lock, f"{req} (scnet/deps.py) is missing from scnet/engine.lock"
        assert lock[name] == deps.version_of(req), \
            f"{name}: scnet/deps.py pins {deps.version_of(req)}, scnet/engine.lock {lock[name]}"


def test_lock_ships_inside_the_engine_package():
    """installb reads the lock from the installed package (wheel, sdist or checkout alike)."""
    from scnet import engine_env
    assert engine_env.LOCK_FILE == os.path.join(os.path.dirname(os.path.abspath(scnet.__file__)), "engine.lock")
    assert os.path.isfile(engine_env.LOCK_FILE)
    with open(os.path.join(REPO, "pyproject.toml")) as fh:
        assert re.search(r'^scnet = \["engine.lock"\]', fh.read(), re.M), "engine.lock is not package data"


def test_scipion_lock_satisfies_plugin_minimums():
    lock = _lock("requirements/scipion.lock")
    for req in deps.PLUGIN:
        name, minimum = deps.name_of(req), req.split(">=", 1)[1]
        assert name in lock, f"{req} missing from requirements/scipion.lock"
        have = tuple(int(x) for x in lock[name].split(".")[:2])
        assert have >= tuple(int(x) for x in minimum.split(".")[:2]), (name, lock[name], minimum)


@pytest.mark.skipif(not any(d.metadata["Name"] == "careamics" for d in metadata.distributions()),
                    reason="careamics not installed")
def test_careamics_runtime_covers_its_declared_requirements():
    """careamics goes in with --no-deps: everything it requires (but the skipped torchvision) must be listed."""
    listed = {deps.name_of(r) for r in deps.engine_requirements()}
    required = {deps.name_of(r) for r in metadata.requires("careamics") or [] if "extra ==" not in r}
    missing = required - listed - {deps.name_of(n) for n in deps.CAREAMICS_SKIPPED}
    assert not missing, f"careamics requires {sorted(missing)}: add them to CAREAMICS_RUNTIME in scnet/deps.py"


def test_installed_engine_matches_deps():
    """The running engine environment is the one deps.py describes (catches a stale lock/env)."""
    for req in deps.engine_requirements():
        try:
            have = metadata.version(deps.name_of(req))
        except metadata.PackageNotFoundError:
            pytest.skip(f"{req} not installed here")
        assert have.split("+")[0] == deps.version_of(req), (req, have)


def test_makefile_bm4d_pin_matches_deps():
    """`make bm4d` installs the optional BM4D: same pin as scnet/deps.py (the Makefile cannot import it)."""
    with open(os.path.join(REPO, "Makefile")) as fh:
        pins = set(re.findall(r"bm4d==[\w.]+", fh.read()))
    assert pins == {deps.BM4D}, pins
