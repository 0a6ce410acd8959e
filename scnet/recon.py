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
  opposite one; :func:`_astra_angles` converts.  The tests
  ``test_recon.py::test_reproject_matches_analytic_projection_for_chosen_sign``
  and ``::test_asymmetric_blob_lands_at_plus_x_plus_z`` pin it.

Back-ends
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
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .errors import SCNetInputError

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
    backend: str = "auto"
    method: str = "wbp"
    sirt_iterations: int = 30
    radial: Tuple[float, float] = (0.35, 0.035)
    use_gpu: bool = False


# --------------------------------------------------------------------------- checks

def check_angles(angles, n_images: Optional[int] = None, name: str = "angles") -> np.ndarray:
    """Validate tilt angles (deg): finite, |theta| <= 90, strictly monotonic, matching count."""
    a = np.asarray(angles, dtype=np.float64).ravel()
    if a.size == 0:
        raise SCNetInputError(f"{name}: no tilt angles given.")
    if not np.all(np.isfinite(a)):
        raise SCNetInputError(f"{name}: tilt angles contain NaN/Inf.")
    if np.any(np.abs(a) > 90):
        raise SCNetInputError(
            f"{name}: tilt angles must lie in [-90, 90] degrees (got min {a.min():g}, max {a.max():g}). "
            "Are they in degrees and is it the right file?")
    if a.size > 1:
        d = np.diff(a)
        if not (np.all(d > 0) or np.all(d < 0)):
            raise SCNetInputError(
                f"{name}: tilt angles must be strictly increasing or decreasing (stack order by angle); "
                f"got {a.tolist()[:8]}{'...' if a.size > 8 else ''}. Sort the stack and angles by angle.")
    if n_images is not None and a.size != n_images:
        raise SCNetInputError(
            f"{name}: {a.size} tilt angles for a stack of {n_images} images; the counts must match.")
    return a


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
        raise SCNetInputError(f"--thickness must be >= 1 (got {thickness}).")
    if t > MAX_THICKNESS_FACTOR * nx:
        raise SCNetInputError(
            f"--thickness {t} is more than {MAX_THICKNESS_FACTOR}x the image width ({nx} px); "
            "that is not a sensible tomogram. Give the specimen thickness in pixels.")
    return t


def angular_weights(angles_deg: np.ndarray) -> np.ndarray:
    """Angular spacing (radians) belonging to each tilt: half the gap to each neighbour.

    End tilts get their single neighbour's full gap on the open side.  The
    weights sum to ~ the covered range + one step, so a +-60 deg series is
    scaled like the object, not like a 180 deg one.
    """
    a = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    n = a.size
    if n == 1:
        return np.array([np.pi])
    order = np.argsort(a)
    s = a[order]
    gaps = np.diff(s)
    w = np.empty(n)
    w[1:-1] = 0.5 * (gaps[:-1] + gaps[1:])
    w[0] = gaps[0]
    w[-1] = gaps[-1]
    out = np.empty(n)
    out[order] = w
    return out


# --------------------------------------------------------------------------- astra (2D CPU only)

def _astra():
    import astra  # noqa: WPS433  (heavy import, only when needed)
    try:
        astra.log.disable()
    except Exception:  # pragma: no cover
        pass
    return astra


def _astra_angles(angles_deg) -> np.ndarray:
    """astra rotates the other way: theta (module convention) -> -theta in astra."""
    return -np.deg2rad(np.asarray(angles_deg, dtype=np.float64))


