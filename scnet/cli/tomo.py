"""``scnet align | filter | reconstruct | phantom | simulate`` -- the tomography substrate on the command line.

All inputs are checked (SCNetInputError -> exit 2) before any output is written.
Outputs carry the voxel size (A) and the MRC origin of the input (or the
given ``--voxel-size`` and a zero origin for synthetic data).
"""
from __future__ import annotations

import argparse
import logging
import os
import time

import numpy as np

from ..choices import PRIOR_FILTERS, RECON_METHODS, TILT_SUBSETS, TOPAZ_2D_MODELS
from ..errors import SCNetInputError
from .options import (add_alignment, add_device, add_phantom, add_reconstruction, add_voxel_size,
                      parse_pair as _pair, parse_zyx)

log = logging.getLogger(__name__)


PHANTOM_FILES = ("phantom.mrc", "phantom_ts.mrcs", "phantom_ts.tlt")
SIMULATION_FILES = ("ground_truth.mrc", "noisy_ts.mrcs", "noisy_ts.tlt", "noisy_rec.mrc", "simulation.json")

# --------------------------------------------------------------------------- parsing helpers

def _shape(text: str):
    return parse_zyx(text, "--shape")


def _voxel_size(value, default):
    if value is None:
        return float(default)
    if not (0 < float(value) < float("inf")):
        raise SCNetInputError(f"--voxel-size must be a finite number > 0 Angstrom (got {value}).")
    return float(value)


def _radial(text: str):
    from ..rules import radial_errors
    r = _pair(text, "--radial")
    for why in radial_errors(*r):
        raise SCNetInputError(why)
    return r


def _check_seed(seed) -> None:
    from ..rules import seed_errors
    for why in seed_errors(seed):
        raise SCNetInputError(why)


def _check_output(path: str, inputs=()) -> None:
    from ..outputs import guard
    guard(outputs=[path], inputs=inputs)


def _read_stack(path: str):
    from ..io import read_volume
    from ..recon import check_stack
    data, info = read_volume(path, check=True, stack=True)
    check_stack(data, name=path)
    return np.asarray(data, dtype=np.float32), info


def _check_binning(binning) -> int:
    if binning is None or int(binning) != binning or binning < 1:
        raise SCNetInputError(f"--bin must be an integer >= 1 (got {binning}).")
    return int(binning)


def _aligned(data, xf_path, binning, name):
    """The stack with its .xf applied (one interpolation per image) and binned; checked before any work."""
    from ..align import apply_xf, bin_stack, read_xf
    xf = read_xf(xf_path, data.shape[0]) if xf_path else None
    if binning > min(data.shape[1:]):
        raise SCNetInputError(f"--bin {binning} is larger than the images of {name} ({data.shape[1]} x "
                              f"{data.shape[2]} px).")
    if xf is not None:
        t0 = time.time()
        data = apply_xf(data, xf)
        log.info("aligned %d images of %s with %s in %.1f s", data.shape[0], name, xf_path, time.time() - t0)
    return bin_stack(data, binning)


# --------------------------------------------------------------------------- commands

def cmd_align(args) -> int:
    from ..io import write_volume
    _check_output(args.output, [args.input, args.xf])
    binning = _check_binning(args.bin)
    if not args.xf and binning == 1:
        raise SCNetInputError("scnet align needs --xf FILE.xf and/or --bin N > 1 (otherwise it would copy the stack).")
    data, info = _read_stack(args.input)
    out = _aligned(data, args.xf, binning, args.input)
    write_volume(args.output, out, info.voxel_size * binning, info.origin)
    log.info("aligned stack %s -> %s %s (%.4g A/px)", args.input, args.output, out.shape, info.voxel_size * binning)
    return 0


def cmd_filter(args) -> int:
    from ..device import resolve_device
    from ..filters import TOPAZ_MODELS_2D, check_cutoff, check_sigma, filter_stack
    from ..io import write_volume
    _check_output(args.output, [args.input])
    check_sigma(args.sigma)  # every option is checked, also those of another --method (never silently ignored)
    check_cutoff(args.cutoff, 0.1)
    if args.patch_size is None or args.patch_size < 0:
        raise SCNetInputError(f"--patch-size must be >= 0 (0 = whole images; got {args.patch_size}).")
    if args.method == "topaz":
        if args.topaz_model not in TOPAZ_MODELS_2D:
            raise SCNetInputError(f"--topaz-model {args.topaz_model!r} unknown; choose {', '.join(TOPAZ_MODELS_2D)}.")
        resolve_device(args.device)
    data, info = _read_stack(args.input)
    t0 = time.time()
    if args.method == "topaz":
        from ..filters import topaz_denoise_2d
        out = topaz_denoise_2d(data, model=args.topaz_model, device=args.device, patch_size=args.patch_size)
    else:
        out = filter_stack(data, args.method, sigma=args.sigma, cutoff=args.cutoff, device=args.device)
    write_volume(args.output, out, info.voxel_size, info.origin)
    log.info("filter %s: %d images in %.1f s -> %s", args.method, data.shape[0], time.time() - t0, args.output)
    return 0


