"""scnet - FSC e/o: resolution of tomograms from their even/odd half maps
(paper eq. 9-10, Table 3): FSC_e/o = 2 FSC / (FSC + 1).

Two measures (``FSC_MEASURES``):

* halves as given -- the half maps of the input sets. For a denoised set both halves went
  through one network trained on the full tomogram: it correlates their high frequencies and
  the curve flatters (it can climb back above the threshold towards Nyquist);
* independent networks (gold standard) -- each noisy half is denoised by its own network,
  trained on that half only (`scnet denoise`, the training options of a given model) against a
  prior made from that half only (3D Gaussian), so nothing but the signal is shared.

The engine reports the FIRST crossing of 0.5 and 0.143 and whether the curve rises above the
threshold again after it (`scnet fsc --json`, ``crossings``); the summary warns about it.
"""
import csv
import os
from enum import Enum

import pyworkflow.protocol.params as params
from pwem.objects import FSC, SetOfFSCs
from pyworkflow.utils import makePath

from scnet.config_eval import FscConfig, GaussianConfig

from ..constants import FSC_MEASURE_NOTES, FSC_MEASURES, HALF_TAGS, TRAIN_CONFIG, halfFile, priorFile
from ..objects import SetOfSCNetModels
from .declared import addDeclared
from .protocol_base import ProtSCNetBase

MEASURE_GIVEN, MEASURE_GOLD = 0, 1


class FscOutputs(Enum):
    FSCs = SetOfFSCs


