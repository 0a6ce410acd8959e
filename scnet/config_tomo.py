"""The options of the tomography stages, declared once (:func:`scnet.declare.opt`).

``AlignConfig`` and ``ReconstructConfig`` (``scnet align``, ``scnet reconstruct``, the prepare form),
``FilterConfig`` (``scnet filter``, the prepare form's prior filter), ``PhantomConfig``
(``scnet phantom``, ``scnet simulate --phantom``, the simulate form) and ``SimulationConfig``
(``scnet simulate``, the simulate form; §5.2).  The CLI and the plugin's forms are built from
these fields and validate with one loop (:class:`scnet.declare.Options`).

Torch- and numpy-free (the Scipion environment imports it); the stages themselves live in
:mod:`scnet.filters`, :mod:`scnet.phantom` and :mod:`scnet.simulate`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from . import rules
from .choices import BACKENDS, PRIOR_FILTERS, RADIAL_TEXT, RECON_METHODS, TILT_SUBSETS, TOPAZ_2D_MODELS
from .declare import Options, device_opt, opt, seed_opt

# §5.2: the 3D Gaussian (voxels) that turns a real reconstruction into the simulation's ground truth
GROUND_TRUTH_SIGMA = 2.0


def _radial_opt():
    return opt(RADIAL_TEXT, "radial filter R1,R2 of the weighted back-projection (IMOD -RADIAL: cut-off, "
                            "Gaussian fall-off)", unit="cycles/pixel", check=rules.radial_text_errors)


@dataclass
class AlignConfig(Options):
    """The tilt images aligned once (:mod:`scnet.align`: the ``--xf`` file given with the command), then binned."""

    LABEL = "Alignment option"
    bin: int = opt(1, "average BIN x BIN pixel blocks of the (aligned) tilt images before everything else (no "
                      "second interpolation); the voxel size grows by BIN", lo=1, unit="px")


@dataclass
class ReconstructConfig(Options):
    """One reconstruction of a tilt stack (:mod:`scnet.recon`; its ``ReconConfig`` takes these defaults)."""

    LABEL = "Reconstruction option"
    thickness: Optional[int] = opt(None, "tomogram thickness in (binned) pixels; unset = half the image width",
                                   lo=1, unit="px", unset=0)
    backend: str = opt("auto", "auto = IMOD `tilt` when found (IMOD_DIR or PATH), else builtin; builtin = "
                               "weighted back-projection with astra-toolbox (CPU); imod = require IMOD",
                       choices=BACKENDS)
    radial: str = _radial_opt()
    method: str = opt("wbp", "wbp = weighted back-projection, sirt = SIRT", choices=RECON_METHODS)
    sirt_iterations: int = opt(30, "SIRT iterations (method sirt)", lo=1)
    subset: str = opt("all", "all tilts, or only the even / odd acquisition indices (the halves of FSC_e/o, "
                             "eq. 10)", choices=TILT_SUBSETS)
    voxel_size: Optional[float] = opt(None, "pixel size of the tilt stack; unset = its header's (the tomogram's "
                                            "is this times the binning)", lo=0, lo_open=True, unit="A")
    imod_gpu: bool = opt(False, "IMOD back-end: pass -UseGPU 0 to tilt")

    def radial_pair(self) -> tuple:
        return rules.numbers(self.radial, 2)


@dataclass
class FilterConfig(Options):
    """The 2D filter of every tilt image that makes the smoothed prior (paper §4.3).  The Gaussian and
    low-pass defaults are the engine's (the quality benchmark's ``--prior-filter`` runs them)."""

    LABEL = "Filter option"
    method: str = opt("topaz", "topaz = the pretrained Topaz-Denoise 2D network (the paper's choice); gaussian, "
                               "lowpass = the filters of the paper's ablation", choices=PRIOR_FILTERS)
    topaz_model: str = opt("unet", "Topaz 2D model (unet = unet_L2_v0.2.2, the paper's; weights ship with "
                                   "topaz-em)", choices=TOPAZ_2D_MODELS)
    sigma: float = opt(1.5, "standard deviation of the 2D Gaussian blur of each tilt image (method gaussian)",
                       lo=0, unit="px")
    cutoff: float = opt(0.5, "low-pass cut-off: frequencies above this fraction of Nyquist are removed from each "
                             "tilt image, raised-cosine edge (method lowpass)", lo=0, lo_open=True, hi=1,
                        unit="x Nyquist")
    patch_size: int = opt(1024, "Topaz: images larger than this are tiled (+128 px context) to bound memory; "
                                "0 = whole images", lo=0, unit="px")
    device: str = device_opt()


@dataclass
class PhantomConfig(Options):
    """The built-in cellular phantom and its tilt scheme (:mod:`scnet.phantom`).  The default shape is
    the quality benchmark's (docs/benchmarks.md) and the demo's."""

    LABEL = "Phantom option"
    shape: str = opt("64,128,128", "phantom Z,Y,X in voxels (Z = the thickness)", check=rules.phantom_shape_errors)
    tilt_range: float = opt(60.0, "tilts from -range to +range (paper §5.2: 60)", lo=0, lo_open=True, hi=90,
                            unit="deg")
    tilt_step: float = opt(3.0, "angle between consecutive tilts, at most the tilt range (paper §5.2: 3)", lo=0,
                           lo_open=True, unit="deg")
    seed: int = seed_opt(0, "seed of the phantom: the same seed draws the same cell")
    voxel_size: float = opt(10.0, "voxel size of the phantom; sets the physical size of its features", lo=0,
                            lo_open=True, unit="A")

    @classmethod
    def cross_errors(cls, opts: dict) -> list:
        r, s = opts.get("tilt_range"), opts.get("tilt_step")
        if rules.is_number(r) and rules.is_number(s) and s > r:
            return [f"Phantom option tilt_step={s!r}: must be at most the tilt range ({r:g} deg)."]
        return []

    def shape_zyx(self) -> tuple:
        return rules.numbers(self.shape, 3, int)


@dataclass
class SimulationConfig(Options):
    """§5.2: AWGN of std ``sigma`` on the 0..255 projections of the ground truth, then reconstruction.
    ``gaussian_sigma`` makes the ground truth from a real reconstruction (unset: the paper's 2 voxels for a
    tilt series, 0 for the already clean phantom)."""

    LABEL = "Simulation option"
    sigma: float = opt(15.0, "std of the white Gaussian noise added to the projections normalised to 0..255 "
                             "(paper: 10, 15, 20)", lo=0)
    thickness: Optional[int] = opt(None, "reconstruction thickness; unset = the phantom's Z, or half the image "
                                         "width of a tilt series", lo=1, unit="px", unset=0)
    gaussian_sigma: Optional[float] = opt(None, "3D Gaussian that makes the ground truth; unset = "
                                                f"{GROUND_TRUTH_SIGMA:g} for a tilt series (paper §5.2), 0 for the "
                                                "already clean phantom", lo=0, unit="voxels")
    seed: int = seed_opt(0, "seed of the noise (and of the phantom): the same seed gives the same data")
    backend: str = opt("builtin", "back-end of every reconstruction of the simulation: auto = IMOD `tilt` when "
                                  "found, else builtin (astra-toolbox weighted back-projection, CPU)",
                       choices=BACKENDS)
    radial: str = _radial_opt()
    voxel_size: Optional[float] = opt(None, "voxel size of the outputs; unset = the tilt stack's header, or the "
                                            "phantom's voxel size", lo=0, lo_open=True, unit="A")
    tilt_axis_rotation: float = opt(0.0, "interpolated rows: the noise is added in a detector frame rotated by "
                                         "minus this angle and each tilt image is rotated back (one interpolation, "
                                         "as an alignment does); 0 = none", lo=-45, hi=45, unit="deg")
    interpolation: int = opt(1, "spline order of that rotation", lo=0, hi=5)

    def ground_truth_sigma(self, clean: bool) -> float:
        """The Gaussian that makes the ground truth: as set, else 0 for a clean volume, else §5.2's."""
        if self.gaussian_sigma is not None:
            return float(self.gaussian_sigma)
        return 0.0 if clean else GROUND_TRUTH_SIGMA

    def radial_pair(self) -> tuple:
        return rules.numbers(self.radial, 2)
