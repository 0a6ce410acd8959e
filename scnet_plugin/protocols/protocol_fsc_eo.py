"""scnet - FSC e/o: resolution of tomograms from their even/odd half maps
(paper eq. 9-10, Table 3): FSC_e/o = 2 FSC / (FSC + 1), resolution at 0.5."""
import csv
import os
from enum import Enum

import pyworkflow.protocol.params as params
from pwem.objects import FSC, SetOfFSCs

from .protocol_base import ProtSCNetBase


class FscOutputs(Enum):
    FSCs = SetOfFSCs


class ProtSCNetFscEo(ProtSCNetBase):
    """Computes FSC e/o between the half maps (even / odd tilt reconstructions) of each
    tomogram, for one set (e.g. noisy) and optionally a second one (e.g. denoised), so the
    two can be compared as in the paper's Table 3. Outputs pwem FSC objects (FSC_e/o
    curves, plotted by Scipion's FSC viewer) and the resolution where FSC_e/o crosses 0.5."""
    _label = "FSC e/o"
    _possibleOutputs = FscOutputs

    def _defineParams(self, form):
        form.addSection(label="Input")
        form.addParam("inputTomograms", params.PointerParam, pointerClass="SetOfTomograms", important=True,
                      label="Tomograms (with half maps)", help="e.g. 'prepare tomograms' output (before denoising).")
        form.addParam("label1", params.StringParam, default="before", label="Label")
        form.addParam("inputTomograms2", params.PointerParam, pointerClass="SetOfTomograms", allowsNull=True,
                      label="Second tomograms (optional)", help="e.g. 'denoise' output (after denoising).")
        form.addParam("label2", params.StringParam, default="after", label="Label of the second set")
        form.addParam("subvolume", params.StringParam, default="", label="Sub-volume Z,Y,X (voxels)",
                      expertLevel=params.LEVEL_ADVANCED,
                      help="Use a centred sub-volume (the paper: 100,512,512). Empty = whole tomogram.")
        form.addParam("threshold", params.FloatParam, default=0.5, label="Threshold",
                      expertLevel=params.LEVEL_ADVANCED, help="FSC e/o value defining the resolution (paper: 0.5).")

    def _sets(self):
        out = [(self.label1.get() or "before", self.inputTomograms.get())]
        if self.inputTomograms2.get() is not None:
            out.append((self.label2.get() or "after", self.inputTomograms2.get()))
        return out

    def _insertAllSteps(self):
        deps = []
        for label, tomos in self._sets():
            for tomo in tomos.iterItems():
                deps.append(self._insertFunctionStep(self.fscStep, label, tomo.getTsId(), needsGPU=False,
                                                     prerequisites=[]))
        self._insertFunctionStep(self.createOutputStep, needsGPU=False, prerequisites=deps)

    def _base(self, label, tsId):
        return self._getExtraPath(f"{tsId}_{label}_fsc")

    def fscStep(self, label, tsId):
        tomos = dict(self._sets())[label]
        tomo = tomos.getItem("_tsId", tsId)
        odd, even = tomo.getHalfMaps(asList=True)[:2]
        args = ["fsc", even, odd, "--voxel-size", tomo.getSamplingRate(), "--csv", self._base(label, tsId) + ".csv",
                "--json", self._base(label, tsId) + ".json", "--threshold", self.threshold.get()]
        if self.subvolume.get():
            args += ["--subvolume", self.subvolume.get()]
        self.runScnet(*args)

    def resolutions(self):
        """{(label, tsId): resolution_fsc_eo in A (None = not reached)} from the engine's JSON."""
        res = {}
        for label, tomos in self._sets():
            for tsId in self._tsIds(tomos):
                p = self._base(label, tsId) + ".json"
                if os.path.exists(p):
                    data = self._readJson(p)
                    key = [k for k in data if k.startswith("resolution_fsc_eo_")]
                    res[(label, tsId)] = data[key[0]] if key else None
        return res

    def createOutputStep(self):
        fscSet = SetOfFSCs(filename=self._getPath("fscs.sqlite"))
        for label, tomos in self._sets():
            for tsId in self._tsIds(tomos):
                with open(self._base(label, tsId) + ".csv") as fh:
                    rows = list(csv.DictReader(fh))
                fsc = FSC(objLabel=f"{tsId} {label} (FSC e/o)")
                fsc.setData([float(r["frequency"]) for r in rows], [float(r["fsc_eo"]) for r in rows])
                fscSet.append(fsc)
        self._defineOutputs(**{FscOutputs.FSCs.name: fscSet})
        for _, tomos in self._sets():
            self._defineSourceRelation(tomos, fscSet)

    def _validate(self):
        errors = []
        for label, tomos in self._sets():
            if tomos is None:
                continue
            missing = [t.getTsId() for t in tomos.iterItems() if len(t.getHalfMaps(asList=True) or []) < 2]
            if missing:
                errors.append(f"'{label}' tomograms {', '.join(map(str, missing))} have no even/odd half maps. "
                              f"Run 'prepare tomograms' with 'Reconstruct even/odd halves' = Yes (and 'denoise' "
                              f"with 'Denoise half maps too' = Yes).")
        if len(self._sets()) == 2 and self.label1.get() == self.label2.get():
            errors.append("The two sets need different labels.")
        sv = self.subvolume.get()
        if sv:
            parts = sv.replace("x", ",").split(",")
            if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
                errors.append(f"Sub-volume must be three integers Z,Y,X, got {sv!r}.")
        if not 0 < self.threshold.get() < 1:
            errors.append("Threshold must be in (0, 1).")
        return errors + self._validateEngine()

    def _summary(self):
        res = self.resolutions()
        if not res:
            return ["FSC e/o not computed yet."]
        lines = [f"Resolution at FSC e/o = {self.threshold.get()}:"]
        for (label, tsId), r in sorted(res.items()):
            lines.append(f"  {tsId} {label}: {'%.1f A' % r if r is not None else 'not reached'}")
        return lines

    def _methods(self):
        return [f"Resolution was estimated by FSC e/o (FSC between the even and odd tilt reconstructions, "
                f"FSC_e/o = 2FSC/(FSC+1)) at {self.threshold.get()} as in [Yang2021SCNet]."]

    def _citations(self):
        return ["Yang2021SCNet"]
