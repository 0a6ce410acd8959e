"""SC-Net protocols through Scipion's queue on a REAL single-node Slurm (no mocks).

Needs `make slurm-start` (tools/slurm.sh: Debian's slurm-wlm + munge, 2 fake GPUs via gres).
Skipped when no Slurm answers, unless SCNET_REQUIRE_SLURM=1 (what `make test` sets): then
a missing Slurm is a failure.

The project lives in a folder with spaces and the engine is reached through a path with
spaces, so the job scripts' quoting is exercised. Volumes are tiny (32^3) and training is a
few iterations: the whole class takes about a minute on 2 cores.
"""
import glob
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import unittest

import mrcfile
import numpy as np
from pyworkflow.project import Manager
from pyworkflow.tests import BaseTest
from tomo.protocols import ProtImportTomograms

from scnet_plugin import Plugin
from scnet_plugin import hosts as H
from scnet_plugin.constants import SCNET_ENGINE_HOME, tomogramFile
from scnet_plugin.protocols import ProtSCNetDenoise, ProtSCNetTrain
from scnet_plugin.protocols.protocol_train import MODE_ONE

TS_IDS = ("TS_01", "TS_02")
SHAPE = (32, 32, 32)
SR = 10.0
TINY_TRAIN = dict(patchSize=16, batchSize=1, epochs=1, iterationsPerEpoch=2, baseWidth=2, trainMode=MODE_ONE)
TIMEOUT = 240  # s for one protocol under the queue


def _slurm_problem():
    """None when a Slurm controller answers with a usable node, else why not."""
    if not shutil.which("sbatch") or not shutil.which("sinfo"):
        return "sbatch/sinfo not found (run `make slurm-start`)"
    try:
        r = subprocess.run(["timeout", "5", "sinfo", "-h", "-o", "%P %T"], capture_output=True, text=True)
    except OSError as e:
        return str(e)
    states = r.stdout.split()
    if r.returncode or not any(s in ("idle", "mixed", "allocated", "completing") for s in states):
        return f"no Slurm node is up (sinfo: {r.stdout.strip() or r.stderr.strip() or r.returncode})"
    return None


def _partition():
    r = subprocess.run(["timeout", "5", "sinfo", "-h", "-o", "%P"], capture_output=True, text=True)
    return r.stdout.split()[0].rstrip("*")


def _squeue(jobId):
    r = subprocess.run(["timeout", "5", "squeue", "-h", "-j", str(jobId), "-o", "%T"],
                       capture_output=True, text=True)
    return r.stdout.strip()


