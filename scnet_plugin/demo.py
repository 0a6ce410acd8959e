"""`make demo`: the whole SC-Net chain in a local Scipion project, on the built-in phantom.

    python -m scnet_plugin.demo --output demo_output [--shape 64,128,128] [--sigma 15]

Creates the project ``scnet_demo`` (its own sqlite, under $SCIPION_USER_DATA/projects,
re-created each run), runs simulate -> prepare -> train -> denoise -> FSC e/o
-> evaluate, then writes PNG figures and a metrics table into the output folder.
``--fsc independent`` (``make demo FSC=independent``) adds the honest FSC e/o (each half denoised
by its own network: two more trainings).
The project stays on disk and opens in the Scipion GUI.
"""
import argparse
import os
import sys
import time

from .constants import TTA_CHOICES

PROJECT = "scnet_demo"
FSC_CHOICES = ("halves", "independent")  # `make demo FSC=independent`


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--output", default="demo_output", help="folder for figures and the metrics table")
    ap.add_argument("--shape", default="64,128,128", help="phantom Z,Y,X (voxels)")
    ap.add_argument("--sigma", type=float, default=15.0, help="AWGN sigma on the 0..255 projection scale")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None,
                    help="fixed epochs (default: the protocol's, i.e. a user's: train until converged)")
    ap.add_argument("--iterations", type=int, default=None, help="iterations per epoch (default: the protocol's)")
    ap.add_argument("--patch", type=int, default=None, help="patch size (default: the protocol's)")
    ap.add_argument("--tta", type=int, default=None, choices=TTA_CHOICES,
                    help="test-time flips when denoising (default: the protocol's)")
    ap.add_argument("--fsc", choices=FSC_CHOICES, default=FSC_CHOICES[0],
                    help="FSC e/o measures: 'halves' = the halves as denoised (fast; one network for both halves "
                         "flatters), 'independent' = also the honest measure, each half denoised by its own network "
                         "(two more trainings: about 15 more minutes on 2 CPU cores) [halves]")
    ap.add_argument("--project", default=PROJECT)
    args = ap.parse_args(argv)
    out = os.path.abspath(args.output)
    os.makedirs(out, exist_ok=True)
    t0 = time.time()

    from pyworkflow.project import Manager

    from . import Plugin
    from .project_settings import useTomographyView
    from .workflow import run_chain, simulate_phantom
    errors = Plugin.engineErrors()
    if errors:
        sys.exit("\n".join(errors))

    shape = tuple(int(v) for v in args.shape.split(","))

    manager = Manager()
    if manager.hasProject(args.project):
        manager.deleteProject(args.project)
    project = manager.createProject(args.project)
    os.chdir(project.getPath())
    useTomographyView(project.getPath())  # the GUI opens on tomo's tree, where SC-Net's protocols are

    def new(cls, **kw):
        return project.newProtocol(cls, **kw)

    def launch(prot):
        t = time.time()
        project.launchProtocol(prot, wait=True)
        if prot.isFailed():
            sys.exit(f"[demo] {prot.getRunName()} failed: {prot.getErrorMessage()}\n"
                     f"See its log: {os.path.join(project.getPath(), prot.getLogPaths()[0])}")
        print(f"[demo]   {prot.getRunName()} finished in {time.time() - t:.0f} s", flush=True)
        return prot

    # the user's defaults unless overridden on the command line
    train = {k: v for k, v in dict(patchSize=args.patch, epochs=args.epochs, iterationsPerEpoch=args.iterations).items()
             if v is not None}
    denoise = {} if args.tta is None else dict(tta=TTA_CHOICES.index(args.tta))  # EnumParam index
    print(f"[demo] simulating the built-in phantom {shape} (sigma {args.sigma}) ...", flush=True)
    sim = simulate_phantom(new, launch, shape=shape, sigma=args.sigma, seed=args.seed)
    prots = run_chain(new, launch, sim.NoisyTiltSeries, thickness=shape[0], train=train, denoise=denoise,
                      groundTruth=sim.GroundTruth, log=lambda m: print(m, flush=True),
                      independentFsc=args.fsc == "independent")
    prots["simulate"] = sim
    write_report(prots, out, sim.GroundTruth.getFirstItem().getFileName())
    print(f"\n[demo] done in {time.time() - t0:.0f} s. Figures and metrics in {out}")
    print(f"[demo] project on disk: {project.getPath()}")
    print("[demo] open it in the Scipion GUI (needs a display):\n"
          f"    make gui PROJECT={args.project}\n"
          f"or, with this folder's SCIPION_HOME / SCIPION_USER_DATA exported:\n"
          f"    {sys.executable} -O -m pyworkflow.apps.pw_project {args.project}")


