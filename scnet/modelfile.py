"""The ``model.pt`` and ``checkpoint.pt`` file formats: save, load (safely) and validate.

Both are ``torch.save`` archives of plain data only -- tensors, numbers, strings,
lists and dicts -- and are read with ``torch.load(weights_only=True)``: a file
carrying pickled Python objects is refused and never executed.

``model.pt`` (format :data:`scnet.modelscan.MODEL_FORMAT`)::

    {"format": "scnet-model-1", "state_dict": {name: tensor}, "model_config": {...ModelConfig},
     "train_config": {...TrainConfig}, "normalisation": {...Normalisation}, "voxel_size": A/px (optional)}

Loading checks the file before reading it (a regular file, its archive entries no larger
inflated than the file: :func:`scnet.modelscan.archive_errors`), then the content before use:
known keys, the size of the network the configuration asks for against the weights stored
(before the network is built), names and shapes, finite weights, a network that does not give
one value for every voxel (e.g. all-zero weights), a finite normalisation with std > 0.
A checkpoint is checked in full before ``--resume`` touches anything: the optimiser's state
(one group, a moment of each parameter's shape), the random generators' states, the epoch and
iteration counters, the stop rule's state (:func:`check_resume_state`).
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
from .outputs import atomic, ensure_space, no_space
from .modelscan import MODEL_FORMAT, archive_errors, init_model_errors, network_size_errors

MODEL_KEYS = {"format", "state_dict", "model_config", "train_config", "normalisation", "voxel_size",
              "mode",  # mode: the training mode (single | halves), written by the automatic-stop trainer
              "tomograms",  # a data set's model: its tomograms (name, shape, normalisation); scnet.dataset
              "row_noise"}  # the slab mode: the rows' noise correlations its input is whitened for; scnet.rows
MODEL_REQUIRED = {"format", "state_dict", "model_config", "normalisation"}
CHECKPOINT_REQUIRED = {"state_dict", "optimizer", "numpy_rng", "torch_rng", "epoch", "iteration",
                       "model_config", "train_config", "normalisation"}
CHECKPOINT_KEYS = CHECKPOINT_REQUIRED | {"seconds", "iterations_per_epoch", "data_shape", "voxel_size",
                                         "stopper", "best_state_dict", "mode", "init_model", "tomograms"}


# --------------------------------------------------------------------------- raw load / save

def safe_load(path: str, what: str = "model", device="cpu"):
    """``torch.load(path, weights_only=True)`` with one clear error per failure; the file is checked first
    (regular, not a FIFO or device; its archive no larger inflated than on disk)."""
    if not os.path.lexists(path):
        hint = "train one with `scnet train`" if what == "model" else "it is written after every epoch"
        raise SCNetInputError(f"The {what} file {path} was not found: {hint}.")
    if os.path.isdir(path):
        raise SCNetInputError(f"The {what} file {path} is a folder; give the file ({what}.pt).")
    for why in archive_errors(path, what):
        raise SCNetInputError(why)
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise SCNetInputError(
            f"{path} holds Python objects other than tensors and plain values; it was NOT loaded because "
            f"loading it could run code from the file (torch: {str(exc).split('.')[0][:120]}). Use a {what} file "
            f"written by `scnet train`.") from None
    except MemoryError:
        raise
    except Exception as exc:  # a truncated or damaged pickle fails in many ways inside torch
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise SCNetInputError(f"{path} is not a readable SC-Net {what} file ({msg}); it may be truncated or "
                              f"another kind of file. Copy it again or re-run `scnet train`.") from None


def safe_save(obj, path: str) -> None:
    """``torch.save`` to ``PATH.partial-<pid>`` then rename (never a half-written file under ``path``)."""
    nbytes = sum(v.numel() * v.element_size() for v in _tensors(obj))
    ensure_space(path, nbytes)
    with atomic(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as exc:  # torch reports a failed write (a full disk) as RuntimeError
            if "write" in str(exc).lower():
                raise no_space(path, nbytes) from None
            raise


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


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


def model_from_config(cfg: dict, path: str, state_dict=None):
    """Build ``SCNet`` from a stored ``model_config`` (unknown or bad keys -> clear error).  With the
    ``state_dict`` read from the same file, a network larger than its weights is refused BEFORE it is
    built (a header cannot make us allocate gigabytes)."""
    from .model import ModelConfig, SCNet
    if not isinstance(cfg, dict):
        raise SCNetInputError(f"{path}: model_config must be a dictionary, got {type(cfg).__name__}.")
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise SCNetInputError(f"{path}: unknown network option(s) {', '.join(map(str, unknown))} in "
                              f"model_config (known: {', '.join(sorted(known))}).")
    if any(isinstance(v, bool) or not isinstance(v, int) for k, v in cfg.items()
           if k != "upsampling_block" and not (k == "row_gap" and v is None)):
        raise SCNetInputError(f"{path}: invalid network configuration {cfg} (widths, depth and row_gap must be "
                              f"integers; row_gap may be null).")
    stored = 4 * sum(v.numel() for v in state_dict.values() if isinstance(v, torch.Tensor)) \
        if isinstance(state_dict, dict) else None
    for why in network_size_errors(ModelConfig(**cfg).to_dict(), stored if stored is not None else 2 ** 62, path):
        raise SCNetInputError(why)
    try:
        return SCNet(ModelConfig(**cfg))
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
               tomograms: Optional[list] = None, row_noise: Optional[dict] = None) -> None:
    """Write ``model.pt`` (atomically, last): weights + configs + normalisation (+ voxel size in A; + the
    tomograms of a data set, whose model normalises each tomogram by its own statistics)."""
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
    if tomograms:
        ck["tomograms"] = check_tomograms(tomograms, path)
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


def check_tomograms(value, path: str) -> list:
    """A data set's ``tomograms`` entry: a list of {name, shape (3 ints), normalisation (finite, std > 0)}."""
    ok = isinstance(value, list) and value and all(
        isinstance(t, dict) and set(t) == {"name", "shape", "normalisation"} and isinstance(t["name"], str)
        and isinstance(t["shape"], (list, tuple)) and len(t["shape"]) == 3
        and all(isinstance(n, int) and n > 0 for n in t["shape"]) for t in value)
    if not ok:
        raise SCNetInputError(f"{path}: 'tomograms' must list the data set's tomograms as name, shape (Z, Y, X) and "
                              f"normalisation; got {str(value)[:200]}. The file was edited or damaged: re-run "
                              f"`scnet train`.")
    for t in value:
        check_normalisation(t["normalisation"], f"{path} (tomogram {t['name']})")
    return [dict(t, shape=list(t["shape"])) for t in value]


