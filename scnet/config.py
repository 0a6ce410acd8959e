"""The options of each engine stage, declared once: default and help text of every field.

``TrainConfig`` (``scnet train``) and ``PredictConfig`` (``scnet predict``).  The CLI generates its options and help from these fields, the Scipion plugin takes
its form defaults and help from them, and both validate with the same rules (:mod:`scnet.rules`);
``tests/test_config.py`` and the plugin's form test fail when a copy differs.

Torch-free on purpose (the Scipion environment imports it): methods that need the network or the
losses import them when called.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from typing import Optional

from . import choices, rules
from .device import DEVICE_HELP, PRECISIONS
from .errors import SCNetInputError

def opt(default, help_text: str, *, lo=None, hi=None, lo_open: bool = False, hi_open: bool = False,
        choices=None, hint: str = ""):
    """A config field: its default, the one help text the CLI and the plugin's forms show, and its bounds
    (``lo``/``hi``, open or closed) or ``choices``; ``hint`` ends the error message of a value outside them."""
    return field(default=default, metadata={"help": help_text, "lo": lo, "hi": hi, "lo_open": lo_open,
                                            "hi_open": hi_open, "choices": choices, "hint": hint})


def bounds_text(f) -> str:
    """``in [0, 1)``, ``>= 1``, ``in 1..5``, ``one of a, b``: what a field accepts, from its metadata."""
    m = f.metadata
    if m.get("choices"):
        return "one of " + ", ".join(m["choices"])
    lo, hi = m.get("lo"), m.get("hi")
    whole = "int" in _type_name(f) and "float" not in _type_name(f)
    if lo is not None and hi is not None:
        if whole and not m["lo_open"] and not m["hi_open"]:
            return f"in {lo:g}..{hi:g}"
        return f"in {'(' if m['lo_open'] else '['}{lo:g}, {hi:g}{')' if m['hi_open'] else ']'}"
    if lo is not None:
        return f"{'>' if m['lo_open'] else '>='} {lo:g}"
    if hi is not None:
        return f"{'<' if m['hi_open'] else '<='} {hi:g}"
    return ""


def _type_name(f) -> str:
    return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))


def option_errors(cls, opts: dict, label: str = "Training option"):
    """One loop over the fields' metadata: type, choices and bounds of each option in ``opts`` (absent
    or None = unset, not checked).  Returns (messages, names of the options that failed)."""
    errors, failed = [], set()
    for f in fields(cls):
        if f.name not in opts or opts[f.name] is None:
            continue
        v, t, m = opts[f.name], _type_name(f), f.metadata

        def bad(why):
            errors.append(f"{label} {f.name}={v!r}: {why}.")
            failed.add(f.name)
        if "bool" in t:
            if not isinstance(v, bool):
                bad("must be true or false")
            continue
        if "float" in t:
            if not rules.is_number(v):
                bad("must be a finite number")
                continue
        elif "int" in t:
            if not rules.is_int(v):
                bad("must be an integer")
                continue
        if m.get("choices") and v not in m["choices"]:
            bad(f"must be {bounds_text(f)}")
            continue
        lo, hi = m.get("lo"), m.get("hi")
        if (lo is not None and (v < lo or (m["lo_open"] and v == lo))) or \
                (hi is not None and (v > hi or (m["hi_open"] and v == hi))):
            bad(f"must be {bounds_text(f)}" + (f" ({m['hint']})" if m.get("hint") else ""))
    return errors, failed


def train_option_errors(opts: dict) -> list:
    """Every error of training options (keys = :class:`TrainConfig` fields; absent keys are not checked):
    the declared bounds of each field, then the rules across fields (:func:`scnet.rules.train_cross_errors`)
    on the fields that passed.  The CLI, ``TrainConfig.validate`` and the plugin's form call this."""
    errors, failed = option_errors(TrainConfig, opts)
    return errors + rules.train_cross_errors({k: v for k, v in opts.items() if k not in failed})


def help_of(cls, name: str) -> str:
    """The declared help text of field ``name`` of a config dataclass."""
    return {f.name: f for f in fields(cls)}[name].metadata.get("help", name)


def defaults(cls) -> dict:
    """Field name -> declared default of a config dataclass."""
    return {f.name: f.default for f in fields(cls)}


_DEPTH = choices.NETWORK_DEFAULTS["depth"]
_MULTIPLE = rules.network_multiple(_DEPTH, choices.NETWORK_DEFAULTS["upsampling_block"])


