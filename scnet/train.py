"""SC-Net training on ONE tomogram (paper §4, §5.1) or on a data set, stopped when it has converged.

``train_model(noisy, prior, cfg, output_dir, halves=None)`` (one tomogram) and ``train_dataset(entries, cfg,
output_dir)`` (several tomograms, one model: :mod:`scnet.dataset`) write to ``output_dir``:

* ``model.pt``          weights (the best held-out validation loss) + configs + normalisation,
* ``checkpoint.pt``     after every validation (model, optimiser, RNG and stopping state) for ``resume``,
* ``loss_log.csv``      iteration,epoch,loss,L_rec,L_smooth,L_exp,L_reg,val_loss,seconds,
* ``train_config.json`` the options, and ``training_summary.json`` (iterations, why it stopped).

Modes (``TrainConfig.mode``; ``auto`` picks one of the three others):

* ``single`` -- the paper: one iteration takes random patches (flips/rot90 shared by noisy
  and prior), a volumetric blind spot on the noisy patch (eq. 3), the network on the
  replaced patch and the combined loss (eq. 8) against the ORIGINAL noisy patch (eq. 2)
  and the prior (eq. 5, 7).
* ``halves`` -- beyond the paper, when the even/odd half tomograms exist (reconstructions
  of the even and odd tilts): noise in a back-projection is correlated along the
  projection rays, which no voxel blind spot hides, but it is independent between the
  halves.  The network maps one half to the other (even->odd and odd->even, Noise2Noise,
  as cryoCARE does); eq. 2 becomes the squared error to the other half on every voxel,
  and the sparsity constraints (eq. 5, 7) and L_reg against the prior are kept.  With ``wedge`` the
  halves mode also fills the missing wedge (:mod:`scnet.dewedge`).
* ``slab`` -- ONE tomogram: each row along the tilt axis predicted from the other rows by a row-blind
  network (:mod:`scnet.rows`; rows that share noise are whitened along Y first, measured by
  :func:`scnet.rows.row_check`).
* ``split`` -- ONE tomogram's even and odd rows along the tilt axis as the two halves (:mod:`scnet.split`),
  trained with the halves steps (rows whose noise is unshared).
* ``auto`` (default) = ``halves`` when halves are given, else ``split`` or ``slab`` by the tomogram's row
  check (:func:`scnet.rows.resolve_mode`, :func:`scnet.rows.auto_mode`).

The loss of a batch in each mode lives in :mod:`scnet.steps`, the automatic stop in
:mod:`scnet.stopping`, the training volumes (one tomogram or a data set) in :mod:`scnet.dataset`; here
(one stage each): set-up, start or resume, the loop, the checkpoint and the summary.  A data set: patches
from every tomogram, a validation region in each, the stop on the mean of their validation losses.

Stopping (``epochs = 0``, the default): an "epoch" is ``iterations_per_epoch``
iterations followed by the held-out validation loss (eq. 8 on fixed patches of the
validation slab; in the single mode with a fixed blind spot, in the halves mode half to
half); the loss is smoothed (exponential average) and training stops when it has not
improved by ``min_delta`` (relative) for ``patience`` validations -- never before
``min_iterations``, always at ``max_iterations`` or after ``max_minutes``.  ``epochs > 0``
gives the fixed count ``epochs x iterations_per_epoch`` instead.  Adam(lr 4e-4, betas
0.5/0.999) in every mode.

Over 300 lines: the stages of one training (set-up, start or resume, loop, checkpoint, summary) share
the ``_Run`` state and are read in that order.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from .config import TrainConfig
from .steps import step_loss, validation_loss
from .stopping import Stopper
from .data import DatasetSampler, PatchSampler, check_pair, check_same_shape, split_train_val, take, validation_patches
from .dataset import SCRATCH, TrainingVolume, check_dataset, prepare_dataset, record_differences, training_volume
from .device import resolve_device, set_threads
from .errors import SCNetInputError
from .model import SCNet
from . import modelfile, outputs, rows, rules, split

log = logging.getLogger(__name__)

LOG_COLUMNS = ["iteration", "epoch", "loss", "L_rec", "L_smooth", "L_exp", "L_reg", "val_loss", "seconds"]
def _save_atomic(obj, path: str) -> None:
    modelfile.safe_save(obj, path)


def _fmt_time(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600:d}:{(s // 60) % 60:02d}:{s % 60:02d}"


def train_model(noisy: np.ndarray, prior: np.ndarray, cfg: TrainConfig, output_dir: str,
                resume: bool = False, progress: bool = True, halves: Optional[Sequence[np.ndarray]] = None,
                on_validation: Optional[Callable[[SCNet, int, float], None]] = None,
                voxel_size: Optional[float] = None, init_model: Optional[str] = None,
                prior_source: Optional[str] = None, checked: bool = False, resolved=None) -> str:
    """Train SC-Net on one (noisy, prior) pair (and its even/odd ``halves``); return ``model.pt``'s path.

    ``on_validation(model, iteration, val_loss)`` is called after each validation (benchmarks).
    ``output_dir`` is locked for the whole run (a second training into it is refused).
    ``init_model``: a trained ``model.pt`` whose weights a NEW run starts from (fine-tuning a model
    trained on another tomogram); ignored when ``resume`` continues a checkpoint (which already holds
    them). Its network must equal ``cfg``'s.
    ``prior_source``: where the prior came from (given file, made from the tomogram), for the summary.
    Arrays are checked where they enter: here, unless ``checked`` (the caller read them with
    :func:`scnet.io.read_volume`, which checked every voxel); ``resolved``: the caller's
    :func:`scnet.rows.resolve_mode` result for this tomogram (its row check is not repeated).
    """
    cfg.validate()
    if checked:
        check_same_shape(noisy, prior)
    else:
        check_pair(noisy, prior)
    mode, check, gap, whiten = resolved or rows.resolve_mode(cfg, noisy, halves is not None)
    for why in rules.patch_volume_errors(cfg.patch_size, noisy.shape):
        raise SCNetInputError(why)
    net = cfg.model_config(gap)
    device, init, init_model = _before_work(cfg, mode, output_dir, resume, progress, init_model, net=net)
    if cfg.mode == "auto" and check is not None and cfg.row_gap < 0:
        (_progress if progress else log.info)(rows.auto_reason(check))
    if mode == "slab":
        _slab_note(cfg, check, gap, whiten, progress)
    # split: the even and odd rows along the tilt axis, a Noise2Noise pair from ONE tomogram; slab: rows that
    # share noise whitened along Y (scnet.rows), so the row-blind network hides the row alone
    volume = training_volume(noisy, prior, halves, mode, cfg, check, say=_progress if progress else None,
                             prior_source=prior_source or "given", checked=checked, whiten=whiten)
    with outputs.lock_folder(output_dir), outputs.keep_previous(output_dir, rules.TRAIN_OUTPUTS):
        return _train_locked([volume], cfg, output_dir, resume, progress, voxel_size, device, mode, on_validation,
                             init, init_model, net, {"rho": whiten} if whiten else None, [check])


def train_dataset(entries, cfg: TrainConfig, output_dir: str, resume: bool = False, progress: bool = True,
                  prior_from: Optional[str] = None, plan=None,
                  on_validation: Optional[Callable[[SCNet, int, float], None]] = None,
                  init_model: Optional[str] = None) -> str:
    """Train ONE model on several tomograms (:class:`scnet.manifest.TomogramEntry` list); return ``model.pt``.

    Every tomogram is checked first, by name (:func:`scnet.dataset.check_dataset`, or ``plan`` when the
    caller did); then each is prepared in turn (normalised on its own, a prior made from it by
    ``prior_from`` where none is given) into memory maps in ``output_dir/.scnet-data`` (removed at the
    end), and the training draws its patches from all.  ``model.pt`` records the tomograms (names, shapes,
    statistics); prediction normalises each tomogram by its own statistics.  Files as :func:`train_model`.
    """
    from .choices import DEFAULT_SELF_PRIOR
    from .selfprior import check_method
    cfg.validate()
    prior_from = check_method(prior_from or DEFAULT_SELF_PRIOR)
    say = _progress if progress else None
    plan = plan or check_dataset(entries, cfg, say)
    net = cfg.model_config(plan.gap)
    device, init, init_model = _before_work(cfg, plan.mode, output_dir, resume, progress, init_model,
                                            inputs=[f for e in entries for f in e.files()], net=net)
    if progress:
        _progress(f"data set: {len(entries)} tomograms ({', '.join(e.name for e in entries)}), {plan.mode} mode, "
                  f"{plan.voxel_size:.4g} A/px")
    if plan.mode == "slab":
        _slab_note(cfg, plan.row_check, plan.gap, plan.whiten, progress, "the data set's tomograms (mean)")
    with outputs.lock_folder(output_dir), outputs.keep_previous(output_dir, rules.TRAIN_OUTPUTS):
        scratch = os.path.join(output_dir, SCRATCH)
        try:
            volumes = prepare_dataset(entries, plan, cfg, scratch, prior_from, say)
            return _train_locked(volumes, cfg, output_dir, resume, progress, plan.voxel_size, device, plan.mode,
                                 on_validation, init, init_model, net, {"rho": plan.whiten} if plan.whiten else None,
                                 plan.checks)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _before_work(cfg, mode, output_dir, resume, progress, init_model, inputs=(), net=None):
    """The checks of a training that need its mode, before any work: loss weights, device, the output folder
    (no input overwritten), the initial weights (of the network ``net``, default ``cfg``'s).  Returns (device,
    initial weights or None, init_model)."""
    w = cfg.weights(mode)
    if not any((w.rec, w.smooth, w.exp, w.reg)):
        raise SCNetInputError(f"All loss weights are 0 in the {mode} mode (lambda_rec/smooth/exp/reg); nothing "
                              f"would be learned. Give lambda_rec > 0 (default 0.6) or leave the weights unset.")
    device = resolve_device(cfg.device)
    set_threads()
    outputs.guard(dirs=[output_dir], outputs=[os.path.join(output_dir, n) for n in rules.TRAIN_OUTPUTS],
                  inputs=[init_model, *inputs])
    resuming = resume and os.path.exists(os.path.join(output_dir, "checkpoint.pt"))
    if init_model and resuming:
        note = f"--init-model {init_model} ignored: resuming from the checkpoint in {output_dir}"
        (_progress if progress else log.warning)(note)
        init_model = None
    net = net or cfg.model_config()
    init = modelfile.load_initial_weights(init_model, net.to_dict()) if init_model else None
    return device, init, init_model


@dataclass
class _Run:
    """What one training holds between its stages (set up, started or resumed, looped, finished)."""

    cfg: TrainConfig
    mode: str
    device: object
    output_dir: str
    progress: bool
    norm: object = None
    sampler: object = None
    val: object = None
    model: object = None
    opt: object = None
    rng: object = None
    gen: object = None
    stopper: object = None
    best_state: Optional[dict] = None
    epoch: int = 0
    iteration: int = 0
    elapsed: float = 0.0
    init_model: Optional[str] = None
    saved_mode: str = "single"   # the mode model.pt records (split trains with the halves steps)
    row_noise: Optional[dict] = None  # slab mode: the rows' noise correlations its input was whitened for
    row_checks: Optional[list] = None  # each volume's row check (scnet.rows.row_check) or None: why auto chose
    volumes: Sequence[TrainingVolume] = ()

    def path(self, name: str) -> str:
        return os.path.join(self.output_dir, name)

    def records(self) -> Optional[list]:
        """A data set's tomograms (names, shapes, statistics) for model.pt and checkpoint.pt; None for one."""
        return [v.record() for v in self.volumes] if self.volumes[0].name is not None else None


