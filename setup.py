"""The two things of scipion-em-scnet's build that pyproject.toml cannot say statically.

* The extras come from ``scnet/deps.py``, the one list of the dependency pins, read
  without importing the package (no numpy/torch needed to build).
* ``top_level.txt`` names the plugin package first. ``scipion3 installp --devel`` takes the
  FIRST line of that file as the plugin's package to import (scipion-app's
  ``PluginInfo.getDirName``); setuptools writes the names sorted, which would put the
  engine ``scnet`` before ``scnet_plugin`` and make the installer look for a Plugin class in
  the engine.

Everything else (name, version from ``scnet.__version__``, entry points, package data) is in
pyproject.toml.
"""
import os
import runpy

from setuptools import setup
from setuptools.command.egg_info import egg_info

HERE = os.path.dirname(os.path.abspath(__file__))
DEPS = runpy.run_path(os.path.join(HERE, "scnet", "deps.py"))
PLUGIN_PACKAGE = "scnet_plugin"


class PluginFirstEggInfo(egg_info):
    """egg_info whose top_level.txt starts with the plugin package (read by Scipion's installer)."""

    def run(self):
        super().run()
        path = os.path.join(self.egg_info, "top_level.txt")
        if os.path.exists(path):
            with open(path) as fh:
                names = [n.strip() for n in fh if n.strip()]
            ordered = [PLUGIN_PACKAGE] + [n for n in names if n != PLUGIN_PACKAGE]
            with open(path, "w") as fh:
                fh.write("\n".join(ordered) + "\n")


setup(
    extras_require={
        # the Scipion side (pinned versions for `make envs` live in requirements/scipion.lock)
        "plugin": list(DEPS["PLUGIN"]),
        # optional, non-commercial licence, closed binary
        "bm4d": [DEPS["BM4D"]],
    },
    cmdclass={"egg_info": PluginFirstEggInfo},
)
