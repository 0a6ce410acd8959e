"""scnet - halves: attach even/odd half tomograms, imported as two sets, to their tomograms.

Users of Warp, AreTomo, IMOD or RELION often have the half tomograms of each tomogram (reconstructions
of the even and of the odd tilts, or frames) but tomo's 'import tomograms' imports each set alone.
This protocol pairs them by tsId and outputs the tomograms with their half maps (tomo's
``Tomogram.setHalfMaps``), so 'SC-Net train' trains in the halves mode and 'SC-Net denoise' and
'SC-Net FSC e/o' use them. No file is copied or changed.
"""
from enum import Enum

import pyworkflow.protocol.params as params
from pyworkflow.protocol.constants import STEPS_SERIAL
from tomo.objects import SetOfTomograms

from scnet.rules import sampling_differs

from .protocol_base import ProtSCNetBase


class HalvesOutputs(Enum):
    Tomograms = SetOfTomograms


class ProtSCNetAssignHalves(ProtSCNetBase):
    """Pairs imported even and odd half tomograms with their full tomograms by tsId, so the
    SC-Net protocols see them as the tomograms' half maps (halves mode, FSC e/o). Import each
    of the three sets with tomo's 'import tomograms' (same tsIds: e.g. TS_01.mrc in three
    folders, or patterns that give the same tsId)."""
    _label = "SC-Net halves"
    _possibleOutputs = HalvesOutputs
    stepsExecutionMode = STEPS_SERIAL

    def _defineParams(self, form):
        form.addSection(label="Input")
        form.addParam("inputTomograms", params.PointerParam, pointerClass="SetOfTomograms", important=True,
                      label="Tomograms", help="The full tomograms (all tilts or frames).")
        form.addParam("inputEven", params.PointerParam, pointerClass="SetOfTomograms", important=True,
                      label="Even half tomograms",
                      help="Reconstructions of the even tilts (or frames), matched to the tomograms by tsId.")
        form.addParam("inputOdd", params.PointerParam, pointerClass="SetOfTomograms", important=True,
                      label="Odd half tomograms",
                      help="Reconstructions of the odd tilts (or frames), matched to the tomograms by tsId.")

    def _insertAllSteps(self):
        self._insertFunctionStep(self.createOutputStep, needsGPU=False)

    def createOutputStep(self):
        inSet = self.inputTomograms.get()
        even, odd = self._tomoByTsId(self.inputEven.get()), self._tomoByTsId(self.inputOdd.get())
        outSet = self._createSetOfTomograms()
        outSet.copyInfo(inSet)
        for tomo in inSet.iterItems():
            new = tomo.clone()
            tsId = tomo.getTsId()
            new.setHalfMaps([odd[tsId].getFileName(), even[tsId].getFileName()])  # tomo's order: odd, even
            outSet.append(new)
        self._defineOutputs(**{HalvesOutputs.Tomograms.name: outSet})
        for src in (self.inputTomograms, self.inputEven, self.inputOdd):
            self._defineSourceRelation(src, outSet)

    def _validate(self):
        sets = {"tomograms": self.inputTomograms.get(), "even half tomograms": self.inputEven.get(),
                "odd half tomograms": self.inputOdd.get()}
        if any(s is None for s in sets.values()):
            return ["The tomograms and both half-tomogram sets are required."]
        errors = []
        full = self._tomoByTsId(sets["tomograms"])
        if not full:
            errors.append("The set of tomograms is empty.")
        for label, s in sets.items():
            dup = self._duplicated(self._tsIds(s))
            if dup:
                errors.append(f"The {label} have repeated tsIds ({', '.join(map(str, dup))}); they cannot be matched.")
        for label in ("even half tomograms", "odd half tomograms"):
            s = sets[label]
            halves = self._tomoByTsId(s)
            missing = [i for i in full if i not in halves]
            if missing:
                errors.append(f"No {label[:-1]} for tsId {', '.join(map(str, missing))} (matched by tsId; the "
                              f"{label} have {', '.join(map(str, halves)) or 'none'}).")
            for tsId, t in full.items():
                h = halves.get(tsId)
                if h is not None and h.getDim() != t.getDim():
                    errors.append(f"{tsId}: the {label[:-1]} is {h.getDim()} (x, y, z) but the tomogram is "
                                  f"{t.getDim()}; the halves must be reconstructed on the tomogram's grid.")
            srT, srH = sets["tomograms"].getSamplingRate(), s.getSamplingRate()
            if sampling_differs(srT, srH):
                errors.append(f"Sampling rates differ: tomograms {srT:.3f} A/px, {label} {srH:.3f} A/px.")
        return errors

    def _summary(self):
        if self.isFinished() and hasattr(self, HalvesOutputs.Tomograms.name):
            return [f"{self._count(self.Tomograms.getSize(), 'tomogram')} with their even/odd half maps."]
        return ["Pairs even/odd half tomograms with their tomograms by tsId."]

    def _methods(self):
        return ["Even and odd half tomograms were paired with their tomograms by tilt-series id."]