def load_model_file(path: str, device="cpu") -> Tuple[object, object, Dict]:
    """Load and validate ``model.pt`` -> (SCNet in eval mode on ``device``, Normalisation, raw dict)."""
    ck = safe_load(path, "model")
    if isinstance(ck, dict) and "optimizer" in ck and "format" not in ck:
        raise SCNetInputError(f"{path} is a training checkpoint, not a model: give model.pt from the same folder.")
    if not isinstance(ck, dict) or ck.get("format") != MODEL_FORMAT:
        raise SCNetInputError(f"{path} is not an SC-Net model.pt (written by `scnet train`): its format entry is "
                              f"{ck.get('format') if isinstance(ck, dict) else None!r}, expected {MODEL_FORMAT!r}.")
    _check_keys(ck, path, MODEL_KEYS, MODEL_REQUIRED, "model")
    model = model_from_config(ck["model_config"], path, ck["state_dict"])
    load_weights(model, ck["state_dict"], path)
    norm = check_normalisation(ck["normalisation"], path)
    check_row_noise(ck.get("row_noise"), path)
    vs = ck.get("voxel_size")
    if vs is not None and (not isinstance(vs, (int, float)) or not math.isfinite(vs) or vs <= 0):
        raise SCNetInputError(f"{path}: voxel_size {vs!r} must be a positive number (A/px).")
    if "tomograms" in ck:
        check_tomograms(ck["tomograms"], path)
    from .model import fold_batchnorm
    model.to(device).eval()
    fold_batchnorm(model)
    check_not_constant(model, path)
    return model, norm, ck


