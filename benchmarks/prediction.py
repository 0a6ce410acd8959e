"""What the prediction options cost in quality and buy in time: ONE run prints ONE markdown table.

For each phantom case (``--seeds`` x ``--sigmas``, the shape of ``quality.py``) and each training
mode of ``--modes`` (halves: the phantom's even/odd halves; split: the tomogram alone), ONE model
is trained at the user defaults (automatic stop); that model then predicts the tomogram with every
number of axis flips of ``--flips`` and every precision of ``--precisions``.  The table gives, per
mode and option, the mean PSNR / SSIM against the ground truth, the mean and the worst change of
PSNR against the reference option (8 flips, fp32: the default before this benchmark), and the
prediction's seconds with its speed-up.  The same model predicts every option, so the differences
are the options' alone.

Usage: ``python benchmarks/prediction.py [--modes halves,split] [--flips 1,2,4,8]
[--precisions fp32,bf16] [--seeds 0,1] [--sigmas 10,15,20] [--shape 64,128,128]``.
Run under ``flock /tmp/scnet-heavy.lock`` on shared machines (``make bench-prediction``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import add_smoke_args, ints, parse, user_config  # noqa: E402

REFERENCE = (8, "fp32")  # the prediction default before this benchmark: 8 flips in fp32


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="64,128,128", help="phantom Z,Y,X (quality.py's)")
    ap.add_argument("--seeds", default="0,1", type=ints)
    ap.add_argument("--sigmas", default="10,15,20", type=lambda s: [float(x) for x in s.split(",")])
    ap.add_argument("--modes", default="halves,split", type=lambda s: s.split(","),
                    help="training modes: halves (with the even/odd halves), split (the tomogram alone)")
    ap.add_argument("--flips", default="1,2,4,8", type=ints, help="numbers of axis flips to predict with")
    ap.add_argument("--precisions", default="fp32,bf16", type=lambda s: s.split(","))
    ap.add_argument("--output", default="bench_prediction", help="folder for results.json")
    add_smoke_args(ap)
    args = parse(ap, argv)
    for m in args.modes:
        if m not in ("halves", "split"):
            ap.error(f"--modes: {m!r} is not halves or split")
    if REFERENCE[0] not in args.flips or REFERENCE[1] not in args.precisions:
        ap.error(f"--flips and --precisions must hold the reference {REFERENCE[0]} flips, {REFERENCE[1]}")
    return args


def predict_options(model, case, mode, args):
    """{(flips, precision): (volume, seconds)} of one model."""
    from scnet.config import PredictConfig
    from scnet.predict import predict_array, predict_halves_array
    out = {}
    predict_array(model, case["noisy_rec"][:32, :64, :64], PredictConfig(tta=1))  # warm-up, not timed
    for prec in args.precisions:
        for n in args.flips:
            cfg = PredictConfig(tta=n, precision=prec)
            t0 = time.perf_counter()
            if mode == "halves":
                v = predict_halves_array(model, (case["even_rec"], case["odd_rec"]), cfg)
            else:
                v = predict_array(model, case["noisy_rec"], cfg)
            out[(n, prec)] = (v, time.perf_counter() - t0)
    return out


def run(args):
    from scnet.metrics import psnr, ssim3d
    from scnet.simulate import prepare_case
    from scnet.train import train_model
    rows = {}  # (mode, flips, precision) -> list of (psnr, ssim, seconds, delta psnr)
    notes = []
    for seed in args.seeds:
        for sigma in args.sigmas:
            case = prepare_case(shape=args.shape, seed=seed, sigma=sigma)
            gt = case["ground_truth"]
            dr = float(gt.max() - gt.min())
            for mode in args.modes:
                cfg = user_config(args.shape, args.epochs, args.iterations, mode=mode, seed=0)
                with tempfile.TemporaryDirectory() as work:
                    t0 = time.time()
                    model = train_model(case["noisy_rec"], case["prior_rec"], cfg, work,
                                        halves=(case["even_rec"], case["odd_rec"]) if mode == "halves" else None)
                    with open(os.path.join(work, "training_summary.json")) as fh:
                        its = json.load(fh)["iterations"]
                    notes.append(f"seed {seed} σ {sigma:g} {mode}: {its} iterations, {time.time() - t0:.0f} s")
                    preds = predict_options(model, case, mode, args)
                ref = psnr(gt, preds[REFERENCE][0], data_range=dr)
                for (n, prec), (v, sec) in preds.items():
                    p = psnr(gt, v, data_range=dr)
                    rows.setdefault((mode, n, prec), []).append((p, ssim3d(gt, v, data_range=dr), sec, p - ref))
                print(notes[-1], "|", ", ".join(f"{n}/{prec} {rows[(mode, n, prec)][-1][0]:.2f} dB "
                                                 f"{rows[(mode, n, prec)][-1][2]:.1f} s" for n, prec in preds),
                      flush=True)
    return rows, notes


def table(rows, args) -> str:
    from scnet.choices import DEFAULT_TTA
    from scnet.config import PredictConfig
    default = (DEFAULT_TTA, PredictConfig().precision)
    lines = [f"Prediction options, {len(args.seeds)} seeds x σ {', '.join(f'{s:g}' for s in args.sigmas)}, "
             f"phantom {'x'.join(map(str, args.shape))}, one model per case and mode (user defaults); "
             f"ΔPSNR against {REFERENCE[0]} flips {REFERENCE[1]}",
             "", "| mode | flips | precision | PSNR dB | SSIM | ΔPSNR mean / worst dB | predict s | speed-up |",
             "|---|---|---|---|---|---|---|---|"]
    for mode in args.modes:
        ref_sec = np.mean([r[2] for r in rows[(mode,) + REFERENCE]])
        for prec in args.precisions:
            for n in args.flips:
                r = np.array(rows[(mode, n, prec)])
                mark = " (default)" if (n, prec) == default else ""
                lines.append(f"| {mode} | {n}{mark} | {prec} | {r[:, 0].mean():.2f} | {r[:, 1].mean():.3f} | "
                             f"{r[:, 3].mean():+.2f} / {r[:, 3].min():+.2f} | {r[:, 2].mean():.1f} | "
                             f"{ref_sec / r[:, 2].mean():.1f}x |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    from scnet.device import set_threads
    set_threads()
    t0 = time.time()
    rows, notes = run(args)
    text = table(rows, args) + "\n\n" + "\n".join(f"* {n}" for n in notes) + \
        f"\n\nTotal {(time.time() - t0) / 60:.1f} min."
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "results.json"), "w") as fh:
        json.dump({" ".join(map(str, k)): v for k, v in rows.items()}, fh, indent=1)
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
