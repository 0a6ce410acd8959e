"""Protocols in a real Scipion project, on a tiny simulated phantom (no downloads).

One class runs the whole chain once (import -> prepare -> train -> denoise ->
FSC e/o -> evaluate) and checks every output; the other tests reuse its outputs
for validation errors, Continue after an interrupted training, load model and
the §5.2 simulation protocol (from the phantom and from the imported tilt series).
"""
import json
import os
import shutil
import subprocess

from pyworkflow.tests import BaseTest, setupTestProject
from tomo.objects import SetOfTiltSeries, SetOfTomograms

from scnet.choices import NETWORK_DEFAULTS
from scnet_plugin import Plugin
from scnet_plugin.objects import SCNetModel, SetOfSCNetModels
from scnet_plugin.protocols import (ProtSCNetDenoise, ProtSCNetEvaluate, ProtSCNetFscEo, ProtSCNetLoadModel,
                                    ProtSCNetPrepareTomograms, ProtSCNetSimulate, ProtSCNetTrain)
from scnet_plugin.workflow import TS_ID, import_tilt_series, run_chain, simulate_phantom

SHAPE = (32, 48, 48)  # Z, Y, X
SR = 10.0
TINY_TRAIN = dict(patchSize=16, batchSize=2, epochs=1, iterationsPerEpoch=3, baseWidth=4)


