"""Capacity benchmark: network width / depth vs quality vs time, at the user
defaults otherwise.

For each simulated case (§5.2, ``scnet.simulate.prepare_case``; ``--cells seed:sigma,...``) and each
network (``--networks WIDTHxDEPTH,...``; the first one should be the default), one SC-Net run in the
default mode (halves) with every other setting at the user default (``TrainConfig()``: automatic stop,
8-flip prediction), and the SAME wall-clock budget for every network (``--max-minutes``, the
``max_minutes`` a user can set; the best model so far is kept when it runs out).  So the table is a
quality-per-minute comparison: a wider network that needs more minutes than the budget shows what it
reaches in that time.

Prints, per case and network: parameters, iterations (and why training stopped), seconds per
iteration, minutes (training + prediction), PSNR / SSIM against the ground truth, the output's
standard deviation against the ground truth's (contrast kept or smoothed away), and the PSNR / SSIM
difference from the first network, measured in this one run.  Not run by CI:

    make bench-capacity            # or: flock /tmp/scnet-heavy.lock .venv/engine/bin/python benchmarks/capacity.py
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import add_smoke_args, parse, user_config  # noqa: E402

from scnet.choices import DEFAULT_TTA, NETWORK_DEFAULTS  # noqa: E402
from scnet.metrics import psnr, ssim3d  # noqa: E402

DEFAULT_NETWORK = f"{NETWORK_DEFAULTS['base_width']}x{NETWORK_DEFAULTS['depth']}"
# the networks compared with the default (the default itself left out): width 16 and depths 3/4 at width 8
NETWORKS = ",".join([DEFAULT_NETWORK] + [n for n in ("8x3", "16x3", "8x4") if n != DEFAULT_NETWORK])


def _networks(text):
    out = []
    for item in text.split(","):
        w, _, d = item.strip().lower().partition("x")
        if not (w.isdigit() and d.isdigit()):
            raise argparse.ArgumentTypeError(f"network {item!r}: use WIDTHxDEPTH, e.g. 16x3")
        out.append((int(w), int(d)))
    return out


def _cells(text):
    out = []
    for item in text.split(","):
        s, _, g = item.strip().partition(":")
        try:
            out.append((int(s), float(g)))
        except ValueError:
            raise argparse.ArgumentTypeError(f"cell {item!r}: use SEED:SIGMA, e.g. 1:10") from None
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="64,128,128", help="phantom / reconstruction shape Z,Y,X (default 64,128,128)")
    p.add_argument("--cells", type=_cells, default=_cells("1:10,0:15"),
                   help="SEED:SIGMA cases (default 1:10,0:15: the quality benchmark's worst PSNR cell and a "
                        "typical one)")
    p.add_argument("--networks", type=_networks, default=_networks(NETWORKS),
                   help=f"WIDTHxDEPTH networks, the first is the reference (default {NETWORKS}; "
                        f"the default network is {DEFAULT_NETWORK})")
    p.add_argument("--max-minutes", type=float, default=12.0,
                   help="the same training wall-clock budget for every network (default 12: the default network "
                        "needs up to ~12 min on 2 cores; 0 = none, the automatic stop alone)")
    add_smoke_args(p)
    p.add_argument("--output", default="bench_output/capacity", help="folder for results.json and table.md")
    return parse(p, argv)


def _cfg(args, shape, width, depth):
    # everything but the network and the (equal) time budget: the user defaults
    return user_config(shape, args.epochs, args.iterations, base_width=width, depth=depth,
                       max_minutes=args.max_minutes)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
    from scnet.denoise import denoise
    from scnet.model import build_model, count_parameters
    from scnet.config import PredictConfig
    from scnet.simulate import prepare_case

    os.makedirs(args.output, exist_ok=True)
    pcfg = PredictConfig(tta=DEFAULT_TTA)
    t_all = time.time()
    rows = []
    print(f"shape {args.shape}, networks {args.networks}, budget {args.max_minutes:g} min each, "
          f"{torch.get_num_threads()} CPU threads", flush=True)
    for seed, sigma in args.cells:
        case = prepare_case(shape=args.shape, seed=seed, sigma=sigma)
        gt = case["ground_truth"].astype(np.float32)
        dr = float(gt.max() - gt.min())
        print(f"\n=== phantom seed {seed}, sigma {sigma:g} (ground truth std {gt.std():.3f})", flush=True)
        for width, depth in args.networks:
            cfg = _cfg(args, args.shape, width, depth)
            params = count_parameters(build_model(cfg.model_config()))
            with tempfile.TemporaryDirectory(prefix="bench-capacity-") as work:
                t0 = time.time()
                out = denoise(case["noisy_rec"], case["prior_rec"], cfg, pcfg, work_dir=work,
                                    halves=(case["even_rec"], case["odd_rec"]))
                seconds = time.time() - t0
                with open(os.path.join(work, "training_summary.json")) as fh:
                    summ = json.load(fh)
            row = {"seed": seed, "sigma": sigma, "network": f"{width}x{depth}", "parameters": params,
                   "iterations": summ["iterations"], "stop": summ["stop_reason"],
                   "train_seconds": summ["seconds"], "seconds": round(seconds, 1),
                   "s_per_it": summ["seconds"] / max(summ["iterations"], 1),
                   "psnr": psnr(gt, out, data_range=dr), "ssim": ssim3d(gt, out, data_range=dr),
                   "std": float(out.std()), "gt_std": float(gt.std())}
            rows.append(row)
            print(f"  {row['network']:>6s} {params:8d} p  it {row['iterations']:5d} ({row['stop']})  "
                  f"{row['s_per_it']:.2f} s/it  {seconds / 60:5.1f} min  PSNR {row['psnr']:6.2f}  "
                  f"SSIM {row['ssim']:.3f}  std {row['std']:.3f}", flush=True)
            _write(args, rows, time.time() - t_all)
    print("\n" + _write(args, rows, time.time() - t_all))
    return 0


def _write(args, rows, total):
    lines = [f"Capacity benchmark: shape {tuple(args.shape)}, halves mode at the user defaults, the same "
             f"{args.max_minutes:g}-min training budget for every network (0 = none); total {total / 60:.1f} min.",
             "", "| seed | σ | network (width×depth) | parameters | iterations (stop) | s/it | min | PSNR dB | SSIM | "
             "std (GT) | ΔPSNR | ΔSSIM |", "|---:|---:|---|---:|---|---:|---:|---:|---:|---|---:|---:|"]
    ref = {}
    for r in rows:
        key = (r["seed"], r["sigma"])
        ref.setdefault(key, r)
        b = ref[key]
        lines.append(f"| {r['seed']} | {r['sigma']:g} | {r['network']} | {r['parameters']:,} | {r['iterations']} "
                     f"({r['stop']}) | {r['s_per_it']:.2f} | {r['seconds'] / 60:.1f} | {r['psnr']:.2f} | "
                     f"{r['ssim']:.3f} | {r['std']:.3f} ({r['gt_std']:.3f}) | {r['psnr'] - b['psnr']:+.2f} | "
                     f"{r['ssim'] - b['ssim']:+.3f} |")
    text = "\n".join(lines) + "\n\nΔ = difference from the first network of the same case, in this run.\n"
    with open(os.path.join(args.output, "results.json"), "w") as fh:
        json.dump({"args": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()},
                   "total_seconds": round(total, 1), "rows": rows}, fh, indent=1)
    with open(os.path.join(args.output, "table.md"), "w") as fh:
        fh.write(text)
    return text


if __name__ == "__main__":
    sys.exit(main())
