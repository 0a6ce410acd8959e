"""Alignment applied once (scnet.align, `scnet align`, `scnet reconstruct --xf`): IMOD .xf conventions,
clear errors for bad .xf files, and a series rotated and shifted by a known transform reconstructs like
the unmoved one."""
import os

import numpy as np
import pytest

from scnet.align import (apply_xf, bin_stack, crop_xf, invert_xf, map_points, read_xf, rotation_degrees, write_xf)
from scnet.cli import main
from scnet.errors import SCNetInputError
from scnet.io import read_volume, write_volume
from scnet.phantom import make_phantom, tilt_angles
from scnet.recon import reproject
from scnet.tiltseries import write_angles


def _blob(shape, x, y, s=1.5):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * s * s)).astype(np.float32)


def _centroid(img):
    w = np.clip(img - 0.05 * img.max(), 0, None)
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    return float((w * xx).sum() / w.sum()), float((w * yy).sum() / w.sum())


def _xf(deg, dx, dy):
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), dx], [np.sin(a), np.cos(a), dy]])


@pytest.mark.parametrize("xf,point,expected", [
    (_xf(0, 3.0, -2.0), (10.0, 20.0), (13.0, 18.0)),        # shifts: DX along x (columns), DY along y (rows)
    (_xf(90, 0.0, 0.0), (40.0, 24.0), (32.0, 32.0)),        # rotation about (NX/2, NY/2) = (32, 24): x -> y
    (_xf(90, 2.0, 1.0), (32.0, 30.0), (28.0, 25.0)),        # rotate first, then shift
])
def test_imod_newstack_convention(xf, point, expected):
    """x' = A11 (x - NX/2) + A12 (y - NY/2) + NX/2 + DX (and y'), 0-based pixels, image[y, x] (IMOD cubinterp)."""
    shape = (48, 64)  # not square: swapping the axes or the centres cannot pass
    assert np.allclose(map_points(xf, [point], shape)[0], expected)
    out = apply_xf(_blob(shape, *point)[None], xf[None], out_shape=shape)[0]  # newstack: same size
    assert np.allclose(_centroid(out), expected, atol=0.05)


def test_a_quarter_turn_swaps_the_aligned_size():
    """A tilt axis along X (transforms rotating by ~90 deg): the aligned images are X by Y, the content kept."""
    img = _blob((48, 64), 50, 30)[None]
    out = apply_xf(img, _xf(90, 0, 0)[None])
    assert out.shape == (1, 64, 48)
    assert np.allclose(_centroid(out[0]), map_points(_xf(90, 0, 0), [(50, 30)], (48, 64), (64, 48))[0], atol=0.05)
    assert out.max() == pytest.approx(img.max(), abs=1e-3)


def test_identity_is_exact_and_inverse_undoes():
    img = np.random.default_rng(0).normal(size=(3, 40, 52)).astype(np.float32)
    ident = np.tile(_xf(0, 0, 0), (3, 1, 1))
    assert np.allclose(apply_xf(img, ident), img, atol=1e-4)
    xf = np.stack([_xf(4.3, 5.5, -2.25), _xf(-3, 0, 7), _xf(10, -4, 1)])
    assert np.allclose(invert_xf(invert_xf(xf)), xf)
    smooth = np.stack([_blob((40, 52), 26, 20, 6)] * 3)
    back = apply_xf(apply_xf(smooth, xf), invert_xf(xf))
    assert np.abs(back - smooth)[:, 10:-10, 10:-10].max() < 2e-3
    assert np.allclose(rotation_degrees(xf), [4.3, -3, 10])


def test_crop_xf_aligns_a_crop_like_the_same_window_of_the_full_images():
    rng = np.random.default_rng(2)
    img = np.stack([_blob((60, 80), 30 + 9 * np.cos(k), 28 + 7 * np.sin(k), 8) for k in range(2)])
    img += 0.01 * rng.normal(size=img.shape).astype(np.float32)
    xf = np.stack([_xf(4.3, -3.5, 1.25), _xf(-20, 2, -4)])
    full = apply_xf(img, xf)
    (oy, ox), (my, mx) = (9, 14), (41, 50)  # odd size, off-centre
    crop = apply_xf(img[:, oy:oy + my, ox:ox + mx], crop_xf(xf, (60, 80), (oy, ox), (my, mx)))
    inner = (slice(None), slice(8, -8), slice(8, -8))
    # the cubic spline's prefilter sees the crop's edges: differences fade within a few pixels (2e-3 here)
    assert np.allclose(crop[inner], full[:, oy:oy + my, ox:ox + mx][inner], atol=5e-3)


