"""IMOD back-end of :mod:`scnet.recon`: the ``tilt`` program (the paper's reconstruction, §5.1/§5.2).

``tilt``'s back-projector uses ``xproj = x*cos(beta) + z*sin(beta)``, the
convention of this package, so its ``-PERPENDICULAR`` output ``(Y, Z, X)`` is
only transposed to ``(Z, Y, X)`` (no flip; see :mod:`scnet.recon`).
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from typing import List, Optional, Tuple

import numpy as np

from ..choices import RADIAL

log = logging.getLogger(__name__)


def imod_executable(name: str = "tilt") -> Optional[str]:
    """Path of an IMOD program ($IMOD_DIR/bin first, then PATH), or None."""
    imod_dir = os.environ.get("IMOD_DIR")
    if imod_dir:
        cand = os.path.join(imod_dir, "bin", name)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return shutil.which(name)


def imod_available() -> bool:
    return imod_executable("tilt") is not None


def imod_tilt_command(stack_path: str, output_path: str, tlt_path: str, thickness: int,
                      radial: Tuple[float, float] = RADIAL, use_gpu: bool = False,
                      tilt_exe: Optional[str] = None) -> List[str]:
    """The complete IMOD ``tilt`` command line (the paper's reconstruction, §5.1/§5.2).

    ``-PERPENDICULAR`` writes X-Z slices in order of Y: the output file holds
    numpy ``(Y, thickness, X)``; :func:`reconstruct` transposes it to
    ``(thickness, Y, X)`` (IMOD's ``trimvol -yz`` / 3dmod ``-Y`` view, not
    ``-rx``, which would also flip Z; see the module docstring).
    ``-MODE 2`` = float32.  ``-AdjustOrigin`` keeps the origin consistent
    with the input stack.
    """
    cmd = [tilt_exe or imod_executable("tilt") or "tilt",
           "-InputProjections", stack_path,
           "-OutputFile", output_path,
           "-TILTFILE", tlt_path,
           "-THICKNESS", str(int(thickness)),
           "-RADIAL", f"{float(radial[0]):g},{float(radial[1]):g}",
           "-FalloffIsTrueSigma", "1",
           "-MODE", "2",
           "-PERPENDICULAR",
           "-AdjustOrigin"]
    if use_gpu:
        cmd += ["-UseGPU", "0", "-ActionIfGPUFails", "2,2"]
    return cmd


def reconstruct_imod(stack: np.ndarray, angles: np.ndarray, thickness: int, radial: Tuple[float, float],
                     use_gpu: bool = False) -> np.ndarray:
    import mrcfile
    from ..tiltseries import write_angles
    with tempfile.TemporaryDirectory(prefix="scnet_tilt_") as d:
        st, tlt, rec = (os.path.join(d, n) for n in ("in.st", "in.tlt", "rec.mrc"))
        with mrcfile.new(st, overwrite=True) as m:
            m.set_data(np.asarray(stack, dtype=np.float32))
        write_angles(tlt, angles)
        cmd = imod_tilt_command(st, rec, tlt, thickness, radial, use_gpu)
        log.info("running %s", " ".join(cmd))
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0 or not os.path.exists(rec):
            raise RuntimeError(f"IMOD tilt failed (rc {res.returncode}): {res.stdout[-2000:]}{res.stderr[-2000:]}")
        with mrcfile.open(rec, permissive=True) as m:
            out = np.asarray(m.data, dtype=np.float32)
    # (Y, thickness, X) -> (thickness, Y, X)
    return np.ascontiguousarray(np.transpose(out, (1, 0, 2)))
