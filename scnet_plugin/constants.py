"""Constants of the scnet plugin (variable names, versions, file names).

Facts shared with the engine are imported from its dependency-free modules
(``scnet`` itself, ``scnet.deps``, ``scnet.choices``: no numpy/torch), never
re-typed: the distribution installs both packages in the Scipion environment.
"""
from scnet import __version__ as SCNET_VERSION
from scnet.choices import (BACKENDS, BASELINES, BLINDSPOT_RATIO_OF, PRIOR_FILTERS,  # noqa: F401
                           TOPAZ_2D_MODELS, TRAIN_MODES, TTA_CHOICES, DEFAULT_TTA)

# Plugin variables (scipion.conf [PLUGINS] or the environment; docs/plugin.md, "Install")
SCNET_ENGINE_HOME = "SCNET_ENGINE_HOME"      # prefix of the engine environment (holds bin/scnet)
SCNET_TORCH = "SCNET_TORCH"                  # torch build installb installs: auto (default), cpu or cuda
SCNET_TORCH_INDEX = "SCNET_TORCH_INDEX"      # pip index for torch (default: the CPU index for cpu, pip's for cuda)
SCNET_ENGINE_PYTHON = "SCNET_ENGINE_PYTHON"  # Python >= 3.11 for the engine (default: Scipion's when >= 3.11)
# the folder `scipion3 installb scnet` creates in software/em (Scipion names it <package>-<version>)
ENGINE_ENV_NAME = f"scnet-{SCNET_VERSION}"
# what goes into it: the recipe scnet/engine_env.py (the lock scnet/engine.lock, torch scnet/deps.py)

# files written by `scnet train` into its output folder
# (the engine's list, scnet/rules.py: written once)
from scnet.rules import TRAIN_OUTPUTS as _TRAIN_OUTPUTS  # noqa: E402
MODEL_FILE, CHECKPOINT_FILE, LOSS_LOG, TRAIN_CONFIG, TRAIN_SUMMARY = _TRAIN_OUTPUTS

# the choices above (BACKENDS, PRIOR_FILTERS, TOPAZ_2D_MODELS, BASELINES, BLINDSPOT_RATIO_OF,
# TRAIN_MODES, TTA_CHOICES) are the engine's: scnet/choices.py
SIMULATION_JSON = "simulation.json"  # written last by `scnet simulate` into its --output-dir

# ---------------------------------------------------------------- output file names
# Every tomogram a protocol writes is named after its tsId, so tomo's protocols that match
# files by base name (e.g. import coordinates: TS_01.mrc <-> TS_01.txt) pair them right.
HALF_TAGS = ("odd", "even")  # order of Tomogram.setHalfMaps([odd, even]) in tomo


def tomogramFile(tsId) -> str:
    """``<tsId>.mrc``: the tomogram (noisy or denoised) of one tilt series."""
    return f"{tsId}.mrc"


def halfFile(tsId, half: str) -> str:
    """``<tsId>_even.mrc`` / ``<tsId>_odd.mrc``: a half tomogram (``half`` in HALF_TAGS)."""
    if half not in HALF_TAGS:
        raise ValueError(f"half must be one of {HALF_TAGS}, got {half!r}")
    return f"{tsId}_{half}.mrc"


def priorFile(tsId) -> str:
    """``<tsId>_prior.mrc``: the smoothed prior tomogram SC-Net trains against."""
    return f"{tsId}_prior.mrc"

# ---------------------------------------------------------------- FSC e/o measures (protocol + viewer)
# 0: the halves of the input sets as they are (for denoised sets: both halves went through ONE
#    network trained on the full tomogram, which correlates their noise: the curve flatters);
# 1: each noisy half denoised by its own network, trained on that half only (gold-standard style).
FSC_MEASURES = ["halves as given", "independent networks (gold standard)"]
FSC_MEASURE_NOTES = [
    "halves as given: denoised halves that went through one network share its bias, so their FSC e/o flatters",
    "independent networks: each half denoised by a network trained on that half only (gold-standard style)",
]

# ---------------------------------------------------------------- prepare: rotate tilt images by 90 deg
# For tilt series whose tilt axis is along X (tilt axis angle about +/-90 deg) and that have no
# alignment to bring it to Y: the images are rotated (exactly, no interpolation) before
# reconstruction. Degrees counter-clockwise; the tilt axis angle (from Y, counter-clockwise)
# becomes axis + rotation, so +90 deg axes need "90 deg clockwise" and -90 deg axes the other.
ROTATIONS = ["no", "90 deg counter-clockwise", "90 deg clockwise"]
ROTATION_DEGREES = [0, 90, -90]
