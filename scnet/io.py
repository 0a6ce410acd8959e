"""MRC input/output for volumes and tilt stacks (through ``mrcfile``).

Conventions used across the engine:

* arrays are numpy ``(Z, Y, X)`` as stored by MRC (``nz, ny, nx``); for a
  tilt stack the first axis is the tilt index;
* ``voxel_size`` is the pixel size in Angstrom, the same along X, Y and Z (a
  tilt stack: X and Y): anisotropic voxels, a negative/NaN/Inf size and a
  non-standard axis order (``mapc, mapr, maps`` other than 1, 2, 3) are refused
  on reading, since the network, the blind spot, the FSC shells and the
  reconstructions assume cubic voxels in Z, Y, X order; 0 = not set in the
  header (carried to the outputs as 0, never replaced by a guess);
* ``origin`` is the MRC header origin ``(x, y, z)`` in Angstrom, copied
  unchanged from input to output so that Scipion / IMOD see the same frame.

Inputs are checked before they are opened (a regular file, not a FIFO or device:
:mod:`scnet.files`); the header is read first for a specific error (negative size,
4-bit mode 101); gzip/bzip2-compressed MRC files are read into memory by every command.

Outputs are written to ``NAME.partial-<pid>`` in the same folder (see
:mod:`scnet.outputs`), fsynced and renamed only once complete, finite and validated, so a
half-written file never looks valid; the free space is checked first and a volume written
through a memory map has its blocks reserved (``posix_fallocate``): a full disk is a clear
error, never a bus error.  Every voxel of an input is checked for
NaN/Inf, in slabs so memory stays bounded; complex MRC data (modes 3, 4) is refused.
"""
from __future__ import annotations

import bz2
import errno
import gzip
import math
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import mrcfile
import numpy as np

from . import files, outputs
from .errors import SCNetInputError
from .outputs import atomic
from .rules import SAMPLING_TOLERANCE


@dataclass
class VolumeInfo:
    """Geometry of an MRC file: shape ``(Z, Y, X)``, voxel size (A) and origin (A)."""

    shape: Tuple[int, int, int]
    voxel_size: float
    origin: Tuple[float, float, float] = (0.0, 0.0, 0.0)


_MAGIC = {b"\x1f\x8b": gzip.open, b"BZ": bz2.open}  # compressed MRC files that mrcfile reads (not as memory maps)
MRC_MODES = {0, 1, 2, 3, 4, 6, 12, 101}


def _compressed(path: str):
    """The opener of a gzip/bzip2-compressed file, or None for a plain one."""
    with open(path, "rb") as fh:
        return _MAGIC.get(fh.read(2))


def _check_exists(path: str) -> None:
    """A regular MRC file (checked before opening: a FIFO or a device is refused, never read) with a
    readable header: a specific error for a negative size or an unsupported mode (4-bit: 101)."""
    files.require_file(path, "MRC file")
    opener = _compressed(path)
    if opener is None:
        with open(path, "rb") as fh:
            head = fh.read(1024)
    else:
        try:
            with opener(path, "rb") as fh:
                head = fh.read(1024)
        except (OSError, EOFError, ValueError) as exc:
            raise SCNetInputError(f"{path} is compressed but cannot be decompressed ({exc}); it may be truncated: "
                                  "copy it again.") from None
    if len(head) < 1024:
        raise SCNetInputError(
            f"{path} is {len(head)} bytes{' once decompressed' if opener else ''}, smaller than an MRC header (1024 "
            "bytes): the file is empty or truncated. Re-create it.")
    if head[208:212] != b"MAP ":
        raise SCNetInputError(f"{path} is not a readable MRC file (no 'MAP ' identifier in its header). It may be "
                              "corrupt or another kind of file; re-create it, or check it with `python -m "
                              "mrcfile.validate`.")
    stamp = ">" if head[212] == 0x11 else "<"  # machine stamp: 0x44 0x44 / 0x44 0x41 little, 0x11 0x11 big
    words = {e: np.frombuffer(head[:16], dtype=e + "i4").tolist() for e in (stamp, "<" if stamp == ">" else ">")}
    valid = [w for w in words.values() if min(w[:3]) >= 0 and w[3] in MRC_MODES]  # a stamp may be missing or wrong
    nx, ny, nz, mode = valid[0] if valid else words[stamp]
    if min(nx, ny, nz) < 0:
        raise SCNetInputError(f"{path}: its header gives a negative size (nx, ny, nz = {nx}, {ny}, {nz}); the header "
                              "is damaged. Re-create the file (or fix the header, e.g. with IMOD `alterheader`).")
    if mode == 101:
        raise SCNetInputError(f"{path} holds 4-bit packed data (MRC mode 101), which is not supported: convert it to "
                              "32-bit floats first (IMOD: `newstack -mode 2 IN OUT`).")
    if mode not in MRC_MODES:
        raise SCNetInputError(f"{path}: MRC mode {mode} is not a known data type (known: "
                              f"{', '.join(map(str, sorted(MRC_MODES)))}); the file is damaged or not an MRC file.")


