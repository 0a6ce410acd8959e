"""One source for the version and the engine dependencies: scnet.__version__ and scnet/deps.py.
setup.py and the plugin read them; requirements/engine.lock must agree with them (no drift)."""
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
    # no other file re-types the version
    for path in ("setup.py", os.path.join("scnet_plugin", "constants.py"), os.path.join("scnet_plugin", "__init__.py")):
        with open(os.path.join(REPO, path)) as fh:
            assert f'"{scnet.__version__}"' not in fh.read(), f"{path} re-types the version"


def test_engine_lock_matches_deps():
    lock = _lock("requirements/engine.lock")
    for req in deps.engine_requirements():
        name = deps.name_of(req)
        assert name in lock, f"{req} (scnet/deps.py) is missing from requirements/engine.lock"
        assert lock[name] == deps.version_of(req), \
            f"{name}: scnet/deps.py pins {deps.version_of(req)}, requirements/engine.lock {lock[name]}"


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
