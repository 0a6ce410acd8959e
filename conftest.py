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
_hosts = os.path.join(os.environ["SCIPION_HOME"], "config", "hosts.conf")
if not os.path.exists(_hosts):
    os.makedirs(os.path.dirname(_hosts), exist_ok=True)
    with open(_hosts, "w") as fh:
        fh.write("[localhost]\nPARALLEL_COMMAND = mpirun -np %_(JOB_NODES)d %_(COMMAND)s\n"
                 "NAME = SCIPION_LOCALHOST\nADDRESS = localhost\nMANDATORY = False\nQUEUE_SYSTEM = False\n")
