"""The engine's dependencies, declared once (dependency-free module).

Read by ``setup.py`` (the ``plugin`` / ``bm4d`` extras, without importing the
package) and by :mod:`scnet.engine_env` (the recipe of the engine environment
that ``scipion3 installb scnet`` and ``make envs`` run: ``scnet/engine.lock``
with ``--no-deps``, then :data:`TORCH`), and checked by ``tests/test_deps.py``
against ``scnet/engine.lock`` (the complete, fully pinned environment but
torch) and against the installed packages' own requirements.  Change a version
here and in the lock file together; the test fails on any drift.

Why no resolver runs: careamics 0.3.5 (the N2V baseline) declares
``torchvision<=0.26``, whose wheels pin an older torch than :data:`TORCH`, and
topaz-em declares torchvision too (unused by the engine); a resolver would
swap torch.  The lock lists careamics' run-time requirements
(:data:`CAREAMICS_RUNTIME`) and leaves torchvision out (see ``scnet.baselines``
about the stand-in careamics needs at import).
"""

import re

# installed after the lock, alone, its build (CPU or CUDA) chosen per machine (scnet/engine_env.py)
TORCH = "torch==2.13.0"

# the engine's direct dependencies (besides torch)
ENGINE = (
    "numpy==2.4.6",
    "scipy==1.17.1",
    "mrcfile==1.5.4",
    "scikit-image==0.26.0",
    "tqdm==4.70.0",
    "matplotlib==3.11.2",
    "topaz-em==0.3.20",
    "astra-toolbox==2.5.0",
)

# N2V baseline: careamics (in the lock, installed with --no-deps like everything there)
CAREAMICS = "careamics==0.3.5"
CAREAMICS_RUNTIME = (
    "bioimageio.core==0.11.0",
    "lightning==2.6.6",
    "torchmetrics==1.8.2",
    "pydantic==2.14.1",
    "microssim==0.0.5",
    "zarr==3.1.6",
    "PyYAML==6.0.3",
    "tifffile==2026.3.3",
    "psutil==7.2.2",
    "pillow==13.0.0",
)
# declared by careamics but not needed by what the engine uses of it (and incompatible with TORCH)
CAREAMICS_SKIPPED = ("torchvision",)

# optional: closed binary under a non-commercial licence, never a default dependency (`make bm4d`)
BM4D = "bm4d==4.2.5"

# the Scipion side (minimum versions; `make envs` pins them in requirements/scipion.lock)
PLUGIN = ("scipion-pyworkflow>=3.11", "scipion-em>=3.11", "scipion-em-tomo>=3.12")


def engine_requirements() -> tuple:
    """Everything of the engine environment as pins: torch, the engine, careamics and its run-time."""
    return (TORCH,) + ENGINE + CAREAMICS_RUNTIME + (CAREAMICS,)


def name_of(requirement: str) -> str:
    """Normalised project name of ``"Name==1.0"`` / ``"name>=1"`` (PEP 503: lower case, ``-``)."""
    name = re.split(r"[=<>~!;\[ ]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def version_of(requirement: str) -> str:
    """The pinned version of ``"name==1.0"``."""
    return requirement.split("==", 1)[1].strip()
