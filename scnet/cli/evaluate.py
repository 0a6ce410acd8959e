"""``scnet fsc | evaluate | baseline`` -- the paper's evaluation on the command line.

* ``scnet fsc VOL1 VOL2``  FSC (eq. 9) and FSC_e/o (eq. 10) curves of two volumes
  (e.g. the even/odd reconstructions, each denoised), CSV + JSON, and the
  resolutions where they cross 0.5 (Table 3).
* ``scnet evaluate --ground-truth GT VOL [VOL ...]``  PSNR / SSIM against a
  ground truth (Tables 1-2), a markdown table on stdout (+ JSON).
* ``scnet baseline NAME IN OUT``  one of the comparison methods
  (bm4d, n2v, lowpass, gaussian, topaz3d); ``scnet baseline --list`` says which run here.

All inputs are checked (SCNetInputError -> exit 2) before any output is written.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import time

import numpy as np

from ..choices import BASELINES, BASELINES_WITH_DEVICE, BM4D_STAGES
from ..errors import SCNetInputError
from .options import add_device, add_subvolume, parse_zyx

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- helpers
def _zyx(text, name="--subvolume"):
    return parse_zyx(text, name, allow_zero=True)


def _check_output(path, inputs=(), others=()):
    from ..outputs import guard
    guard(outputs=[path] + list(others), inputs=inputs)


def _read(path):
    from ..io import read_volume
    data, info = read_volume(path, check=True)
    return np.asarray(data, dtype=np.float32), info


def _json_number(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _status(res):
    if math.isnan(res):
        return "not reached (correlation stays above the threshold up to Nyquist)"
    if math.isinf(res):
        return "below the threshold at every shell"
    return "ok"


def _write_json(path, obj):
    from ..outputs import write_text
    write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


# --------------------------------------------------------------------------- fsc
def cmd_fsc(args) -> int:
    from ..metrics import FSC_THRESHOLDS, central_subvolume, crossing_warning, crossings, format_resolution, fsc

    sub = _zyx(args.subvolume)
    if not 0 < args.threshold < 1:
        raise SCNetInputError(f"--threshold must be within (0, 1) (got {args.threshold}).")
    if args.voxel_size is not None and not 0 < args.voxel_size < math.inf:
        raise SCNetInputError(f"--voxel-size must be a finite number > 0 Angstrom (got {args.voxel_size}).")
    _check_output(args.csv, [args.vol1, args.vol2, args.mask if args.mask not in (None, "none", "soft") else None],
                  others=[args.json])
    from ..io import distinct_halves, same_grid
    distinct_halves(args.vol1, args.vol2, what="VOL1 and VOL2")
    v1, i1 = _read(args.vol1)
    v2, i2 = _read(args.vol2)
    if v1.shape != v2.shape:
        raise SCNetInputError(f"Shapes differ: {args.vol1} {v1.shape} vs {args.vol2} {v2.shape}; "
                              "FSC needs two volumes on the same grid.")
    distinct_halves(args.vol1, args.vol2, v1, v2, "VOL1 and VOL2")  # FSC of a volume with itself is 1 everywhere
    if args.voxel_size is None:  # the grid of every input: the headers must agree (or --voxel-size decides)
        same_grid(args.vol1, i1, args.vol2, i2, "VOL2")
    mask = None
    if args.mask and args.mask != "none":
        if args.mask == "soft":
            mask = "soft"
        else:
            m, mi = _read(args.mask)
            same_grid(args.vol1, i1, args.mask, mi, "--mask")
            mask = m
    voxel = args.voxel_size if args.voxel_size is not None else (i1.voxel_size or i2.voxel_size)
    if not voxel:
        raise SCNetInputError(f"{args.vol1} and {args.vol2} set no voxel size in their headers (0): give --voxel-size "
                              "(A) so the resolutions are in Angstrom.")
    v1c, v2c = central_subvolume(v1, sub), central_subvolume(v2, sub)
    if isinstance(mask, np.ndarray):
        mask = central_subvolume(mask, sub)
        if mask.shape != v1c.shape:
            raise SCNetInputError(f"Mask {args.mask} shape {mask.shape} differs from the volumes' {v1c.shape}.")
    curve = fsc(v1c, v2c, voxel_size=voxel, mask=mask)
    t = args.threshold
    res = curve.resolution_at(t)
    res_eo = curve.resolution_at(t, eo=True)
    key = f"{t:g}"
    print(f"FSC      = {key} at {format_resolution(res, voxel)} A")
    print(f"FSC_e/o  = {key} at {format_resolution(res_eo, voxel)} A   (eq. 10: 2 FSC / (FSC + 1))")
    thresholds = tuple(dict.fromkeys(FSC_THRESHOLDS + (t,)))
    cross = {name: crossings(curve.frequency, values, thresholds)
             for name, values in (("fsc", curve.fsc), ("fsc_eo", curve.fsc_eo))}
    for name, label in (("fsc", "FSC"), ("fsc_eo", "FSC_e/o")):
        for c in cross[name]:
            print(f"{label:8s} first crossing of {c['threshold']:g}: {format_resolution(c['resolution'], voxel)} A")
            warning = crossing_warning(c, label)
            if warning:
                log.warning(warning)
    if args.csv:
        from ..outputs import atomic
        with atomic(args.csv) as tmp:
            with open(tmp, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["shell", "frequency", "resolution", "fsc", "fsc_eo"])
                for k, (f, r, c, e) in enumerate(zip(curve.frequency, curve.resolution, curve.fsc, curve.fsc_eo)):
                    w.writerow([k, f"{f:.6g}", f"{r:.6g}", f"{c:.6g}", f"{e:.6g}"])
    if args.json:
        _write_json(args.json, {
            f"resolution_fsc_{key}": _json_number(res),
            f"resolution_fsc_eo_{key}": _json_number(res_eo),
            "voxel_size": float(voxel),
            "threshold": t,
            "status_fsc": _status(res),
            "status_fsc_eo": _status(res_eo),
            # first crossings of 0.5 / 0.143 (/ --threshold) and whether the curve rises above again
            "crossings": {name: [{**c, "resolution": _json_number(c["resolution"]), "status": _status(c["resolution"])}
                                 for c in cs]
                          for name, cs in cross.items()},
            "nyquist_resolution": 2.0 * float(voxel),
            "volume1": os.path.abspath(args.vol1), "volume2": os.path.abspath(args.vol2),
            "shape": list(v1c.shape), "subvolume": list(sub) if sub else None,
            "mask": args.mask or "none",
            "frequency": [float(f) for f in curve.frequency],
            "fsc": [_json_number(c) for c in curve.fsc],
            "fsc_eo": [_json_number(c) for c in curve.fsc_eo],
            "n_voxels": [int(n) for n in curve.n_voxels],
            "units": {"frequency": "1/A", "resolution": "A"},
            "paper": "Yang, Zhang, Han, ICCV 2021, eq. 9 (FSC) and eq. 10 (FSC_e/o)",
        })
    return 0


# --------------------------------------------------------------------------- evaluate
def cmd_evaluate(args) -> int:
    from ..metrics import central_subvolume, psnr, ssim3d

    sub = _zyx(args.subvolume)
    labels = [s.strip() for s in args.labels.split(",")] if args.labels else \
        [os.path.splitext(os.path.basename(p))[0] for p in args.volumes]
    if len(labels) != len(args.volumes):
        raise SCNetInputError(f"--labels gives {len(labels)} label(s) for {len(args.volumes)} volume(s); "
                              "give one label per volume, comma-separated.")
    if args.data_range is not None and not 0 < args.data_range < math.inf:
        raise SCNetInputError(f"--data-range must be a finite number > 0 (got {args.data_range}).")
    _check_output(args.json, [args.ground_truth] + list(args.volumes))
    from ..io import same_grid
    gt, gi = _read(args.ground_truth)
    vols = []
    for p in args.volumes:  # read and check all before computing anything
        v, vi = _read(p)
        if v.shape != gt.shape:
            raise SCNetInputError(f"Shapes differ: ground truth {args.ground_truth} {gt.shape} vs {p} {v.shape}; "
                                  "compare volumes on the ground truth's grid.")
        same_grid(args.ground_truth, gi, p, vi, "Volume")  # the voxel size too: a score across grids means nothing
        vols.append(v)
    gtc = central_subvolume(gt, sub)
    dr = args.data_range if args.data_range is not None else float(gtc.max() - gtc.min())
    rows = []
    for lab, p, v in zip(labels, args.volumes, vols):
        vc = central_subvolume(v, sub)
        rows.append({"label": lab, "path": os.path.abspath(p),
                     "psnr": psnr(gtc, vc, data_range=dr), "ssim": ssim3d(gtc, vc, data_range=dr)})
    print("| Volume | PSNR (dB) | SSIM |")
    print("|---|---:|---:|")
    for r in rows:
        print(f"| {r['label']} | {r['psnr']:.2f} | {r['ssim']:.3f} |")
    if args.json:
        _write_json(args.json, {
            "ground_truth": os.path.abspath(args.ground_truth),
            "data_range": dr,
            "shape": list(gtc.shape), "subvolume": list(sub) if sub else None,
            "convention": "PSNR = 10 log10(data_range^2 / MSE); SSIM = skimage structural_similarity on the 3D "
                          "array (7^3 window); data_range = max - min of the ground truth unless given",
            "results": [{**r, "psnr": _json_number(r["psnr"])} for r in rows],
        })
    return 0


# --------------------------------------------------------------------------- baseline
_TAKES_DEVICE = BASELINES_WITH_DEVICE


def cmd_baseline(args) -> int:
    from ..baselines import available_baselines, run_baseline
    from ..io import write_volume

    if args.list:
        for name, why in available_baselines().items():
            print(f"{name:9s} {'available' if why is None else 'NOT available: ' + why}")
        return 0
    if args.name not in BASELINES:
        raise SCNetInputError(f"Unknown baseline {args.name!r}; valid baselines: {', '.join(BASELINES)}.")
    if not args.input or not args.output:
        raise SCNetInputError("scnet baseline needs NAME IN.mrc OUT.mrc (or --list).")
    if args.sigma is not None and not args.sigma >= 0:
        raise SCNetInputError(f"--sigma must be >= 0 (got {args.sigma}).")
    why = available_baselines()[args.name]
    if why:
        raise SCNetInputError(f"Baseline {args.name!r} cannot run here: {why}.")
    _check_output(args.output, [args.input])
    opts = {"sigma": args.sigma, "cutoff": args.cutoff, "stages": args.stages, "model": args.topaz_model,
            "epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch, "patch_size": args.patch_size,
            "batch_size": args.batch_size, "seed": args.seed}
    opts = {k: v for k, v in opts.items() if v is not None}
    if args.name in _TAKES_DEVICE:
        from ..device import device_name
        opts["device"] = device_name(args.device).split(",")[0]  # 'auto' -> cpu or cuda:0
    elif args.device not in (None, "cpu", "auto"):
        log.info("baseline %s runs on the CPU; --device %s ignored", args.name, args.device)
    vol, info = _read(args.input)
    t0 = time.time()
    out = run_baseline(args.name, vol, **opts)
    write_volume(args.output, out, voxel_size=info.voxel_size, origin=info.origin)
    print(f"{args.name}: {args.input} -> {args.output} in {time.time() - t0:.1f} s")
    return 0


# --------------------------------------------------------------------------- registration
def register(sub) -> None:
    p = sub.add_parser(
        "fsc", help="Fourier shell correlation (eq. 9) and FSC_e/o (eq. 10) of two volumes",
        description="FSC of two volumes by Fourier shells (eq. 9) and FSC_e/o = 2 FSC/(FSC+1) (eq. 10), "
                    "with the resolutions where they cross the threshold (0.5, Table 3). For FSC_e/o, give the "
                    "reconstructions of the even and odd tilts (each denoised the same way). Non-cubic volumes "
                    "use per-axis normalised frequencies; shells are 1/(N_max * voxel) wide, up to Nyquist.")
    p.add_argument("vol1", metavar="VOL1", help="first volume (MRC), e.g. the even half")
    p.add_argument("vol2", metavar="VOL2", help="second volume (MRC) on the same grid, e.g. the odd half")
    p.add_argument("--voxel-size", type=float, default=None, help="voxel size in A (default: VOL1's header)")
    p.add_argument("--csv", default=None, help="write the curve: shell,frequency,resolution,fsc,fsc_eo")
    p.add_argument("--json", default=None,
                   help="write resolution_fsc_0.5, resolution_fsc_eo_0.5 (A; null if not reached), voxel_size, curve")
    add_subvolume(p, "use a centred sub-volume of this size (the paper: 100,512,512); 0 keeps an axis")
    p.add_argument("--mask", default="none",
                   help="'none' (default), 'soft' (box with 10%% cosine edges) or a mask MRC of the volumes' shape")
    p.add_argument("--threshold", type=float, default=0.5, help="FSC threshold (default 0.5, as in the paper)")
    p.set_defaults(func=cmd_fsc)

    p = sub.add_parser(
        "evaluate", help="PSNR / SSIM of volumes against a ground truth (markdown table)",
        description="PSNR and 3D SSIM of each VOL against the ground truth (paper Tables 1-2). "
                    "data_range = max - min of the ground truth (same for all volumes); no rescaling. "
                    "Prints a markdown table.")
    p.add_argument("--ground-truth", required=True, help="ground-truth volume (MRC)")
    p.add_argument("volumes", metavar="VOL", nargs="+", help="volumes to score (same shape as the ground truth)")
    p.add_argument("--labels", default=None, help="comma-separated labels, one per VOL (default: file names)")
    p.add_argument("--json", default=None, help="also write the results as JSON")
    add_subvolume(p, "score a centred sub-volume only")
    p.add_argument("--data-range", type=float, default=None, help="override the ground truth's max - min")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "baseline", help="denoise with a comparison method: " + " | ".join(BASELINES),
        description="Run one of the paper's comparison methods on a volume. bm4d is optional (pip install "
                    "bm4d==4.2.5, non-commercial licence); n2v trains careamics Noise2Void 3D on the volume "
                    "itself. --sigma is the NOISE std for bm4d (default: estimated) and the FILTER std in "
                    "voxels for gaussian. `scnet baseline --list` shows what can run here.")
    p.add_argument("name", metavar="NAME", nargs="?", help=" | ".join(BASELINES))
    p.add_argument("input", metavar="IN", nargs="?", help="input volume (MRC)")
    p.add_argument("output", metavar="OUT", nargs="?", help="output volume (MRC; voxel size and origin copied)")
    p.add_argument("--list", action="store_true", help="list the baselines and whether they can run here")
    p.add_argument("--sigma", type=float, default=None,
                   help="bm4d: noise std (intensity units; default estimated); gaussian: filter std in voxels (1.5)")
    p.add_argument("--cutoff", type=float, default=None, help="lowpass: cut-off as a fraction of Nyquist (0.3)")
    p.add_argument("--stages", choices=BM4D_STAGES, default=None,
                   help="bm4d: all stages (default) or hard thresholding only (faster)")
    p.add_argument("--topaz-model", default=None, help="topaz3d: unet-3d-10a (default) | unet-3d-20a")
    p.add_argument("--epochs", type=int, default=None, help="n2v: training epochs (10)")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="n2v: batches per epoch (default: careamics')")
    p.add_argument("--patch-size", type=int, default=None, help="n2v: cubic patch size, multiple of 8 (32)")
    p.add_argument("--batch-size", type=int, default=None, help="n2v: batch size (4)")
    p.add_argument("--seed", type=int, default=None, help="n2v: random seed (1)")
    add_device(p, f"{', '.join(BASELINES_WITH_DEVICE)}: auto (the first GPU if any, else CPU), cpu, cuda or cuda:N", default="auto")
    p.set_defaults(func=cmd_baseline)
