"""'SC-Net prepare' and 'SC-Net simulate' with one tilt series that fails: the others finish into the outputs,
the failing one goes to the FailedTiltSeries output with its reason (as the imod plugin does), in a real project."""
import os
import shutil

import mrcfile
import numpy as np
from pyworkflow.tests import BaseTest, setupTestProject

from scnet_plugin.protocols import ProtSCNetPrepareTomograms, ProtSCNetSimulate
from scnet_plugin.workflow import TS_ID, import_tilt_series, simulate_phantom_files

SHAPE = (16, 32, 32)
BAD = "damaged"


class TestPrepareFailedTiltSeries(BaseTest):
    @classmethod
    def setUpClass(cls):
        setupTestProject(cls)
        work = os.path.abspath(cls.proj.getTmpPath("failed"))
        tsDir, _ = simulate_phantom_files(work, shape=SHAPE, sigma=2, seed=1, voxelSize=10.0, tiltStep=6.0)
        for ext in ("mrcs", "tlt"):
            shutil.copy(os.path.join(tsDir, f"{TS_ID}.{ext}"), os.path.join(tsDir, f"{BAD}.{ext}"))
        imp = import_tilt_series(cls.newProtocol, cls.launchProtocol, tsDir, 10.0)
        cls.tiltSeries = getattr(imp, imp.OUTPUT_NAME)
        bad = cls.tiltSeries.getItem("_tsId", BAD)
        cls.nImages = bad.getSize()
        # the stack is damaged after the import (a NaN pixel, as a bad copy on a shared disk leaves it)
        with mrcfile.open(os.path.realpath(bad.getFirstItem().getFileName()), "r+") as m:
            m.data[3, 5, 5] = np.nan
        cls.prep = cls.newProtocol(ProtSCNetPrepareTomograms, thickness=SHAPE[0], backend=1, priorFilter=1,
                                   doEvenOdd=False)
        cls.prep.inputSetOfTiltSeries.set(cls.tiltSeries)
        cls.launchProtocol(cls.prep)
        cls.sim = cls.newProtocol(ProtSCNetSimulate, source=1, sigma=10, thickness=SHAPE[0], backend=1)
        cls.sim.inputSetOfTiltSeries.set(cls.tiltSeries)
        cls.launchProtocol(cls.sim)

    def test_the_others_finish(self):
        for name in ("Tomograms", "PriorTomograms"):
            out = getattr(self.prep, name)
            self.assertEqual([t.getTsId() for t in out.iterItems()], [TS_ID])
            self.assertTrue(os.path.exists(out.getFirstItem().getFileName()))

    def test_the_failing_one_is_in_the_failed_set_with_its_reason(self):
        failed = self.prep.FailedTiltSeries
        self.assertEqual([ts.getTsId() for ts in failed.iterItems()], [BAD])
        self.assertEqual(failed.getFirstItem().getSize(), self.nImages)  # with its tilt images
        summary = "\n".join(self.prep.summary())
        self.assertIn(f"Failed (in FailedTiltSeries): {BAD}: prior filter: the engine stopped (exit status 2; its "
                      f"message is in the run log)", summary)
        logs = "".join(open(p).read() for p in self.prep.getLogPaths() if os.path.exists(p))
        self.assertIn(f"Tilt series {BAD}: prior filter failed", logs)
        self.assertRegex(logs, rf"{BAD}/stack.mrcs contains 1 NaN or Inf voxel")  # the engine's words
        self.assertFalse(os.path.exists(self.prep._getExtraPath(BAD, "filtered.mrcs")))  # nothing half-written

    def test_simulate_goes_on_too(self):
        for name in ("NoisyTiltSeries", "GroundTruth", "NoisyTomograms"):
            self.assertEqual([t.getTsId() for t in getattr(self.sim, name).iterItems()], [TS_ID])
        self.assertEqual([ts.getTsId() for ts in self.sim.FailedTiltSeries.iterItems()], [BAD])
        self.assertIn(f"Failed (in FailedTiltSeries): {BAD}: simulation: the engine stopped",
                      "\n".join(self.sim.summary()))
