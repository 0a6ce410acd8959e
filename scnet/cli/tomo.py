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

from ..config_tomo import AlignConfig, FilterConfig, PhantomConfig, ReconstructConfig, SimulationConfig
from ..errors import SCNetInputError
from .options import add_declared

log = logging.getLogger(__name__)


PHANTOM_FILES = ("phantom.mrc", "phantom_ts.mrcs", "phantom_ts.tlt")
SIMULATION_FILES = ("ground_truth.mrc", "noisy_ts.mrcs", "noisy_ts.tlt", "noisy_rec.mrc", "simulation.json")

# --------------------------------------------------------------------------- helpers

def _check_output(path: str, inputs=()) -> None:
    from ..outputs import guard
    guard(outputs=[path], inputs=inputs)


def _read_stack(path: str):
    from ..io import read_volume
    from ..recon import check_stack
    data, info = read_volume(path, check=True, stack=True)
    check_stack(data, name=path)
    return np.asarray(data, dtype=np.float32), info


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
    binning = AlignConfig.from_args(args).bin
    _check_output(args.output, [args.input, args.xf])
    if not args.xf and binning == 1:
        raise SCNetInputError("scnet align needs --xf FILE.xf and/or --bin N > 1 (otherwise it would copy the stack).")
    data, info = _read_stack(args.input)
    out = _aligned(data, args.xf, binning, args.input)
    write_volume(args.output, out, info.voxel_size * binning, info.origin)
    log.info("aligned stack %s -> %s %s (%.4g A/px)", args.input, args.output, out.shape, info.voxel_size * binning)
    return 0


def cmd_filter(args) -> int:
    from ..device import resolve_device
    from ..filters import filter_stack
    from ..io import write_volume
    cfg = FilterConfig.from_args(args)  # every option is checked, also those of another method
    _check_output(args.output, [args.input])
    if cfg.method == "topaz":
        resolve_device(cfg.device)
    data, info = _read_stack(args.input)
    t0 = time.time()
    out = filter_stack(data, cfg)
    write_volume(args.output, out, info.voxel_size, info.origin)
    log.info("filter %s: %d images in %.1f s -> %s", cfg.method, data.shape[0], time.time() - t0, args.output)
    return 0


