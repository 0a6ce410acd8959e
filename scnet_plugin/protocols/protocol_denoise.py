"""scnet - denoise: apply trained SC-Net models to tomograms (tiled, bounded memory)."""
import os
from enum import Enum

import pyworkflow.protocol.params as params
from pyworkflow.utils import makePath
from tomo.objects import SetOfTomograms

from scnet.config import PredictConfig, help_of
from scnet.rules import predict_option_errors, sampling_mismatch

from ..constants import HALF_TAGS, TTA_CHOICES, halfFile, tomogramFile
from ..objects import SCNetModel, SetOfSCNetModels
from .protocol_base import ProtSCNetBase


_D = PredictConfig()  # the form's defaults are the engine's (scnet.config), declared once


def _help(name):
    text = help_of(PredictConfig, name)
    return text[0].upper() + text[1:] + "."


class DenoiseOutputs(Enum):
    Tomograms = SetOfTomograms


class ProtSCNetDenoise(ProtSCNetBase):
    """Denoises tomograms with SC-Net, one step per tsId (run in parallel with Threads > 2, and
    spread over the GPU list and the queue's jobs). With a set of per-tomogram models, each
    tomogram uses the model trained on it (matched by tsId); with a single model (one model
    for all, e.g. trained on the whole data set), all use it.
    Half maps (even/odd) are denoised with the same model, so FSC e/o can measure the
    denoised result. Output: a standard SetOfTomograms (same sampling rate, origin and tsId)
    ready for picking and subtomogram averaging."""
    _label = "SC-Net denoise"
    _possibleOutputs = DenoiseOutputs

    def _defineParams(self, form):
        form.addSection(label="Input")
        form.addParam("inputModel", params.PointerParam, pointerClass="SCNetModel,SetOfSCNetModels",
                      important=True, label="SC-Net model(s)", help="From 'train' or 'load model'.")
        form.addParam("inputTomograms", params.PointerParam, pointerClass="SetOfTomograms", important=True,
                      label="Tomograms to denoise",
                      help="Noisy tomograms on the grid the model was trained on (e.g. 'SC-Net prepare tomograms' "
                           "output Tomograms), matched to per-tomogram models by tsId. Outputs are <tsId>.mrc.")
        form.addParam("denoiseHalves", params.BooleanParam, default=True, label="Denoise half maps too?",
                      help="When the tomograms have even/odd half maps, denoise them as well (for FSC e/o).")
        form.addParam("tileSize", params.IntParam, default=_D.tile_size, expertLevel=params.LEVEL_ADVANCED,
                      label="Tile size (voxels)", help=_help("tile_size"))
        form.addParam("overlap", params.IntParam, default=_D.overlap, expertLevel=params.LEVEL_ADVANCED,
                      label="Tile overlap (voxels)", help=_help("overlap"))
        form.addParam("tta", params.EnumParam, choices=[str(n) for n in TTA_CHOICES],
                      default=TTA_CHOICES.index(_D.tta),
                      display=params.EnumParam.DISPLAY_HLIST, expertLevel=params.LEVEL_ADVANCED,
                      label="Test-time flips", help=_help("tta"))
        self._defineDeviceParams(form)
        form.addParallelSection(threads=1, mpi=0)

    def _modelFor(self, tsId):
        m = self.inputModel.get()
        if isinstance(m, SetOfSCNetModels):
            return m.getModelFor(tsId)
        return m

    def _insertAllSteps(self):
        deps = [self._insertFunctionStep(self.denoiseStep, tomo.getTsId(), needsGPU=self._gpuOn(),
                                         prerequisites=[])
                for tomo in self.inputTomograms.get().iterItems()]
        self._insertFunctionStep(self.createOutputStep, needsGPU=False, prerequisites=deps)

    def _out(self, tsId, name):
        return self._getExtraPath(tsId, name)

    def _predict(self, model, src, dst, halves=None, statsFrom=None):
        extra = ["--halves", *halves] if halves else []
        # a model trained on a data set normalises each tomogram by its own statistics: a half map by its full
        # tomogram's (the engine ignores --stats-from for a model trained on one tomogram)
        extra += ["--stats-from", statsFrom] if statsFrom else []
        self.runScnet("predict", "--model", model.getPath(), "--input", src, "--output", dst,
                      "--tile-size", self.tileSize.get(), "--overlap", self.overlap.get(), "--device", self.getDevice(),
                      "--tta", self._tta(), *extra)

    def _tta(self):
        return TTA_CHOICES[self.tta.get()]

    def denoiseStep(self, tsId):
        makePath(self._getExtraPath(tsId))
        tomo = self.inputTomograms.get().getItem("_tsId", tsId)
        model = self._modelFor(tsId)
        # with half maps, a model trained in the halves mode predicts the mean of its predictions of the
        # two halves (the engine decides from the model file; other models ignore them)
        halves = [h for h in tomo.getHalfMaps(asList=True)][:2] if tomo.hasHalfMaps() else []
        self._predict(model, tomo.getFileName(), self._out(tsId, tomogramFile(tsId)),
                      halves=halves[::-1] if len(halves) == 2 and all(halves) else None)  # stored odd, even
        if self.denoiseHalves.get() and tomo.hasHalfMaps():
            for tag, half in zip(HALF_TAGS, tomo.getHalfMaps(asList=True)):
                self._predict(model, half, self._out(tsId, halfFile(tsId, tag)), statsFrom=tomo.getFileName())

    def createOutputStep(self):
        inSet = self.inputTomograms.get()
        outSet = self._createSetOfTomograms()
        outSet.copyInfo(inSet)
        for tomo in inSet.iterItems():
            tsId = tomo.getTsId()
            new = tomo.clone()
            new.setLocation(self._out(tsId, tomogramFile(tsId)))
            if self.denoiseHalves.get() and tomo.hasHalfMaps():
                new.setHalfMaps([self._out(tsId, halfFile(tsId, tag)) for tag in HALF_TAGS])
            else:
                new.setHalfMaps([])
            outSet.append(new)
        self._defineOutputs(**{DenoiseOutputs.Tomograms.name: outSet})
        self._defineSourceRelation(self.inputTomograms, outSet)
        self._defineSourceRelation(self.inputModel, outSet)

    def _validate(self):
        errors = self._validateEngine()
        model, tomos = self.inputModel.get(), self.inputTomograms.get()
        if model is None or tomos is None:
            return errors + ["Both a model and tomograms are required."]
        if isinstance(model, SetOfSCNetModels):
            have = {m.getTsId() for m in model.iterItems()}
            missing = [t.getTsId() for t in tomos.iterItems() if t.getTsId() not in have]
            if missing:
                errors.append(f"No model trained for tsId {', '.join(map(str, missing))}. Train one model per "
                              f"tomogram for these, or use a single model ('one model for all').")
        elif isinstance(model, SCNetModel) and not os.path.exists(model.getPath() or ""):
            errors.append(f"The model file {model.getPath()} does not exist.")
        models = list(model.iterItems()) if isinstance(model, SetOfSCNetModels) else [model]
        for m in models:
            why = sampling_mismatch(m.getSamplingRate(), tomos.getSamplingRate())
            if why:
                errors.append(f"Model {m.getTsId() or os.path.basename(m.getPath() or '')}: {why}.")
                break
        errors += predict_option_errors(self.tileSize.get(), self.overlap.get(), self._tta())
        return errors

    def _summary(self):
        lines = [f"Tiles {self.tileSize.get()}^3 with {self.overlap.get()} voxels overlap, "
                 f"{self._tta()} test-time flip(s), device {self.getDevice()}."]
        model, tomos = self.inputModel.get(), self.inputTomograms.get()
        trained = model.getTrainedOn() if isinstance(model, SCNetModel) else []
        if len(trained) > 1:
            unseen = [t for t in self._tsIds(tomos) if t not in trained] if tomos is not None else []
            lines.append(f"One model trained on {self._count(len(trained), 'tomogram')} ({', '.join(trained)})"
                         + (f"; not trained on {', '.join(unseen)}." if unseen else "; applied to each of them."))
        if self.isFinished() and hasattr(self, "Tomograms"):
            lines.insert(0, f"{self._count(self.Tomograms.getSize(), 'tomogram')} denoised"
                            f"{' (with half maps)' if self.Tomograms.hasOddEven() else ''}.")
        return lines

    def _methods(self):
        return ["Tomograms were denoised with SC-Net [Yang2021SCNet] by overlapping tiles of "
                f"{self.tileSize.get()}^3 voxels blended with a cosine window"
                + (f", averaging {self._tta()} axis flips." if self._tta() > 1 else ".")]

    def _citations(self):
        return ["Yang2021SCNet"]
