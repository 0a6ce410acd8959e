#!/usr/bin/env python
"""Quality benchmark: the paper's Tables 1-3 layout on our simulated phantom.

For each phantom seed (our stand-in for the paper's datasets Belt / Synapse /
SARS) and each AWGN level sigma (10, 15, 20 on 0..255 projections, §5.2):

* ``scnet.simulate.prepare_case`` builds the ground truth (reconstruction of
  the clean projections), the noisy reconstruction, the smoothed prior
  (reconstruction of Topaz-2D filtered tilts, §4.3) and the even/odd half
  reconstructions;
* every method denoises the noisy reconstruction; PSNR / SSIM against the
  ground truth (``scnet.metrics``; data_range = ground truth max - min) fill
  Table 1 (PSNR) and Table 2 (SSIM);
* ``--rotations 0,4.3``: each case also as the interpolated-rows variant (the tilt images' noise added
  in a frame rotated by a few degrees, rotated back before the reconstruction, as an alignment does);
* every method's row texture (``scnet.rows.row_texture``: power at the row frequency over the ground
  truth's) fills its own table;
* for the FSC cases (default: sigma 15 for each seed) every method also
  denoises the even and the odd reconstruction (SC-Net and N2V: the model
  trained on the full reconstruction predicts both halves) and
  ``FSC_e/o^-1(0.5)`` (eq. 9-10, Angstrom; lower is better) fills Table 3.

Methods (paper order): noisy, topaz3d, bm4d, lpf, n2v, scnet_noexp, scnet,
plus two informative rows: gaussian (3D Gaussian) and prior (the smoothed
volume that guides SC-Net).  BM4D gets sigma from the even/odd difference
(no ground truth used).  A method that fails or is not installed is reported
as n/a with its reason; the others go on.

Writes ``OUTPUT/results.json``, ``OUTPUT/tables.md`` and PNG figures (central
XY and XZ slices per method, FSC_e/o curves), and prints the tables.

    flock /tmp/scnet-heavy.lock .venv/engine/bin/python benchmarks/quality.py \
        --shape 48,96,96 --seeds 0,1 --sigmas 10,15,20
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import ints as _ints, parse, user_config  # noqa: E402

from scnet.metrics import format_resolution, fsc, psnr, ssim3d  # noqa: E402
from scnet.rows import row_texture  # noqa: E402
from scnet.choices import DEFAULT_SELF_PRIOR, DEFAULT_TTA, RADIAL, SELF_PRIORS, TTA_CHOICES  # noqa: E402

LABELS = {
    "noisy": "Noisy",
    "topaz3d": "Topaz-3D",
    "bm4d": "BM4D",
    "lpf": "LPF",
    "n2v": "N2V",
    "scnet_noexp": "SC-Net single (no L_exp)",
    "scnet": "SC-Net single (paper)",
    "scnet_halves": "SC-Net halves (default)",
    "scnet_wedge": "SC-Net halves + wedge",
    "scnet_split": "SC-Net split (one tomogram)",
    "scnet_slab": "SC-Net slab (one tomogram)",
    "scnet_auto": "SC-Net auto, no halves (default)",
    "scnet_tomo": "SC-Net single, prior from the tomogram",
    "gaussian": "Gaussian 3D",
    "oracle": "Gaussian, oracle σ",
    "prior": "Prior (Topaz-2D rec.)",
}
DEFAULT_METHODS = "noisy,prior,topaz3d,bm4d,lpf,n2v,oracle,scnet,scnet_halves"
CONTENDERS = ("topaz3d", "bm4d", "lpf", "n2v", "prior")  # what SC-Net should beat
ORACLE_SIGMAS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0)


def _floats(text):
    return [float(v) for v in str(text).split(",") if v.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", default="bench_output", help="output folder (default bench_output/, git-ignored)")
    p.add_argument("--shape", default="64,128,128", help="phantom / reconstruction shape Z,Y,X (default 64,128,128)")
    p.add_argument("--seeds", default="0,1", help="phantom seeds, one table column group each (default 0,1)")
    p.add_argument("--sigmas", default="10,15,20", help="AWGN sigma on 0..255 projections (default 10,15,20)")
    p.add_argument("--fsc-sigmas", default="15", help="sigmas for which Table 3 (FSC_e/o) is computed ('' = none)")
    p.add_argument("--rotations", default="0", help="tilt-axis rotations in degrees, one case each: 0 = the §5.2 "
                                                  "simulation, e.g. 4.3 = its interpolated-rows variant (default 0)")
    p.add_argument("--row-averages", default="",
                   help="extra output averages along Y (scnet.rows.ROW_AVERAGES) to score from the same split/slab "
                        "model, one extra row each (e.g. cubic)")
    p.add_argument("--interpolation", type=int, default=1,
                   help="spline order of the --rotations case's rotation (1 = bilinear, 3 = cubic; default 1)")
    p.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma list from: {', '.join(LABELS)}")
    p.add_argument("--voxel-size", type=float, default=10.0, help="voxel size in A (default 10)")
    p.add_argument("--prior-filter", default="topaz", help="2D filter of the prior: topaz | gaussian | lowpass")
    p.add_argument("--tomo-prior", default=DEFAULT_SELF_PRIOR, choices=SELF_PRIORS,
                   help=f"scnet_tomo: the 3D filter of the noisy tomogram that makes its prior [{DEFAULT_SELF_PRIOR}]")
    p.add_argument("--scnet-epochs", type=int, default=0,
                   help="SC-Net fixed epochs (default 0 = the user default: stop when converged)")
    p.add_argument("--scnet-iterations", type=int, default=0,
                   help="SC-Net iterations per epoch (default 0 = the user default)")
    p.add_argument("--scnet-patch", type=int, default=0, help="SC-Net patch size (0 = the default clipped to the volume)")
    p.add_argument("--scnet-config", default=None, help="JSON of extra TrainConfig fields for both SC-Net runs")
    p.add_argument("--scnet-tta", type=int, default=DEFAULT_TTA, choices=TTA_CHOICES,
                   help=f"SC-Net prediction: average over this many axis flips (default {DEFAULT_TTA}, the user's)")
    p.add_argument("--n2v-epochs", type=int, default=20, help="N2V epochs (default 20)")
    p.add_argument("--n2v-steps", type=int, default=10, help="N2V batches per epoch (default 10)")
    p.add_argument("--n2v-patch", type=int, default=32, help="N2V patch size (default 32)")
    p.add_argument("--lpf-cutoff", type=float, default=0.3, help="LPF cut-off, fraction of Nyquist (default 0.3)")
    p.add_argument("--gaussian-sigma", type=float, default=1.5, help="Gaussian 3D std in voxels (default 1.5)")
    p.add_argument("--bm4d-stages", default="all", choices=("all", "hard"), help="BM4D stages (default all)")
    p.add_argument("--fsc-mask", default="soft", choices=("none", "soft"),
                   help="FSC mask: soft (default; box with cosine edges, so the periodic wrap of the DFT does "
                        "not correlate the halves once the noise is smoothed away) or none")
    args = parse(p, argv)
    args.seeds = _ints(args.seeds)
    args.sigmas = _floats(args.sigmas)
    args.fsc_sigmas = _floats(args.fsc_sigmas)
    args.rotations = _floats(args.rotations)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in args.methods if m not in LABELS]
    if bad:
        p.error(f"unknown method(s) {bad}; choose from {', '.join(LABELS)}")
    return args


# --------------------------------------------------------------------------- methods
def _scnet_config(args, shape, use_expectancy, seed):
    """The user defaults (or ``--scnet-config``), a fixed budget only when asked, the patch capped by the volume."""
    from scnet.config import TrainConfig
    base = TrainConfig.from_json(args.scnet_config) if args.scnet_config else None
    return user_config(shape, args.scnet_epochs, args.scnet_iterations, args.scnet_patch, base=base,
                       use_expectancy=use_expectancy, seed=seed)


def run_method(name, case, args, halves):
    """Return (full, [even, odd] or None, seconds, note)."""
    from scnet.baselines import estimate_noise_sigma_even_odd, n2v_denoise, run_baseline

    noisy, prior, even, odd = case["noisy_rec"], case["prior_rec"], case["even_rec"], case["odd_rec"]
    vols = [noisy, even, odd] if halves else [noisy]
    note, extras = "", {}  # extras: other output averages of a split/slab model (--row-averages)
    t0 = time.time()
    if name == "noisy":
        outs = vols
    elif name == "prior":
        outs = [prior]  # no even/odd prior reconstructions
        note = "the smoothed volume (reconstruction of Topaz-2D filtered tilts) that guides SC-Net"
    elif name == "lpf":
        outs = [run_baseline("lowpass", v, cutoff=args.lpf_cutoff) for v in vols]
        note = f"cutoff {args.lpf_cutoff} x Nyquist"
    elif name == "gaussian":
        outs = [run_baseline("gaussian", v, sigma=args.gaussian_sigma) for v in vols]
        note = f"sigma {args.gaussian_sigma} voxels"
    elif name == "oracle":
        gt = case["ground_truth"]
        dr = float(gt.max() - gt.min())
        scores = [(psnr(gt, run_baseline("gaussian", noisy, sigma=sg), data_range=dr), sg) for sg in ORACLE_SIGMAS]
        best = max(scores)[1]
        outs = [run_baseline("gaussian", v, sigma=best) for v in vols]
        note = (f"3D Gaussian with the sigma (of {', '.join(f'{x:g}' for x in ORACLE_SIGMAS)} voxels) that gives "
                f"the best PSNR against the ground truth: an upper reference for linear smoothing, not a method")
    elif name == "topaz3d":
        outs = [run_baseline("topaz3d", v) for v in vols]
        note = "pretrained unet-3d-10a"
    elif name == "bm4d":
        s_full = estimate_noise_sigma_even_odd(even, odd)
        sig = [s_full, s_full * math.sqrt(2), s_full * math.sqrt(2)][: len(vols)]
        outs = [run_baseline("bm4d", v, sigma=s, stages=args.bm4d_stages) for v, s in zip(vols, sig)]
        true = float(np.std(noisy.astype(np.float64) - case["ground_truth"]))
        note = f"sigma from even/odd difference {s_full:.4g} (true noise std {true:.4g}), stages {args.bm4d_stages}"
    elif name == "n2v":
        outs = n2v_denoise(noisy, others=vols[1:], epochs=args.n2v_epochs, steps_per_epoch=args.n2v_steps,
                           patch_size=args.n2v_patch, batch_size=4, seed=1)
        note = f"careamics N2V 3D, {args.n2v_epochs} epochs x {args.n2v_steps} steps, batch 4, patch {args.n2v_patch}"
    elif name in ("scnet", "scnet_noexp", "scnet_halves", "scnet_wedge", "scnet_split", "scnet_slab", "scnet_auto",
                  "scnet_tomo"):
        from scnet.config import PredictConfig
        from scnet.predict import predict_array
        from scnet.denoise import denoise
        cfg = _scnet_config(args, noisy.shape, name != "scnet_noexp", seed=0)
        cfg.mode = {"scnet_halves": "halves", "scnet_wedge": "halves", "scnet_split": "split",
                    "scnet_slab": "slab", "scnet_auto": "auto"}.get(name, "single")
        if name == "scnet_wedge":  # the wedge-aware halves training (scnet.dewedge), the simulation's tilt range
            cfg.wedge = True
            cfg.tilt_range = f"{float(np.min(case['angles'])):g},{float(np.max(case['angles'])):g}"
        if name == "scnet_tomo":  # a tomogram without its tilt series: the prior is made from it (scnet.selfprior)
            from scnet.selfprior import make_prior
            prior = make_prior(noisy, args.tomo_prior, cfg.device)
        work = tempfile.mkdtemp(prefix=f"bench-{name}-")
        try:
            pcfg = PredictConfig(device=cfg.device, tta=args.scnet_tta)
            hv = (even, odd) if cfg.mode == "halves" else None
            full = denoise(noisy, prior, cfg, predict_cfg=pcfg, work_dir=work, halves=hv)
            outs = [full]
            model = os.path.join(work, "model.pt")
            outs += [predict_array(model, v, pcfg) for v in vols[1:]]
            extras = _row_average_variants(args, model, noisy, pcfg)
            with open(os.path.join(work, "training_summary.json")) as fh:
                summ = json.load(fh)
            import torch
            ck = torch.load(model, weights_only=True)
            gap, row_noise, trained = ck["model_config"].get("row_gap"), ck.get("row_noise"), ck["mode"]
        finally:
            import shutil
            shutil.rmtree(work, ignore_errors=True)
        budget = (f"{cfg.epochs} epochs x {cfg.iterations_per_epoch} it" if cfg.epochs else
                  f"automatic stop after {summ['iterations']} it ({summ['stop_reason']})")
        w = cfg.weights(trained)
        note = (f"mode {cfg.mode}" + (f" -> {trained}" if trained != cfg.mode else "") + f", {budget}, batch "
                f"{cfg.batch_size} of {cfg.patch_size}^3, loss weights "
                f"{w.rec:g}/{w.smooth:g}/{w.exp:g}/{w.reg:g} (rec/smooth/exp/reg), width {cfg.base_width}, depth "
                f"{cfg.depth}" + (f", blind spot {cfg.blindspot_size}^3 at {cfg.blindspot_ratio:g} "
                                  f"({cfg.blindspot_ratio_of})" if cfg.mode == "single" else "")
                + (f", wedge filled (tilts {cfg.tilt_range})" if cfg.wedge else "")
                + (f", rows hidden on each side {gap}" if gap is not None else "")
                + (f", rows whitened along Y for the noise correlations {', '.join(f'{r:.3f}' for r in row_noise['rho'])}"
                   if row_noise else "")
                + f", tta {args.scnet_tta}"
                + (f", prior made from the noisy tomogram by {args.tomo_prior}" if name == "scnet_tomo" else ""))
    else:
        raise ValueError(name)
    sec = time.time() - t0
    outs = [np.asarray(o, dtype=np.float32) for o in outs]
    return outs[0], (outs[1:3] if halves and len(outs) == 3 else None), sec, note, extras


def _row_average_variants(args, model, noisy, pcfg):
    """The same model's prediction with each ``--row-averages`` output average along Y (candidates measured
    in one run; not the default): {name: volume}; none for a model without one (single, halves)."""
    import torch
    from scnet import rows
    from scnet.predict import predict_array
    if torch.load(model, weights_only=True)["mode"] not in ("split", "slab"):
        return {}
    out, default = {}, rows.ROW_AVERAGE
    for v in [x.strip() for x in args.row_averages.split(",") if x.strip()]:
        rows.ROW_AVERAGE = rows.ROW_AVERAGES[v]
        try:
            out[v] = predict_array(model, noisy, pcfg)
        finally:
            rows.ROW_AVERAGE = default
    return out


# --------------------------------------------------------------------------- tables
def _fmt(v, kind):
    if v is None:
        return "n/a"
    if kind == "psnr":
        return "inf" if math.isinf(v) else f"{v:.2f}"
    if kind in ("ssim", "ssim_iso", "wedge_power"):
        return f"{v:.3f}"
    if kind == "texture":
        return f"{v:.2f}"
    if kind == "psnr_iso":
        return f"{v:.2f}"
    if kind == "elongation":
        return f"{v:.2f}"
    return v


def _ref_range(results, kind, fmt):
    vals = [c["wedge_reference"][kind] for c in results.values() if c.get("wedge_reference")]
    if not vals:
        return "n/a"
    return fmt.format(min(vals)) if min(vals) == max(vals) else f"{fmt.format(min(vals))}–{fmt.format(max(vals))}"



def _highlight(values, higher_better=True):
    """Indices of the best and second best finite values."""
    idx = [i for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    idx.sort(key=lambda i: values[i], reverse=higher_better)
    return (idx[0] if idx else None), (idx[1] if len(idx) > 1 else None)


def case_key(seed, sigma, rotation=0.0):
    """results.json's key of a case: ``seed_sigma``, and ``_r<degrees>`` for the interpolated-rows variant."""
    return f"{seed}_{sigma:g}" + (f"_r{rotation:g}" if rotation else "")


