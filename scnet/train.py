"""SC-Net training on ONE tomogram (paper §4, §5.1).

``train_model(noisy, prior, cfg, output_dir)`` writes to ``output_dir``:

* ``model.pt``        weights + model/train config + normalisation stats,
* ``checkpoint.pt``   after every epoch (model, optimiser, RNG states) for ``resume``,
* ``loss_log.csv``    iteration,epoch,loss,L_rec,L_smooth,L_exp,L_reg,val_loss,seconds,
* ``train_config.json``.

One iteration: random patches (flips/rot90 shared by noisy and prior), a
volumetric blind spot on the noisy patch (eq. 3), the network on the
replaced patch and the combined loss (eq. 8) against the ORIGINAL noisy
patch (eq. 2) and the prior (eq. 5, 7).  Adam(lr 4e-4, betas 0.5/0.999).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, fields
from typing import Optional

import numpy as np
import torch

from .blindspot import blindspot_replace, centre_ratio
from .data import PatchSampler, check_pair, fit_normalisation, split_train_val, take, validation_patches
from .errors import SCNetInputError
from .losses import LossWeights, combined_loss
from .model import ModelConfig, SCNet
from . import modelfile, outputs, rules

log = logging.getLogger(__name__)

LOG_COLUMNS = ["iteration", "epoch", "loss", "L_rec", "L_smooth", "L_exp", "L_reg", "val_loss", "seconds"]
MODEL_FORMAT = rules.MODEL_FORMAT


@dataclass
class TrainConfig:
    """Training options (JSON keys are exactly these field names)."""

    patch_size: int = 64
    batch_size: int = 2
    epochs: int = 10
    iterations_per_epoch: int = 0          # 0 = auto (about two passes over the training region)
    lr: float = 4e-4
    beta1: float = 0.5
    beta2: float = 0.999
    blindspot_size: int = 3
    blindspot_ratio: float = 0.1
    blindspot_ratio_of: str = "replaced"   # paper §5.1: ratio of replaced voxels; "centres" = public code
    use_expectancy: bool = True
    lambda_rec: Optional[float] = None     # None = paper defaults, see weights()
    lambda_smooth: Optional[float] = None
    lambda_exp: Optional[float] = None
    lambda_reg: Optional[float] = None
    expectancy_kernel: int = 5
    sobel_3d: bool = False
    upsampling_block: bool = True
    base_width: int = 8
    depth: int = 3
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "cpu"

    # ---------------------------------------------------------------
    def weights(self) -> LossWeights:
        """Eq. 8 weights: paper 0.6/0.1/0.2/0.01 with L_exp, 0.8/0.1/0/0.01 without; None fields filled."""
        w = LossWeights.paper(self.use_expectancy)
        return LossWeights(
            rec=w.rec if self.lambda_rec is None else float(self.lambda_rec),
            smooth=w.smooth if self.lambda_smooth is None else float(self.lambda_smooth),
            exp=(w.exp if self.lambda_exp is None else float(self.lambda_exp)) if self.use_expectancy else 0.0,
            reg=w.reg if self.lambda_reg is None else float(self.lambda_reg))

    def centre_ratio(self) -> float:
        """Fraction of voxels drawn as blind-spot block centres (see ``blindspot.centre_ratio``)."""
        return centre_ratio(self.blindspot_ratio, self.blindspot_size, self.blindspot_ratio_of)

    def model_config(self) -> ModelConfig:
        return ModelConfig(base_width=self.base_width, depth=self.depth, upsampling_block=self.upsampling_block)

    def validate(self) -> "TrainConfig":
        """Raise SCNetInputError for the first bad option (rules in :mod:`scnet.rules`, shared with the plugin)."""
        errors = rules.train_option_errors(self.to_dict())
        if errors:
            raise SCNetInputError(errors[0] if len(errors) == 1 else " ".join(errors))
        resolve_device(self.device)
        return self

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
        try:
            with open(path, encoding="utf-8") as fh:
                d = json.load(fh)
        except FileNotFoundError:
            raise SCNetInputError(f"Training config {path} not found.") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise SCNetInputError(f"Training config {path} is not valid JSON ({exc}).") from None
        if not isinstance(d, dict):
            raise SCNetInputError(f"Training config {path} must hold a JSON object of option: value.")
        return cls.from_dict(d, source=path)

    def to_json(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=2)
            fh.write("\n")


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


def resolve_device(device: str) -> torch.device:
    """'cpu', 'cuda' or 'cuda:N'; a clear error when CUDA is requested but unavailable."""
    d = str(device).strip().lower()
    if d == "cpu":
        return torch.device("cpu")
    if d == "cuda" or d.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise SCNetInputError(f"device={device!r} requested but CUDA is not available in this "
                                  "environment (no GPU or a CPU-only torch). Use --device cpu.")
        dev = torch.device(d)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise SCNetInputError(f"device={device!r}: only {torch.cuda.device_count()} GPU(s) visible.")
        return dev
    raise SCNetInputError(f"device={device!r} is not understood: use cpu, cuda or cuda:N.")


def set_threads() -> None:
    torch.set_num_threads(os.cpu_count() or 1)


def auto_iterations(n_voxels: int, cfg: TrainConfig) -> int:
    """About two passes over the training region per epoch, within [4, 500]."""
    it = math.ceil(2 * n_voxels / cfg.patch_size ** 3 / cfg.batch_size)
    return int(min(500, max(4, it)))


def _save_atomic(obj, path: str) -> None:
    modelfile.safe_save(obj, path)


def _fmt_time(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600:d}:{(s // 60) % 60:02d}:{s % 60:02d}"


def train_model(noisy: np.ndarray, prior: np.ndarray, cfg: TrainConfig, output_dir: str,
                resume: bool = False, progress: bool = True, voxel_size: Optional[float] = None) -> str:
    """Train SC-Net on one (noisy, prior) pair; return the path of ``model.pt``.

    ``output_dir`` is locked for the whole run (a second training into it is refused).
    """
    cfg.validate()
    check_pair(noisy, prior)
    for why in rules.patch_volume_errors(cfg.patch_size, noisy.shape):
        raise SCNetInputError(why)
    device = resolve_device(cfg.device)
    set_threads()
    outputs.guard(dirs=[output_dir])
    with outputs.lock_folder(output_dir):
        return _train_locked(noisy, prior, cfg, output_dir, resume, progress, voxel_size, device)


def _train_locked(noisy, prior, cfg, output_dir, resume, progress, voxel_size, device) -> str:
    ckpt_path = os.path.join(output_dir, "checkpoint.pt")
    log_path = os.path.join(output_dir, "loss_log.csv")
    model_path = os.path.join(output_dir, "model.pt")

    norm = fit_normalisation(noisy, prior)
    nz = norm.apply(noisy)
    pz = norm.apply_prior(prior)
    axis, tr, va = split_train_val(nz.shape, cfg.val_fraction)
    sampler = PatchSampler(take(nz, axis, tr), take(pz, axis, tr), cfg.patch_size)
    val = None
    if va.stop > va.start:
        vx, vp = validation_patches(take(nz, axis, va), take(pz, axis, va), cfg.patch_size,
                                    max_patches=max(2, cfg.batch_size))
        val = (torch.from_numpy(vx).to(device), torch.from_numpy(vp).to(device))
    n_train = int(np.prod(sampler.noisy.shape))
    iters = cfg.iterations_per_epoch or auto_iterations(n_train, cfg)
    weights = cfg.weights()

    torch.manual_seed(cfg.seed)
    model = SCNet(cfg.model_config()).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    start_epoch, iteration, elapsed = 0, 0, 0.0

    if resume and os.path.exists(ckpt_path):
        ck = modelfile.load_checkpoint(ckpt_path, device)
        if ck["model_config"] != cfg.model_config().to_dict():
            raise SCNetInputError(f"--resume: the network options differ from the checkpoint in {output_dir} "
                                  f"({ck['model_config']}); use the same options or a new output folder.")
        diffs = modelfile.resume_differences(ck, cfg.to_dict(), noisy.shape, norm.to_dict())
        if diffs:
            raise SCNetInputError(f"--resume: {ckpt_path} was made with other data or options ("
                                  + "; ".join(diffs) + "). Resume with the same ones, or train into a new "
                                  "--output-dir (or without --resume to start again).")
        outputs.remove_quietly([model_path])  # rewritten last; an old one must not look like this run's
        model.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["optimizer"])
        rng.bit_generator.state = ck["numpy_rng"]
        gen.set_state(ck["torch_rng"])
        start_epoch, iteration, elapsed = ck["epoch"], ck["iteration"], ck.get("seconds", 0.0)
        if ck.get("iterations_per_epoch", iters) != iters:
            iters = ck["iterations_per_epoch"]
        log.info("resuming from %s at epoch %d (iteration %d)", ckpt_path, start_epoch, iteration)
        _truncate_log(log_path, iteration)
    else:
        if resume:
            log.warning("--resume: no checkpoint in %s, starting from scratch", output_dir)
        outputs.remove_quietly([model_path, ckpt_path])  # a new run: no stale model/checkpoint beside its log
        with open(log_path, "w", newline="") as fh:
            csv.writer(fh).writerow(LOG_COLUMNS)
    cfg.to_json(os.path.join(output_dir, "train_config.json"))

    total = cfg.epochs * iters
    t0 = time.time() - elapsed
    t_run = time.time()
    it_run = 0
    if progress:
        _progress(f"SC-Net training: {cfg.epochs} epochs x {iters} iterations, batch {cfg.batch_size} of "
                  f"{cfg.patch_size}^3, {sum(p.numel() for p in model.parameters())} parameters, device {device}")
    with open(log_path, "a", newline="") as fh:
        writer = csv.writer(fh)
        for epoch in range(start_epoch, cfg.epochs):
            model.train()
            for i in range(iters):
                x, p = sampler.sample(rng, cfg.batch_size)
                x = torch.from_numpy(x).to(device)
                p = torch.from_numpy(p).to(device)
                x_bs, mask = blindspot_replace(x, cfg.centre_ratio(), cfg.blindspot_size, generator=gen)
                out = model(x_bs)
                terms = combined_loss(out, x, mask, p, weights, cfg.expectancy_kernel, cfg.sobel_3d)
                modelfile.check_loss(terms["loss"], iteration + 1, epoch + 1, cfg.lr, output_dir)
                opt.zero_grad(set_to_none=True)
                terms["loss"].backward()
                opt.step()
                iteration += 1
                it_run += 1
                last = i == iters - 1
                vloss = validation_loss(model, val, cfg, weights) if (last and val is not None) else None
                row = [iteration, epoch + 1] + [f"{float(terms[k].detach()):.6g}" for k in
                                                ("loss", "L_rec", "L_smooth", "L_exp", "L_reg")]
                row += ["" if vloss is None else f"{vloss:.6g}", f"{time.time() - t0:.2f}"]
                writer.writerow(row)
                if progress and (last or iteration % max(1, iters // 10) == 0 or it_run <= 1):
                    rate = (time.time() - t_run) / it_run
                    eta = rate * (total - iteration)
                    _progress(f"epoch {epoch + 1}/{cfg.epochs} iteration {iteration}/{total} "
                              f"loss {float(terms['loss'].detach()):.4g} (rec {float(terms['L_rec'].detach()):.4g})"
                              + ("" if vloss is None else f" val {vloss:.4g}")
                              + f" {rate:.2f} s/it ETA {_fmt_time(eta)}")
            fh.flush()
            _save_atomic({"state_dict": model.state_dict(), "optimizer": opt.state_dict(),
                          "numpy_rng": rng.bit_generator.state, "torch_rng": gen.get_state(),
                          "epoch": epoch + 1, "iteration": iteration, "seconds": time.time() - t0,
                          "iterations_per_epoch": iters, "model_config": cfg.model_config().to_dict(),
                          "train_config": cfg.to_dict(), "normalisation": norm.to_dict(),
                          "data_shape": list(noisy.shape)}, ckpt_path)
    save_model(model_path, model, cfg, norm, voxel_size)
    if progress:
        _progress(f"SC-Net training done in {_fmt_time(time.time() - t0)}: {model_path}")
    return model_path


def _truncate_log(path: str, iteration: int) -> None:
    """Drop log rows written after the checkpoint (an interrupted epoch) before appending."""
    if not os.path.exists(path):
        with open(path, "w", newline="") as fh:
            csv.writer(fh).writerow(LOG_COLUMNS)
        return
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= iteration]
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(keep)


def _progress(msg: str) -> None:
    print(f"[scnet train] {msg}", file=sys.stderr, flush=True)


@torch.no_grad()
def validation_loss(model: SCNet, val, cfg: TrainConfig, weights: LossWeights) -> float:
    """Eq. 8 on fixed held-out patches with a fixed blind spot, in eval mode."""
    x, p = val
    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(987654)
    x_bs, mask = blindspot_replace(x, cfg.centre_ratio(), cfg.blindspot_size, generator=g)
    out = model(x_bs)
    loss = float(combined_loss(out, x, mask, p, weights, cfg.expectancy_kernel, cfg.sobel_3d)["loss"])
    model.train(was_training)
    return loss


def save_model(path: str, model: SCNet, cfg: TrainConfig, norm, voxel_size: Optional[float] = None) -> None:
    """model.pt: weights + configs + normalisation stats (what ``scnet predict`` needs); see :mod:`scnet.modelfile`."""
    modelfile.save_model(path, model, cfg, norm, voxel_size)


def denoise_array(noisy: np.ndarray, prior: np.ndarray, train_cfg: TrainConfig, predict_cfg=None,
                  work_dir: Optional[str] = None, progress: bool = False) -> np.ndarray:
    """Train on (noisy, prior) then predict the noisy volume: the whole SC-Net in one call.

    ``work_dir`` keeps model.pt / loss_log.csv; a temporary folder is used (and removed) otherwise.
    """
    from .predict import PredictConfig, predict_array
    predict_cfg = predict_cfg or PredictConfig(device=train_cfg.device)
    tmp = None
    if work_dir is None:
        tmp = work_dir = tempfile.mkdtemp(prefix="scnet_")
    try:
        model_path = train_model(noisy, prior, train_cfg, work_dir, progress=progress)
        return predict_array(model_path, noisy, predict_cfg)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
