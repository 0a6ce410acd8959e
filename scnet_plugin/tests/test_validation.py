"""Trust on the Scipion side: _validate uses the engine's rules (scnet.rules), finished
runs hold no traceback, the engine path is quoted, model files are checked without unpickling."""
import json
import os
import pickle
import shutil
import stat
import subprocess
import tempfile
import unittest
import zipfile

from pyworkflow.tests import BaseTest, setupTestProject
from pyworkflow.utils.process import runJob

from scnet_plugin import Plugin
from scnet_plugin.objects import SCNetModel
from scnet_plugin.protocols import (ProtSCNetDenoise, ProtSCNetLoadModel, ProtSCNetPrepareTomograms,
                                    ProtSCNetTrain)
from scnet_plugin.workflow import TS_ID, simulate_phantom_files

SR = 10.0
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPE = (24, 32, 32)


def _fake_torch_file(path, obj):
    """A zip laid out like a torch.save archive (no torch in the Scipion environment)."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
        z.writestr("archive/version", "3\n")
    return path


def _logsOf(prot):
    text = ""
    for p in prot.getLogPaths():
        if os.path.exists(p):
            text += open(p, errors="replace").read()
    return text


class TestEnginePath(unittest.TestCase):
    def test_engine_path_with_space_and_quote(self):
        tmp = tempfile.mkdtemp(prefix="scnet_path_")
        self.addCleanup(shutil.rmtree, tmp, True)
        home = os.path.join(tmp, "scnet engine's \"env\"")
        os.makedirs(os.path.join(home, "bin"), exist_ok=True)
        out = os.path.join(os.path.dirname(home), "args.json")
        script = os.path.join(home, "bin", "scnet")
        with open(script, "w") as fh:
            fh.write(f"#!/usr/bin/env python3\nimport json, sys\njson.dump(sys.argv[1:], open({out!r}, 'w'))\n")
        os.chmod(script, os.stat(script).st_mode | stat.S_IEXEC)
        old = Plugin.getEngineHome
        Plugin.getEngineHome = classmethod(lambda cls: home)
        try:
            self.assertEqual(Plugin.engineErrors(), [])
            runJob(None, Plugin.getScnetProgram(), "predict --input 'a b.mrc'", env=Plugin.getEnviron())
        finally:
            Plugin.getEngineHome = old
        with open(out) as fh:
            self.assertEqual(json.load(fh), ["predict", "--input", "a b.mrc"])


class TestTrustInScipion(BaseTest):
    @classmethod
    def setUpClass(cls):
        from tomo.protocols import ProtImportTs
        setupTestProject(cls)
        work = os.path.abspath(cls.proj.getTmpPath("sim"))
        cls.tsDir, cls.gt = simulate_phantom_files(work, shape=SHAPE, sigma=15, seed=1, voxelSize=SR, tiltStep=10)
        cls.imp = cls._import(cls.tsDir)
        cls.prep = cls.newProtocol(ProtSCNetPrepareTomograms, thickness=SHAPE[0], backend=1, priorFilter=1,
                                   doEvenOdd=False)
        cls.prep.inputSetOfTiltSeries.set(cls.imp.outputTiltSeries if hasattr(cls.imp, "outputTiltSeries")
                                          else getattr(cls.imp, cls.imp.OUTPUT_NAME))
        cls.launchProtocol(cls.prep)

    @classmethod
    def _import(cls, tsDir):
        from tomo.protocols import ProtImportTs
        imp = cls.newProtocol(ProtImportTs, filesPath=tsDir, filesPattern="{TS}.mrcs", anglesFrom=2,
                              samplingRate=SR, voltage=300, magnification=50000, sphericalAberration=2.7,
                              amplitudeContrast=0.1, tiltAxisAngle=0.0, dosePerFrame=2.0)
        cls.launchProtocol(imp)
        return imp

    def _tsSet(self, imp):
        return getattr(imp, imp.OUTPUT_NAME)

    def _errors(self, prot):
        return "\n".join(prot.validate())

    def test_finished_runs_hold_no_traceback(self):
        for prot in (self.imp, self.prep):
            self.assertTrue(prot.isFinished())
        logs = _logsOf(self.prep)
        self.assertNotIn("Traceback", logs)
        self.assertNotIn("Circular reference", logs)
        self.assertNotIn("Cannot get information about MPI/threads", logs)  # pyworkflow's binThreads
        self.assertIn("binary Threads: ", logs)
        self.assertIsNotNone(self.prep.endTime.get())  # the end of the run was stored

    def _train(self, **kw):
        tr = self.newProtocol(ProtSCNetTrain, **kw)
        tr.inputTomograms.set(self.prep.Tomograms)
        tr.inputPriors.set(self.prep.PriorTomograms)
        return tr

    def test_train_validation_uses_the_engine_rules(self):
        err = self._errors(self._train(seed=-1, iterationsPerEpoch=-3, baseWidth=0, patchSize=16))
        for words in ("seed=-1", "iterations_per_epoch=-3", "base_width=0"):
            self.assertIn(words, err)
        self.assertIn("lr=", self._errors(self._train(learningRate=float("inf"), patchSize=16)))
        self.assertEqual(self._errors(self._train(patchSize=16)), "")

    def test_every_protocol_reports_its_threads_in_the_run_log(self):
        """pyworkflow's run-log header asks each protocol for MPI and binary threads (binThreads in the
        parallel mode): every SC-Net protocol answers, so the log never says it cannot."""
        import scnet_plugin.protocols as sp
        classes = [c for c in vars(sp).values() if isinstance(c, type) and c.__name__.startswith("ProtSCNet")]
        self.assertGreaterEqual(len(classes), 8)
        for cls in classes:
            prot = self.newProtocol(cls)
            self.assertGreaterEqual(int(prot.numberOfMpi), 1, cls.__name__)
            self.assertGreaterEqual(prot.getBinThreads(), 1, cls.__name__)

    def test_prior_that_is_the_noisy_set_is_refused_in_every_mode(self):
        """The same set, or another set holding the same files, as prior: one clear line, any mode."""
        from scnet.choices import TRAIN_MODES
        from tomo.objects import SetOfTomograms
        copy = SetOfTomograms(filename=os.path.abspath(self.proj.getTmpPath("same_files.sqlite")))
        copy.copyInfo(self.prep.Tomograms)
        for t in self.prep.Tomograms.iterItems():
            copy.append(t.clone())
        copy.write()
        for mode in range(len(TRAIN_MODES)):
            for prior, words in ((self.prep.Tomograms, "(the same set)"), (copy, f"(the same files for tsId {TS_ID})")):
                tr = self.newProtocol(ProtSCNetTrain, trainingMode=mode, patchSize=16)
                tr.inputTomograms.set(self.prep.Tomograms)
                tr.inputPriors.set(prior)
                errs = [e for e in tr.validate() if "noisy tomograms themselves" in e]
                self.assertEqual(len(errs), 1, (TRAIN_MODES[mode], tr.validate()))
                self.assertIn(words, errs[0])
                self.assertIn("PriorTomograms", errs[0])
        self.assertNotIn("themselves", self._errors(self._train(patchSize=16)))

    def test_form_leaves_the_prior_empty_but_offers_every_tomogram_set(self):
        """Opening 'SC-Net train' on a selected run fills the noisy tomograms from it, not the prior
        (pyworkflow's own suggestion code); the prior's browser still lists both of its outputs."""
        from types import SimpleNamespace
        import pyworkflow.gui.project  # noqa: F401 (imports the form module after what it needs)
        from pyworkflow.gui.form import FormWindow, SubclassesTreeProvider
        from pyworkflow.object import Pointer
        prot = self.newProtocol(ProtSCNetTrain)
        form = SimpleNamespace(previousProt=self.prep,
                               getPreviousProtOutput=lambda: self.prep.iterOutputAttributes(includePossible=True))
        noisy = FormWindow.suggestValueFromPreviousProt(form, prot.getParam("inputTomograms"), Pointer())
        prior = FormWindow.suggestValueFromPreviousProt(form, prot.getParam("inputPriors"), Pointer())
        self.assertEqual(noisy.getExtended(), "Tomograms")
        self.assertIsNone(prior.get())
        self.proj.getRuns(refresh=True)
        offered = {name: {(o.getObjValue().getObjId(), o.getExtended())
                          for o in SubclassesTreeProvider(prot, prot.getParam(name)).getObjects()}
                   for name in ("inputTomograms", "inputPriors")}
        self.assertEqual(offered["inputPriors"], offered["inputTomograms"])
        for name in ("Tomograms", "PriorTomograms"):
            self.assertIn((self.prep.getObjId(), name), offered["inputPriors"])

    def test_load_model_refuses_other_pt_files(self):
        d = os.path.abspath(self.proj.getTmpPath("pt"))
        os.makedirs(d, exist_ok=True)
        other = _fake_torch_file(os.path.join(d, "other.pt"), {"weights": [1, 2, 3]})
        ckpt = _fake_torch_file(os.path.join(d, "checkpoint.pt"), {"state_dict": {}, "optimizer": {}})
        trunc = os.path.join(d, "trunc.pt")
        with open(other, "rb") as fh:
            raw = fh.read()
        with open(trunc, "wb") as fh:
            fh.write(raw[:len(raw) // 2])
        for path, words in ((other, "not an SC-Net model"), (ckpt, "checkpoint"), (trunc, "not a torch model"),
                            (self.gt, "not a torch model")):
            self.assertIn(words, self._errors(self.newProtocol(ProtSCNetLoadModel, modelFile=path)))

    def test_real_model_loads_with_its_sampling_and_denoise_refuses_another(self):
        noisy = self.prep.Tomograms.getFirstItem().getFileName()
        prior = self.prep.PriorTomograms.getFirstItem().getFileName()
        run = os.path.abspath(self.proj.getTmpPath("cli_run"))
        env = Plugin.getEnviron()
        env["PYTHONPATH"] = REPO  # this checkout's engine (the engine env may hold another install)
        subprocess.run([os.path.join(Plugin.getEngineHome(), "bin", "python"), "-m", "scnet", "train", "--noisy",
                        noisy, "--prior", prior, "--output-dir", run, "--patch-size", "16", "--epochs", "1",
                        "--iterations-per-epoch", "2", "--base-width", "2", "--quiet"], check=True, env=env)
        load = self.newProtocol(ProtSCNetLoadModel, modelFile=os.path.join(run, "model.pt"))
        self.assertEqual(self._errors(load), "")
        self.launchProtocol(load)
        self.assertAlmostEqual(load.Model.getSamplingRate(), SR, places=3)
        self.assertNotIn("Traceback", _logsOf(load))
        dn = self.newProtocol(ProtSCNetDenoise, tileSize=16, overlap=4)
        dn.inputModel.set(load.Model)
        dn.inputTomograms.set(self.prep.Tomograms)
        self.assertEqual(self._errors(dn), "")
        other = SCNetModel(path=os.path.join(run, "model.pt"))
        other.setSamplingRate(2 * SR)
        dn2 = self.newProtocol(ProtSCNetDenoise, tileSize=16, overlap=4)
        dn2.inputModel.set(other)
        dn2.inputTomograms.set(self.prep.Tomograms)
        self.assertIn("A/px", self._errors(dn2))
        dn3 = self.newProtocol(ProtSCNetDenoise, tileSize=16, overlap=12)
        dn3.inputModel.set(load.Model)
        dn3.inputTomograms.set(self.prep.Tomograms)
        self.assertIn("overlap", self._errors(dn3).lower())

    def _tsWithAngles(self, name, angles):
        d = os.path.abspath(self.proj.getTmpPath(name))
        os.makedirs(d, exist_ok=True)
        shutil.copy(os.path.join(self.tsDir, f"{TS_ID}.mrcs"), os.path.join(d, f"{TS_ID}.mrcs"))
        with open(os.path.join(d, f"{TS_ID}.tlt"), "w") as fh:
            fh.write("".join(f"{a:.4f}\n" for a in angles))
        return self._import(d)

    def test_tilt_series_with_equal_or_radian_angles_is_refused(self):
        n = self._tsSet(self.imp).getFirstItem().getSize()
        for name, angles, words in (("zeros", [0.0] * n, "all"), ("radians", [-1.0 + 2.0 * i / (n - 1)
                                                                            for i in range(n)], "radians")):
            imp = self._tsWithAngles(name, angles)
            prep = self.newProtocol(ProtSCNetPrepareTomograms, thickness=SHAPE[0])
            prep.inputSetOfTiltSeries.set(self._tsSet(imp))
            self.assertIn(words, self._errors(prep))
