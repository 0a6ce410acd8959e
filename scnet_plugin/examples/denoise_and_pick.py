"""Scripted Scipion project: denoise tilt series with SC-Net, then hand the denoised
tomograms to tomo's own protocols (import coordinates, extract them onto the raw tomograms).

Run it with the Scipion environment set (``make shell`` opens a shell with it; or
``make shell CMD="python scnet_plugin/examples/denoise_and_pick.py --help"``):

    # your data: aligned tilt series <tsId>.mrcs + <tsId>.tlt, coordinates <tsId>.txt ("x y z" per line)
    python scnet_plugin/examples/denoise_and_pick.py --tilt-series DIR --sampling-rate 10 --coordinates CDIR
    # no data at hand: two small simulated phantoms and made-up coordinates
    python scnet_plugin/examples/denoise_and_pick.py --simulate 2

Every SC-Net output tomogram is written as <tsId>.mrc, so tomo's coordinate import pairs
<tsId>.txt with the right tomogram. The project (default ``scnet_example``) opens in the
Tomography view of the GUI: ``make gui PROJECT=scnet_example``.
"""
import argparse
import os
import sys


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", default="scnet_example", help="project name (re-created)")
    ap.add_argument("--tilt-series", help="folder with <tsId>.mrcs + <tsId>.tlt (aligned, tilt axis along Y)")
    ap.add_argument("--sampling-rate", type=float, default=10.0, help="A/px of the tilt series")
    ap.add_argument("--thickness", type=int, default=0, help="tomogram thickness in px (0 = half the width)")
    ap.add_argument("--coordinates", help="folder with <tsId>.txt coordinate files (x y z, px)")
    ap.add_argument("--simulate", type=int, default=0, metavar="N",
                    help="no data: simulate N small phantom tilt series (and coordinates) instead")
    ap.add_argument("--work", default=None, help="folder for simulated inputs (default: next to the project)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=3, help="training iterations per epoch")
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument("--base-width", type=int, default=4, help="network width (8 = the plugin's default)")
    args = ap.parse_args(argv)
    if not args.simulate and not args.tilt_series:
        ap.error("give --tilt-series DIR (your data) or --simulate N (a small phantom)")
    return args


def simulated_inputs(work, n, shape=(32, 48, 48), sr=10.0):
    """N phantom tilt series TS_01.. in work/tilt_series, coordinates <tsId>.txt in work/coords
    (tomogram i gets i + 2 coordinates, so a mix-up shows; tomo's txt reader needs >= 2 lines)."""
    from scnet_plugin.workflow import simulate_phantom_files
    tsDir, ids = None, [f"TS_{i + 1:02d}" for i in range(n)]
    for i, tsId in enumerate(ids):
        tsDir, _ = simulate_phantom_files(work, shape=shape, sigma=15, seed=i, voxelSize=sr, tiltStep=6, tsId=tsId)
    cDir = os.path.join(work, "coords")
    os.makedirs(cDir, exist_ok=True)
    for i, tsId in enumerate(ids):
        with open(os.path.join(cDir, f"{tsId}.txt"), "w") as fh:
            for k in range(i + 2):
                fh.write(f"{10 + 5 * k} {12 + 4 * k} {8 + 2 * k}\n")
    return tsDir, cDir


def run(args):
    """Create the project, run the chain; returns {name: protocol}."""
    from pyworkflow.project import Manager
    from tomo.protocols import ProtImportCoordinates3D, ProtImportTs, ProtTomoExtractCoords

    from scnet_plugin import Plugin
    from scnet_plugin.project_settings import useTomographyView
    from scnet_plugin.protocols import ProtSCNetDenoise, ProtSCNetPrepareTomograms, ProtSCNetTrain
    errors = Plugin.engineErrors()
    if errors:
        sys.exit("\n".join(errors))

    manager = Manager()
    if manager.hasProject(args.project):
        manager.deleteProject(args.project)
    project = manager.createProject(args.project)
    os.chdir(project.getPath())  # paths inside a project are relative to its folder
    useTomographyView(project.getPath())
    tsDir, cDir, sr, thickness = args.tilt_series, args.coordinates, args.sampling_rate, args.thickness
    if args.simulate:
        tsDir, cDir = simulated_inputs(os.path.abspath(args.work or os.path.join(project.getPath(), "inputs")),
                                       args.simulate, sr=sr)
        thickness = 32

    def launch(prot):
        project.launchProtocol(prot, wait=True)
        if not prot.isFinished():
            sys.exit(f"{prot.getRunName()} failed: {prot.getErrorMessage()}")
        print(f"[example] {prot.getRunName()}: done", flush=True)
        return prot

    p = {}
    p["import"] = launch(project.newProtocol(
        ProtImportTs, filesPath=os.path.abspath(tsDir), filesPattern="{TS}.mrcs", anglesFrom=2,  # .tlt next to it
        samplingRate=sr, voltage=300, sphericalAberration=2.7, amplitudeContrast=0.1,
        tiltAxisAngle=0.0, dosePerFrame=2.0))
    prep = project.newProtocol(ProtSCNetPrepareTomograms, thickness=thickness, backend=1, priorFilter=1,
                               doEvenOdd=False)  # Gaussian prior: quick; Topaz (0) is the paper's
    prep.inputSetOfTiltSeries.set(p["import"].outputTiltSeries)
    p["prepare"] = launch(prep)
    # trainMode 1 = one model for all: ONE training on every tomogram of the set, applied to each
    train = project.newProtocol(ProtSCNetTrain, trainMode=1, patchSize=args.patch, batchSize=2,
                                epochs=args.epochs, iterationsPerEpoch=args.iterations, baseWidth=args.base_width)
    train.inputTomograms.set(prep.Tomograms)
    train.inputPriors.set(prep.PriorTomograms)
    p["train"] = launch(train)
    dn = project.newProtocol(ProtSCNetDenoise)
    dn.inputModel.set(train.Model)
    dn.inputTomograms.set(prep.Tomograms)
    p["denoise"] = launch(dn)
    if cDir:
        # tomo's import matches <tsId>.txt to the tomogram file <tsId>.mrc
        coords = project.newProtocol(ProtImportCoordinates3D, filesPath=os.path.abspath(cDir),
                                     filesPattern="*.txt", importFrom=1, boxSize=8)  # 1 = txt
        coords.importTomograms.set(dn.Tomograms)
        p["coordinates"] = launch(coords)
        ext = project.newProtocol(ProtTomoExtractCoords)  # same coordinates on the raw tomograms, by tsId
        ext.inputSubTomos.set(coords.outputCoordinates)
        ext.inputTomos.set(prep.Tomograms)
        p["extract"] = launch(ext)
    print(f"[example] project: {project.getPath()}")
    return p


def main(argv=None):
    return run(parse(argv))


if __name__ == "__main__":
    main()
