"""Data-set benchmark: ONE model trained on several tomograms vs one model per tomogram, at the user defaults.

Simulated tomograms (§5.2, ``scnet.simulate.prepare_case``): phantom seeds 0-3 (other membranes, vesicles,
filaments and particles each), σ 15, each with its Topaz-2D prior and even/odd halves -- what the plugin's
default chain gives, so ``auto`` trains the halves mode.  In ONE run, every training and prediction as the
``scnet`` command a user (or the plugin) runs, each in its own process:

1. one model per tomogram: ``scnet train --noisy --prior --even --odd`` four times, each predicting its own
   tomogram (``scnet predict --halves``);
2. one joint model: ``scnet train --tomograms LIST.tsv`` on the four, predicting each of them;
3. a 5th tomogram (seed 4) the joint model never saw: the joint model vs Topaz-3D (pretrained unet-3d-10a)
   vs a model trained on it alone;
4. peak RAM (the process's largest resident set, from ``wait4``) of the joint training on 4 tomograms vs a
   training on one (target <= 1.5x): at the size above, and with larger synthetic tomograms (``--ram-shape``,
   a short fixed training: memory, not quality).

Prints PSNR / SSIM against each ground truth, iterations and seconds, and the RAM ratio; writes
``OUTPUT/results.json``.  Not run by CI:

    flock /tmp/scnet-heavy.lock .venv/engine/bin/python benchmarks/dataset.py
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import add_smoke_args, ints, parse  # noqa: E402

from scnet.metrics import psnr, ssim3d  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="64,128,128", help="phantom / reconstruction shape Z,Y,X (default 64,128,128)")
    p.add_argument("--seeds", default="0,1,2,3", help="phantom seeds of the data set (default 0,1,2,3)")
    p.add_argument("--unseen-seed", type=int, default=4, help="phantom seed of the tomogram the joint model never "
                                                              "sees (default 4)")
    p.add_argument("--sigma", type=float, default=15.0, help="AWGN sigma on 0..255 projections (default 15)")
    p.add_argument("--voxel-size", type=float, default=10.0, help="voxel size in A (default 10)")
    p.add_argument("--ram-shape", default="128,384,384",
                   help="Z,Y,X of the synthetic tomograms of the larger RAM measure ('' = skip it)")
    p.add_argument("--ram-iterations", type=int, default=20, help="iterations of each larger RAM training")
    add_smoke_args(p)
    p.add_argument("--patch", type=int, default=0, help="patch edge (0 = the default, capped by the shape)")
    p.add_argument("--output", default="bench_output/dataset", help="folder for results.json")
    args = parse(p, argv)
    args.seeds = ints(args.seeds)
    args.ram_shape = tuple(ints(args.ram_shape)) if args.ram_shape else None
    return args


def train_options(args, shape):
    """The user defaults: no training option given, except a fixed budget or patch only to smoke-test."""
    from _common import user_config
    from scnet.config import TrainConfig
    cfg = user_config(shape, args.epochs, args.iterations, args.patch)
    d = TrainConfig()
    opts = []
    for name in ("epochs", "iterations_per_epoch", "patch_size"):
        if getattr(cfg, name) != getattr(d, name):
            opts += ["--" + name.replace("_", "-"), str(getattr(cfg, name))]
    return opts


def run(argv, log):
    """``python -m scnet ARGV`` in its own process: (seconds, peak resident MB); its output goes to ``log``."""
    t0 = time.time()
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "scnet"] + [str(a) for a in argv], stdout=fh, stderr=fh)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.time() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        with open(log) as fh:
            raise RuntimeError(f"scnet {argv[0]} failed:\n" + "".join(fh.readlines()[-15:]))
    return seconds, usage.ru_maxrss / 1024.0


def write_case(folder, name, case, voxel):
    """The noisy tomogram, its prior and halves as MRC files: the row of the list of tomograms."""
    from scnet.io import write_volume
    from scnet.manifest import TomogramEntry
    paths = {}
    for kind, key in (("noisy", "noisy_rec"), ("prior", "prior_rec"), ("even", "even_rec"), ("odd", "odd_rec")):
        paths[kind] = os.path.join(folder, f"{name}_{kind}.mrc")
        write_volume(paths[kind], case[key], voxel_size=voxel)
    return TomogramEntry(name=name, **paths)


def train_one(entry, out, opts, logs):
    return run(["train", "--noisy", entry.noisy, "--prior", entry.prior, "--even", entry.even, "--odd", entry.odd,
                "--output-dir", out] + opts, os.path.join(logs, f"train_{os.path.basename(out)}.log"))


def predict(model, entry, out, logs):
    return run(["predict", "--model", model, "--input", entry.noisy, "--halves", entry.even, entry.odd,
                "--output", out], os.path.join(logs, f"predict_{os.path.basename(out)}.log"))


def summary(out):
    with open(os.path.join(out, "training_summary.json")) as fh:
        return json.load(fh)


def score(gt, path):
    from scnet.io import read_volume
    v = read_volume(path)[0] if isinstance(path, str) else path
    dr = float(gt.max() - gt.min())
    return {"psnr": psnr(gt, v, data_range=dr), "ssim": ssim3d(gt, v, data_range=dr)}


def synthetic_entry(folder, name, shape, seed, voxel):
    """A large synthetic tomogram (smooth blobs + noise), its prior and halves: files for the RAM measure."""
    from scnet.data import synthetic_pair
    from scnet.io import write_volume
    from scnet.manifest import TomogramEntry
    _, noisy, prior = synthetic_pair(shape, seed=seed)
    rng = np.random.default_rng(seed + 100)
    paths = {}
    for kind, v in (("noisy", noisy), ("prior", prior), ("even", noisy + rng.standard_normal(shape, np.float32)),
                    ("odd", noisy + rng.standard_normal(shape, np.float32))):
        paths[kind] = os.path.join(folder, f"{name}_{kind}.mrc")
        write_volume(paths[kind], v, voxel_size=voxel)
    return TomogramEntry(name=name, **paths)


def main(argv=None) -> int:
    args = parse_args(argv)
    from scnet.baselines import run_baseline
    from scnet.manifest import write_manifest
    from scnet.simulate import prepare_case

    os.makedirs(args.output, exist_ok=True)
    res = {"args": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()},
           "load_start": os.getloadavg(), "tomograms": {}, "unseen": {}, "ram": {}}
    t_all = time.time()
    opts = train_options(args, args.shape)
    work = tempfile.mkdtemp(prefix="bench-dataset-")
    logs = os.path.join(args.output, "logs")
    os.makedirs(logs, exist_ok=True)
    try:
        names = [f"TS_{s}" for s in args.seeds]
        cases, entries = {}, []
        for name, seed in zip(names + ["unseen"], args.seeds + [args.unseen_seed]):
            cases[name] = prepare_case(shape=args.shape, seed=seed, sigma=args.sigma, voxel_size=args.voxel_size)
            entry = write_case(work, name, cases[name], args.voxel_size)
            if name != "unseen":
                entries.append(entry)
            print(f"simulated {name} (seed {seed}, sigma {args.sigma:g}, {args.shape})", flush=True)
        unseen = write_case(work, "unseen", cases["unseen"], args.voxel_size)
        gts = {n: c["ground_truth"].astype(np.float32) for n, c in cases.items()}

        # 1. one model per tomogram
        per = {"train_s": 0.0, "predict_s": 0.0, "rss": [], "iterations": []}
        for e in entries:
            out = os.path.join(work, f"model_{e.name}")
            s, rss = train_one(e, out, opts, logs)
            it = summary(out)["iterations"]
            ps, _ = predict(os.path.join(out, "model.pt"), e, os.path.join(work, f"per_{e.name}.mrc"), logs)
            per["train_s"] += s
            per["predict_s"] += ps
            per["rss"].append(rss)
            per["iterations"].append(it)
            res["tomograms"][e.name] = {"noisy": score(gts[e.name], cases[e.name]["noisy_rec"]),
                                        "per_tomogram": score(gts[e.name], os.path.join(work, f"per_{e.name}.mrc")),
                                        "per_tomogram_train_s": round(s, 1), "per_tomogram_iterations": it}
            print(f"  {e.name}: own model {it} it, {s:.0f} s, {rss:.0f} MB; "
                  f"{res['tomograms'][e.name]['per_tomogram']['psnr']:.2f} dB", flush=True)

        # 2. one joint model
        listing = os.path.join(work, "tomograms.tsv")
        write_manifest(listing, entries)
        joint_dir = os.path.join(work, "joint")
        js, jrss = run(["train", "--tomograms", listing, "--output-dir", joint_dir] + opts,
                       os.path.join(logs, "train_joint.log"))
        jsum = summary(joint_dir)
        joint = {"train_s": js, "predict_s": 0.0, "rss": jrss, "iterations": jsum["iterations"],
                 "stop": jsum["stop_reason"], "mode": jsum["mode"]}
        model = os.path.join(joint_dir, "model.pt")
        for e in entries:
            ps, _ = predict(model, e, os.path.join(work, f"joint_{e.name}.mrc"), logs)
            joint["predict_s"] += ps
            res["tomograms"][e.name]["joint"] = score(gts[e.name], os.path.join(work, f"joint_{e.name}.mrc"))
        print(f"  joint model: {jsum['iterations']} it, {js:.0f} s, {jrss:.0f} MB", flush=True)

        # 3. the 5th tomogram
        u = res["unseen"]
        u["noisy"] = score(gts["unseen"], cases["unseen"]["noisy_rec"])
        t0 = time.time()
        u["topaz3d"] = dict(score(gts["unseen"], run_baseline("topaz3d", cases["unseen"]["noisy_rec"])),
                            seconds=round(time.time() - t0, 1))
        ps, _ = predict(model, unseen, os.path.join(work, "joint_unseen.mrc"), logs)
        u["joint"] = dict(score(gts["unseen"], os.path.join(work, "joint_unseen.mrc")), seconds=round(ps, 1))
        out = os.path.join(work, "model_unseen")
        s, _ = train_one(unseen, out, opts, logs)
        ps, _ = predict(os.path.join(out, "model.pt"), unseen, os.path.join(work, "alone_unseen.mrc"), logs)
        u["alone"] = dict(score(gts["unseen"], os.path.join(work, "alone_unseen.mrc")), seconds=round(s + ps, 1),
                          iterations=summary(out)["iterations"])
        res["per_tomogram"] = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in per.items()}
        res["joint"] = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in joint.items()}

        # 4. RAM with larger tomograms: a training on one vs the joint training on four
        if args.ram_shape:
            big = [synthetic_entry(work, f"big_{k}", args.ram_shape, k, args.voxel_size) for k in range(4)]
            fixed = ["--epochs", "1", "--iterations-per-epoch", str(args.ram_iterations)]
            _, one = train_one(big[0], os.path.join(work, "ram_one"), fixed, logs)
            write_manifest(os.path.join(work, "big.tsv"), big)
            _, four = run(["train", "--tomograms", os.path.join(work, "big.tsv"), "--output-dir",
                           os.path.join(work, "ram_four")] + fixed, os.path.join(logs, "train_ram_four.log"))
            res["ram"] = {"shape": list(args.ram_shape), "one_mb": round(one, 0), "four_mb": round(four, 0),
                          "volume_mb": round(float(np.prod(args.ram_shape)) * 4 / 2 ** 20, 1)}
            print(f"  RAM at {args.ram_shape}: one {one:.0f} MB, four {four:.0f} MB", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res["seconds"] = round(time.time() - t_all, 1)
    res["load_end"] = os.getloadavg()
    with open(os.path.join(args.output, "results.json"), "w") as fh:
        json.dump(res, fh, indent=2)
    print("\n" + tables(res))
    return 0


def tables(res) -> str:
    """The Markdown tables of one run (docs/benchmarks.md)."""
    t, per, joint, u = res["tomograms"], res["per_tomogram"], res["joint"], res["unseen"]
    lines = ["| Tomogram | noisy | one model per tomogram | one joint model |", "|---|---:|---:|---:|"]
    for name, r in t.items():
        lines.append(f"| {name} | " + " | ".join(f"{r[k]['psnr']:.2f} / {r[k]['ssim']:.3f}"
                                                for k in ("noisy", "per_tomogram", "joint")) + " |")
    mean = {k: (np.mean([r[k]["psnr"] for r in t.values()]), np.mean([r[k]["ssim"] for r in t.values()]))
            for k in ("noisy", "per_tomogram", "joint")}
    lines.append("| mean | " + " | ".join(f"{p:.2f} / {s:.3f}" for p, s in mean.values()) + " |")
    total_per = per["train_s"] + per["predict_s"]
    total_joint = joint["train_s"] + joint["predict_s"]
    lines += ["", "| | trainings | iterations | training s | prediction s | total s |", "|---|---:|---:|---:|---:|---:|",
              f"| one model per tomogram | {len(per['iterations'])} | {' + '.join(map(str, per['iterations']))} | "
              f"{per['train_s']:.0f} | {per['predict_s']:.0f} | {total_per:.0f} |",
              f"| one joint model ({joint['mode']} mode) | 1 | {joint['iterations']} ({joint['stop']}) | "
              f"{joint['train_s']:.0f} | {joint['predict_s']:.0f} | {total_joint:.0f} |",
              "", f"Joint / per tomogram: wall time {total_joint / total_per:.2f}x, PSNR "
              f"{mean['joint'][0] - mean['per_tomogram'][0]:+.2f} dB, SSIM {mean['joint'][1] - mean['per_tomogram'][1]:+.3f}.",
              "", "| 5th tomogram (never seen by the joint model) | PSNR dB | SSIM | s |", "|---|---:|---:|---:|",
              f"| noisy | {u['noisy']['psnr']:.2f} | {u['noisy']['ssim']:.3f} | |",
              f"| Topaz-3D (pretrained) | {u['topaz3d']['psnr']:.2f} | {u['topaz3d']['ssim']:.3f} | "
              f"{u['topaz3d']['seconds']:.0f} |",
              f"| joint model, no training | {u['joint']['psnr']:.2f} | {u['joint']['ssim']:.3f} | {u['joint']['seconds']:.0f} |",
              f"| model trained on it alone ({u['alone']['iterations']} it) | {u['alone']['psnr']:.2f} | "
              f"{u['alone']['ssim']:.3f} | {u['alone']['seconds']:.0f} |"]
    one = float(np.mean(per["rss"]))
    lines += ["", "| Peak RAM of the training (MB) | one tomogram | 4 tomograms, one model | ratio |", "|---|---:|---:|---:|",
              f"| {' x '.join(map(str, res['args']['shape']))}, user defaults | {one:.0f} (mean of 4) | "
              f"{joint['rss']:.0f} | {joint['rss'] / one:.2f} |"]
    r = res.get("ram") or {}
    if r:
        lines.append(f"| {' x '.join(map(str, r['shape']))} ({r['volume_mb']:.0f} MB a volume, 4 volumes a tomogram), "
                     f"{res['args']['ram_iterations']} iterations | {r['one_mb']:.0f} | {r['four_mb']:.0f} | "
                     f"{r['four_mb'] / r['one_mb']:.2f} |")
    lines += ["", f"Run: {res['seconds'] / 60:.0f} min; load average {res['load_start'][0]:.1f} at the start, "
                  f"{res['load_end'][0]:.1f} at the end (2 cores)."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
