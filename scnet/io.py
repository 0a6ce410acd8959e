"""MRC input/output for volumes and tilt stacks (through ``mrcfile``).

Conventions used across the engine:

* arrays are numpy ``(Z, Y, X)`` as stored by MRC (``nz, ny, nx``); for a
  tilt stack the first axis is the tilt index;
* ``voxel_size`` is the pixel size in Angstrom (isotropic, taken from X);
* ``origin`` is the MRC header origin ``(x, y, z)`` in Angstrom, copied
  unchanged from input to output so that Scipion / IMOD see the same frame.

Outputs are written to ``NAME.partial-<pid>`` in the same folder (see
:mod:`scnet.outputs`) and renamed only once complete, finite and validated, so a
half-written file never looks valid.  Every voxel of an input is checked for
NaN/Inf, in slabs so memory stays bounded; complex MRC data (modes 3, 4) is refused.
"""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import mrcfile
import numpy as np

from .errors import SCNetInputError
from .outputs import clean_stale, partial_name, atomic


@dataclass
class VolumeInfo:
    """Geometry of an MRC file: shape ``(Z, Y, X)``, voxel size (A) and origin (A)."""

    shape: Tuple[int, int, int]
    voxel_size: float
    origin: Tuple[float, float, float] = (0.0, 0.0, 0.0)


def _check_exists(path: str) -> None:
    if not os.path.exists(path):
        raise SCNetInputError(f"File not found: {path}. Check the path (and that the previous step wrote it).")
    if os.path.isdir(path):
        raise SCNetInputError(f"Expected an MRC file but got a folder: {path}.")
    if os.path.getsize(path) < 1024:
        raise SCNetInputError(
            f"{path} is {os.path.getsize(path)} bytes, smaller than an MRC header (1024 bytes): "
            "the file is empty or truncated. Re-create it.")


@contextmanager
def _open(path: str, mmap: bool) -> Iterator[mrcfile.mrcfile.MrcFile]:
    _check_exists(path)
    opener = mrcfile.mmap if mmap else mrcfile.open
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


def read_info(path: str) -> VolumeInfo:
    """Read only the header geometry of an MRC file."""
    with _open(path, mmap=True) as mrc:
        return _info(mrc, path)


def _info(mrc, path: str) -> VolumeInfo:
    mode = int(mrc.header.mode)
    if mode in (3, 4) or np.iscomplexobj(mrc.data):
        raise SCNetInputError(
            f"{path} holds complex numbers (MRC mode {mode}), e.g. a Fourier transform; a real-valued "
            "tomogram or tilt stack is needed (reading it would silently drop the imaginary part).")
    shape = mrc.data.shape
    if mrc.data.ndim == 2:
        shape = (1,) + tuple(shape)
    vs = float(mrc.voxel_size.x)
    origin = (float(mrc.header.origin.x), float(mrc.header.origin.y), float(mrc.header.origin.z))
    return VolumeInfo(shape=tuple(int(s) for s in shape), voxel_size=vs if vs > 0 else 1.0, origin=origin)


def read_volume(path: str, mmap: bool = False, check: bool = True) -> Tuple[np.ndarray, VolumeInfo]:
    """Read a 3D MRC volume (or tilt stack) as ``(Z, Y, X)``.

    ``mmap=True`` returns a read-only memory map (bounded memory for big
    tomograms; values are checked on a strided subsample).  With
    ``check=True`` non-3D data, NaN/Inf voxels and constant volumes raise
    :class:`SCNetInputError`.
    """
    with _open(path, mmap=mmap) as mrc:
        info = _info(mrc, path)
        data = mrc.data
        if data is None or data.ndim != 3:
            nd = 0 if data is None else data.ndim
            raise SCNetInputError(
                f"{path} holds {nd}-D data (shape {None if data is None else data.shape}); a 3D volume "
                "or tilt stack (Z, Y, X) is needed.")
        if mmap:
            # keep the file open through a fresh memmap that outlives the context
            arr = np.memmap(path, dtype=data.dtype, mode="r", offset=mrc.header.nbytes + mrc.extended_header.nbytes,
                            shape=data.shape)
        else:
            arr = np.asarray(data).copy()
    if check:
        check_volume(arr, path)
    return arr, info


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
    with atomic(path) as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(data)
            _set_geometry(mrc, voxel_size, origin)
        _validate(tmp, path)


def _tmp_name(path: str) -> str:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    clean_stale(path)
    return partial_name(path)


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
        self._tmp = _tmp_name(path)
        self._mrc = None

    def __enter__(self) -> "VolumeWriter":
        from . import outputs
        outputs._install_handler()
        with outputs._live_lock:
            outputs._live.add(self._tmp)
        self._mrc = mrcfile.new_mmap(self._tmp, shape=self.shape, mrc_mode=2, overwrite=True)
        return self

    @property
    def data(self) -> np.ndarray:
        return self._mrc.data

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                _set_geometry(self._mrc, self.voxel_size, self.origin)
            self._mrc.close()
            if exc_type is None:
                _validate(self._tmp, self.path)
                os.replace(self._tmp, self.path)
        finally:
            from . import outputs
            with outputs._live_lock:
                outputs._live.discard(self._tmp)
            if os.path.exists(self._tmp):
                os.remove(self._tmp)
