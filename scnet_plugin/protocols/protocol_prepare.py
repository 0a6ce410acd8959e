"""scnet - prepare tomograms: Topaz-filter the tilt images and reconstruct the
noisy tomogram, the smoothed "prior" tomogram (paper §4.1, §4.3 'Smoothed
Volume Generation') and the even/odd half tomograms used by FSC_e/o (eq. 10).
"""
import os

import pyworkflow.protocol.params as params
from pyworkflow.utils import makePath
from tomo.objects import SetOfTomograms

from scnet.choices import RADIAL_TEXT
from scnet.rules import radial_errors

from ..constants import (BACKENDS, HALF_TAGS, PRIOR_FILTERS, ROTATION_DEGREES, ROTATIONS, TOPAZ_2D_MODELS, halfFile,
                         priorFile, tomogramFile)
from .protocol_base import ProtSCNetBase


class ProtSCNetPrepareTomograms(ProtSCNetBase):
    """Builds the two tomograms SC-Net trains on, for each tilt series:
    the raw (noisy) reconstruction and the "smoothed" prior reconstructed from
    tilt images filtered with Topaz's pretrained 2D denoiser (or a Gaussian /
    low-pass filter), with the same geometry.  Optionally also reconstructs the
    even and odd tilt images separately (half maps of the noisy output, for FSC e/o).
    Reconstruction: IMOD `tilt` when IMOD is installed (backend auto/imod), else the
    built-in weighted back-projection (astra-toolbox, CPU).
    """
    _label = "SC-Net prepare"
    # two outputs of the same class: an Enum would alias them, so a dict lists them
    _possibleOutputs = {"Tomograms": SetOfTomograms, "PriorTomograms": SetOfTomograms}

    def _defineParams(self, form):
        form.addSection(label="Input")
        form.addParam("inputSetOfTiltSeries", params.PointerParam, pointerClass="SetOfTiltSeries",
                      important=True, label="Tilt series",
                      help="Raw tilt series with their alignment (transformation matrices, e.g. from 'SC-Net import "
                           "alignment', the imod plugin or an alignment protocol), or tilt series already aligned "
                           "with the tilt axis along Y. The alignment is applied once, by the engine: one "
                           "interpolation per tilt image (IMOD newstack conventions), the tilt axis onto Y; the "
                           "tomogram, the prior and the even/odd halves all come from these aligned images.")
        form.addParam("rotateImages", params.EnumParam, choices=ROTATIONS, default=0,
                      display=params.EnumParam.DISPLAY_HLIST, label="Rotate tilt images",
                      help="For a tilt axis along X (e.g. STEM series) without an alignment: rotate every image "
                           "by 90 deg (exactly, no interpolation) so that the tilt axis is along Y. The tilt axis "
                           "angle (from Y, counter-clockwise, as imported) must become ~0: for +90 deg choose "
                           "clockwise, for -90 deg counter-clockwise. The tomograms then have X and Y swapped.")
        form.addParam("binning", params.IntParam, default=1, label="Binning",
                      help="Average binning x binning pixel blocks of the aligned tilt images before everything "
                           "else (no second interpolation): the tomograms' voxel size is the tilt series' times "
                           "this. 2 halves each size: reconstruction 4x and training about 8x faster.")
        form.addParam("thickness", params.IntParam, default=0, label="Thickness (px)",
                      help="Tomogram thickness in pixels of the (binned) tilt images. 0 = half the image width.")
        form.addParam("backend", params.EnumParam, choices=BACKENDS, default=0, label="Reconstruction",
                      display=params.EnumParam.DISPLAY_HLIST,
                      help="auto: IMOD `tilt` when IMOD is found (IMOD_DIR or PATH), else built-in. "
                           "builtin: weighted back-projection with astra-toolbox (CPU). imod: require IMOD.")
        form.addParam("radial", params.StringParam, default=RADIAL_TEXT, label="Radial filter (R1,R2)",
                      expertLevel=params.LEVEL_ADVANCED,
                      help="IMOD-style radial filter cut-off and fall-off in cycles/pixel.")
        form.addParam("doEvenOdd", params.BooleanParam, default=True, label="Reconstruct even/odd halves?",
                      help="Also reconstruct the even and odd tilt images (by acquisition position in the stack) "
                           "and attach them as half maps, for FSC e/o.")
        form.addSection(label="Prior (2D filter)")
        form.addParam("priorFilter", params.EnumParam, choices=PRIOR_FILTERS, default=0,
                      label="2D filter of the tilt images",
                      help="topaz: pretrained Topaz-Denoise 2D network (the paper's choice). "
                           "gaussian / lowpass: the filters of the paper's ablation.")
        form.addParam("topazModel", params.EnumParam, choices=TOPAZ_2D_MODELS, default=0,
                      condition="priorFilter==0", label="Topaz model",
                      help="unet = unet_L2_v0.2.2 (default, used by the paper). Weights ship with topaz-em.")
        form.addParam("gaussianSigma", params.FloatParam, default=2.0, condition="priorFilter==1",
                      label="Gaussian sigma (px)", help="Standard deviation of the 2D Gaussian blur of each tilt image.")
        form.addParam("lowpassCutoff", params.FloatParam, default=0.3, condition="priorFilter==2",
                      label="Low-pass cut-off (fraction of Nyquist)",
                      help="Spatial frequencies above this fraction of Nyquist are removed from each tilt image.")
        self._defineDeviceParams(form)
        form.addParallelSection(threads=2, mpi=0)

    # ------------------------------------------------------------------ steps
    def _insertAllSteps(self):
        deps = []
        for ts in self.inputSetOfTiltSeries.get().iterItems():
            tsId = ts.getTsId()
            s1 = self._insertFunctionStep(self.convertInputStep, tsId, needsGPU=False, prerequisites=[])
            s2 = self._insertFunctionStep(self.filterStep, tsId, needsGPU=self.getDevice() != "cpu",
                                          prerequisites=[s1])
            s3 = self._insertFunctionStep(self.reconstructStep, tsId, needsGPU=False, prerequisites=[s2])
            deps.append(s3)
        self._insertFunctionStep(self.createOutputStep, needsGPU=False, prerequisites=deps)

    def _tsPath(self, tsId, *names):
        return self._getExtraPath(tsId, *names)

    def _getTs(self, tsId):
        return self.inputSetOfTiltSeries.get().getItem("_tsId", tsId)

    def convertInputStep(self, tsId):
        makePath(self._tsPath(tsId))
        stack, _ = self._alignedTiltSeries(self._getTs(tsId), self._tsPath(tsId), self._binning())
        if self._rotation():
            self._rotateStack(stack, self._rotation())

    def _binning(self):
        return max(1, self.binning.get() or 1)

    def _rotation(self):
        return ROTATION_DEGREES[self.rotateImages.get() or 0]

    @staticmethod
    def _rotateStack(path, degrees):
        """Rotate every image of an MRC stack by +/-90 deg (counter-clockwise > 0, y up as displayed),
        in place, keeping the voxel size. Exact (np.rot90): a re-indexing, no resampling."""
        import mrcfile
        import numpy as np
        with mrcfile.open(path, permissive=True) as mrc:
            data, voxel = np.asarray(mrc.data), mrc.voxel_size.copy()
        rotated = np.ascontiguousarray(np.rot90(data, 1 if degrees > 0 else -1, axes=(2, 1)))
        tmp = path + ".rotated.mrcs"
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(rotated)
            mrc.voxel_size = (voxel.y, voxel.x, voxel.z)
        os.replace(tmp, path)  # replaces a link to the imported stack, never the stack itself

    def filterStep(self, tsId):
        method = PRIOR_FILTERS[self.priorFilter.get()]
        args = ["filter", self._tsPath(tsId, "stack.mrcs"), self._tsPath(tsId, "filtered.mrcs"),
                "--method", method, "--device", self.getDevice()]
        if method == "topaz":
            args += ["--topaz-model", TOPAZ_2D_MODELS[self.topazModel.get()]]
        elif method == "gaussian":
            args += ["--sigma", self.gaussianSigma.get()]
        else:
            args += ["--cutoff", self.lowpassCutoff.get()]
        self.runScnet(*args)

    def _reconArgs(self, tsId, stack, out, subset="all"):
        sr = self._getTs(tsId).getSamplingRate() * self._binning()
        args = ["reconstruct", self._tsPath(tsId, stack), self._tsPath(tsId, out),
                "--angles", self._tsPath(tsId, "stack.tlt"), "--backend", BACKENDS[self.backend.get()],
                "--radial", self.radial.get(), "--subset", subset, "--voxel-size", sr]
        if self.thickness.get():
            args += ["--thickness", self.thickness.get()]
        return args

    def reconstructStep(self, tsId):
        self.runScnet(*self._reconArgs(tsId, "stack.mrcs", tomogramFile(tsId)))
        self.runScnet(*self._reconArgs(tsId, "filtered.mrcs", priorFile(tsId)))
        if self.doEvenOdd.get():
            for half in ("even", "odd"):
                self.runScnet(*self._reconArgs(tsId, "stack.mrcs", halfFile(tsId, half), half))

    def createOutputStep(self):
        inSet = self.inputSetOfTiltSeries.get()
        noisySet = self._createSetOfTomograms("noisy")
        priorSet = self._createSetOfTomograms("prior")
        b = self._binning()
        for s in (noisySet, priorSet):
            s.setSamplingRate(inSet.getSamplingRate() * b)
            acq = inSet.getAcquisition()
            s.setAcquisition(acq.clone() if acq is not None else None)  # one copy per set: a shared object
            # is stored twice ("Circular reference ... _acquisition found twice") and the run's end is lost
        for ts in inSet.iterItems():
            tsId = ts.getTsId()
            halves = None
            if self.doEvenOdd.get():
                halves = [self._tsPath(tsId, halfFile(tsId, h)) for h in HALF_TAGS]
            noisySet.append(self._newTomogram(self._tsPath(tsId, tomogramFile(tsId)), tsId, ts.getSamplingRate() * b,
                                              ts.getAcquisition(), halves))
            priorSet.append(self._newTomogram(self._tsPath(tsId, priorFile(tsId)), tsId, ts.getSamplingRate() * b,
                                              ts.getAcquisition()))
        self._defineOutputs(Tomograms=noisySet, PriorTomograms=priorSet)
        self._defineSourceRelation(self.inputSetOfTiltSeries, noisySet)
        self._defineSourceRelation(self.inputSetOfTiltSeries, priorSet)

    # ------------------------------------------------------------------ info
    def _validate(self):
        errors = self._validateEngine()
        inSet = self.inputSetOfTiltSeries.get()
        if inSet is None:
            return errors + ["Input tilt series are missing."]
        if self.doEvenOdd.get():
            errors += self._validateTiltSeriesSet(inSet, 6, " to split them into even/odd halves (or set "
                                                           "'Reconstruct even/odd halves?' to No)",
                                                  axisRotation=self._rotation())
        else:
            errors += self._validateTiltSeriesSet(inSet, 3, axisRotation=self._rotation())
        if self.thickness.get() < 0:
            errors.append(f"Thickness must be >= 0 (0 = automatic), got {self.thickness.get()}.")
        dims = inSet.getDimensions()
        b = self.binning.get()
        if b is None or b < 1:
            errors.append(f"Binning must be an integer >= 1, got {b}.")
            b = 1
        elif dims and min(dims[0], dims[1]) // b < 16:
            errors.append(f"Binning {b} leaves fewer than 16 pixels of the {dims[0]} x {dims[1]} px images.")
        if dims and self.thickness.get() > 4 * (dims[0] // b):
            errors.append(f"Thickness {self.thickness.get()} px is more than 4x the (binned) image width "
                          f"({dims[0] // b} px).")
        r = self.radial.get() or ""
        try:
            r1, r2 = (float(v) for v in r.split(","))
            bad = radial_errors(r1, r2)  # the engine's rule (scnet.rules)
        except ValueError:
            bad = [r]
        if bad:
            errors.append(f"Radial filter must be 'R1,R2' with 0 < R1 <= 0.5 and R2 >= 0 (cycles/pixel); got {r!r}.")
        if self.priorFilter.get() == 1 and self.gaussianSigma.get() <= 0:
            errors.append("Gaussian sigma must be > 0.")
        if self.priorFilter.get() == 2 and not 0 < self.lowpassCutoff.get() <= 1:
            errors.append("Low-pass cut-off must be in (0, 1] (fraction of Nyquist).")
        return errors

    def _summary(self):
        lines = []
        if self.isFinished() and hasattr(self, "Tomograms"):
            t = self.Tomograms
            lines.append(f"{self._count(t.getSize(), 'noisy tomogram')} (sampling {t.getSamplingRate():.2f} A/px"
                         f"{', with even/odd half maps' if self.doEvenOdd.get() else ''}) and "
                         f"{self._count(self.PriorTomograms.getSize(), 'prior tomogram')}.")
        inSet = self.inputSetOfTiltSeries.get()
        if inSet is not None and inSet.hasAlignment():
            lines.append("The tilt series' alignment was applied once (one interpolation per tilt image).")
        if self._binning() > 1:
            lines.append(f"Tilt images binned {self._binning()}x.")
        lines.append(f"Prior filter: {self._filterText()}; reconstruction: {BACKENDS[self.backend.get()]} "
                     f"(radial {self.radial.get()}), thickness "
                     f"{self.thickness.get() or 'half the width'} px.")
        return lines

    def _filterText(self):
        f = PRIOR_FILTERS[self.priorFilter.get()]
        if f == "topaz":
            return f"Topaz 2D ({TOPAZ_2D_MODELS[self.topazModel.get()]})"
        return f"Gaussian sigma {self.gaussianSigma.get()} px" if f == "gaussian" else \
            f"low-pass {self.lowpassCutoff.get()} Nyquist"

    def _methods(self):
        inSet = self.inputSetOfTiltSeries.get()
        n = inSet.getSize() if inSet else 0
        return [f"{n} tilt series were reconstructed by weighted back-projection "
                f"({'IMOD tilt when available' if self.backend.get() != 1 else 'astra-toolbox'}, radial filter "
                f"{self.radial.get()}). A smoothed prior tomogram was reconstructed from tilt images filtered with "
                f"{self._filterText()} [Bepler2020Topaz], as in SC-Net [Yang2021SCNet]"
                + (", and the even and odd tilt images were reconstructed separately for FSC e/o." if self.doEvenOdd.get() else ".")]

    def _citations(self):
        return ["Yang2021SCNet", "Bepler2020Topaz", "Kremer1996IMOD", "vanAarle2016Astra"]
