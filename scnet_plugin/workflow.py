"""The SC-Net chain as a scripted Scipion project run (used by ``scnet_plugin.demo``,
the examples and the end-to-end tests).

    SC-Net simulate (§5.2 on the built-in phantom) -> SC-Net prepare
    -> SC-Net train -> SC-Net denoise -> SC-Net FSC e/o (halves as given, and independent networks)
    -> SC-Net evaluate (PSNR/SSIM against the simulation's GroundTruth output)

(or, from a folder of tilt series, tomo 'import tilt-series' first: :func:`import_tilt_series`).

``new(cls, **params)`` and ``launch(prot)`` are passed in, so the same chain runs
with a plain ``Project`` (the demo) or inside a pyworkflow ``BaseTest``.
"""
import os
import shutil
import subprocess

from scnet.config_tomo import PhantomConfig, SimulationConfig

from .protocols.protocol_simulate import PHANTOM_TS_ID

TS_ID = PHANTOM_TS_ID  # tsId of the simulated phantom
_P, _S = PhantomConfig(), SimulationConfig()  # the declared defaults (scnet.config_tomo)


def simulate_phantom(new, launch, shape=_P.shape_zyx(), sigma=_S.sigma, seed=_S.seed, voxelSize=_P.voxel_size,
                     tiltStep=_P.tilt_step):
    """Launch ``ProtSCNetSimulate`` on the built-in phantom (the one simulation path); returns it.

    Its outputs feed the chain: ``NoisyTiltSeries`` (to :func:`run_chain`) and ``GroundTruth``
    (to evaluate).
    """
    from .protocols import ProtSCNetSimulate
    z, y, x = shape
    return launch(new(ProtSCNetSimulate, source=0, phantomShape=f"{z},{y},{x}", samplingRate=voxelSize,
                      tiltStep=tiltStep, sigma=sigma, seed=seed, thickness=z))


def simulate_phantom_files(outDir, shape=_P.shape_zyx(), sigma=_S.sigma, seed=_S.seed, voxelSize=_P.voxel_size,
                           tiltStep=_P.tilt_step, tsId=TS_ID):
    """Tilt-series FILES for tomo's importer, outside any project (tests and examples that start,
    as a user does, from a folder of <tsId>.mrcs + <tsId>.tlt): the same engine simulation
    (``scnet simulate --phantom``) that the simulate protocol runs.

    Returns (tilt-series folder, ground-truth MRC path).
    """
    from . import Plugin
    simDir = os.path.join(outDir, "simulation" if tsId == TS_ID else f"simulation_{tsId}")
    os.makedirs(simDir, exist_ok=True)
    z, y, x = shape
    cmd = [Plugin.getScnetCommand(), "simulate", "--phantom", "--output-dir", simDir,
           "--shape", f"{z},{y},{x}", "--seed", str(seed), "--sigma", str(sigma),
           "--voxel-size", str(voxelSize), "--tilt-step", str(tiltStep), "--thickness", str(z)]
    subprocess.run(cmd, check=True, env=Plugin.getEnviron())
    tsDir = os.path.join(outDir, "tilt_series")
    os.makedirs(tsDir, exist_ok=True)
    shutil.copy(os.path.join(simDir, "noisy_ts.mrcs"), os.path.join(tsDir, f"{tsId}.mrcs"))
    shutil.copy(os.path.join(simDir, "noisy_ts.tlt"), os.path.join(tsDir, f"{tsId}.tlt"))
    return tsDir, os.path.join(simDir, "ground_truth.mrc")


def import_tilt_series(new, launch, tsDir, samplingRate):
    """tomo's 'import tilt-series' of ``tsDir/{TS}.mrcs`` + ``.tlt``; returns the protocol."""
    from tomo.protocols import ProtImportTs
    return launch(new(ProtImportTs, filesPath=tsDir, filesPattern="{TS}.mrcs", anglesFrom=2,
                      samplingRate=samplingRate, voltage=300, magnification=50000, sphericalAberration=2.7,
                      amplitudeContrast=0.1, tiltAxisAngle=0.0, dosePerFrame=2.0))


def run_chain(new, launch, tiltSeries, thickness, train=None, denoise=None, groundTruth=None, log=print,
              independentFsc=True):
    """Run the chain on ``tiltSeries`` (a SetOfTiltSeries, e.g. ``simulate_phantom(...).NoisyTiltSeries``);
    ``groundTruth``: a SetOfTomograms (e.g. the simulation's GroundTruth) or an MRC file, or None
    to skip evaluate.  ``independentFsc``: also the honest FSC e/o (halves denoised by independently
    trained networks: two more trainings).  Returns the protocols by name."""
    from .protocols import (ProtSCNetDenoise, ProtSCNetEvaluate, ProtSCNetFscEo,
                            ProtSCNetPrepareTomograms, ProtSCNetTrain)
    prots = {}

    log("[chain] 1/5 prepare tomograms (Topaz 2D filter, reconstruction, even/odd)")
    prep = new(ProtSCNetPrepareTomograms, thickness=thickness, backend=1, doEvenOdd=True)
    prep.inputSetOfTiltSeries.set(tiltSeries)
    prots["prepare"] = launch(prep)

    log("[chain] 2/5 train SC-Net")
    tr = new(ProtSCNetTrain, **(train or {}))
    tr.inputTomograms.set(prep.Tomograms)
    tr.inputPriors.set(prep.PriorTomograms)
    prots["train"] = launch(tr)

    log("[chain] 3/5 denoise")
    dn = new(ProtSCNetDenoise, **(denoise or {}))
    dn.inputModel.set(getattr(tr, "Models", None) or tr.Model)
    dn.inputTomograms.set(prep.Tomograms)
    prots["denoise"] = launch(dn)

    log("[chain] 4/5 FSC e/o (before / after denoising, halves as given)")
    fsc = new(ProtSCNetFscEo, label1="noisy", label2="SC-Net")
    fsc.inputTomograms.set(prep.Tomograms)
    fsc.inputTomograms2.set(dn.Tomograms)
    prots["fsc"] = launch(fsc)

    if independentFsc:
        log("[chain] 4/5 FSC e/o, independent networks (each half denoised by its own network)")
        gold = new(ProtSCNetFscEo, measure=1, label1="noisy", label2="SC-Net")
        gold.inputTomograms.set(prep.Tomograms)
        gold.inputModel.set(getattr(tr, "Models", None) or tr.Model)
        prots["fsc_independent"] = launch(gold)

    if groundTruth is not None:
        log("[chain] 5/5 evaluate PSNR/SSIM against the ground truth")
        ev = new(ProtSCNetEvaluate, labels="noisy,prior,SC-Net", baselines="lowpass")
        if isinstance(groundTruth, str):
            ev.groundTruthFile.set(groundTruth)
        else:
            ev.inputGroundTruth.set(groundTruth)
        ev.inputSets.set([prep.Tomograms, prep.PriorTomograms, dn.Tomograms])
        prots["evaluate"] = launch(ev)
    return prots