def _col_title(s, g, r):
    return f"seed {s}, σ={g:g}" + (f", rows interp. {r:g}°" if r else "")


def table_quality(results, methods, seeds, sigmas, kind, rotations=(0.0,)):
    cols = [(s, g, r) for r in rotations for s in seeds for g in sigmas]
    head = "| Method | " + " | ".join(_col_title(*c) for c in cols) + " | mean |"
    lines = [head, "|---|" + "---:|" * (len(cols) + 1)]
    grid = {m: [results.get(case_key(*c), {}).get("metrics", {}).get(m, {}).get(kind) for c in cols]
            for m in methods}
    means = {m: (float(np.mean(v)) if all(x is not None and math.isfinite(x) for x in v) and v else None)
             for m, v in grid.items()}
    mark = kind not in ("wedge_power", "elongation", "texture")  # their best is 1, not the largest
    best = [_highlight([grid[m][j] for m in methods]) if mark else (None, None) for j in range(len(cols))]
    best_mean = _highlight([means[m] for m in methods]) if mark else (None, None)
    for i, m in enumerate(methods):
        cells = []
        for j in range(len(cols)):
            txt = _fmt(grid[m][j], kind)
            if best[j][0] == i:
                txt = f"**{txt}**"
            elif best[j][1] == i:
                txt = f"*{txt}*"
            cells.append(txt)
        mt = _fmt(means[m], kind)
        mt = f"**{mt}**" if best_mean[0] == i else (f"*{mt}*" if best_mean[1] == i else mt)
        lines.append(f"| {LABELS[m]} | " + " | ".join(cells) + f" | {mt} |")
    return "\n".join(lines)


