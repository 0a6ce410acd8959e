"""SC-Net engine speed benchmark: ONE run prints ONE markdown table.

Rows:
* training step (batch 2, blind spot + forward + loss + backward + Adam) in
  samples/s at 64³ and 128³: ours vs the re-stated authors' topology
  (benchmarks/reference_net.py, with their Python-loop blind spot), ratio;
* what each optimisation buys: naive materialised up-sampling block vs the
  collapsed one, vectorised vs loop blind spot;
* inference output voxels/s (predict_array, whole pipeline incl. tiling) without flips for each
  tile size of ``--tiles`` (the exact tiling context costs most at small tiles), and at the user's
  defaults (default tile and flips) with the minutes a 512x512x200 tomogram takes;
* peak RSS of ``predict_file`` on a 1024x1024x300 float32 tomogram in a
  subprocess (resource.getrusage of the child);
* quality on a synthetic noisy/prior pair (smooth blobs + noise, prior =
  Gaussian-filtered noisy): ours vs the reference topology, same loss and
  blind spot and number of iterations, PSNR/SSIM vs the clean volume.

Usage: ``python benchmarks/speed.py [--skip-big] [--sizes 64,128] [--big-shape 300,1024,1024]
[--tiles 96,128,160,192] [--inference-only]``.
Run under ``flock /tmp/scnet-heavy.lock`` on shared machines.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from reference_net import ReferenceSCNet  # noqa: E402

from scnet.blindspot import blindspot_reference_loop, blindspot_replace  # noqa: E402
from scnet.data import Normalisation, synthetic_pair  # noqa: E402
from scnet.losses import LossWeights, combined_loss  # noqa: E402
from scnet.model import ModelConfig, SCNet  # noqa: E402
from scnet.config import PredictConfig  # noqa: E402
from scnet.predict import predict_array  # noqa: E402
from scnet.config import TrainConfig  # noqa: E402
from scnet.device import set_threads  # noqa: E402
from scnet.train import save_model  # noqa: E402

W = LossWeights.paper(True)


def _step_ours(model, opt, x, p, gen):
    xb, m = blindspot_replace(x, 0.1, 3, generator=gen)
    t = combined_loss(model(xb), x, m, p, W)
    opt.zero_grad()
    t["loss"].backward()
    opt.step()


def _step_ref(model, opt, x, p, rng):
    xs, ms = [], []
    for b in range(x.shape[0]):  # the public code's per-sample Python-loop blind spot (aliased target)
        v = x[b, 0].numpy().copy()
        rep, tgt, m = blindspot_reference_loop(v, 0.1, 3, rng)
        xs.append(rep)
        ms.append(m)
    xb = torch.from_numpy(np.stack(xs))[:, None]
    m = torch.from_numpy(np.stack(ms))[:, None]
    t = combined_loss(model(xb), xb, m, p, LossWeights.paper(False))
    opt.zero_grad()
    t["loss"].backward()
    opt.step()


def time_steps(kind, L, warm, n, impl="fast"):
    torch.manual_seed(0)
    if kind == "ref":
        model = ReferenceSCNet()
    else:
        model = SCNet(ModelConfig(), impl=impl)
    opt = torch.optim.Adam(model.parameters(), lr=4e-4, betas=(0.5, 0.999))
    x = torch.randn(2, 1, L, L, L)
    p = torch.randn(2, 1, L, L, L)
    gen, rng = torch.Generator().manual_seed(0), np.random.default_rng(0)
    step = _step_ref if kind == "ref" else _step_ours
    for _ in range(warm):
        step(model, opt, x, p, gen if kind != "ref" else rng)
    t = time.perf_counter()
    for _ in range(n):
        step(model, opt, x, p, gen if kind != "ref" else rng)
    dt = (time.perf_counter() - t) / n
    return dt, 2 / dt


def time_blindspot(L):
    x = torch.randn(2, 1, L, L, L)
    blindspot_replace(x)
    t = time.perf_counter()
    blindspot_replace(x, generator=torch.Generator().manual_seed(0))
    vec = time.perf_counter() - t
    t = time.perf_counter()
    for b in range(2):
        blindspot_reference_loop(x[b, 0].numpy().copy(), 0.1, 3, np.random.default_rng(0))
    return vec, time.perf_counter() - t


def make_model(path, width=8):
    torch.manual_seed(0)
    m = SCNet(ModelConfig(base_width=width))
    with torch.no_grad():
        m.train()
        m(torch.randn(1, 1, 32, 32, 32))
    save_model(path, m, TrainConfig(base_width=width), Normalisation(0.0, 1.0))


def inference_rate(model_path, shape, cfg):
    vol = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    predict_array(model_path, vol[:32, :64, :64], cfg)
    t = time.perf_counter()
    predict_array(model_path, vol, cfg)
    return vol.size / (time.perf_counter() - t)


def big_prediction(model_path, shape, cfg, workdir):
    from scnet.io import VolumeWriter
    src, dst = os.path.join(workdir, "big_in.mrc"), os.path.join(workdir, "big_out.mrc")
    rng = np.random.default_rng(0)
    with VolumeWriter(src, shape, 1.0) as w:  # bounded: slab by slab
        for z in range(0, shape[0], 16):
            w.data[z:z + 16] = rng.standard_normal((min(16, shape[0] - z),) + tuple(shape[1:]), dtype=np.float32)
    code = ("import sys, time; from scnet.predict import predict_file, PredictConfig; t=time.time(); "
            f"predict_file({model_path!r}, {src!r}, {dst!r}, PredictConfig(tile_size={cfg.tile_size}, "
            f"overlap={cfg.overlap}, margin={cfg.margin!r}, tta={cfg.tta}, progress=True)); print(time.time()-t)")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    os.remove(src)
    os.remove(dst)
    return max(peak_kb, before) / 1024 ** 2, wall


def quality(iters, seed=0):
    from scnet.metrics import psnr, ssim3d
    clean, noisy, prior = synthetic_pair((48, 64, 64), noise=1.0, seed=seed)
    res = {}
    for name in ("ours", "ref"):
        torch.manual_seed(seed)
        model = SCNet(ModelConfig()) if name == "ours" else ReferenceSCNet()
        opt = torch.optim.Adam(model.parameters(), lr=4e-4, betas=(0.5, 0.999))
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(seed)
        from scnet.data import PatchSampler
        s = PatchSampler(noisy, prior, 32)
        t0 = time.perf_counter()
        for _ in range(iters):
            x, p = s.sample(rng, 2)
            _step_ours(model, opt, torch.from_numpy(x), torch.from_numpy(p), gen)  # same loss + blind spot
        dt = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            out = model(torch.from_numpy(noisy)[None, None])[0, 0].numpy()
        res[name] = (psnr(clean, out), ssim3d(clean, out), dt)
    res["noisy"] = (psnr(clean, noisy), ssim3d(clean, noisy), 0)
    res["prior"] = (psnr(clean, prior), ssim3d(clean, prior), 0)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="64,128", help="training patch sizes")
    ap.add_argument("--skip-big", action="store_true", help="skip the 1024x1024x300 prediction")
    ap.add_argument("--big-shape", default="300,1024,1024", help="Z,Y,X of the big prediction")
    ap.add_argument("--quality-iters", type=int, default=100)
    ap.add_argument("--big-only", action="store_true", help="only the big prediction's peak RSS / time")
    ap.add_argument("--infer-shape", default="128,256,256", help="Z,Y,X for the inference rate")
    ap.add_argument("--tiles", default="96,128,160,192", help="tile sizes of the no-flip inference rows")
    ap.add_argument("--inference-only", action="store_true", help="only the inference rows")
    args = ap.parse_args(argv)
    set_threads()
    rows = []
    add = rows.append
    if args.big_only:
        with tempfile.TemporaryDirectory() as d:
            mp = os.path.join(d, "model.pt")
            make_model(mp)
            shape = tuple(int(s) for s in args.big_shape.split(","))
            gb, wall = big_prediction(mp, shape, PredictConfig(tta=1), d)
        print(f"| predict_file {shape[2]}x{shape[1]}x{shape[0]} float32: peak RSS (GB) / wall (s) / Mvox/s | "
              f"{gb:.2f} / {wall:.0f} / {np.prod(shape) / wall / 1e6:.2f} | | |")
        return 0
    for L in (() if args.inference_only else (int(s) for s in args.sizes.split(","))):
        big = L >= 128
        dt_o, sps_o = time_steps("ours", L, 2, 2 if big else 4)
        dt_r, sps_r = time_steps("ref", L, 1, 1 if big else 2)
        add((f"training step, batch 2, {L}³ (s/step)", f"{dt_o:.2f}", f"{dt_r:.2f}", f"{dt_r / dt_o:.1f}x"))
        add((f"training samples/s, {L}³", f"{sps_o:.3f}", f"{sps_r:.4f}", f"{sps_o / sps_r:.1f}x"))
        print(rows[-2], rows[-1], file=sys.stderr, flush=True)
    if args.inference_only:
        inference_rows(args, add)
        return print_table(rows)
    dt_f, _ = time_steps("ours", 64, 2, 2)
    dt_n, _ = time_steps("ours", 64, 1, 2, impl="naive")
    add(("up-sampling block 64³ step (s): collapsed vs materialised", f"{dt_f:.2f}", f"{dt_n:.2f}",
         f"{dt_n / dt_f:.1f}x"))
    vec, loop = time_blindspot(128)
    add(("blind spot, batch 2 of 128³ (s): vectorised vs Python loop", f"{vec:.2f}", f"{loop:.2f}",
         f"{loop / vec:.0f}x"))
    print(rows[-2:], file=sys.stderr, flush=True)
    inference_rows(args, add)
    q = quality(args.quality_iters)
    add((f"quality, synthetic 48x64x64, {args.quality_iters} its of 2x32³: PSNR dB / SSIM",
         f"{q['ours'][0]:.2f} / {q['ours'][1]:.3f}", f"{q['ref'][0]:.2f} / {q['ref'][1]:.3f}",
         f"noisy {q['noisy'][0]:.2f}/{q['noisy'][1]:.3f}, prior {q['prior'][0]:.2f}/{q['prior'][1]:.3f}"))
    add(("quality run training time (s)", f"{q['ours'][2]:.0f}", f"{q['ref'][2]:.0f}",
         f"{q['ref'][2] / q['ours'][2]:.1f}x"))
    params_o = sum(p.numel() for p in SCNet(ModelConfig()).parameters())
    params_r = sum(p.numel() for p in ReferenceSCNet().parameters())
    add(("parameters", f"{params_o:,}", f"{params_r:,}", ""))
    return print_table(rows)


def print_table(rows) -> int:
    print(f"\nSC-Net engine speed ({os.cpu_count()} CPU threads, torch {torch.__version__})\n")
    print("| measure | ours | reference | ratio / note |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


def inference_rows(args, add) -> None:
    """Output voxels/s without flips per tile size (what the tiling context costs), at the user's
    defaults (default tile and flips, with the minutes for a 512x512x200 tomogram), and the big file."""
    with tempfile.TemporaryDirectory() as d:
        mp = os.path.join(d, "model.pt")
        make_model(mp)
        shape = tuple(int(v) for v in args.infer_shape.split(","))
        tiles = [int(v) for v in args.tiles.split(",")]
        base = None
        for t in tiles:
            cfg = PredictConfig(tile_size=t, tta=1)
            r = inference_rate(mp, shape, cfg)
            base = base or r
            add((f"inference output voxels/s, no flips (tile {t}, overlap {cfg.overlap}, margin "
                 f"{cfg.context(ModelConfig())}){' = default tile' if t == PredictConfig().tile_size else ''}",
                 f"{r / 1e6:.2f} M", "", f"{r / base:.2f}x tile {tiles[0]}"))
            print(rows_tail(add), file=sys.stderr, flush=True)
        d_cfg = PredictConfig()  # the user's defaults: default tile, DEFAULT_TTA flips
        r = inference_rate(mp, (max(32, shape[0] // 2),) + shape[1:], d_cfg)
        add((f"inference output voxels/s at the defaults (tile {d_cfg.tile_size}, {d_cfg.tta} flips)",
             f"{r / 1e6:.3f} M", "", f"512x512x200 in {512 * 512 * 200 / r / 60:.1f} min"))
        print(rows_tail(add), file=sys.stderr, flush=True)
        if not args.skip_big:
            shape = tuple(int(s) for s in args.big_shape.split(","))
            gb, wall = big_prediction(mp, shape, PredictConfig(tta=1), d)
            add((f"predict_file {shape[2]}x{shape[1]}x{shape[0]} float32, no flips: peak RSS (GB) / wall (s) / "
                 f"Mvox/s", f"{gb:.2f} / {wall:.0f} / {np.prod(shape) / wall / 1e6:.2f}", "", ""))
            print(rows_tail(add), file=sys.stderr, flush=True)


def rows_tail(add):
    """The row just added (``add`` is a list's append)."""
    return add.__self__[-1]


if __name__ == "__main__":
    sys.exit(main())
