"""scipion-em-scnet: SC-Net (ICCV 2021) self-supervised cryo-ET denoising for Scipion.

One distribution, two packages:
  * ``scnet``        the engine (numpy/torch); install with the ``engine`` extra;
  * ``scnet_plugin`` the Scipion plugin (entry point ``pyworkflow.plugin``).
The plugin runs the engine through the ``scnet`` command of a separate
engine environment (see docs/plugin.md, "Two environments").

Single sources read here (never re-typed): the version is ``scnet.__version__``,
the dependency lists are ``scnet/deps.py``; both files are read without
importing the package (no numpy/torch needed to build).
"""
import os
import re
import runpy

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _version() -> str:
    with open(os.path.join(HERE, "scnet", "__init__.py"), encoding="utf-8") as fh:
        m = re.search(r'^__version__\s*=\s*"([^"]+)"', fh.read(), re.M)
    if not m:
        raise RuntimeError("scnet/__init__.py must define __version__ = \"X.Y.Z\"")
    return m.group(1)


DEPS = runpy.run_path(os.path.join(HERE, "scnet", "deps.py"))

setup(
    name="scipion-em-scnet",
    version=_version(),
    description="SC-Net self-supervised single-tomogram denoising (Yang, Zhang, Han, ICCV 2021) for Scipion",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="GPLv3",
    python_requires=">=3.8",
    packages=find_packages(include=["scnet", "scnet.*", "scnet_plugin", "scnet_plugin.*"]),
    package_data={"scnet_plugin": ["protocols.conf", "*.png", "*.gif"]},
    install_requires=[],
    extras_require={
        # the Scipion side (pinned versions for `make envs` live in requirements/scipion.lock)
        "plugin": list(DEPS["PLUGIN"]),
        # the engine side (the whole pinned environment lives in requirements/engine.lock).
        # careamics is left out: its torchvision pin would downgrade torch (see scnet/deps.py);
        # `scipion3 installb scnet` installs it with --no-deps.
        "engine": [DEPS["TORCH"], *DEPS["ENGINE"], *DEPS["CAREAMICS_RUNTIME"]],
        # optional, non-commercial licence, closed binary
        "bm4d": [DEPS["BM4D"]],
    },
    entry_points={
        "console_scripts": ["scnet = scnet.cli:main"],
        "pyworkflow.plugin": ["scnet_plugin = scnet_plugin"],
    },
    classifiers=["Programming Language :: Python :: 3",
                 "License :: OSI Approved :: GNU General Public License v3 (GPLv3)",
                 "Topic :: Scientific/Engineering :: Image Processing"],
)