class TestSCNetQueue(BaseTest):
    """train/denoise under Scipion's queue: whole-protocol jobs, one job per step, GPU mapping, cancel."""

    @classmethod
    def setUpClass(cls):
        why = _slurm_problem()
        if why:
            if os.environ.get("SCNET_REQUIRE_SLURM") == "1":
                raise RuntimeError(f"SCNET_REQUIRE_SLURM=1 but Slurm is not usable: {why}")
            raise unittest.SkipTest(why)
        cls.partition = _partition()
        cls.root = tempfile.mkdtemp(prefix="scnet queue ", dir=os.environ.get("SCIPION_USER_DATA"))
        # the engine through a path with a space, as the job scripts must quote it
        realEngine = Plugin.getEngineHome()
        cls.engine = os.path.join(cls.root, "engine env")
        os.symlink(os.path.realpath(realEngine), cls.engine)
        cls._oldEngine = os.environ.get(SCNET_ENGINE_HOME)
        os.environ[SCNET_ENGINE_HOME] = cls.engine
        Plugin._defineVariables()
        cls.hostsConf = H.write(os.path.join(cls.root, "hosts slurm.conf"), H.SLURM, engine_home=cls.engine,
                                partition=cls.partition, memory="1000", time="0:15:00")
        manager = Manager()
        os.makedirs(manager.PROJECTS, exist_ok=True)
        location = os.path.join(cls.root, "projects with spaces")
        os.makedirs(location)
        cls.proj = manager.createProject(cls.__name__, hostsConf=cls.hostsConf, location=location)
        cls.projName = cls.__name__
        cls.outputPath = cls.proj.path
        os.chdir(cls.proj.path)
        data = os.path.join(cls.root, "data")
        rng = np.random.default_rng(0)
        for kind in ("noisy", "prior"):
            os.makedirs(os.path.join(data, kind))
            for tsId in TS_IDS:
                vol = rng.normal(size=SHAPE).astype(np.float32)
                with mrcfile.new(os.path.join(data, kind, f"{tsId}.mrc")) as m:
                    m.set_data(vol)
                    m.voxel_size = SR
        cls.noisy = cls._import(os.path.join(data, "noisy"))
        cls.prior = cls._import(os.path.join(data, "prior"))

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "_oldEngine", None) is not None:
            os.environ[SCNET_ENGINE_HOME] = cls._oldEngine
            Plugin._defineVariables()

    @classmethod
    def _import(cls, folder):
        prot = cls.newProtocol(ProtImportTomograms, filesPath=folder, filesPattern="*.mrc", samplingRate=SR)
        cls.launchProtocol(prot)  # locally: no queue
        return prot.Tomograms

    # ------------------------------------------------------------------ helpers
    def _queue(self, prot, gpu=False, perStep=False, threads=1):
        prot.numberOfThreads.set(threads)
        prot._useQueue.set(True)
        name = self.partition + (H.GPU_SUFFIX if gpu else "")
        params = {"JOB_MEMORY": "1000", "JOB_TIME": "0:15:00", "QUEUE_FOR_JOBS": "Y" if perStep else "N"}
        params.update({"JOB_QUEUE": self.partition} if gpu else {"GPU_COUNT": "0"})
        prot.setQueueParams([name, params])
        return prot

    def _run(self, prot, timeout=TIMEOUT, until=None):
        """Launch and poll until the protocol leaves the active states (or ``until(prot)`` holds)."""
        self.proj.launchProtocol(prot, wait=True)
        t0 = time.time()
        while time.time() - t0 < timeout:
            self.proj._updateProtocol(prot)
            if until is not None and until(prot):
                return prot
            if not prot.isActive():
                return prot
            time.sleep(1)
        for j in prot.getJobIds():
            subprocess.run(["scancel", str(j)])
        self.fail(f"{prot.getRunName()} still {prot.getStatus()} after {timeout} s\n{self._logs(prot)}")

    @staticmethod
    def _logs(prot):
        out = []
        for f in sorted(glob.glob(os.path.join(prot._getLogsPath(), "*"))):
            if f.endswith((".log", ".out", ".err")):
                with open(f, errors="replace") as fh:
                    out.append(f"--- {f}\n" + "".join(fh.readlines()[-25:]))
        return "\n".join(out)

    def _assertFinished(self, prot):
        self.assertTrue(prot.isFinished(), f"{prot.getRunName()}: {prot.getStatus()} "
                                           f"{prot.getErrorMessage()}\n{self._logs(prot)}")

    @staticmethod
    def _jobScripts(prot):
        return sorted(glob.glob(os.path.join(prot._getLogsPath(), "*.job")))

    @staticmethod
    def _read(path):
        with open(path) as fh:
            return fh.read()

    def _train(self, **queue):
        tr = self.newProtocol(ProtSCNetTrain, **TINY_TRAIN)
        tr.inputTomograms.set(self.noisy)
        tr.inputPriors.set(self.prior)
        return self._queue(tr, **queue)

    def _model(self):
        if not hasattr(type(self), "_trained"):
            tr = self._run(self._train())
            self._assertFinished(tr)
            type(self)._trained = tr
        return type(self)._trained

    # ------------------------------------------------------------------ tests
    def test_1_whole_protocol_train_and_denoise(self):
        """Both protocols as one Slurm job each reach FINISHED with outputs; a CPU run asks no GPU."""
        tr = self._model()
        self.assertTrue(os.path.exists(tr.Model.getPath()))
        self.assertEqual(tr.Model.getTrainedOn(), list(TS_IDS))  # one model for all: trained on both
        script = self._read(self._jobScripts(tr)[0])
        self.assertIn("#SBATCH --gres=gpu:0", script)          # hidden GPU list "0" not requested
        self.assertIn(f"export PATH={shlex.quote(os.path.join(self.engine, 'bin'))}:", script)
        self.assertIn("[scnet job]", self._read(glob.glob(os.path.join(tr._getLogsPath(), "*.out"))[0]))

        dn = self._queue(self.newProtocol(ProtSCNetDenoise, tileSize=16, overlap=4))
        dn.inputModel.set(tr.Model)
        dn.inputTomograms.set(self.noisy)
        self._run(dn)
        self._assertFinished(dn)
        self.assertEqual(dn.Tomograms.getSize(), 2)
        for t in dn.Tomograms.iterItems():
            self.assertTrue(os.path.getsize(t.getFileName()) > 0)
            self.assertEqual(t.getDim(), SHAPE)

    def test_2_one_job_per_step(self):
        """Per-step queueing: each tsId's denoise step is its own job, sized to the node (1 CPU of 2),
        not the protocol's 3 threads (which would stay PENDING forever). Sent to the GPU queue with
        'Use GPU' off, the jobs must not ask for the hidden GPU list's GPU."""
        tr = self._model()
        dn = self._queue(self.newProtocol(ProtSCNetDenoise, tileSize=16, overlap=4), gpu=True, perStep=True,
                         threads=3)
        dn.inputModel.set(tr.Model)
        dn.inputTomograms.set(self.noisy)
        self._run(dn)
        self._assertFinished(dn)
        self.assertEqual(dn.Tomograms.getSize(), 2)
        scripts = [s for s in self._jobScripts(dn) if re.search(r"-\d+-\d+\.job$", s)]
        self.assertEqual(len(scripts), 2, scripts)              # one job per tsId step
        for s in scripts:
            text = self._read(s)
            self.assertIn("#SBATCH --cpus-per-task=1", text)
            self.assertIn("#SBATCH --gres=gpu:0", text)
            self.assertRegex(self._read(s[:-4] + ".out"), r"\[scnet job\] \S+ job \d+ cpus 1")
        outs = [re.search(r"(TS_\d+)/(TS_\d+\.mrc)", self._read(s)) for s in scripts]  # extra/<tsId>/<tsId>.mrc
        self.assertTrue(all(outs), scripts)
        for m in outs:
            self.assertEqual(m.group(2), tomogramFile(m.group(1)))
        tsIds = sorted(m.group(1) for m in outs)
        self.assertEqual(tsIds, list(TS_IDS))

    def test_3_gpu_request_mapping_and_failed_job(self):
        """GPU list "1" on the GPU queue: the job asks --gres=gpu:1 and the engine is told cuda:0 (the
        job's own numbering). This machine's Slurm GPUs are fake, so the engine fails inside the job;
        the step must then FAIL (pyworkflow ignores job exit codes) and point at the job's .err."""
        tr = self._train(gpu=True, perStep=True)
        tr.useGpu.set(True)
        tr.gpuList.set("1")
        self._run(tr)
        self.assertTrue(tr.isFailed(), f"{tr.getStatus()}\n{self._logs(tr)}")
        scripts = [s for s in self._jobScripts(tr) if re.search(r"-\d+-\d+\.job$", s)]
        self.assertTrue(scripts)
        text = self._read(scripts[0])
        self.assertIn("#SBATCH --gres=gpu:1", text)
        cfg = glob.glob(tr._getExtraPath("*", "scipion_train_config.json"))
        self.assertIn('"device": "cuda:0"', self._read(cfg[0]))
        err = scripts[0][:-4] + ".err"
        self.assertIn("did not produce", tr.getErrorMessage())
        self.assertIn(err, tr.getErrorMessage())
        self.assertIn("CUDA", self._read(err))
        self.assertIn("gpus 0", self._read(scripts[0][:-4] + ".out"))   # Slurm gave the job GPU 0

    def test_4_cancel_from_scipion(self):
        """Stop on a queued, running protocol cancels its job and leaves it ABORTED, no outputs."""
        tr = self._train()
        tr.epochs.set(200)
        tr.iterationsPerEpoch.set(200)
        self._run(tr, until=lambda p: p.isRunning() and p.getJobIds() and _squeue(p.getJobIds()[0]) == "RUNNING")
        jobId = tr.getJobIds()[0]
        self.proj.stopProtocol(tr)
        t0 = time.time()
        while _squeue(jobId) and time.time() - t0 < 30:
            time.sleep(0.5)
        self.assertEqual(_squeue(jobId), "", "the Slurm job was not cancelled")
        time.sleep(1)
        self.proj._updateProtocol(tr)
        self.assertTrue(tr.isAborted() or tr.isFailed(), tr.getStatus())
        self.assertFalse(tr.hasAttribute("Model"))
        self.assertFalse(os.path.exists(tr._getExtraPath(f"model_{TS_IDS[0]}", "model.pt")))


