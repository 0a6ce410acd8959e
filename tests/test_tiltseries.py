"""Tilt-series I/O and the even/odd split."""
import mrcfile
import numpy as np
import pytest

from scnet.errors import SCNetInputError
from scnet.tiltseries import read_angles, read_tilt_series, split_even_odd, write_angles, write_tilt_series


def _stack(n=5, ny=6, nx=8):
    return np.random.default_rng(0).normal(size=(n, ny, nx)).astype(np.float32)


def test_angles_round_trip_and_comments(tmp_path):
    p = tmp_path / "a.tlt"
    write_angles(str(p), [-60, -57.5, 0, 12.25])
    assert np.allclose(read_angles(str(p)), [-60, -57.5, 0, 12.25])
    q = tmp_path / "b.rawtlt"
    q.write_text("# comment\n -3.0\n\n0.0  extra\n3.0\n")
    assert np.allclose(read_angles(str(q)), [-3, 0, 3])


@pytest.mark.parametrize("ext", [".mrcs", ".st", ".mrc"])
def test_read_write_tilt_series(tmp_path, ext):
    data = _stack()
    st, tlt = str(tmp_path / f"ts{ext}"), str(tmp_path / "ts.tlt")
    write_tilt_series(st, tlt, data, [-20, -10, 0, 10, 20], voxel_size=3.5, origin=(1.0, 2.0, 3.0))
    ts = read_tilt_series(st, tlt)
    assert ts.data.shape == (5, 6, 8) and ts.data.dtype == np.float32
    assert np.allclose(ts.data, data) and np.allclose(ts.angles, [-20, -10, 0, 10, 20])
    assert ts.voxel_size == pytest.approx(3.5) and np.allclose(ts.origin, (1, 2, 3))


def test_count_mismatch_names_both_files(tmp_path):
    st, tlt = str(tmp_path / "ts.mrcs"), str(tmp_path / "ts.tlt")
    with mrcfile.new(st) as m:
        m.set_data(_stack())
    write_angles(tlt, [-10, 0, 10])
    with pytest.raises(SCNetInputError) as e:
        read_tilt_series(st, tlt)
    assert st in str(e.value) and tlt in str(e.value) and "3" in str(e.value) and "5" in str(e.value)


def test_bad_angle_files(tmp_path):
    with pytest.raises(SCNetInputError, match="not found"):
        read_angles(str(tmp_path / "missing.tlt"))
    p = tmp_path / "bad.tlt"
    p.write_text("1.0\nabc\n")
    with pytest.raises(SCNetInputError, match="line 2"):
        read_angles(str(p))
    p.write_text("\n\n")
    with pytest.raises(SCNetInputError, match="no tilt angles"):
        read_angles(str(p))


def test_non_monotonic_and_out_of_range_angles(tmp_path):
    st, tlt = str(tmp_path / "ts.mrcs"), str(tmp_path / "ts.tlt")
    with mrcfile.new(st) as m:
        m.set_data(_stack())
    write_angles(tlt, [-20, 10, 0, 10, 20])
    with pytest.raises(SCNetInputError, match="increasing or decreasing"):
        read_tilt_series(st, tlt)
    write_angles(tlt, [-20, -10, 0, 10, 120])
    with pytest.raises(SCNetInputError, match="90"):
        read_tilt_series(st, tlt)


def test_2d_stack_rejected(tmp_path):
    st, tlt = str(tmp_path / "img.mrc"), str(tmp_path / "img.tlt")
    with mrcfile.new(st) as m:
        m.set_data((np.ones((6, 8)) + np.arange(8)).astype(np.float32))
    write_angles(tlt, [0])
    with pytest.raises(SCNetInputError, match="3D"):
        read_tilt_series(st, tlt)


def test_split_even_odd_by_acquisition_index():
    data = np.arange(7)[:, None, None] * np.ones((7, 2, 3))
    ang = np.arange(-30, 31, 10.0)
    (ed, ea), (od, oa) = split_even_odd(data, ang)
    assert np.allclose(ed[:, 0, 0], [0, 2, 4, 6]) and np.allclose(ea, [-30, -10, 10, 30])
    assert np.allclose(od[:, 0, 0], [1, 3, 5]) and np.allclose(oa, [-20, 0, 20])
    # dose-symmetric acquisition order: stack image i was acquired order[i]-th
    order = [6, 4, 2, 0, 1, 3, 5]
    (ed, ea), (od, oa) = split_even_odd(data, ang, order=order)
    assert np.allclose(ed[:, 0, 0], [0, 1, 2, 3]) and np.allclose(oa, [10, 20, 30])


def test_split_even_odd_errors():
    with pytest.raises(SCNetInputError):
        split_even_odd(np.ones((3, 2, 2)), [0, 1, 2])
    with pytest.raises(SCNetInputError):
        split_even_odd(np.ones((5, 2, 2)), [0, 1, 2, 3])
