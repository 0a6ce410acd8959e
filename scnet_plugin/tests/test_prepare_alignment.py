"""'SC-Net prepare' applies a tilt series' alignment once, with the engine, and its tomograms match those
of the unmoved series.

The phantom's simulated tilt series is imported as is (the reference) and, moved by known per-tilt
rotations and shifts, twice with its alignment set the ways users set it:

* tomo's own 'misalign tilt-series' (shifts and rotations set as transformation matrices, the images
  interpolated by tomo's ``applyTransform``, the inverse matrices kept as their alignment);
* 'SC-Net IMOD .xf': raw images and an IMOD .xf file.

Each goes through SC-Net prepare (tomogram, prior, even/odd halves; once with binning 2). Also measured:
tomo's ``applyTransform`` (the route prepare no longer takes) moves images like the engine does.
"""
import os

import mrcfile
import numpy as np
from pyworkflow.tests import BaseTest, setupTestProject
from tomo.protocols import ProtImportTs, ProtTomoMisalignTiltSeries

from scnet.align import apply_xf, invert_xf, read_xf, write_xf
from scnet_plugin.protocols import ProtSCNetImportAlignment, ProtSCNetPrepareTomograms
from scnet_plugin.workflow import TS_ID, simulate_phantom_files

SHAPE = (32, 48, 64)  # Z, Y, X of the phantom: not square
STEP = 6.0            # 21 tilts


def _read(path):
    with mrcfile.open(path, permissive=True) as m:
        return np.asarray(m.data, dtype=np.float32), float(m.voxel_size.x)


def _corr(a, b, m=8):
    a, b = a[:, m:-m, m:-m].ravel().astype(np.float64), b[:, m:-m, m:-m].ravel().astype(np.float64)
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def _rot(deg, dx, dy):
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), dx], [np.sin(a), np.cos(a), dy]])


