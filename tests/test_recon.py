"""Reconstruction / re-projection: geometry, handedness, scale, IMOD wiring, bad input."""
import stat
import sys
import textwrap

import numpy as np
import pytest

from scnet.errors import SCNetInputError
from scnet import recon
from scnet.recon import ReconConfig, angular_weights, imod_tilt_command, reconstruct, reproject

from _geometry import analytic_projection_points

T, Y, X = 32, 6, 48
ANG = np.arange(-60, 61, 4.0)


def blob(z, x, sigma=1.5, shape=(T, Y, X)):
    t, ny, nx = shape
    zz, yy, xx = np.meshgrid(np.arange(t) - (t - 1) / 2, np.arange(ny) - (ny - 1) / 2,
                             np.arange(nx) - (nx - 1) / 2, indexing="ij")
    return np.exp(-((zz - z) ** 2 + yy ** 2 + (xx - x) ** 2) / (2 * sigma ** 2)).astype(np.float32)


def test_reproject_matches_analytic_projection_for_chosen_sign():
    """x' = x cos(theta) + z sin(theta): a blob at (+z, +x) moves to +x' for theta > 0."""
    v = blob(6, 10)
    p = reproject(v, [-40.0, 0.0, 30.0])
    for i, a in enumerate([-40.0, 0.0, 30.0]):
        ref = analytic_projection_points([(6, 0, 10, 1.0)], a, Y, X)
        assert np.linalg.norm(p[i] - ref) / np.linalg.norm(ref) < 0.05
        if a != 0:
            wrong = analytic_projection_points([(6, 0, 10, 1.0)], -a, Y, X)
            assert np.linalg.norm(p[i] - wrong) / np.linalg.norm(wrong) > 0.5


def test_asymmetric_blob_lands_at_plus_x_plus_z():
    """Analytic projections of a blob at z=+7, x=+9 reconstruct to that voxel (handedness)."""
    stack = np.stack([analytic_projection_points([(7, 0, 9, 1.0)], a, Y, X) for a in ANG]).astype(np.float32)
    vol = reconstruct(stack, ANG, ReconConfig(thickness=T, backend="builtin"))
    assert vol.shape == (T, Y, X)
    iz, iy, ix = np.unravel_index(np.argmax(vol), vol.shape)
    assert abs(iz - ((T - 1) / 2 + 7)) <= 1 and abs(ix - ((X - 1) / 2 + 9)) <= 1


