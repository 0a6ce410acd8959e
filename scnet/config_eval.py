"""The options of the evaluation stages, declared once (:func:`scnet.declare.opt`).

``FscConfig`` (``scnet fsc``, the FSC e/o form), ``EvaluateConfig`` (``scnet evaluate``), one config
per comparison method of ``scnet baseline`` (``BASELINE_OPTIONS``: the defaults
:func:`scnet.baselines.run_baseline` fills in) and ``AverageConfig`` (``scnet average``).  The CLI
and the plugin's forms are built from these fields and validate with one loop
(:class:`scnet.declare.Options`).

Torch- and numpy-free (the Scipion environment imports it).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Optional

from . import rules
from .choices import BM4D_STAGES, TOPAZ_3D_MODELS
from .declare import Options, device_opt, opt, seed_opt

_SUBVOLUME_CHECK = partial(rules.zyx_errors, allow_zero=True)


@dataclass
class FscConfig(Options):
    """FSC (eq. 9) and FSC_e/o (eq. 10) of two volumes; the resolution where they cross ``threshold``."""

    LABEL = "FSC option"
    threshold: float = opt(0.5, "FSC value that defines the resolution (paper: 0.5); 0.5 and 0.143 are always "
                                "reported as well", lo=0, hi=1, lo_open=True, hi_open=True)
    subvolume: Optional[str] = opt(None, "a centred sub-volume Z,Y,X (the paper: 100,512,512; 0 keeps an axis); "
                                         "unset = the whole volumes", unit="voxels", check=_SUBVOLUME_CHECK)
    mask: str = opt("none", "none, soft (a box with 10% cosine edges) or a mask MRC of the volumes' shape")
    voxel_size: Optional[float] = opt(None, "voxel size; unset = the first volume's header", lo=0, lo_open=True,
                                      unit="A")


@dataclass
class EvaluateConfig(Options):
    """PSNR and 3D SSIM against a ground truth (Tables 1-2)."""

    LABEL = "Evaluation option"
    subvolume: Optional[str] = opt(None, "score a centred sub-volume Z,Y,X only (0 keeps an axis); unset = the "
                                         "whole volumes", unit="voxels", check=_SUBVOLUME_CHECK)
    data_range: Optional[float] = opt(None, "the PSNR/SSIM data range; unset = max - min of the ground truth",
                                      lo=0, lo_open=True)


# ---------------------------------------------------------------- `scnet baseline NAME`: one config per method
@dataclass
class Bm4dConfig(Options):
    """BM4D (optional package): the noise level and the stages."""

    LABEL = "Baseline bm4d option"
    sigma: Optional[float] = opt(None, "bm4d: noise std in the volume's intensity units; unset = estimated from "
                                       "the volume (finest 3D Haar detail band)", lo=0)
    stages: str = opt("all", "bm4d: all stages, or hard thresholding only (faster)", choices=BM4D_STAGES)


@dataclass
class N2vConfig(Options):
    """Noise2Void 3D (careamics) trained on the volume itself."""

    LABEL = "Baseline n2v option"
    epochs: int = opt(10, "n2v: training epochs", lo=1)
    steps_per_epoch: Optional[int] = opt(None, "n2v: batches per epoch; unset = careamics' own (the whole "
                                               "volume once)", lo=1)
    patch_size: int = opt(32, "n2v: cubic patch edge, made a multiple of 8 (at least 8) and clipped to the "
                              "volume", lo=1, unit="voxels")
    batch_size: int = opt(4, "n2v: patches per batch", lo=1)
    seed: int = seed_opt(1, "n2v: random seed")
    device: str = device_opt()


@dataclass
class LowpassConfig(Options):
    """Isotropic 3D low-pass (the quality benchmark's LPF)."""

    LABEL = "Baseline lowpass option"
    cutoff: float = opt(0.3, "lowpass: cut-off as a fraction of Nyquist, raised-cosine edge", lo=0, lo_open=True,
                        hi=1, unit="x Nyquist")


@dataclass
class GaussianConfig(Options):
    """Isotropic 3D Gaussian (also the default prior made from a tomogram, :mod:`scnet.selfprior`)."""

    LABEL = "Baseline gaussian option"
    sigma: float = opt(1.5, "gaussian: filter std", lo=0, unit="voxels")


@dataclass
class Topaz3dConfig(Options):
    """The pretrained Topaz-Denoise 3D network."""

    LABEL = "Baseline topaz3d option"
    topaz_model: str = opt("unet-3d-10a", "topaz3d: the pretrained Topaz-Denoise 3D model", choices=TOPAZ_3D_MODELS)
    device: str = device_opt()


# method name -> its options (order: scnet.choices.BASELINES; scnet.baselines checks they agree)
BASELINE_OPTIONS = {"bm4d": Bm4dConfig, "n2v": N2vConfig, "lowpass": LowpassConfig, "gaussian": GaussianConfig,
                    "topaz3d": Topaz3dConfig}


@dataclass
class AverageConfig(Options):
    """Subtomogram averaging at given particles: gold-standard half-sets, FSC and SNR (:mod:`scnet.subtomo`)."""

    LABEL = "Average option"
    box: int = opt(16, "subvolume edge", lo=4, unit="voxels")
    iterations: int = opt(2, "local refinement rounds (0 = positions as given)", lo=0)
    max_shift: int = opt(2, "largest shift per round and axis", lo=0, unit="voxels")
    seed: int = seed_opt(0, "random choices (group order, subsets)")
    per_half: int = opt(0, "at most N particles (a random subset) per half-set; 0 = all. With many particles the "
                           "average is noise-free at this pixel size and every volume gives FSC 1; fewer make the "
                           "measure sensitive to noise and alignment", lo=0)
    repeats: int = opt(0, "also R random subsets of repeats_per_half particles per half-set: their crossings and "
                          "SNR, mean and SD, and the mean FSC curve, under 'subsets' in the JSON", lo=0)
    repeats_per_half: int = opt(32, "particles per half in each subset", lo=2)
    voxel_size: Optional[float] = opt(None, "voxel size; unset = the volume's header", lo=0, lo_open=True, unit="A")

    @classmethod
    def cross_errors(cls, opts: dict) -> list:
        seed, repeats = opts.get("seed"), opts.get("repeats")
        if rules.is_int(seed) and rules.is_int(repeats) and seed + repeats > rules.SEED_MAX:
            return [f"Average option seed={seed!r}: the subsets use seed + 1 .. seed + repeats, which must stay "
                    f"within 0..{rules.SEED_MAX}."]
        return []