class ProtSCNetFscEo(ProtSCNetBase):
    """Computes FSC e/o between the half maps (even / odd tilt reconstructions) of each
    tomogram. Measure 'halves as given': the half maps of one set (e.g. noisy) and optionally a
    second one (e.g. denoised); denoised halves from one network flatter the result.
    Measure 'independent networks': each noisy half is denoised by its own network trained on
    that half only (gold-standard style), the honest FSC e/o of SC-Net.
    Reports the first crossings of 0.5 and 0.143 and warns when a curve rises above the
    threshold again. Outputs pwem FSC objects (plotted by Scipion's FSC viewer)."""
    _label = "SC-Net FSC e/o"
    _possibleOutputs = FscOutputs

    def _defineParams(self, form):
        form.addSection(label="Input")
        form.addParam("measure", params.EnumParam, choices=FSC_MEASURES, default=MEASURE_GIVEN,
                      display=params.EnumParam.DISPLAY_HLIST, label="Measure",
                      help="halves as given: FSC e/o of the half maps of the sets below. Denoised halves "
                           "that went through ONE network flatter the result (shared network bias).\n"
                           "independent networks: the noisy halves are each denoised by a network trained "
                           "on that half only (gold-standard style; trains two networks per tomogram).")
        form.addParam("inputTomograms", params.PointerParam, pointerClass="SetOfTomograms", important=True,
                      label="Tomograms (with half maps)",
                      help="e.g. 'SC-Net prepare' output Tomograms (noisy, with even/odd half maps).")
        form.addParam("label1", params.StringParam, default="before", label="Label",
                      help="Name of this set in the plots and the summary (e.g. noisy).")
        form.addParam("inputTomograms2", params.PointerParam, pointerClass="SetOfTomograms", allowsNull=True,
                      condition=f"measure=={MEASURE_GIVEN}",
                      label="Second tomograms (optional)", help="e.g. 'SC-Net denoise' output (after denoising).")
        form.addParam("label2", params.StringParam, default="after", label="Label of the second set",
                      help="Name of the second set (or of the independently denoised halves) in the plots "
                           "and the summary (e.g. SC-Net).")
        form.addParam("inputModel", params.PointerParam, pointerClass="SCNetModel,SetOfSCNetModels",
                      condition=f"measure=={MEASURE_GOLD}", allowsNull=True,
                      label="Train like this model",
                      help="The model whose denoising is judged ('SC-Net train' output): each half network "
                           "is trained with its training options (train_config.json). With one model per "
                           "tomogram, the first one's options are used.")
        addDeclared(form, "priorSigma", GaussianConfig, "sigma", "Half prior: Gaussian sigma",
                    condition=f"measure=={MEASURE_GOLD}",
                    help="The prior of each half is that half smoothed by this 3D Gaussian (the engine's gaussian "
                         "baseline and its prior made from a tomogram), so no information crosses between the "
                         "halves.")
        addDeclared(form, "subvolume", FscConfig, "subvolume", "Sub-volume Z,Y,X", expertLevel=params.LEVEL_ADVANCED)
        addDeclared(form, "threshold", FscConfig, "threshold", "Threshold", expertLevel=params.LEVEL_ADVANCED)
        self._defineDeviceParams(form)

    # ------------------------------------------------------------------ helpers
    def isGold(self):
        return self.measure.get() == MEASURE_GOLD

    def measureNote(self):
        """One sentence naming the measure shown (summary, viewer)."""
        return FSC_MEASURE_NOTES[self.measure.get() or 0]

    def _goldLabel(self):
        return f"{self.label2.get() or 'after'} independent"

    def _sets(self):
        out = [(self.label1.get() or "before", self.inputTomograms.get())]
        if not self.isGold() and self.inputTomograms2.get() is not None:
            out.append((self.label2.get() or "after", self.inputTomograms2.get()))
        return out

    def labels(self):
        """[(label, tsIds)] of every curve this run computes."""
        out = [(label, self._tsIds(tomos)) for label, tomos in self._sets() if tomos is not None]
        if self.isGold() and self.inputTomograms.get() is not None:
            out.append((self._goldLabel(), self._tsIds(self.inputTomograms.get())))
        return out

    def _goldDir(self, tsId):
        return self._getExtraPath("independent", tsId)

    def _trainConfigPath(self):
        m = self.inputModel.get()
        if isinstance(m, SetOfSCNetModels):
            m = m.getFirstItem()
        return m.getConfigPath() if m is not None else None

    # ------------------------------------------------------------------ steps
    def _insertAllSteps(self):
        deps = []
        for label, tomos in self._sets():
            for tomo in tomos.iterItems():
                deps.append(self._insertFunctionStep(self.fscStep, label, tomo.getTsId(), needsGPU=False,
                                                     prerequisites=[]))
        if self.isGold():
            for tsId in self._tsIds(self.inputTomograms.get()):
                halves = [self._insertFunctionStep(self.denoiseHalfStep, tsId, half, prerequisites=[],
                                                   needsGPU=self.getDevice() != "cpu") for half in HALF_TAGS]
                deps.append(self._insertFunctionStep(self.fscGoldStep, tsId, needsGPU=False, prerequisites=halves))
        self._insertFunctionStep(self.createOutputStep, needsGPU=False, prerequisites=deps)

    def _base(self, label, tsId):
        return self._getExtraPath(f"{tsId}_{label.replace(' ', '_')}_fsc")

    def _runFsc(self, label, tsId, odd, even, samplingRate):
        self.runScnet("fsc", even, odd, "--voxel-size", samplingRate, "--csv", self._base(label, tsId) + ".csv",
                      "--json", self._base(label, tsId) + ".json", *self._declaredArgs("threshold", "subvolume"))

    def fscStep(self, label, tsId):
        tomo = dict(self._sets())[label].getItem("_tsId", tsId)
        odd, even = tomo.getHalfMaps(asList=True)[:2]
        self._runFsc(label, tsId, odd, even, tomo.getSamplingRate())

    def denoiseHalfStep(self, tsId, half):
        """Train a network on one noisy half (prior: that half, Gaussian-smoothed) and denoise it."""
        tomo = self.inputTomograms.get().getItem("_tsId", tsId)
        src = dict(zip(HALF_TAGS, tomo.getHalfMaps(asList=True)))[half]
        d = self._goldDir(tsId)
        makePath(d)
        prior = os.path.join(d, priorFile(f"{tsId}_{half}"))
        self.runScnet("baseline", "gaussian", src, prior, *self._declaredArgs("priorSigma"))
        args = ["denoise", "--noisy", src, "--prior", prior, "--output", os.path.join(d, halfFile(tsId, half)),
                "--output-dir", os.path.join(d, f"model_{half}"), "--quiet"]
        cfg = self._trainConfigPath()
        if cfg and os.path.exists(cfg):
            args += ["--config", cfg]
        self.runScnet(*args, "--device", self.getDevice())

    def fscGoldStep(self, tsId):
        d = self._goldDir(tsId)
        tomo = self.inputTomograms.get().getItem("_tsId", tsId)
        self._runFsc(self._goldLabel(), tsId, os.path.join(d, halfFile(tsId, "odd")),
                     os.path.join(d, halfFile(tsId, "even")), tomo.getSamplingRate())

    def _result(self, label, tsId):
        p = self._base(label, tsId) + ".json"
        return self._readJson(p) if os.path.exists(p) else None

    def resolutions(self):
        """{(label, tsId): resolution_fsc_eo at the threshold in A (None = not reached)} from the engine's JSON."""
        res = {}
        for label, ids in self.labels():
            for tsId in ids:
                data = self._result(label, tsId)
                if data is not None:
                    key = [k for k in data if k.startswith("resolution_fsc_eo_")]
                    res[(label, tsId)] = data[key[0]] if key else None
        return res

    def crossings(self):
        """{(label, tsId): the engine's FSC_e/o crossings (first 0.5 / 0.143 / threshold, rises_again ...)}."""
        out = {}
        for label, ids in self.labels():
            for tsId in ids:
                data = self._result(label, tsId)
                if data is not None and "crossings" in data:
                    out[(label, tsId)] = data["crossings"]["fsc_eo"]
        return out

    def createOutputStep(self):
        fscSet = SetOfFSCs(filename=self._getPath("fscs.sqlite"))
        for label, ids in self.labels():
            for tsId in ids:
                with open(self._base(label, tsId) + ".csv") as fh:
                    rows = list(csv.DictReader(fh))
                fsc = FSC(objLabel=f"{tsId} {label} (FSC e/o)")
                fsc.setData([float(r["frequency"]) for r in rows], [float(r["fsc_eo"]) for r in rows])
                fscSet.append(fsc)
        self._defineOutputs(**{FscOutputs.FSCs.name: fscSet})
        for _, tomos in self._sets():
            self._defineSourceRelation(tomos, fscSet)

    # ------------------------------------------------------------------ info
    def _validate(self):
        errors = []
        for label, tomos in self._sets():
            if tomos is None:
                continue
            missing = [t.getTsId() for t in tomos.iterItems() if len(t.getHalfMaps(asList=True) or []) < 2]
            if missing:
                errors.append(f"'{label}' tomograms {', '.join(map(str, missing))} have no even/odd half maps. "
                              f"Run 'SC-Net prepare' with 'Reconstruct even/odd halves' = Yes (and 'SC-Net "
                              f"denoise' with 'Denoise half maps too' = Yes).")
        if len(self._sets()) == 2 and self.label1.get() == self.label2.get():
            errors.append("The two sets need different labels.")
        if self.isGold():
            if self.inputModel.get() is None:
                errors.append("'independent networks' trains one network per half like a given model: "
                              "choose it in 'Train like this model' (an 'SC-Net train' output).")
            elif not os.path.exists(self._trainConfigPath() or ""):
                errors.append(f"The model's training options {self._trainConfigPath()} do not exist.")
        return errors + self._validateEngine()

    def _summary(self):
        cross = self.crossings()
        if not cross:
            return ["FSC e/o not computed yet.", f"Measure: {self.measureNote()}."]
        lines = [f"Measure: {self.measureNote()}.", "First crossings of FSC e/o:"]
        warnings = []
        for (label, tsId), cs in sorted(cross.items()):
            parts = []
            for c in cs:
                r = c["resolution"]
                parts.append(f"{c['threshold']:g}: {'%.1f A' % r if r is not None else 'not reached'}")
                if c["rises_again"]:
                    warnings.append(f"WARNING {tsId} {label}: FSC e/o rises back above {c['threshold']:g} at "
                                    f"{c['rise_resolution']:.1f} A (up to {c['max_after']:.2f}) after its first "
                                    f"crossing; only the first crossing counts.")
            lines.append(f"  {tsId} {label}: " + ", ".join(parts))
        return lines + warnings

    def _methods(self):
        text = (f"Resolution was estimated by FSC e/o (FSC between the even and odd tilt reconstructions, "
                f"FSC_e/o = 2FSC/(FSC+1)) at {self.threshold.get()} as in [Yang2021SCNet], first crossings "
                f"of 0.5 and 0.143 reported")
        if self.isGold():
            text += ("; for the denoised result each half was denoised by its own SC-Net trained on that "
                     "half only, against a Gaussian-smoothed prior of that half (gold-standard style)")
        return [text + "."]

    def _citations(self):
        return ["Yang2021SCNet"]