class TestQueueConfig(unittest.TestCase):
    """hosts.conf generator, per-step job sizing, GPU mapping and output checks (no Slurm needed)."""

    @classmethod
    def setUpClass(cls):
        import pyworkflow as pw
        pw.Config.getDomain().getProtocols()  # registers the plugins (a protocol's getPlugin())

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="scnet hosts ")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def _host(self, kind, **kw):
        from pyworkflow.protocol.hosts import HostConfig
        return HostConfig.load(H.write(os.path.join(self.tmp, "hosts.conf"), kind, **kw))["localhost"]

    def test_localhost_hosts_conf(self):
        host = self._host(H.LOCALHOST)
        self.assertFalse(host.getQueueSystem().queues)                  # no queue to choose
        self.assertIsNone(host.getQueueSystem().submitCommand.get())
        self.assertIn("%(COMMAND)s", host.mpiCommand.get())

    def test_slurm_hosts_conf_renders_a_job_script_with_quoted_paths(self):
        engine = os.path.join(self.tmp, "odd 100% env")
        host = self._host(H.SLURM, engine_home=engine, partition="gpuq", memory="2000", time="2:00:00")
        qs = host.getQueueSystem()
        self.assertEqual(list(qs.queues), ["gpuq", "gpuq-gpu"])
        d = dict(host.getQueuesDefault())
        d.update(JOB_NAME="12", JOB_QUEUE="gpuq", JOB_NODES=1, JOB_THREADS=4, GPU_COUNT=2,
                 JOB_COMMAND="echo ok", JOB_SCRIPT="/p q/12.job", JOB_LOGS="/p q/12")
        script = host.getSubmitTemplate() % d
        self.assertTrue(script.startswith("#!/bin/bash\n"))
        for line in ("#SBATCH --cpus-per-task=4", "#SBATCH --gres=gpu:2", "#SBATCH --export=ALL",
                     "#SBATCH --mem=2000", "#SBATCH --time=2:00:00",
                     f"export PATH={shlex.quote(os.path.join(engine, 'bin'))}:"):
            self.assertIn(line, script)
        # the engine's bin dir really is first on PATH in the job's shell (quoting, % escaping)
        out = subprocess.run(["bash", "-c", script.replace("echo ok", 'echo "$PATH"')], capture_output=True,
                             text=True).stdout
        self.assertTrue(out.strip().splitlines()[-1].startswith(os.path.join(engine, "bin") + ":"), out)
        self.assertEqual(host.getSubmitCommand() % d, 'sbatch --parsable -o "/p q/12.out" -e "/p q/12.err" '
                                                     '"/p q/12.job"')
        cpu = {p[0]: p[1] for p in qs.queues["gpuq"]}
        gpu = {p[0]: p[1] for p in qs.queues["gpuq-gpu"]}
        self.assertEqual(cpu["GPU_COUNT"], "0")              # the CPU queue never asks for a GPU
        self.assertNotIn("GPU_COUNT", gpu)                   # the GPU queue: from the GPU list
        self.assertEqual(gpu["JOB_QUEUE"], "gpuq")           # same Slurm partition

    def _prot(self, kind=H.SLURM, perStep=True, threads=3, gpus=None):
        prot = ProtSCNetTrain()
        prot.setHostConfig(self._host(kind, engine_home="/e"))
        prot.numberOfThreads.set(threads)
        prot._useQueue.set(True)
        prot.setQueueParams(["debug-gpu", {"JOB_QUEUE": "debug", "QUEUE_FOR_JOBS": "Y" if perStep else "N"}])
        if gpus is not None:
            prot.useGpu.set(True)
            prot.gpuList.set(gpus)
        return prot

    def test_cpu_run_requests_no_gpu(self):
        prot = self._prot(perStep=False)
        self.assertEqual(prot.gpuList.get(), "0")           # the hidden default is still there
        self.assertEqual(prot.getSubmitDict()["GPU_COUNT"], 0)
        self.assertEqual(prot.getDevice(), "cpu")

    def test_per_step_jobs_ask_for_their_share(self):
        self.assertEqual(self._prot(perStep=False, threads=3).getSubmitDict()["JOB_THREADS"], 3)
        self.assertEqual(self._prot(threads=3).getSubmitDict()["JOB_THREADS"], 1)   # 2 steps at once
        self.assertEqual(self._prot(threads=2).getSubmitDict()["JOB_THREADS"], 2)   # 1 step at a time
        self.assertEqual(self._prot(threads=3, gpus="0 1").getSubmitDict()["GPU_COUNT"], 1)
        self.assertEqual(self._prot(threads=2, gpus="0 1").getSubmitDict()["GPU_COUNT"], 2)
        self.assertEqual(self._prot(threads=3, gpus="0 1 2").getSubmitDict()["GPU_COUNT"], 2)

    def test_gpu_ids_are_renumbered_under_a_queue(self):
        prot = self._prot(gpus="1")
        self.assertEqual(prot.getDevice(), "cuda:0")         # the job sees its one GPU as 0
        prot._useQueue.set(False)
        self.assertEqual(prot.getDevice(), "cuda:1")         # local run: the real id

        class Executor:  # what pyworkflow's steps executor answers inside a step thread
            def getGpuList(self):
                return [0, 1]
        prot._useQueue.set(True)
        prot._stepsExecutor = Executor()
        self.assertEqual(prot.getDevice(), "cuda:0,cuda:1")

    def test_expected_outputs_of_engine_calls(self):
        exp = ProtSCNetTrain.expectedOutputs
        self.assertEqual(exp(["predict", "--model", "m", "--input", "a b.mrc", "--output", "o p.mrc"]), ["o p.mrc"])
        self.assertEqual(exp(["train", "--noisy", "n", "--output-dir", "d"]), [os.path.join("d", "model.pt")])
        self.assertEqual(exp(["filter", "in.mrcs", "out.mrcs", "--method", "gaussian"]), ["out.mrcs"])
        self.assertEqual(exp(["simulate", "--output-dir", "s d", "--sigma", "3"]), [os.path.join("s d", "simulation.json")])
        self.assertEqual(exp(["reconstruct", "s.mrcs", "t.mrc", "--angles", "a.tlt"]), ["t.mrc"])
        self.assertEqual(exp(["baseline", "lowpass", "in.mrc", "out.mrc"]), ["out.mrc"])
        self.assertEqual(exp(["fsc", "e", "o", "--csv", "f.csv", "--json", "f.json"]), ["f.json", "f.csv"])

    def test_missing_output_fails_with_a_pointer(self):
        prot = self._prot(perStep=False)
        with self.assertRaisesRegex(RuntimeError, "scnet predict did not produce .*nothing.mrc.*run log"):
            prot._verifyOutputs("predict", [os.path.join(self.tmp, "nothing.mrc")])
        ok = os.path.join(self.tmp, "ok.mrc")
        with open(ok, "w") as fh:
            fh.write("x")
        prot._verifyOutputs("predict", [ok])
