"""scipion-em-scnet: SC-Net (Yang, Zhang, Han, ICCV 2021) for Scipion.

The plugin runs the engine through the ``scnet`` command of a separate
engine environment (torch, topaz-em, astra-toolbox ...) whose prefix is the
plugin variable ``SCNET_ENGINE_HOME``.  It never imports the engine's
computing modules; it imports only the engine's torch- and numpy-free ones:
``scnet`` (version), ``scnet.deps`` and ``scnet.choices`` (shared facts), the
option declarations (``scnet.declare``, ``scnet.config``, ``scnet.config_tomo``,
``scnet.config_eval``; ``scnet.cli.options`` for the demo's parser) and the
rules (``scnet.rules``, ``scnet.angles``, ``scnet.modelscan``).
"""
import os
import shlex

import pwem
from pyworkflow.utils import Environ

from . import sqlite_fix
from .constants import (ENGINE_ENV_NAME, ENGINE_NO_DEPS_PACKAGES, ENGINE_PIP_PACKAGES, SCNET_ENGINE_HOME,
                        SCNET_VERSION, TORCH_PIN)

__version__ = SCNET_VERSION
_logo = "scnet_logo.png"
_references = ["Yang2021SCNet"]

# Python >= 3.11: pyworkflow leaves half-read SELECTs that lock the project database.
sqlite_fix.apply()


class Plugin(pwem.Plugin):
    _homeVar = SCNET_ENGINE_HOME
    _pathVars = [SCNET_ENGINE_HOME]
    _supportedVersions = [SCNET_VERSION]
    # help link of every form: the paper (a DOI that resolves; the plugin has no web page yet)
    _url = "https://doi.org/10.1109/ICCV48922.2021.00402"

    @classmethod
    def _defineVariables(cls):
        cls._defineEmVar(SCNET_ENGINE_HOME, ENGINE_ENV_NAME,
                         description="Prefix of the SC-Net engine environment (holds bin/scnet)")

    @classmethod
    def getEngineHome(cls) -> str:
        home = cls.getVar(SCNET_ENGINE_HOME)
        if not home:  # variables not registered yet (plugin used before Domain loading)
            cls._defineVariables()
            home = cls.getVar(SCNET_ENGINE_HOME)
        return home

    @classmethod
    def getScnetCommand(cls) -> str:
        """Absolute path of the engine's ``scnet`` command."""
        return os.path.join(cls.getEngineHome(), "bin", "scnet")

    @classmethod
    def getScnetProgram(cls) -> str:
        """The ``scnet`` command quoted for the shell that ``runJob`` uses (paths with spaces or quotes)."""
        return shlex.quote(cls.getScnetCommand())

    @classmethod
    def getEnviron(cls):
        """Environment for the engine: its bin first on PATH, no stray PYTHONPATH from Scipion."""
        env = Environ(os.environ)
        env.update({"PATH": os.path.join(cls.getEngineHome(), "bin")}, position=Environ.BEGIN)
        env.pop("PYTHONPATH", None)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    @classmethod
    def validateInstallation(cls):
        """List of errors when the engine cannot be run (empty when fine)."""
        return cls.engineErrors()

    @classmethod
    def engineErrors(cls):
        cmd = cls.getScnetCommand()
        if os.path.isfile(cmd) and os.access(cmd, os.X_OK):
            return []
        return [f"The SC-Net engine was not found: {cmd} does not exist or is not executable. "
                f"Install it with `scipion3 installb scnet` (or `make envs` in the plugin's repository), "
                f"or point the variable {SCNET_ENGINE_HOME} (scipion.conf or environment) to the "
                f"prefix of an environment where `pip install scipion-em-scnet[engine]` was run."]

    @classmethod
    def engineInstallCommands(cls, prefix: str, source: str = "scipion-em-scnet[engine]=={v}"):
        """Shell commands that create the engine environment in ``prefix``.

        Used by :meth:`defineBinaries`; kept separate so tests check the exact
        commands without running them.  torch goes first so no other package
        can pull a different (multi-GB CUDA) build of it; careamics (N2V
        baseline) goes in without its torchvision pin (see ``scnet/deps.py``).
        """
        py = os.path.join(prefix, "bin", "python")
        pip = f"{shlex.quote(py)} -m pip install --disable-pip-version-check"
        return [
            f"python3 -m venv {shlex.quote(prefix)}",
            f"{pip} 'setuptools<81' {TORCH_PIN}",
            f"{pip} " + " ".join(shlex.quote(p) for p in ENGINE_PIP_PACKAGES),
            f"{pip} --no-deps " + " ".join(shlex.quote(p) for p in ENGINE_NO_DEPS_PACKAGES),
            f"{pip} --no-deps " + shlex.quote(source.format(v=SCNET_VERSION)),
            f"{py} -m pip uninstall -y torchvision || true",
            f"{shlex.quote(os.path.join(prefix, 'bin', 'scnet'))} --version",
        ]

    @classmethod
    def defineBinaries(cls, env):
        prefix = os.path.join(pwem.Config.EM_ROOT, ENGINE_ENV_NAME)
        cmds = [(" && ".join(cls.engineInstallCommands(prefix)), [os.path.join(prefix, "bin", "scnet")])]
        env.addPackage("scnet", version=SCNET_VERSION, tar="void.tgz", commands=cmds,
                       neededProgs=["python3"], default=True)
