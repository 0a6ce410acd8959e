"""Validation rules shared by the engine and the Scipion plugin (no torch, no numpy).

The engine's configs (``scnet.train.TrainConfig.validate``, ``scnet.predict``)
and the plugin's ``_validate`` methods call these same functions, so a rule
is written once.  This module must stay importable without torch/numpy: the
Scipion environment imports it (``import scnet.rules``) and has no torch.

Each ``*_errors`` function returns a list of messages (empty = fine); a
message names the option, its value, and what to use instead.  The torch-free reading of
``model.pt`` lives in :mod:`scnet.modelscan`, the tilt-angle rule in :mod:`scnet.angles`.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

from .choices import RADIAL_TEXT

SEED_MAX = 2 ** 32 - 2          # numpy/torch seeds are unsigned; the training uses seed and seed + 1
MAX_ROW_GAP = 4                 # the slab mode hides at most this many rows on each side of the predicted one
MIN_TILE = 8
MAX_PATCH = 512   # training patch edge: 512^3 float32 activations already need tens of GB
# files `scnet train` writes into its --output-dir
TRAIN_OUTPUTS = ("model.pt", "checkpoint.pt", "loss_log.csv", "train_config.json", "training_summary.json")
SAMPLING_TOLERANCE = 0.01       # relative voxel-size difference tolerated between model and tomogram


def is_number(v) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_int(v) -> bool:
    """An int (not a bool)."""
    return isinstance(v, int) and not isinstance(v, bool)


def network_multiple(depth: int, upsampling_block: bool) -> int:
    """Training patches must be a multiple of this (pooling arithmetic of ``scnet.model.ModelConfig``)."""
    return 2 ** (depth - 1) if upsampling_block else 2 ** depth


def train_cross_errors(opts: Dict[str, object]) -> List[str]:
    """The training rules across options (keys = ``TrainConfig`` field names, values already within their
    declared bounds; absent keys are not checked).  Each field's own type and bounds are declared once,
    in :mod:`scnet.config`, whose ``train_option_errors`` runs both."""
    errors: List[str] = []

    def bad(name, why):
        errors.append(f"Training option {name}={opts.get(name)!r}: {why}.")

    def has(name):
        return name in opts and opts[name] is not None

    if has("patch_size"):
        ps, depth = opts["patch_size"], opts.get("depth")
        bs = opts.get("blindspot_size") or 1
        m = network_multiple(depth, bool(opts.get("upsampling_block", True))) if has("depth") else 1
        if ps < max(m, 2 * bs + 2) or ps % m:
            bad("patch_size", f"must be a multiple of {m} and > {2 * bs + 1}")
        elif has("expectancy_kernel") and opts["expectancy_kernel"] > ps:
            bad("expectancy_kernel", f"must be at most the patch size ({ps}); the paper uses 5")
    if has("min_iterations") and has("max_iterations") and opts["min_iterations"] > opts["max_iterations"]:
        bad("min_iterations", f"must be in [0, max_iterations={opts['max_iterations']}]")
    if has("blindspot_ratio") and opts.get("blindspot_ratio_of", "replaced") == "replaced" \
            and opts["blindspot_ratio"] >= 1:
        bad("blindspot_ratio", "must be in (0, 1) (replaced voxels) or (0, 1] (centres)")
    lambdas = [opts.get(n) for n in ("lambda_rec", "lambda_smooth", "lambda_exp", "lambda_reg")]
    if all(is_number(v) and v == 0 for v in lambdas):
        errors.append("Training options lambda_rec/smooth/exp/reg are all 0: nothing would be learned. Give "
                      "lambda_rec > 0 (default 0.6) or leave the weights unset.")
    if opts.get("wedge") and not str(opts.get("tilt_range") or "").strip():
        errors.append("Training option wedge needs the tilt range of the tilt series: give tilt_range MIN,MAX "
                      "in degrees (CLI --tilt-range -60,60; the plugin reads it from the tomograms).")
    elif str(opts.get("tilt_range") or "").strip():
        from .errors import SCNetInputError
        from .wedge import parse_tilt_range
        try:
            parse_tilt_range(opts["tilt_range"])
        except SCNetInputError as exc:
            errors.append(f"Training option tilt_range: {exc}")
    return errors


def radial_errors(r1, r2, option: str = "--radial") -> List[str]:
    """The radial filter R1,R2 (cycles/pixel, IMOD -RADIAL): 0 < R1 <= 0.5, R2 >= 0, finite."""
    if not (is_number(r1) and is_number(r2)) or not 0 < r1 <= 0.5 or r2 < 0:
        return [f"{option} {r1},{r2}: must be R1,R2 with 0 < R1 <= 0.5 and R2 >= 0 (cycles/pixel; default {RADIAL_TEXT})."]
    return []


def numbers(text, count: int, kind=float) -> tuple:
    """``"a,b,c"`` (or ``axbxc``) -> ``count`` numbers of ``kind``; ValueError otherwise."""
    vals = tuple(kind(v) for v in str(text).replace("x", ",").split(","))
    if len(vals) != count:
        raise ValueError(text)
    return vals


def radial_text_errors(text) -> List[str]:
    """``"R1,R2"`` as :func:`radial_errors` accepts it."""
    try:
        return [why.rstrip(".") for why in radial_errors(*numbers(text, 2), option="radial")]
    except ValueError:
        return [f"must be R1,R2 with 0 < R1 <= 0.5 and R2 >= 0 (cycles/pixel; default {RADIAL_TEXT})"]


def zyx_errors(text, allow_zero: bool = False) -> List[str]:
    """``"Z,Y,X"``: three integers > 0 (>= 0 with ``allow_zero``: 0 keeps an axis whole)."""
    try:
        vals = numbers(text, 3, int)
    except ValueError:
        return ["must be three integers Z,Y,X"]
    if min(vals) < (0 if allow_zero else 1):
        return [f"must be three integers Z,Y,X, each {'>= 0 (0 = the whole axis)' if allow_zero else '> 0'}"]
    return []


MIN_PHANTOM_EDGE, MAX_PHANTOM_VOXELS = 8, 1024 ** 3


def phantom_shape_errors(text) -> List[str]:
    """The phantom's ``"Z,Y,X"``: each axis >= 8 voxels, at most 1024^3 voxels in all."""
    try:
        z, y, x = numbers(text, 3, int)
    except ValueError:
        return ["must be three integers Z,Y,X"]
    if min(z, y, x) < MIN_PHANTOM_EDGE:
        return [f"must be three integers Z,Y,X, each >= {MIN_PHANTOM_EDGE}"]
    if z * y * x > MAX_PHANTOM_VOXELS:
        return ["is too large (more than 1024^3 voxels)"]
    return []