def check_not_constant(model, path: str) -> None:
    """Refuse a network that gives one value for every voxel (all-zero weights, a zeroed last layer):
    its "denoised" tomogram would be a constant.  One small forward pass on random values."""
    m = model.cfg.multiple()
    edge = m * max(1, -(-8 // m))
    dev = next(model.parameters()).device
    x = torch.randn((1, 1, edge, edge, edge), generator=torch.Generator().manual_seed(0)).to(dev)
    with torch.no_grad():
        y = model(x)
    if not bool(torch.isfinite(y).all()) or float(y.max() - y.min()) == 0.0:
        raise SCNetInputError(f"{path}: the network gives the same value for every voxel (e.g. all its weights are "
                              f"0); its output would be a constant, not a denoised tomogram. Train it again.")


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

def load_checkpoint(path: str, device="cpu") -> dict:
    """Load and validate ``checkpoint.pt`` (keys, configuration vs weights)."""
    ck = safe_load(path, "checkpoint", device)
    _check_keys(ck, path, CHECKPOINT_KEYS, CHECKPOINT_REQUIRED, "checkpoint")
    if isinstance(ck["torch_rng"], torch.Tensor):  # the sampler's generator is a CPU one, whatever the device
        ck["torch_rng"] = ck["torch_rng"].cpu()
    model = model_from_config(ck["model_config"], path, ck["state_dict"])
    load_weights(model, ck["state_dict"], path)
    if ck.get("best_state_dict") is not None:
        load_weights(model_from_config(ck["model_config"], path, ck["best_state_dict"]), ck["best_state_dict"], path)
    check_normalisation(ck["normalisation"], path)
    check_resume_state(ck, path, model)
    return ck


MAX_COUNT = 10 ** 12   # epochs and iterations a checkpoint may record
STOPPER_KEYS = {"ema": "number", "best": "number", "best_iteration": "count", "bad": "count"}


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_COUNT


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_resume_state(ck: dict, path: str, model) -> None:
    """Everything ``--resume`` applies, checked before anything is touched (so a damaged checkpoint can
    never leave a half-restored run or cost the folder its model): counters, time, stop-rule state, both
    random generators' states and the optimiser's state against ``model``'s parameters."""
    def bad(what):
        raise SCNetInputError(f"{path}: {what}; this checkpoint cannot be resumed (it is damaged or was edited). "
                              f"Train without --resume, or into a new --output-dir.")
    for k in ("epoch", "iteration"):
        if not _count(ck[k]):
            bad(f"{k} {ck[k]!r} is not a whole number in 0..{MAX_COUNT}")
    ipe = ck.get("iterations_per_epoch")
    if ipe is not None and not (_count(ipe) and ipe >= 1):
        bad(f"iterations_per_epoch {ipe!r} is not a whole number >= 1")
    if ck["epoch"] > ck["iteration"] or (ipe and ck["iteration"] > ck["epoch"] * ipe):
        bad(f"epoch {ck['epoch']} and iteration {ck['iteration']} do not fit together"
            + (f" ({ipe} iterations per epoch)" if ipe else ""))
    if ck.get("seconds") is not None and not (_finite(ck["seconds"]) and ck["seconds"] >= 0):
        bad(f"seconds {ck['seconds']!r} is not a time >= 0")
    ds = ck.get("data_shape")
    if ds is not None and not (isinstance(ds, (list, tuple)) and len(ds) == 3 and all(_count(n) and n > 0 for n in ds)):
        bad(f"data_shape {ds!r} is not three sizes")
    if not isinstance(ck["train_config"], dict):
        bad("train_config is not a dictionary of options")
    for k in ("mode", "init_model"):
        if ck.get(k) is not None and not isinstance(ck[k], str):
            bad(f"{k} {ck[k]!r} is not a text")
    st = ck.get("stopper")
    if st is not None:
        if not isinstance(st, dict) or set(map(str, st)) - set(STOPPER_KEYS):
            bad(f"the stop rule's state {st!r} is not a dictionary of {', '.join(STOPPER_KEYS)}")
        for k, v in st.items():
            ok = _count(v) if STOPPER_KEYS[k] == "count" else (v is None or _finite(v))
            if not ok:
                bad(f"the stop rule's {k} {v!r} is not a {'whole number' if STOPPER_KEYS[k] == 'count' else 'number'}")
    import numpy as np
    try:
        np.random.default_rng(0).bit_generator.state = ck["numpy_rng"]
    except (TypeError, ValueError, KeyError, OverflowError, AttributeError) as exc:
        bad(f"the numpy random state is not one this training writes ({str(exc)[:80] or type(exc).__name__})")
    tr = ck["torch_rng"]
    if not isinstance(tr, torch.Tensor) or tr.dtype != torch.uint8 or \
            tr.shape != torch.Generator().get_state().shape:
        bad("the torch random state is not the state of a torch CPU generator")
    try:
        torch.Generator().set_state(tr)
    except (RuntimeError, TypeError, ValueError) as exc:
        bad(f"the torch random state is not valid ({str(exc)[:80]})")
    _check_optimizer(ck["optimizer"], list(model.parameters()), bad)


def _check_optimizer(opt, params, bad) -> None:
    """Adam's state dict: one parameter group over every parameter, finite hyper-parameters, and for each
    parameter a step count and two moments of its shape (torch would only fail at the next step)."""
    if not isinstance(opt, dict) or not isinstance(opt.get("state"), dict) or not isinstance(
            opt.get("param_groups"), list):
        bad("the optimiser state is not a dictionary with 'state' and 'param_groups'")
    groups = opt["param_groups"]
    if len(groups) != 1 or not isinstance(groups[0], dict):
        bad(f"the optimiser holds {len(groups)} parameter groups, not 1")
    g = groups[0]
    if g.get("params") != list(range(len(params))):
        bad(f"the optimiser's parameter group does not list the network's {len(params)} parameters")
    for k in ("lr", "eps", "weight_decay"):
        if not (_finite(g.get(k)) and g[k] >= 0):
            bad(f"the optimiser's {k} {g.get(k)!r} is not a number >= 0")
    betas = g.get("betas")
    if not (isinstance(betas, (list, tuple)) and len(betas) == 2 and all(_finite(b) and 0 <= b < 1 for b in betas)):
        bad(f"the optimiser's betas {betas!r} are not two numbers in [0, 1)")
    for k, s in opt["state"].items():
        if not (isinstance(k, int) and 0 <= k < len(params)) or not isinstance(s, dict):
            bad(f"the optimiser holds a state for parameter {k!r}, which the network does not have")
        step = s.get("step")
        step = float(step) if isinstance(step, torch.Tensor) and step.numel() == 1 else step
        if not (_finite(step) and step >= 0):
            bad(f"the optimiser's step count {s.get('step')!r} for parameter {k} is not a number >= 0")
        for m in ("exp_avg", "exp_avg_sq"):
            v = s.get(m)
            if not isinstance(v, torch.Tensor) or tuple(v.shape) != tuple(params[k].shape):
                shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
                bad(f"the optimiser's {m} of parameter {k} has shape {shape}, the parameter "
                    f"{tuple(params[k].shape)}")
            if not v.is_floating_point() or not bool(torch.isfinite(v).all()) or (m == "exp_avg_sq" and bool(
                    (v < 0).any())):
                bad(f"the optimiser's {m} of parameter {k} holds NaN/Inf or invalid values")
    try:
        torch.optim.Adam(params, lr=1.0).load_state_dict(opt)
    except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as exc:
        bad(f"the optimiser state does not load ({str(exc)[:100]})")


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
            f"diverged (learning rate {lr}) or the input volumes hold extreme values; nothing of this run was kept: "
            f"{output_dir} holds what it held before. Lower --lr, check the volumes, and train again.")
