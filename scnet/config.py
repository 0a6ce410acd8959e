"""The training and prediction options, declared once (:func:`scnet.declare.opt`).

``TrainConfig`` (``scnet train``, the train form), ``PriorConfig`` (where the prior comes from
without a prior tomogram) and ``PredictConfig`` (``scnet predict``, the denoise form).  The CLI
generates its options and help from these fields, the Scipion plugin its form defaults and help,
and both validate with the same loop and rules (:mod:`scnet.declare`, :mod:`scnet.rules`);
``tests/test_declarations.py`` and the plugin's form test fail when a copy differs.  The other
stages' options: :mod:`scnet.config_tomo`, :mod:`scnet.config_eval`.

Torch-free on purpose (the Scipion environment imports it): methods that need the network or the
losses import them when called.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Optional

from . import choices, rules
from .declare import Options, coerce, device_opt, opt, seed_opt
from .device import PRECISIONS
from .errors import SCNetInputError


def train_option_errors(opts: dict) -> list:
    """Every error of training options (keys = :class:`TrainConfig` fields; absent keys are not checked):
    the declared bounds of each field, then the rules across fields (:func:`scnet.rules.train_cross_errors`)
    on the fields that passed.  The CLI, ``TrainConfig.validate`` and the plugin's form call this."""
    return TrainConfig.errors(opts)


def _weight_help(i: int, term: str) -> str:
    """The help of eq. 8's i-th weight, with each mode's default (scnet.choices, one source)."""
    return (f"weight of {term}; unset = the mode's: single {choices.PAPER_WEIGHTS_WITH_EXP[i]:g} (the paper; "
            f"{choices.PAPER_WEIGHTS_WITHOUT_EXP[i]:g} without L_exp), halves and split {choices.HALVES_WEIGHTS[i]:g}")


_DEPTH = choices.NETWORK_DEFAULTS["depth"]
_MULTIPLE = rules.network_multiple(_DEPTH, choices.NETWORK_DEFAULTS["upsampling_block"])