@contextmanager
def _open(path: str, mmap: bool) -> Iterator[mrcfile.mrcfile.MrcFile]:
    _check_exists(path)
    compressed = _compressed(path) is not None
    opener = mrcfile.mmap if mmap and not compressed else mrcfile.open  # a compressed file is read into memory
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with opener(path, mode="r", permissive=False) as mrc:
                yield mrc
    except SCNetInputError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise SCNetInputError(
            f"{path} is not a readable MRC file ({exc}). It may be corrupt or truncated; "
            "re-create it, or check it with `python -m mrcfile.validate`.") from exc


def read_info(path: str, stack: bool = False) -> VolumeInfo:
    """Read only the header geometry of an MRC file (``stack``: a tilt stack, Z is the tilt index)."""
    with _open(path, mmap=True) as mrc:
        return _info(mrc, path, stack)


def _voxel_size(mrc, path: str, stack: bool) -> float:
    """The one voxel size (A) of X, Y (and Z unless ``stack``), or 0 when the header sets none.

    An axis with 0 is not set; the set ones must agree within :data:`scnet.rules.SAMPLING_TOLERANCE`.
    """
    h = mrc.header
    axes = "XY" if stack else "XYZ"
    sizes = []
    for a, cell, m in zip("XYZ", (h.cella.x, h.cella.y, h.cella.z), (h.mx, h.my, h.mz)):
        if a in axes:
            cell, m = float(cell), int(m)
            sizes.append(cell / m if m > 0 else (0.0 if cell == 0 else math.nan))
    if not all(math.isfinite(v) and v >= 0 for v in sizes):
        raise SCNetInputError(f"{path}: the header's voxel size ({', '.join(f'{a} {v:g}' for a, v in zip(axes, sizes))} "
                              "A) is not a positive number: the header is damaged. Set the voxel size (e.g. IMOD "
                              "`alterheader -del SIZE,SIZE,SIZE FILE`) and try again.")
    given = [v for v in sizes if v > 0]
    if given and max(given) - min(given) > SAMPLING_TOLERANCE * min(given):
        raise SCNetInputError(f"{path} has anisotropic voxels ({', '.join(f'{a} {v:.4g}' for a, v in zip(axes, sizes))} "
                              "A): SC-Net, its FSC and the reconstructions need the same size along every axis. "
                              "Resample it to cubic voxels first (e.g. IMOD `squeezevol`), or fix the header if it "
                              "is wrong.")
    return given[0] if given else 0.0


def _info(mrc, path: str, stack: bool = False) -> VolumeInfo:
    mode = int(mrc.header.mode)
    if mode in (3, 4) or np.iscomplexobj(mrc.data):
        raise SCNetInputError(
            f"{path} holds complex numbers (MRC mode {mode}), e.g. a Fourier transform; a real-valued "
            "tomogram or tilt stack is needed (reading it would silently drop the imaginary part).")
    order = (int(mrc.header.mapc), int(mrc.header.mapr), int(mrc.header.maps))
    if order not in ((1, 2, 3), (0, 0, 0)):
        raise SCNetInputError(
            f"{path} stores its axes in the order mapc, mapr, maps = {order[0]}, {order[1]}, {order[2]}, not 1, 2, 3 "
            "(columns X, rows Y, sections Z): read as it is, the volume would be transposed. Re-save it in the "
            "standard order (e.g. with IMOD `clip` or mrcfile after transposing the data).")
    shape = mrc.data.shape
    if mrc.data.ndim == 2:
        shape = (1,) + tuple(shape)
    origin = (float(mrc.header.origin.x), float(mrc.header.origin.y), float(mrc.header.origin.z))
    if not all(math.isfinite(o) for o in origin):
        raise SCNetInputError(f"{path}: the header's origin {origin} is not finite; the header is damaged. Fix it "
                              "(e.g. IMOD `alterheader -org 0,0,0 FILE`).")
    return VolumeInfo(shape=tuple(int(s) for s in shape), voxel_size=_voxel_size(mrc, path, stack), origin=origin)