def cmd_reconstruct(args) -> int:
    from ..io import write_volume
    from ..recon import ReconConfig, reconstruct, resolve_thickness, pick_backend
    from ..tiltseries import read_tilt_series, split_even_odd
    _check_output(args.output, [args.input, args.angles, args.xf])
    radial = _radial(args.radial)
    binning = _check_binning(args.bin)
    ts = read_tilt_series(args.input, args.angles)
    thickness = resolve_thickness(args.thickness, ts.data.shape[2] // binning)
    cfg = ReconConfig(thickness=thickness, backend=args.backend, method=args.method,
                      sirt_iterations=args.sirt_iterations, radial=radial, use_gpu=args.imod_gpu)
    pick_backend(cfg.backend)
    if cfg.sirt_iterations < 1:
        raise SCNetInputError(f"--sirt-iterations must be >= 1 (got {cfg.sirt_iterations}).")
    vs = _voxel_size(args.voxel_size, ts.voxel_size) * binning
    data, angles = _aligned(ts.data, args.xf, binning, args.input), ts.angles
    if args.subset != "all":  # the halves of the same aligned images
        even, odd = split_even_odd(data, angles)
        data, angles = even if args.subset == "even" else odd
    t0 = time.time()
    vol = reconstruct(data, angles, cfg)
    write_volume(args.output, vol, vs, ts.origin)
    log.info("reconstructed %s (%d tilts, %s) in %.1f s -> %s %s", args.input, len(angles), args.subset,
             time.time() - t0, args.output, vol.shape)
    return 0


def cmd_phantom(args) -> int:
    from ..io import write_volume
    from ..phantom import check_shape, make_phantom, tilt_angles
    from ..recon import reproject
    from ..tiltseries import write_angles
    _check_seed(args.seed)
    shape = check_shape(_shape(args.shape))
    angles = tilt_angles(args.tilt_range, args.tilt_step)
    vs = _voxel_size(args.voxel_size, 10.0)
    from ..outputs import guard
    guard(outputs=[os.path.join(args.output_dir, n) for n in PHANTOM_FILES], dirs=[args.output_dir])
    t0 = time.time()
    vol = make_phantom(shape, args.seed, vs)
    stack = reproject(vol, angles)
    os.makedirs(args.output_dir, exist_ok=True)
    write_volume(os.path.join(args.output_dir, "phantom.mrc"), vol, vs, (0.0, 0.0, 0.0))
    write_volume(os.path.join(args.output_dir, "phantom_ts.mrcs"), stack, vs, (0.0, 0.0, 0.0))
    write_angles(os.path.join(args.output_dir, "phantom_ts.tlt"), angles)
    log.info("phantom %s seed %d + %d tilts in %.1f s -> %s", shape, args.seed, len(angles), time.time() - t0,
             args.output_dir)
    return 0


def cmd_simulate(args) -> int:
    from ..io import write_volume
    from ..simulate import SimulationConfig, simulate, simulate_from_volume, write_simulation_json
    from ..tiltseries import read_tilt_series, write_angles
    if args.phantom == bool(args.tilt_series):
        raise SCNetInputError("give either --phantom or --tilt-series TS --angles TLT (exactly one source).")
    if args.tilt_series and not args.angles:
        raise SCNetInputError("--tilt-series needs --angles FILE.tlt (one tilt angle per image).")
    from ..outputs import guard
    guard(outputs=[os.path.join(args.output_dir, n) for n in SIMULATION_FILES],
          inputs=[args.tilt_series, args.angles], dirs=[args.output_dir])
    _check_seed(args.seed)
    radial = _radial(args.radial)
    gsig = args.gaussian_sigma if args.gaussian_sigma is not None else (0.0 if args.phantom else 2.0)
    cfg = SimulationConfig(sigma=args.sigma, thickness=args.thickness, gaussian_sigma=gsig, seed=args.seed,
                           backend=args.backend, radial=radial)
    cfg.check()
    from ..recon import pick_backend
    pick_backend(cfg.backend)
    extra = {}
    t0 = time.time()
    if args.phantom:
        from ..phantom import check_shape, make_phantom, tilt_angles
        shape = check_shape(_shape(args.shape))
        angles = tilt_angles(args.tilt_range, args.tilt_step)
        vs = _voxel_size(args.voxel_size, 10.0)
        origin = (0.0, 0.0, 0.0)
        if cfg.thickness is None:
            cfg.thickness = shape[0]
        from ..recon import resolve_thickness
        resolve_thickness(cfg.thickness, shape[2])
        vol = make_phantom(shape, args.seed, vs)
        res = simulate_from_volume(vol, angles, cfg)
        extra.update(source="phantom", shape=list(shape), phantom_seed=args.seed, tilt_range=args.tilt_range,
                     tilt_step=args.tilt_step)
    else:
        ts = read_tilt_series(args.tilt_series, args.angles)
        from ..recon import resolve_thickness
        resolve_thickness(cfg.thickness, ts.data.shape[2])
        vs = _voxel_size(args.voxel_size, ts.voxel_size)
        origin = ts.origin
        res = simulate(ts.data, ts.angles, cfg)
        extra.update(source="tilt series", tilt_series=os.path.abspath(args.tilt_series),
                     angles_file=os.path.abspath(args.angles))
    extra.update(voxel_size=vs, origin=list(origin), seconds=round(time.time() - t0, 2),
                 files={"ground_truth": "ground_truth.mrc", "noisy_stack": "noisy_ts.mrcs",
                        "angles": "noisy_ts.tlt", "noisy_rec": "noisy_rec.mrc"})
    d = args.output_dir
    os.makedirs(d, exist_ok=True)
    write_volume(os.path.join(d, "ground_truth.mrc"), res.ground_truth, vs, origin)
    write_volume(os.path.join(d, "noisy_ts.mrcs"), res.noisy_stack, vs, origin)
    write_angles(os.path.join(d, "noisy_ts.tlt"), res.angles)
    write_volume(os.path.join(d, "noisy_rec.mrc"), res.noisy_rec, vs, origin)
    write_simulation_json(os.path.join(d, "simulation.json"), res, extra)
    log.info("simulated sigma=%g in %.1f s -> %s", cfg.sigma, time.time() - t0, d)
    return 0


# --------------------------------------------------------------------------- registration

def register(sub) -> None:
    fmt = argparse.ArgumentDefaultsHelpFormatter

    p = sub.add_parser(
        "filter", formatter_class=fmt,
        help="2D-filter every image of a tilt stack (the paper's 2D filter, §4.3)",
        description="Filter each tilt image of IN_STACK (n, Y, X) and write OUT_STACK with the same voxel size "
                    "and origin. 'topaz' = Topaz-Denoise pretrained 2D U-Net (the paper's choice); 'gaussian' "
                    "(--sigma in pixels); 'lowpass' (--cutoff as a fraction of Nyquist, raised-cosine edge).")
    p.add_argument("input", metavar="IN_STACK", help="tilt stack (.mrc/.mrcs/.st)")
    p.add_argument("output", metavar="OUT_STACK", help="filtered stack to write")
    p.add_argument("--method", choices=PRIOR_FILTERS, default="topaz")
    p.add_argument("--topaz-model", default="unet", choices=TOPAZ_2D_MODELS,
                   help="Topaz 2D model (unet = unet_L2_v0.2.2, the paper's)")
    p.add_argument("--sigma", type=float, default=1.5, help="Gaussian std in pixels (--method gaussian)")
    p.add_argument("--cutoff", type=float, default=0.5, help="low-pass cut-off, fraction of Nyquist (--method lowpass)")
    p.add_argument("--patch-size", type=int, default=1024,
                   help="Topaz: tile images larger than this (+128 px context) to bound memory; 0 = whole images")
    add_device(p, "Topaz: auto (first GPU if any, else CPU), cpu, cuda or cuda:N", default="auto")
    p.set_defaults(func=cmd_filter)

    p = sub.add_parser(
        "align", formatter_class=fmt,
        help="apply an IMOD .xf alignment to a tilt stack (one interpolation per image), and/or bin it",
        description="Each image of IN_STACK is resampled once through its line of the .xf (IMOD newstack "
                    "conventions: x' = A11 (x - NX/2) + A12 (y - NY/2) + NX/2 + DX, likewise y'; the tilt axis "
                    "lands on Y), then --bin averages pixel blocks. OUT_STACK keeps the origin; its voxel size is "
                    "the input's times --bin. Filter and reconstruct OUT_STACK, so the prior, the tomogram and "
                    "the even/odd halves come from the same aligned images.")
    p.add_argument("input", metavar="IN_STACK", help="raw tilt stack (.mrc/.mrcs/.st), images in .xf order")
    p.add_argument("output", metavar="OUT_STACK", help="aligned stack to write")
    add_alignment(p)
    p.set_defaults(func=cmd_align)

    p = sub.add_parser(
        "reconstruct", formatter_class=fmt,
        help="reconstruct a tilt series into a tomogram (thickness, Y, X)",
        description="Weighted back-projection (or SIRT) of a tilt stack with tilt axis along Y. Output is "
                    "(Z=thickness, Y, X). Positive tilt angles move an object at +z towards +x (IMOD convention). "
                    "backend 'builtin' = ramp x IMOD-style radial filter, angular-spacing weights, astra 2D CPU "
                    "back-projection per Y slice; 'imod' = IMOD's tilt program ($IMOD_DIR/bin/tilt); 'auto' = IMOD "
                    "if found, else builtin.")
    p.add_argument("input", metavar="IN_STACK", help="tilt stack (.mrc/.mrcs/.st), images sorted by angle")
    p.add_argument("output", metavar="OUT_VOL", help="tomogram to write (.mrc)")
    p.add_argument("--angles", required=True, metavar="FILE.tlt", help="tilt angles, one per line (deg)")
    p.add_argument("--thickness", type=int, default=None,
                   help="output thickness in (binned) pixels (default X/2)")
    add_alignment(p)
    add_reconstruction(p, "auto")
    p.add_argument("--method", choices=RECON_METHODS, default="wbp")
    p.add_argument("--sirt-iterations", type=int, default=30)
    p.add_argument("--subset", choices=TILT_SUBSETS, default="all",
                   help="use all tilts, or only even/odd acquisition indices (for FSC_e/o, eq. 10)")
    add_voxel_size(p)
    p.add_argument("--imod-gpu", action="store_true", help="IMOD back-end: pass -UseGPU 0 to tilt")
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser(
        "phantom", formatter_class=fmt,
        help="write the synthetic cellular phantom and its noise-free tilt series",
        description="Writes DIR/phantom.mrc (clean volume: bilayer membranes, vesicles, filaments, "
                    "macromolecules, low-frequency background), DIR/phantom_ts.mrcs (projections with a missing "
                    "wedge) and DIR/phantom_ts.tlt.")
    p.add_argument("--output-dir", required=True, metavar="DIR")
    add_phantom(p)
    p.add_argument("--seed", type=int, default=0)
    add_voxel_size(p, 10.0, "10; sets feature sizes")
    p.set_defaults(func=cmd_phantom)

    p = sub.add_parser(
        "simulate", formatter_class=fmt,
        help="make a simulated noisy dataset with ground truth (paper §5.2, Fig. 4)",
        description="From a raw tilt series: reconstruct, Gaussian-filter (sigma 2) -> ground-truth volume, "
                    "re-project, normalise projections to 0..255, add AWGN of std --sigma to the projections, "
                    "reconstruct -> noisy_rec. From --phantom: the clean phantom is re-projected directly. "
                    "ground_truth.mrc = reconstruction of the clean projections with the same reconstruction "
                    "as noisy_rec.mrc (same grid, scale and missing wedge). Writes DIR/ground_truth.mrc, "
                    "DIR/noisy_ts.mrcs, DIR/noisy_ts.tlt, DIR/noisy_rec.mrc, DIR/simulation.json.")
    p.add_argument("--output-dir", required=True, metavar="DIR")
    p.add_argument("--phantom", action="store_true", help="start from the built-in phantom")
    p.add_argument("--tilt-series", metavar="TS", default=None, help="raw tilt stack to start from")
    p.add_argument("--angles", metavar="TLT", default=None, help="its tilt angles (.tlt/.rawtlt)")
    p.add_argument("--sigma", type=float, default=15.0, help="AWGN std on the 0..255 projection scale (paper: 10/15/20)")
    p.add_argument("--thickness", type=int, default=None,
                   help="reconstruction thickness (default: phantom Z, or X/2 for a tilt series)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (and of the phantom)")
    add_phantom(p, " (--phantom)")
    p.add_argument("--gaussian-sigma", type=float, default=None,
                   help="3D Gaussian (voxels) making the ground truth (default 2 for a tilt series as in §5.2, "
                        "0 for the already clean phantom)")
    add_reconstruction(p, "builtin", "reconstruction back-end for every reconstruction of the simulation")
    add_voxel_size(p, None, "the stack's, or 10 for the phantom")
    p.set_defaults(func=cmd_simulate)
