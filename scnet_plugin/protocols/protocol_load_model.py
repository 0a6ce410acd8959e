"""scnet - load model: register an SC-Net model file (model.pt) trained elsewhere."""
import os
import shutil
from enum import Enum

import pyworkflow.protocol.params as params
from pyworkflow.protocol.constants import STEPS_SERIAL

from scnet.modelscan import model_file_errors, model_file_voxel_size

from ..objects import SCNetModel
from .protocol_base import ProtSCNetBase


class LoadModelOutputs(Enum):
    Model = SCNetModel


class ProtSCNetLoadModel(ProtSCNetBase):
    """Imports a trained SC-Net model (model.pt written by `scnet train`), e.g. from
    another project or a command-line run, so 'denoise' can use it."""
    _label = "SC-Net model"
    _possibleOutputs = LoadModelOutputs
    stepsExecutionMode = STEPS_SERIAL

    def _defineParams(self, form):
        form.addSection(label="Input")
        form.addParam("modelFile", params.FileParam, important=True, label="Model file (model.pt)",
                      help="model.pt from `scnet train` (weights, training options and normalisation). "
                           "train_config.json and loss_log.csv next to it are copied too when present.")

    def _insertAllSteps(self):
        self._insertFunctionStep(self.copyStep, needsGPU=False)
        self._insertFunctionStep(self.createOutputStep, needsGPU=False)

    def copyStep(self):
        src = self.modelFile.get()
        shutil.copy(src, self._getExtraPath("model.pt"))
        for name in ("train_config.json", "loss_log.csv"):
            p = os.path.join(os.path.dirname(src), name)
            if os.path.exists(p):
                shutil.copy(p, self._getExtraPath(name))

    def createOutputStep(self):
        cfg, log = self._getExtraPath("train_config.json"), self._getExtraPath("loss_log.csv")
        model = SCNetModel(path=self._getExtraPath("model.pt"), configPath=cfg if os.path.exists(cfg) else None,
                           lossLog=log if os.path.exists(log) else None)
        sr = model_file_voxel_size(self._getExtraPath("model.pt"))
        if sr:
            model.setSamplingRate(sr)  # the training voxel size, so 'denoise' can refuse another sampling
        self._defineOutputs(**{LoadModelOutputs.Model.name: model})

    def _validate(self):
        return model_file_errors(self.modelFile.get())  # the engine's own check (torch-free, nothing unpickled)

    def _summary(self):
        return [f"Model: {self.modelFile.get()}"]

    def _methods(self):
        return [f"A trained SC-Net [Yang2021SCNet] model was loaded from {os.path.basename(self.modelFile.get() or '')}."]