@dataclass
class TrainConfig:
    """Training options (JSON keys are exactly these field names)."""

    mode: str = opt("auto", "auto = halves when even/odd half tomograms are given, else slab (measured); single = "
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
    lambda_rec: Optional[float] = opt(None, "weight of L_rec, eq. 2 (default: 0.6; single mode without L_exp 0.8)", lo=0, hint="or null for the mode's default")
    lambda_smooth: Optional[float] = opt(None, "weight of L_smooth, eq. 5 (default: single mode 0.1 = the paper, "
                                               "halves mode 0)", lo=0, hint="or null for the mode's default")
    lambda_exp: Optional[float] = opt(None, "weight of L_exp, eq. 7 (default: single mode 0.2 = the paper (0 "
                                            "without L_exp), halves mode 0)", lo=0, hint="or null for the mode's default")
    lambda_reg: Optional[float] = opt(None, "weight of L_reg = ||grad f||_1 (default: single mode 0.01 = the "
                                            "paper, halves mode 0)", lo=0, hint="or null for the mode's default")
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
                           "hidden", lo=-1, hi=rules.MAX_ROW_GAP, hint="-1 = measured")
    seed: int = opt(0, "random seed (same seed + same options = same model)", lo=0, hi=rules.SEED_MAX)
    device: str = opt("cpu", DEVICE_HELP)

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

    def resolved_mode(self, has_halves: bool) -> str:
        """``auto`` -> ``halves`` when even/odd halves are given, else ``slab`` (one tomogram: the row-blind
        network, measured above the split and single modes, docs/benchmarks.md); explicit modes are
        checked against what they need."""
        if self.mode == "auto":
            if has_halves:
                return "halves"
            if self.wedge:
                raise SCNetInputError("Training option wedge needs the even and odd half tomograms (or mode split); "
                                      "give the halves or leave wedge off.")
            return "slab"
        if self.wedge and self.mode in ("single", "slab"):
            raise SCNetInputError(f"Training option wedge needs the halves or the split mode (two noise-independent "
                                  f"parts); the {self.mode} mode cannot fill the wedge. Use one of them or leave wedge off.")
        if self.mode == "halves" and not has_halves:
            raise SCNetInputError("Training mode 'halves' needs the even and odd half tomograms "
                                  "(reconstructions of the even and odd tilts); give them or use mode 'slab'.")
        return self.mode

    # ---------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> "TrainConfig":
        known = {f.name: f for f in fields(cls)}
        for k in d:
            if k not in known:
                raise SCNetInputError(
                    f"{source}: unknown training option {k!r}. Known options: {', '.join(known)}.")
        cfg = cls()
        for k, v in d.items():
            setattr(cfg, k, _coerce(known[k], v, source))
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


def _coerce(f, v, source):
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if v is None:
            if "Optional" in t:
                return None
            raise TypeError
        if "bool" in t:
            if isinstance(v, bool):
                return v
            if isinstance(v, str) and v.lower() in ("true", "false", "1", "0", "yes", "no"):
                return v.lower() in ("true", "1", "yes")
            raise TypeError
        if "int" in t:
            if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
                raise TypeError
            return int(v)
        if "float" in t:
            return float(v)
        return str(v)
    except (TypeError, ValueError):
        raise SCNetInputError(f"{source}: option {f.name!r} has an invalid value {v!r} (expected {t}).") from None


@dataclass
class PredictConfig:
    """Prediction (tiling) options of ``scnet predict`` and the denoise protocol."""

    tile_size: int = opt(192, f"largest edge of the prediction tiles in voxels (>= {rules.MIN_TILE}); each axis gets "
                              f"the fewest tiles of at most this edge, evenly sized (measured default: docs/benchmarks.md; "
                              f"memory grows with its cube, ~5 GB at 192)")
    overlap: int = opt(16, "overlap of neighbouring tiles in voxels (0..tile/2), blended with cosine weights")
    device: str = opt("cpu", DEVICE_HELP)
    progress: bool = opt(False, "progress lines with ETA on stderr")
    margin: Optional[int] = opt(None, "context read on each side of a tile and discarded; None = the network's "
                                      "receptive radius (exact: tiled == whole)")
    tta: int = opt(choices.DEFAULT_TTA, "test-time augmentation: average the prediction over N axis flips (1, 2, "
                                        "4 or 8; N times slower, less noise; 1 = fastest)")
    precision: str = opt("auto", "inference precision: auto (bf16 where the CPU or GPU computes it natively, else "
                                 "fp32; measured: no PSNR change, docs/benchmarks.md), fp32, or bf16/fp16 autocast "
                                 "(fp16: CUDA only)", choices=PRECISIONS)

    def context(self, model_cfg) -> int:
        """Voxels of context read around each tile: ``margin``, or by default the network's receptive radius."""
        return model_cfg.receptive_radius() if self.margin is None else self.margin

    def contexts(self, model_cfg):
        """:meth:`context` per axis (Z, Y, X): the network's receptive radius along each, or ``margin``."""
        return tuple(model_cfg.receptive_radii()) if self.margin is None else (self.margin,) * 3

    def validate(self) -> "PredictConfig":
        """Raise SCNetInputError for bad tiling options (rules in :mod:`scnet.rules`)."""
        errors = rules.predict_option_errors(self.tile_size, self.overlap, self.tta, self.margin)
        errors += option_errors(PredictConfig, {"precision": self.precision}, "Prediction option")[0]
        if errors:
            raise SCNetInputError(" ".join(errors))
        return self
