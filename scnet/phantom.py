"""A synthetic cellular phantom for cryo-ET denoising tests (stand-in for §5.3's simulated data).

The volume ``(Z, Y, X)`` (Z = beam direction) contains, at a nominal voxel
size (default 10 A/voxel):

* a **cell membrane**: a gently curved lipid bilayer sheet crossing the volume,
  inclined 35-75 deg to the specimen plane;
* **vesicles**: spherical lipid bilayers (two leaflets ~4.5 nm apart, each
  ~1 nm thick (Gaussian sigma 0.45 nm ... 1 voxel), radius 12-45 nm);
* **filaments**: actin-like solid rods (~7 nm diameter) and microtubule-like
  hollow tubes (~25 nm outer diameter, 5 nm wall), drawn as chains of short
  segments following slowly bending paths;
* **macromolecules**: ribosome-like lumpy particles (2-5 Gaussian lobes,
  10-28 nm) and smaller complexes, scattered in the cytosol;
* a **background** of low-frequency density variation (a few random plane
  waves), so the mean is not flat.

Density is positive for material (protein/lipid ~ 1, background ~ 0 +- 0.1).
Fine detail (bilayer leaflets ~4-5 px apart, small particles) is deliberately
finer than what a sigma=2 Gaussian filter preserves.  Everything is drawn in
small bounding boxes (vectorised numpy), so 200x512x512 takes a few seconds;
objects combine with ``max`` (no unphysical double density where they touch).
The result depends only on ``shape``, ``seed`` and ``voxel_size``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .config_tomo import PhantomConfig
from .errors import SCNetInputError
from .rules import phantom_shape_errors

_D = PhantomConfig()  # the declared defaults (scnet.config_tomo)


def check_shape(shape) -> Tuple[int, int, int]:
    """``shape`` as three ints, by the declared rule (:func:`scnet.rules.phantom_shape_errors`)."""
    try:
        s = tuple(int(v) for v in shape)
    except (TypeError, ValueError):
        s = ()
    for why in phantom_shape_errors(",".join(map(str, s)) if s else repr(shape)):
        raise SCNetInputError(f"phantom shape {shape!r} {why}.")
    return s


class _Canvas:
    """Volume plus helpers that draw a profile of a distance field inside a bounding box."""

    def __init__(self, shape):
        self.vol = np.zeros(shape, dtype=np.float32)
        self.shape = np.asarray(shape)

    def box(self, lo, hi):
        lo = np.maximum(np.floor(lo).astype(int), 0)
        hi = np.minimum(np.ceil(hi).astype(int) + 1, self.shape)
        if np.any(hi <= lo):
            return None
        sl = tuple(slice(a, b) for a, b in zip(lo, hi))
        grids = np.ogrid[sl]
        return sl, [g.astype(np.float32) for g in grids]

    def put(self, sl, values):
        np.maximum(self.vol[sl], values, out=self.vol[sl])


def _bilayer(d: np.ndarray, half_sep: float, width: float, amp: float) -> np.ndarray:
    """Two Gaussian leaflets at signed distance +-half_sep from the mid-surface."""
    return amp * (np.exp(-(d - half_sep) ** 2 / (2 * width ** 2)) + np.exp(-(d + half_sep) ** 2 / (2 * width ** 2)))


def make_phantom(shape=_D.shape_zyx(), seed: int = _D.seed, voxel_size: float = _D.voxel_size,
                 density: float = 1.0) -> np.ndarray:
    """Build the cellular phantom (float32, ``(Z, Y, X)``). See the module docstring.

    ``voxel_size`` (A) sets the physical scale of the features; ``density``
    scales the number of objects per volume.
    """
    shape = check_shape(shape)
    for why in PhantomConfig.errors({"seed": seed, "voxel_size": voxel_size}):
        raise SCNetInputError(why)
    rng = np.random.default_rng(int(seed))
    nm = 10.0 / float(voxel_size)          # voxels per nm
    Z, Y, X = shape
    cv = _Canvas(shape)
    n_vox = Z * Y * X
    lim = np.asarray(shape, dtype=float)
    leaf_half = 2.25 * nm                  # leaflets 4.5 nm apart
    leaf_w = max(0.45 * nm, 0.6)           # leaflet Gaussian sigma (>= 0.6 px so it is sampled)

    # --- cell membrane: a gently curved bilayer sheet, inclined 35-75 deg to the specimen plane
    # (a sheet parallel to the specimen plane would sit entirely in the missing wedge and vanish).
    reach = leaf_half + 4 * leaf_w
    incl = np.deg2rad(rng.uniform(35, 75))
    az = rng.uniform(0, 2 * np.pi)
    nrm = np.array([np.cos(incl), np.sin(incl) * np.sin(az), np.sin(incl) * np.cos(az)])
    u = np.cross(nrm, [0.0, 1.0, 0.0]) if abs(nrm[1]) < 0.9 else np.cross(nrm, [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    nrm, u = nrm.astype(np.float32), u.astype(np.float32)
    centre = (lim / 2 + rng.uniform(-0.2, 0.2, size=3) * lim).astype(np.float32)
    bend = float(rng.uniform(0.02, 0.06) * max(shape))
    kb = float(2 * np.pi / (rng.uniform(0.8, 1.6) * max(shape)))
    yy = (np.arange(Y, dtype=np.float32) - centre[1])[:, None]
    xx = (np.arange(X, dtype=np.float32) - centre[2])[None, :]
    for z0 in range(0, Z, 16):
        zz = (np.arange(z0, min(Z, z0 + 16), dtype=np.float32) - centre[0])[:, None, None]
        d = nrm[0] * zz + nrm[1] * yy + nrm[2] * xx
        t = u[0] * zz + u[1] * yy + u[2] * xx
        d = d - bend * np.sin(kb * t)
        near = np.abs(d) < reach
        if near.any():
            v = np.zeros(d.shape, dtype=np.float32)
            v[near] = _bilayer(d[near], leaf_half, leaf_w, 1.0)
            cv.put((slice(z0, z0 + zz.shape[0]), slice(None), slice(None)), v)

    # --- vesicles
    n_ves = max(1, int(round(density * n_vox / (90 * nm) ** 3)))
    rmax = min(45 * nm, 0.45 * min(shape))
    rmin = min(12 * nm, 0.6 * rmax)
    for _ in range(n_ves):
        r = rng.uniform(rmin, rmax)
        c = rng.uniform(0, 1, size=3) * lim
        ext = r + reach
        b = cv.box(c - ext, c + ext)
        if b is None:
            continue
        sl, (gz, gy_, gx_) = b
        dist = np.sqrt((gz - c[0]) ** 2 + (gy_ - c[1]) ** 2 + (gx_ - c[2]) ** 2) - r
        v = _bilayer(dist, leaf_half, leaf_w, rng.uniform(0.8, 1.0))
        # faint lumen content
        v = np.maximum(v, np.where(dist < -leaf_half - 2 * leaf_w, 0.12, 0.0).astype(np.float32))
        cv.put(sl, v)

    # --- filaments (actin-like rods, microtubule-like tubes) as chains of short segments
    n_fil = max(1, int(round(density * n_vox / (90 * nm) ** 3)))
    for k in range(n_fil):
        tube = rng.random() < 0.35
        r_out = (12.5 if tube else 3.5) * nm
        wall = 2.5 * nm
        length = rng.uniform(0.6, 1.5) * max(shape)
        seg = max(6.0, 2 * r_out)
        p = rng.uniform(0, 1, size=3) * lim
        dvec = rng.normal(size=3)
        dvec[0] *= 0.4                       # mostly lying in the specimen plane
        dvec /= np.linalg.norm(dvec)
        amp = rng.uniform(0.7, 1.0)
        for _ in range(int(length / seg)):
            q = p + seg * dvec
            ext = r_out + 3
            b = cv.box(np.minimum(p, q) - ext, np.maximum(p, q) + ext)
            if b is not None:
                sl, (gz, gy_, gx_) = b
                rel = [gz - p[0], gy_ - p[1], gx_ - p[2]]
                t = (rel[0] * dvec[0] + rel[1] * dvec[1] + rel[2] * dvec[2]) / seg
                # distance to the (infinite) axis line; the segment keeps t in [0, 1] plus a small
                # overlap, so consecutive segments join without spherical caps (no beads)
                dist = np.sqrt((rel[0] - t * seg * dvec[0]) ** 2 + (rel[1] - t * seg * dvec[1]) ** 2
                               + (rel[2] - t * seg * dvec[2]) ** 2)
                inside = (t >= -0.15) & (t <= 1.15)
                if tube:
                    v = amp * np.exp(-(dist - (r_out - wall / 2)) ** 2 / (2 * (wall / 2.355) ** 2))
                else:
                    v = amp / (1 + np.exp((dist - r_out) / 0.5))
                v = np.where(inside, v, 0.0)
                cv.put(sl, v.astype(np.float32))
            p = q
            dvec = dvec + rng.normal(scale=0.08, size=3)
            dvec[0] *= 0.9
            dvec /= np.linalg.norm(dvec)

    # --- macromolecules: lumpy ribosome-like particles and small complexes
    n_part = max(4, int(round(density * n_vox / (30 * nm) ** 3)))
    for _ in range(n_part):
        big = rng.random() < 0.5
        size = rng.uniform(10, 28) * nm if big else rng.uniform(5, 10) * nm
        c = rng.uniform(0, 1, size=3) * lim
        n_lobes = rng.integers(2, 6) if big else 1
        ext = size
        b = cv.box(c - ext, c + ext)
        if b is None:
            continue
        sl, (gz, gy_, gx_) = b
        v = np.zeros([s.stop - s.start for s in sl], dtype=np.float32)
        for _l in range(n_lobes):
            off = rng.normal(scale=size * 0.15, size=3) if n_lobes > 1 else np.zeros(3)
            rl = size * (0.3 if n_lobes > 1 else 0.5) * rng.uniform(0.8, 1.2)
            dd = np.sqrt((gz - c[0] - off[0]) ** 2 + (gy_ - c[1] - off[1]) ** 2 + (gx_ - c[2] - off[2]) ** 2)
            v = np.maximum(v, 1.0 / (1 + np.exp((dd - rl) / 0.6)))
        cv.put(sl, rng.uniform(0.7, 1.1) * v)

    # --- low-frequency background (plane waves), added in Z chunks
    n_waves = 8
    kvec = rng.normal(size=(n_waves, 3)) * (2 * np.pi / (150 * nm))
    phase = rng.uniform(0, 2 * np.pi, size=n_waves)
    amps = rng.uniform(0.02, 0.05, size=n_waves)
    ey = [np.exp(1j * kvec[w, 1] * np.arange(Y)).astype(np.complex64) for w in range(n_waves)]
    ex = [np.exp(1j * kvec[w, 2] * np.arange(X)).astype(np.complex64) for w in range(n_waves)]
    plane = [(amps[w] * np.exp(1j * phase[w]) * ey[w][:, None] * ex[w][None, :]).astype(np.complex64)
             for w in range(n_waves)]
    for z in range(Z):
        acc = np.zeros((Y, X), dtype=np.float32)
        for w in range(n_waves):
            acc += (plane[w] * np.complex64(np.exp(1j * kvec[w, 0] * z))).real
        cv.vol[z] += acc
    return cv.vol


def phantom_tilt_series(shape=_D.shape_zyx(), seed: int = _D.seed, tilt_range: float = _D.tilt_range,
                        tilt_step: float = _D.tilt_step, voxel_size: float = _D.voxel_size,
                        volume: Optional[np.ndarray] = None):
    """Noise-free tilt series of the phantom with a missing wedge.

    Returns ``(stack (n, Y, X), angles (deg), volume)``; angles run from
    ``-tilt_range`` to ``+tilt_range`` in ``tilt_step`` steps (declared defaults:
    :class:`scnet.config_tomo.PhantomConfig`).  Projections are line integrals (1 voxel = 1 unit) with
    the geometry of :func:`scnet.recon.reproject`.
    """
    from .recon import reproject
    angles = tilt_angles(tilt_range, tilt_step)
    vol = make_phantom(shape, seed, voxel_size) if volume is None else np.asarray(volume, dtype=np.float32)
    return reproject(vol, angles), angles, vol


def tilt_angles(tilt_range: float = _D.tilt_range, tilt_step: float = _D.tilt_step) -> np.ndarray:
    """Symmetric tilt scheme ``-range .. +range`` in ``step`` degrees (bounds: :class:`PhantomConfig`)."""
    r, s = float(tilt_range), float(tilt_step)
    errors = PhantomConfig.errors({"tilt_range": r, "tilt_step": s})
    if errors:
        raise SCNetInputError(" ".join(errors))
    n = int(np.floor(2 * r / s + 1e-6))
    a = -r + s * np.arange(n + 1)
    return a[a <= r + 1e-6]