def write_report(prots, out, gt):
    """PNG figures (slices, training curves, FSC e/o) and metrics.md in ``out``."""
    from .constants import TRAIN_SUMMARY
    from .viewers.figures import fsc_figure, loss_curves_figure, read_loss_weights, scores_table, slices_figure
    from .workflow import TS_ID
    prep, train, dn, fsc, ev = (prots.get(k) for k in ("prepare", "train", "denoise", "fsc", "evaluate"))
    gold = prots.get("fsc_independent")
    vols = {"ground truth": gt,
            "noisy": prep.Tomograms.getFirstItem().getFileName(),
            "prior (Topaz 2D)": prep.PriorTomograms.getFirstItem().getFileName(),
            "SC-Net": dn.Tomograms.getFirstItem().getFileName()}
    slices_figure(vols, os.path.join(out, "slices.png"), title="Central slices (XY, XZ, YZ)")
    model = getattr(train, "Models", None)
    model = model.getFirstItem() if model is not None else train.Model
    loss_curves_figure(model.getLossLog(), os.path.join(out, "training_curves.png"),
                       weights=read_loss_weights(os.path.join(os.path.dirname(model.getLossLog()), TRAIN_SUMMARY)))
    curves = {"noisy": fsc._getExtraPath(f"{TS_ID}_noisy_fsc.csv"),
              "SC-Net, one network for both halves (flatters)": fsc._getExtraPath(f"{TS_ID}_SC-Net_fsc.csv")}
    if gold is not None:
        curves["SC-Net, independent networks"] = gold._getExtraPath(f"{TS_ID}_SC-Net_independent_fsc.csv")
    fsc_figure(curves, os.path.join(out, "fsc_eo.png"),
               title="FSC e/o of the halves; honest measure: independent networks (one per half)")
    lines = ["# SC-Net demo: metrics", "", "PSNR / SSIM against the simulation's ground truth (Tables 1-2 layout):", ""]
    if ev is not None:
        for tsId, rows in ev.results().items():  # the protocol's Scores output
            lines.append(scores_table(rows, f"Tomogram {tsId}"))
    lines += ["", "FSC e/o, first crossings (Table 3 layout; 'rises again' = the curve climbs back above the",
              "threshold after its first crossing):", "",
              "| Volume | Measure | 0.5 (A) | 0.143 (A) |", "|---|---|---:|---:|"]
    for prot in (fsc, gold):
        if prot is None:
            continue
        for (label, tsId), cs in sorted(prot.crossings().items()):
            if prot is gold and label == "noisy":  # the same noisy halves as in `fsc`
                continue
            cells = [("%.1f" % c["resolution"] if c["resolution"] is not None else "not reached")
                     + (" (rises again)" if c["rises_again"] else "") for c in cs[:2]]
            measure = "independent networks" if prot.isGold() and label != "noisy" else \
                "halves as given" + (" (one network: flatters)" if label != "noisy" else "")
            lines.append(f"| {tsId} {label} | {measure} | {cells[0]} | {cells[1]} |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "metrics.md"), "w") as fh:
        fh.write(text)
    print("\n" + text)
    for src in ("slices.png", "training_curves.png", "fsc_eo.png"):
        print(f"[demo] figure: {os.path.join(out, src)}")


if __name__ == "__main__":
    main()