class _Astra2D:
    """Per-slice 2D parallel-beam geometry on the CPU (never an astra 3D call)."""

    def __init__(self, thickness: int, nx: int, angles_deg):
        self.astra = astra = _astra()
        self.vg = astra.create_vol_geom(int(thickness), int(nx))
        self.pg = astra.create_proj_geom("parallel", 1.0, int(nx), _astra_angles(angles_deg))
        self.pid = astra.create_projector("linear", self.pg, self.vg)
        self.vid = astra.data2d.create("-vol", self.vg, 0.0)
        self.sid = astra.data2d.create("-sino", self.pg, 0.0)
        self._algs = {}

    def _alg(self, kind: str, **opts):
        key = (kind, tuple(sorted(opts.items())))
        if key not in self._algs:
            cfg = self.astra.astra_dict(kind)
            cfg["ProjectorId"] = self.pid
            cfg["ProjectionDataId"] = self.sid
            if kind.startswith("FP"):
                cfg["VolumeDataId"] = self.vid
            else:
                cfg["ReconstructionDataId"] = self.vid
            if opts:
                cfg["option"] = dict(opts)
            self._algs[key] = self.astra.algorithm.create(cfg)
        return self._algs[key]

    def backproject(self, sino: np.ndarray) -> np.ndarray:
        self.astra.data2d.store(self.sid, sino)
        self.astra.data2d.store(self.vid, 0.0)
        self.astra.algorithm.run(self._alg("BP"))
        return self.astra.data2d.get(self.vid)

    def forward(self, slc: np.ndarray) -> np.ndarray:
        self.astra.data2d.store(self.vid, slc)
        self.astra.data2d.store(self.sid, 0.0)
        self.astra.algorithm.run(self._alg("FP"))
        return self.astra.data2d.get(self.sid)

    def sirt(self, sino: np.ndarray, iterations: int) -> np.ndarray:
        self.astra.data2d.store(self.sid, sino)
        self.astra.data2d.store(self.vid, 0.0)
        self.astra.algorithm.run(self._alg("SIRT"), int(iterations))
        return self.astra.data2d.get(self.vid)

    def close(self):
        for a in self._algs.values():
            self.astra.algorithm.delete(a)
        self.astra.data2d.delete([self.vid, self.sid])
        self.astra.projector.delete(self.pid)


