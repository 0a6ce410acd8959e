"""Shared base of the SC-Net protocols.

Protocols stay thin: they declare inputs, validate them, run the engine's
``scnet`` command (``runJob`` with the engine environment) and register
outputs.  All numerics live in the engine.
"""
import glob
import json
import os
import shlex
import threading

import pyworkflow.protocol.params as params
from pyworkflow import BETA
from pwem.objects import Transform
from pwem.protocols import EMProtocol
from pyworkflow.protocol.constants import STEPS_PARALLEL
from pyworkflow.constants import QUEUE_FOR_JOBS
from pyworkflow.utils.path import createAbsLink
from tomo.objects import Tomogram
from tomo.protocols import ProtTomoBase

from scnet.angles import tilt_angle_errors
from scnet.device import allocated_cpus

from .. import Plugin
from ..constants import MODEL_FILE, SIMULATION_JSON
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
                       label="GPU ids",
                       help="GPUs to use, e.g. 0 or 0 1. With Threads > 2 each parallel per-tomogram step gets its "
                            "own GPU(s). Under a queue the job's GPUs are renumbered from 0 and the engine is "
                            "told so (cuda:0 ...); an engine call given several GPUs runs on the first.")

    # ------------------------------------------------------------------ devices and queue
    def _gpuOn(self) -> bool:
        return bool(self.getAttributeValue(params.USE_GPU, False))

    def getGpuList(self):
        """The GPU ids asked for; none when 'Use GPU' is off (so a CPU run never requests a GPU
        from the queue, whatever the hidden GPU list holds)."""
        return super().getGpuList() if self._gpuOn() else []

    def _stepGpuIds(self):
        """GPU ids of the running step as its process sees them: the steps executor's list (under
        a queue pyworkflow renumbers it from 0, as the job sees its GPUs; cryoCARE's plugin does
        the same). Outside a step: the protocol's list, renumbered from 0 under a queue."""
        gpus = self.getGpuList()
        if not gpus:
            return []
        executor = getattr(self, "_stepsExecutor", None)
        if executor is not None:
            try:
                got = executor.getGpuList()
                if got:
                    return list(got)
            except AttributeError:  # not in a step thread
                pass
        return list(range(len(gpus))) if self.useQueue() else gpus

    def getDevice(self) -> str:
        """The engine's --device: 'cpu', or cuda:N for each GPU of the step ('cuda:0,cuda:1')."""
        if not self._gpuOn():
            return "cpu"
        ids = self._stepGpuIds()
        return ",".join(f"cuda:{g}" for g in ids) if ids else "cuda"

    def getBinThreads(self):
        """CPU threads of one engine call, for the header of the run log. In the STEPS_PARALLEL mode
        pyworkflow reads them from a 'binThreads' form field, which these forms do not declare (the
        log then said "Cannot get information about MPI/threads"): every ``scnet`` call takes the CPUs
        its process is given (scnet.device.allocated_cpus, the engine's own rule), so that is reported."""
        if self.modeSerial() or hasattr(self, params.BIN_THREADS_PARAM):
            return super().getBinThreads()
        return allocated_cpus()

    def _parallelSteps(self) -> int:
        """Steps pyworkflow runs at once with this thread count (one thread drives the others)."""
        n = max(1, self.numberOfThreads.get() or 1)
        return max(1, n - 1)

    def getSubmitDict(self):
        """pyworkflow's submit dictionary; for one job per step, each job asks for its share of the
        CPUs and GPUs (not the protocol's whole count, which stays PENDING forever on a small node)."""
        d = super().getSubmitDict()
        if self.useQueue() and d.get(QUEUE_FOR_JOBS) == "Y":
            n = max(1, self.numberOfThreads.get() or 1)
            steps = self._parallelSteps()
            d["JOB_THREADS"] = max(1, n // steps)
            d["JOB_CORES"] = d["JOB_THREADS"] * max(1, d.get("JOB_NODES", 1))
            gpus = len(self.getGpuList())
            if "GPU_COUNT" in d and str(d["GPU_COUNT"]) != "0":
                d["GPU_COUNT"] = -(-gpus // steps) if gpus else 0  # the largest slot pyworkflow hands a step
        return d

    # ------------------------------------------------------------------ engine
    def runScnet(self, *args, outputs=()):
        """Run ``scnet ARGS`` from the engine env (absolute, quoted path); its stdout/stderr go to
        the run log, or to the job's .out/.err when every step is a queue job.

        ``outputs``: files the call must produce (default: :meth:`expectedOutputs` of ARGS).
        pyworkflow never reads a per-step job's exit status (a failed or lost job counts as
        done), so they are checked here, and a missing one fails the step with a pointer to the
        job's error log."""
        self.runJob(Plugin.getScnetProgram(), " ".join(shlex.quote(str(a)) for a in args),
                    env=Plugin.getEnviron(), cwd=os.getcwd(), numberOfMpi=1, numberOfThreads=1)
        self._verifyOutputs(args[0] if args else "", list(outputs) or self.expectedOutputs(args))

    @staticmethod
    def expectedOutputs(args):
        """Files a ``scnet`` command line writes (output options and positional outputs)."""
        args = [str(a) for a in args]
        if not args:
            return []
        cmd, out = args[0], []
        for flag in ("--output", "--json", "--csv"):
            out += [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag]
        if "--output-dir" in args[:-1]:
            outDir = args[args.index("--output-dir") + 1]
            out += {"train": [os.path.join(outDir, MODEL_FILE)],
                    "simulate": [os.path.join(outDir, SIMULATION_JSON)]}.get(cmd, [])
        positional = [a for i, a in enumerate(args[1:], 1) if not a.startswith("--")
                      and not args[i - 1].startswith("--")]
        if cmd in ("align", "filter", "reconstruct") and len(positional) >= 2:
            out.append(positional[1])
        elif cmd == "baseline" and len(positional) >= 3:
            out.append(positional[2])
        return out

    def _verifyOutputs(self, command, outputs):
        missing = [f for f in outputs if not (os.path.isfile(f) and os.path.getsize(f) > 0)]
        if not missing:
            return
        where = "the run log (Output log)"
        if self.useQueueForSteps():
            err = self._lastJobErrLog()
            where = (f"the job's error log {err}" if err else
                     f"the job's error log (*.err in {self._getLogsPath()})") + " and the run log"
        raise RuntimeError(f"scnet {command} did not produce {', '.join(missing)}. "
                           f"The engine's messages are in {where}.")

    def _lastJobErrLog(self):
        """The .err file of this step's last queue job (name as pyworkflow's QueueStepExecutor makes it)."""
        executor = getattr(self, "_stepsExecutor", None)
        try:
            thId = threading.current_thread().thId
            n = executor.threadCommands[thId]
            name = self._getLogsPath(f"{self.strId()}-{thId}-{n}.err")  # sbatch -e JOB_LOGS.err
            if os.path.exists(name):
                return name
        except Exception:  # not a queue step thread: fall back to the newest .err of this run
            pass
        errs = sorted(glob.glob(os.path.join(self._getLogsPath(), "*.err")), key=os.path.getmtime)
        return errs[-1] if errs else None

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

    def _alignedTiltSeries(self, ts, folder, binning=1):
        """``(folder/stack.mrcs, folder/stack.tlt)``: the tilt images every later step uses, and their angles.

        With an alignment (the tilt images' transformation matrices) or a binning, the raw images
        (folder/raw.mrcs: a link, or a re-stack without the excluded views) and their transforms
        (folder/raw.xf, IMOD format, stack order) go to the engine, which interpolates each image ONCE
        (``scnet align``: IMOD newstack conventions, the tilt axis onto Y) and then bins. Without either,
        stack.mrcs is the imported stack itself. Excluded views are left out of every file."""
        from scnet.align import write_xf
        stack, tlt = os.path.join(folder, "stack.mrcs"), os.path.join(folder, "stack.tlt")
        present = ts.getTsPresentAcqOrders() if ts.hasExcludedViews() else None
        ts.generateTltFile(tlt, presentAcqOrders=present)
        if not ts.hasAlignment() and binning <= 1:
            self._exportImages(ts, stack, present)
            return stack, tlt
        raw = os.path.join(folder, "raw.mrcs")
        self._exportImages(ts, raw, present)
        args = ["align", raw, stack, "--bin", binning]
        if ts.hasAlignment():
            xf = os.path.join(folder, "raw.xf")
            write_xf(xf, [ti.getTransform().getMatrix()[:2] for ti in ts.iterItems(orderBy="_index")
                          if ti.isEnabled()])
            args += ["--xf", xf]
        self.runScnet(*args)
        return stack, tlt

    @staticmethod
    def _exportImages(ts, path, present):
        """The tilt images as they are: a link to the imported stack, or a re-stack without excluded views."""
        src = os.path.abspath(ts.getFirstEnabledItem().getFileName())
        if present:
            ts.reStack(src, path, present)
        else:
            createAbsLink(src, path)

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
            angles = [ti.getTiltAngle() for ti in ts.iterItems(orderBy="_tiltAngle") if ti.isEnabled()]
            errors += tilt_angle_errors(angles, name=f"Tilt series {ts.getTsId()}")
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
