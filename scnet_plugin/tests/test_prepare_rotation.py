"""'SC-Net prepare' with 'Rotate tilt images': a tilt series whose tilt axis is along X (here: the
simulated phantom's images rotated 90 deg clockwise, imported with tilt axis angle -90) gives, once
rotated back by the option, exactly the tomogram of the original series (tilt axis along Y)."""
import os
import shutil

import mrcfile
import numpy as np
from pyworkflow.tests import BaseTest, setupTestProject
from tomo.protocols import ProtImportTs

from scnet_plugin.constants import ROTATION_DEGREES, ROTATIONS
from scnet_plugin.protocols import ProtSCNetPrepareTomograms
from scnet_plugin.workflow import TS_ID, simulate_phantom_files

SHAPE = (32, 48, 64)  # Z, Y, X: not square, so a wrong rotation cannot pass
CCW, CW = ROTATION_DEGREES.index(90), ROTATION_DEGREES.index(-90)


class TestPrepareRotation(BaseTest):
    @classmethod
    def setUpClass(cls):
        setupTestProject(cls)
        work = os.path.abspath(cls.proj.getTmpPath("rot"))
        cls.tsDir, _ = simulate_phantom_files(work, shape=SHAPE, sigma=15, seed=3, voxelSize=10.0, tiltStep=6)
        cls.rotDir = os.path.join(work, "rotated")
        os.makedirs(cls.rotDir)
        with mrcfile.open(os.path.join(cls.tsDir, f"{TS_ID}.mrcs")) as m:
            data = np.asarray(m.data)
        with mrcfile.new(os.path.join(cls.rotDir, f"{TS_ID}.mrcs")) as m:  # 90 deg clockwise: axis along X
            m.set_data(np.ascontiguousarray(np.rot90(data, -1, axes=(2, 1))))
            m.voxel_size = 10.0
        shutil.copy(os.path.join(cls.tsDir, f"{TS_ID}.tlt"), cls.rotDir)
        cls.straight = cls._import(cls.tsDir, 0.0)
        cls.sideways = cls._import(cls.rotDir, -90.0)

    @classmethod
    def _import(cls, d, axis):
        imp = cls.newProtocol(ProtImportTs, filesPath=d, filesPattern="{TS}.mrcs", anglesFrom=2, samplingRate=10.0,
                              voltage=300, sphericalAberration=2.7, amplitudeContrast=0.1, tiltAxisAngle=axis,
                              dosePerFrame=2.0)
        cls.launchProtocol(imp)
        return imp.outputTiltSeries

    def _prepare(self, ts, rotate, launch=True):
        prep = self.newProtocol(ProtSCNetPrepareTomograms, thickness=SHAPE[0], backend=1, priorFilter=1,
                                doEvenOdd=False, rotateImages=rotate)
        prep.inputSetOfTiltSeries.set(ts)
        if launch:
            self.launchProtocol(prep)
        return prep

    def test_choices(self):
        self.assertEqual(len(ROTATIONS), len(ROTATION_DEGREES))
        self.assertEqual(ROTATION_DEGREES[0], 0)

    def test_axis_along_x_is_refused_without_or_with_the_wrong_rotation(self):
        for rotate in (0, CW):
            errors = "\n".join(self._prepare(self.sideways, rotate, launch=False).validate())
            self.assertIn("tilt axis is at -90 deg", errors)
            self.assertIn("Rotate tilt images", errors)
        self.assertEqual(self._prepare(self.sideways, CCW, launch=False).validate(), [])

    def test_rotated_back_gives_the_same_tomogram(self):
        with open(os.path.join(self.rotDir, f"{TS_ID}.mrcs"), "rb") as fh:
            imported = fh.read()
        ref = self._prepare(self.straight, 0)
        rot = self._prepare(self.sideways, CCW)
        with open(os.path.join(self.rotDir, f"{TS_ID}.mrcs"), "rb") as fh:
            self.assertEqual(fh.read(), imported)  # the rotation never writes through the link to the input
        a, b = ref.Tomograms.getFirstItem(), rot.Tomograms.getFirstItem()
        self.assertEqual(a.getDim(), (SHAPE[2], SHAPE[1], SHAPE[0]))
        self.assertEqual(b.getDim(), a.getDim())
        with mrcfile.open(a.getFileName()) as ma, mrcfile.open(b.getFileName()) as mb:
            va, vb = np.asarray(ma.data), np.asarray(mb.data)
            self.assertAlmostEqual(float(mb.voxel_size.x), 10.0, places=3)
        self.assertGreater(float(va.std()), 0)
        np.testing.assert_allclose(vb, va, atol=1e-4 * float(np.abs(va).max()))
