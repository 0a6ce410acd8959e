"""scnet - simulate: the paper's simulation procedure (§5.2, Fig. 4) as a Scipion step.

From each input tilt series (or from the engine's built-in cellular phantom):
reconstruct -> Gaussian filter (sigma 2 voxels) -> ground-truth volume -> re-project at
the tilt angles -> normalise the projections to 0..255 -> add white Gaussian noise of
std sigma -> noisy tilt series.  Outputs the noisy tilt series (to feed 'prepare
tomograms'), the ground-truth tomograms (for 'evaluate') and the noisy reconstructions.
"""
import os

import pyworkflow.protocol.params as params
from pwem.objects import Transform
from pyworkflow.utils import makePath
from tomo.objects import SetOfTiltSeries, SetOfTomograms, TiltImage, TiltSeries, TomoAcquisition

from ..constants import BACKENDS, tomogramFile
from .protocol_base import ProtSCNetBase

PHANTOM_TS_ID = "phantom"


class ProtSCNetSimulate(ProtSCNetBase):
    """Simulated noisy data with a known ground truth (paper §5.2): reconstruct the input
    tilt series, smooth it with a 3D Gaussian (sigma 2 voxels) to make the ground truth,
    re-project it at the same tilt angles, scale the projections to 0..255 and add white
    Gaussian noise of std sigma (paper: 10, 15, 20).  Noise is added to the projections,
    never to the volume.  Without an input, the built-in synthetic cellular phantom
    (membranes, vesicles, filaments, macromolecules) is used.  The ground truth is the
    reconstruction of the clean projections (same grid, scale and missing wedge as the
    noisy tomogram), so PSNR/SSIM from 'evaluate' compare like with like."""
    _label = "SC-Net simulate"
    # three outputs, two of them SetOfTomograms (an Enum would alias them)
    _possibleOutputs = {"NoisyTiltSeries": SetOfTiltSeries, "GroundTruth": SetOfTomograms,
                        "NoisyTomograms": SetOfTomograms}

    def _defineParams(self, form):
        form.addSection(label="Input")
        form.addParam("source", params.EnumParam, choices=["built-in phantom", "tilt series"], default=0,
                      display=params.EnumParam.DISPLAY_HLIST, label="Start from",
                      help="built-in phantom: a synthetic cellular volume is projected with a missing wedge. "
                           "tilt series: your aligned tilt series (the §5.2 procedure).")
        form.addParam("inputSetOfTiltSeries", params.PointerParam, pointerClass="SetOfTiltSeries",
                      condition="source==1", allowsNull=True, label="Tilt series (aligned)",
                      help="Aligned tilt series, tilt axis along Y; alignment transforms present are applied.")
        form.addParam("phantomShape", params.StringParam, default="64,128,128", condition="source==0",
                      label="Phantom size Z,Y,X (voxels)", help="Z is the thickness; 64^3 up to 512x512x200.")
        form.addParam("samplingRate", params.FloatParam, default=10.0, condition="source==0",
                      label="Phantom sampling rate (A/px)", help="Sets the physical size of the features.")
        form.addParam("tiltRange", params.FloatParam, default=60.0, condition="source==0",
                      label="Tilt range (+/- deg)", help="Tilts from -range to +range (paper §5.2: +/-60).")
        form.addParam("tiltStep", params.FloatParam, default=3.0, condition="source==0", label="Tilt step (deg)",
                      help="Angle between consecutive tilt images (paper §5.2: 3).")
        form.addSection(label="Simulation")
        form.addParam("sigma", params.FloatParam, default=15.0, label="Noise sigma (0..255 scale)",
                      help="Std of the white Gaussian noise added to projections normalised to 0..255 "
                           "(paper: 10, 15, 20).")
        form.addParam("seed", params.IntParam, default=0, label="Random seed",
                      help="Seed of the noise (and of the phantom): the same seed gives the same data.")
        form.addParam("thickness", params.IntParam, default=0, label="Thickness (px)",
                      help="Reconstruction thickness. 0 = the phantom's Z, or half the image width.")
        form.addParam("gaussianSigma", params.FloatParam, default=-1.0, expertLevel=params.LEVEL_ADVANCED,
                      label="Ground-truth Gaussian sigma (voxels)",
                      help="-1 = the paper's 2 voxels for tilt series, 0 for the already clean phantom.")
        form.addParam("backend", params.EnumParam, choices=BACKENDS, default=1, label="Reconstruction",
                      display=params.EnumParam.DISPLAY_HLIST, expertLevel=params.LEVEL_ADVANCED,
                      help="auto: IMOD `tilt` when found, else built-in (astra-toolbox WBP, CPU).")

    # ------------------------------------------------------------------ helpers
    def _fromPhantom(self):
        return self.source.get() == 0

    def _inputIds(self):
        if self._fromPhantom():
            return [PHANTOM_TS_ID]
        return self._tsIds(self.inputSetOfTiltSeries.get())

    def _outDir(self, tsId, *names):
        return self._getExtraPath(tsId, *names)

    def _shape(self):
        return [int(v) for v in self.phantomShape.get().split(",")]

    # ------------------------------------------------------------------ steps
    def _insertAllSteps(self):
        deps = [self._insertFunctionStep(self.simulateStep, tsId, needsGPU=False, prerequisites=[])
                for tsId in self._inputIds()]
        self._insertFunctionStep(self.createOutputStep, needsGPU=False, prerequisites=deps)

    def simulateStep(self, tsId):
        makePath(self._outDir(tsId))
        args = ["simulate", "--output-dir", self._outDir(tsId, "sim"), "--sigma", self.sigma.get(),
                "--seed", self.seed.get(), "--backend", BACKENDS[self.backend.get()]]
        if self._fromPhantom():
            args += ["--phantom", "--shape", self.phantomShape.get().replace(" ", ""),
                     "--voxel-size", self.samplingRate.get(), "--tilt-range", self.tiltRange.get(),
                     "--tilt-step", self.tiltStep.get()]
        else:
            ts = self.inputSetOfTiltSeries.get().getItem("_tsId", tsId)
            stack, tlt = self._alignedTiltSeries(ts, self._outDir(tsId))
            args += ["--tilt-series", stack, "--angles", tlt, "--voxel-size", ts.getSamplingRate()]
        if self.thickness.get():
            args += ["--thickness", self.thickness.get()]
        if self.gaussianSigma.get() >= 0:
            args += ["--gaussian-sigma", self.gaussianSigma.get()]
        self.runScnet(*args)

    def _acquisition(self, angles):
        if not self._fromPhantom():
            acq = self.inputSetOfTiltSeries.get().getAcquisition().clone()
        else:
            acq = TomoAcquisition(voltage=300.0, sphericalAberration=2.7, amplitudeContrast=0.1,
                                  magnification=50000, tiltAxisAngle=0.0)
        acq.setAngleMin(min(angles))
        acq.setAngleMax(max(angles))
        if len(angles) > 1:
            acq.setStep(round((max(angles) - min(angles)) / (len(angles) - 1), 2))
        return acq

    def _samplingRate(self):
        return self.samplingRate.get() if self._fromPhantom() else self.inputSetOfTiltSeries.get().getSamplingRate()

    def createOutputStep(self):
        sr = self._samplingRate()
        tsSet = self._createSetOfTiltSeries("noisy")
        gtSet = self._createSetOfTomograms("groundTruth")
        recSet = self._createSetOfTomograms("noisyRec")
        first = True
        for tsId in self._inputIds():
            sim = self._readJson(self._outDir(tsId, "sim", "simulation.json"))  # written last by the engine
            angles = [float(v) for v in open(self._outDir(tsId, "sim", "noisy_ts.tlt")).read().split()]
            acq = self._acquisition(angles)
            if first:
                for s in (tsSet, gtSet, recSet):
                    s.setSamplingRate(sr)
                    s.setAcquisition(acq.clone())
                first = False
            ts = TiltSeries(tsId=tsId)
            ts.setSamplingRate(sr)
            ts.setAcquisition(acq.clone())
            ts.setAnglesCount(len(angles))
            tsSet.append(ts)
            stack = self._outDir(tsId, "sim", "noisy_ts.mrcs")
            for i, angle in enumerate(angles):
                ti = TiltImage(location=(i + 1, stack), tiltAngle=angle, acquisitionOrder=i + 1)
                ti.setTsId(tsId)
                ti.setSamplingRate(sr)
                ti.setAcquisition(acq.clone())
                ts.append(ti)
            x, y, _ = ts.getFirstItem().getDim()
            origin = Transform()
            origin.setShifts(-x / 2.0 * sr, -y / 2.0 * sr, 0.0)
            ts.setOrigin(origin)
            tsSet.update(ts)
            for s, name, sub in ((gtSet, "ground_truth.mrc", "ground_truth"), (recSet, "noisy_rec.mrc", "noisy")):
                # output tomograms are <tsId>.mrc (tomo matches files by base name); a hard link, no copy
                makePath(self._outDir(tsId, sub))
                dst = self._outDir(tsId, sub, tomogramFile(tsId))
                if not os.path.exists(dst):
                    os.link(self._outDir(tsId, "sim", name), dst)
                s.append(self._newTomogram(dst, tsId, sr, acq))
            self.info(f"{tsId}: sigma {sim.get('sigma')} on 0..255 projections, {len(angles)} tilts")
        self._defineOutputs(NoisyTiltSeries=tsSet, GroundTruth=gtSet, NoisyTomograms=recSet)
        if not self._fromPhantom():
            for s in (tsSet, gtSet, recSet):
                self._defineSourceRelation(self.inputSetOfTiltSeries, s)

    # ------------------------------------------------------------------ info
    def _validate(self):
        errors = self._validateEngine()
        if self.sigma.get() is None or self.sigma.get() < 0:
            errors.append(f"Noise sigma must be >= 0 (0..255 projection scale), got {self.sigma.get()}.")
        if self.thickness.get() < 0:
            errors.append(f"Thickness must be >= 0 (0 = automatic), got {self.thickness.get()}.")
        if self._fromPhantom():
            try:
                shape = self._shape()
                assert len(shape) == 3
            except Exception:
                return errors + [f"Phantom size must be Z,Y,X (three integers), got {self.phantomShape.get()!r}."]
            if min(shape) < 16 or max(shape) > 1024:
                errors.append(f"Phantom size {shape} out of range: each axis 16..1024 voxels.")
            if self.samplingRate.get() is None or self.samplingRate.get() <= 0:
                errors.append("Phantom sampling rate must be > 0 A/px.")
            if not 0 < self.tiltRange.get() <= 90:
                errors.append(f"Tilt range must be in (0, 90] degrees, got {self.tiltRange.get()}.")
            if not 0 < self.tiltStep.get() <= self.tiltRange.get():
                errors.append(f"Tilt step must be in (0, tilt range], got {self.tiltStep.get()}.")
        else:
            inSet = self.inputSetOfTiltSeries.get()
            if inSet is None:
                return errors + ["Choose the input tilt series (or start from the built-in phantom)."]
            errors += self._validateTiltSeriesSet(inSet, 3)
        return errors

    def _summary(self):
        src = "the built-in phantom " + self.phantomShape.get() if self._fromPhantom() else "the input tilt series"
        lines = [f"Simulation (§5.2) from {src}: AWGN sigma {self.sigma.get()} on 0..255 projections, "
                 f"seed {self.seed.get()}."]
        if self.isFinished() and hasattr(self, "NoisyTiltSeries"):
            lines.append(f"{self.NoisyTiltSeries.getSize()} noisy tilt series, ground truth and noisy "
                         f"reconstructions at {self.GroundTruth.getSamplingRate():.2f} A/px.")
        return lines

    def _methods(self):
        return [f"Simulated data were made as in [Yang2021SCNet] §5.2: reconstruction, Gaussian smoothing "
                f"(ground truth), re-projection at the tilt angles, normalisation to 0..255 and white Gaussian "
                f"noise of std {self.sigma.get()} added to the projections."]

    def _citations(self):
        return ["Yang2021SCNet", "vanAarle2016Astra"]