def _slab_note(cfg, check, gap, whiten, progress, where="this tomogram"):
    """Say which rows the slab mode hides and whether it whitens them (:mod:`scnet.rows`)."""
    rho = ", ".join(f"{r:.3f}" for r in check["rho"]) or "not measured (too small)"
    measured = f"the rows' noise correlation at lags 1..{len(check['rho']) or rows.LAGS} on {where}: {rho}"
    if whiten:
        note = (f"slab mode: rows along Y (the tilt axis) share noise ({measured}): whitened along Y, then each row "
                f"predicted from all the others")
    else:
        how = "given (row_gap)" if cfg.row_gap >= 0 else "measured"
        note = f"slab mode: each row along Y (the tilt axis) predicted from the rows more than {gap} away ({how}; {measured})"
    if progress:
        _progress(note)
    else:
        log.info(note)
    if cfg.row_gap >= 0 and gap < check["gap"]:
        warn = (f"row_gap {gap} hides fewer rows than share a row's noise on {where} ({check['gap']}): the "
                "network can copy that noise; leave row_gap at -1 (measured: the rows are whitened)")
        (_progress if progress else log.warning)("WARNING: " + warn)


def _train_locked(volumes, cfg, output_dir, resume, progress, voxel_size, device, mode, on_validation, init=None,
                  init_model=None, net=None, row_noise=None, row_checks=None) -> str:
    run = _setup(volumes, cfg, mode, device, output_dir, progress, net)  # split: halves steps
    run.row_noise = row_noise
    run.row_checks = row_checks
    if resume and os.path.exists(run.path("checkpoint.pt")):
        _resume(run)
    else:
        _start(run, init, init_model, resume)
    cfg.to_json(run.path("train_config.json"))
    reason = _loop(run, on_validation, init is not None)
    return _finish(run, reason, voxel_size)


