"""Option groups shared by several ``scnet`` sub-commands (declared once, same names and help).

Choices come from :mod:`scnet.choices` (shared with the Scipion plugin).
"""
from __future__ import annotations

import argparse

from ..choices import BACKENDS, RADIAL_TEXT
from ..errors import SCNetInputError


def parse_zyx(text, name: str, allow_zero: bool = False):
    """``"Z,Y,X"`` (or ``ZxYxX``) -> three ints; ``None`` stays None."""
    if text is None:
        return None
    try:
        vals = tuple(int(v) for v in str(text).replace("x", ",").split(","))
    except ValueError:
        raise SCNetInputError(f"{name} must be three integers Z,Y,X (got {text!r}).") from None
    if len(vals) != 3:
        raise SCNetInputError(f"{name} must be three integers Z,Y,X (got {text!r}).")
    if allow_zero and any(v < 0 for v in vals):
        raise SCNetInputError(f"{name} must be three non-negative integers Z,Y,X (0 = whole axis), got {text!r}.")
    return vals


def parse_pair(text: str, name: str):
    """``"R1,R2"`` -> two floats."""
    try:
        vals = tuple(float(v) for v in str(text).split(","))
    except ValueError:
        raise SCNetInputError(f"{name} must be two numbers R1,R2 (got {text!r}).") from None
    if len(vals) != 2:
        raise SCNetInputError(f"{name} must be two numbers R1,R2 (got {text!r}).")
    return vals


def add_voxel_size(p: argparse.ArgumentParser, default=None, source: str = "the stack header") -> None:
    p.add_argument("--voxel-size", type=float, default=default,
                   help=f"voxel size in A (default: {source})")


def add_reconstruction(p: argparse.ArgumentParser, backend_default: str, backend_help: str = None) -> None:
    """``--backend`` and ``--radial``: how every reconstruction of the command is made (scnet.recon)."""
    p.add_argument("--backend", choices=BACKENDS, default=backend_default, help=backend_help)
    p.add_argument("--radial", default=RADIAL_TEXT,
                   help="radial filter R1,R2 in cycles/pixel (IMOD -RADIAL, Gaussian fall-off sigma R2)")


def add_alignment(p: argparse.ArgumentParser) -> None:
    """``--xf`` and ``--bin``: the tilt images aligned once (scnet.align) before anything else uses them."""
    p.add_argument("--xf", default=None, metavar="FILE.xf",
                   help="IMOD transforms (one line A11 A12 A21 A22 DX DY per image, stack order) applied to the "
                        "images first: one interpolation each, the tilt axis onto Y (IMOD newstack conventions)")
    p.add_argument("--bin", type=int, default=1,
                   help="average BIN x BIN pixel blocks of the (aligned) images; the voxel size grows by BIN")


def add_phantom(p: argparse.ArgumentParser, suffix: str = "") -> None:
    """The built-in phantom and its tilt scheme (``scnet phantom``, ``scnet simulate --phantom``)."""
    p.add_argument("--shape", default="64,64,64", help=f"phantom Z,Y,X in voxels (Z = thickness){suffix}")
    p.add_argument("--tilt-range", type=float, default=60.0, help=f"tilts from -range to +range (deg){suffix}")
    p.add_argument("--tilt-step", type=float, default=3.0, help=f"tilt increment (deg){suffix}")


def add_subvolume(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("--subvolume", default=None, metavar="Z,Y,X", help=help_text)


def add_device(p: argparse.ArgumentParser, help_text: str = "cpu or cuda:N", default: str = "cpu") -> None:
    p.add_argument("--device", default=default, help=f"{help_text} [{default}]")
