"""SC-Net engine speed benchmark: ONE run prints ONE markdown table.

Each row compares what a user gets now with something measured in the same run:

* **before**: the defaults before the speed work of issue 21 (network in the standard NCDHW layout,
  96³ prediction tiles, 8 flips, fp32; :data:`BEFORE`) -- training s/iteration (batch 2, 64³),
  training to the automatic stop on the phantom (iterations, minutes), inference output voxels/s
  without flips and at the defaults (with the minutes a 512x512x200 tomogram takes), and a real
  ``predict_file`` of a 512x512x200 float32 tomogram at the defaults (wall time, peak RSS of the
  child process);
* **authors' topology**: the re-stated reference network (benchmarks/reference_net.py, with their
  Python-loop blind spot) -- training step at 64³ and 128³, and quality on a synthetic pair (same
  loss, blind spot and iterations, PSNR/SSIM vs the clean volume);
* **what each optimisation buys**: naive materialised up-sampling block vs the collapsed one,
  vectorised vs loop blind spot, inference per tile size (the tiling context costs most at small
  tiles).

Usage: ``python benchmarks/speed.py [--skip-big] [--skip-stop] [--sizes 64,128]
[--big-shape 200,512,512] [--tiles 96,128,160,192] [--inference-only]``.
Run under ``flock /tmp/scnet-heavy.lock`` on shared machines (``make bench-speed``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
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
from scnet.model import CHANNELS_LAST, ModelConfig, SCNet  # noqa: E402
from scnet.config import PredictConfig  # noqa: E402
from scnet.predict import predict_array  # noqa: E402
from scnet.config import TrainConfig  # noqa: E402
from scnet.device import set_threads  # noqa: E402
from scnet.train import save_model  # noqa: E402

W = LossWeights.paper(True)
# the defaults before the speed work of issue 21 (code of e8231aa): what the "before" column runs
BEFORE = {"layout": torch.contiguous_format, "tile_size": 96, "tta": 8, "precision": "fp32"}


@contextlib.contextmanager
def layout(memory_format):
    """Networks built inside use ``memory_format`` (``scnet.model.CHANNELS_LAST`` is the default layout)."""
    import scnet.model as sm
    old = sm.CHANNELS_LAST
    sm.CHANNELS_LAST = memory_format
    try:
        yield
    finally:
        sm.CHANNELS_LAST = old


def before_predict_config(**kw) -> PredictConfig:
    base = dict(tile_size=BEFORE["tile_size"], tta=BEFORE["tta"], precision=BEFORE["precision"])
    base.update(kw)
    return PredictConfig(**base)


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
    """``predict_file`` of a random float32 tomogram of ``shape`` in a child process: (peak RSS GB, wall s)."""
    from scnet.io import VolumeWriter
    src, dst = os.path.join(workdir, "big_in.mrc"), os.path.join(workdir, "big_out.mrc")
    rng = np.random.default_rng(0)
    with VolumeWriter(src, shape, 1.0) as w:  # bounded: slab by slab
        for z in range(0, shape[0], 16):
            w.data[z:z + 16] = rng.standard_normal((min(16, shape[0] - z),) + tuple(shape[1:]), dtype=np.float32)
    fields = json.dumps({k: getattr(cfg, k) for k in ("tile_size", "overlap", "margin", "tta", "precision")})
    code = ("import json, sys; from scnet.predict import predict_file, PredictConfig; "
            f"predict_file({model_path!r}, {src!r}, {dst!r}, PredictConfig(progress=True, **json.loads({fields!r})))")
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


def time_to_stop(memory_format):
    """Train at the user defaults on the phantom (seed 0, σ 15, 64x128x128, its halves) to the automatic
    stop: (iterations, seconds)."""
    from _common import user_config
    from scnet.simulate import prepare_case
    from scnet.train import train_model
    case = prepare_case(shape=(64, 128, 128), seed=0, sigma=15.0)
    cfg = user_config((64, 128, 128), seed=0)
    with tempfile.TemporaryDirectory() as d, layout(memory_format):
        t = time.perf_counter()
        train_model(case["noisy_rec"], case["prior_rec"], cfg, d, halves=(case["even_rec"], case["odd_rec"]))
        sec = time.perf_counter() - t
        with open(os.path.join(d, "training_summary.json")) as fh:
            return json.load(fh)["iterations"], sec


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


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="64,128", help="training patch sizes (ours vs the authors' topology)")
    ap.add_argument("--skip-big", action="store_true", help="skip the predict_file of --big-shape")
    ap.add_argument("--skip-stop", action="store_true", help="skip the two trainings to the automatic stop")
    ap.add_argument("--big-shape", default="200,512,512", help="Z,Y,X of the predict_file at the defaults")
    ap.add_argument("--quality-iters", type=int, default=100)
    ap.add_argument("--infer-shape", default="128,256,256", help="Z,Y,X for the inference rates")
    ap.add_argument("--tiles", default="96,128,160,192", help="tile sizes of the no-flip inference rows")
    ap.add_argument("--inference-only", action="store_true", help="only the inference rows")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    set_threads()
    rows = []

    def add(*row):
        rows.append(row)
        print(row, file=sys.stderr, flush=True)
    if not args.inference_only:
        training_rows(args, add)
    inference_rows(args, add)
    if not args.inference_only:
        reference_rows(args, add)
    return print_table(rows)


def training_rows(args, add) -> None:
    """Now vs before: s/iteration of one step and the whole training to the automatic stop."""
    with layout(BEFORE["layout"]):
        dt_b, _ = time_steps("ours", 64, 2, 4)
    dt_n, _ = time_steps("ours", 64, 2, 4)
    add("training step, batch 2 of 64³ (s/iteration)", f"{dt_n:.3f}", "before (NCDHW layout)", f"{dt_b:.3f}",
        f"{dt_b / dt_n:.2f}x")
    if not args.skip_stop:
        it_b, s_b = time_to_stop(BEFORE["layout"])
        it_n, s_n = time_to_stop(CHANNELS_LAST)
        add("training to the automatic stop, phantom σ 15 64x128x128 halves: iterations / min",
            f"{it_n} / {s_n / 60:.1f}", "before (NCDHW layout)", f"{it_b} / {s_b / 60:.1f}", f"{s_b / s_n:.2f}x")


def reference_rows(args, add) -> None:
    """Now vs the authors' topology, and what each optimisation buys."""
    ref = "authors' topology"
    for L in (int(s) for s in args.sizes.split(",")):
        big = L >= 128
        dt_o, sps_o = time_steps("ours", L, 2, 2 if big else 4)
        dt_r, sps_r = time_steps("ref", L, 1, 1 if big else 2)
        add(f"training step, batch 2 of {L}³ (s/iteration)", f"{dt_o:.2f}", ref, f"{dt_r:.2f}", f"{dt_r / dt_o:.1f}x")
    dt_f, _ = time_steps("ours", 64, 2, 2)
    dt_n, _ = time_steps("ours", 64, 1, 2, impl="naive")
    add("up-sampling block, 64³ step (s)", f"{dt_f:.2f}", "materialised 2x volume", f"{dt_n:.2f}",
        f"{dt_n / dt_f:.1f}x")
    vec, loop = time_blindspot(128)
    add("blind spot, batch 2 of 128³ (s)", f"{vec:.2f}", "Python loop", f"{loop:.2f}", f"{loop / vec:.0f}x")
    q = quality(args.quality_iters)
    add(f"quality, synthetic 48x64x64, {args.quality_iters} its of 2x32³: PSNR dB / SSIM",
        f"{q['ours'][0]:.2f} / {q['ours'][1]:.3f}", ref, f"{q['ref'][0]:.2f} / {q['ref'][1]:.3f}",
        f"noisy {q['noisy'][0]:.2f}/{q['noisy'][1]:.3f}, prior {q['prior'][0]:.2f}/{q['prior'][1]:.3f}")
    add("quality run training time (s)", f"{q['ours'][2]:.0f}", ref, f"{q['ref'][2]:.0f}",
        f"{q['ref'][2] / q['ours'][2]:.1f}x")
    add("parameters", f"{sum(p.numel() for p in SCNet(ModelConfig()).parameters()):,}", ref,
        f"{sum(p.numel() for p in ReferenceSCNet().parameters()):,}", "")


