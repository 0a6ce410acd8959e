"""scnet - prepare tomograms: Topaz-filter the tilt images and reconstruct the
noisy tomogram, the smoothed "prior" tomogram (paper §4.1, §4.3 'Smoothed
Volume Generation') and the even/odd half tomograms used by FSC_e/o (eq. 10).
"""
import os

import pyworkflow.protocol.params as params
from pyworkflow.utils import makePath
from tomo.objects import SetOfTiltSeries, SetOfTomograms

from scnet.config_tomo import AlignConfig, FilterConfig, ReconstructConfig

from .. import convert
from ..constants import (BACKENDS, HALF_TAGS, PRIOR_FILTERS, ROTATION_DEGREES, ROTATIONS, TOPAZ_2D_MODELS, halfFile,
                         priorFile, tomogramFile)
from .declared import addDeclared
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
    # two outputs of the same class: an Enum would alias them, so a dict lists them; the tilt series that
    # failed (the others finish) go to FailedTiltSeries
    _possibleOutputs = {"Tomograms": SetOfTomograms, "PriorTomograms": SetOfTomograms,
                        "FailedTiltSeries": SetOfTiltSeries}

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
        addDeclared(form, "binning", AlignConfig, "bin", "Binning",
                    help="2 halves each size: reconstruction 4x and training about 8x faster.")
        addDeclared(form, "thickness", ReconstructConfig, "thickness", "Thickness")
        addDeclared(form, "backend", ReconstructConfig, "backend", "Reconstruction")
        addDeclared(form, "radial", ReconstructConfig, "radial", "Radial filter (R1,R2)",
                    expertLevel=params.LEVEL_ADVANCED)
        form.addParam("doEvenOdd", params.BooleanParam, default=True, label="Reconstruct even/odd halves?",
                      help="Also reconstruct the even and odd tilt images (by acquisition position in the stack) "
                           "and attach them as half maps, for FSC e/o.")
        form.addSection(label="Prior (2D filter)")
        addDeclared(form, "priorFilter", FilterConfig, "method", "2D filter of the tilt images")
        addDeclared(form, "topazModel", FilterConfig, "topaz_model", "Topaz model",
                    condition=f"priorFilter=={PRIOR_FILTERS.index('topaz')}")
        addDeclared(form, "gaussianSigma", FilterConfig, "sigma", "Gaussian sigma",
                    condition=f"priorFilter=={PRIOR_FILTERS.index('gaussian')}")
        addDeclared(form, "lowpassCutoff", FilterConfig, "cutoff", "Low-pass cut-off",
                    condition=f"priorFilter=={PRIOR_FILTERS.index('lowpass')}")
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
        self._runForTs(tsId, "conversion (alignment, binning, rotation)", self._convertTs)

    def filterStep(self, tsId):
        self._runForTs(tsId, "prior filter", self._filterTs)

    def reconstructStep(self, tsId):
        self._runForTs(tsId, "reconstruction", self._reconstructTs)

    def _convertTs(self, tsId):
        makePath(self._tsPath(tsId))
        stack, _ = self._alignedTiltSeries(self._getTs(tsId), self._tsPath(tsId), self._binning())
        if self._rotation():
            convert.rotateStack(stack, self._rotation())

    def _binning(self):
        return max(1, self.binning.get() or 1)

    def _rotation(self):
        return ROTATION_DEGREES[self.rotateImages.get() or 0]

    def _filterTs(self, tsId):
        # every filter option is passed (the engine checks them all, whichever method runs)
        self.runScnet("filter", self._tsPath(tsId, "stack.mrcs"), self._tsPath(tsId, "filtered.mrcs"),
                      *self._declaredArgs("priorFilter", "topazModel", "gaussianSigma", "lowpassCutoff"),
                      "--device", self.getDevice())

    def _reconArgs(self, tsId, stack, out, subset="all"):
        sr = self._getTs(tsId).getSamplingRate() * self._binning()
        return ["reconstruct", self._tsPath(tsId, stack), self._tsPath(tsId, out),
                "--angles", self._tsPath(tsId, "stack.tlt"), *self._declaredArgs("backend", "radial", "thickness"),
                "--subset", subset, "--voxel-size", sr]

    def _reconstructTs(self, tsId):
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
        failed = self._failedReasons(self._tsIds(inSet))
        if len(failed) == inSet.getSize():
            raise Exception("Every tilt series failed: " + "; ".join(f"{k}: {v}" for k, v in failed.items()))
        for ts in inSet.iterItems():
            tsId = ts.getTsId()
            if tsId in failed:
                continue
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
        if failed:
            self._defineOutputs(FailedTiltSeries=self._failedSet(inSet, failed))
            self._defineSourceRelation(self.inputSetOfTiltSeries, self.FailedTiltSeries)

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
        # each option's bounds: its declared check (declared.addDeclared); here the rules across options
        dims = inSet.getDimensions()
        b = self._binning()
        if dims and min(dims[0], dims[1]) // b < 16:
            errors.append(f"Binning {b} leaves fewer than 16 pixels of the {dims[0]} x {dims[1]} px images.")
        if dims and (self.thickness.get() or 0) > 4 * (dims[0] // b):
            errors.append(f"Thickness {self.thickness.get()} px is more than 4x the (binned) image width "
                          f"({dims[0] // b} px).")
        return errors

    def _summary(self):
        lines = []
        if self.isFinished() and hasattr(self, "Tomograms"):
            t = self.Tomograms
            lines.append(f"{self._count(t.getSize(), 'noisy tomogram')} (sampling {t.getSamplingRate():.2f} A/px"
                         f"{', with even/odd half maps' if self.doEvenOdd.get() else ''}) and "
                         f"{self._count(self.PriorTomograms.getSize(), 'prior tomogram')}.")
        inSet = self.inputSetOfTiltSeries.get()
        lines += self._failedSummary()
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
