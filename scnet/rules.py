"""Validation rules shared by the engine and the Scipion plugin (no torch, no numpy).

The engine's configs (``scnet.train.TrainConfig.validate``, ``scnet.predict``)
and the plugin's ``_validate`` methods call these same functions, so a rule
is written once.  This module must stay importable without torch/numpy: the
Scipion environment imports it (``import scnet.rules``) and has no torch.

Each ``*_errors`` function returns a list of messages (empty = fine); a
message names the option, its value, and what to use instead.
"""
from __future__ import annotations

import math
import os
import pickletools
import zipfile
from typing import Dict, Iterable, List, Optional, Sequence

from .choices import BLINDSPOT_RATIO_OF as RATIO_OF, RADIAL_TEXT, TRAIN_MODES, TTA_CHOICES  # noqa: F401
SEED_MAX = 2 ** 32 - 2          # numpy/torch seeds are unsigned; the training uses seed and seed + 1
MIN_TILE = 8
MAX_PATCH = 512   # training patch edge: 512^3 float32 activations already need tens of GB
MODEL_FORMAT = "scnet-model-1"  # the "format" entry of model.pt
# files `scnet train` writes into its --output-dir
TRAIN_OUTPUTS = ("model.pt", "checkpoint.pt", "loss_log.csv", "train_config.json", "training_summary.json")
SAMPLING_TOLERANCE = 0.01       # relative voxel-size difference tolerated between model and tomogram


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def network_multiple(depth: int, upsampling_block: bool) -> int:
    """Training patches must be a multiple of this (pooling arithmetic of ``scnet.model.ModelConfig``)."""
    return 2 ** (depth - 1) if upsampling_block else 2 ** depth