def test_read_write_round_trip(tmp_path):
    xf = np.stack([_xf(4.3, -27.094, -2.191), _xf(4.3, 12.5, 0.25)])
    p = str(tmp_path / "a.xf")
    write_xf(p, xf)
    assert np.allclose(read_xf(p, 2), xf, atol=1e-3)
    (tmp_path / "b.xf").write_text("# comment\n\n 1 0 0 1 2 3\n1 0 0 1 -1 -1  # second\n")
    assert np.allclose(read_xf(str(tmp_path / "b.xf"))[:, :, 2], [[2, 3], [-1, -1]])


@pytest.mark.parametrize("text,n,words", [
    ("1 0 0 1 0 0\n1 0 0 1 0 0\n1 0 0 1 0 0\n", 2, ["3 transforms", "2 images", "line 3"]),
    ("1 0 0 1 0 0\n\n1 0 0 1 0 0\n", 4, ["2 transforms", "4 images", "line 3", "images 3 to 4"]),
    ("1 0 0 1 0 0\n1 0 0 1 nan 0\n", 2, ["line 2", "NaN"]),
    ("1 0 0 1 0 0\n1 2 2 4 0 0\n", 2, ["line 2", "singular"]),
    ("1 0 0 1 0\n", 1, ["line 1", "six numbers"]),
    ("1 0 0 1 a 0\n", 1, ["line 1", "six numbers"]),
    ("# nothing\n", 1, ["no transforms"]),
])
def test_bad_xf_names_file_and_line(tmp_path, text, n, words):
    p = tmp_path / "bad.xf"
    p.write_text(text)
    with pytest.raises(SCNetInputError) as e:
        read_xf(str(p), n)
    for w in words + [str(p)]:
        assert w in str(e.value)


def test_a_fifo_or_folder_is_refused_before_it_is_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.xf")
    with pytest.raises(SCNetInputError, match="named pipe"):
        read_xf(str(tmp_path / "pipe.xf"), 1)  # would block forever if opened
    with pytest.raises(SCNetInputError, match="folder"):
        read_xf(str(tmp_path), 1)


def test_bin_stack_averages_blocks():
    s = np.arange(2 * 5 * 7, dtype=np.float32).reshape(2, 5, 7)
    b = bin_stack(s, 2)
    assert b.shape == (2, 2, 3)
    assert b[0, 0, 0] == pytest.approx(np.mean(s[0, :2, :2]))
    assert bin_stack(s, 1) is not None and np.array_equal(bin_stack(s, 1), s)
    with pytest.raises(SCNetInputError):
        bin_stack(s, 0)


# --------------------------------------------------------------------------- a series moved by a known transform

SHAPE = (32, 48, 64)  # Z, Y, X


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    """The phantom's tilt series (unmoved), the same images rotated ~-7 deg and shifted by known per-tilt
    transforms (the 'raw' series an aligner would see), and the .xf that aligns them back."""
    d = tmp_path_factory.mktemp("moved")
    angles = tilt_angles(60, 6)
    stack = reproject(make_phantom(SHAPE, 0, 10.0), angles)
    rng = np.random.default_rng(1)
    xf = np.stack([_xf(7 + rng.uniform(-1, 1), *rng.uniform(-4, 4, 2)) for _ in angles])
    raw = apply_xf(stack, invert_xf(xf))
    write_volume(str(d / "unmoved.mrcs"), stack, 10.0)
    write_volume(str(d / "raw.mrcs"), raw, 10.0)
    write_angles(str(d / "ts.tlt"), angles)
    write_xf(str(d / "raw.xf"), xf)
    return d


