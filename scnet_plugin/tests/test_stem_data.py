"""`make real-data-stem` pieces that need no download: the wheel's data files are found and unzipped,
the acquisition log gives the real pixel size and tilt axis (the MRC header's 1 A is wrong),
binning averages pixels, and the tilt axis angle picks the rotation that brings it to Y."""
import os
import shutil
import tempfile
import unittest
import zipfile

import mrcfile
import numpy as np

from scnet_plugin.examples import stem_data as real_data

LOG = ("11/18/11 10:36:43    Image pixel size [nm]: 3.36\n"
       "11/18/11 10:36:43   Tilt Axis Angle [\xb0]:90.00\n")


class TestRealDataPieces(unittest.TestCase):
    def tmpDir(self):
        d = tempfile.mkdtemp(prefix="scnet-real-data-")
        self.addCleanup(shutil.rmtree, d, ignore_errors=True)
        return d

    def fakeWheel(self):
        """A wheel-shaped zip with the three members the script reads (tiny stack, the real log lines)."""
        tmp = self.tmpDir()
        stack = np.arange(3 * 4 * 6, dtype=np.int16).reshape(3, 4, 6)
        src = os.path.join(tmp, "src")
        os.mkdir(src)
        with mrcfile.new(os.path.join(src, "HAADF.mrc")) as m:
            m.set_data(stack)
        with open(os.path.join(src, "HAADF.rawtlt"), "w") as fh:
            fh.write("-2.0\n0.0\n2.0\n")
        with open(os.path.join(src, "HAADF.txt"), "wb") as fh:
            fh.write(LOG.encode("latin-1"))
        with zipfile.ZipFile(os.path.join(tmp, "etspy-1.3.0-py3-none-any.whl"), "w") as z:
            for name, member in real_data.MEMBERS.items():
                z.write(os.path.join(src, name), member)
        return tmp, stack

    def test_extract_parse_and_bin(self):
        wheelDir, stack = self.fakeWheel()
        d = real_data.extract(wheelDir)
        self.assertEqual(sorted(os.listdir(d)), ["HAADF.mrc", "HAADF.rawtlt", "HAADF.txt"])
        pixel, axis = real_data.acquisition(os.path.join(d, "HAADF.txt"))
        self.assertAlmostEqual(pixel, 33.6)
        self.assertAlmostEqual(axis, 90.0)
        out = real_data.binned_series(d, os.path.join(wheelDir, "bin2"), 2)
        with mrcfile.open(os.path.join(out, "HAADF.mrcs")) as m:
            b = np.asarray(m.data)
        self.assertEqual(b.shape, (3, 2, 3))
        self.assertAlmostEqual(float(b[1, 1, 2]), stack[1, 2:4, 4:6].astype(float).mean())
        with open(os.path.join(out, "HAADF.rawtlt")) as fh:
            self.assertEqual(fh.read().split(), ["-2.0", "0.0", "2.0"])

    def test_missing_wheel_says_what_to_do(self):
        with self.assertRaisesRegex(SystemExit, r"pip download --no-deps etspy==1\.3\.0"):
            real_data.extract(self.tmpDir())