def read_volume(path: str, mmap: bool = False, check: bool = True, stack: bool = False) -> Tuple[np.ndarray, VolumeInfo]:
    """Read a 3D MRC volume (or tilt stack, ``stack=True``: its Z is the tilt index) as ``(Z, Y, X)``.

    ``mmap=True`` returns a read-only memory map (bounded memory for big
    tomograms; a compressed file is read into memory instead).  With
    ``check=True`` non-3D data, NaN/Inf voxels and constant volumes raise
    :class:`SCNetInputError`; so do, always, a bad geometry (see the module docstring).
    """
    with _open(path, mmap=mmap) as mrc:
        info = _info(mrc, path, stack)
        data = mrc.data
        if data is None or data.ndim != 3:
            nd = 0 if data is None else data.ndim
            raise SCNetInputError(
                f"{path} holds {nd}-D data (shape {None if data is None else data.shape}); a 3D volume "
                "or tilt stack (Z, Y, X) is needed.")
        if mmap and _compressed(path) is None:
            # keep the file open through a fresh memmap that outlives the context
            arr = np.memmap(path, dtype=data.dtype, mode="r", offset=mrc.header.nbytes + mrc.extended_header.nbytes,
                            shape=data.shape)
        else:
            arr = np.asarray(data).copy()
    if check:
        check_volume(arr, path)
    return arr, info


def same_grid(ref: str, ref_info: VolumeInfo, other: str, other_info: VolumeInfo, what: str = "") -> None:
    """Two inputs that must lie on one grid: same shape and, where both headers set one, the same voxel size."""
    if tuple(ref_info.shape) != tuple(other_info.shape):
        raise SCNetInputError(f"{what or other} {other} has shape {tuple(other_info.shape)} but {ref} has "
                              f"{tuple(ref_info.shape)}: they must lie on the same grid.")
    a, b = ref_info.voxel_size, other_info.voxel_size
    if a > 0 and b > 0 and abs(a - b) > SAMPLING_TOLERANCE * min(a, b):
        raise SCNetInputError(f"{what or other} {other} has a voxel size of {b:.4g} A but {ref} has {a:.4g} A: they "
                              f"must lie on the same grid (resample one, or fix the header that is wrong).")


def same_content(a: np.ndarray, b: np.ndarray, chunk: int = None) -> bool:
    """True when two arrays (or memory maps) hold the same voxels; read in slabs, stops at the first difference."""
    if a.shape != b.shape:
        return False
    for (z, sa), (_, sb) in zip(_slabs(a, chunk or CHUNK_VOXELS), _slabs(b, chunk or CHUNK_VOXELS)):
        if not np.array_equal(sa, sb):
            return False
    return True


def distinct_halves(even: str, odd: str, even_data: np.ndarray = None, odd_data: np.ndarray = None,
                    what: str = "The even and odd half tomograms") -> None:
    """Refuse two halves that are one file (path, symlink, hard link) or hold the same voxels: a network
    trained (or an FSC computed) on a volume against itself learns the identity (FSC 1 everywhere)."""
    if outputs.same_file(even, odd):
        raise SCNetInputError(f"{what} are the same file ({even} and {odd}); give two independent ones (e.g. the "
                              f"reconstructions of the even and of the odd tilts).")
    if even_data is not None and odd_data is not None and same_content(even_data, odd_data):
        raise SCNetInputError(f"{what} {even} and {odd} hold identical voxels (one is a copy of the other); give two "
                              f"independent ones (e.g. the reconstructions of the even and of the odd tilts).")


CHUNK_VOXELS = 8_000_000  # voxels per slab when scanning a volume (bounded memory on memory maps)


