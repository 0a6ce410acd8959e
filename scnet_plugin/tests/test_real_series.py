"""`make real-data`'s chain on a crop of the REAL low-dose tilt series (scnet.sample_data; all 41 tilts,
a 192 x 192 px window at 10 A/px around a gold fiducial): tomo's import -> SC-Net IMOD .xf -> SC-Net
prepare (alignment applied once, Topaz-2D prior, even/odd halves) -> a tiny training -> denoise.

`make test` fetches the sdist (`make series-data`) and sets SCNET_REAL_DATA_DIR; run alone, without it,
these tests skip. Checked: the pixel size in every header, finite voxels, the halves mode, and the
alignment really applied -- the fiducial stays on its row within 1 px and its column follows its height
within 1 px in the aligned tilts within +-30 deg (beyond, the .xf itself is off by up to 3-6 px, the
same in every fiducial: docs/real_data.md), while in the raw crop it strays by several pixels.
"""
import json
import os
import shutil
import tempfile
import unittest

import mrcfile
import numpy as np

from scnet import sample_data as sd
from scnet.align import invert_xf, map_points, read_xf
from scnet.tiltseries import read_angles
from scnet_plugin.constants import TRAIN_SUMMARY
from scnet_plugin.examples import real_series

DATA = os.environ.get("SCNET_REAL_DATA_DIR")
CROP = (390, 40, 192, 192)            # y0, x0, h, w of the raw images
BEAD = sd.FIDUCIALS[1]                # (y, x, z) in the aligned full images
THICKNESS = 256                       # 10 A slices: the cell and the fiducials above and below it
TINY = ["--epochs", "1", "--iterations-per-epoch", "4", "--patch", "32", "--tta", "1", "--baselines", "gaussian"]


def _read(path):
    with mrcfile.open(path, permissive=True) as m:
        return np.asarray(m.data, dtype=np.float32), float(m.voxel_size.x)


class TestRealSeriesChain(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not DATA:
            raise unittest.SkipTest("SCNET_REAL_DATA_DIR not set (`make test` fetches the series and sets it)")
        cls.tmp = tempfile.mkdtemp(prefix="scnet-series-")
        cwd = os.getcwd()
        try:
            cls.res = real_series.main(["--cache-dir", DATA, "--crop", ",".join(map(str, CROP)), "--bin", "1",
                                        "--thickness", str(THICKNESS), *TINY, "--project", "TestRealSeries",
                                        "--output", os.path.join(cls.tmp, "series.png")])
            # (inside the project: its sets open their sqlite files by relative paths)
            prep, dn = cls.res["prepare"], cls.res["denoise"]
            odd, even = prep.Tomograms.getFirstItem().getHalfMaps(asList=True)
            dodd, deven = dn.Tomograms.getFirstItem().getHalfMaps(asList=True)
            cls.vols = dict(cls.res["volumes"], even=even, odd=odd, denoised_even=deven, denoised_odd=dodd,
                            prior=prep.PriorTomograms.getFirstItem().getFileName())
            cls.vols = {k: os.path.abspath(v) for k, v in cls.vols.items()}
            cls.rates = [prep.Tomograms.getSamplingRate(), prep.PriorTomograms.getSamplingRate(),
                         dn.Tomograms.getSamplingRate(), cls.res["train"].Model.getSamplingRate()]
            cls.modelDir = os.path.abspath(os.path.dirname(cls.res["train"].Model.getPath()))
        finally:
            os.chdir(cwd)
        cls.extra = os.path.join(cls.res["project"], cls.res["prepare"]._getExtraPath(sd.TS_ID))
        cls.angles = read_angles(os.path.join(cls.extra, "stack.tlt"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(getattr(cls, "tmp", ""), ignore_errors=True)

    def test_pixel_size_in_every_header_and_finite_voxels(self):
        vols = dict(self.vols, aligned_stack=os.path.join(self.extra, "stack.mrcs"))
        for name, path in vols.items():
            v, px = _read(path)
            self.assertAlmostEqual(px, sd.PIXEL, places=3, msg=name)
            self.assertTrue(np.isfinite(v).all(), name)
            if name != "aligned_stack":
                self.assertEqual(v.shape, (THICKNESS, CROP[2], CROP[3]), name)
        for rate in self.rates:
            self.assertAlmostEqual(rate, sd.PIXEL, places=3)

    def test_trained_in_the_halves_mode(self):
        with open(os.path.join(self.modelDir, TRAIN_SUMMARY)) as fh:
            self.assertEqual(json.load(fh)["mode"], "halves")

    def test_alignment_applied_a_fiducial_stays_put(self):
        aligned, _ = _read(os.path.join(self.extra, "stack.mrcs"))
        axis = sd.SHAPE[2] / 2 - CROP[1]                      # the tilt axis' column in the crop
        y, x = BEAD[0] - CROP[0], BEAD[1] - CROP[1]
        pos = sd.track_fiducial(aligned, self.angles, y, x, axis_x=axis)
        dy, dx, z = sd.fiducial_residuals(pos, self.angles, axis)
        self.assertLess(dy, 1.0)                               # on its row (measured 0.87)
        self.assertLess(dx, 1.0)                               # its column follows its height (0.76)
        self.assertAlmostEqual(z, BEAD[2], delta=3)
        # the same bead in the raw crop (where the 0 deg transform's inverse puts it) strays off its row
        raw, _ = _read(os.path.join(self.extra, "raw.mrcs"))
        xf = read_xf(os.path.join(self.extra, "raw.xf"), raw.shape[0])
        i0 = int(np.argmin(np.abs(self.angles)))
        rx, ry = map_points(invert_xf(xf)[i0], [(x, y)], raw.shape[1:])[0]
        dyRaw, _, _ = sd.fiducial_residuals(sd.track_fiducial(raw, self.angles, ry, rx, axis_x=axis),
                                            self.angles, axis)
        self.assertGreater(dyRaw, 3.0)                         # measured 5.75
