"""Fine-tuning benchmark: is starting from a model trained on ANOTHER tomogram
better than starting from random weights, at the user defaults?

Two simulated cases (§5.2, ``scnet.simulate.prepare_case``): a *source* phantom and a *target*
phantom (other seeds, so other membranes, vesicles and particles), same noise level.  In one run:

1. train on the source at the user defaults (``TrainConfig()``; halves mode, automatic stop);
2. *zero-shot*: apply that model to the target without training;
3. *from scratch*: train on the target at the defaults (what a user gets today);
4. *fine-tuned*: train on the target at the defaults, starting from the source model
   (``--init-model`` / train protocol 'Start from a trained model').

Prints PSNR / SSIM against the target's ground truth, iterations (the automatic stop decides) and
seconds per row, and the time ratio fine-tuned / from scratch.  Not run by CI:

    flock /tmp/scnet-heavy.lock .venv/engine/bin/python benchmarks/finetune.py
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

from scnet.choices import DEFAULT_TTA  # noqa: E402
from scnet.metrics import psnr, ssim3d  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="64,128,128", help="phantom / reconstruction shape Z,Y,X (default 64,128,128)")
    p.add_argument("--source-seed", type=int, default=0, help="phantom seed of the source tomogram (default 0)")
    p.add_argument("--target-seed", type=int, default=1, help="phantom seed of the target tomogram (default 1)")
    p.add_argument("--sigma", type=float, default=15.0, help="AWGN sigma on 0..255 projections (default 15)")
    add_smoke_args(p)
    p.add_argument("--patch", type=int, default=0, help="patch edge (0 = default, capped by the shape)")
    p.add_argument("--output", default="bench_output/finetune", help="folder for results.json")
    return parse(p, argv)


def _cfg(args, shape):
    return user_config(shape, args.epochs, args.iterations, args.patch)  # the user defaults


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
    from scnet.denoise import denoise
    from scnet.config import PredictConfig
    from scnet.predict import predict_halves_array
    from scnet.simulate import prepare_case

    os.makedirs(args.output, exist_ok=True)
    pcfg = PredictConfig(tta=DEFAULT_TTA)
    src = prepare_case(shape=args.shape, seed=args.source_seed, sigma=args.sigma)
    tgt = prepare_case(shape=args.shape, seed=args.target_seed, sigma=args.sigma)
    gt = tgt["ground_truth"].astype(np.float32)
    dr = float(gt.max() - gt.min())
    rows = {}

    def score(name, vol, seconds, work=None):
        summ = {}
        if work:
            with open(os.path.join(work, "training_summary.json")) as fh:
                summ = json.load(fh)
        rows[name] = {"psnr": psnr(gt, vol, data_range=dr), "ssim": ssim3d(gt, vol, data_range=dr),
                      "seconds": round(seconds, 1), "iterations": summ.get("iterations"),
                      "stop": summ.get("stop_reason")}
        r = rows[name]
        print(f"  {name:34s} PSNR {r['psnr']:6.2f} dB  SSIM {r['ssim']:.3f}  it {r['iterations'] or '-':>5}"
              f"  {r['seconds']:7.1f} s", flush=True)

    def noisy_halves(case):
        return case["even_rec"], case["odd_rec"]

    with tempfile.TemporaryDirectory(prefix="bench-finetune-") as tmp:
        work_src, work_fresh, work_fine = (os.path.join(tmp, n) for n in ("source", "fresh", "fine"))
        print(f"source seed {args.source_seed}, target seed {args.target_seed}, sigma {args.sigma:g}, "
              f"shape {args.shape}, {torch.get_num_threads()} CPU threads", flush=True)
        t0 = time.time()
        denoise(src["noisy_rec"], src["prior_rec"], _cfg(args, args.shape), pcfg, work_dir=work_src,
                      halves=noisy_halves(src))
        t_src = time.time() - t0
        with open(os.path.join(work_src, "training_summary.json")) as fh:
            src_it = json.load(fh)["iterations"]
        print(f"  source model trained in {t_src:.0f} s ({src_it} iterations)", flush=True)
        model = os.path.join(work_src, "model.pt")
        score("noisy (target)", tgt["noisy_rec"], 0.0)
        t0 = time.time()
        score("source model, no training", predict_halves_array(model, noisy_halves(tgt), pcfg), time.time() - t0)
        t0 = time.time()
        fresh = denoise(tgt["noisy_rec"], tgt["prior_rec"], _cfg(args, args.shape), pcfg, work_dir=work_fresh,
                              halves=noisy_halves(tgt))
        score("from scratch (default)", fresh, time.time() - t0, work_fresh)
        t0 = time.time()
        fine = denoise(tgt["noisy_rec"], tgt["prior_rec"], _cfg(args, args.shape), pcfg, work_dir=work_fine,
                             halves=noisy_halves(tgt), init_model=model)
        score("fine-tuned from the source model", fine, time.time() - t0, work_fine)

    a, b = rows["from scratch (default)"], rows["fine-tuned from the source model"]
    lines = ["| Start | PSNR dB | SSIM | iterations | s |", "|---|---:|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['iterations'] or '–'} | {r['seconds']:.0f} |")
    text = "\n".join(lines) + (
        f"\n\nFine-tuned − from scratch: {b['psnr'] - a['psnr']:+.2f} dB, {b['ssim'] - a['ssim']:+.3f} SSIM, "
        f"time ratio {b['seconds'] / max(a['seconds'], 1e-9):.2f} (source model: {t_src:.0f} s, {src_it} it, "
        f"not counted).")
    with open(os.path.join(args.output, "results.json"), "w") as fh:
        json.dump({"args": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()},
                   "source_seconds": round(t_src, 1), "source_iterations": src_it, "rows": rows}, fh, indent=2)
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
