"""The ``model.pt`` and ``checkpoint.pt`` file formats: save, load (safely) and validate.

Both are ``torch.save`` archives of plain data only -- tensors, numbers, strings,
lists and dicts -- and are read with ``torch.load(weights_only=True)``: a file
carrying pickled Python objects is refused and never executed.

``model.pt`` (format :data:`scnet.modelscan.MODEL_FORMAT`)::

    {"format": "scnet-model-1", "state_dict": {name: tensor}, "model_config": {...ModelConfig},
     "train_config": {...TrainConfig}, "normalisation": {...Normalisation}, "voxel_size": A/px (optional)}

Loading checks the content before use: known keys, the network configuration against the
weights (names and shapes), finite weights, a finite normalisation with std > 0.
"""
from __future__ import annotations

import math
import os
import pickle
import zipfile
from dataclasses import fields
from typing import Dict, Optional, Tuple

import torch

from .errors import SCNetInputError
from .outputs import atomic
from .modelscan import MODEL_FORMAT, init_model_errors

MODEL_KEYS = {"format", "state_dict", "model_config", "train_config", "normalisation", "voxel_size",
              "mode", "row_noise"}  # mode: the training mode; row_noise: the slab mode's whitened rows
MODEL_REQUIRED = {"format", "state_dict", "model_config", "normalisation"}
CHECKPOINT_REQUIRED = {"state_dict", "optimizer", "numpy_rng", "torch_rng", "epoch", "iteration",
                       "model_config", "train_config", "normalisation"}
CHECKPOINT_KEYS = CHECKPOINT_REQUIRED | {"seconds", "iterations_per_epoch", "data_shape", "voxel_size",
                                         "stopper", "best_state_dict", "mode", "init_model"}


# --------------------------------------------------------------------------- raw load / save

def safe_load(path: str, what: str = "model", device="cpu"):
    """``torch.load(path, weights_only=True)`` with one clear error per failure."""
    if not os.path.exists(path):
        hint = "train one with `scnet train`" if what == "model" else "it is written after every epoch"
        raise SCNetInputError(f"The {what} file {path} was not found: {hint}.")
    if os.path.isdir(path):
        raise SCNetInputError(f"The {what} file {path} is a folder; give the file ({what}.pt).")
    if not zipfile.is_zipfile(path):
        raise SCNetInputError(f"{path} is not a torch {what} file (expected the zip archive written by "
                              f"`scnet train`); it may be truncated or another kind of file.")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise SCNetInputError(
            f"{path} holds Python objects other than tensors and plain values; it was NOT loaded because "
            f"loading it could run code from the file (torch: {str(exc).split('.')[0][:120]}). Use a {what} file "
            f"written by `scnet train`.") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise SCNetInputError(f"{path} is not a readable SC-Net {what} file ({msg}); it may be truncated or "
                              f"another kind of file. Copy it again or re-run `scnet train`.") from None


def safe_save(obj, path: str) -> None:
    """``torch.save`` to ``PATH.partial-<pid>`` then rename (never a half-written file under ``path``)."""
    with atomic(path) as tmp:
        torch.save(obj, tmp)


# --------------------------------------------------------------------------- validation

def _check_keys(d, path, allowed, required, what):
    if not isinstance(d, dict):
        raise SCNetInputError(f"{path} is not an SC-Net {what} file (it holds a {type(d).__name__}, not the "
                              f"dictionary written by `scnet train`).")
    unknown = sorted(set(map(str, d)) - allowed)
    if unknown:
        raise SCNetInputError(f"{path}: unknown entries {', '.join(unknown)} in the {what} file (known: "
                              f"{', '.join(sorted(allowed))}); it was written by another program or version.")
    missing = sorted(required - set(d))
    if missing:
        raise SCNetInputError(f"{path}: the {what} file is incomplete (missing {', '.join(missing)}); "
                              f"re-run `scnet train`.")


def model_from_config(cfg: dict, path: str):
    """Build ``SCNet`` from a stored ``model_config`` (unknown or bad keys -> clear error)."""
    from .model import ModelConfig, SCNet
    if not isinstance(cfg, dict):
        raise SCNetInputError(f"{path}: model_config must be a dictionary, got {type(cfg).__name__}.")
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise SCNetInputError(f"{path}: unknown network option(s) {', '.join(map(str, unknown))} in "
                              f"model_config (known: {', '.join(sorted(known))}).")
    try:
        mc = ModelConfig(**cfg)
        if not (1 <= int(mc.depth) <= 5 and int(mc.base_width) >= 1 and int(mc.max_width) >= 1):
            raise ValueError("depth 1..5 and widths >= 1 needed")
        return SCNet(mc)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise SCNetInputError(f"{path}: invalid network configuration {cfg} ({exc}).") from None


