"""A data set in Scipion: 'SC-Net train' with 'one model for all' trains ONE model on every tomogram of
the set, 'SC-Net denoise' applies it to each (one step per tsId), and the outputs chain into tomo
(coordinates imported per tsId); a bad tomogram is refused by its tsId before any training."""
import json
import os

import mrcfile
import numpy as np
from pyworkflow.tests import BaseTest, setupTestProject
from tomo.objects import SetOfTomograms
from tomo.protocols import ProtImportCoordinates3D, ProtImportTomograms

from scnet_plugin.protocols import ProtSCNetAssignHalves, ProtSCNetDenoise, ProtSCNetTrain
from scnet_plugin.protocols.protocol_train import JOINT, MODE_ONE

SR = 10.0
SHAPE = (16, 32, 32)  # Z, Y, X
IDS = ["TS_a", "TS_b", "TS_c"]
TINY = dict(patchSize=16, batchSize=2, epochs=1, iterationsPerEpoch=2, baseWidth=2, trainMode=MODE_ONE)


def _tomogram(seed, scale, offset):
    """A few dense spheres in noise: a different phantom, intensity scale and offset per tomogram."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:SHAPE[0], :SHAPE[1], :SHAPE[2]]
    vol = np.zeros(SHAPE, np.float32)
    for _ in range(6):
        c, r = rng.uniform([4, 4, 4], np.array(SHAPE) - 4), rng.uniform(2, 5)
        vol[(z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 < r * r] = 1.0
    return ((vol + rng.normal(0, 0.8, SHAPE)) * scale + offset).astype(np.float32)


def _write(folder, tsId, vol):
    os.makedirs(folder, exist_ok=True)
    with mrcfile.new(os.path.join(folder, f"{tsId}.mrc"), overwrite=True) as m:
        m.set_data(vol)
        m.voxel_size = SR


class TestSCNetDataSet(BaseTest):
    @classmethod
    def setUpClass(cls):
        setupTestProject(cls)
        data = os.path.abspath(cls.proj.getTmpPath("data"))
        for k, tsId in enumerate(IDS):
            _write(os.path.join(data, "good"), tsId, _tomogram(k, scale=(1.0, 4.0, 0.5)[k], offset=(0, 20, -5)[k]))
            bad = _tomogram(k, 1.0, 0.0)
            if k == 1:
                bad[3, 4, 5] = np.nan
            _write(os.path.join(data, "bad"), tsId, bad)
            for half in ("even", "odd"):
                _write(os.path.join(data, half), tsId, _tomogram(k, 1.0, 0.0))
        cls.halvesDir = data
        cls.tomos = cls._import(os.path.join(data, "good"))
        cls.badTomos = cls._import(os.path.join(data, "bad"))
        cls.coordDir = os.path.join(data, "coords")  # tomo's import matches <tsId>.txt to <tsId>.mrc
        os.makedirs(cls.coordDir)
        for k, tsId in enumerate(IDS):  # k + 2 coordinates (tomo's txt reader needs >= 2 lines)
            with open(os.path.join(cls.coordDir, f"{tsId}.txt"), "w") as fh:
                fh.write("".join(f"{10 + j} {12 + j} 8\n" for j in range(k + 2)))

    @classmethod
    def _import(cls, folder):
        prot = cls.newProtocol(ProtImportTomograms, filesPath=folder, filesPattern="*.mrc", samplingRate=SR)
        cls.launchProtocol(prot)
        return prot.Tomograms

    def _train(self, tomos, **kw):
        tr = self.newProtocol(ProtSCNetTrain, **dict(TINY, **kw))
        tr.inputTomograms.set(tomos)
        return tr

    def test_one_model_trained_on_three_tomograms_denoises_all_three(self):
        tr = self._train(self.tomos)
        self.assertEqual(tr.validate(), [])
        self.launchProtocol(tr)
        model = tr.Model
        self.assertIsNone(model.getTsId())
        self.assertEqual(model.getTrainedOn(), IDS)
        self.assertTrue(os.path.exists(model.getPath()))
        with open(os.path.join(self.proj.getPath(), tr._getExtraPath(JOINT), "training_summary.json")) as fh:
            summary = json.load(fh)
        self.assertEqual([t["name"] for t in summary["tomograms"]], IDS)  # the engine names them by tsId
        rows = SHAPE[1] // 2 if summary["mode"] == "split" else SHAPE[1]  # split: even/odd rows along Y
        self.assertEqual([t["shape"] for t in summary["tomograms"]], [[SHAPE[0], rows, SHAPE[2]]] * 3)
        self.assertIn("One model trained on 3 tomograms (TS_a, TS_b, TS_c)", "\n".join(tr.summary()))
        self.assertIn("as one model on 3 noisy tomograms together", "\n".join(tr.methods()))
        log = "".join(open(p).read() for p in tr.getLogPaths()[:2])  # run.stdout, run.stderr
        self.assertIn("--tomograms", log)
        self.assertEqual(log.count("[scnet train] SC-Net training ("), 1)  # ONE training for the set

        dn = self.newProtocol(ProtSCNetDenoise, tileSize=16, overlap=4, tta=0)
        dn.numberOfThreads.set(3)  # two per-tsId steps at once
        dn.inputModel.set(model)
        dn.inputTomograms.set(self.tomos)
        self.launchProtocol(dn)
        out = dn.Tomograms
        self.assertIsInstance(out, SetOfTomograms)
        self.assertEqual(sorted(t.getTsId() for t in out.iterItems()), IDS)
        for t in out.iterItems():
            self.assertEqual(os.path.basename(t.getFileName()), f"{t.getTsId()}.mrc")
            self.assertEqual(t.getDim(), (SHAPE[2], SHAPE[1], SHAPE[0]))
            with mrcfile.open(t.getFileName()) as m:
                self.assertTrue(np.isfinite(m.data).all())
        self.assertIn("One model trained on 3 tomograms (TS_a, TS_b, TS_c); applied to each of them.",
                      "\n".join(dn.summary()))
        # chained into tomo: each denoised tomogram gets the coordinates of its own tsId
        coords = self.newProtocol(ProtImportCoordinates3D, filesPath=self.coordDir, filesPattern="*.txt",
                                  importFrom=1, boxSize=8)
        coords.importTomograms.set(out)
        self.launchProtocol(coords)
        counts = {}
        for t in [t.clone() for t in out.iterItems()]:
            counts[t.getTsId()] = len(list(coords.outputCoordinates.iterCoordinates(volume=t)))
        self.assertEqual(counts, {"TS_a": 2, "TS_b": 3, "TS_c": 4})

    def test_the_joint_model_keeps_each_tomograms_prior_for_the_slices_viewer(self):
        """With a prior set, the model trained on all three records each tsId's prior, and the slices
        viewer of a denoise run shows noisy | THAT tomogram's prior | denoised."""
        from scnet_plugin.viewers.viewers import _priorFor
        priors = self._import(os.path.join(self.halvesDir, "even"))  # any other set with the same tsIds
        tr = self._train(self.tomos)
        tr.inputPriors.set(priors)
        self.assertEqual(tr.validate(), [])
        self.launchProtocol(tr)
        dn = self.newProtocol(ProtSCNetDenoise)
        dn.inputModel.set(tr.Model)
        for tsId in IDS:
            expected = priors.getItem("_tsId", tsId).getFileName()
            self.assertEqual(tr.Model.getPriorFile(tsId), expected)
            self.assertEqual(_priorFor(dn, tsId), expected)
        self.assertIsNone(tr.Model.getPriorFile("TS_unknown"))

    def test_chosen_tsIds(self):
        tr = self._train(self.tomos, trainTsId="TS_c, TS_a")
        self.assertEqual(tr._trainIds(), ["TS_c", "TS_a"])
        self.assertTrue(tr._joint())
        self.assertEqual(tr.validate(), [])
        one = self._train(self.tomos, trainTsId="TS_b")
        self.assertFalse(one._joint())  # one tsId: that tomogram alone, as a one-tomogram training
        bad = self._train(self.tomos, trainTsId="TS_a nope")
        self.assertIn("'Train on tsIds': nope not among the noisy tomograms", "\n".join(bad.validate()))

    def test_a_nan_tomogram_is_refused_by_tsId_before_training(self):
        tr = self._train(self.badTomos)
        with self.assertRaises(Exception):
            self.launchProtocol(tr)
        text = tr.getErrorMessage() + "".join(open(p).read() for p in tr.getLogPaths()[:2])
        self.assertIn("Tomogram TS_b:", text)
        self.assertIn("NaN", text)
        d = os.path.join(self.proj.getPath(), tr._getExtraPath(JOINT))
        self.assertFalse(os.path.exists(os.path.join(d, "loss_log.csv")))  # no training started
        self.assertFalse(os.path.exists(os.path.join(d, "model.pt")))
        self.assertFalse(tr.hasAttribute("Model"))

    def test_a_missing_half_is_refused_by_tsId_before_work(self):
        """Half maps for TS_a and TS_c but not TS_b (its even half is gone): the form names TS_b."""
        halves = self.newProtocol(ProtSCNetAssignHalves)
        halves.inputTomograms.set(self.tomos)
        halves.inputEven.set(self._import(os.path.join(self.halvesDir, "even")))
        halves.inputOdd.set(self._import(os.path.join(self.halvesDir, "odd")))
        self.launchProtocol(halves)
        tr = self._train(halves.Tomograms)
        self.assertEqual(tr.validate(), [])  # all three with halves: the halves mode
        os.remove(os.path.join(self.halvesDir, "even", "TS_b.mrc"))
        self.assertIn("One model for all: tomograms TS_b have no even/odd half maps while the others have",
                      "\n".join(tr.validate()))
        self.assertEqual(self._train(halves.Tomograms, trainingMode=1).validate(), [])  # single: halves unused