def predict_cross_errors(opts: Dict[str, object]) -> List[str]:
    """The prediction rule across options (``PredictConfig`` fields, each within its declared bounds):
    the tile overlap is at most half the tile."""
    tile, overlap = opts.get("tile_size"), opts.get("overlap")
    if is_int(tile) and is_int(overlap) and overlap > tile // 2:
        return [f"Prediction option overlap={overlap!r}: must be at most half the tile size ({tile // 2})."]
    return []


def sampling_differs(a: Optional[float], b: Optional[float]) -> bool:
    """Two known voxel sizes that differ by more than ``SAMPLING_TOLERANCE`` (relative to the smaller): not
    one grid (the model and the tomogram, two volumes compared, a tomogram and its halves or prior)."""
    if not a or not b or a <= 0 or b <= 0:
        return False
    return abs(a - b) > SAMPLING_TOLERANCE * min(a, b)


def sampling_mismatch(model_voxel: Optional[float], tomo_voxel: Optional[float]) -> Optional[str]:
    """A message when a model trained at ``model_voxel`` A/px is applied to a ``tomo_voxel`` A/px tomogram."""
    if not sampling_differs(model_voxel, tomo_voxel):
        return None
    return (f"the model was trained at {model_voxel:.4g} A/px but the tomogram is {tomo_voxel:.4g} A/px: "
            f"features have a different size in voxels and the result is not reliable. Train a model on this "
            f"tomogram (or bin it to {model_voxel:.4g} A/px)")


def patch_volume_errors(patch_size: int, shape: Sequence[int], name: str = "the tomogram") -> List[str]:
    """A training patch much larger than the volume only trains on reflected padding."""
    if shape and patch_size > 2 * max(int(n) for n in shape):
        return [f"Training option patch_size={patch_size}: more than twice the largest dimension of {name} "
                f"{tuple(int(n) for n in shape)}; use a patch of at most {max(int(n) for n in shape)} voxels."]
    return []
