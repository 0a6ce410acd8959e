"""scnet - evaluate: PSNR / SSIM of denoised tomograms against a ground truth
(paper Tables 1-2), with the paper's baselines computed on the noisy input.

Outputs (registered, so viewers and scripts follow them instead of file names):
``Scores`` (a :class:`SetOfSCNetScores`, one row per tsId and volume) and one
``Baseline_<name>`` SetOfTomograms per baseline run.
"""
import os

import pyworkflow.protocol.params as params
from pyworkflow.protocol.constants import STEPS_SERIAL
from pyworkflow.utils import makePath
from tomo.objects import SetOfTomograms

from ..constants import BASELINES
from ..objects import SCNetScore, SetOfSCNetScores
from .protocol_base import ProtSCNetBase

SCORES = "Scores"


def baselineOutputName(name):
    """Name of the output SetOfTomograms holding the volumes of baseline ``name``."""
    return f"Baseline_{name}"


class ProtSCNetEvaluate(ProtSCNetBase):
    """Scores tomograms against a ground truth (e.g. from 'simulate', §5.2): PSNR and 3D SSIM
    (data range = ground truth max - min). Baselines (low-pass, Gaussian, Topaz-3D, Noise2Void,
    BM4D) can be run on the FIRST input set (the noisy tomograms) and scored alongside,
    giving the paper's Table 1-2 comparison on your data. Outputs: Scores (PSNR/SSIM per tsId
    and volume) and one set of tomograms per baseline."""
    _label = "SC-Net evaluate"
    # Scores + one set per baseline (several SetOfTomograms: an Enum would alias them)
    _possibleOutputs = {SCORES: SetOfSCNetScores, **{baselineOutputName(b): SetOfTomograms for b in BASELINES}}
    stepsExecutionMode = STEPS_SERIAL  # baselines are heavy: one at a time

    def _defineParams(self, form):
        form.addSection(label="Input")
        form.addParam("inputSets", params.MultiPointerParam, pointerClass="SetOfTomograms", important=True,
                      label="Tomograms to score",
                      help="One or more sets (e.g. noisy, prior, denoised); matched to the ground truth by tsId. "
                           "Baselines are run on the first set.")
        form.addParam("labels", params.StringParam, default="", label="Labels (comma-separated)",
                      help="One label per input set; empty = the sets' names.")
        form.addParam("inputGroundTruth", params.PointerParam, pointerClass="SetOfTomograms", allowsNull=True,
                      label="Ground truth tomograms", help="e.g. 'simulate' output GroundTruth (matched by tsId).")
        form.addParam("groundTruthFile", params.FileParam, default="", label="or ground truth MRC file",
                      help="Used for every tsId when no ground-truth set is given.")
        form.addParam("baselines", params.StringParam, default="lowpass",
                      label="Baselines (comma-separated)",
                      help=f"Any of {', '.join(BASELINES)} (empty = none). bm4d needs the optional bm4d package "
                           f"(`make bm4d`, non-commercial licence); n2v trains Noise2Void (careamics) and takes minutes.")
        self._defineDeviceParams(form)

    # ------------------------------------------------------------------
    def _sets(self):
        return [p.get() for p in self.inputSets]

    def _labels(self):
        given = [s.strip() for s in (self.labels.get() or "").split(",") if s.strip()]
        sets = self._sets()
        return given if len(given) == len(sets) else [f"set{i + 1}" for i in range(len(sets))]

    def _baselineNames(self):
        return [b.strip() for b in (self.baselines.get() or "").split(",") if b.strip()]

    def _groundTruthFor(self, tsId):
        gt = self.inputGroundTruth.get()
        if gt is not None:
            item = gt.getItem("_tsId", tsId)
            return item.getFileName() if item is not None else None
        return self.groundTruthFile.get() or None

    def _insertAllSteps(self):
        for tsId in self._tsIds(self._sets()[0]):
            self._insertFunctionStep(self.evaluateStep, tsId, needsGPU=False)
        self._insertFunctionStep(self.createOutputStep, needsGPU=False)

    def evaluateStep(self, tsId):
        makePath(self._getExtraPath(tsId))
        vols, labels = [], []
        for label, s in zip(self._labels(), self._sets()):
            item = s.getItem("_tsId", tsId)
            if item is not None:
                vols.append(item.getFileName())
                labels.append(label)
        noisy = self._sets()[0].getItem("_tsId", tsId).getFileName()
        for name in self._baselineNames():
            out = self._baselinePath(tsId, name)
            args = ["baseline", name, noisy, out]
            if name in ("n2v", "topaz3d"):
                args += ["--device", self.getDevice()]
            self.runScnet(*args)
            vols.append(out)
            labels.append(name)
        self.runScnet("evaluate", "--ground-truth", self._groundTruthFor(tsId), "--labels", ",".join(labels),
                      "--json", self._jsonPath(tsId), *vols)

    def _jsonPath(self, tsId):
        return self._getExtraPath(f"evaluation_{tsId}.json")

    def _baselinePath(self, tsId, name):
        return self._getExtraPath(tsId, f"baseline_{name}.mrc")

    def createOutputStep(self):
        noisySet = self._sets()[0]
        ids = self._tsIds(noisySet)
        missing = [t for t in ids if not os.path.exists(self._jsonPath(t))]
        if missing:
            raise RuntimeError(f"No evaluation written for {', '.join(missing)}; see the run log.")
        scores = SetOfSCNetScores(filename=self._getPath("scnet_scores.sqlite"))
        for tsId in ids:
            for r in self._readJson(self._jsonPath(tsId))["results"]:
                scores.append(SCNetScore(tsId=tsId, label=r["label"], psnr=r.get("psnr"), ssim=r.get("ssim"),
                                         fileName=r.get("path")))
        outputs = {SCORES: scores}
        for name in self._baselineNames():
            tomos = self._createSetOfTomograms(f"baseline_{name}")
            tomos.copyInfo(noisySet)
            for tsId in ids:
                src = noisySet.getItem("_tsId", tsId)
                tomos.append(self._newTomogram(self._baselinePath(tsId, name), tsId, noisySet.getSamplingRate(),
                                               src.getAcquisition() if src is not None else None))
            outputs[baselineOutputName(name)] = tomos
        self._defineOutputs(**outputs)
        for out in outputs.values():
            self._defineSourceRelation(self.inputSets[0], out)

    def results(self):
        """``{tsId: [{'tsId', 'label', 'psnr', 'ssim', 'path'}, ...]}`` from the Scores output ({} before)."""
        scores = getattr(self, SCORES, None)
        return scores.byTsId() if scores is not None else {}

    def baselineTomograms(self, name):
        """The output set of baseline ``name`` (None when it was not run)."""
        return getattr(self, baselineOutputName(name), None)

    # ------------------------------------------------------------------
    def _validate(self):
        errors = self._validateEngine()
        sets = self._sets()
        if not sets or any(s is None for s in sets):
            return errors + ["Give at least one set of tomograms to score."]
        given = [s.strip() for s in (self.labels.get() or "").split(",") if s.strip()]
        if given and len(given) != len(sets):
            errors.append(f"{len(given)} labels for {len(sets)} input sets; give one label per set or none.")
        gt = self.inputGroundTruth.get()
        if gt is None and not self.groundTruthFile.get():
            errors.append("Give a ground truth: a set of tomograms or an MRC file.")
        elif gt is None and not os.path.isfile(self.groundTruthFile.get()):
            errors.append(f"Ground truth file not found: {self.groundTruthFile.get()}.")
        elif gt is not None:
            have = set(self._tsIds(gt))
            missing = [t for t in self._tsIds(sets[0]) if t not in have]
            if missing:
                errors.append(f"No ground truth for tsId {', '.join(map(str, missing))}.")
        bad = [b for b in self._baselineNames() if b not in BASELINES]
        if bad:
            errors.append(f"Unknown baseline(s) {', '.join(bad)}; choose from {', '.join(BASELINES)}.")
        return errors

    def _summary(self):
        res = self.results()
        if not res:
            return ["Not evaluated yet."]
        lines = []
        for tsId, rows in res.items():
            lines.append(f"{tsId}: " + "; ".join(f"{r['label']} {_num(r['psnr'], '.2f')} dB / {_num(r['ssim'], '.3f')}"
                                                 for r in rows))
        return lines

    def _methods(self):
        return ["Denoised tomograms were scored against the ground truth by PSNR and 3D SSIM as in "
                "[Yang2021SCNet]" + (f", with baselines {', '.join(self._baselineNames())}." if self._baselineNames() else ".")]

    def _citations(self):
        return ["Yang2021SCNet"]


def _num(value, fmt):
    return format(value, fmt) if isinstance(value, (int, float)) else "-"