def train_option_errors(opts: Dict[str, object]) -> List[str]:
    """Errors for training options (keys = ``TrainConfig`` field names; absent keys are not checked)."""
    errors: List[str] = []

    def bad(name, why):
        errors.append(f"Training option {name}={opts.get(name)!r}: {why}.")

    def has(name):
        return name in opts and opts[name] is not None

    for name in ("patch_size", "batch_size", "epochs", "iterations_per_epoch", "blindspot_size",
                 "expectancy_kernel", "base_width", "depth", "seed", "patience", "min_iterations",
                 "max_iterations"):
        if has(name) and not _int(opts[name]):
            bad(name, "must be an integer")
    for name in ("lr", "beta1", "beta2", "blindspot_ratio", "val_fraction"):
        if has(name) and not _num(opts[name]):
            bad(name, "must be a finite number")
    if errors:
        return errors
    depth = opts.get("depth")
    if has("depth") and not 1 <= depth <= 5:
        bad("depth", "use 1..5 (the paper uses 3)")
    if has("base_width") and not 1 <= opts["base_width"] <= 1024:
        bad("base_width", "must be in 1..1024 (channels at the first network level; default 8)")
    for name in ("batch_size", "blindspot_size", "expectancy_kernel", "patience", "max_iterations"):
        if has(name) and opts[name] < 1:
            bad(name, "must be >= 1")
    auto_stop = "max_iterations" in opts  # automatic stop: epochs 0 = until the validation loss converged
    if has("epochs") and opts["epochs"] < (0 if auto_stop else 1):
        bad("epochs", "must be >= 0 (0 = stop when the validation loss has converged)" if auto_stop
            else "must be >= 1")
    if has("mode") and opts["mode"] not in TRAIN_MODES:
        bad("mode", f"must be one of {', '.join(TRAIN_MODES)}")
    if has("min_iterations") and has("max_iterations") and not 0 <= opts["min_iterations"] <= opts["max_iterations"]:
        bad("min_iterations", f"must be in [0, max_iterations={opts['max_iterations']}]")
    if has("min_delta") and not (_num(opts["min_delta"]) and 0 <= opts["min_delta"] < 1):
        bad("min_delta", "must be in [0, 1)")
    if has("max_minutes") and not (_num(opts["max_minutes"]) and opts["max_minutes"] >= 0):
        bad("max_minutes", "must be >= 0 (0 = no time limit)")
    if has("patch_size"):
        ps = opts["patch_size"]
        bs = opts.get("blindspot_size") or 1
        m = network_multiple(depth, bool(opts.get("upsampling_block", True))) \
            if has("depth") and 1 <= depth <= 5 else 1
        if ps < max(m, 2 * bs + 2) or ps % m:
            bad("patch_size", f"must be a multiple of {m} and > {2 * bs + 1}")
        elif has("expectancy_kernel") and opts["expectancy_kernel"] > ps:
            bad("expectancy_kernel", f"must be at most the patch size ({ps}); the paper uses 5")
    if has("patch_size") and opts["patch_size"] > MAX_PATCH:
        bad("patch_size", f"must be at most {MAX_PATCH} (memory grows with its cube; the paper uses 128)")
    if has("iterations_per_epoch") and opts["iterations_per_epoch"] < (1 if auto_stop else 0):
        bad("iterations_per_epoch", "must be >= 1" if auto_stop else "must be >= 0 (0 = automatic)")
    if has("blindspot_ratio_of") and opts["blindspot_ratio_of"] not in RATIO_OF:
        bad("blindspot_ratio_of", f"must be one of {', '.join(RATIO_OF)}")
    if has("blindspot_ratio"):
        r, of = opts["blindspot_ratio"], opts.get("blindspot_ratio_of", "replaced")
        if not 0 < r <= 1 or (of == "replaced" and r >= 1):
            bad("blindspot_ratio", "must be in (0, 1) (replaced voxels) or (0, 1] (centres)")
    if has("lr") and not opts["lr"] > 0:
        bad("lr", "must be a finite number > 0 (the paper uses 4e-4)")
    for name in ("beta1", "beta2"):
        if has(name) and not 0 <= opts[name] < 1:
            bad(name, "must be in [0, 1)")
    if has("val_fraction") and not 0 <= opts["val_fraction"] < 0.5:
        bad("val_fraction", "must be in [0, 0.5)")
    for name in ("lambda_rec", "lambda_smooth", "lambda_exp", "lambda_reg"):
        if has(name) and (not _num(opts[name]) or opts[name] < 0):
            bad(name, "must be >= 0 (or null for the paper default)")
    lambdas = [opts.get(n) for n in ("lambda_rec", "lambda_smooth", "lambda_exp", "lambda_reg")]
    if all(_num(v) and v == 0 for v in lambdas):
        errors.append("Training options lambda_rec/smooth/exp/reg are all 0: nothing would be learned. Give "
                      "lambda_rec > 0 (default 0.6) or leave the weights unset.")
    if has("seed") and not 0 <= opts["seed"] <= SEED_MAX:
        bad("seed", f"must be in 0..{SEED_MAX}")
    return errors


def radial_errors(r1, r2, option: str = "--radial") -> List[str]:
    """The radial filter R1,R2 (cycles/pixel, IMOD -RADIAL): 0 < R1 <= 0.5, R2 >= 0, finite."""
    if not (_num(r1) and _num(r2)) or not 0 < r1 <= 0.5 or r2 < 0:
        return [f"{option} {r1},{r2}: must be R1,R2 with 0 < R1 <= 0.5 and R2 >= 0 (cycles/pixel; default {RADIAL_TEXT})."]
    return []


def seed_errors(seed, option: str = "--seed") -> List[str]:
    """Seeds are unsigned (numpy); 0..SEED_MAX."""
    if not _int(seed) or not 0 <= seed <= SEED_MAX:
        return [f"{option} {seed!r}: must be an integer in 0..{SEED_MAX}."]
    return []