class TestPrepareAlignment(BaseTest):
    @classmethod
    def setUpClass(cls):
        setupTestProject(cls)
        work = os.path.abspath(cls.proj.getTmpPath("align"))
        cls.tsDir, _ = simulate_phantom_files(work, shape=SHAPE, sigma=2, seed=4, voxelSize=10.0, tiltStep=STEP)
        cls.straight = cls._import(cls.tsDir)
        # tomo's own: shifts (a0 + a1 i, b0 + b1 i) and a rotation of -6 deg set as matrices; the moved images
        # carry the inverse matrices as their alignment
        mis = cls.newProtocol(ProtTomoMisalignTiltSeries, shiftXNoiseToggle=True, a0param=-3.0, a1param=0.3,
                              a2param=0.0, a4param=0.0, a6param=0.0, shiftYNoiseToggle=True, b0param=2.0,
                              b1param=-0.2, b2param=0.0, b4param=0.0, b6param=0.0, angleNoiseToggle=True,
                              c0param=-6.0, c1param=0.0, c2param=0.0, c4param=0.0, c6param=0.0,
                              applyMatrix=True, addInverseMatrix=True)
        mis.inputSetOfTiltSeries.set(cls.straight)
        cls.launchProtocol(mis)
        cls.misaligned = mis.InterpolatedTiltSeries
        # SC-Net IMOD .xf: raw images moved by the inverse of a known .xf, and that .xf
        stack, _ = _read(os.path.join(cls.tsDir, f"{TS_ID}.mrcs"))
        rng = np.random.default_rng(3)
        cls.xf = np.stack([_rot(5 + rng.uniform(-1, 1), *rng.uniform(-4, 4, 2)) for _ in range(stack.shape[0])])
        cls.rawDir = os.path.join(work, "raw")
        os.makedirs(cls.rawDir)
        with mrcfile.new(os.path.join(cls.rawDir, f"{TS_ID}.mrcs")) as m:
            m.set_data(apply_xf(stack, invert_xf(cls.xf)))
            m.voxel_size = 10.0
        with open(os.path.join(cls.tsDir, f"{TS_ID}.tlt")) as src, \
                open(os.path.join(cls.rawDir, f"{TS_ID}.tlt"), "w") as dst:
            dst.write(src.read())
        cls.xfDir = os.path.join(work, "xf")
        os.makedirs(cls.xfDir)
        write_xf(os.path.join(cls.xfDir, f"{TS_ID}.xf"), cls.xf)
        imp = cls.newProtocol(ProtSCNetImportAlignment, filesPath=cls.xfDir, filesPattern="{TS}.xf")
        imp.inputSetOfTiltSeries.set(cls._import(cls.rawDir))
        cls.launchProtocol(imp)
        cls.withXf = imp.TiltSeries
        cls.ref = cls._prepare(cls.straight)

    @classmethod
    def _import(cls, d):
        imp = cls.newProtocol(ProtImportTs, filesPath=d, filesPattern="{TS}.mrcs", anglesFrom=2, samplingRate=10.0,
                              voltage=300, sphericalAberration=2.7, amplitudeContrast=0.1, tiltAxisAngle=0.0,
                              dosePerFrame=2.0)
        cls.launchProtocol(imp)
        return imp.outputTiltSeries

    @classmethod
    def _prepare(cls, ts, binning=1):
        prep = cls.newProtocol(ProtSCNetPrepareTomograms, thickness=SHAPE[0], backend=1, priorFilter=1,
                               doEvenOdd=True, binning=binning)
        prep.inputSetOfTiltSeries.set(ts)
        cls.launchProtocol(prep)
        return prep

    @staticmethod
    def _volumes(prep):
        t, p = prep.Tomograms.getFirstItem(), prep.PriorTomograms.getFirstItem()
        odd, even = t.getHalfMaps(asList=True)
        return {"tomogram": t.getFileName(), "prior": p.getFileName(), "even": even, "odd": odd}

    def _assertMatchesReference(self, prep, what):
        ref = self._volumes(self.ref)
        for name, path in self._volumes(prep).items():
            v, px = _read(path)
            r, _ = _read(ref[name])
            self.assertAlmostEqual(px, 10.0, places=3, msg=name)
            self.assertEqual(v.shape, r.shape, name)
            self.assertGreater(_corr(v, r), 0.98, f"{what}: {name}")

    def test_the_moved_series_carry_their_alignment(self):
        self.assertFalse(self.straight.hasAlignment())
        self.assertTrue(self.misaligned.hasAlignment())
        self.assertTrue(self.withXf.hasAlignment())
        mats = [ti.getTransform().getMatrix()[:2] for ti in self.withXf.getFirstItem().iterItems(orderBy="_index")]
        np.testing.assert_allclose(mats, self.xf, atol=1e-3)  # the .xf holds 7 decimals, shifts 3

    def test_tomos_misalignment_through_prepare_matches_the_unmoved_series(self):
        prep = self._prepare(self.misaligned)
        self._assertMatchesReference(prep, "tomo misalign")
        d = prep._getExtraPath(TS_ID)
        moved, _ = _read(os.path.join(d, "raw.mrcs"))
        aligned, _ = _read(os.path.join(d, "stack.mrcs"))
        straight, _ = _read(os.path.join(self.ref._getExtraPath(TS_ID), "stack.mrcs"))
        self.assertLess(_corr(moved, straight), 0.9)     # the images as imported are moved
        self.assertGreater(_corr(aligned, straight), 0.99)  # one interpolation brings them back
        # the .xf handed to the engine holds the tilt images' matrices
        ts = self.misaligned.getFirstItem()
        np.testing.assert_allclose(read_xf(os.path.join(d, "raw.xf")),
                                   [ti.getTransform().getMatrix()[:2] for ti in ts.iterItems(orderBy="_index")],
                                   atol=2e-3)

    def test_imod_xf_through_prepare_matches_the_unmoved_series(self):
        self._assertMatchesReference(self._prepare(self.withXf), "SC-Net IMOD .xf")

    def test_binning_2_after_the_alignment(self):
        prep = self._prepare(self.withXf, binning=2)
        ref = self._prepare(self.straight, binning=2)
        self.assertAlmostEqual(prep.Tomograms.getSamplingRate(), 20.0, places=3)
        for name, path in self._volumes(prep).items():
            v, px = _read(path)
            r, _ = _read(self._volumes(ref)[name])
            self.assertAlmostEqual(px, 20.0, places=3, msg=name)
            self.assertEqual(v.shape, (SHAPE[0], SHAPE[1] // 2, SHAPE[2] // 2), name)
            self.assertGreater(_corr(v, r, 4), 0.98, name)

    def test_tomos_applyTransform_moves_images_like_the_engine(self):
        """tomo's own route (xmipp's warpAffine through pyxmipp3): the same sign, centre (even sizes) and
        cubic interpolation as the engine's newstack convention."""
        ts = self.withXf.getFirstItem()
        out = os.path.abspath(self.proj.getTmpPath("tomo_applyTransform.mrcs"))
        ts.applyTransform(out)
        tomo, _ = _read(out)
        raw, _ = _read(os.path.join(self.rawDir, f"{TS_ID}.mrcs"))
        engine = apply_xf(raw, self.xf)
        self.assertEqual(tomo.shape, engine.shape)
        inner = (slice(None), slice(8, -8), slice(8, -8))
        self.assertLess(np.abs(tomo - engine)[inner].max(), 1e-3 * np.abs(engine).max())

    def test_a_bad_xf_is_refused_with_file_and_line(self):
        bad = os.path.join(self.proj.getTmpPath("badxf"))
        os.makedirs(bad, exist_ok=True)
        lines = [" ".join(f"{v:.4f}" for v in (m[0, 0], m[0, 1], m[1, 0], m[1, 1], m[0, 2], m[1, 2]))
                 for m in self.xf]
        lines[4] = "1 0 0 1 nan 0"
        with open(os.path.join(bad, f"{TS_ID}.xf"), "w") as fh:
            fh.write("\n".join(lines) + "\n")
        imp = self.newProtocol(ProtSCNetImportAlignment, filesPath=bad, filesPattern="{TS}.xf")
        imp.inputSetOfTiltSeries.set(self.straight)
        errors = "\n".join(imp.validate())
        self.assertIn(f"{TS_ID}.xf, line 5", errors)
        self.assertIn("NaN", errors)
        with open(os.path.join(bad, f"{TS_ID}.xf"), "w") as fh:
            fh.write("\n".join(lines[:-1]).replace("nan", "0") + "\n")
        errors = "\n".join(imp.validate())
        self.assertIn(f"{len(lines) - 1} transforms but the tilt stack has {len(lines)} images", errors)
        imp.filesPattern.set("missing_{TS}.xf")
        self.assertIn("not found", "\n".join(imp.validate()))
