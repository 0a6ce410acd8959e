"""Output safety for every ``scnet`` command: one guard, one atomic write, one folder lock.

* :func:`guard` -- before any work: no output may be the same file as an input
  (resolved paths and ``os.path.samefile``, so symlinks and hard links count), outputs
  are distinct, an output is not a folder, and its folder can be created and written.
* :func:`atomic` -- write to ``NAME.partial-<pid>`` (visibly temporary, never ending in
  ``.mrc``), ``os.replace`` onto ``NAME`` only when complete; stale partial files of dead
  processes are removed; on SIGTERM the partial files of this process are removed.
* :func:`lock_folder` -- an exclusive ``flock`` on ``DIR/.scnet.lock``: a second training
  into the same folder is refused while the first runs (released when the process dies).
"""
from __future__ import annotations

import errno
import fcntl
import glob
import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterable, Iterator, List, Optional, Sequence

from .errors import SCNetInputError

PARTIAL_TAG = ".partial-"
LOCK_NAME = ".scnet.lock"

# --------------------------------------------------------------------------- the guard


def _same(a: str, b: str) -> bool:
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
        for i in ins:
            if _same(o, i):
                raise SCNetInputError(f"Output {o} is the same file as the input {i} (same path, symlink or hard "
                                      f"link): it would be overwritten. Choose another output name.")
        for o2 in outs[:k]:
            if _same(o, o2):
                raise SCNetInputError(f"Two outputs are the same file: {o2} and {o}; give different names.")
        _writable_parent(os.path.dirname(os.path.abspath(o)), f"Output {o}")


# --------------------------------------------------------------------------- atomic writes

_live: set = set()
_live_lock = threading.Lock()
_handler_installed = False


def partial_name(path: str, pid: Optional[int] = None) -> str:
    """``PATH.partial-<pid>``: the temporary name of ``path`` while it is written."""
    return f"{path}{PARTIAL_TAG}{os.getpid() if pid is None else pid}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def clean_stale(path: str) -> List[str]:
    """Remove ``PATH.partial-<pid>`` files left by processes that no longer run; return them."""
    removed = []
    for p in glob.glob(glob.escape(path) + PARTIAL_TAG + "*"):
        tail = p[len(path) + len(PARTIAL_TAG):]
        if not tail.isdigit():
            continue
        pid = int(tail)
        if pid != os.getpid() and _pid_alive(pid):
            continue
        try:
            os.remove(p)
            removed.append(p)
        except OSError:
            pass
    return removed


def _on_sigterm(signum, frame):
    with _live_lock:
        paths = list(_live)
    for p in paths:
        try:
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


def track(tmp: str) -> None:
    """Remove ``tmp`` (a file being written) if the process gets SIGTERM before :func:`untrack`."""
    _install_handler()
    with _live_lock:
        _live.add(tmp)


def untrack(tmp: str) -> None:
    with _live_lock:
        _live.discard(tmp)


@contextmanager
def atomic(path: str) -> Iterator[str]:
    """Yield a temporary name to write; on success it replaces ``path``, on error/SIGTERM it is removed.

    ``with atomic("out.mrc") as tmp: write(tmp)``.
    """
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    clean_stale(path)
    tmp = partial_name(path)
    track(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        untrack(tmp)
        if os.path.exists(tmp):
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
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def remove_quietly(paths: Sequence[str]) -> None:
    for p in paths:
        try:
            os.remove(p)
        except FileNotFoundError:
            pass
