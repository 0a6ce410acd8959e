"""Constants of the scnet plugin (variable names, versions, file names)."""

# Plugin variable: prefix of the engine environment (a venv holding torch + the `scnet` command)
SCNET_ENGINE_HOME = "SCNET_ENGINE_HOME"
SCNET_VERSION = "0.1.0"
ENGINE_ENV_NAME = f"scnet-engine-{SCNET_VERSION}"
# what `scipion installb scnet` installs into the engine env (torch first, from its own index)
TORCH_PIN = "torch==2.13.0"
ENGINE_PIP_PACKAGES = ("topaz-em==0.3.20", "astra-toolbox==2.5.0", "mrcfile==1.5.4", "scikit-image==0.26.0",
                       "scipy==1.17.1", "numpy==2.4.6", "tqdm==4.70.1", "matplotlib==3.11.2")

# files written by `scnet train` into its output folder
MODEL_FILE = "model.pt"
CHECKPOINT_FILE = "checkpoint.pt"
LOSS_LOG = "loss_log.csv"
TRAIN_CONFIG = "train_config.json"

# reconstruction back-ends (`scnet reconstruct --backend`)
BACKENDS = ["auto", "builtin", "imod"]
PRIOR_FILTERS = ["topaz", "gaussian", "lowpass"]
TOPAZ_2D_MODELS = ["unet", "unet-small", "fcnn", "affine", "unet-v0.2.1"]
BASELINES = ["lowpass", "gaussian", "topaz3d", "n2v", "bm4d"]
# TrainConfig.blindspot_ratio_of: paper §5.1 (fraction of voxels replaced) | public code (block centres)
BLINDSPOT_RATIO_OF = ["replaced", "centres"]
# `scnet predict --tta N`: number of axis flips averaged at prediction time
TTA_CHOICES = [1, 2, 4, 8]
SIMULATION_JSON = "simulation.json"  # written last by `scnet simulate` into its --output-dir
