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


# --------------------------------------------------------------------------- odd headers, geometry, special files

def _raw(tmp_path, name="a.mrc", voxel=(2.0, 2.0, 2.0), shape=(4, 5, 6)):
    p = str(tmp_path / name)
    with mrcfile.new(p, overwrite=True) as m:
        m.set_data(np.random.default_rng(0).normal(size=shape).astype(np.float32))
        m.voxel_size = voxel
    return p


def _patch(path, offset, fmt, *values):
    import struct
    raw = bytearray(open(path, "rb").read())
    struct.pack_into("<" + fmt, raw, offset, *values)
    open(path, "wb").write(bytes(raw))
    return path


@pytest.mark.parametrize("voxel,words", [((2.0, 2.0, 3.0), "anisotropic"), ((2.0, 2.5, 2.0), "anisotropic"),
                                         ((-1.0, -1.0, -1.0), "not a positive number"),
                                         ((np.nan, 2.0, 2.0), "not a positive number"),
                                         ((np.inf, np.inf, np.inf), "not a positive number")])
def test_invalid_or_anisotropic_voxel_sizes_are_refused(tmp_path, voxel, words):
    p = _raw(tmp_path, voxel=voxel)
    for read in (read_info, read_volume, lambda q: read_volume(q, mmap=True)):
        with pytest.raises(SCNetInputError, match=words):
            read(p)


def test_voxel_size_rules_within_tolerance_and_for_stacks(tmp_path):
    assert read_info(_raw(tmp_path, voxel=(2.0, 2.0, 2.01))).voxel_size == pytest.approx(2.0)  # 0.5 %: one size
    stack = _raw(tmp_path, "s.mrcs", voxel=(3.5, 3.5, 1.0))  # a tilt stack's Z is the tilt index, not a length
    assert read_info(stack, stack=True).voxel_size == pytest.approx(3.5)
    with pytest.raises(SCNetInputError, match="anisotropic"):
        read_info(stack)
    assert read_info(_raw(tmp_path, "z.mrc", voxel=(2.0, 2.0, 0.0))).voxel_size == pytest.approx(2.0)  # Z unset


def test_unset_voxel_size_stays_zero_never_one(tmp_path):
    """A header without a voxel size (0) reads as 0 and is written back as 0: no silent 1.0."""
    p = _raw(tmp_path, voxel=0.0)
    v, info = read_volume(p)
    assert info.voxel_size == 0.0
    write_volume(str(tmp_path / "o.mrc"), v, info.voxel_size, info.origin)
    with mrcfile.open(str(tmp_path / "o.mrc")) as m:
        assert float(m.voxel_size.x) == 0.0


def test_non_standard_axis_order_is_refused(tmp_path):
    p = _patch(_raw(tmp_path), 64, "iii", 2, 1, 3)
    with pytest.raises(SCNetInputError, match="mapc, mapr, maps = 2, 1, 3"):
        read_volume(p)
    assert read_info(_patch(_raw(tmp_path, "z.mrc"), 64, "iii", 0, 0, 0)).shape == (4, 5, 6)  # unset = standard


def test_negative_size_and_4bit_mode_have_their_own_messages(tmp_path):
    with pytest.raises(SCNetInputError, match="negative size"):
        read_info(_patch(_raw(tmp_path), 4, "i", -5))
    with pytest.raises(SCNetInputError, match="4-bit"):
        read_volume(_patch(_raw(tmp_path, "b.mrc"), 12, "i", 101))
    with pytest.raises(SCNetInputError, match="MRC mode 77"):
        read_volume(_patch(_raw(tmp_path, "c.mrc"), 12, "i", 77))


@pytest.mark.parametrize("compress", ["gzip", "bz2"])
def test_compressed_mrc_reads_the_same_everywhere(tmp_path, compress):
    """train reads with mmap=False, predict with mmap=True: a compressed MRC is read (in memory) by both."""
    import bz2
    import gzip
    p = _raw(tmp_path, shape=(16, 24, 20))
    opener = gzip.open if compress == "gzip" else bz2.open
    z = str(tmp_path / ("a.mrc.gz" if compress == "gzip" else "a.mrc.bz2"))
    with open(p, "rb") as src, opener(z, "wb") as dst:
        dst.write(src.read())
    ref, info = read_volume(p)
    for mmap in (False, True):
        v, zi = read_volume(z, mmap=mmap)
        assert np.array_equal(np.asarray(v), ref) and zi == info
    assert read_info(z) == info


def test_special_files_are_not_opened(tmp_path):
    from _trust import _Alarm, _special
    fifo = _special(tmp_path / "f.mrc", "fifo")
    with _Alarm(30):
        for read in (read_info, read_volume, lambda q: read_volume(q, mmap=True)):
            with pytest.raises(SCNetInputError, match="named pipe"):
                read(fifo)
        with pytest.raises(SCNetInputError, match="character device"):
            read_volume("/dev/zero")
    os.symlink(str(tmp_path / "gone.mrc"), str(tmp_path / "dangling.mrc"))
    with pytest.raises(SCNetInputError, match="broken symbolic link"):
        read_volume(str(tmp_path / "dangling.mrc"))


def test_text_files_decode_with_a_clear_error(tmp_path):
    from scnet.files import read_text
    (tmp_path / "u8.txt").write_bytes("\ufeff-60\n# 60°\n".encode("utf-8"))
    assert read_text(str(tmp_path / "u8.txt")) == "-60\n# 60°\n"  # UTF-8 with a BOM is fine
    (tmp_path / "u16.txt").write_bytes("-60\n60\n".encode("utf-16"))
    with pytest.raises(SCNetInputError, match="UTF-16"):
        read_text(str(tmp_path / "u16.txt"))
    (tmp_path / "l1.txt").write_bytes("-60\n60 # 60°\n".encode("latin-1"))
    with pytest.raises(SCNetInputError, match="line 2: byte 0xb0 is not UTF-8"):
        read_text(str(tmp_path / "l1.txt"))


def test_same_grid_and_distinct_halves(tmp_path):
    from scnet.io import VolumeInfo, distinct_halves, same_grid
    a, b = VolumeInfo((4, 5, 6), 2.0), VolumeInfo((4, 5, 6), 2.0)
    same_grid("a", a, "b", b)
    same_grid("a", a, "b", VolumeInfo((4, 5, 6), 0.0))  # one header unset: nothing to compare
    with pytest.raises(SCNetInputError, match="voxel size of 2.1"):
        same_grid("a", a, "b", VolumeInfo((4, 5, 6), 2.1))
    with pytest.raises(SCNetInputError, match="shape"):
        same_grid("a", a, "b", VolumeInfo((4, 5, 7), 2.0))
    p = _raw(tmp_path)
    os.link(p, str(tmp_path / "hard.mrc"))
    with pytest.raises(SCNetInputError, match="same file"):
        distinct_halves(p, str(tmp_path / "hard.mrc"))
    x = np.random.default_rng(0).normal(size=(40, 8, 8))
    y = x.copy()
    with pytest.raises(SCNetInputError, match="identical voxels"):
        distinct_halves("e", "o", x, y)
    y[39, 7, 7] += 1  # one voxel apart, in the last slab
    distinct_halves("e", "o", x, y)
    from scnet.io import same_content
    assert not same_content(x, y, chunk=64) and same_content(x, x.copy(), chunk=64)
