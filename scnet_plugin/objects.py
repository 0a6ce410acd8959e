"""Scipion objects of the plugin: the trained SC-Net model.

Training and prediction are separate protocols (like cryoCARE's): training
outputs an :class:`SCNetModel` (or a set of them, one per tomogram) that the
denoise protocol consumes.  The model object stores paths to the files the
engine wrote (``model.pt``, ``train_config.json``, ``loss_log.csv``).
"""
import json
import os

import pyworkflow.object as pwobj
from pwem.objects import EMObject, EMSet


class SCNetModel(EMObject):
    """A trained SC-Net network (engine file ``model.pt``) and its training record."""

    def __init__(self, path=None, configPath=None, lossLog=None, tsId=None, noisyFile=None, priorFile=None,
                 **kwargs):
        EMObject.__init__(self, **kwargs)
        self._path = pwobj.String(path)
        self._configPath = pwobj.String(configPath)
        self._lossLog = pwobj.String(lossLog)
        self._tsId = pwobj.String(tsId)  # tomogram it was trained on; None = several/unknown
        self._patchSize = pwobj.Integer()
        self._samplingRate = pwobj.Float()
        # provenance: the noisy and prior tomograms it was trained on (file names, not pointers:
        # models also live in a set's flat sqlite, which stores no pointers); None when loaded
        self._noisyFile = pwobj.String(noisyFile)
        self._priorFile = pwobj.String(priorFile)
        self._trainedOn = pwobj.String()  # tsIds of a model trained on several tomograms, comma-separated
        self._priorFiles = pwobj.String()  # such a model's prior per tsId (JSON {tsId: file}); None: none given

    def getPath(self):
        return self._path.get()

    def setPath(self, path):
        self._path.set(path)

    def getConfigPath(self):
        return self._configPath.get()

    def setConfigPath(self, path):
        self._configPath.set(path)

    def getLossLog(self):
        return self._lossLog.get()

    def setLossLog(self, path):
        self._lossLog.set(path)

    def getTsId(self):
        return self._tsId.get()

    def setTsId(self, tsId):
        self._tsId.set(tsId)

    def getPatchSize(self):
        return self._patchSize.get()

    def setPatchSize(self, value):
        self._patchSize.set(value)

    def getSamplingRate(self):
        return self._samplingRate.get()

    def setSamplingRate(self, value):
        self._samplingRate.set(value)

    def getNoisyFile(self):
        """The noisy tomogram this model was trained on (None: unknown, e.g. a loaded model)."""
        return self._noisyFile.get()

    def getPriorFile(self, tsId=None):
        """The prior tomogram this model was trained with (for a model trained on several tomograms: that
        of ``tsId``); None: unknown (e.g. a loaded model) or made by the engine."""
        perTsId = json.loads(self._priorFiles.get() or "{}")
        return perTsId.get(tsId) if perTsId else self._priorFile.get()

    def setPriorFiles(self, priorFiles: dict):
        """The priors of a model trained on several tomograms, {tsId: file}."""
        self._priorFiles.set(json.dumps(priorFiles, sort_keys=True) if priorFiles else None)

    def setTrainingInputs(self, noisyFile, priorFile):
        self._noisyFile.set(noisyFile)
        self._priorFile.set(priorFile)

    def getTrainedOn(self) -> list:
        """The tsIds this model was trained on: several for a model trained on a data set, else its tsId
        (empty when unknown, e.g. a loaded model)."""
        ids = [t for t in (self._trainedOn.get() or "").split(",") if t]
        return ids or ([self.getTsId()] if self.getTsId() else [])

    def setTrainedOn(self, tsIds):
        self._trainedOn.set(",".join(str(t) for t in tsIds))

    def getTrainConfig(self) -> dict:
        """The engine's training configuration (empty dict when unknown)."""
        path = self.getConfigPath()
        if path and os.path.exists(path):
            with open(path) as fh:
                return json.load(fh)
        return {}

    def __str__(self):
        ids = self.getTrainedOn()
        tag = f", tsId {ids[0]}" if len(ids) == 1 else (f", trained on {len(ids)} tomograms" if ids else "")
        return f"SC-Net model ({os.path.basename(self.getPath() or '?')}{tag})"


class SetOfSCNetModels(EMSet):
    """One SC-Net model per tomogram (matched to tomograms by tsId)."""
    ITEM_TYPE = SCNetModel

    def getModelFor(self, tsId):
        """The model trained on ``tsId`` (a copy), or None."""
        for model in self.iterItems():
            if model.getTsId() == tsId:
                return model.clone()
        return None


class SCNetScore(EMObject):
    """PSNR / SSIM of one volume against the ground truth (one row of the paper's Tables 1-2)."""

    def __init__(self, tsId=None, label=None, psnr=None, ssim=None, fileName=None, **kwargs):
        EMObject.__init__(self, **kwargs)
        self._tsId = pwobj.String(tsId)
        self._label = pwobj.String(label)      # e.g. noisy, prior, SC-Net, lowpass
        self._psnr = pwobj.Float(psnr)         # dB; None when the volume equals the ground truth
        self._ssim = pwobj.Float(ssim)
        self._fileName = pwobj.String(fileName)  # the scored volume

    def getTsId(self):
        return self._tsId.get()

    def getLabel(self):
        return self._label.get()

    def getPsnr(self):
        return self._psnr.get()

    def getSsim(self):
        return self._ssim.get()

    def getFileName(self):
        return self._fileName.get()

    def asDict(self) -> dict:
        return {"tsId": self.getTsId(), "label": self.getLabel(), "psnr": self.getPsnr(),
                "ssim": self.getSsim(), "path": self.getFileName()}

    def __str__(self):
        return f"{self.getTsId()} {self.getLabel()}: PSNR {self.getPsnr()} dB, SSIM {self.getSsim()}"


class SetOfSCNetScores(EMSet):
    """The scores of an evaluation, in the order they were computed (tsId, then input set, then baseline)."""
    ITEM_TYPE = SCNetScore

    def byTsId(self) -> dict:
        """``{tsId: [score dict, ...]}`` in stored order."""
        out = {}
        for s in self.iterItems(orderBy="id"):
            out.setdefault(s.getTsId(), []).append(s.asDict())
        return out