@dataclass
class TrainConfig(Options):
    """Training options (JSON keys are exactly these field names)."""

    LABEL = "Training option"

    mode: str = opt("auto", "auto = halves when even/odd half tomograms are given, else split where the row check "
                            "finds the rows' noise unshared and slab where rows share it (measured); single = "
                            "the paper's volumetric blind spot on one tomogram; halves = even->odd / odd->even half "
                            "tomograms (Noise2Noise), the paper's prior constraints optional; split = the even and odd "
                            "rows along the tilt axis of ONE tomogram, trained like halves (rows must be unmixed); slab = "
                            "ONE tomogram, each row along the tilt axis predicted from the other rows (row-blind network; "
                            "rows that share noise whitened first, measured by the row check)", choices=choices.TRAIN_MODES)
    patch_size: int = opt(64, "edge of the cubic training patches in voxels (paper: 128); a multiple of "
                              f"2^(depth-1) with the up-sampling block ({_MULTIPLE} at depth {_DEPTH})", lo=1, hi=rules.MAX_PATCH, hint="memory grows with its cube; the paper uses 128")
    batch_size: int = opt(2, "patches per iteration (paper: 2)", lo=1)
    epochs: int = opt(0, "0 = train until the held-out validation loss stops improving; N = exactly N epochs "
                         "(paper: 15)", lo=0, hint="0 = stop when the validation loss has converged")
    iterations_per_epoch: int = opt(choices.ITERATIONS_PER_EPOCH, "iterations between two validations (one epoch)", lo=1)
    min_iterations: int = opt(choices.MIN_ITERATIONS, "automatic stop: never before this many iterations", lo=0)
    max_iterations: int = opt(choices.MAX_ITERATIONS, "automatic stop: always at this many iterations", lo=1)
    patience: int = opt(choices.PATIENCE, "automatic stop: validations without improvement before stopping", lo=1)
    min_delta: float = opt(choices.MIN_DELTA, "automatic stop: relative improvement of the smoothed validation "
                                              "loss that counts", lo=0, hi=1, hi_open=True)
    max_minutes: float = opt(0.0, "wall-clock budget in minutes (0 = none); the best model so far is kept", lo=0, hint="0 = no time limit")
    lr: float = opt(4e-4, "Adam learning rate (paper: 4e-4)", lo=0, lo_open=True, hint="the paper uses 4e-4")
    beta1: float = opt(0.5, "Adam beta1 (paper: 0.5)", lo=0, hi=1, hi_open=True)
    beta2: float = opt(0.999, "Adam beta2 (paper: 0.999)", lo=0, hi=1, hi_open=True)
    blindspot_size: int = opt(3, "edge n of the n x n x n blind-spot blocks (paper: 3)", lo=1)
    blindspot_ratio: float = opt(0.1, "blind-spot ratio per patch (paper: 0.1); its meaning is set by "
                                      "blindspot_ratio_of", lo=0, hi=1, lo_open=True)
    blindspot_ratio_of: str = opt("replaced", "replaced = fraction of voxels replaced (paper §5.1); centres = "
                                              "fraction of block centres (public code; 10% centres replace ~94% "
                                              "of the voxels)", choices=choices.BLINDSPOT_RATIO_OF)
    use_expectancy: bool = opt(True, "use the expectancy-constraint loss L_exp, eq. 7")
    lambda_rec: Optional[float] = opt(None, _weight_help(0, "L_rec, eq. 2"), lo=0, hint="or null for the mode's default")
    lambda_smooth: Optional[float] = opt(None, _weight_help(1, "L_smooth, eq. 5"), lo=0,
                                         hint="or null for the mode's default")
    lambda_exp: Optional[float] = opt(None, _weight_help(2, "L_exp, eq. 7"), lo=0, hint="or null for the mode's default")
    lambda_reg: Optional[float] = opt(None, _weight_help(3, "L_reg = ||grad f||_1"), lo=0,
                                      hint="or null for the mode's default")
    wedge: bool = opt(False, "halves mode: also fill the missing wedge (sub-volumes rotated, the wedge re-applied "
                             "to the input, the loss where the other half has data; needs tilt_range)")
    tilt_range: str = opt("", "MIN,MAX tilt angles in degrees of the tilt series (about Y), for wedge; the "
                              "plugin reads them from the tomograms' acquisition")
    expectancy_kernel: int = opt(5, "edge S of the S^3 local-expectancy kernel, eq. 6", lo=1, hint="the paper uses 5")
    sobel_3d: bool = opt(False, "Sobel gradients along X, Y and Z instead of X and Y only (eq. 4)")
    upsampling_block: bool = opt(choices.NETWORK_DEFAULTS["upsampling_block"],
                                 "the 2x up-sampling block before the encoder (paper §4.2)")
    base_width: int = opt(choices.NETWORK_DEFAULTS["base_width"],
                          "channels at the first network level (doubled per level)", lo=1, hi=1024)
    depth: int = opt(_DEPTH, "encoder/decoder levels (measured default; the paper's code: 3)", lo=1, hi=5, hint="the paper's code uses 3")
    val_fraction: float = opt(0.1, "fraction of the longest axis held out for the validation loss", lo=0, hi=0.5, hi_open=True)
    row_gap: int = opt(-1, "slab mode: rows hidden on each side of the predicted row along the tilt axis (0 = "
                           "the row alone; 1 = also its neighbours); -1 = measured: the row check reads the rows' "
                           "noise correlation, rows that share noise are whitened along Y and the row alone is "
                           "hidden; given (>= 0), auto trains the slab mode", lo=-1, hi=rules.MAX_ROW_GAP,
                    hint="-1 = measured")
    seed: int = seed_opt(0, "random seed (same seed + same options = same model)")
    device: str = device_opt()

    @classmethod
    def cross_errors(cls, opts: dict) -> list:
        return rules.train_cross_errors(opts)

    # ---------------------------------------------------------------
    def weights(self, mode: str = "single"):
        """Eq. 8 weights; None fields filled with the defaults of the (resolved) mode: single = paper
        0.6/0.1/0.2/0.01 with L_exp, 0.8/0.1/0/0.01 without; halves = 0.6/0/0/0 (measured, see losses)."""
        from .losses import LossWeights
        w = LossWeights.for_mode(mode, self.use_expectancy)
        return LossWeights(
            rec=w.rec if self.lambda_rec is None else float(self.lambda_rec),
            smooth=w.smooth if self.lambda_smooth is None else float(self.lambda_smooth),
            exp=(w.exp if self.lambda_exp is None else float(self.lambda_exp)) if self.use_expectancy else 0.0,
            reg=w.reg if self.lambda_reg is None else float(self.lambda_reg))

    def centre_ratio(self) -> float:
        """Fraction of voxels drawn as blind-spot block centres (see ``blindspot.centre_ratio``)."""
        from .blindspot import centre_ratio
        return centre_ratio(self.blindspot_ratio, self.blindspot_size, self.blindspot_ratio_of)

    def wedge_tilt_range(self):
        """``(min, max)`` degrees of ``tilt_range`` (checked by :func:`scnet.wedge.check_tilt_range`)."""
        from .wedge import parse_tilt_range
        return parse_tilt_range(self.tilt_range)

    def model_config(self, row_gap: Optional[int] = None):
        """The network; ``row_gap`` (the slab mode's, resolved by the training): a row-blind network."""
        from .model import ModelConfig
        return ModelConfig(base_width=self.base_width, depth=self.depth, upsampling_block=self.upsampling_block,
                           row_gap=row_gap)

    def validate(self) -> "TrainConfig":
        """Raise SCNetInputError for the first bad option (rules in :mod:`scnet.rules`, shared with the plugin)."""
        errors = train_option_errors(self.to_dict())
        if errors:
            raise SCNetInputError(errors[0] if len(errors) == 1 else " ".join(errors))
        from .device import resolve_device
        resolve_device(self.device)
        return self

    def resolved_mode(self, has_halves: bool, row_check: Optional[dict] = None) -> str:
        """``auto`` -> ``halves`` when even/odd halves are given, else the split or the slab mode by the
        tomogram's ``row_check`` (:func:`scnet.rows.auto_mode`: split on rows that share little noise, slab
        where they share it; measured, docs/benchmarks.md) -- slab whenever ``row_gap`` is given; explicit
        modes are checked against what they need."""
        if self.mode == "auto":
            if has_halves:
                return "halves"
            if self.wedge:
                raise SCNetInputError("Training option wedge needs the even and odd half tomograms (or mode split); "
                                      "give the halves or leave wedge off.")
            if self.row_gap >= 0:   # an option of the slab mode only: given, it asks for that mode
                return "slab"
            if row_check is None:
                raise ValueError("resolved_mode: auto without halves needs the tomogram's row check")
            from .rows import auto_mode
            return auto_mode(row_check)
        if self.wedge and self.mode in ("single", "slab"):
            raise SCNetInputError(f"Training option wedge needs the halves or the split mode (two noise-independent "
                                  f"parts); the {self.mode} mode cannot fill the wedge. Use one of them or leave wedge off.")
        if self.mode == "halves" and not has_halves:
            raise SCNetInputError("Training mode 'halves' needs the even and odd half tomograms "
                                  "(reconstructions of the even and odd tilts); give them or use mode 'slab'.")
        return self.mode

    # ---------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> "TrainConfig":
        known = {f.name: f for f in fields(cls)}
        for k in d:
            if k not in known:
                raise SCNetInputError(
                    f"{source}: unknown training option {k!r}. Known options: {', '.join(known)}.")
        cfg = cls()
        for k, v in d.items():
            setattr(cfg, k, coerce(known[k], v, source))
        return cfg

    @classmethod
    def from_json(cls, path: str) -> "TrainConfig":
        from .files import read_text
        text = read_text(path, "Training config")  # a regular UTF-8 file, else a clear error
        try:
            d = json.loads(text)
        except RecursionError:
            raise SCNetInputError(f"Training config {path} nests too deeply to be a file of options; give a JSON "
                                  f"object of option: value.") from None
        except ValueError as exc:  # invalid JSON, or an integer of thousands of digits
            why = "an integer of thousands of digits" if "digits" in str(exc) else str(exc)[:160]
            raise SCNetInputError(f"Training config {path} is not valid JSON ({why}); give a JSON object of "
                                  f"option: value.") from None
        if not isinstance(d, dict):
            raise SCNetInputError(f"Training config {path} must hold a JSON object of option: value.")
        return cls.from_dict(d, source=path)

    def to_json(self, path: str) -> None:
        from .outputs import write_text  # atomic and fsynced, as every output
        write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")


