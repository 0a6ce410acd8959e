"""Shared base of the SC-Net protocols.

Protocols stay thin: they declare inputs, validate them, run the engine's
``scnet`` command (``runJob`` with the engine environment) and register
outputs.  All numerics live in the engine.
"""
import json
import os
import shlex

import pyworkflow.protocol.params as params
from pwem.objects import Transform
from pwem.protocols import EMProtocol
from pyworkflow.protocol.constants import STEPS_PARALLEL
from tomo.objects import Tomogram
from tomo.protocols import ProtTomoBase

from scnet.rules import tilt_angle_errors

from .. import Plugin


class ProtSCNetBase(EMProtocol, ProtTomoBase):
    """Base class: engine access, device choice and common validation."""
    _label = None
    stepsExecutionMode = STEPS_PARALLEL

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
        self.runJob(Plugin.getScnetProgram(), " ".join(shlex.quote(str(a)) for a in args),
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

    def _validateTiltSeriesSet(self, inSet, minTilts=3, hint=""):
        """Errors for an empty set, repeated tsIds, tilt series with fewer than ``minTilts`` images
        (excluded views not counted) and a tilt axis away from Y without an alignment to bring it there."""
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
            angles = [ti.getTiltAngle() for ti in ts.iterItems(orderBy="_tiltAngle") if ti.isEnabled()]
            errors += tilt_angle_errors(angles, name=f"Tilt series {ts.getTsId()}")
            acq = ts.getAcquisition()
            axis = acq.getTiltAxisAngle() if acq is not None else None
            if axis is not None and abs(axis) > 5 and not ts.hasAlignment():
                errors.append(f"Tilt series {ts.getTsId()}: the tilt axis is at {axis:g} deg from Y and the series has "
                              f"no alignment to bring it there. Align it first (e.g. IMOD or AreTomo protocols), "
                              f"or import it with the tilt axis along Y.")
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