def _corr(a, b, m=8):
    a, b = a[:, m:-m, m:-m].ravel(), b[:, m:-m, m:-m].ravel()
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def _rec(d, stack, out, *extra):
    assert main(["reconstruct", str(d / stack), str(d / out), "--angles", str(d / "ts.tlt"), "--backend", "builtin",
                 "--thickness", str(SHAPE[0])] + list(extra)) == 0
    return read_volume(str(d / out))


def test_reconstruct_with_xf_matches_the_unmoved_series(moved):
    ref, _ = _rec(moved, "unmoved.mrcs", "ref.mrc")
    ali, info = _rec(moved, "raw.mrcs", "ali.mrc", "--xf", str(moved / "raw.xf"))
    raw, _ = _rec(moved, "raw.mrcs", "raw.mrc")
    assert info.voxel_size == pytest.approx(10.0)
    assert _corr(ali, ref) > 0.98           # measured 0.996 (two interpolations: the move and the alignment)
    assert _corr(raw, ref) < 0.8            # without the alignment: 0.50
    for half in ("even", "odd"):            # the halves come from the same aligned images
        h_ref, _ = _rec(moved, "unmoved.mrcs", f"ref_{half}.mrc", "--subset", half)
        h_ali, _ = _rec(moved, "raw.mrcs", f"ali_{half}.mrc", "--subset", half, "--xf", str(moved / "raw.xf"))
        assert _corr(h_ali, h_ref) > 0.98


def test_align_command_then_filter_and_reconstruct(moved):
    """The CLI chain: `scnet align` (with --bin 2) -> filter -> reconstruct, as SC-Net prepare runs it."""
    d = moved
    assert main(["align", str(d / "raw.mrcs"), str(d / "aligned.mrcs"), "--xf", str(d / "raw.xf"), "--bin", "2"]) == 0
    al, info = read_volume(str(d / "aligned.mrcs"))
    assert al.shape == (21, SHAPE[1] // 2, SHAPE[2] // 2) and info.voxel_size == pytest.approx(20.0)
    assert np.allclose(al, bin_stack(apply_xf(read_volume(str(d / "raw.mrcs"))[0], read_xf(str(d / "raw.xf"))), 2))
    assert main(["filter", str(d / "aligned.mrcs"), str(d / "filtered.mrcs"), "--method", "gaussian"]) == 0
    _, finfo = read_volume(str(d / "filtered.mrcs"))
    assert finfo.voxel_size == pytest.approx(20.0)
    b_ref, _ = _rec(d, "unmoved.mrcs", "ref_bin2.mrc", "--bin", "2")
    assert main(["reconstruct", str(d / "aligned.mrcs"), str(d / "al_bin2.mrc"), "--angles", str(d / "ts.tlt"),
                 "--backend", "builtin", "--thickness", str(SHAPE[0])]) == 0
    b_ali, binfo = read_volume(str(d / "al_bin2.mrc"))
    assert binfo.voxel_size == pytest.approx(20.0) and b_ali.shape == (SHAPE[0], SHAPE[1] // 2, SHAPE[2] // 2)
    assert _corr(b_ali, b_ref, 4) > 0.98


@pytest.mark.parametrize("argv_tail,words", [
    (["--xf", "{d}/short.xf"], ["short.xf", "20 transforms", "21 images"]),
    (["--bin", "0"], ["--bin"]),
    ([], ["--xf"]),
])
def test_align_bad_inputs_write_nothing(moved, tmp_path, capsys, argv_tail, words):
    lines = (moved / "raw.xf").read_text().splitlines()[:20]
    (moved / "short.xf").write_text("\n".join(lines) + "\n")
    out = tmp_path / "o.mrcs"
    rc = main(["align", str(moved / "raw.mrcs"), str(out)] + [a.format(d=moved) for a in argv_tail])
    err = capsys.readouterr().err
    assert rc == 2
    for w in words:
        assert w in err
    assert not out.exists()
    rc = main(["reconstruct", str(moved / "raw.mrcs"), str(out), "--angles", str(moved / "ts.tlt"),
               "--xf", str(moved / "short.xf")])
    assert rc == 2 and "line 20" in capsys.readouterr().err and not out.exists()