@dataclass
class PriorConfig(Options):
    """Where the smoothed prior comes from when no prior tomogram is given (``scnet train|denoise
    --prior-from``, the train form's 'Prior from'): a 3D filter of the tomogram (:mod:`scnet.selfprior`)."""

    LABEL = "Prior option"
    prior_from: str = opt(choices.DEFAULT_SELF_PRIOR,
                          "without a prior tomogram: the 3D filter of the tomogram that makes its prior (measured "
                          "default, docs/benchmarks.md; the halves mode with its default weights uses no prior)",
                          choices=choices.SELF_PRIORS)


@dataclass
class PredictConfig(Options):
    """Prediction (tiling) options of ``scnet predict`` and the denoise protocol."""

    LABEL = "Prediction option"
    tile_size: int = opt(192, "largest edge of the prediction tiles; each axis gets the fewest tiles of at most "
                              "this edge, evenly sized (measured default: docs/benchmarks.md; memory grows with its "
                              "cube, ~5 GB at the default)", lo=rules.MIN_TILE, unit="voxels")
    overlap: int = opt(16, "overlap of neighbouring tiles, at most half the tile size, blended with cosine weights",
                       lo=0, unit="voxels")
    device: str = device_opt()
    progress: bool = opt(False, "progress lines with ETA on stderr")
    margin: Optional[int] = opt(None, "context read on each side of a tile and discarded; None = the network's "
                                      "receptive radius (exact: tiled == whole)", lo=0, unit="voxels")
    tta: int = opt(choices.DEFAULT_TTA, "test-time augmentation: average the prediction over N axis flips (N times "
                                        "slower, less noise; 1 = fastest)", choices=choices.TTA_CHOICES)
    precision: str = opt("auto", "inference precision: auto (bf16 where the CPU or GPU computes it natively, else "
                                 "fp32; measured: no PSNR change, docs/benchmarks.md), fp32, or bf16/fp16 autocast "
                                 "(fp16: CUDA only)", choices=PRECISIONS)

    @classmethod
    def cross_errors(cls, opts: dict) -> list:
        return rules.predict_cross_errors(opts)

    def context(self, model_cfg) -> int:
        """Voxels of context read around each tile: ``margin``, or by default the network's receptive radius."""
        return model_cfg.receptive_radius() if self.margin is None else self.margin

    def contexts(self, model_cfg):
        """:meth:`context` per axis (Z, Y, X): the network's receptive radius along each, or ``margin``."""
        return tuple(model_cfg.receptive_radii()) if self.margin is None else (self.margin,) * 3