class TestSCNetChain(BaseTest):
    @classmethod
    def setUpClass(cls):
        setupTestProject(cls)
        cls.sim = simulate_phantom(cls.newProtocol, cls._launch, shape=SHAPE, sigma=15, seed=1, voxelSize=SR,
                                   tiltStep=6)
        cls.gt = cls.sim.GroundTruth.getFirstItem().getFileName()
        # the same noisy tilt series as files, for the tests that start from tomo's importer
        cls.tsDir = os.path.abspath(cls.proj.getTmpPath("tilt_series"))
        os.makedirs(cls.tsDir, exist_ok=True)
        for ext in ("mrcs", "tlt"):
            shutil.copy(cls.sim._outDir(TS_ID, "sim", f"noisy_ts.{ext}"), os.path.join(cls.tsDir, f"{TS_ID}.{ext}"))
        cls.prots = run_chain(cls.newProtocol, cls._launch, cls.sim.NoisyTiltSeries, thickness=SHAPE[0],
                              train=TINY_TRAIN, groundTruth=cls.sim.GroundTruth, log=print)
        cls.prots["import"] = import_tilt_series(cls.newProtocol, cls._launch, cls.tsDir, SR)

    @classmethod
    def _launch(cls, prot):
        cls.launchProtocol(prot)
        return prot

    def test_prepare_outputs(self):
        prep = self.prots["prepare"]
        for name in ("Tomograms", "PriorTomograms"):
            tomos = getattr(prep, name)
            self.assertIsInstance(tomos, SetOfTomograms)
            self.assertEqual(tomos.getSize(), 1)
            self.assertAlmostEqual(tomos.getSamplingRate(), SR, places=3)
            t = tomos.getFirstItem()
            self.assertEqual(t.getTsId(), TS_ID)
            self.assertEqual(t.getDim(), (SHAPE[2], SHAPE[1], SHAPE[0]))  # x, y, z
            x, y, z = t.getOrigin().getShifts()
            self.assertAlmostEqual(x, -SHAPE[2] / 2 * SR)
            self.assertAlmostEqual(z, -SHAPE[0] / 2 * SR)
        noisy = prep.Tomograms.getFirstItem()
        halves = noisy.getHalfMaps(asList=True)
        self.assertEqual(len(halves), 2)
        self.assertTrue(all(os.path.exists(h) for h in halves))
        self.assertTrue(prep.Tomograms.hasOddEven())
        self.assertFalse(prep.PriorTomograms.getFirstItem().hasHalfMaps())

    def test_train_outputs(self):
        models = self.prots["train"].Models
        self.assertIsInstance(models, SetOfSCNetModels)
        m = models.getFirstItem()
        self.assertEqual(m.getTsId(), TS_ID)
        for p in (m.getPath(), m.getConfigPath(), m.getLossLog()):
            self.assertTrue(os.path.exists(p), p)
        cfg = m.getTrainConfig()
        self.assertEqual(cfg["patch_size"], 16)
        self.assertEqual(cfg["base_width"], 4)
        self.assertEqual(cfg["depth"], NETWORK_DEFAULTS["depth"])  # the form's default is the engine's
        self.assertEqual(cfg["blindspot_ratio_of"], "replaced")
        with open(m.getLossLog()) as fh:
            self.assertEqual(len(fh.read().strip().splitlines()), 1 + 3)  # header + 3 iterations
        # mode auto + tomograms with even/odd half maps -> the engine trained in the halves mode
        self.assertEqual(cfg["mode"], "auto")
        with open(os.path.join(os.path.dirname(m.getPath()), "training_summary.json")) as fh:
            summary = json.load(fh)
        self.assertEqual(summary["mode"], "halves")
        self.assertEqual(summary["stop_reason"], "epochs")
        self.assertTrue(any("halves mode" in line for line in self.prots["train"].summary()))

    def test_denoise_outputs(self):
        dn = self.prots["denoise"].Tomograms
        prep = self.prots["prepare"].Tomograms
        self.assertEqual(dn.getSize(), 1)
        t = dn.getFirstItem()
        self.assertEqual(t.getTsId(), TS_ID)
        self.assertEqual(t.getDim(), prep.getFirstItem().getDim())
        self.assertAlmostEqual(t.getSamplingRate(), SR, places=3)
        self.assertEqual(t.getOrigin().getShifts(), prep.getFirstItem().getOrigin().getShifts())
        self.assertTrue(dn.hasOddEven())
        self.assertEqual(os.path.basename(t.getFileName()), f"{TS_ID}.mrc")
        self.assertEqual([os.path.basename(h) for h in t.getHalfMaps(asList=True)],
                         [f"{TS_ID}_odd.mrc", f"{TS_ID}_even.mrc"])
        for h in t.getHalfMaps(asList=True):
            self.assertTrue(os.path.exists(h))
        import mrcfile
        with mrcfile.open(t.getFileName()) as mrc:
            self.assertAlmostEqual(float(mrc.voxel_size.x), SR, places=3)

    def test_fsc_outputs(self):
        fsc = self.prots["fsc"]
        self.assertEqual(fsc.FSCs.getSize(), 2)
        labels = sorted(f.getObjLabel() for f in fsc.FSCs.iterItems())
        self.assertEqual(labels, [f"{TS_ID} SC-Net (FSC e/o)", f"{TS_ID} noisy (FSC e/o)"])
        x, y = fsc.FSCs.getFirstItem().getData()
        self.assertGreater(len(x), 5)
        self.assertTrue(all(-1.0 <= float(v) <= 1.0 for v in y))
        self.assertEqual(set(fsc.resolutions()), {("noisy", TS_ID), ("SC-Net", TS_ID)})
        self.assertIn("First crossings of FSC e/o", "\n".join(fsc.summary()))
        self.assertIn("Measure: halves as given", "\n".join(fsc.summary()))

    def test_fsc_independent_networks(self):
        """The honest FSC e/o: each noisy half denoised by its own network trained on that half only."""
        gold = self.prots["fsc_independent"]
        self.assertEqual(sorted(f.getObjLabel() for f in gold.FSCs.iterItems()),
                         sorted([f"{TS_ID} noisy (FSC e/o)", f"{TS_ID} SC-Net independent (FSC e/o)"]))
        d = gold._getExtraPath("independent", TS_ID)
        for half in ("even", "odd"):  # one network per half, trained like the judged model
            self.assertTrue(os.path.exists(os.path.join(d, f"model_{half}", "model.pt")))
            self.assertTrue(os.path.exists(os.path.join(d, f"{TS_ID}_{half}.mrc")))
            with open(os.path.join(d, f"model_{half}", "train_config.json")) as fh:
                self.assertEqual(json.load(fh)["patch_size"], 16)
        cross = gold.crossings()[("SC-Net independent", TS_ID)]
        self.assertEqual([c["threshold"] for c in cross], [0.5, 0.143])
        summary = "\n".join(gold.summary())
        self.assertIn("independent networks", summary)
        self.assertIn(f"{TS_ID} SC-Net independent: 0.5:", summary)

    def test_evaluate_outputs(self):
        ev = self.prots["evaluate"]
        from scnet_plugin.objects import SetOfSCNetScores
        self.assertIsInstance(ev.Scores, SetOfSCNetScores)  # registered, not files to glob
        res = ev.results()[TS_ID]
        self.assertEqual([r["label"] for r in res], ["noisy", "prior", "SC-Net", "lowpass"])
        for r in res:
            self.assertGreater(r["psnr"], 0)
            self.assertLessEqual(r["ssim"], 1.0)
            self.assertTrue(os.path.exists(r["path"]), r["path"])
        base = ev.baselineTomograms("lowpass")
        self.assertIsInstance(base, SetOfTomograms)
        t = base.getFirstItem()
        self.assertEqual(t.getTsId(), TS_ID)
        self.assertEqual(t.getDim(), self.prots["prepare"].Tomograms.getFirstItem().getDim())
        self.assertTrue(os.path.samefile(res[-1]["path"], os.path.join(self.proj.getPath(), t.getFileName())))
        self.assertIsNone(ev.baselineTomograms("bm4d"))
        self.assertIn(f"{TS_ID}: noisy", "\n".join(ev.summary()))

    def test_model_records_its_training_inputs(self):
        m = self.prots["train"].Models.getFirstItem()
        prep = self.prots["prepare"]
        self.assertEqual(m.getNoisyFile(), prep.Tomograms.getFirstItem().getFileName())
        self.assertEqual(m.getPriorFile(), prep.PriorTomograms.getFirstItem().getFileName())
        # the slices viewer follows it: denoise -> its model -> the prior of that tsId
        from scnet_plugin.viewers.viewers import _priorFor
        self.assertEqual(_priorFor(self.prots["denoise"], TS_ID), m.getPriorFile())

    def test_chain_starts_from_the_simulate_protocol(self):
        prep = self.prots["prepare"]
        self.assertEqual(prep.inputSetOfTiltSeries.get().getObjId(), self.sim.NoisyTiltSeries.getObjId())
        self.assertEqual(self.prots["evaluate"].inputGroundTruth.get().getObjId(), self.sim.GroundTruth.getObjId())

    # ------------------------------------------------------------------ validation
    def _errors(self, prot):
        return "\n".join(prot.validate())

    def test_train_validation(self):
        prep = self.prots["prepare"]
        tr = self.newProtocol(ProtSCNetTrain, patchSize=20, blindspotRatio=1.5)
        tr.inputTomograms.set(prep.Tomograms)
        tr.inputPriors.set(self.prots["denoise"].Tomograms)  # same tsId, so only the parameter errors
        err = self._errors(tr)
        self.assertIn("patch_size=20", err)  # the engine's rule at the default depth (multiple of 8)
        self.assertIn("blindspot_ratio=1.5", err)  # the engine's rule (scnet.rules)
        tr2 = self.newProtocol(ProtSCNetTrain, trainMode=1, trainTsId="nope")
        tr2.inputTomograms.set(prep.Tomograms)
        tr2.inputPriors.set(prep.PriorTomograms)
        self.assertIn("'Train on tsIds': nope not among the noisy tomograms", self._errors(tr2))

    def test_bad_input_fails_without_outputs(self):
        prep = self.prots["prepare"]
        tr = self.newProtocol(ProtSCNetTrain, patchSize=12)
        tr.inputTomograms.set(prep.Tomograms)
        tr.inputPriors.set(prep.PriorTomograms)
        with self.assertRaises(Exception):
            self.launchProtocol(tr)
        self.assertFalse(tr.hasAttribute("Models"))
        self.assertFalse(tr.hasAttribute("Model"))

    def test_fsc_validation_needs_half_maps(self):
        f = self.newProtocol(ProtSCNetFscEo)
        f.inputTomograms.set(self.prots["prepare"].PriorTomograms)
        self.assertIn("have no even/odd half maps", self._errors(f))

    def test_evaluate_validation(self):
        ev = self.newProtocol(ProtSCNetEvaluate, baselines="lowpass,magic", labels="a,b")
        ev.inputSets.set([self.prots["prepare"].Tomograms])
        err = self._errors(ev)
        self.assertIn("Unknown baseline(s) magic", err)
        self.assertIn("2 labels for 1 input sets", err)
        self.assertIn("Give a ground truth", err)

    def test_denoise_validation(self):
        for tile, overlap, expected in ((20, 30, "overlap=30"), (4, 0, "tile_size=4")):  # the engine's rules
            dn = self.newProtocol(ProtSCNetDenoise, tileSize=tile, overlap=overlap)
            dn.inputModel.set(self.prots["train"].Models)
            dn.inputTomograms.set(self.prots["prepare"].Tomograms)
            self.assertIn(expected, self._errors(dn))
        dn = self.newProtocol(ProtSCNetDenoise, tileSize=20, overlap=10)  # what the engine accepts, the form does
        dn.inputModel.set(self.prots["train"].Models)
        dn.inputTomograms.set(self.prots["prepare"].Tomograms)
        self.assertNotIn("tile", self._errors(dn).lower())

    # ------------------------------------------------------------------ continue / load
    def test_continue_resumes_interrupted_training(self):
        """An interrupted training (checkpoint of epoch 1 on disk) is resumed by re-running the protocol."""
        prep = self.prots["prepare"]
        tr = self.newProtocol(ProtSCNetTrain, **dict(TINY_TRAIN, epochs=2))
        tr.inputTomograms.set(prep.Tomograms)
        tr.inputPriors.set(prep.PriorTomograms)
        self.proj.saveProtocol(tr)
        # the first epoch ran, then the run was killed: only checkpoint + log exist
        out = tr._getExtraPath(f"model_{TS_ID}")
        os.makedirs(out, exist_ok=True)
        cfg = os.path.join(out, "scipion_train_config.json")
        with open(cfg, "w") as fh:
            json.dump(dict(tr.trainConfig(), epochs=1), fh)
        noisy = prep.Tomograms.getFirstItem().getFileName()
        prior = prep.PriorTomograms.getFirstItem().getFileName()
        even, odd = ProtSCNetTrain._halves(prep.Tomograms.getFirstItem())  # what the protocol passes too
        subprocess.run([Plugin.getScnetCommand(), "train", "--noisy", os.path.abspath(noisy), "--prior",
                        os.path.abspath(prior), "--even", os.path.abspath(even), "--odd", os.path.abspath(odd),
                        "--output-dir", os.path.abspath(out), "--config", cfg, "--quiet"],
                       check=True, env=Plugin.getEnviron(), cwd=self.proj.getPath())
        os.remove(os.path.join(out, "model.pt"))
        self.launchProtocol(tr)
        log = open(tr.getLogPaths()[0]).read()
        self.assertIn("checkpoint found, resuming training", log)
        with open(tr.Models.getFirstItem().getLossLog()) as fh:
            rows = fh.read().strip().splitlines()[1:]
        self.assertEqual(len(rows), 6)  # 3 iterations from the interrupted run + 3 resumed
        self.assertEqual([int(r.split(",")[0]) for r in rows], list(range(1, 7)))

    def test_load_model_then_denoise(self):
        src = self.prots["train"].Models.getFirstItem().getPath()
        load = self.newProtocol(ProtSCNetLoadModel, modelFile=os.path.abspath(src))
        self.launchProtocol(load)
        self.assertIsInstance(load.Model, SCNetModel)
        self.assertTrue(os.path.exists(load.Model.getPath()))
        bad = self.newProtocol(ProtSCNetLoadModel, modelFile=os.path.abspath(self.gt))
        self.assertIn("is not a torch model file", "\n".join(bad.validate()))
        dn = self.newProtocol(ProtSCNetDenoise, denoiseHalves=False, tta=1)  # 2 test-time flips
        dn.inputModel.set(load.Model)
        dn.inputTomograms.set(self.prots["prepare"].Tomograms)
        self.launchProtocol(dn)
        self.assertIn("--tta 2", open(dn.getLogPaths()[0]).read())
        self.assertIn("2 test-time flip(s)", "\n".join(dn.summary()))
        self.assertEqual(dn.Tomograms.getSize(), 1)
        self.assertFalse(dn.Tomograms.getFirstItem().hasHalfMaps())

    # ------------------------------------------------------------------ simulate (§5.2)
    def _checkSimulation(self, sim, tsId, dims, sr, nTilts):
        self.assertIsInstance(sim.NoisyTiltSeries, SetOfTiltSeries)
        ts = sim.NoisyTiltSeries.getFirstItem()
        self.assertEqual(ts.getTsId(), tsId)
        self.assertEqual(ts.getSize(), nTilts)
        self.assertAlmostEqual(sim.NoisyTiltSeries.getSamplingRate(), sr, places=3)
        angles = [ti.getTiltAngle() for ti in ts.iterItems(orderBy="_tiltAngle")]
        self.assertEqual(angles, sorted(angles))
        for name in ("GroundTruth", "NoisyTomograms"):
            tomos = getattr(sim, name)
            self.assertIsInstance(tomos, SetOfTomograms)
            t = tomos.getFirstItem()
            self.assertEqual(t.getTsId(), tsId)
            self.assertEqual(os.path.basename(t.getFileName()), f"{tsId}.mrc")  # tomo matches by base name
            self.assertEqual(t.getDim(), dims)
            self.assertAlmostEqual(t.getSamplingRate(), sr, places=3)
            self.assertAlmostEqual(t.getOrigin().getShifts()[0], -dims[0] / 2 * sr)
        return ts

    def test_train_from_a_trained_model(self):
        """'Start from a trained model' (fine-tuning): the engine starts from its weights; another network is
        refused by _validate."""
        prep = self.prots["prepare"]
        load = self.newProtocol(ProtSCNetLoadModel,
                                modelFile=os.path.abspath(self.prots["train"].Models.getFirstItem().getPath()))
        self.launchProtocol(load)
        wide = self.newProtocol(ProtSCNetTrain, **dict(TINY_TRAIN, baseWidth=8))
        wide.inputTomograms.set(prep.Tomograms)
        wide.inputPriors.set(prep.PriorTomograms)
        wide.initModel.set(load.Model)
        self.assertIn("base_width 4 in the model, 8 here", self._errors(wide))
        shallow = self.newProtocol(ProtSCNetTrain, **dict(TINY_TRAIN, networkDepth=NETWORK_DEFAULTS["depth"] - 1))
        shallow.inputTomograms.set(prep.Tomograms)
        shallow.inputPriors.set(prep.PriorTomograms)
        shallow.initModel.set(load.Model)
        self.assertIn(f"depth {NETWORK_DEFAULTS['depth']} in the model, {NETWORK_DEFAULTS['depth'] - 1} here",
                      self._errors(shallow))
        tr = self.newProtocol(ProtSCNetTrain, **TINY_TRAIN)
        tr.inputTomograms.set(prep.Tomograms)
        tr.inputPriors.set(prep.PriorTomograms)
        tr.initModel.set(load.Model)
        self.assertEqual(self._errors(tr), "")
        self.launchProtocol(tr)
        self.assertIn("--init-model", open(tr.getLogPaths()[0]).read())
        with open(os.path.join(self.proj.getPath(), tr._getExtraPath(f"model_{TS_ID}"), "training_summary.json")) as fh:
            used = json.load(fh)["init_model"]
        self.assertTrue(os.path.samefile(used, os.path.join(self.proj.getPath(), load.Model.getPath())))
        self.assertIn("Started from the weights", "\n".join(tr.summary()))

    def test_simulate_from_phantom_feeds_prepare(self):
        sim = self.newProtocol(ProtSCNetSimulate, phantomShape="24,40,40", samplingRate=8.0, tiltRange=60,
                               tiltStep=10, sigma=10, seed=3)
        self.launchProtocol(sim)
        self._checkSimulation(sim, "phantom", (40, 40, 24), 8.0, 13)
        # exclude one view (as tomo's exclusion protocols do): prepare must leave it out of stack AND angles
        ts = sim.NoisyTiltSeries.getFirstItem()
        ti = ts.getFirstItem().clone()
        ti.setEnabled(False)
        ts.update(ti)
        ts.write()
        sim.NoisyTiltSeries.close()
        prep = self.newProtocol(ProtSCNetPrepareTomograms, thickness=24, priorFilter=1)  # Gaussian prior: quick
        prep.inputSetOfTiltSeries.set(sim.NoisyTiltSeries)
        self.assertEqual(prep.validate(), [])  # a valid input for the next step
        self.launchProtocol(prep)
        import mrcfile
        with mrcfile.mmap(prep._getExtraPath("phantom", "stack.mrcs")) as mrc:
            self.assertEqual(mrc.data.shape[0], 12)
        with open(prep._getExtraPath("phantom", "stack.tlt")) as fh:
            self.assertEqual(len(fh.read().split()), 12)
        self.assertEqual(prep.Tomograms.getFirstItem().getDim(), (40, 40, 24))

    def test_tilt_axis_not_along_y_without_alignment_is_refused(self):
        from tomo.protocols import ProtImportTs
        imp = self.newProtocol(ProtImportTs, filesPath=self.tsDir, filesPattern="{TS}.mrcs", anglesFrom=2,
                               samplingRate=SR, voltage=300, magnification=50000, sphericalAberration=2.7,
                               amplitudeContrast=0.1, tiltAxisAngle=85.0, dosePerFrame=2.0)
        self.launchProtocol(imp)
        for cls, kw in ((ProtSCNetPrepareTomograms, {}), (ProtSCNetSimulate, {"source": 1})):
            prot = self.newProtocol(cls, **kw)
            prot.inputSetOfTiltSeries.set(getattr(imp, imp.OUTPUT_NAME))
            self.assertIn(f"Tilt series {TS_ID}: the tilt axis is at 85 deg from Y", self._errors(prot))

    def test_simulate_from_tilt_series(self):
        imported = getattr(self.prots["import"], self.prots["import"].OUTPUT_NAME)
        sim = self.newProtocol(ProtSCNetSimulate, source=1, sigma=20, thickness=SHAPE[0])
        sim.inputSetOfTiltSeries.set(imported)
        self.launchProtocol(sim)
        self._checkSimulation(sim, TS_ID, (SHAPE[2], SHAPE[1], SHAPE[0]), SR, imported.getFirstItem().getSize())
        with open(sim._getExtraPath(TS_ID, "sim", "simulation.json")) as fh:
            self.assertEqual(json.load(fh)["gaussian_sigma"], 2.0)  # the paper's ground-truth smoothing

    def test_tilt_series_validation(self):
        imported = getattr(self.prots["import"], self.prots["import"].OUTPUT_NAME)
        prep = self.newProtocol(ProtSCNetPrepareTomograms, thickness=-1, radial="0.9")
        prep.inputSetOfTiltSeries.set(imported)
        err = self._errors(prep)
        self.assertIn("Thickness must be >= 0", err)
        self.assertIn("Radial filter must be 'R1,R2'", err)
        n = imported.getFirstItem().getSize()
        err = "\n".join(prep._validateTiltSeriesSet(imported, minTilts=n + 1, hint=" (test)"))
        self.assertIn(f"Tilt series {TS_ID} has {n} tilt images (excluded views not counted); at least {n + 1} "
                      f"are needed (test).", err)

    def test_simulate_validation(self):
        sim = self.newProtocol(ProtSCNetSimulate, phantomShape="24,40", sigma=-1)
        err = self._errors(sim)
        self.assertIn("Noise sigma must be >= 0", err)
        self.assertIn("Phantom size must be Z,Y,X", err)
        sim2 = self.newProtocol(ProtSCNetSimulate, source=1)
        self.assertIn("Choose the input tilt series", self._errors(sim2))
        sim3 = self.newProtocol(ProtSCNetSimulate, phantomShape="24,40,40", tiltStep=0)
        self.assertIn("Tilt step must be in", self._errors(sim3))
