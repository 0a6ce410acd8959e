"""scnet.io: round trip with geometry, validation, atomic writes, bounded VolumeWriter, input checks."""
import os

import mrcfile
import numpy as np
import pytest

from scnet.errors import SCNetInputError
from scnet.io import VolumeWriter, check_volume, read_info, read_volume, write_volume


def test_roundtrip_geometry(tmp_path):
    v = np.random.default_rng(0).standard_normal((5, 6, 7)).astype(np.float32)
    p = str(tmp_path / "a.mrc")
    write_volume(p, v, voxel_size=2.5, origin=(1.0, -2.0, 3.0))
    assert mrcfile.validate(p)
    w, info = read_volume(p)
    assert np.array_equal(v, w) and info.shape == (5, 6, 7)
    assert info.voxel_size == pytest.approx(2.5) and info.origin == (1.0, -2.0, 3.0)
    m, _ = read_volume(p, mmap=True)
    assert np.array_equal(np.asarray(m), v)
    assert read_info(p).shape == (5, 6, 7)
    assert not [f for f in os.listdir(tmp_path) if "partial" in f]


def test_volume_writer_atomic(tmp_path):
    p = str(tmp_path / "w.mrc")
    with VolumeWriter(p, (4, 5, 6), voxel_size=1.5, origin=(0, 0, 9.0)) as w:
        assert not os.path.exists(p)  # appears only when complete
        for z in range(4):
            w.data[z] = z
    v, info = read_volume(p)
    assert v[3].mean() == 3 and info.origin[2] == 9.0 and mrcfile.validate(p)
    q = str(tmp_path / "fail.mrc")
    with pytest.raises(RuntimeError):
        with VolumeWriter(q, (2, 2, 2)) as w:
            raise RuntimeError("boom")
    assert not os.path.exists(q) and not [f for f in os.listdir(tmp_path) if "partial" in f]


def test_read_errors(tmp_path):
    with pytest.raises(SCNetInputError, match="not found"):
        read_volume(str(tmp_path / "x.mrc"))
    (tmp_path / "small.mrc").write_bytes(b"123")
    with pytest.raises(SCNetInputError, match="truncated"):
        read_volume(str(tmp_path / "small.mrc"))
    (tmp_path / "junk.mrc").write_bytes(b"junk" * 600)
    with pytest.raises(SCNetInputError, match="MRC"):
        read_volume(str(tmp_path / "junk.mrc"))
    with pytest.raises(SCNetInputError, match="folder"):
        read_volume(str(tmp_path))


def test_check_volume():
    with pytest.raises(SCNetInputError, match="constant"):
        check_volume(np.zeros((3, 3, 3), np.float32), "v")
    a = np.ones((3, 3, 3), np.float32)
    a[0, 0, 0] = np.inf
    with pytest.raises(SCNetInputError, match="NaN or Inf"):
        check_volume(a, "v")
    with pytest.raises(SCNetInputError, match="3D"):
        check_volume(np.ones((3, 3)), "v")
    check_volume(np.arange(27, dtype=np.float32).reshape(3, 3, 3), "ok")
