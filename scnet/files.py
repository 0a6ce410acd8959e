"""Input files checked before they are opened, and text files read with a clear error (standard library only).

* :func:`require_file` -- the path names a regular file (or a symlink to one): a missing path, a
  folder, a FIFO (reading it could wait forever), a device (``/dev/zero`` never ends) or a socket
  is refused with a line that says what it is instead.  Nothing is opened: ``os.stat`` only.
* :func:`output_target_errors` -- an existing output target must be a regular file: replacing a
  device, FIFO or socket with a file would destroy it (as root, ``/dev/null``).
* :func:`read_text` -- a small text file (``.tlt``, JSON options, particle lists) decoded as UTF-8
  (a BOM allowed), bounded in size; another encoding is a clear error, not a traceback.

The Scipion plugin imports this module (through :mod:`scnet.modelscan`) without numpy or torch.
"""
from __future__ import annotations

import os
import stat
from typing import List, Optional

from .errors import SCNetInputError

MAX_TEXT_BYTES = 64 * 2 ** 20   # a tilt-angle, options or particle file is far smaller


def kind(path: str) -> Optional[str]:
    """What ``path`` is when it is not a regular file ('a folder', 'a named pipe (FIFO)', ...); None for a
    regular file (symlinks followed) or a path that does not exist."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def file_errors(path: str, what: str = "Input file", hint: str = "") -> List[str]:
    """[] when ``path`` is an existing regular file, else one message (what it is instead, and ``hint``)."""
    if not path or not str(path).strip():
        return [f"{what}: no file given."]
    k = kind(path)
    tail = f" {hint}" if hint else ""
    if k is None and not os.path.exists(path):
        if os.path.islink(path):
            return [f"{what} {path} is a broken symbolic link (it points to {os.readlink(path)}, which does not "
                    f"exist).{tail}"]
        return [f"{what} {path} not found. Check the path (and that the previous step wrote it).{tail}"]
    if k == "a folder":
        return [f"{what} {path} is a folder, not a file; give the file inside it.{tail}"]
    if k is not None:
        return [f"{what} {path} is {k}, not a regular file: it is not read (it could block or never end); "
                f"give a regular file.{tail}"]
    return []


def require_file(path: str, what: str = "Input file", hint: str = "") -> None:
    """Raise :class:`SCNetInputError` unless ``path`` is an existing regular file (checked without opening it)."""
    for why in file_errors(path, what, hint):
        raise SCNetInputError(why)


def output_target_errors(path: str) -> List[str]:
    """An output that already exists must be a regular file (or a folder, refused elsewhere): a device,
    FIFO or socket would be replaced by a file."""
    k = kind(path)
    if k is None or k == "a folder":
        return []
    return [f"Output {path} exists and is {k}, not a regular file: writing the output would replace it. "
            f"Choose another output name."]


def read_text(path: str, what: str = "Text file") -> str:
    """The content of a small text file as ``str``: a regular file (checked first), at most
    :data:`MAX_TEXT_BYTES`, UTF-8 (with or without BOM).  Any other encoding is a clear error."""
    require_file(path, what)
    size = os.path.getsize(path)
    if size > MAX_TEXT_BYTES:
        raise SCNetInputError(f"{what} {path} is {size / 2 ** 20:.0f} MB: far too large for this kind of text file "
                              f"(at most {MAX_TEXT_BYTES // 2 ** 20} MB); check that the right file was given.")
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(raw) > 1 and b"\x00" in raw[:64]):
        raise SCNetInputError(f"{what} {path} is UTF-16 (or binary), not plain text: save it as UTF-8 or ASCII text "
                              f"(e.g. `iconv -f UTF-16 -t UTF-8 {os.path.basename(path)}`).")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise SCNetInputError(f"{what} {path}, line {line}: byte 0x{raw[exc.start]:02x} is not UTF-8 text (another "
                              f"encoding, e.g. Latin-1, or a binary file); save it as UTF-8 or ASCII text.") from None
