"""The SC-Net chain as a scripted Scipion project run (used by ``scnet_plugin.demo``
and by the end-to-end test).

    simulate (engine, §5.2 on the built-in phantom) -> tomo 'import tilt-series'
    -> scnet prepare tomograms -> scnet train -> scnet denoise -> scnet FSC e/o
    -> scnet evaluate (PSNR/SSIM against the simulation's ground truth)

``new(cls, **params)`` and ``launch(prot)`` are passed in, so the same chain runs
with a plain ``Project`` (the demo) or inside a pyworkflow ``BaseTest``.
"""
import os
import shutil
import subprocess

from . import Plugin

TS_ID = "TS_01"


def simulate_phantom(outDir, shape=(64, 128, 128), sigma=15.0, seed=0, voxelSize=10.0, tiltStep=3.0,
                     tsId=TS_ID):
    """Run ``scnet simulate --phantom`` and lay out <tsId>.mrcs + <tsId>.tlt for tomo's importer.

    Returns (tilt-series folder, ground-truth MRC path).
    """
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


def run_chain(new, launch, tsDir, samplingRate, thickness, train=None, denoise=None, groundTruth=None,
              log=print, independentFsc=True):
    """Run the whole chain; returns the protocols by name. ``independentFsc``: also the honest
    FSC e/o (halves denoised by independently trained networks: two more trainings)."""
    from tomo.protocols import ProtImportTs

    from .protocols import (ProtSCNetDenoise, ProtSCNetEvaluate, ProtSCNetFscEo,
                            ProtSCNetPrepareTomograms, ProtSCNetTrain)
    prots = {}
    log("[chain] 1/6 import tilt series (tomo)")
    prots["import"] = launch(new(ProtImportTs, filesPath=tsDir, filesPattern="{TS}.mrcs", anglesFrom=2,
                                 samplingRate=samplingRate, voltage=300, magnification=50000,
                                 sphericalAberration=2.7, amplitudeContrast=0.1, tiltAxisAngle=0.0,
                                 dosePerFrame=2.0))
    tsSet = getattr(prots["import"], prots["import"].OUTPUT_NAME)

    log("[chain] 2/6 prepare tomograms (Topaz 2D filter, reconstruction, even/odd)")
    prep = new(ProtSCNetPrepareTomograms, thickness=thickness, backend=1, doEvenOdd=True)
    prep.inputSetOfTiltSeries.set(tsSet)
    prots["prepare"] = launch(prep)

    log("[chain] 3/6 train SC-Net")
    tr = new(ProtSCNetTrain, **(train or {}))
    tr.inputTomograms.set(prep.Tomograms)
    tr.inputPriors.set(prep.PriorTomograms)
    prots["train"] = launch(tr)

    log("[chain] 4/6 denoise")
    dn = new(ProtSCNetDenoise, **(denoise or {}))
    dn.inputModel.set(getattr(tr, "Models", None) or tr.Model)
    dn.inputTomograms.set(prep.Tomograms)
    prots["denoise"] = launch(dn)

    log("[chain] 5/6 FSC e/o (before / after denoising, halves as given)")
    fsc = new(ProtSCNetFscEo, label1="noisy", label2="SC-Net")
    fsc.inputTomograms.set(prep.Tomograms)
    fsc.inputTomograms2.set(dn.Tomograms)
    prots["fsc"] = launch(fsc)

    if independentFsc:
        log("[chain] 5/6 FSC e/o, independent networks (each half denoised by its own network)")
        gold = new(ProtSCNetFscEo, measure=1, label1="noisy", label2="SC-Net")
        gold.inputTomograms.set(prep.Tomograms)
        gold.inputModel.set(getattr(tr, "Models", None) or tr.Model)
        prots["fsc_independent"] = launch(gold)

    if groundTruth:
        log("[chain] 6/6 evaluate PSNR/SSIM against the ground truth")
        ev = new(ProtSCNetEvaluate, groundTruthFile=groundTruth, labels="noisy,prior,SC-Net",
                 baselines="lowpass")
        ev.inputSets.set([prep.Tomograms, prep.PriorTomograms, dn.Tomograms])
        prots["evaluate"] = launch(ev)
    return prots