def wbp_filter(nx: int, radial: Tuple[float, float] = (0.35, 0.035)) -> Tuple[np.ndarray, int]:
    """Frequency response of the WBP filter on a zero-padded grid.

    Ram-Lak ramp from its spatial kernel (h[0]=1/4, h[odd n]=-1/(pi n)^2), so
    the DC term is correct, times the IMOD-style radial window.
    """
    npad = int(2 ** int(np.ceil(np.log2(max(64, 2 * nx)))))
    n = np.concatenate([np.arange(0, npad // 2 + 1), np.arange(-(npad // 2) + 1, 0)])
    h = np.zeros(npad)
    h[0] = 0.25
    odd = (n % 2) == 1
    h[odd] = -1.0 / (np.pi * n[odd]) ** 2
    ramp = np.real(np.fft.rfft(h))  # = |f| (cycles/pixel) with the right DC
    f = np.abs(np.fft.rfftfreq(npad))
    r1, r2 = float(radial[0]), float(radial[1])
    window = np.ones_like(f)
    if r1 < 0.5:
        beyond = f > r1
        window[beyond] = np.exp(-((f[beyond] - r1) ** 2) / (2 * max(r2, 1e-6) ** 2)) if r2 > 0 else 0.0
    return ramp * window, npad


def _filter_projections(sino: np.ndarray, filt: np.ndarray, npad: int) -> np.ndarray:
    """Filter rows of ``sino`` (..., nx) with ``filt`` (rfft grid of size npad), edge-padded."""
    nx = sino.shape[-1]
    left = (npad - nx) // 2
    pad = [(0, 0)] * (sino.ndim - 1) + [(left, npad - nx - left)]
    p = np.pad(sino, pad, mode="edge")
    out = np.fft.irfft(np.fft.rfft(p, axis=-1) * filt, n=npad, axis=-1)
    return out[..., left:left + nx]


# --------------------------------------------------------------------------- IMOD

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
                      radial: Tuple[float, float] = (0.35, 0.035), use_gpu: bool = False,
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


def _reconstruct_imod(stack: np.ndarray, angles: np.ndarray, thickness: int, cfg: ReconConfig) -> np.ndarray:
    import mrcfile
    from .tiltseries import write_angles
    with tempfile.TemporaryDirectory(prefix="scnet_tilt_") as d:
        st, tlt, rec = (os.path.join(d, n) for n in ("in.st", "in.tlt", "rec.mrc"))
        with mrcfile.new(st, overwrite=True) as m:
            m.set_data(np.asarray(stack, dtype=np.float32))
        write_angles(tlt, angles)
        cmd = imod_tilt_command(st, rec, tlt, thickness, cfg.radial, cfg.use_gpu)
        log.info("running %s", " ".join(cmd))
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0 or not os.path.exists(rec):
            raise RuntimeError(f"IMOD tilt failed (rc {res.returncode}): {res.stdout[-2000:]}{res.stderr[-2000:]}")
        with mrcfile.open(rec, permissive=True) as m:
            out = np.asarray(m.data, dtype=np.float32)
    # (Y, thickness, X) -> (thickness, Y, X)
    return np.ascontiguousarray(np.transpose(out, (1, 0, 2)))


# --------------------------------------------------------------------------- API

def _pick_backend(backend: str) -> str:
    if backend not in ("auto", "builtin", "imod"):
        raise SCNetInputError(f"--backend must be auto, builtin or imod (got {backend!r}).")
    if backend == "imod" and not imod_available():
        raise SCNetInputError(
            "IMOD was requested (--backend imod) but its `tilt` program was not found in $IMOD_DIR/bin "
            f"(IMOD_DIR={os.environ.get('IMOD_DIR', '<unset>')}) or on PATH. Install IMOD and set IMOD_DIR, "
            "or use --backend builtin (weighted back-projection built in).")
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
    if cfg.method not in ("wbp", "sirt"):
        raise SCNetInputError(f"--method must be wbp or sirt (got {cfg.method!r}).")
    if cfg.method == "sirt" and int(cfg.sirt_iterations) < 1:
        raise SCNetInputError(f"--sirt-iterations must be >= 1 (got {cfg.sirt_iterations}).")
    r = tuple(cfg.radial)
    if len(r) != 2 or r[0] <= 0 or r[1] < 0:
        raise SCNetInputError(f"--radial must be two numbers r1>0,r2>=0 in cycles/pixel (got {cfg.radial}).")
    backend = _pick_backend(cfg.backend)
    if backend == "imod":
        if cfg.method == "sirt":
            log.warning("IMOD back-end: SIRT not wired; using tilt's WBP")
        return _reconstruct_imod(stack, angles, thickness, cfg)

    geo = _Astra2D(thickness, nx, angles)
    out = np.empty((thickness, ny, nx), dtype=np.float32)
    try:
        if cfg.method == "wbp":
            filt, npad = wbp_filter(nx, r)
            w = angular_weights(angles)[:, None]
            for y in range(ny):
                sino = np.asarray(stack[:, y, :], dtype=np.float64)
                fs = _filter_projections(sino, filt, npad) * w
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
    geo = _Astra2D(t, nx, angles)
    out = np.empty((angles.size, ny, nx), dtype=np.float32)
    try:
        for y in range(ny):
            out[:, y, :] = geo.forward(np.ascontiguousarray(vol[:, y, :], dtype=np.float32))
    finally:
        geo.close()
    return out


def analytic_projection_points(points: Sequence[Tuple[float, float, float]], angle: float, ny: int, nx: int,
                               sigma: float = 1.5) -> np.ndarray:
    """Analytic projection of Gaussian blobs ``(z, y, x, amplitude)`` (centred coords) at ``angle``.

    A 3D Gaussian of std ``sigma`` and peak ``a`` projects to a 2D Gaussian of
    the same std and peak ``a*sqrt(2 pi)*sigma``.  Used by the tests to pin the
    handedness.
    """
    th = np.deg2rad(angle)
    ys = np.arange(ny) - (ny - 1) / 2
    xs = np.arange(nx) - (nx - 1) / 2
    img = np.zeros((ny, nx))
    for (z, y, x, a) in points:
        xp = x * np.cos(th) + z * np.sin(th)
        img += a * np.sqrt(2 * np.pi) * sigma * np.exp(
            -((ys[:, None] - y) ** 2 + (xs[None, :] - xp) ** 2) / (2 * sigma ** 2))
    return img
