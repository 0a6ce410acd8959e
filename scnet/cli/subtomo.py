"""``scnet average`` -- subtomogram averaging as the downstream measure of a (denoised) tomogram.

Gold-standard half-sets, FSC 0.5 / 0.143 and SNR of the average (:mod:`scnet.subtomo`).
All inputs are checked (SCNetInputError -> exit 2) before any output is written.
"""
from __future__ import annotations

import json
import math


def _num(x):
    x = float(x)
    return x if math.isfinite(x) else None


def _res(x):
    return "not reached" if math.isnan(x) else ("below at once" if math.isinf(x) else f"{x:.1f} A")


def _average(args) -> int:
    import numpy as np
    from ..errors import SCNetInputError
    from ..io import read_volume, write_volume
    from ..outputs import guard, write_text
    from ..subtomo import gold_standard, read_particles
    outputs = [args.json, args.csv, args.output]
    guard(outputs=outputs, inputs=[args.volume, args.particles, args.align_on])
    if min(args.iterations, args.max_shift, args.per_half, args.repeats) < 0 or args.box < 4 or \
            (args.repeats and args.repeats_per_half < 2):
        raise SCNetInputError(f"--box must be >= 4, --iterations, --max-shift, --per-half, --repeats >= 0 and "
                              f"--repeats-per-half >= 2 (got {args.box}, {args.iterations}, {args.max_shift}, "
                              f"{args.per_half}, {args.repeats}, {args.repeats_per_half}).")
    from ..io import same_grid
    from ..rules import seed_errors
    for why in seed_errors(args.seed) + seed_errors(args.seed + max(0, args.repeats), "--seed (+ --repeats)"):
        raise SCNetInputError(why)
    if args.voxel_size is not None and not 0 < args.voxel_size < math.inf:
        raise SCNetInputError(f"--voxel-size must be a finite number > 0 Angstrom (got {args.voxel_size}).")
    centres, vectors = read_particles(args.particles)
    vol, info = read_volume(args.volume)
    align = None
    if args.align_on:
        align, ainfo = read_volume(args.align_on)
        if tuple(ainfo.shape) != tuple(info.shape):
            raise SCNetInputError(f"--align-on {args.align_on} has shape {tuple(ainfo.shape)} but --volume "
                                  f"{args.volume} has {tuple(info.shape)}: give the same tomogram's other version.")
        same_grid(args.volume, info, args.align_on, ainfo, "--align-on")
    voxel = args.voxel_size or info.voxel_size
    if not voxel:
        raise SCNetInputError(f"{args.volume} sets no voxel size in its header (0): give --voxel-size (A) so the "
                              "FSC resolutions are in Angstrom.")
    res = gold_standard(vol, centres, vectors, box=args.box, voxel_size=voxel, align_volume=align,
                        iterations=args.iterations, max_shift=args.max_shift, seed=args.seed,
                        per_half=args.per_half)
    a, b = res.pop("average_a"), res.pop("average_b")
    if args.repeats:  # the sensitive measure: few particles per half, several random subsets
        subsets = [gold_standard(vol, centres, vectors, box=args.box, voxel_size=voxel, align_volume=align,
                                 iterations=args.iterations, max_shift=args.max_shift, seed=args.seed + 1 + k,
                                 per_half=args.repeats_per_half) for k in range(args.repeats)]
        curves = np.array([r["fsc"] for r in subsets], dtype=np.float64)
        res["subsets"] = {"per_half": args.repeats_per_half, "repeats": args.repeats,
                          "fsc_mean_curve": [_num(v) for v in np.nanmean(curves, axis=0)]}
        for key in ("fsc_0.5", "fsc_0.143", "snr"):
            vals = np.array([r[key] for r in subsets], dtype=np.float64)
            ok = vals[np.isfinite(vals)]
            res["subsets"][key] = [_num(v) for v in vals]
            res["subsets"][key + "_mean"] = _num(ok.mean()) if ok.size else None
            res["subsets"][key + "_sd"] = _num(ok.std(ddof=1)) if ok.size > 1 else None
            res["subsets"][key + "_reached"] = int(ok.size)
    if args.output:
        write_volume(args.output, (a + b) / 2.0, voxel_size=voxel)
    if args.csv:
        write_text(args.csv, "frequency_per_A,fsc\n" + "".join(
            f"{f:.6g},{'' if not math.isfinite(c) else f'{c:.6g}'}\n" for f, c in zip(res["frequency"], res["fsc"])))
    if args.json:
        out = dict(res, **{k: _num(res[k]) for k in ("fsc_0.5", "fsc_0.143", "snr")},
                   fsc=[_num(c) for c in res["fsc"]], volume=args.volume, align_on=args.align_on,
                   particles=args.particles, iterations=args.iterations, max_shift=args.max_shift, seed=args.seed,
                   per_half=args.per_half)
        write_text(args.json, json.dumps(out, indent=2) + "\n")
    sub = res.get("subsets")
    print(f"average: {res['n_particles']} particles ({res['n_dropped']} dropped), box {res['box']}, "
          f"FSC 0.5 at {_res(res['fsc_0.5'])}, 0.143 at {_res(res['fsc_0.143'])}, SNR {res['snr']:.3g}, "
          f"mean shift {res['mean_shift']:.2f} voxels"
          + (f"; {sub['repeats']} subsets of {sub['per_half']} per half: FSC 0.5 at "
             f"{'n/a' if sub['fsc_0.5_mean'] is None else format(sub['fsc_0.5_mean'], '.1f')} A "
             f"({sub['fsc_0.5_reached']} reached)" if sub else ""))
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "average", help="subtomogram average at given particles: gold-standard FSC and SNR (downstream test)",
        description="Subtomogram average of V at the particle positions (and normals) of P, split into two "
                    "random half-sets; gold-standard FSC between the half averages (0.5 and 0.143) and the "
                    "average's SNR. --align-on: refine the positions (local translational search, each half "
                    "against its own average) on this volume (e.g. a denoised tomogram) and average V (e.g. the "
                    "raw one) there: the honest downstream test of a denoiser.",
        epilog="example: scnet average --volume raw.mrc --align-on denoised.mrc --particles picks.txt --json avg.json")
    p.add_argument("--volume", required=True, metavar="V.mrc", help="the tomogram the average is made of")
    p.add_argument("--particles", required=True, metavar="P.txt",
                   help="one particle per row: x y z [nx ny nz] in voxels of V ('#' comments); the vector is the "
                        "particle's axis (e.g. the membrane normal), mapped onto the box's first (Z) axis")
    p.add_argument("--align-on", metavar="A.mrc", help="refine the positions on this volume (same shape as V)")
    p.add_argument("--box", type=int, default=16, help="subvolume edge in voxels [16]")
    p.add_argument("--iterations", type=int, default=2, help="local refinement rounds (0 = positions as given) [2]")
    p.add_argument("--max-shift", type=int, default=2, help="largest shift per round and axis, voxels [2]")
    p.add_argument("--seed", type=int, default=0, help="random choices (group order, subsets) [0]")
    p.add_argument("--per-half", type=int, default=0, metavar="N",
                   help="at most N particles (a random subset) per half-set; 0 = all [0]. With many particles the "
                        "average is noise-free at this pixel size and every volume gives FSC 1; fewer make the "
                        "measure sensitive to noise and alignment")
    p.add_argument("--repeats", type=int, default=0, metavar="R",
                   help="also R random subsets of --repeats-per-half particles per half-set: their crossings and "
                        "SNR, mean and SD, and the mean FSC curve, under 'subsets' in the JSON [0]")
    p.add_argument("--repeats-per-half", type=int, default=32, metavar="N", help="particles per half in each subset [32]")
    p.add_argument("--voxel-size", type=float, default=None, help="A per voxel (default: V's header)")
    p.add_argument("--json", metavar="OUT.json", help="crossings, SNR, counts and the FSC curve")
    p.add_argument("--csv", metavar="FSC.csv", help="the FSC curve (frequency in 1/A, fsc)")
    p.add_argument("--output", metavar="AVG.mrc", help="the full average (both half-sets)")
    p.set_defaults(func=_average)
