"""Output safety for every ``scnet`` command: one guard, one atomic write, one folder lock.

* :func:`guard` -- before any work: no output may be the same file as an input
  (resolved paths and ``os.path.samefile``, so symlinks and hard links count), outputs
  are distinct, an output is not a folder, an existing output is a regular file (never a
  device, FIFO or socket), and its folder can be created and written.
* :func:`atomic` -- write to ``NAME.partial-<pid>`` (visibly temporary, never ending in
  ``.mrc``), fsync it, ``os.replace`` onto ``NAME`` only when complete (then fsync the
  folder); on an error or SIGTERM the partial files of THIS process are removed -- never a
  file another process made (it could be an input).  A full disk is one line:
  ``No space left on <folder>: N MB needed`` (:func:`ensure_space` checks it first).
* :func:`lock_folder` -- an exclusive ``flock`` on ``DIR/.scnet.lock``: a second training
  into the same folder is refused while the first runs (released when the process dies).
* :func:`keep_previous` -- a training that fails leaves its folder as it found it (the
  previous model included); an interrupted one keeps the previous complete results in
  ``DIR/.scnet-previous/`` until a new model is complete.
"""
from __future__ import annotations

import errno
import fcntl
import os
import shutil
import signal
import threading
from contextlib import contextmanager
from typing import Iterable, Iterator, Optional, Sequence

from .errors import SCNetInputError
from .files import output_target_errors

PARTIAL_TAG = ".partial-"
LOCK_NAME = ".scnet.lock"

# --------------------------------------------------------------------------- the guard


def same_file(a: str, b: str) -> bool:
    """True when paths ``a`` and ``b`` name the same file (symlinks resolved, hard links compared)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def _writable_parent(d: str, what: str) -> None:
    """``d`` must be a folder that exists and is writable, or be creatable inside one."""
    probe = os.path.abspath(d)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise SCNetInputError(f"{what}: {probe} is an existing file, not a folder; choose another location.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise SCNetInputError(f"{what}: cannot write into {probe} (permission denied); choose a writable "
                              f"folder.")


def guard(outputs: Iterable[Optional[str]] = (), inputs: Iterable[Optional[str]] = (),
          dirs: Iterable[Optional[str]] = ()) -> None:
    """Refuse (``SCNetInputError``) before any work when an output would destroy an input or cannot be written.

    ``outputs``: files the command will write; ``inputs``: files it reads; ``dirs``: output
    folders (must not be existing files, must be creatable and writable).
    """
    outs = [o for o in outputs if o is not None]
    ins = [i for i in inputs if i]
    dirs = [d for d in dirs if d is not None]
    if any(not str(p).strip() for p in outs + dirs):
        raise SCNetInputError("An output path is empty; give a file or folder name.")
    for d in dirs:
        if os.path.exists(d) and not os.path.isdir(d):
            raise SCNetInputError(f"Output folder {d} is an existing file; give a folder name.")
        _writable_parent(d, f"Output folder {d}")
    for k, o in enumerate(outs):
        if os.path.isdir(o):
            raise SCNetInputError(f"Output {o} is a folder; give a file name (e.g. {os.path.join(o, 'out.mrc')}).")
        for why in output_target_errors(o):
            raise SCNetInputError(why)
        for i in ins:
            if same_file(o, i):
                raise SCNetInputError(f"Output {o} is the same file as the input {i} (same path, symlink or hard "
                                      f"link): it would be overwritten. Choose another output name.")
        for o2 in outs[:k]:
            if same_file(o, o2):
                raise SCNetInputError(f"Two outputs are the same file: {o2} and {o}; give different names.")
        _writable_parent(os.path.dirname(os.path.abspath(o)), f"Output {o}")


# --------------------------------------------------------------------------- atomic writes

_live: set = set()
_live_lock = threading.Lock()
_handler_installed = False


def partial_name(path: str, pid: Optional[int] = None) -> str:
    """``PATH.partial-<pid>``: the temporary name of ``path`` while it is written."""
    return f"{path}{PARTIAL_TAG}{os.getpid() if pid is None else pid}"


def new_partial(path: str) -> str:
    """A temporary name for ``path`` that no file has yet (``PATH.partial-<pid>``, else ``...-<pid>.<k>``):
    whatever already exists under such a name is not this process's and is never touched."""
    tmp, k = partial_name(path), 0
    while os.path.lexists(tmp):
        k += 1
        tmp = f"{partial_name(path)}.{k}"
    return tmp


def _on_sigterm(signum, frame):
    with _live_lock:
        paths = list(_live)
    for p in paths:
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.remove(p)
        except OSError:
            pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handler() -> None:
    global _handler_installed
    if _handler_installed or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)
    _handler_installed = True


def track(path: str) -> None:
    """Remove ``path`` (a file or folder this process creates) if the process gets SIGTERM before :func:`untrack`."""
    _install_handler()
    with _live_lock:
        _live.add(path)


def untrack(path: str) -> None:
    with _live_lock:
        _live.discard(path)


def free_bytes(folder: str) -> int:
    """Bytes an unprivileged writer may still use on ``folder``'s file system."""
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def no_space(path: str, needed: Optional[int] = None) -> OSError:
    """The one-line full-disk error: ``No space left on <folder>: N MB needed, M MB free`` (``path``: the
    file being written, or its folder)."""
    folder = os.path.isdir(path)
    d = os.path.abspath(path) if folder else os.path.dirname(os.path.abspath(path))
    try:
        free = f"{free_bytes(d) / 1e6:.1f} MB free"
    except OSError:
        free = ""
    if needed:
        detail = f": {needed / 1e6:.1f} MB needed" + (f", {free}" if free else "")
    else:
        detail = " (" + ", ".join(([] if folder else [f"writing {os.path.basename(path)}"]) + ([free] if free else [])) \
            + ")" if free or not folder else ""
    return OSError(errno.ENOSPC, f"No space left on {d}{detail}; free some space or choose another output folder")


