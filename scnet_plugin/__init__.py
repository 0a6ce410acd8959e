"""scipion-em-scnet: SC-Net (Yang, Zhang, Han, ICCV 2021) for Scipion.

The plugin runs the engine through the ``scnet`` command of a separate
engine environment (torch, topaz-em, astra-toolbox ...) whose prefix is the
plugin variable ``SCNET_ENGINE_HOME``.  It never imports the engine's
computing modules; it imports only the dependency-free ``scnet`` (version),
``scnet.deps`` and ``scnet.choices`` (shared facts) and ``scnet.engine_env``
(the recipe of the engine environment that ``scipion3 installb scnet`` runs).
"""
import os
import shlex
import sys

import pwem
from pyworkflow.utils import Environ

from scnet import engine_env
from . import sqlite_fix
from .constants import (ENGINE_ENV_NAME, SCNET_ENGINE_HOME, SCNET_ENGINE_PYTHON, SCNET_TORCH, SCNET_TORCH_INDEX,
                        SCNET_VERSION)

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
        cls._defineVar(SCNET_TORCH, "auto",
                       description="torch build `scipion3 installb scnet` installs: auto (CUDA where an NVIDIA "
                                   "driver is found, else CPU), cpu or cuda")
        cls._defineVar(SCNET_TORCH_INDEX, "",
                       description=f"pip index for torch (empty: {engine_env.CPU_INDEX} for the CPU build, "
                                   f"pip's own index for CUDA; e.g. https://download.pytorch.org/whl/cu126 for "
                                   f"an older driver)")
        cls._defineVar(SCNET_ENGINE_PYTHON, "",
                       description="Python >= 3.11 for the engine environment (empty: Scipion's Python when it "
                                   "is 3.11 or newer, else python3.11)")

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
                f"Install it with `scipion3 installb scnet`; or make an engine environment anywhere with "
                f"`scipion3 python -m scnet.engine_env /path/to/env` and set {SCNET_ENGINE_HOME}=/path/to/env "
                f"(scipion.conf, section [PLUGINS], or the environment)."]

    @classmethod
    def engineInstallCommands(cls, prefix: str):
        """The shell command(s) that create the engine environment in ``prefix``: the recipe of
        :mod:`scnet.engine_env` (the lock with --no-deps, then torch, then the engine from this
        plugin's own files), run by Scipion's Python, with the plugin variables' choices.

        Used by :meth:`defineBinaries`; kept separate so tests check the exact command."""
        args = [sys.executable, "-m", "scnet.engine_env", prefix,
                "--torch", (cls.getVar(SCNET_TORCH) or "auto").strip().lower()]
        for flag, var in (("--torch-index", SCNET_TORCH_INDEX), ("--python", SCNET_ENGINE_PYTHON)):
            value = (cls.getVar(var) or "").strip()
            if value:
                args += [flag, value]
        return [" ".join(shlex.quote(a) for a in args)]

    @classmethod
    def defineBinaries(cls, env):
        prefix = os.path.join(pwem.Config.EM_ROOT, ENGINE_ENV_NAME)
        cmds = [(cmd, [os.path.join(prefix, engine_env.SCNET_COMMAND)]) for cmd in cls.engineInstallCommands(prefix)]
        # Nothing to download: the environment is made from this plugin's files and the package
        # index. (addPackage's default fetches a placeholder void.tgz from the Scipion site, which
        # is not reachable everywhere; with tar=void.tgz it only creates the folder.)
        env.addPackage("scnet", version=SCNET_VERSION, tar="void.tgz", url="file:/dev/null", commands=cmds,
                       default=True)
