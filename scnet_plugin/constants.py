"""Constants of the scnet plugin (variable names, versions, file names).

Facts shared with the engine are imported from its dependency-free modules
(``scnet`` itself, ``scnet.deps``, ``scnet.choices``: no numpy/torch), never
re-typed: the distribution installs both packages in the Scipion environment.
"""
from scnet import __version__ as SCNET_VERSION
from scnet import deps as _deps
from scnet.choices import (BACKENDS, BASELINES, BLINDSPOT_RATIO_OF, PRIOR_FILTERS,  # noqa: F401
                           TOPAZ_2D_MODELS, TRAIN_MODES, TTA_CHOICES, DEFAULT_TTA)

# Plugin variable: prefix of the engine environment (a venv holding torch + the `scnet` command)
SCNET_ENGINE_HOME = "SCNET_ENGINE_HOME"
ENGINE_ENV_NAME = f"scnet-engine-{SCNET_VERSION}"
# what `scipion installb scnet` installs into the engine env (scnet/deps.py): torch first, alone;
# then the engine's packages and careamics' run-time; then careamics itself with --no-deps
TORCH_PIN = _deps.TORCH
ENGINE_PIP_PACKAGES = _deps.ENGINE + _deps.CAREAMICS_RUNTIME
ENGINE_NO_DEPS_PACKAGES = (_deps.CAREAMICS,)

# files written by `scnet train` into its output folder
MODEL_FILE = "model.pt"
CHECKPOINT_FILE = "checkpoint.pt"
LOSS_LOG = "loss_log.csv"
TRAIN_CONFIG = "train_config.json"
TRAIN_SUMMARY = "training_summary.json"

# the choices above (BACKENDS, PRIOR_FILTERS, TOPAZ_2D_MODELS, BASELINES, BLINDSPOT_RATIO_OF,
# TRAIN_MODES, TTA_CHOICES) are the engine's: scnet/choices.py
SIMULATION_JSON = "simulation.json"  # written last by `scnet simulate` into its --output-dir