def predict_option_errors(tile_size: int, overlap: int, tta: int = 1, margin: Optional[int] = 0) -> List[str]:
    """Errors for the tiling options of ``scnet predict`` / ``denoise``."""
    errors = []
    if not _int(tile_size) or tile_size < MIN_TILE:
        errors.append(f"tile_size={tile_size!r} (--tile-size): must be an integer >= {MIN_TILE}.")
    elif not _int(overlap) or not 0 <= overlap <= tile_size // 2:
        errors.append(f"overlap={overlap!r} (--overlap): must be an integer in 0..tile_size/2 ({tile_size // 2}).")
    if tta not in TTA_CHOICES:
        errors.append(f"tta={tta!r} (--tta): use one of {', '.join(map(str, TTA_CHOICES))} (flips averaged).")
    if margin is not None and (not _int(margin) or margin < 0):
        errors.append(f"margin={margin!r} must be >= 0 (or None: the network's receptive radius).")
    return errors


def tilt_angle_errors(angles: Sequence[float], name: str = "tilt angles") -> List[str]:
    """Errors for tilt angles that cannot be degrees of a real tilt series.

    * all angles equal (e.g. all 0: the angles were never set);
    * all |angle| <= pi/2 while they span more than 0.2: a tilt range of a few degrees
      is not a tomogram, radians are far more likely (convert with degrees = radians * 180 / pi).
    """
    a = [float(x) for x in angles]
    if len(a) < 2:
        return []
    if any(not math.isfinite(x) for x in a):
        return [f"{name}: tilt angles contain NaN/Inf."]
    lo, hi = min(a), max(a)
    if hi == lo:
        return [f"{name}: all {len(a)} tilt angles are equal ({lo:g} deg); the tilt angles were not set. "
                f"Import the tilt series with its .tlt/.rawtlt angles."]
    if max(abs(lo), abs(hi)) <= math.pi / 2 + 1e-6 and hi - lo > 0.2:
        return [f"{name}: the tilt angles span only {lo:g} .. {hi:g}: they look like radians. Tilt angles must be "
                f"in degrees (degrees = radians x 180 / pi, e.g. {lo * 180 / math.pi:.1f} .. {hi * 180 / math.pi:.1f})."]
    return []


def sampling_mismatch(model_voxel: Optional[float], tomo_voxel: Optional[float]) -> Optional[str]:
    """A message when a model trained at ``model_voxel`` A/px is applied to a ``tomo_voxel`` A/px tomogram."""
    if not model_voxel or not tomo_voxel or model_voxel <= 0 or tomo_voxel <= 0:
        return None
    if abs(model_voxel - tomo_voxel) <= SAMPLING_TOLERANCE * model_voxel:
        return None
    return (f"the model was trained at {model_voxel:.4g} A/px but the tomogram is {tomo_voxel:.4g} A/px: "
            f"features have a different size in voxels and the result is not reliable. Train a model on this "
            f"tomogram (or bin it to {model_voxel:.4g} A/px)")


def _pickle_strings(data: bytes) -> Iterable[str]:
    for op, arg, _ in pickletools.genops(data):
        if isinstance(arg, str):
            yield arg


def model_file_errors(path: str) -> List[str]:
    """Torch-free check that ``path`` looks like an SC-Net ``model.pt`` (not another ``.pt``).

    A ``torch.save`` file is a zip archive holding ``<name>/data.pkl``; the SC-Net model's
    pickle holds the string :data:`MODEL_FORMAT` under the key ``format``.  Nothing is
    unpickled (no code can run); the engine loads it later with ``weights_only=True``.
    """
    if not path:
        return ["Give the model file (model.pt)."]
    if not os.path.isfile(path):
        return [f"Model file not found: {path}."]
    try:
        with zipfile.ZipFile(path) as z:
            pkl = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if not pkl:
                return [f"{path} is a zip archive but not a torch file (no data.pkl); give the model.pt "
                        f"written by `scnet train`."]
            data = z.read(pkl[0])
    except zipfile.BadZipFile:
        return [f"{path} is not a torch model file (expected the zip archive written by `scnet train`); "
                f"it may be truncated or another kind of file."]
    except (OSError, EOFError, RuntimeError) as exc:  # truncated member, CRC error...
        return [f"{path} cannot be read ({exc}); it may be truncated: copy it again."]
    try:
        strings = set(_pickle_strings(data))
    except Exception as exc:  # broken pickle stream
        return [f"{path}: its content is damaged ({exc}); copy the model again."]
    if MODEL_FORMAT in strings and "state_dict" in strings and "normalisation" in strings:
        return []
    if "optimizer" in strings and "state_dict" in strings:
        return [f"{path} is a training checkpoint (checkpoint.pt), not a model: give model.pt from the same folder."]
    return [f"{path} is a torch file but not an SC-Net model (no '{MODEL_FORMAT}' format entry): give the "
            f"model.pt written by `scnet train`."]


