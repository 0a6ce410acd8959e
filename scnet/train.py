"""SC-Net training on ONE tomogram (paper §4, §5.1), stopped when it has converged.

``train_model(noisy, prior, cfg, output_dir, halves=None)`` writes to ``output_dir``:

* ``model.pt``          weights (the best held-out validation loss) + configs + normalisation,
* ``checkpoint.pt``     after every validation (model, optimiser, RNG and stopping state) for ``resume``,
* ``loss_log.csv``      iteration,epoch,loss,L_rec,L_smooth,L_exp,L_reg,val_loss,seconds,
* ``train_config.json`` the options, and ``training_summary.json`` (iterations, why it stopped).

Two modes (``TrainConfig.mode``):

* ``single`` -- the paper: one iteration takes random patches (flips/rot90 shared by noisy
  and prior), a volumetric blind spot on the noisy patch (eq. 3), the network on the
  replaced patch and the combined loss (eq. 8) against the ORIGINAL noisy patch (eq. 2)
  and the prior (eq. 5, 7).
* ``halves`` -- beyond the paper, when the even/odd half tomograms exist (reconstructions
  of the even and odd tilts): noise in a back-projection is correlated along the
  projection rays, which no voxel blind spot hides, but it is independent between the
  halves.  The network maps one half to the other (even->odd and odd->even, Noise2Noise,
  as cryoCARE does); eq. 2 becomes the squared error to the other half on every voxel,
  and the sparsity constraints (eq. 5, 7) and L_reg against the prior are kept.
  ``auto`` (default) = ``halves`` when halves are given, else ``single``.

Stopping (``epochs = 0``, the default): an "epoch" is ``iterations_per_epoch``
iterations followed by the held-out validation loss (eq. 8 on fixed patches of the
validation slab; in the single mode with a fixed blind spot, in the halves mode half to
half); the loss is smoothed (exponential average) and training stops when it has not
improved by ``min_delta`` (relative) for ``patience`` validations -- never before
``min_iterations``, always at ``max_iterations`` or after ``max_minutes``.  ``epochs > 0``
gives the fixed count ``epochs x iterations_per_epoch`` instead.  Adam(lr 4e-4, betas
0.5/0.999) in both.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import sys
import time
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from .blindspot import blindspot_replace
from .choices import TRAIN_MODES
from .config import TrainConfig  # noqa: F401 (declared in scnet.config; re-exported)
from .data import PatchSampler, check_pair, fit_normalisation, split_train_val, take, validation_patches
from .device import resolve_device, set_threads  # noqa: F401 (one place for devices; re-exported)
from .errors import SCNetInputError
from .losses import LossWeights, combined_loss, halves_loss
from .model import SCNet
from . import modelfile, outputs, rules

log = logging.getLogger(__name__)

LOG_COLUMNS = ["iteration", "epoch", "loss", "L_rec", "L_smooth", "L_exp", "L_reg", "val_loss", "seconds"]
MODEL_FORMAT = rules.MODEL_FORMAT
MODES = TRAIN_MODES
STOP_REASONS = ("plateau", "max_iterations", "max_minutes", "epochs")


def _save_atomic(obj, path: str) -> None:
    modelfile.safe_save(obj, path)


def _fmt_time(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600:d}:{(s // 60) % 60:02d}:{s % 60:02d}"


class Stopper:
    """The automatic stop: smoothed held-out loss, patience, floor, ceiling and time budget.

    ``update(val_loss, iteration)`` after each validation returns whether this validation is
    the best so far (smoothed); ``reason(iteration, minutes)`` returns why training must stop
    now (one of ``STOP_REASONS``) or None.  The state is a plain dict for the checkpoint.
    """

    SMOOTHING = 0.5   # weight of the newest validation in the exponential average

    def __init__(self, cfg: TrainConfig, total_fixed: Optional[int] = None):
        self.cfg = cfg
        self.total_fixed = total_fixed
        self.state = {"ema": None, "best": None, "best_iteration": 0, "bad": 0}

    def update(self, val_loss: float, iteration: int) -> bool:
        st = self.state
        st["ema"] = val_loss if st["ema"] is None else \
            self.SMOOTHING * val_loss + (1 - self.SMOOTHING) * st["ema"]
        if st["best"] is None or st["ema"] < st["best"] - self.cfg.min_delta * abs(st["best"]):
            st["best"], st["best_iteration"], st["bad"] = st["ema"], iteration, 0
            return True
        st["bad"] += 1
        return False

    def reason(self, iteration: int, minutes: float, validated: bool) -> Optional[str]:
        c = self.cfg
        if c.max_minutes and minutes >= c.max_minutes:
            return "max_minutes"
        if self.total_fixed is not None:
            return "epochs" if iteration >= self.total_fixed else None
        if iteration >= c.max_iterations:
            return "max_iterations"
        if validated and iteration >= c.min_iterations and self.state["bad"] >= c.patience:
            return "plateau"
        return None

    def explain(self, reason: str, iteration: int) -> str:
        c, st = self.cfg, self.state
        return {"plateau": f"the smoothed validation loss has not improved by {c.min_delta:g} (relative) for "
                           f"{c.patience} validations (best at iteration {st['best_iteration']})",
                "max_iterations": f"the ceiling of {c.max_iterations} iterations was reached",
                "max_minutes": f"the time budget of {c.max_minutes:g} min was reached at iteration {iteration}",
                "epochs": f"the fixed count of {c.epochs} epochs x {c.iterations_per_epoch} iterations was done",
                }[reason]


def _prepare_halves(halves, noisy, norm):
    if halves is None:
        return None
    even, odd = halves
    check_pair(noisy, even, "noisy volume", "even half tomogram")
    check_pair(noisy, odd, "noisy volume", "odd half tomogram")
    return norm.apply(even), norm.apply(odd)


def train_model(noisy: np.ndarray, prior: np.ndarray, cfg: TrainConfig, output_dir: str,
                resume: bool = False, progress: bool = True, halves: Optional[Sequence[np.ndarray]] = None,
                on_validation: Optional[Callable[[SCNet, int, float], None]] = None,
                voxel_size: Optional[float] = None, init_model: Optional[str] = None,
                prior_source: Optional[str] = None) -> str:
    """Train SC-Net on one (noisy, prior) pair (and its even/odd ``halves``); return ``model.pt``'s path.

    ``on_validation(model, iteration, val_loss)`` is called after each validation (benchmarks).
    ``output_dir`` is locked for the whole run (a second training into it is refused).
    ``init_model``: a trained ``model.pt`` whose weights a NEW run starts from (fine-tuning a model
    trained on another tomogram); ignored when ``resume`` continues a checkpoint (which already holds
    them). Its network must equal ``cfg``'s.
    ``prior_source``: where the prior came from (given file, made from the tomogram), for the summary.
    """
    cfg.validate()
    check_pair(noisy, prior)
    mode = cfg.resolved_mode(halves is not None)
    w = cfg.weights(mode)
    if not any((w.rec, w.smooth, w.exp, w.reg)):
        raise SCNetInputError(f"All loss weights are 0 in the {mode} mode (lambda_rec/smooth/exp/reg); nothing "
                              f"would be learned. Give lambda_rec > 0 (default 0.6) or leave the weights unset.")
    for why in rules.patch_volume_errors(cfg.patch_size, noisy.shape):
        raise SCNetInputError(why)
    device = resolve_device(cfg.device)
    set_threads()
    outputs.guard(dirs=[output_dir], outputs=[os.path.join(output_dir, n) for n in rules.TRAIN_OUTPUTS],
                  inputs=[init_model])
    resuming = resume and os.path.exists(os.path.join(output_dir, "checkpoint.pt"))
    if init_model and resuming:
        note = f"--init-model {init_model} ignored: resuming from the checkpoint in {output_dir}"
        (_progress if progress else log.warning)(note)
        init_model = None
    init = modelfile.load_initial_weights(init_model, cfg.model_config().to_dict()) if init_model else None
    with outputs.lock_folder(output_dir):
        return _train_locked(noisy, prior, cfg, output_dir, resume, progress, voxel_size, device, mode, halves,
                             on_validation, init, init_model, prior_source)


def _train_locked(noisy, prior, cfg, output_dir, resume, progress, voxel_size, device, mode, halves,
                  on_validation, init=None, init_model=None, prior_source=None) -> str:
    ckpt_path = os.path.join(output_dir, "checkpoint.pt")
    log_path = os.path.join(output_dir, "loss_log.csv")
    model_path = os.path.join(output_dir, "model.pt")

    norm = fit_normalisation(noisy, prior)
    nz = norm.apply(noisy)
    pz = norm.apply_prior(prior)
    hz = _prepare_halves(halves, noisy, norm) if mode == "halves" else None
    axis, tr, va = split_train_val(nz.shape, cfg.val_fraction)
    extra_tr = [take(h, axis, tr) for h in hz] if hz else []
    sampler = PatchSampler(take(nz, axis, tr), take(pz, axis, tr), cfg.patch_size, extra=extra_tr)
    val = None
    if va.stop > va.start:
        extra_va = [take(h, axis, va) for h in hz] if hz else []
        vp = validation_patches(take(nz, axis, va), take(pz, axis, va), cfg.patch_size, max_patches=8,
                                multiple=cfg.model_config().multiple(), extra=extra_va,
                                min_size=2 * cfg.blindspot_size + 2)
        val = tuple(torch.from_numpy(v).to(device) for v in vp)
    iters = cfg.iterations_per_epoch
    weights = cfg.weights(mode)

    torch.manual_seed(cfg.seed)
    model = SCNet(cfg.model_config()).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    fixed = cfg.epochs * iters if cfg.epochs else None
    stopper = Stopper(cfg, fixed)
    best_state = None
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
        stopper.state.update(ck.get("stopper") or {})
        best_state = ck.get("best_state_dict")
        log.info("resuming from %s at epoch %d (iteration %d)", ckpt_path, start_epoch, iteration)
        init_model = ck.get("init_model")  # what this training really started from
        _truncate_log(log_path, iteration)
    else:
        if init is not None:
            model.load_state_dict(init)
            log.info("starting from the weights of %s", init_model)
        if resume:
            log.warning("--resume: no checkpoint in %s, starting from scratch", output_dir)
        # a new run: no stale model/checkpoint/summary beside its log
        outputs.remove_quietly([model_path, ckpt_path, os.path.join(output_dir, "training_summary.json")])
        with open(log_path, "w", newline="") as fh:
            csv.writer(fh).writerow(LOG_COLUMNS)
    cfg.to_json(os.path.join(output_dir, "train_config.json"))

    budget = fixed if fixed is not None else cfg.max_iterations
    t0 = time.time() - elapsed
    t_run = time.time()
    it_run = 0
    if progress:
        rule = (f"{cfg.epochs} epochs x {iters} iterations" if fixed is not None else
                f"until the validation loss converges ({cfg.min_iterations}..{cfg.max_iterations} iterations, "
                f"validation every {iters})") + (f", at most {cfg.max_minutes:g} min" if cfg.max_minutes else "")
        if init is not None:
            _progress(f"starting from the weights of {init_model} (fine-tuning)")
        _progress(f"SC-Net training ({mode} mode): {rule}, batch {cfg.batch_size} of {cfg.patch_size}^3, "
                  f"{sum(p.numel() for p in model.parameters())} parameters, device {device}")
    reason = None
    epoch = start_epoch
    with open(log_path, "a", newline="") as fh:
        writer = csv.writer(fh)
        while reason is None:
            model.train()
            for i in range(iters):
                batch = [torch.from_numpy(a).to(device) for a in sampler.sample(rng, cfg.batch_size)]
                terms = _step_loss(model, batch, mode, cfg, weights, gen)
                loss = terms["loss"]
                modelfile.check_loss(loss, iteration + 1, epoch + 1, cfg.lr, output_dir)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                iteration += 1
                it_run += 1
                last = i == iters - 1
                vloss = None
                if last and val is not None:
                    vloss = validation_loss(model, val, mode, cfg, weights)
                row = [iteration, epoch + 1] + [f"{float(terms[k].detach()):.6g}" for k in
                                                ("loss", "L_rec", "L_smooth", "L_exp", "L_reg")]
                row += ["" if vloss is None else f"{vloss:.6g}", f"{time.time() - t0:.2f}"]
                writer.writerow(row)
                minutes = (time.time() - t0) / 60
                if last:
                    if vloss is None or stopper.update(vloss, iteration):
                        best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                    if on_validation is not None and vloss is not None:
                        on_validation(model, iteration, vloss)
                reason = stopper.reason(iteration, minutes, validated=last)
                if progress and (last or reason or it_run <= 1):
                    rate = (time.time() - t_run) / it_run
                    eta = rate * max(0, budget - iteration)
                    if cfg.max_minutes:
                        eta = min(eta, max(0.0, cfg.max_minutes * 60 - (time.time() - t0)))
                    ep = f"{epoch + 1}/{cfg.epochs}" if fixed is not None else f"{epoch + 1}"
                    _progress(f"epoch {ep} iteration {iteration} loss {float(loss.detach()):.4g} "
                              f"(rec {float(terms['L_rec'].detach()):.4g})"
                              + ("" if vloss is None else f" val {vloss:.4g}")
                              + f" {rate:.2f} s/it ETA {'' if fixed is not None else '<= '}{_fmt_time(eta)}")
                if reason:
                    break
            epoch += 1
            fh.flush()
            _save_atomic({"state_dict": model.state_dict(), "optimizer": opt.state_dict(),
                          "numpy_rng": rng.bit_generator.state, "torch_rng": gen.get_state(),
                          "epoch": epoch, "iteration": iteration, "seconds": time.time() - t0,
                          "iterations_per_epoch": iters, "model_config": cfg.model_config().to_dict(),
                          "train_config": cfg.to_dict(), "normalisation": norm.to_dict(),
                          "stopper": dict(stopper.state), "best_state_dict": best_state,
                          "init_model": os.path.abspath(init_model) if init_model else None,
                          "data_shape": list(noisy.shape)}, ckpt_path)
    if best_state is not None:
        model.load_state_dict(best_state)
    save_model(model_path, model, cfg, norm, voxel_size, mode)
    summary = {"mode": mode, "iterations": iteration, "epochs": epoch, "seconds": round(time.time() - t0, 1),
               "stop_reason": reason, "stop_explanation": stopper.explain(reason, iteration),
               "best_iteration": stopper.state["best_iteration"], "best_val_loss": stopper.state["best"],
               "init_model": os.path.abspath(init_model) if init_model else None,
               "prior": prior_source or "given"}
    outputs.write_text(os.path.join(output_dir, "training_summary.json"), json.dumps(summary, indent=2) + "\n")
    if progress:
        _progress(f"stopped after {iteration} iterations: {summary['stop_explanation']}; kept the weights of "
                  f"iteration {summary['best_iteration']}")
        _progress(f"SC-Net training done in {_fmt_time(time.time() - t0)}: {model_path}")
    return model_path


def _step_loss(model, batch, mode, cfg, weights, gen):
    """The loss of one training batch: eq. 8 (single) or its halves form."""
    if mode == "halves":
        _, p, e, o = batch
        flip = torch.rand(e.shape[0], generator=gen).to(e.device) < 0.5
        sel = flip.view(-1, 1, 1, 1, 1)
        inp, tgt = torch.where(sel, o, e), torch.where(sel, e, o)
        return halves_loss(model(inp), tgt, p, weights, cfg.expectancy_kernel, cfg.sobel_3d)
    x, p = batch
    x_bs, mask = blindspot_replace(x, cfg.centre_ratio(), cfg.blindspot_size, generator=gen)
    return combined_loss(model(x_bs), x, mask, p, weights, cfg.expectancy_kernel, cfg.sobel_3d)


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


VAL_MASKS = 2   # fixed blind-spot masks averaged in the single-mode validation loss


@torch.no_grad()
def validation_loss(model: SCNet, val, mode: str, cfg: TrainConfig, weights: LossWeights) -> float:
    """Eq. 8 on the fixed held-out patches, in eval mode.

    single: with ``VAL_MASKS`` fixed blind spots (the same at every validation); halves: even->odd and
    odd->even.
    """
    was_training = model.training
    model.eval()
    if mode == "halves":
        _, p, e, o = val
        loss = 0.5 * (float(halves_loss(model(e), o, p, weights, cfg.expectancy_kernel, cfg.sobel_3d)["loss"])
                      + float(halves_loss(model(o), e, p, weights, cfg.expectancy_kernel, cfg.sobel_3d)["loss"]))
    else:
        x, p = val[:2]
        g = torch.Generator().manual_seed(987654)
        loss = 0.0
        for _ in range(VAL_MASKS):
            x_bs, mask = blindspot_replace(x, cfg.centre_ratio(), cfg.blindspot_size, generator=g)
            out = model(x_bs)
            loss += float(combined_loss(out, x, mask, p, weights, cfg.expectancy_kernel, cfg.sobel_3d)["loss"])
        loss /= VAL_MASKS
    model.train(was_training)
    return loss


def save_model(path: str, model: SCNet, cfg: TrainConfig, norm, voxel_size: Optional[float] = None,
               mode: str = "single") -> None:
    """model.pt: weights + configs + normalisation stats (what ``scnet predict`` needs); see :mod:`scnet.modelfile`."""
    modelfile.save_model(path, model, cfg, norm, voxel_size, mode)