def _slabs(arr: np.ndarray, chunk: int = CHUNK_VOXELS):
    rows = max(1, chunk // max(1, int(np.prod(arr.shape[1:]))))
    for z in range(0, arr.shape[0], rows):
        yield z, np.asarray(arr[z:z + rows])


def count_nonfinite(arr: np.ndarray, chunk: int = CHUNK_VOXELS) -> Tuple[int, Optional[Tuple[int, ...]]]:
    """Number of NaN/Inf voxels over EVERY voxel (streamed by z-slabs) and the index of the first one."""
    bad, first = 0, None
    for z, slab in _slabs(arr, chunk):
        fin = np.isfinite(slab)
        if not fin.all():
            nb = int(fin.size - np.count_nonzero(fin))
            if first is None:
                idx = np.argwhere(~fin)[0]
                first = (int(idx[0]) + z,) + tuple(int(i) for i in idx[1:])
            bad += nb
    return bad, first


def check_volume(arr: np.ndarray, name: str = "volume", chunk: int = CHUNK_VOXELS) -> None:
    """Raise :class:`SCNetInputError` for NaN/Inf voxels or a constant volume.

    Every voxel is checked, slab by slab (``chunk`` voxels at a time), so a memory map stays cheap.
    """
    if arr.ndim != 3:
        raise SCNetInputError(f"{name}: expected a 3D volume, got shape {arr.shape}.")
    if min(arr.shape) < 1 or arr.size == 0:
        raise SCNetInputError(f"{name} is empty (shape {arr.shape}).")
    if np.iscomplexobj(arr):
        raise SCNetInputError(f"{name} holds complex values; a real-valued volume is needed.")
    bad, first = 0, None
    lo, hi = np.inf, -np.inf
    for z, slab in _slabs(arr, chunk):
        fin = np.isfinite(slab)
        if not fin.all():
            if first is None:
                idx = np.argwhere(~fin)[0]
                first = (int(idx[0]) + z,) + tuple(int(i) for i in idx[1:])
            bad += int(fin.size - np.count_nonzero(fin))
        elif bad == 0:
            lo, hi = min(lo, float(slab.min())), max(hi, float(slab.max()))
    if bad:
        raise SCNetInputError(
            f"{name} contains {bad} NaN or Inf voxel(s) (first at z,y,x = {first}). "
            "Fix the reconstruction that produced it (or replace the bad voxels) before using it.")
    if lo == hi:
        raise SCNetInputError(
            f"{name} is constant (every voxel = {lo}): there is nothing to denoise. "
            "Check that the right file was given.")


def drop_pages(arr) -> None:
    """Release the resident pages of a file-backed memory map (keeps RSS bounded; data stays on disk).
    Anything else (an array in RAM) is left alone."""
    import mmap as _mmap
    a = arr
    while a is not None:
        m = getattr(a, "_mmap", None)
        if isinstance(m, _mmap.mmap):
            try:
                m.flush()
                m.madvise(_mmap.MADV_DONTNEED)
            except (AttributeError, OSError, ValueError):
                pass
            return
        a = getattr(a, "base", None)


def write_volume(path: str, data: np.ndarray, voxel_size: float = 1.0,
                 origin: Optional[Tuple[float, float, float]] = None) -> None:
    """Write float32 MRC with voxel size and origin, atomically, then validate it."""
    if np.iscomplexobj(data):
        raise SCNetInputError(f"Cannot write {path}: complex data (a real-valued volume is needed).")
    data = np.asarray(data, dtype=np.float32)
    if data.ndim not in (2, 3):
        raise SCNetInputError(f"Cannot write {path}: data must be 2D or 3D, got shape {data.shape}.")
    bad, first = count_nonfinite(data if data.ndim == 3 else data[None])
    if bad:
        raise SCNetInputError(f"Refusing to write {path}: the result holds {bad} NaN/Inf value(s) (first at "
                              f"{first}); the computation that produced it failed. Nothing was written.")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    outputs.ensure_space(path, data.nbytes + 1024)
    with atomic(path) as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(data)
            _set_geometry(mrc, voxel_size, origin)
        _validate(tmp, path)


def _set_geometry(mrc, voxel_size: float, origin) -> None:
    mrc.voxel_size = float(voxel_size)
    if origin is not None:
        mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = (float(o) for o in origin)
    mrc.update_header_stats()


def _validate(tmp: str, final: str) -> None:
    import io as _io
    out = _io.StringIO()
    if not mrcfile.validate(tmp, print_file=out):
        raise RuntimeError(f"Internal error: the MRC written for {final} does not validate:\n{out.getvalue()}")


class VolumeWriter:
    """Write a big float32 volume piece by piece in bounded memory.

    Usage::

        with VolumeWriter(path, shape, voxel_size, origin) as out:
            out.data[z0:z1, y0:y1, x0:x1] = block

    The file appears under ``path`` only when the ``with`` block ends without
    an exception (header stats updated and validated); otherwise it is removed.
    """

    def __init__(self, path: str, shape, voxel_size: float = 1.0, origin=None):
        self.path, self.shape = path, tuple(int(s) for s in shape)
        self.voxel_size, self.origin = voxel_size, origin
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._tmp = outputs.new_partial(path)
        self._mrc = None

    def __enter__(self) -> "VolumeWriter":
        nbytes = 1024 + 4 * int(np.prod(self.shape))
        outputs.ensure_space(self.path, nbytes)  # before the memory map: a full disk would be a bus error there
        outputs.track(self._tmp)
        try:
            self._mrc = mrcfile.new_mmap(self._tmp, shape=self.shape, mrc_mode=2, overwrite=True)
            fd = os.open(self._tmp, os.O_RDWR)
            try:  # reserve every block now: writes through the map can then never meet a full disk
                os.posix_fallocate(fd, 0, os.path.getsize(self._tmp))
            finally:
                os.close(fd)
        except OSError as exc:
            self.__exit__(type(exc), exc, None)
            if exc.errno == errno.ENOSPC:
                raise outputs.no_space(self.path, nbytes) from None
            raise
        return self

    @property
    def data(self) -> np.ndarray:
        return self._mrc.data

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self._mrc is not None:
                if exc_type is None:
                    _set_geometry(self._mrc, self.voxel_size, self.origin)
                self._mrc.close()
                self._mrc = None
            if exc_type is None:
                _validate(self._tmp, self.path)
                outputs.commit(self._tmp, self.path)
        finally:
            outputs.untrack(self._tmp)
            if os.path.lexists(self._tmp):
                os.remove(self._tmp)