def load_weights(model, state_dict, path: str) -> None:
    """Load ``state_dict`` into ``model``; names/shapes that do not match the configuration -> clear error."""
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise SCNetInputError(f"{path}: state_dict must map parameter names to tensors.")
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    extra = sorted(set(state_dict) - set(own))
    wrong = sorted(k for k in set(own) & set(state_dict) if tuple(own[k].shape) != tuple(state_dict[k].shape))
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of another shape (e.g. {k}: {tuple(state_dict[k].shape)} in the file, "
                         f"{tuple(own[k].shape)} for the configuration)")
        raise SCNetInputError(f"{path}: the weights do not match the network configuration stored with them "
                              f"({'; '.join(parts)}); the file is damaged or was edited. Re-run `scnet train`.")
    bad = [k for k, v in state_dict.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise SCNetInputError(f"{path}: {len(bad)} weight tensor(s) hold NaN/Inf (e.g. {bad[0]}): the training "
                              f"diverged. Train again (e.g. with a lower --lr); this model cannot be used.")
    model.load_state_dict(state_dict)


def check_normalisation(d, path: str):
    """The stored normalisation stats as ``scnet.data.Normalisation``: finite, std > 0."""
    from .data import Normalisation
    known = {f.name for f in fields(Normalisation)}
    if not isinstance(d, dict) or set(d) - known or not {"mean", "std"} <= set(d):
        raise SCNetInputError(f"{path}: normalisation must hold {', '.join(sorted(known))}; got {d!r}.")
    try:
        vals = {k: float(v) for k, v in d.items()}
    except (TypeError, ValueError):
        raise SCNetInputError(f"{path}: normalisation values must be numbers; got {d!r}.") from None
    if not all(math.isfinite(v) for v in vals.values()):
        raise SCNetInputError(f"{path}: normalisation {vals} holds NaN/Inf; the model cannot be used.")
    if not vals["std"] > 0:
        raise SCNetInputError(f"{path}: normalisation std = {vals['std']} (must be > 0): the model would divide "
                              f"by zero. Re-run `scnet train`.")
    return Normalisation(**vals)


# --------------------------------------------------------------------------- model.pt

def save_model(path: str, model, cfg, norm, voxel_size: Optional[float] = None, mode: Optional[str] = None,
               row_noise: Optional[dict] = None) -> None:
    """Write ``model.pt`` (atomically, last): weights + configs + normalisation (+ voxel size in A)."""
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}  # files: standard layout
    bad = [k for k, v in sd.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise SCNetInputError(f"Training produced non-finite weights ({bad[0]} ...); {path} was not written. "
                              f"Lower --lr or check the input volumes.")
    ck = {"format": MODEL_FORMAT, "state_dict": sd, "model_config": model.cfg.to_dict(),
          "train_config": cfg.to_dict(), "normalisation": norm.to_dict()}
    check_normalisation(ck["normalisation"], path)
    if voxel_size:
        ck["voxel_size"] = float(voxel_size)
    if mode is not None:
        ck["mode"] = str(mode)
    if row_noise:
        ck["row_noise"] = {"rho": [float(r) for r in row_noise["rho"]]}
        check_row_noise(ck["row_noise"], path)
    safe_save(ck, path)


def check_row_noise(d, path: str) -> Optional[dict]:
    """The rows' noise correlations a slab-mode model was trained with (its input whitened along Y)."""
    if d is None:
        return None
    rho = d.get("rho") if isinstance(d, dict) else None
    if not isinstance(rho, list) or not 1 <= len(rho) <= 8 or not all(
            isinstance(r, (int, float)) and math.isfinite(r) and abs(r) < 0.5 for r in rho):
        raise SCNetInputError(f"{path}: row_noise {d!r} must hold 'rho', 1 to 8 noise correlations in (-0.5, 0.5); "
                              f"the file is damaged or was edited. Re-run `scnet train`.")
    return d


def load_model_file(path: str, device="cpu") -> Tuple[object, object, Dict]:
    """Load and validate ``model.pt`` -> (SCNet in eval mode on ``device``, Normalisation, raw dict)."""
    ck = safe_load(path, "model")
    if isinstance(ck, dict) and "optimizer" in ck and "format" not in ck:
        raise SCNetInputError(f"{path} is a training checkpoint, not a model: give model.pt from the same folder.")
    if not isinstance(ck, dict) or ck.get("format") != MODEL_FORMAT:
        raise SCNetInputError(f"{path} is not an SC-Net model.pt (written by `scnet train`): its format entry is "
                              f"{ck.get('format') if isinstance(ck, dict) else None!r}, expected {MODEL_FORMAT!r}.")
    _check_keys(ck, path, MODEL_KEYS, MODEL_REQUIRED, "model")
    model = model_from_config(ck["model_config"], path)
    load_weights(model, ck["state_dict"], path)
    norm = check_normalisation(ck["normalisation"], path)
    check_row_noise(ck.get("row_noise"), path)
    vs = ck.get("voxel_size")
    if vs is not None and (not isinstance(vs, (int, float)) or not math.isfinite(vs) or vs <= 0):
        raise SCNetInputError(f"{path}: voxel_size {vs!r} must be a positive number (A/px).")
    from .model import fold_batchnorm
    model.to(device).eval()
    fold_batchnorm(model)
    return model, norm, ck


def load_initial_weights(path: str, model_config: dict) -> Dict[str, torch.Tensor]:
    """The weights of a trained ``model.pt`` to START a new training from (fine-tuning).

    The file gets every check of :func:`load_model_file` (never executes code; keys, weights and
    normalisation validated); its network must equal ``model_config`` (the new training's), else a
    clear error saying which options to set. Only the weights are taken: the normalisation, the
    optimiser and the stop rule start afresh on the new data.
    """
    from .model import ModelConfig
    _, _, ck = load_model_file(path)
    errors = init_model_errors(ModelConfig(**ck["model_config"]).to_dict(), dict(model_config), path)
    if errors:
        raise SCNetInputError(errors[0])
    return {k: v.detach().clone() for k, v in ck["state_dict"].items()}


# --------------------------------------------------------------------------- checkpoint.pt

def save_checkpoint(path: str, ck: dict) -> None:
    safe_save(ck, path)


def load_checkpoint(path: str, device="cpu") -> dict:
    """Load and validate ``checkpoint.pt`` (keys, configuration vs weights)."""
    ck = safe_load(path, "checkpoint", device)
    _check_keys(ck, path, CHECKPOINT_KEYS, CHECKPOINT_REQUIRED, "checkpoint")
    model = model_from_config(ck["model_config"], path)
    load_weights(model, ck["state_dict"], path)
    if ck.get("best_state_dict") is not None:
        load_weights(model_from_config(ck["model_config"], path), ck["best_state_dict"], path)
    check_normalisation(ck["normalisation"], path)
    return ck


def resume_differences(ck: dict, train_config: dict, data_shape, normalisation: dict,
                       ignore=("epochs", "device", "min_iterations", "max_iterations", "patience", "min_delta",
                               "max_minutes")) -> list:
    """What differs between a checkpoint and the run that wants to resume from it (empty = may resume).

    Options are compared field by field (the length of the training -- ``epochs`` and the automatic
    stop's options -- may change, ``device`` may change); the data by
    shape and by the normalisation statistics fitted on it (a cheap fingerprint of the volumes).
    """
    diffs = []
    old = ck.get("train_config") or {}
    for k in sorted(set(old) | set(train_config)):
        if k in ignore:
            continue
        if old.get(k) != train_config.get(k):
            diffs.append(f"{k}: {old.get(k)!r} in the checkpoint, {train_config.get(k)!r} now")
    if ck.get("data_shape") is not None and list(ck["data_shape"]) != list(data_shape):
        diffs.append(f"data shape: {tuple(ck['data_shape'])} in the checkpoint, {tuple(data_shape)} now")
    oldn = ck.get("normalisation") or {}
    for k in ("mean", "std", "prior_a", "prior_b"):
        a, b = oldn.get(k), normalisation.get(k)
        if a is None or b is None or not math.isclose(float(a), float(b), rel_tol=1e-5, abs_tol=1e-8):
            diffs.append(f"data (noisy/prior volumes): their statistics differ ({k} {a} vs {b})")
            break
    return diffs


def check_loss(loss, iteration: int, epoch: int, lr: float, output_dir: str) -> None:
    """Stop training the moment the loss is not finite (NaN/Inf): nothing later could be trusted."""
    v = float(loss.detach())
    if not math.isfinite(v):
        raise SCNetInputError(
            f"Training stopped: the loss became {v} at iteration {iteration} (epoch {epoch}). The training "
            f"diverged (learning rate {lr}) or the input volumes hold extreme values; no model was written to "
            f"{output_dir}. Lower --lr, check the volumes, and train again.")
