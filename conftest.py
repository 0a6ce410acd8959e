"""pytest set-up (repo root, so it runs before `scnet_plugin` imports pyworkflow).

pyworkflow reads its configuration once, at import, so everything is set here,
before any test module imports it. Defaults mirror the Makefile's exports.
"""
import atexit
import os
import shutil
import sys
import tempfile

_REPO = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("SCIPION_HOME", os.path.join(_REPO, ".scipion"))
if os.environ.get("SCNET_GUI_PROJECT") and os.environ.get("SCIPION_USER_DATA"):
    pass  # `make gui-shot`: open an existing project of the user's data folder
else:
    os.environ["SCIPION_USER_DATA"] = tempfile.mkdtemp(prefix="scnet_scipion_test_")
    if not os.environ.get("SCNET_KEEP_TEST_DATA"):  # set it to inspect the test projects
        atexit.register(shutil.rmtree, os.environ["SCIPION_USER_DATA"], True)
os.environ.setdefault("SCIPION_DOMAIN", "pwem")
os.environ.setdefault("SCIPION_PYTHON", sys.executable)  # runs the protocols' subprocesses
os.environ.setdefault("SCIPION_TEST_NOSYNC", "1")
os.environ.setdefault("SCIPION_NOTIFY", "False")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("SCNET_ENGINE_HOME", os.path.join(_REPO, ".venv", "engine"))
# hosts.conf: the tests' own file (createProject(hostsConf=...) overwrites SCIPION_HOSTS), written by
# the plugin's one generator, loaded by path so no pyworkflow is imported here.
if os.environ.get("SCNET_GUI_PROJECT"):  # an existing project: the Makefile's hosts.conf
    os.environ.setdefault("SCIPION_HOSTS", os.path.join(os.environ["SCIPION_HOME"], "config", "hosts.conf"))
else:
    os.environ["SCIPION_HOSTS"] = os.path.join(os.environ["SCIPION_USER_DATA"], "hosts.conf")


def _load_hosts_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("_scnet_hosts", os.path.join(_REPO, "scnet_plugin", "hosts.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


if not (os.environ.get("SCNET_GUI_PROJECT") and os.path.exists(os.environ["SCIPION_HOSTS"])):
    _load_hosts_module().write(os.environ["SCIPION_HOSTS"], "localhost")