def test_wbp_scale_full_range_is_one():
    """Full 180 deg sampling: a smooth blob comes back at its own amplitude (ramp + weights scale)."""
    v = blob(0, 0, sigma=4)
    a = np.arange(-90, 90, 2.0)
    rec = reconstruct(reproject(v, a), a, ReconConfig(thickness=T, backend="builtin", radial=(0.5, 0.0)))
    assert abs(rec[T // 2, Y // 2, X // 2] - v[T // 2, Y // 2, X // 2]) < 0.08
    assert np.abs(rec - v).max() < 0.1


def test_limited_range_scale_not_inflated():
    """+-60 deg: angular-spacing weights keep the 0-deg re-projection at the input's scale (no 1.5x)."""
    v = blob(0, 0, sigma=3) + 0.5 * blob(-5, -8, sigma=2)
    p = reproject(v, ANG)
    rec = reconstruct(p, ANG, ReconConfig(thickness=T, backend="builtin", radial=(0.5, 0.0)))
    p2 = reproject(rec, ANG)
    mid = ANG.size // 2
    ratio = p2[mid].max() / p[mid].max()
    assert 0.85 < ratio < 1.15
    assert np.corrcoef(p2[mid].ravel(), p[mid].ravel())[0, 1] > 0.98


def test_angular_weights_uniform_and_uneven():
    w = angular_weights(np.arange(-60, 61, 3.0))
    assert np.allclose(w, np.deg2rad(3.0))
    w2 = angular_weights([0.0, 10.0, 12.0])
    assert np.allclose(np.rad2deg(w2), [10.0, 6.0, 2.0])


def test_sirt_finds_blob():
    v = blob(5, -7)
    vol = reconstruct(reproject(v, ANG), ANG, ReconConfig(thickness=T, method="sirt", sirt_iterations=15,
                                                          backend="builtin"))
    iz, _, ix = np.unravel_index(np.argmax(vol), vol.shape)
    assert abs(iz - ((T - 1) / 2 + 5)) <= 1 and abs(ix - ((X - 1) / 2 - 7)) <= 1


def test_imod_tilt_command_exact():
    cmd = imod_tilt_command("in.st", "out.mrc", "in.tlt", 120, radial=(0.35, 0.035), use_gpu=True,
                            tilt_exe="/opt/imod/bin/tilt")
    assert cmd == ["/opt/imod/bin/tilt", "-InputProjections", "in.st", "-OutputFile", "out.mrc",
                   "-TILTFILE", "in.tlt", "-THICKNESS", "120", "-RADIAL", "0.35,0.035",
                   "-FalloffIsTrueSigma", "1", "-MODE", "2", "-PERPENDICULAR", "-AdjustOrigin",
                   "-UseGPU", "0", "-ActionIfGPUFails", "2,2"]
    assert "-UseGPU" not in imod_tilt_command("a", "b", "c", 10, tilt_exe="tilt")


def _no_imod(monkeypatch, tmp_path):
    monkeypatch.setenv("IMOD_DIR", str(tmp_path / "no_imod"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty_bin"))


def test_imod_requested_but_missing(monkeypatch, tmp_path):
    _no_imod(monkeypatch, tmp_path)
    assert not recon.imod_available()
    with pytest.raises(SCNetInputError, match="IMOD_DIR.*builtin"):
        reconstruct(np.ones((len(ANG), Y, X), np.float32), ANG, ReconConfig(thickness=T, backend="imod"))
    assert recon.pick_backend("auto") == "builtin"


def test_auto_picks_fake_imod_and_reorients(monkeypatch, tmp_path):
    """A stand-in `tilt` in $IMOD_DIR/bin writes (Y, thickness, X) like -PERPENDICULAR; we get (Z, Y, X)."""
    bindir = tmp_path / "imod" / "bin"
    bindir.mkdir(parents=True)
    script = bindir / "tilt"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys, numpy as np, mrcfile
        a = sys.argv
        out = a[a.index('-OutputFile') + 1]; t = int(a[a.index('-THICKNESS') + 1])
        with mrcfile.open(a[a.index('-InputProjections') + 1]) as m:
            n, ny, nx = m.data.shape
        assert len(open(a[a.index('-TILTFILE') + 1]).read().split()) == n
        v = np.zeros((ny, t, nx), np.float32); v[1, 2, 3] = 7.0
        with mrcfile.new(out, overwrite=True) as m:
            m.set_data(v)
        """))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("IMOD_DIR", str(tmp_path / "imod"))
    assert recon.imod_available()
    assert recon.pick_backend("auto") == "imod"
    vol = reconstruct(np.random.default_rng(0).normal(size=(5, 4, 8)).astype(np.float32),
                      [-20, -10, 0, 10, 20], ReconConfig(thickness=6, backend="auto"))
    assert vol.shape == (6, 4, 8) and vol[2, 1, 3] == 7.0 and vol.sum() == 7.0


@pytest.mark.skipif(not recon.imod_available(), reason="IMOD not installed")
def test_real_imod_blob_location():
    stack = np.stack([analytic_projection_points([(7, 0, 9, 1.0)], a, Y, X) for a in ANG]).astype(np.float32)
    vol = reconstruct(stack, ANG, ReconConfig(thickness=T, backend="imod"))
    iz, _, ix = np.unravel_index(np.argmax(vol), vol.shape)
    assert abs(iz - ((T - 1) / 2 + 7)) <= 1 and abs(ix - ((X - 1) / 2 + 9)) <= 1


@pytest.mark.parametrize("stack,angles,cfg,match", [
    (np.ones((5, 4, 8)), [-20, -10, 0, 10], ReconConfig(thickness=4), "counts must match"),
    (np.ones((4, 4, 8)), [-20, 0, -10, 10], ReconConfig(thickness=4), "increasing or decreasing"),
    (np.ones((4, 4, 8)), [-95, 0, 10, 20], ReconConfig(thickness=4), r"\[-90, 90\]"),
    (np.ones((4, 8)), [-20, 0, 10, 20], ReconConfig(thickness=4), "3D tilt stack"),
    (np.ones((0, 4, 8)), [], ReconConfig(thickness=4), "empty"),
    (np.ones((4, 4, 8)), [-20, 0, 10, 20], ReconConfig(thickness=0), ">= 1"),
    (np.ones((4, 4, 8)), [-20, 0, 10, 20], ReconConfig(thickness=33), "4x the image width"),
    (np.ones((4, 4, 8)), [-20, 0, 10, 20], ReconConfig(thickness=4, method="art"), "wbp or sirt"),
])
def test_bad_input(stack, angles, cfg, match):
    with pytest.raises(SCNetInputError, match=match):
        reconstruct(np.asarray(stack, np.float32), angles, cfg)


def test_default_thickness_half_width():
    vol = reconstruct(np.ones((3, 2, 16), np.float32), [-10, 0, 10], ReconConfig(backend="builtin"))
    assert vol.shape == (8, 2, 16)
