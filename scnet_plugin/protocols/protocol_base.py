"""Shared base of the SC-Net protocols.

Protocols stay thin: they declare inputs, validate them, run the engine's
``scnet`` command (``runJob`` with the engine environment) and register
outputs.  All numerics live in the engine.
"""
import json
import os
import shlex

import pyworkflow.protocol.params as params
from pyworkflow import BETA
from pwem.objects import Transform
from pwem.protocols import EMProtocol
from pyworkflow.protocol.constants import STEPS_PARALLEL
from tomo.objects import Tomogram
from tomo.protocols import ProtTomoBase

from .. import Plugin
from ..project_settings import useTomographyView


class ProtSCNetBase(EMProtocol, ProtTomoBase):
    """Base class: engine access, device choice and common validation."""
    _label = None
    _devStatus = BETA  # until the GPU and IMOD paths have been run by users
    stepsExecutionMode = STEPS_PARALLEL

    @classmethod
    def getClassLabel(cls, prependPackageName=True):
        """The label alone ("SC-Net train"): it names the method already, so the tree, the
        run names and the graph boxes read the same, without the "scnet_plugin - " prefix."""
        return cls.__dict__.get("_label") or cls.__name__

    def _run(self):
        # runs in the protocol's own process, whose cwd is the project folder
        useTomographyView(".")
        super()._run()

    @staticmethod
    def _count(n, noun, plural=None):
        """'1 tomogram', '2 tomograms' (summaries)."""
        return f"{n} {noun if n == 1 else (plural or noun + 's')}"

    # ------------------------------------------------------------------ form helpers
    @staticmethod
    def _defineDeviceParams(form):
        form.addHidden(params.USE_GPU, params.BooleanParam, default=False,
                       label="Use GPU",
                       help="Run torch on a GPU (needs a CUDA build of torch in the engine env). "
                            "No: run on the CPU.")
        form.addHidden(params.GPU_LIST, params.StringParam, default="0",
                       label="GPU id", help="GPU to use (the first id is used), e.g. 0.")

    # ------------------------------------------------------------------ engine
    def getDevice(self) -> str:
        if self.getAttributeValue(params.USE_GPU, False):
            gpus = self.getGpuList()
            return f"cuda:{gpus[0]}" if gpus else "cuda"
        return "cpu"

    def runScnet(self, *args):
        """Run ``scnet ARGS`` from the engine env; its stdout/stderr go to the run log."""
        self.runJob(Plugin.getScnetCommand(), " ".join(shlex.quote(str(a)) for a in args),
                    env=Plugin.getEnviron(), cwd=os.getcwd(), numberOfMpi=1, numberOfThreads=1)

    def _validateEngine(self):
        return Plugin.engineErrors()

    @staticmethod
    def _writeJson(path, obj):
        with open(path, "w") as fh:
            json.dump(obj, fh, indent=2)

    @staticmethod
    def _readJson(path):
        with open(path) as fh:
            return json.load(fh)

    @staticmethod
    def _tsIds(setOfObjects):
        return [obj.getTsId() for obj in setOfObjects.iterItems()]

    @staticmethod
    def _duplicated(ids):
        seen, dup = set(), set()
        for i in ids:
            (dup if i in seen else seen).add(i)
        return sorted(dup, key=str)

    def _tomoByTsId(self, setOfTomograms):
        return {t.getTsId(): t.clone() for t in setOfTomograms.iterItems()}

    @staticmethod
    def _exportTiltSeries(ts, stackPath, tltPath):
        """Write the aligned stack (alignment transforms applied, tilt axis along Y) and its angles.

        Excluded views (disabled tilt images) are left out of both files, so they always agree.
        """
        ts.applyTransform(stackPath)
        present = ts.getTsPresentAcqOrders() if ts.hasExcludedViews() else None
        ts.generateTltFile(tltPath, presentAcqOrders=present)

    def _validateTiltSeriesSet(self, inSet, minTilts=3, hint="", axisRotation=0):
        """Errors for an empty set, repeated tsIds, tilt series with fewer than ``minTilts`` images
        (excluded views not counted) and a tilt axis away from Y without an alignment to bring it there
        (``axisRotation``: degrees counter-clockwise the images will be rotated by before reconstruction)."""
        errors = []
        ids = self._tsIds(inSet)
        if not ids:
            errors.append("The input set of tilt series is empty.")
        dup = self._duplicated(ids)
        if dup:
            errors.append(f"Tilt series ids must be unique; repeated: {', '.join(map(str, dup))}.")
        for ts in inSet.iterItems():
            n = len(ts.getTsPresentAcqOrders())
            if n < minTilts:
                errors.append(f"Tilt series {ts.getTsId()} has {n} tilt images (excluded views not counted); "
                              f"at least {minTilts} are needed{hint}.")
            acq = ts.getAcquisition()
            axis = acq.getTiltAxisAngle() if acq is not None else None
            rotated = None if axis is None else (axis + axisRotation + 180.0) % 360.0 - 180.0
            if rotated is not None and abs(rotated) > 5 and not ts.hasAlignment():
                errors.append(f"Tilt series {ts.getTsId()}: the tilt axis is at {axis:g} deg from Y"
                              + (f" ({rotated:g} deg after the {axisRotation:+g} deg rotation)" if axisRotation else "")
                              + " and the series has no alignment to bring it there. Align it first (e.g. IMOD or "
                              "AreTomo protocols), import it with the tilt axis along Y, or, for an axis along X "
                              "(+/-90 deg), choose 'Rotate tilt images' in 'SC-Net prepare'.")
        return errors

    @staticmethod
    def _newTomogram(path, tsId, samplingRate, acquisition=None, halves=None):
        """A Tomogram for ``path`` with tsId, sampling rate, acquisition and the tomo plugin's
        centred origin (shifts of minus half the size, in Angstrom)."""
        tomo = Tomogram()
        tomo.setLocation(path)
        tomo.setTsId(tsId)
        tomo.setSamplingRate(samplingRate)
        tomo.setAcquisition(acquisition.clone() if acquisition else None)
        x, y, z = tomo.getDim()
        origin = Transform()
        origin.setShifts(-x / 2.0 * samplingRate, -y / 2.0 * samplingRate, -z / 2.0 * samplingRate)
        tomo.setOrigin(origin)
        if halves:
            tomo.setHalfMaps(halves)
        return tomo