def table_fsc(results, methods, seeds, fsc_sigmas, voxel, rotations=(0.0,)):
    cols = [(s, g, r) for r in rotations for g in fsc_sigmas for s in seeds if case_key(s, g, r) in results
            and results[case_key(s, g, r)].get("fsc")]
    if not cols:
        return ""
    lines = ["| Method | " + " | ".join(_col_title(*c) for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for m in methods:
        cells = []
        for c in cols:
            r = results[case_key(*c)]["fsc"].get(m)
            if r is None:
                cells.append("n/a")
            else:
                v = r["resolution_fsc_eo_0.5"]
                cells.append(format_resolution(math.nan if v is None else v, voxel) if (v is None or not
                             math.isfinite(v)) else f"{v:.2f}")
        lines.append(f"| {LABELS[m]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_times(results, methods):
    lines = ["| Method | mean seconds per case (full volume; + halves where Table 3 was computed) |", "|---|---:|"]
    for m in methods:
        ts = [c["seconds"][m] for c in results.values() if m in c.get("seconds", {})]
        lines.append(f"| {LABELS[m]} | {np.mean(ts):.1f} |" if ts else f"| {LABELS[m]} | n/a |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- figures
def figure_slices(path, gt, outputs, metrics, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = ["ground_truth"] + list(outputs)
    n = len(names)
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 2.2 * 2 * 0.5 + 2.6), squeeze=False,
                             gridspec_kw={"height_ratios": [gt.shape[1], max(gt.shape[0], 1)]})
    lo, hi = np.percentile(gt, [0.5, 99.5])
    zc, yc = gt.shape[0] // 2, gt.shape[1] // 2
    for j, name in enumerate(names):
        v = gt if name == "ground_truth" else outputs[name]
        axes[0, j].imshow(v[zc], cmap="gray", vmin=lo, vmax=hi)
        axes[1, j].imshow(v[:, yc, :], cmap="gray", vmin=lo, vmax=hi, aspect="equal")
        lab = "Ground truth" if name == "ground_truth" else LABELS[name]
        if name in metrics:
            lab += f"\n{metrics[name]['psnr']:.2f} dB / {metrics[name]['ssim']:.3f}"
        axes[0, j].set_title(lab, fontsize=7)
        for a in axes[:, j]:
            a.set_xticks([])
            a.set_yticks([])
    axes[0, 0].set_ylabel("XY (central Z)", fontsize=7)
    axes[1, 0].set_ylabel("XZ (central Y)", fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def figure_fsc(path, curves, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for m, c in curves.items():
        ax.plot(c["frequency"], c["fsc_eo"], label=LABELS[m], lw=1.2)
    ax.axhline(0.5, ls="--", color="tab:blue", lw=0.8)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC$_{e/o}$ (eq. 10)")
    ax.set_ylim(-0.2, 1.02)
    ax.legend(fontsize=6)
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
    from scnet.baselines import available_baselines
    from scnet.simulate import prepare_case

    os.makedirs(args.output, exist_ok=True)
    avail = available_baselines()
    need = {"bm4d": "bm4d", "n2v": "n2v", "topaz3d": "topaz3d", "lpf": "lowpass", "gaussian": "gaussian"}
    results, t_start = {}, time.time()
    meta = {"shape": list(args.shape), "seeds": args.seeds, "sigmas": args.sigmas, "fsc_sigmas": args.fsc_sigmas,
            "rotations": args.rotations, "interpolation": args.interpolation,
            "voxel_size": args.voxel_size, "methods": args.methods, "prior_filter": args.prior_filter,
            "psnr_ssim_convention": "data_range = ground truth max - min; SSIM: skimage, 3D, 7^3 window",
            "fsc": "FSC_e/o^-1(0.5) of the denoised even/odd reconstructions (eq. 9-10), whole volume, "
                   f"mask {args.fsc_mask}", "cpu_threads": torch.get_num_threads(), "notes": {}}
    for rot, seed, sigma in [(r, s, g) for r in args.rotations for s in args.seeds for g in args.sigmas]:
        key = case_key(seed, sigma, rot)
        halves = sigma in args.fsc_sigmas
        print(f"\n=== phantom seed {seed}, sigma {sigma:g}, shape {args.shape}"
              + (f", rows interpolated (tilts rotated {rot:g} deg and back)" if rot else "")
              + f"{' (+ even/odd for Table 3)' if halves else ''}", flush=True)
        t0 = time.time()
        case = prepare_case(shape=args.shape, seed=seed, sigma=sigma, voxel_size=args.voxel_size,
                            prior_filter=args.prior_filter, tilt_axis_rotation=rot,
                            interpolation=args.interpolation)
        gt = case["ground_truth"].astype(np.float32)
        dr = float(gt.max() - gt.min())
        iso, tilts = isotropic_truth(case)
        entry = {"metrics": {}, "seconds": {}, "notes": {}, "fsc": {}, "errors": {},
                 "prepare_seconds": round(time.time() - t0, 1), "data_range": dr,
                 "wedge_reference": wedge_metrics(gt, iso, tilts)}
        outputs, curves = {}, {}
        for m in args.methods:
            why = avail.get(need.get(m, ""), None)
            if why:
                entry["errors"][m] = why
                print(f"  {LABELS[m]:24s} n/a: {why}", flush=True)
                continue
            try:
                full, hv, sec, note, extras = run_method(m, case, args, halves)
            except Exception as exc:  # report and go on with the other methods
                entry["errors"][m] = f"{type(exc).__name__}: {exc}"
                print(f"  {LABELS[m]:24s} FAILED: {type(exc).__name__}: {exc}", flush=True)
                traceback.print_exc()
                continue
            outputs[m] = full
            met = _metrics(gt, full, dr, iso, tilts)
            entry["metrics"][m], entry["seconds"][m], entry["notes"][m] = met, round(sec, 1), note
            line = (f"  {LABELS[m]:24s} PSNR {met['psnr']:6.2f} dB  SSIM {met['ssim']:.3f}  texture "
                    f"{met['texture']:6.2f}  ({sec:6.1f} s)")
            if hv is not None:
                c = fsc(hv[0], hv[1], voxel_size=args.voxel_size,
                        mask=None if args.fsc_mask == "none" else "soft")
                r = c.resolution_at(0.5, eo=True)
                entry["fsc"][m] = {"resolution_fsc_eo_0.5": None if not math.isfinite(r) else r,
                                   "resolution_fsc_0.5": (lambda x: None if not math.isfinite(x) else x)(
                                       c.resolution_at(0.5))}
                curves[m] = {"frequency": c.frequency.tolist(), "fsc": c.fsc.tolist(), "fsc_eo": c.fsc_eo.tolist()}
                line += f"  FSC_e/o(0.5) {format_resolution(r, args.voxel_size)}"
            print(line, flush=True)
            for v, vol in extras.items():  # the same model, another output average along Y
                k = f"{m}@{v}"
                LABELS.setdefault(k, f"{LABELS[m]}, {v} average")
                outputs[k] = vol
                entry["metrics"][k] = _metrics(gt, vol, dr, iso, tilts)
                entry["seconds"][k], entry["notes"][k] = round(sec, 1), f"{note}; output average along Y: {v}"
                mt = entry["metrics"][k]
                print(f"  {LABELS[k]:24s} PSNR {mt['psnr']:6.2f} dB  SSIM {mt['ssim']:.3f}  texture "
                      f"{mt['texture']:6.2f}", flush=True)
        entry["gt_stats"] = {"mean": float(gt.mean()), "std": float(gt.std())}
        entry["fsc_curves"] = curves
        results[key] = entry
        tag = f"seed{seed}_sigma{sigma:g}" + (f"_rot{rot:g}" if rot else "")
        figure_slices(os.path.join(args.output, f"slices_{tag}.png"), gt, outputs,
                      entry["metrics"], f"phantom seed {seed}, σ={sigma:g}" + (f", rows interpolated ({rot:g}°)"
                                                                              if rot else "")
                      + f", shape {args.shape} (PSNR dB / SSIM vs ground truth)")
        if curves:
            figure_fsc(os.path.join(args.output, f"fsc_eo_{tag}.png"), curves,
                       f"FSC_e/o of denoised even/odd halves, seed {seed}, σ={sigma:g}"
                       + (f", rows interpolated ({rot:g}°)" if rot else ""))
        _write(args, meta, results, t_start)
    text = _write(args, meta, results, t_start)
    print("\n" + text)
    return 0


def isotropic_truth(case):
    """The second ground truth (no missing wedge): the phantom at the reconstruction's resolution, on
    the back-projection ground truth's scale (scnet.wedge.isotropic_reference), and the tilt range."""
    from scnet.filters import gaussian_3d
    from scnet.wedge import isotropic_reference
    tilts = (float(np.min(case["angles"])), float(np.max(case["angles"])))
    phantom = case["phantom"]
    g = float(case["params"].get("gaussian_sigma", 0.0))
    if g > 0:
        phantom = gaussian_3d(phantom, g)
    return isotropic_reference(phantom, case["ground_truth"], tilts, case["params"].get("radial", RADIAL)), tilts


def wedge_metrics(volume, iso, tilts):
    """PSNR/SSIM against the phantom (no wedge), power inside the missing wedge (1 = the phantom's) and
    the Z/X elongation (1 = isotropic) of ``volume`` (scnet.wedge)."""
    from scnet.wedge import elongation, wedge_power_ratio
    dri = float(iso.max() - iso.min())
    return {"psnr_iso": psnr(iso, volume, data_range=dri), "ssim_iso": ssim3d(iso, volume, data_range=dri),
            "wedge_power": wedge_power_ratio(volume, iso, tilts), "elongation": elongation(volume, iso)}


def _metrics(gt, volume, dr, iso, tilts):
    """One output's scores: PSNR/SSIM and row texture against the ground truth, its mean and std, and the
    missing-wedge measures against the phantom."""
    return {"psnr": psnr(gt, volume, data_range=dr), "ssim": ssim3d(gt, volume, data_range=dr),
            "texture": row_texture(volume, gt), "mean": float(volume.mean()), "std": float(volume.std()),
            **wedge_metrics(volume, iso, tilts)}


def _write(args, meta, results, t_start):
    meta = dict(meta, total_seconds=round(time.time() - t_start, 1))
    with open(os.path.join(args.output, "results.json"), "w") as fh:
        json.dump({"meta": meta, "cases": results}, fh, indent=1, default=float)
    variants = sorted({k for c in results.values() for k in c["metrics"] if "@" in k})  # --row-averages
    methods = [x for m in args.methods for x in [m] + [v for v in variants if v.split("@")[0] == m]]
    parts = [f"# SC-Net quality benchmark (phantom, shape Z,Y,X = {tuple(args.shape)}, voxel {args.voxel_size:g} Å)",
             "", f"Total time {meta['total_seconds'] / 60:.1f} min on {meta['cpu_threads']} CPU threads. "
             "**Bold** = best, *italic* = second per column.", "",
             "## Table 1 layout: PSNR (dB) vs ground truth", "", table_quality(results, methods, args.seeds,
                                                                               args.sigmas, "psnr", args.rotations),
             "", "## Table 2 layout: SSIM vs ground truth", "", table_quality(results, methods, args.seeds,
                                                                             args.sigmas, "ssim", args.rotations),
             "", "## Row texture: power at the row frequency over the ground truth's (1 = as much as the truth; "
             "stripes along X alternating row by row show as > 1)", "",
             table_quality(results, methods, args.seeds, args.sigmas, "texture", args.rotations)]
    t3 = table_fsc(results, methods, args.seeds, args.fsc_sigmas, args.voxel_size, args.rotations)
    if t3:
        parts += ["", "## Table 3 layout: FSC_e/o^-1(0.5) in Å (lower is better) from denoised even/odd "
                  "reconstructions", "", t3]
    parts += ["", "## Missing wedge: against the phantom itself (no wedge)", "",
              "The ground truth above is the back-projection of the clean tilts: it has the tomogram's missing "
              "wedge. Here the reference is the phantom at the reconstruction's resolution (scnet.wedge). "
              "Wedge power: power inside the missing wedge over the phantom's (1 = all restored; the "
              "back-projection ground truth has " + _ref_range(results, "wedge_power", "{:.3f}") + "). Z/X "
              "elongation of the cross-correlation peak with the phantom (1 = isotropic; ground truth "
              + _ref_range(results, "elongation", "{:.2f}") + ").", ""]
    for kind, title in (("psnr_iso", "PSNR (dB) vs the phantom"), ("ssim_iso", "SSIM vs the phantom"),
                        ("wedge_power", "Wedge power ratio"), ("elongation", "Z/X elongation")):
        parts += [f"### {title}", "", table_quality(results, methods, args.seeds, args.sigmas, kind, args.rotations), ""]
    parts += ["", "## Time per method", "", table_times(results, methods)]
    errs = {f"{k}/{m}": e for k, c in results.items() for m, e in c.get("errors", {}).items()}
    if errs:
        parts += ["", "## Not run / failed", ""] + [f"- {k}: {e}" for k, e in errs.items()]
    notes = {}
    for c in results.values():
        for m, n in c.get("notes", {}).items():
            if n:
                notes.setdefault(m, n)
    if notes:
        parts += ["", "## Method settings (first case)", ""] + [f"- {LABELS[m]}: {n}" for m, n in notes.items()]
    text = "\n".join(parts) + "\n"
    with open(os.path.join(args.output, "tables.md"), "w") as fh:
        fh.write(text)
    return text


if __name__ == "__main__":
    sys.exit(main())
