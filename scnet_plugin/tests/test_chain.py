"""SC-Net outputs chain into tomo's protocols, run as the README shows: the scripted example
scnet_plugin/examples/denoise_and_pick.py (two simulated tilt series) is run as a user runs it, then
its project is opened and checked:

* every output tomogram is <tsId>.mrc, so tomo's coordinate import gives each of the two denoised
  tomograms its own coordinate file (TS_01.txt: 2 coordinates, TS_02.txt: 3);
* tomo's 'extract 3D coordinates' moves them onto the raw tomograms, matched by tsId;
* the project opens in the Tomography view.
"""
import collections
import os
import subprocess
import sys
import time
import unittest

from pyworkflow.project import Manager
from tomo.constants import BOTTOM_LEFT_CORNER

from scnet_plugin.project_settings import TOMOGRAPHY_VIEW

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(REPO, "scnet_plugin", "examples", "denoise_and_pick.py")
PROJECT = "scnet_chain_test"


def _byTomo(coords):
    """{tsId: [(x, y, z) px from the bottom-left corner, ...]} and {tsId: tomogram file} of a
    SetOfCoordinates3D, coordinates read tomogram by tomogram (tomo matches them by tsId)."""
    pos, files = collections.defaultdict(list), {}
    tomos = [t.clone() for t in coords.getPrecedents().iterItems()]  # no nested iterations
    for t in tomos:
        files[t.getTsId()] = t.getFileName()
        for c in coords.iterCoordinates(volume=t):
            pos[t.getTsId()].append(tuple(round(v) for v in c.getPosition(BOTTOM_LEFT_CORNER)))
    return dict(pos), files


class TestChainIntoTomo(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        t0 = time.time()
        r = subprocess.run([sys.executable, EXAMPLE, "--simulate", "2", "--project", PROJECT],
                           cwd=REPO, capture_output=True, text=True, timeout=1200)
        cls.seconds = time.time() - t0
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
        cls.out = r.stdout
        cls.project = Manager().loadProject(PROJECT)
        runs = {p.getClassName(): p for p in cls.project.getRuns()}
        cls.prep, cls.dn = runs["ProtSCNetPrepareTomograms"], runs["ProtSCNetDenoise"]
        cls.train = runs["ProtSCNetTrain"]
        cls.coords, cls.ext = runs["ProtImportCoordinates3D"], runs["ProtTomoExtractCoords"]
        print(f"\n[chain] example script ran in {cls.seconds:.0f} s")

    def test_output_names_are_tsIds(self):
        for s in (self.prep.Tomograms, self.prep.PriorTomograms, self.dn.Tomograms):
            for t in s.iterItems():
                name = os.path.basename(t.getFileName())
                self.assertIn(name, (f"{t.getTsId()}.mrc", f"{t.getTsId()}_prior.mrc"))
        names = [os.path.basename(t.getFileName()) for t in self.dn.Tomograms.iterItems()]
        self.assertEqual(sorted(names), ["TS_01.mrc", "TS_02.mrc"])

    def test_each_denoised_tomogram_gets_its_own_coordinates(self):
        pos, files = _byTomo(self.coords.outputCoordinates)
        self.assertEqual({k: len(v) for k, v in pos.items()}, {"TS_01": 2, "TS_02": 3})
        self.assertEqual(sorted(pos["TS_01"]), [(10, 12, 8), (15, 16, 10)])
        dn = {t.getTsId(): t.getFileName() for t in self.dn.Tomograms.iterItems()}
        self.assertEqual(files, dn)

    def test_extract_onto_raw_tomograms_by_tsId(self):
        out = self.ext.coordinates3d
        pos, files = _byTomo(out)
        self.assertEqual({k: len(v) for k, v in pos.items()}, {"TS_01": 2, "TS_02": 3})
        raw = {t.getTsId(): t.getFileName() for t in self.prep.Tomograms.iterItems()}
        self.assertEqual(files, raw)
        src, _ = _byTomo(self.coords.outputCoordinates)
        self.assertEqual(sorted(pos["TS_02"]), sorted(src["TS_02"]))  # same grid: same positions

    def test_one_model_trained_on_both_tomograms(self):
        """'one model for all' on the example's two tomograms: one training, both tsIds, both denoised."""
        self.assertEqual(self.train.Model.getTrainedOn(), ["TS_01", "TS_02"])
        self.assertIn("One model trained on 2 tomograms (TS_01, TS_02)", "\n".join(self.dn.summary()))

    def test_project_opens_in_tomography_view(self):
        self.assertEqual(self.project.getProtocolView(), TOMOGRAPHY_VIEW)
