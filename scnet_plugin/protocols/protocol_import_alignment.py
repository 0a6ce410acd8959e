"""scnet - import alignment: give imported tilt series the transforms of their IMOD ``.xf`` files.

A tilt series aligned outside Scipion (IMOD, AreTomo, Warp) comes as the raw stack, its angles and an
``.xf`` file (one line ``A11 A12 A21 A22 DX DY`` per image). The imod plugin's 'import transformation
matrix' does the same but only runs where IMOD itself is installed (the plugin checks for ``etomo``
before any protocol); this one needs nothing but the file. Each enabled tilt image gets its line as
tomo's 3x3 transform ``[[A11, A12, DX], [A21, A22, DY], [0, 0, 1]]`` (the numbers the imod plugin
stores), in stack order; excluded views get none. No image is touched: 'SC-Net prepare' applies the
alignment once, with the engine.
"""
import os
from enum import Enum

import numpy as np
import pyworkflow.protocol.params as params
from pwem.objects import Transform
from pyworkflow.protocol.constants import STEPS_SERIAL
from tomo.objects import SetOfTiltSeries, TiltImage, TiltSeries

from scnet.align import read_xf, rotation_degrees
from scnet.errors import SCNetInputError

from .protocol_base import ProtSCNetBase


class ImportAlignmentOutputs(Enum):
    TiltSeries = SetOfTiltSeries


class ProtSCNetImportAlignment(ProtSCNetBase):
    """Attaches the alignment of IMOD .xf files (one per tilt series, found by its tsId) to the tilt
    images, as tomo's transformation matrices. The images are not changed."""
    _label = "SC-Net IMOD .xf"
    _possibleOutputs = ImportAlignmentOutputs
    stepsExecutionMode = STEPS_SERIAL

    def _defineParams(self, form):
        form.addSection(label="Input")
        form.addParam("inputSetOfTiltSeries", params.PointerParam, pointerClass="SetOfTiltSeries", important=True,
                      label="Tilt series (raw)",
                      help="The raw (not interpolated) tilt series the .xf files were computed for.")
        form.addParam("filesPath", params.PathParam, important=True, label="Folder of the .xf files",
                      help="Folder holding one IMOD .xf file per tilt series.")
        form.addParam("filesPattern", params.StringParam, default="{TS}.xf", label="File name pattern",
                      help="{TS} is replaced by each tilt series' id (e.g. {TS}.xf gives TS_01.xf). Each file holds "
                           "one line 'A11 A12 A21 A22 DX DY' per tilt image in stack order (excluded views "
                           "left out), shifts in pixels of this tilt series.")

    # ------------------------------------------------------------------ steps
    def _insertAllSteps(self):
        self._insertFunctionStep(self.createOutputStep, needsGPU=False)

    def _xfPath(self, tsId):
        return os.path.join(self.filesPath.get() or "", (self.filesPattern.get() or "").replace("{TS}", str(tsId)))

    @staticmethod
    def _enabled(ts):
        return [ti.clone() for ti in ts.iterItems(orderBy="_index") if ti.isEnabled()]

    def createOutputStep(self):
        inSet = self.inputSetOfTiltSeries.get()
        outSet = self._createSetOfTiltSeries()
        outSet.copyInfo(inSet)
        for ts in [t.clone(ignoreAttrs=[]) for t in inSet.iterItems()]:
            tsId = ts.getTsId()
            xf = read_xf(self._xfPath(tsId), len(self._enabled(ts)))
            outTs = TiltSeries()
            outTs.copyInfo(ts)
            outTs.setAlignment2D()
            outSet.append(outTs)
            k = 0
            for ti in ts.iterItems(orderBy="_index"):
                outTi = TiltImage()
                outTi.copyInfo(ti, copyTM=False)
                if ti.isEnabled():
                    m = np.eye(3)
                    m[:2, :] = xf[k]
                    t = Transform()
                    t.setMatrix(m)
                    outTi.setTransform(t)
                    k += 1
                outTs.append(outTi)
            outSet.update(outTs)
        self._defineOutputs(**{ImportAlignmentOutputs.TiltSeries.name: outSet})
        self._defineSourceRelation(self.inputSetOfTiltSeries, outSet)

    # ------------------------------------------------------------------ info
    def _validate(self):
        inSet = self.inputSetOfTiltSeries.get()
        if inSet is None:
            return ["Input tilt series are missing."]
        if "{TS}" not in (self.filesPattern.get() or ""):
            return [f"The file name pattern must contain {{TS}} (got {self.filesPattern.get()!r})."]
        errors = []
        for ts in inSet.iterItems():
            try:
                read_xf(self._xfPath(ts.getTsId()), len(ts.getTsPresentAcqOrders()))
            except SCNetInputError as exc:
                errors.append(f"Tilt series {ts.getTsId()}: {exc}")
        return errors

    def _summary(self):
        out = getattr(self, ImportAlignmentOutputs.TiltSeries.name, None)
        if not self.isFinished() or out is None:
            return [f"Attaches the transforms of {self.filesPattern.get()} in {self.filesPath.get()}."]
        lines = [f"{self._count(out.getSize(), 'tilt series', 'tilt series')} with the transforms of "
                 f"{self.filesPattern.get()} in {self.filesPath.get()}."]
        for ts in out.iterItems():
            rot = rotation_degrees([ti.getTransform().getMatrix()[:2] for ti in ts.iterItems() if ti.hasTransform()])
            lines.append(f"{ts.getTsId()}: in-plane rotation {np.median(rot):.2f} deg (median).")
        return lines

    def _methods(self):
        return ["The tilt images were given the per-image linear transforms of IMOD .xf files [Kremer1996IMOD], "
                "applied later with a single interpolation per image."]

    def _citations(self):
        return ["Kremer1996IMOD"]
