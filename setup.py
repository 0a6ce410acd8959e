"""scipion-em-scnet: SC-Net (ICCV 2021) self-supervised cryo-ET denoising for Scipion.

One distribution, two packages:
  * ``scnet``        the engine (numpy/torch); install with the ``engine`` extra;
  * ``scnet_plugin`` the Scipion plugin (entry point ``pyworkflow.plugin``).
The plugin runs the engine through the ``scnet`` command of a separate
engine environment (see README, "Two environments").
"""
from setuptools import find_packages, setup

setup(
    name="scipion-em-scnet",
    version="0.1.0",
    description="SC-Net self-supervised single-tomogram denoising (Yang, Zhang, Han, ICCV 2021) for Scipion",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="GPLv3",
    python_requires=">=3.8",
    packages=find_packages(include=["scnet", "scnet.*", "scnet_plugin", "scnet_plugin.*"]),
    package_data={"scnet_plugin": ["protocols.conf", "*.png", "*.gif"]},
    install_requires=[],
    extras_require={
        # the Scipion side (pinned versions live in requirements/scipion.txt)
        "plugin": ["scipion-pyworkflow>=3.11", "scipion-em>=3.11", "scipion-em-tomo>=3.12"],
        # the engine side (pinned versions live in requirements/engine.txt)
        "engine": ["torch>=2.1", "numpy", "scipy", "mrcfile", "scikit-image", "tqdm",
                   "topaz-em==0.3.20", "astra-toolbox>=2.5", "matplotlib"],
        # optional, non-commercial licence, closed binary
        "bm4d": ["bm4d==4.2.5"],
    },
    entry_points={
        "console_scripts": ["scnet = scnet.cli:main"],
        "pyworkflow.plugin": ["scnet_plugin = scnet_plugin"],
    },
    classifiers=["Programming Language :: Python :: 3", "Topic :: Scientific/Engineering :: Image Processing"],
)