VAL_PATCHES = 8  # validation patches in all (a data set: shared among its tomograms, at least 2 each)


def _setup(volumes, cfg, mode, device, output_dir, progress, net=None) -> _Run:
    """Per tomogram: the training sampler and the fixed validation patches of its held-out region; the
    network and optimiser."""
    run = _Run(cfg, "halves" if mode == "split" else mode, device, output_dir, progress, saved_mode=mode)
    run.volumes, run.norm = list(volumes), volumes[0].norm
    per = VAL_PATCHES if len(volumes) == 1 else max(2, -(-VAL_PATCHES // len(volumes)))
    samplers, run.val = [], []
    net = net or cfg.model_config()
    for v in volumes:
        axis, tr, va = split_train_val(v.shape, cfg.val_fraction, avoid=split.AXIS if mode == "slab" else None)
        nz, pz, *hz = v.arrays
        where = "" if v.name is None else f"tomogram {v.name}: "
        samplers.append(PatchSampler(take(nz, axis, tr), take(pz, axis, tr), cfg.patch_size,
                                     name=where + "training region", extra=[take(h, axis, tr) for h in hz],
                                     keep_y=mode == "slab"))  # the slab mode's blind direction stays the tilt axis
        if va.stop > va.start:
            vp = validation_patches(take(nz, axis, va), take(pz, axis, va), cfg.patch_size, max_patches=per,
                                    multiple=net.multiple(), extra=[take(h, axis, va) for h in hz],
                                    min_size=2 * cfg.blindspot_size + 2, name=where + "validation region")
            run.val.append(tuple(torch.from_numpy(x).to(device) for x in vp))
    run.sampler = DatasetSampler(samplers)
    torch.manual_seed(cfg.seed)
    run.model = SCNet(net).to(device)
    run.opt = torch.optim.Adam(run.model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    run.rng = np.random.default_rng(cfg.seed)
    run.gen = torch.Generator().manual_seed(cfg.seed + 1)
    run.stopper = Stopper(cfg, cfg.epochs * cfg.iterations_per_epoch if cfg.epochs else None)
    return run


def _resume(run: _Run) -> None:
    """Continue from ``checkpoint.pt``: the same network, data and options, or a clear refusal."""
    cfg, ckpt_path = run.cfg, run.path("checkpoint.pt")
    ck = modelfile.load_checkpoint(ckpt_path, run.device)
    if ck["model_config"] != run.model.cfg.to_dict():
        raise SCNetInputError(f"--resume: the network options differ from the checkpoint in {run.output_dir} "
                              f"({ck['model_config']}); use the same options or a new output folder.")
    diffs = modelfile.resume_differences(ck, cfg.to_dict(), run.volumes[0].shape, run.norm.to_dict())
    diffs += record_differences(ck.get("tomograms"), run.records())
    if diffs:
        raise SCNetInputError(f"--resume: {ckpt_path} was made with other data or options ("
                              + "; ".join(diffs) + "). Resume with the same ones, or train into a new "
                              "--output-dir (or without --resume to start again).")
    run.model.load_state_dict(ck["state_dict"])  # every state was checked by load_checkpoint: nothing fails here
    run.opt.load_state_dict(ck["optimizer"])
    run.rng.bit_generator.state = ck["numpy_rng"]
    run.gen.set_state(ck["torch_rng"])
    run.epoch, run.iteration, run.elapsed = ck["epoch"], ck["iteration"], ck.get("seconds", 0.0)
    run.stopper.state.update(ck.get("stopper") or {})
    run.best_state = ck.get("best_state_dict")
    outputs.remove_quietly([run.path("model.pt")])  # rewritten last (kept in .scnet-previous until then)
    log.info("resuming from %s at epoch %d (iteration %d)", ckpt_path, run.epoch, run.iteration)
    run.init_model = ck.get("init_model")  # what this training really started from
    _truncate_log(run.path("loss_log.csv"), run.iteration)


def _start(run: _Run, init, init_model, resume) -> None:
    """A new run: the initial weights (fine-tuning) or random ones; no stale model/checkpoint/summary."""
    if init is not None:
        run.model.load_state_dict(init)
        log.info("starting from the weights of %s", init_model)
    run.init_model = init_model
    if resume:
        log.warning("--resume: no checkpoint in %s, starting from scratch", run.output_dir)
    outputs.remove_quietly([run.path("model.pt"), run.path("checkpoint.pt"), run.path("training_summary.json")])
    with open(run.path("loss_log.csv"), "w", newline="") as fh:
        csv.writer(fh).writerow(LOG_COLUMNS)


def _loop(run: _Run, on_validation, fine_tuning: bool) -> str:
    """Train until the stopper says why; a log row per iteration, a checkpoint per epoch."""
    cfg, model, stopper = run.cfg, run.model, run.stopper
    iters, weights = cfg.iterations_per_epoch, cfg.weights(run.mode)
    fixed = stopper.total_fixed
    budget = fixed if fixed is not None else cfg.max_iterations
    t0 = time.time() - run.elapsed
    t_run, it_run = time.time(), 0
    if run.progress:
        rule = (f"{cfg.epochs} epochs x {iters} iterations" if fixed is not None else
                f"until the validation loss converges ({cfg.min_iterations}..{cfg.max_iterations} iterations, "
                f"validation every {iters})") + (f", at most {cfg.max_minutes:g} min" if cfg.max_minutes else "")
        if fine_tuning:
            _progress(f"starting from the weights of {run.init_model} (fine-tuning)")
        wedge = f", filling the missing wedge {cfg.tilt_range}" if cfg.wedge else ""
        data = "" if run.records() is None else \
            f" on {len(run.volumes)} tomograms (stop on the mean of their validation losses)"
        _progress(f"SC-Net training ({run.saved_mode} mode{wedge}){data}: {rule}, batch {cfg.batch_size} of "
                  f"{cfg.patch_size}^3, {sum(p.numel() for p in model.parameters())} parameters, device {run.device}")
    reason = None
    with open(run.path("loss_log.csv"), "a", newline="") as fh:
        writer = csv.writer(fh)
        while reason is None:
            model.train()
            for i in range(iters):
                batch = [torch.from_numpy(a).to(run.device) for a in run.sampler.sample(run.rng, cfg.batch_size)]
                terms = step_loss(model, batch, run.mode, cfg, weights, run.gen)
                loss = terms["loss"]
                modelfile.check_loss(loss, run.iteration + 1, run.epoch + 1, cfg.lr, run.output_dir)
                run.opt.zero_grad(set_to_none=True)
                loss.backward()
                run.opt.step()
                run.iteration += 1
                it_run += 1
                last = i == iters - 1
                vloss = None
                if last and run.val:  # a data set: the mean over its tomograms
                    vloss = float(np.mean([validation_loss(model, v, run.mode, cfg, weights) for v in run.val]))
                row = [run.iteration, run.epoch + 1] + [f"{float(terms[k].detach()):.6g}" for k in
                                                        ("loss", "L_rec", "L_smooth", "L_exp", "L_reg")]
                row += ["" if vloss is None else f"{vloss:.6g}", f"{time.time() - t0:.2f}"]
                writer.writerow(row)
                minutes = (time.time() - t0) / 60
                if last:
                    if vloss is None or stopper.update(vloss, run.iteration):
                        run.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                    if on_validation is not None and vloss is not None:
                        on_validation(model, run.iteration, vloss)
                reason = stopper.reason(run.iteration, minutes, validated=last)
                if run.progress and (last or reason or it_run <= 1):
                    rate = (time.time() - t_run) / it_run
                    eta = rate * max(0, budget - run.iteration)
                    if cfg.max_minutes:
                        eta = min(eta, max(0.0, cfg.max_minutes * 60 - (time.time() - t0)))
                    ep = f"{run.epoch + 1}/{cfg.epochs}" if fixed is not None else f"{run.epoch + 1}"
                    _progress(f"epoch {ep} iteration {run.iteration} loss {float(loss.detach()):.4g} "
                              f"(rec {float(terms['L_rec'].detach()):.4g})"
                              + ("" if vloss is None else f" val {vloss:.4g}")
                              + f" {rate:.2f} s/it ETA {'' if fixed is not None else '<= '}{_fmt_time(eta)}")
                if reason:
                    break
            run.epoch += 1
            fh.flush()
            run.elapsed = time.time() - t0
            _checkpoint(run)
    return reason


def _checkpoint(run: _Run) -> None:
    cfg = run.cfg
    _save_atomic({"state_dict": run.model.state_dict(), "optimizer": run.opt.state_dict(),
                  "numpy_rng": run.rng.bit_generator.state, "torch_rng": run.gen.get_state(),
                  "epoch": run.epoch, "iteration": run.iteration, "seconds": run.elapsed,
                  "iterations_per_epoch": cfg.iterations_per_epoch, "model_config": run.model.cfg.to_dict(),
                  "train_config": cfg.to_dict(), "normalisation": run.norm.to_dict(),
                  "stopper": dict(run.stopper.state), "best_state_dict": run.best_state,
                  "init_model": os.path.abspath(run.init_model) if run.init_model else None,
                  "data_shape": list(run.volumes[0].shape),
                  **({"tomograms": run.records()} if run.records() else {})}, run.path("checkpoint.pt"))


def _row_record(check) -> Optional[dict]:
    """A row check for the summary: the rows' noise correlation at lags 1..3 and its standard errors."""
    if not check or not check.get("rho"):
        return None
    return {"rho": [round(r, 4) for r in check["rho"]], "se": [round(e, 4) for e in check["se"]]}


def _finish(run: _Run, reason: str, voxel_size) -> str:
    """Keep the best weights, write ``model.pt`` (last, atomically) and ``training_summary.json``."""
    if run.best_state is not None:
        run.model.load_state_dict(run.best_state)
    model_path = run.path("model.pt")
    save_model(model_path, run.model, run.cfg, run.norm, voxel_size, run.saved_mode, tomograms=run.records(),
               row_noise=run.row_noise)
    st = run.stopper
    sources = sorted({v.prior_source for v in run.volumes})
    summary = {"mode": run.saved_mode, "row_gap": run.model.cfg.row_gap, "row_noise": run.row_noise,
               "iterations": run.iteration, "epochs": run.epoch, "seconds": round(run.elapsed, 1),
               "stop_reason": reason, "stop_explanation": st.explain(reason, run.iteration),
               "best_iteration": st.state["best_iteration"], "best_val_loss": st.state["best"],
               "init_model": os.path.abspath(run.init_model) if run.init_model else None,
               "prior": sources[0] if len(sources) == 1 else "per tomogram (see tomograms)",
               "loss_weights": loss_weights(run.cfg, run.mode)}
    checks = [_row_record(c) for c in (run.row_checks or [None] * len(run.volumes))]
    if not run.records():  # one tomogram: its rows' noise correlation, by which auto picked split or slab
        summary["row_check"] = checks[0]
    if run.records():  # a data set: which tomograms, and each one's validation loss with the kept weights
        weights = run.cfg.weights(run.mode)
        losses = [validation_loss(run.model, v, run.mode, run.cfg, weights) for v in run.val]
        summary["tomograms"] = [{"name": v.name, "shape": list(v.shape), "prior": v.prior_source,
                                 "val_loss": losses[k] if len(losses) == len(run.volumes) else None,
                                 "row_check": checks[k] if k < len(checks) else None}
                                for k, v in enumerate(run.volumes)]
    outputs.write_text(run.path("training_summary.json"), json.dumps(summary, indent=2) + "\n")
    if run.progress:
        _progress(f"stopped after {run.iteration} iterations: {summary['stop_explanation']}; kept the weights of "
                  f"iteration {summary['best_iteration']}")
        _progress(f"SC-Net training done in {_fmt_time(run.elapsed)}: {model_path}")
    return model_path


def loss_weights(cfg: TrainConfig, mode: str) -> dict:
    """The weight (eq. 8) of each loss term of ``loss_log.csv`` in this training: a term of weight 0
    is logged but not trained on (the training-curves viewer marks it)."""
    w = cfg.weights(mode)
    return {"L_rec": w.rec, "L_smooth": w.smooth, "L_exp": w.exp, "L_reg": w.reg}


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


def save_model(path: str, model: SCNet, cfg: TrainConfig, norm, voxel_size: Optional[float] = None,
               mode: str = "single", tomograms: Optional[list] = None, row_noise: Optional[dict] = None) -> None:
    """model.pt: weights + configs + normalisation stats (what ``scnet predict`` needs); see :mod:`scnet.modelfile`."""
    modelfile.save_model(path, model, cfg, norm, voxel_size, mode, tomograms=tomograms, row_noise=row_noise)
