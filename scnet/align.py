"""Tilt-series alignment applied once: IMOD ``.xf`` transforms, one interpolation per tilt image.

An aligner (IMOD ``tiltalign``, AreTomo, Warp) describes each tilt image's alignment as a 2D linear
transform; IMOD writes them one line per image, in stack order, to an ``.xf`` file::

    A11 A12 A21 A22 DX DY

Conventions (IMOD ``newstack``, the program that applies an ``.xf``; its interpolation routine
``cubinterp`` states them): a point at ``(x, y)`` of the raw image goes to

    x' = A11 (x - xc) + A12 (y - yc) + xc' + DX
    y' = A21 (x - xc) + A22 (y - yc) + yc' + DY

in the aligned image, where ``(xc, yc) = (NX/2, NY/2)`` is the centre of the raw image and
``(xc', yc')`` that of the aligned one, both in 0-based pixel indices (x = column, y = row of the MRC
section as stored; numpy ``image[y, x]``).  So the matrix rotates (and possibly scales) about the image
centre and the shifts come after, in pixels of the stack the ``.xf`` belongs to.  The aligned images
have the tilt axis along Y -- the geometry :mod:`scnet.recon` reconstructs.  Scipion's tomo plugin
keeps the same numbers as each TiltImage's 3x3 matrix ``[[A11, A12, DX], [A21, A22, DY], [0, 0, 1]]``
(the imod plugin reads and writes ``.xf`` files that way).

Each aligned pixel is sampled ONCE from the raw image (cubic B-spline, like newstack's default cubic
interpolation; the area that falls outside the raw image takes the raw image's mean, as newstack fills).
Binning (:func:`bin_stack`) averages blocks of the aligned pixels afterwards: no second interpolation.
The even/odd halves and the smoothed prior are all made from these same aligned images.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

import numpy as np

from .errors import SCNetInputError

XF_COLUMNS = "A11 A12 A21 A22 DX DY"
# a 2x2 part whose |determinant| is below this cannot be inverted in practice (a real alignment is
# a rotation with a magnification near 1, determinant near 1)
SINGULAR_DETERMINANT = 1e-6


def read_xf(path: str, n_images: Optional[int] = None) -> np.ndarray:
    """Read an IMOD ``.xf`` file -> ``(n, 2, 3)`` float64 ``[[A11, A12, DX], [A21, A22, DY]]`` per image.

    Blank lines and ``#`` comments are skipped.  Every error names the file and the line: a line
    without exactly six numbers, a NaN/Inf, a singular 2x2 matrix, or (with ``n_images``) a number of
    transform lines that differs from the number of tilt images.
    """
    from .files import read_text
    if not os.path.exists(path):
        raise SCNetInputError(f"Transform file not found: {path}. Give the IMOD .xf of the tilt stack "
                              f"(one line '{XF_COLUMNS}' per image).")
    rows, lines = [], []
    # a regular UTF-8 text file (a FIFO, device or folder is refused before it is opened)
    for i, line in enumerate(read_text(path, "Transform file").splitlines(), 1):
        s = line.split("#", 1)[0].strip()
        if not s:
            continue
        where = f"{path}, line {i}"
        parts = s.split()
        if len(parts) != 6:
            raise SCNetInputError(f"{where}: {line.strip()!r} has {len(parts)} value(s); an .xf line holds "
                                  f"six numbers {XF_COLUMNS}. Fix or re-export the file.")
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise SCNetInputError(f"{where}: {line.strip()!r} is not six numbers {XF_COLUMNS}.") from None
        if not all(np.isfinite(vals)):
            raise SCNetInputError(f"{where}: {line.strip()!r} holds NaN or Inf; the alignment that wrote it "
                                  "failed for this image. Re-run the alignment (or exclude the view).")
        a11, a12, a21, a22, dx, dy = vals
        det = a11 * a22 - a12 * a21
        if abs(det) < SINGULAR_DETERMINANT:
            raise SCNetInputError(f"{where}: the matrix [[{a11:g}, {a12:g}], [{a21:g}, {a22:g}]] is singular "
                                  f"(determinant {det:g}) and cannot map an image. Re-run the alignment.")
        rows.append([[a11, a12, dx], [a21, a22, dy]])
        lines.append(i)
    if not rows:
        raise SCNetInputError(f"{path} holds no transforms (expected one line '{XF_COLUMNS}' per tilt image).")
    xf = np.asarray(rows, dtype=np.float64)
    if n_images is not None:
        check_xf_count(xf, n_images, path, lines)
    return xf


def check_xf_count(xf: np.ndarray, n_images: int, path: str = "transforms", lines=None) -> None:
    """One transform per tilt image, in stack order; the error names the first line without an image
    (too many lines) or the last line (too few)."""
    n = len(xf)
    if n == int(n_images):
        return
    lines = list(lines) if lines is not None else list(range(1, n + 1))
    if n > n_images:
        where = f"line {lines[n_images]} is transform {n_images + 1}, with no tilt image for it"
    else:
        where = f"the last transform is on line {lines[-1]}; images {n + 1} to {n_images} have none"
    raise SCNetInputError(f"{path} has {n} transforms but the tilt stack has {n_images} images ({where}). "
                          "Give the .xf written for this stack (one line per image, in stack order; "
                          "excluded views removed from both).")


def write_xf(path: str, xf) -> None:
    """Write ``(n, 2, 3)`` transforms as an IMOD ``.xf`` (atomically)."""
    from .outputs import atomic
    xf = np.asarray(xf, dtype=np.float64).reshape(-1, 2, 3)
    with atomic(path) as tmp:
        with open(tmp, "w") as fh:
            for m in xf:
                fh.write(f"{m[0, 0]:12.7f}{m[0, 1]:12.7f}{m[1, 0]:12.7f}{m[1, 1]:12.7f}"
                         f"{m[0, 2]:12.3f}{m[1, 2]:12.3f}\n")


def rotation_degrees(xf) -> np.ndarray:
    """The in-plane rotation of each transform (degrees, counter-clockwise with y along the rows)."""
    xf = np.asarray(xf, dtype=np.float64).reshape(-1, 2, 3)
    return np.degrees(np.arctan2(xf[:, 1, 0], xf[:, 0, 0]))


def invert_xf(xf) -> np.ndarray:
    """The inverse transforms (IMOD ``xfinverse``), for images whose size the transform keeps:
    ``apply_xf(apply_xf(s, xf), invert_xf(xf))`` gives ``s`` back (up to interpolation and edges)."""
    xf = np.asarray(xf, dtype=np.float64).reshape(-1, 2, 3)
    out = np.empty_like(xf)
    for i, m in enumerate(xf):
        inv = np.linalg.inv(m[:, :2])
        out[i, :, :2] = inv
        out[i, :, 2] = -inv @ m[:, 2]
    return out


def crop_xf(xf, in_shape: Tuple[int, int], offset: Tuple[int, int], crop_shape: Tuple[int, int]) -> np.ndarray:
    """The transforms for a crop of the raw images: ``offset`` = (y0, x0) of the crop, ``crop_shape`` =
    (Y, X).  Aligning the crop with them gives the same window (offset, size) of the aligned full images
    (where the window's source lies inside the crop)."""
    xf = np.asarray(xf, dtype=np.float64).reshape(-1, 2, 3).copy()
    ny, nx = in_shape
    (oy, ox), (my, mx) = offset, crop_shape
    # a crop pixel p sits at p + o in the full image; rotating about c (full) = about c_m (crop) plus a shift
    k = np.array([ox + _centre(mx) - _centre(nx), oy + _centre(my) - _centre(ny)])
    for m in xf:
        m[:, 2] += m[:, :2] @ k - k
    return xf


def _centre(n: int) -> float:
    return n / 2.0  # IMOD: NX/2 in 0-based pixel indices


def source_coordinates(xf_i: np.ndarray, in_shape: Tuple[int, int],
                       out_shape: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """(y, x) of the raw image sampled by every pixel of the aligned image (the inverse of the .xf map)."""
    ny, nx = in_shape
    nyo, nxo = out_shape
    a = np.asarray(xf_i[:, :2], dtype=np.float64)
    inv = np.linalg.inv(a)
    v = np.arange(nyo, dtype=np.float64)[:, None] - _centre(nyo) - xf_i[1, 2]
    u = np.arange(nxo, dtype=np.float64)[None, :] - _centre(nxo) - xf_i[0, 2]
    x = inv[0, 0] * u + inv[0, 1] * v + _centre(nx)
    y = inv[1, 0] * u + inv[1, 1] * v + _centre(ny)
    return y, x


def map_points(xf_i, points_xy, in_shape, out_shape=None) -> np.ndarray:
    """Where raw-image points ``(x, y)`` land in the aligned image (the forward .xf map)."""
    ny, nx = in_shape
    nyo, nxo = out_shape or in_shape
    p = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    d = p - [_centre(nx), _centre(ny)]
    q = d @ np.asarray(xf_i[:, :2]).T + xf_i[:, 2] + [_centre(nxo), _centre(nyo)]
    return q


def aligned_shape(in_shape: Tuple[int, int], xf) -> Tuple[int, int]:
    """``(Y, X)`` of the aligned images: the raw size, with Y and X swapped when the transforms rotate by
    45 to 135 degrees (median over the images), so the specimen still fills the images (the rule of
    Scipion's tomo ``applyTransform``; with IMOD, etomo passes ``-size`` to newstack)."""
    rot = abs(float(np.median(rotation_degrees(xf))))
    ny, nx = (int(v) for v in in_shape)
    return (nx, ny) if 45 < rot < 135 else (ny, nx)


def apply_xf(stack, xf, out_shape: Optional[Tuple[int, int]] = None, progress=None) -> np.ndarray:
    """Align a tilt stack ``(n, Y, X)``: each image resampled once through its ``.xf`` transform.

    ``out_shape`` = ``(Y, X)`` of the aligned images (default: :func:`aligned_shape`).  Returns float32.
    """
    from scipy import ndimage
    s = np.asarray(stack)
    if s.ndim != 3 or s.size == 0:
        raise SCNetInputError(f"apply_xf: expected a tilt stack (n, Y, X), got shape {s.shape}.")
    xf = np.asarray(xf, dtype=np.float64).reshape(-1, 2, 3)
    check_xf_count(xf, s.shape[0])
    out_shape = tuple(int(v) for v in (out_shape or aligned_shape(s.shape[1:], xf)))
    out = np.empty((s.shape[0],) + out_shape, dtype=np.float32)
    for i in range(s.shape[0]):
        img = np.asarray(s[i], dtype=np.float64)
        y, x = source_coordinates(xf[i], img.shape, out_shape)
        out[i] = ndimage.map_coordinates(img, [y, x], order=3, mode="constant", cval=float(img.mean()),
                                         prefilter=True)
        if progress is not None:
            progress(i + 1, s.shape[0])
    return out


def bin_stack(stack, binning: int) -> np.ndarray:
    """Average ``binning x binning`` pixel blocks of every image (rows/columns beyond a whole block are
    dropped, as a binned camera read-out does).  ``binning=1`` returns the stack unchanged."""
    b = int(binning)
    if b < 1:
        raise SCNetInputError(f"binning must be an integer >= 1 (got {binning}).")
    s = np.asarray(stack, dtype=np.float32)
    if b == 1:
        return s
    n, ny, nx = s.shape
    if ny < b or nx < b:
        raise SCNetInputError(f"binning {b} is larger than the images ({ny} x {nx} px).")
    ny2, nx2 = ny // b, nx // b
    v = s[:, :ny2 * b, :nx2 * b].reshape(n, ny2, b, nx2, b)
    return v.mean(axis=(2, 4), dtype=np.float64).astype(np.float32)
