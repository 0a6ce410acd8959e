"""Every method side by side on a REAL low-dose tilt series, judged without ground truth (`make bench-real`).

The series (scnet.sample_data: 41 raw tilts of M. pneumoniae cells, 10 A/px, with their IMOD .xf; the
warpylib 1.1.2 sdist, MIT) is aligned once (scnet.align), binned (default 2: 20 A/px) and reconstructed
(built-in WBP, 3200 A thick) from: all tilts; the even and the odd tilts (the halves); each half's even and
odd tilts again (quarters); and Topaz-2D-filtered tilts (the paper's prior, per half).

The honest measure of a denoiser on real data: denoise the even tomogram and the odd tomogram
INDEPENDENTLY -- nothing shared but the signal -- and take their FSC (0.5 and 0.143 crossings; a curve
that climbs back above a threshold is flagged). Every method runs with the user's defaults, through the
`scnet` command line:

* ``scnet_halves``: SC-Net's halves mode; each half's network trains on that half's own two quarters
  (`scnet denoise --noisy HALF --even Q1 --odd Q2`), the honest form of the halves mode;
* ``scnet_halves_shared``: the user's halves model (trained on the even/odd halves, as `make real-data`)
  denoising both halves -- ONE network for both, so its FSC flatters (for comparison);
* ``scnet_single``: the paper's single mode with its real Topaz-2D prior (the half's Topaz-filtered tilts);
* ``scnet_default``: `scnet denoise --noisy HALF` with nothing else -- whatever a user gets on a
  tomogram alone at the time of the run (recorded: the mode the training chose);
* ``topaz3d``, ``gaussian``, ``bm4d`` (where the optional package is installed): `scnet baseline`.

Also per method: the noise std in empty ice and the membrane's contrast (scnet.sample_data), on the
denoised halves (mean of the two). The figure: the even half, raw and each method, one grey window.
``--methods`` picks a subset (re-run one method when its code changes): the rows of the others are kept
from the previous run in the same ``--work`` folder at the same settings. ``--epochs`` etc. only smoke-test.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from scnet import sample_data as sd  # noqa: E402

METHODS = ("scnet_halves", "scnet_halves_shared", "scnet_single", "scnet_default", "topaz3d", "gaussian", "bm4d")
LABELS = {"raw": "raw (WBP)", "scnet_halves": "SC-Net halves", "scnet_halves_shared": "SC-Net halves, one network",
          "scnet_single": "SC-Net single, Topaz-2D prior", "scnet_default": "SC-Net default, tomogram alone",
          "topaz3d": "Topaz-3D", "gaussian": "Gaussian (1.5 px)", "bm4d": "BM4D"}
HALVES = ("even", "odd")


def scnet(log, *args):
    """``scnet ARGS`` (this Python's engine) with its output in ``log``; stops the benchmark on failure."""
    cmd = [sys.executable, "-m", "scnet"] + [str(a) for a in args]
    with open(log, "a") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        res = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if res.returncode:
        sys.exit(f"[bench-real] failed ({res.returncode}): {' '.join(cmd)} -- see {log}")


def prepare(args, work):
    """Aligned, binned stack; tomograms of all tilts, the halves and the quarters; Topaz-2D priors of the
    halves. Returns {name: path} and the voxel size."""
    from scnet.align import apply_xf, bin_stack, read_xf
    from scnet.filters import topaz_denoise_2d
    from scnet.io import write_volume
    from scnet.recon import ReconConfig, reconstruct
    from scnet.tiltseries import read_tilt_series
    src = sd.extract(args.cache_dir, os.path.join(args.cache_dir, "warpylib_testdata"))
    ts = read_tilt_series(src["stack"], src["tlt"])
    voxel = ts.voxel_size * args.bin
    thickness = args.thickness or int(round(sd.THICKNESS / voxel))
    t = time.time()
    stack = bin_stack(apply_xf(ts.data, read_xf(src["xf"], ts.data.shape[0])), args.bin)
    filtered = topaz_denoise_2d(stack, model="unet", device="cpu")
    print(f"[bench-real] aligned, binned {args.bin} and Topaz-2D filtered in {time.time() - t:.0f} s", flush=True)
    n = len(ts.angles)
    subsets = {"all": np.arange(n), "even": np.arange(0, n, 2), "odd": np.arange(1, n, 2),
               "even_q0": np.arange(0, n, 4), "even_q1": np.arange(2, n, 4),
               "odd_q0": np.arange(1, n, 4), "odd_q1": np.arange(3, n, 4)}
    cfg = ReconConfig(thickness=thickness, backend="builtin")
    vols = {}
    for name, idx in subsets.items():
        vols[name] = os.path.join(work, f"{name}.mrc")
        write_volume(vols[name], reconstruct(stack[idx], ts.angles[idx], cfg), voxel)
    for half in HALVES:
        idx = subsets[half]
        vols[f"prior_{half}"] = os.path.join(work, f"prior_{half}.mrc")
        write_volume(vols[f"prior_{half}"], reconstruct(filtered[idx], ts.angles[idx], cfg), voxel)
    print(f"[bench-real] {len(vols)} tomograms {thickness} x {stack.shape[1]} x {stack.shape[2]} at {voxel:g} A/px "
          f"in {time.time() - t:.0f} s", flush=True)
    return vols, voxel


def run_method(method, vols, work, train_args):
    """Denoise the even and the odd half independently (or, for the shared row, with one network);
    returns ({half: path}, seconds, the training mode(s) used)."""
    d = os.path.join(work, method)
    os.makedirs(d, exist_ok=True)
    log = os.path.join(d, "log.txt")
    out = {h: os.path.join(d, f"{h}.mrc") for h in HALVES}
    modes = []
    t = time.time()
    if method in ("topaz3d", "gaussian", "bm4d"):
        for h in HALVES:
            scnet(log, "baseline", method, vols[h], out[h])
    elif method == "scnet_halves_shared":
        scnet(log, "denoise", "--noisy", vols["all"], "--even", vols["even"], "--odd", vols["odd"],
              "--output", os.path.join(d, "all.mrc"), "--output-dir", os.path.join(d, "model"), *train_args)
        tta = train_args[train_args.index("--tta"):][:2] if "--tta" in train_args else []
        for h in HALVES:
            scnet(log, "predict", "--model", os.path.join(d, "model", "model.pt"), "--input", vols[h],
                  "--output", out[h], *tta)
        modes.append(_mode(os.path.join(d, "model")))
    else:
        for h in HALVES:
            extra = {"scnet_halves": ["--even", vols[f"{h}_q0"], "--odd", vols[f"{h}_q1"]],
                     "scnet_single": ["--mode", "single", "--prior", vols[f"prior_{h}"]],
                     "scnet_default": []}[method]
            scnet(log, "denoise", "--noisy", vols[h], *extra, "--output", out[h],
                  "--output-dir", os.path.join(d, f"model_{h}"), *train_args)
            modes.append(_mode(os.path.join(d, f"model_{h}")))
    return out, time.time() - t, modes


def _earlier(work, args, methods, voxel):
    """Rows of the methods NOT re-run now, from the previous run in the same folder at the same settings
    (so `--methods bm4d` adds a row to a finished run instead of starting again)."""
    try:
        with open(os.path.join(work, "results.json")) as fh:
            prev = json.load(fh)
    except (OSError, ValueError):
        return {}
    try:
        before = _settings(parser().parse_args(prev.get("argv", [])))
    except SystemExit:
        return {}
    if prev.get("voxel") != voxel or before != _settings(args):
        return {}
    return {m: r for m, r in prev.get("rows", {}).items()
            if m in METHODS and m not in methods and os.path.exists(os.path.join(work, m, "even.mrc"))}


def _settings(args):
    return {"bin": args.bin, "thickness": args.thickness, "epochs": args.epochs,
            "iterations_per_epoch": args.iterations_per_epoch, "tta": args.tta}


def _mode(model_dir):
    try:
        with open(os.path.join(model_dir, "training_summary.json")) as fh:
            return json.load(fh).get("mode", "?")
    except OSError:
        return "?"


def measure(paths, voxel):
    """FSC of the two denoised halves (soft mask) and the crossings; ice noise and membrane contrast."""
    from scnet.io import read_volume
    from scnet.metrics import crossings, fsc
    a, _ = read_volume(paths["even"], check=False)
    b, _ = read_volume(paths["odd"], check=False)
    curve = fsc(a, b, voxel, mask="soft")
    cr = crossings(curve.frequency, curve.fsc)
    return {"fsc": [float(v) for v in curve.fsc], "frequency": [float(v) for v in curve.frequency],
            "crossings": cr, "ice_std": float(np.mean([sd.ice_std(v, voxel) for v in (a, b)])),
            "contrast": float(np.mean([sd.membrane_contrast(v, voxel) for v in (a, b)]))}


def _res(c):
    r = c["resolution"]
    text = "not reached" if math.isnan(r) else ("below at once" if math.isinf(r) else f"{r:.0f} Å")
    return text + (f" (rises again at {c['rise_resolution']:.0f} Å)" if c["rises_again"] else "")


def table(rows, voxel, seconds_prepare, total):
    raw = rows["raw"]
    lines = ["| Method | FSC 0.5 | FSC 0.143 | ice noise std | membrane contrast | contrast / noise | minutes | mode |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, r in rows.items():
        c5, c1 = r["crossings"]
        lines.append(f"| {LABELS[name]} | {_res(c5)} | {_res(c1)} | {r['ice_std'] / raw['ice_std']:.3f} | "
                     f"{r['contrast'] / raw['contrast']:.2f} | {r['contrast'] / r['ice_std']:.2f} | "
                     f"{r.get('seconds', 0) / 60:.1f} | {', '.join(sorted(set(r.get('modes', [])))) or '-'} |")
    lines += ["", f"Even and odd halves denoised independently (except 'one network'); FSC of the two with a soft mask; "
              f"Nyquist {2 * voxel:g} Å. Ice noise and membrane contrast relative to the raw halves (raw: "
              f"{raw['ice_std']:.4f} and {raw['contrast']:.4f}), contrast / noise absolute. Minutes: training and "
              f"prediction of both halves; preparation {seconds_prepare / 60:.1f} min, whole run {total / 60:.1f} min."]
    return "\n".join(lines) + "\n"


def fsc_plot(rows, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, r in rows.items():
        ax.plot(r["frequency"][1:], r["fsc"][1:], lw=1.2 if name != "raw" else 2, label=LABELS[name],
                ls="--" if name == "scnet_halves_shared" else "-")
    for t in (0.5, 0.143):
        ax.axhline(t, ls=":", color="k", lw=0.8)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC of the denoised even and odd halves")
    ax.set_ylim(-0.1, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache-dir", required=True, help=f"folder holding {sd.SDIST}")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma list of " + ", ".join(METHODS))
    ap.add_argument("--bin", type=int, default=2)
    ap.add_argument("--thickness", type=int, default=0, help=f"slices (0: {sd.THICKNESS:g} A)")
    ap.add_argument("--work", default=os.path.join(".cache", "bench_real"), help="folder for every volume")
    ap.add_argument("--output", default="docs/bench_real.png", help="the figure (the FSC plot: *_fsc.png)")
    ap.add_argument("--table", default="docs/bench_real.md")
    ap.add_argument("--epochs", type=int, default=0, help="0 = the user default (automatic stop); N: smoke test")
    ap.add_argument("--iterations-per-epoch", type=int, default=0, help="0 = the user default; N: smoke test")
    ap.add_argument("--tta", type=int, default=0, help="0 = the user default flips; N: smoke test")
    return ap


def main(argv=None):
    ap = parser()
    args = ap.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        ap.error(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    if "bm4d" in methods and importlib.util.find_spec("bm4d") is None:
        print("[bench-real] bm4d is not installed (optional: `make bm4d`): its row is left out", flush=True)
        methods.remove("bm4d")
    train_args = []
    if args.epochs:
        train_args += ["--epochs", args.epochs]
    if args.iterations_per_epoch:
        train_args += ["--iterations-per-epoch", args.iterations_per_epoch]
    if args.tta:
        train_args += ["--tta", args.tta]
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    t0 = time.time()
    vols, voxel = prepare(args, work)
    t_prep = time.time() - t0
    rows = {"raw": measure({h: vols[h] for h in HALVES}, voxel)}
    outputs = {"raw": vols["even"]}
    kept = _earlier(work, args, methods, voxel)  # rows of methods not re-run now, from the last run here
    rows.update(kept)
    outputs.update({m: os.path.join(work, m, "even.mrc") for m in kept})
    for m in methods:
        paths, sec, modes = run_method(m, vols, work, train_args)
        rows[m] = dict(measure(paths, voxel), seconds=sec, modes=modes)
        outputs[m] = paths["even"]
        c5, c1 = rows[m]["crossings"]
        print(f"[bench-real] {m}: {sec / 60:.1f} min, FSC 0.5 {_res(c5)}, 0.143 {_res(c1)}, modes {modes}", flush=True)
    total = time.time() - t0
    rows = {k: rows[k] for k in ["raw"] + [m for m in METHODS if m in rows]}
    outputs = {k: outputs[k] for k in rows}
    text = table(rows, voxel, t_prep, total)
    if kept:
        text += (f"\nRows of {', '.join(LABELS[m] for m in kept)} from the previous run in {args.work} (same data "
                 f"and settings); this run: {', '.join(LABELS[m] for m in methods)}.\n")
    os.makedirs(os.path.dirname(os.path.abspath(args.table)), exist_ok=True)
    with open(args.table, "w") as fh:
        fh.write(text)
    sd.figure({LABELS[k]: v for k, v in outputs.items()}, args.output,
              f"Even half of the real series ({voxel:g} Å/px), each method alone on it; one grey window")
    fsc_plot(rows, os.path.splitext(args.output)[0] + "_fsc.png")
    with open(os.path.join(work, "results.json"), "w") as fh:
        json.dump({"rows": rows, "voxel": voxel, "seconds_prepare": t_prep, "seconds": total,
                   "methods": methods, "argv": list(argv or sys.argv[1:])}, fh, indent=1)
    print(text)
    print(f"[bench-real] {args.table}, {args.output}; total {total / 60:.1f} min")
    return rows


if __name__ == "__main__":
    main()