def print_table(rows) -> int:
    now = PredictConfig()
    print(f"\nSC-Net engine speed ({set_threads()} CPU threads, torch {torch.__version__}); now = the defaults "
          f"(channels-last network, tile {now.tile_size}, {now.tta} flips, {now.precision}); before = NCDHW, tile "
          f"{BEFORE['tile_size']}, {BEFORE['tta']} flips, {BEFORE['precision']}\n")
    print("| measure | now | compared with | its value | ratio / note |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


def inference_rows(args, add) -> None:
    """Output voxels/s without flips per tile size, now vs before without flips and at the defaults (with
    the minutes for a 512x512x200 tomogram), and a real predict_file at the defaults (wall, peak RSS)."""
    with tempfile.TemporaryDirectory() as d:
        mp = os.path.join(d, "model.pt")
        make_model(mp)
        shape = tuple(int(v) for v in args.infer_shape.split(","))
        tiles = [int(v) for v in args.tiles.split(",")]
        base = None
        for t in tiles:
            r = inference_rate(mp, shape, PredictConfig(tile_size=t, tta=1, precision="fp32"))
            base = base or r
            add(f"inference output voxels/s, no flips, fp32, tile {t}", f"{r / 1e6:.2f} M", f"tile {tiles[0]}",
                f"{base / 1e6:.2f} M", f"{r / base:.2f}x")
        with layout(BEFORE["layout"]):
            r_b = inference_rate(mp, shape, before_predict_config(tta=1))
        r_n = inference_rate(mp, shape, PredictConfig(tta=1))
        add("inference output voxels/s, no flips", f"{r_n / 1e6:.2f} M", "before", f"{r_b / 1e6:.2f} M",
            f"{r_n / r_b:.2f}x")
        small = (max(32, shape[0] // 2),) + shape[1:]
        with layout(BEFORE["layout"]):
            d_b = inference_rate(mp, small, before_predict_config())
        d_n = inference_rate(mp, small, PredictConfig())
        add("inference output voxels/s at the defaults (flips)", f"{d_n / 1e6:.3f} M", "before",
            f"{d_b / 1e6:.3f} M", f"{d_n / d_b:.2f}x")
        vox = 512 * 512 * 200
        add("512x512x200 at the defaults, from that rate (min)", f"{vox / d_n / 60:.1f}", "before",
            f"{vox / d_b / 60:.1f}", f"{d_n / d_b:.2f}x")
        if not args.skip_big:
            big = tuple(int(s) for s in args.big_shape.split(","))
            gb, wall = big_prediction(mp, big, PredictConfig(), d)
            add(f"predict_file {big[2]}x{big[1]}x{big[0]} float32 at the defaults: wall min / peak RSS GB",
                f"{wall / 60:.1f} / {gb:.2f}", "before, from its rate above", f"{np.prod(big) / d_b / 60:.1f} / -",
                f"{np.prod(big) / wall / 1e6:.2f} M voxels/s")


if __name__ == "__main__":
    sys.exit(main())