MARGIN_BYTES = 4 * 2 ** 20   # kept free beyond an output's size (file-system metadata, logs)


def ensure_space(path: str, nbytes: int) -> None:
    """Before writing ``nbytes`` to ``path``: enough free space on its file system, else :func:`no_space`."""
    d = os.path.dirname(os.path.abspath(path))
    try:
        free = free_bytes(d)
    except OSError:
        return  # no statvfs here: the write itself reports a full disk
    if free < int(nbytes) + MARGIN_BYTES:
        raise no_space(path, int(nbytes) + MARGIN_BYTES)


def fsync_path(path: str) -> None:
    """Flush a written file (or a folder's entries) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):  # a file system without fsync for folders
            raise
    finally:
        os.close(fd)


def commit(tmp: str, path: str) -> None:
    """fsync ``tmp`` and rename it onto ``path`` (refused if ``path`` became a device, FIFO or socket), then
    fsync the folder: after a crash the output is either the old file or the complete new one."""
    for why in output_target_errors(path):
        raise SCNetInputError(why)
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_path(os.path.dirname(os.path.abspath(path)))


@contextmanager
def atomic(path: str) -> Iterator[str]:
    """Yield a temporary name to write; on success it replaces ``path``, on error/SIGTERM it is removed.

    ``with atomic("out.mrc") as tmp: write(tmp)``.  Only this process's own partial file is ever removed.
    """
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = new_partial(path)
    track(tmp)
    try:
        try:
            yield tmp
            commit(tmp, path)
        except OSError as exc:
            if exc.errno == errno.ENOSPC and "No space left on " + d not in str(exc):
                raise no_space(path) from None
            raise
    finally:
        untrack(tmp)
        if os.path.lexists(tmp):
            os.remove(tmp)


def write_text(path: str, text: str) -> None:
    """Write a small text file atomically."""
    with atomic(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)


# --------------------------------------------------------------------------- folder lock

@contextmanager
def lock_folder(folder: str, what: str = "scnet train") -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (``folder/.scnet.lock``) or refuse when another process holds it."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                other = os.pread(fd, 64, 0).decode(errors="replace").strip()
            except OSError:
                other = "?"
            raise SCNetInputError(f"{folder} is in use by another {what} (process {other or '?'}): two runs "
                                  f"cannot write into one folder. Wait for it to finish or choose another "
                                  f"--output-dir.") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise no_space(folder) from None
            raise
        yield
    finally:
        os.close(fd)  # releases the lock


PREVIOUS = ".scnet-previous"   # the last complete results while a new training replaces them
_UNDO = ".scnet-undo"           # the folder as a training found it, restored if the training fails


def _snapshot(src: str, dst: str) -> None:
    """``dst`` = ``src`` as it is now: a hard link for model files (they are only ever replaced by a rename or
    removed), a copy for text files (a training appends to them in place)."""
    if src.endswith(".pt"):
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copy2(src, dst)


@contextmanager
def keep_previous(folder: str, names: Sequence[str]) -> Iterator[None]:
    """Run a training in ``folder`` (locked by the caller) without losing what it held before.

    * an error (``Exception``: the training diverged, a bad checkpoint, a full disk): every file of
      ``names`` is restored as it was, files the run created are removed;
    * success: the snapshot is dropped (the new model is complete);
    * an interruption (SIGTERM, Ctrl-C, SIGKILL): the run's checkpoint stays for ``--resume``; the
      previous complete results (``model.pt`` and its log, options, summary) stay in
      ``folder/.scnet-previous/`` until a later run completes.
    """
    undo, prev = os.path.join(folder, _UNDO), os.path.join(folder, PREVIOUS)
    shutil.rmtree(undo, ignore_errors=True)  # left by a killed run of this folder (we hold its lock)
    os.makedirs(undo)
    track(undo)
    had = [n for n in names if os.path.isfile(os.path.join(folder, n))]
    try:
        for n in had:
            _snapshot(os.path.join(folder, n), os.path.join(undo, n))
        if "model.pt" in had:  # complete results: kept apart until a new model is complete
            shutil.rmtree(prev, ignore_errors=True)
            os.makedirs(prev)
            for n in had:
                _snapshot(os.path.join(undo, n), os.path.join(prev, n))
        yield
    except Exception as exc:
        for n in names:
            target = os.path.join(folder, n)
            if n in had:
                if os.path.lexists(os.path.join(undo, n)):  # else the run never reached it: untouched
                    os.replace(os.path.join(undo, n), target)
            elif os.path.lexists(target):
                os.remove(target)
        if "model.pt" in had:
            shutil.rmtree(prev, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC and "No space left on " not in str(exc):
            raise no_space(folder) from None  # a log or options write: name the folder, not just "device"
        raise
    else:
        shutil.rmtree(prev, ignore_errors=True)
    finally:
        untrack(undo)
        shutil.rmtree(undo, ignore_errors=True)


def remove_quietly(paths: Sequence[str]) -> None:
    for p in paths:
        try:
            os.remove(p)
        except FileNotFoundError:
            pass
