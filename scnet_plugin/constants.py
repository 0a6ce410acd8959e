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