NETWORK_OPTIONS = ("base_width", "depth", "upsampling_block")  # the training options that shape the network
_MEMO_OPS = ("MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT")
_NUMBER_OPS = ("BINFLOAT", "FLOAT", "BININT", "BININT1", "BININT2", "LONG1", "INT")


def _model_file_scalars(path: str, keys: Sequence[str]) -> Dict[str, object]:
    """The first number or bool stored after each of ``keys`` in ``model.pt``'s pickle, read torch-free
    without unpickling (opcodes only; nothing runs); keys not found (or an unreadable file) are absent."""
    found: Dict[str, object] = {}
    try:
        with zipfile.ZipFile(path) as z:
            pkl = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            data = z.read(pkl[0]) if pkl else b""
        pending = None
        for op, arg, _ in pickletools.genops(data):
            if pending is not None:
                if op.name in ("NEWTRUE", "NEWFALSE"):
                    found[pending], pending = op.name == "NEWTRUE", None
                    continue
                if op.name in _NUMBER_OPS:
                    found[pending], pending = arg, None
                    continue
                if op.name not in _MEMO_OPS:
                    pending = None
            if isinstance(arg, str) and arg in keys and arg not in found:
                pending = arg
    except Exception:  # unreadable: model_file_errors says why
        return {}
    return found


def model_file_voxel_size(path: str) -> Optional[float]:
    """The training voxel size (A/px) stored in ``model.pt``, read torch-free without unpickling; None if absent."""
    v = _model_file_scalars(path, ("voxel_size",)).get("voxel_size")
    return float(v) if isinstance(v, float) and v > 0 else None


def model_file_network(path: str) -> Dict[str, object]:
    """The network options (:data:`NETWORK_OPTIONS`) of ``model.pt``'s ``model_config``, read torch-free
    without unpickling (``model_config`` is stored before ``train_config``, so the first value of each key
    is the network's); options not found are absent."""
    return _model_file_scalars(path, NETWORK_OPTIONS)


def init_model_errors(model_network: Dict[str, object], network: Dict[str, object], path: str) -> List[str]:
    """A model to start a training from (``--init-model``, 'Start from a trained model') must have the
    new training's network: keys present in both dicts are compared."""
    diff = [f"{k} {model_network[k]!r} in the model, {network[k]!r} here"
            for k in sorted(set(model_network) & set(network)) if model_network[k] != network[k]]
    if not diff:
        return []
    return [f"Initial model {path}: its network differs from this training's ({', '.join(diff)}). Train with "
            f"the model's network options (base width, depth, up-sampling block) or from scratch."]


def patch_volume_errors(patch_size: int, shape: Sequence[int], name: str = "the tomogram") -> List[str]:
    """A training patch much larger than the volume only trains on reflected padding."""
    if shape and patch_size > 2 * max(int(n) for n in shape):
        return [f"Training option patch_size={patch_size}: more than twice the largest dimension of {name} "
                f"{tuple(int(n) for n in shape)}; use a patch of at most {max(int(n) for n in shape)} voxels."]
    return []