def cmd_reconstruct(args) -> int:
    from ..io import write_volume
    from ..recon import ReconConfig, reconstruct, resolve_thickness, pick_backend
    from ..tiltseries import read_tilt_series, split_even_odd
    opts = ReconstructConfig.from_args(args)  # every option checked before any file is read
    binning = AlignConfig.from_args(args).bin
    _check_output(args.output, [args.input, args.angles, args.xf])
    ts = read_tilt_series(args.input, args.angles)
    thickness = resolve_thickness(opts.thickness, ts.data.shape[2] // binning)
    cfg = ReconConfig(thickness=thickness, backend=opts.backend, method=opts.method,
                      sirt_iterations=opts.sirt_iterations, radial=opts.radial_pair(), use_gpu=opts.imod_gpu)
    pick_backend(cfg.backend)
    vs = (opts.voxel_size or ts.voxel_size) * binning
    data, angles = _aligned(ts.data, args.xf, binning, args.input), ts.angles
    if opts.subset != "all":  # the halves of the same aligned images
        even, odd = split_even_odd(data, angles)
        data, angles = even if opts.subset == "even" else odd
    t0 = time.time()
    vol = reconstruct(data, angles, cfg)
    write_volume(args.output, vol, vs, ts.origin)
    log.info("reconstructed %s (%d tilts, %s) in %.1f s -> %s %s", args.input, len(angles), opts.subset,
             time.time() - t0, args.output, vol.shape)
    return 0


def _phantom(cfg):
    """The phantom volume and its tilt angles, as ``cfg`` (a validated PhantomConfig) declares them."""
    from ..phantom import make_phantom, tilt_angles
    return make_phantom(cfg.shape_zyx(), cfg.seed, cfg.voxel_size), tilt_angles(cfg.tilt_range, cfg.tilt_step)


def cmd_phantom(args) -> int:
    from ..io import write_volume
    from ..outputs import guard
    from ..recon import reproject
    from ..tiltseries import write_angles
    cfg = PhantomConfig.from_args(args)
    guard(outputs=[os.path.join(args.output_dir, n) for n in PHANTOM_FILES], dirs=[args.output_dir])
    t0 = time.time()
    vol, angles = _phantom(cfg)
    stack = reproject(vol, angles)
    os.makedirs(args.output_dir, exist_ok=True)
    vs, zero = cfg.voxel_size, (0.0, 0.0, 0.0)
    write_volume(os.path.join(args.output_dir, "phantom.mrc"), vol, vs, zero)
    write_volume(os.path.join(args.output_dir, "phantom_ts.mrcs"), stack, vs, zero)
    write_angles(os.path.join(args.output_dir, "phantom_ts.tlt"), angles)
    log.info("phantom %s seed %d + %d tilts in %.1f s -> %s", vol.shape, cfg.seed, len(angles), time.time() - t0,
             args.output_dir)
    return 0


def cmd_simulate(args) -> int:
    from ..io import write_volume
    from ..outputs import guard
    from ..recon import pick_backend, resolve_thickness
    from ..simulate import simulate, simulate_from_volume, write_simulation_json
    from ..tiltseries import read_tilt_series, write_angles
    cfg = SimulationConfig.from_args(args)
    # the phantom's options are checked whatever the source; its seed is the simulation's, its voxel size
    # the one given (else the phantom's)
    phantom = PhantomConfig.from_args(args)
    if args.phantom == bool(args.tilt_series):
        raise SCNetInputError("give either --phantom or --tilt-series TS --angles TLT (exactly one source).")
    if args.tilt_series and not args.angles:
        raise SCNetInputError("--tilt-series needs --angles FILE.tlt (one tilt angle per image).")
    guard(outputs=[os.path.join(args.output_dir, n) for n in SIMULATION_FILES],
          inputs=[args.tilt_series, args.angles], dirs=[args.output_dir])
    pick_backend(cfg.backend)
    extra = {}
    t0 = time.time()
    if args.phantom:
        shape = phantom.shape_zyx()
        resolve_thickness(cfg.thickness or shape[0], shape[2])
        vs, origin = phantom.voxel_size, (0.0, 0.0, 0.0)
        vol, angles = _phantom(phantom)
        res = simulate_from_volume(vol, angles, cfg)
        extra.update(source="phantom", shape=list(shape), phantom_seed=cfg.seed, tilt_range=phantom.tilt_range,
                     tilt_step=phantom.tilt_step)
    else:
        ts = read_tilt_series(args.tilt_series, args.angles)
        resolve_thickness(cfg.thickness, ts.data.shape[2])
        vs = cfg.voxel_size or ts.voxel_size
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

def _add_alignment(p) -> None:
    """``--xf`` (a file) and the declared ``--bin``: the tilt images aligned once (scnet.align) first."""
    p.add_argument("--xf", default=None, metavar="FILE.xf",
                   help="IMOD transforms (one line A11 A12 A21 A22 DX DY per image, stack order) applied to the "
                        "images first: one interpolation each, the tilt axis onto Y (IMOD newstack conventions)")
    add_declared(p, AlignConfig)


def register(sub) -> None:
    p = sub.add_parser(
        "filter",
        help="2D-filter every image of a tilt stack (the paper's 2D filter, §4.3)",
        description="Filter each tilt image of IN_STACK (n, Y, X) and write OUT_STACK with the same voxel size "
                    "and origin. 'topaz' = Topaz-Denoise pretrained 2D U-Net (the paper's choice); 'gaussian' "
                    "(--sigma in pixels); 'lowpass' (--cutoff as a fraction of Nyquist, raised-cosine edge).")
    p.add_argument("input", metavar="IN_STACK", help="tilt stack (.mrc/.mrcs/.st)")
    p.add_argument("output", metavar="OUT_STACK", help="filtered stack to write")
    add_declared(p, FilterConfig)
    p.set_defaults(func=cmd_filter)

    p = sub.add_parser(
        "align", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="apply an IMOD .xf alignment to a tilt stack (one interpolation per image), and/or bin it",
        description="Each image of IN_STACK is resampled once through its line of the .xf (IMOD newstack "
                    "conventions: x' = A11 (x - NX/2) + A12 (y - NY/2) + NX/2 + DX, likewise y'; the tilt axis "
                    "lands on Y), then --bin averages pixel blocks. OUT_STACK keeps the origin; its voxel size is "
                    "the input's times --bin. Filter and reconstruct OUT_STACK, so the prior, the tomogram and "
                    "the even/odd halves come from the same aligned images.")
    p.add_argument("input", metavar="IN_STACK", help="raw tilt stack (.mrc/.mrcs/.st), images in .xf order")
    p.add_argument("output", metavar="OUT_STACK", help="aligned stack to write")
    _add_alignment(p)
    p.set_defaults(func=cmd_align)

    p = sub.add_parser(
        "reconstruct", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="reconstruct a tilt series into a tomogram (thickness, Y, X)",
        description="Weighted back-projection (or SIRT) of a tilt stack with tilt axis along Y. Output is "
                    "(Z=thickness, Y, X). Positive tilt angles move an object at +z towards +x (IMOD convention). "
                    "backend 'builtin' = ramp x IMOD-style radial filter, angular-spacing weights, astra 2D CPU "
                    "back-projection per Y slice; 'imod' = IMOD's tilt program ($IMOD_DIR/bin/tilt); 'auto' = IMOD "
                    "if found, else builtin.")
    p.add_argument("input", metavar="IN_STACK", help="tilt stack (.mrc/.mrcs/.st), images sorted by angle")
    p.add_argument("output", metavar="OUT_VOL", help="tomogram to write (.mrc)")
    p.add_argument("--angles", required=True, metavar="FILE.tlt", help="tilt angles, one per line (deg)")
    _add_alignment(p)
    add_declared(p, ReconstructConfig)
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser(
        "phantom",
        help="write the synthetic cellular phantom and its noise-free tilt series",
        description="Writes DIR/phantom.mrc (clean volume: bilayer membranes, vesicles, filaments, "
                    "macromolecules, low-frequency background), DIR/phantom_ts.mrcs (projections with a missing "
                    "wedge) and DIR/phantom_ts.tlt.")
    p.add_argument("--output-dir", required=True, metavar="DIR")
    add_declared(p, PhantomConfig)
    p.set_defaults(func=cmd_phantom)

    p = sub.add_parser(
        "simulate",
        help="make a simulated noisy dataset with ground truth (paper §5.2, Fig. 4)",
        description="From a raw tilt series: reconstruct, Gaussian-filter (--gaussian-sigma) -> ground-truth "
                    "volume, re-project, normalise projections to 0..255, add AWGN of std --sigma to the "
                    "projections, reconstruct -> noisy_rec. From --phantom: the clean phantom (--shape, "
                    "--tilt-range, --tilt-step) is re-projected directly. "
                    "ground_truth.mrc = reconstruction of the clean projections with the same reconstruction "
                    "as noisy_rec.mrc (same grid, scale and missing wedge). Writes DIR/ground_truth.mrc, "
                    "DIR/noisy_ts.mrcs, DIR/noisy_ts.tlt, DIR/noisy_rec.mrc, DIR/simulation.json.")
    p.add_argument("--output-dir", required=True, metavar="DIR")
    p.add_argument("--phantom", action="store_true", help="start from the built-in phantom")
    p.add_argument("--tilt-series", metavar="TS", default=None, help="raw tilt stack to start from")
    p.add_argument("--angles", metavar="TLT", default=None, help="its tilt angles (.tlt/.rawtlt)")
    add_declared(p, SimulationConfig)
    add_declared(p, PhantomConfig, exclude=("seed", "voxel_size"))  # --seed, --voxel-size: the simulation's
    p.set_defaults(func=cmd_simulate)
