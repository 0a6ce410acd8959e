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

    def __init__(self, path=None, configPath=None, lossLog=None, tsId=None, **kwargs):
        EMObject.__init__(self, **kwargs)
        self._path = pwobj.String(path)
        self._configPath = pwobj.String(configPath)
        self._lossLog = pwobj.String(lossLog)
        self._tsId = pwobj.String(tsId)  # tomogram it was trained on; None = several/unknown
        self._patchSize = pwobj.Integer()
        self._samplingRate = pwobj.Float()

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

    def getTrainConfig(self) -> dict:
        """The engine's training configuration (empty dict when unknown)."""
        path = self.getConfigPath()
        if path and os.path.exists(path):
            with open(path) as fh:
                return json.load(fh)
        return {}

    def __str__(self):
        tag = f", tsId {self.getTsId()}" if self.getTsId() else ""
        return f"SC-Net model ({os.path.basename(self.getPath() or '?')}{tag})"


class SetOfSCNetModels(EMSet):
    """One SC-Net model per tomogram (matched to tomograms by tsId)."""
    ITEM_TYPE = SCNetModel

    def getModelFor(self, tsId):
        for model in self.iterItems():
            if model.getTsId() == tsId:
                return model.clone()
        return None
