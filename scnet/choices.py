"""Choices shared by the ``scnet`` command line and the Scipion plugin.

Dependency-free on purpose (no numpy, no torch): the plugin imports this
module inside the Scipion environment, where the engine's heavy packages are
absent.  The CLI builds its ``choices=`` from these tuples, and
``tests/test_choices.py`` checks that the engine modules accept exactly these
values, so a new choice is added here once.

The ORDER of each tuple is the order of the plugin's ``EnumParam`` (projects
store the index), so append new values at the end.
"""

# `scnet reconstruct|simulate --backend` (scnet.recon): IMOD `tilt` if found, the built-in
# weighted back-projection, or IMOD.
BACKENDS = ("auto", "builtin", "imod")
# the weighted back-projection's radial filter R1,R2 (cut-off, Gaussian fall-off; cycles/pixel; IMOD -RADIAL):
# `scnet reconstruct|prepare|simulate --radial`, scnet.recon, the prepare and simulate protocols
RADIAL = (0.35, 0.035)
RADIAL_TEXT = f"{RADIAL[0]},{RADIAL[1]}"
# `scnet reconstruct --method` (scnet.recon): weighted back-projection or SIRT
RECON_METHODS = ("wbp", "sirt")
# `scnet reconstruct --subset`: all tilts or the even/odd acquisition indices (FSC_e/o, eq. 10)
TILT_SUBSETS = ("all", "even", "odd")
# `scnet filter --method`: the 2D filter of the tilt images that makes the prior (paper §4.3)
PRIOR_FILTERS = ("topaz", "gaussian", "lowpass")
# `scnet filter --topaz-model`: Topaz-Denoise pretrained 2D models (scnet.filters.TOPAZ_MODELS_2D)
TOPAZ_2D_MODELS = ("unet", "unet-small", "fcnn", "affine", "unet-v0.2.1")
# `scnet baseline topaz3d --topaz-model`: Topaz-Denoise pretrained 3D models (scnet.filters.TOPAZ_MODELS_3D)
TOPAZ_3D_MODELS = ("unet-3d-10a", "unet-3d-20a")
# `scnet baseline NAME` (scnet.baselines): the paper's comparison methods (Tables 1-3)
BASELINES = ("bm4d", "n2v", "lowpass", "gaussian", "topaz3d")
# baselines that take a device (the others run on the CPU)
BASELINES_WITH_DEVICE = ("n2v", "topaz3d")
# `scnet baseline bm4d --stages`
BM4D_STAGES = ("all", "hard")
# `scnet train|denoise --prior-from` (scnet.selfprior): how the smoothed prior is made from the tomogram itself
# when no prior is given (a tomogram without its tilt series has no Topaz-2D prior, paper §4.3): one of the
# 3D baselines applied to the noisy tomogram. DEFAULT_SELF_PRIOR by measurement: docs/benchmarks.md
# "Prior made from the tomogram".
SELF_PRIORS = ("topaz3d", "gaussian", "lowpass")
DEFAULT_SELF_PRIOR = "gaussian"
# TrainConfig.mode: auto = halves when even/odd half tomograms are given, else single; single = the
# paper's volumetric blind spot on one tomogram; halves = even<->odd (Noise2Noise) + the prior terms
TRAIN_MODES = ("auto", "single", "halves", "split", "slab")
# TrainConfig's automatic stop (`scnet train`, the train protocol): validate every
# ITERATIONS_PER_EPOCH iterations; stop after PATIENCE validations whose smoothed loss improves by less
# than MIN_DELTA (relative), never before MIN_ITERATIONS, always at MAX_ITERATIONS
ITERATIONS_PER_EPOCH = 25
MIN_ITERATIONS = 300
MAX_ITERATIONS = 1000
PATIENCE = 4
MIN_DELTA = 0.002
# the network of TrainConfig (scnet.model.ModelConfig): channels at the first level (doubled per level),
# encoder depth, the 2x up-sampling block before the encoder (paper §4.2). Depth 4 (the paper's code: 3) by
# measurement: docs/benchmarks.md "Network width and depth" (more PSNR per minute on 2 CPU cores than 8x3 or 16x3)
NETWORK_DEFAULTS = {"base_width": 8, "depth": 4, "upsampling_block": True}
# eq. 8's default weights (lambda_rec, lambda_smooth, lambda_exp, lambda_reg) of each training mode
# (scnet.losses.LossWeights.for_mode; TrainConfig's lambda_* unset): the paper's in the single mode, with and
# without L_exp; in the halves and split modes the paper's lambda_1 and no pull towards the prior. Measured on
# the phantom (σ 15, 300 iterations, halves-mean prediction): 29.65 dB / SSIM 0.803 without the prior terms,
# 28.19 / 0.79 with the paper's 0.1 / 0.2 / 0.01 (the Topaz-2D prior is over-smoothed).
PAPER_WEIGHTS_WITH_EXP = (0.6, 0.1, 0.2, 0.01)
PAPER_WEIGHTS_WITHOUT_EXP = (0.8, 0.1, 0.0, 0.01)
HALVES_WEIGHTS = (0.6, 0.0, 0.0, 0.0)
# TrainConfig.blindspot_ratio_of: paper §5.1 (fraction of voxels replaced) | public code (block centres)
BLINDSPOT_RATIO_OF = ("replaced", "centres")
# `scnet predict --tta N`: number of axis flips averaged at prediction time
TTA_CHOICES = (1, 2, 4, 8)
# what a user gets (`scnet predict|denoise`, the denoise protocol): 8 flips; measured on 12 models (halves and
# split, benchmarks/prediction.py, docs/benchmarks.md): 4 flips cost 0.13 dB on average (worst 0.23), 1 flip
# 0.58 dB; 1 = fastest
DEFAULT_TTA = 8


def describe(choices) -> str:
    """``"a, b or c"`` for help texts and error messages."""
    items = [str(c) for c in choices]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
