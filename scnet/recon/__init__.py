"""Tomographic reconstruction and re-projection (paper §4.1 step (i)/(ii), §5.2).

Geometry and conventions
------------------------
* A tilt stack is ``(n_tilts, Y, X)``; the tilt axis is the Y axis, so every
  Y row of the stack is an independent 2D problem in the x-z plane.
* A reconstruction is ``(thickness, Y, X)`` = ``(Z, Y, X)``; Z is the beam
  direction at 0 deg.  Coordinates are measured from the centre of the
  volume in pixels: ``x = ix - (X-1)/2``, ``z = iz - (T-1)/2``.
* Projection at tilt angle ``theta`` (degrees)::

      p_theta(x') = integral f(x, z) along the ray  x' = x*cos(theta) + z*sin(theta)

  so an object at (+x, +z) moves towards +x' for positive tilt angles.
  This is the formula of IMOD ``tilt``'s back-projector
  (``xproj = x*cos(beta) + z*sin(beta)``, z = row of its ``-PERPENDICULAR``
  output slice, beta = the .tlt angle); so our IMOD back-end only transposes
  tilt's ``(Y, Z, X)`` file to ``(Z, Y, X)`` -- no flip.  (IMOD's
  ``trimvol -rx`` is a rotation and additionally flips Z: an IMOD ``-rx``
  tomogram equals ours flipped along Z.)  astra's own angle sign is the
  opposite one; :func:`scnet.recon.astra2d.astra_angles` converts.  The tests
  ``test_recon.py::test_reproject_matches_analytic_projection_for_chosen_sign``
  and ``::test_asymmetric_blob_lands_at_plus_x_plus_z`` pin it.

Back-ends (one module each; angle checks and weights in :mod:`scnet.angles`)
---------
* ``builtin`` (default when IMOD is absent): weighted back-projection (WBP)
  written here: each projection is filtered with the Ram-Lak ramp (spatial
  kernel, so the DC level is right) times IMOD's radial window
  (``radial=(r1, r2)``: flat to ``r1`` cycles/pixel, Gaussian fall-off of
  sigma ``r2``), weighted by its own angular spacing (so a limited tilt range
  such as +-60 deg keeps the intensity scale of the object rather than coming
  out 1.5x too bright), and back-projected with astra-toolbox's **2D CPU**
  back-projector, one Y slice at a time.  ``method="sirt"`` runs astra's
  ``SIRT`` (CPU, 2D) per slice instead.
  astra's 3D algorithms need a GPU and kill the process without one (a
  floating-point exception that cannot be caught), so this module never
  calls them.
* ``imod``: IMOD's ``tilt`` program (the reconstruction used by the paper),
  when ``$IMOD_DIR/bin/tilt`` or ``tilt`` on ``PATH`` exists.  The whole command
  line is built in :func:`imod_tilt_command`.
* ``auto``: IMOD if found, else built-in.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..angles import angular_weights, check_angles  # noqa: F401  (public here too)
from ..choices import BACKENDS, RADIAL, RECON_METHODS, describe
from ..config_tomo import ReconstructConfig
from ..declare import defaults
from ..errors import SCNetInputError
from .astra2d import Astra2D, filter_projections, wbp_filter  # noqa: F401
from .imod import imod_available, imod_executable, imod_tilt_command, reconstruct_imod  # noqa: F401

log = logging.getLogger(__name__)

MAX_THICKNESS_FACTOR = 4


@dataclass
class ReconConfig:
    """Reconstruction settings.

    thickness: output Z size in pixels (None = X size / 2, at least 1, even).
    backend: "auto" | "builtin" | "imod".
    method: "wbp" (weighted back-projection) | "sirt".
    sirt_iterations: SIRT iterations (method="sirt").
    radial: IMOD-style radial filter (cutoff r1, Gaussian fall-off sigma r2),
        both in cycles/pixel (Nyquist = 0.5); r1 >= 0.5 means no cut-off.
    use_gpu: pass -UseGPU 0 to IMOD tilt (built-in back-end stays on CPU).
    """

    thickness: Optional[int] = None
    backend: str = defaults(ReconstructConfig)["backend"]  # the declared defaults (scnet.config_tomo)
    method: str = defaults(ReconstructConfig)["method"]
    sirt_iterations: int = defaults(ReconstructConfig)["sirt_iterations"]
    radial: Tuple[float, float] = RADIAL
    use_gpu: bool = defaults(ReconstructConfig)["imod_gpu"]


# --------------------------------------------------------------------------- checks

def check_stack(stack, name: str = "tilt stack") -> np.ndarray:
    s = np.asarray(stack)
    if s.ndim != 3:
        raise SCNetInputError(f"{name}: expected a 3D tilt stack (n_tilts, Y, X), got shape {s.shape}.")
    if s.size == 0 or min(s.shape) < 1:
        raise SCNetInputError(f"{name} is empty (shape {s.shape}).")
    return s


def resolve_thickness(thickness: Optional[int], nx: int) -> int:
    if thickness is None:
        return max(1, int(nx // 2))
    t = int(thickness)
    if t < 1:
        raise SCNetInputError(f"thickness must be >= 1 pixel (got {thickness}).")
    if t > MAX_THICKNESS_FACTOR * nx:
        raise SCNetInputError(
            f"thickness {t} is more than {MAX_THICKNESS_FACTOR}x the image width ({nx} px); "
            "that is not a sensible tomogram. Give the specimen thickness in pixels.")
    return t


# --------------------------------------------------------------------------- API

def pick_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise SCNetInputError(f"reconstruction backend must be {describe(BACKENDS)} (got {backend!r}).")
    if backend == "imod" and not imod_available():
        raise SCNetInputError(
            "The IMOD back-end was requested but its `tilt` program was not found in $IMOD_DIR/bin "
            f"(IMOD_DIR={os.environ.get('IMOD_DIR', '<unset>')}) or on PATH. Install IMOD and set IMOD_DIR, "
            "or use the 'builtin' back-end (weighted back-projection built in).")
    if backend == "auto":
        return "imod" if imod_available() else "builtin"
    return backend


def reconstruct(stack, angles, cfg: Optional[ReconConfig] = None) -> np.ndarray:
    """Reconstruct a tilt stack ``(n, Y, X)`` into a volume ``(thickness, Y, X)`` (float32).

    See the module docstring for geometry, filter and scale.
    """
    cfg = cfg or ReconConfig()
    stack = check_stack(stack)
    angles = check_angles(angles, stack.shape[0])
    n, ny, nx = stack.shape
    thickness = resolve_thickness(cfg.thickness, nx)
    if cfg.method not in RECON_METHODS:
        raise SCNetInputError(f"reconstruction method must be {describe(RECON_METHODS)} (got {cfg.method!r}).")
    if cfg.method == "sirt" and int(cfg.sirt_iterations) < 1:
        raise SCNetInputError(f"sirt_iterations must be >= 1 (got {cfg.sirt_iterations}).")
    r = tuple(cfg.radial)
    if len(r) != 2 or r[0] <= 0 or r[1] < 0:
        raise SCNetInputError(f"radial filter must be two numbers r1>0, r2>=0 in cycles/pixel (got {cfg.radial}).")
    backend = pick_backend(cfg.backend)
    if backend == "imod":
        if cfg.method == "sirt":
            log.warning("IMOD back-end: SIRT not wired; using tilt's WBP")
        return reconstruct_imod(stack, angles, thickness, cfg.radial, cfg.use_gpu)

    geo = Astra2D(thickness, nx, angles)
    out = np.empty((thickness, ny, nx), dtype=np.float32)
    try:
        if cfg.method == "wbp":
            filt, npad = wbp_filter(nx, r)
            w = angular_weights(angles)[:, None]
            for y in range(ny):
                sino = np.asarray(stack[:, y, :], dtype=np.float64)
                fs = filter_projections(sino, filt, npad) * w
                out[:, y, :] = geo.backproject(fs.astype(np.float32))
        else:
            for y in range(ny):
                out[:, y, :] = geo.sirt(np.asarray(stack[:, y, :], dtype=np.float32), cfg.sirt_iterations)
    finally:
        geo.close()
    return out


def reproject(volume, angles) -> np.ndarray:
    """Forward-project a volume ``(T, Y, X)`` at ``angles`` (deg) -> stack ``(n, Y, X)``.

    Same geometry and sign as :func:`reconstruct` (line integrals, 1 px = 1 unit,
    detector width = X).
    """
    vol = np.asarray(volume)
    if vol.ndim != 3 or vol.size == 0:
        raise SCNetInputError(f"reproject: expected a 3D volume (Z, Y, X), got shape {vol.shape}.")
    angles = check_angles(angles)
    t, ny, nx = vol.shape
    geo = Astra2D(t, nx, angles)
    out = np.empty((angles.size, ny, nx), dtype=np.float32)
    try:
        for y in range(ny):
            out[:, y, :] = geo.forward(np.ascontiguousarray(vol[:, y, :], dtype=np.float32))
    finally:
        geo.close()
    return out


