"""Subtomogram averaging as a downstream measure of a denoised tomogram (gold-standard half-sets).

The field judges a cryo-ET denoiser by what it does to subtomogram averaging: particles picked and
aligned on the denoised tomogram, averaged from the RAW one, must not give a worse average than
particles aligned on the raw data.  Given particle centres and (optionally) one unit vector per
particle (e.g. the membrane / lattice normal):

1. each particle's rotation ``R`` maps the particle frame's first axis onto its vector
   (:func:`rotation_to_z`; the in-plane angle is the minimal rotation's, so an average of particles
   with random in-plane angles is cylindrically blurred about the vector, the same for every volume);
2. a subvolume of ``box``^3 voxels is sampled at ``centre + R @ g`` (trilinear, :func:`extract`);
3. the particles are split into two half-sets that share no voxel of the tomogram
   (:func:`independent_halves`: whole groups of neighbouring particles, e.g. one virus-like particle
   each, go to one half, so the noise of the two half averages is independent); each half-set is refined
   alone (:func:`refine`: a local integer translational search against its OWN average, on the
   alignment volume), so no information crosses between the halves (gold standard);
4. the half-set averages A and B of the averaged volume give the FSC (eq. 9 of the paper, with a soft
   spherical mask; 0.5 and 0.143 crossings, :func:`scnet.metrics.crossings`) and the SNR of the
   full average (A + B) / 2 inside the mask: noise variance var(A - B) / 4, signal variance
   var((A + B) / 2) minus it.

Everything is in array index order (Z, Y, X), like the rest of the engine; particle FILES are
x y z [nx ny nz] in voxels (IMOD's and tomo's order), read by :func:`read_particles`.
numpy + scipy only (no torch).  One module (~330 lines) because the steps above share the particle
frame and the box grid and are only meaningful together.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

from .errors import SCNetInputError

CHUNK = 256   # particles sampled at once (bounds memory: CHUNK x box^3 x 3 coordinates)


# --------------------------------------------------------------------------- rotations
def rotation_to_z(vectors) -> np.ndarray:
    """For unit vectors ``v`` (N, 3) in (z, y, x): rotations R (N, 3, 3) with ``R @ e0 = v``, e0 = (1, 0, 0).

    The minimal rotation (Rodrigues, about e0 x v); ``v = e0`` gives the identity, ``v = -e0`` a
    rotation by 180 degrees about axis 2 (x).  Vectors are normalised; a zero or non-finite row is refused.
    """
    v = np.asarray(vectors, dtype=np.float64).reshape(-1, 3)
    n = np.linalg.norm(v, axis=1)
    bad = np.nonzero(~np.isfinite(n) | (n <= 1e-12))[0]
    if bad.size:
        raise SCNetInputError(f"Particle orientation vector {int(bad[0]) + 1} is zero or not finite "
                              f"({v[bad[0]].tolist()}); give unit vectors (nx ny nz) or no orientations.")
    v = v / n[:, None]
    e0 = np.array([1.0, 0.0, 0.0])
    out = np.empty((len(v), 3, 3))
    for i, u in enumerate(v):
        c = float(u @ e0)
        if c > 1 - 1e-12:
            out[i] = np.eye(3)
            continue
        if c < -1 + 1e-12:
            out[i] = np.diag([-1.0, -1.0, 1.0])  # 180 deg about axis 2
            continue
        k = np.cross(e0, u)
        s = np.linalg.norm(k)
        k /= s
        kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        out[i] = np.eye(3) + s * kx + (1 - c) * (kx @ kx)
    return out


def _rotations(rotations, n) -> np.ndarray:
    if rotations is None:
        return np.broadcast_to(np.eye(3), (n, 3, 3))
    r = np.asarray(rotations, dtype=np.float64)
    if r.shape != (n, 3, 3):
        raise SCNetInputError(f"rotations must have shape ({n}, 3, 3), got {r.shape}.")
    return r


# --------------------------------------------------------------------------- sampling
def box_grid(box: int) -> np.ndarray:
    """Offsets ``g = index - box // 2`` of a box^3 grid, shape (3, box, box, box): an integer centre
    with the identity samples exactly ``volume[c - box//2 : c - box//2 + box]``."""
    r = np.arange(box, dtype=np.float64) - box // 2
    return np.stack(np.meshgrid(r, r, r, indexing="ij"))


def inside(centres, shape, box: int) -> np.ndarray:
    """Particles whose box, under any rotation, is sampled inside the volume (N,) bool."""
    c = np.asarray(centres, dtype=np.float64).reshape(-1, 3)
    rad = math.ceil(box * math.sqrt(3) / 2)
    hi = np.asarray(shape, dtype=np.float64) - 1 - rad
    return np.all((c >= rad) & (c <= hi), axis=1)


def extract(volume, centres, rotations=None, box: int = 16) -> np.ndarray:
    """Subvolumes (N, box, box, box) float32: ``volume`` sampled at ``centre + R @ g`` (trilinear)."""
    from scipy.ndimage import map_coordinates
    vol = np.asarray(volume, dtype=np.float32)
    c = np.asarray(centres, dtype=np.float64).reshape(-1, 3)
    rot = _rotations(rotations, len(c))
    g = box_grid(box).reshape(3, -1)
    out = np.empty((len(c), box, box, box), dtype=np.float32)
    for s in range(0, len(c), CHUNK):
        cc, rr = c[s:s + CHUNK], rot[s:s + CHUNK]
        coords = np.einsum("nij,jk->ink", rr, g) + cc.T[:, :, None]   # (3, n, box^3)
        vals = map_coordinates(vol, coords.reshape(3, -1), order=1, mode="nearest")
        out[s:s + len(cc)] = vals.reshape(len(cc), box, box, box)
    return out


def average(volume, centres, rotations, box: int, idx=None) -> np.ndarray:
    """Mean of the subvolumes of the particles ``idx`` (all when None), float32 box^3."""
    c = np.asarray(centres, dtype=np.float64).reshape(-1, 3)
    rot = _rotations(rotations, len(c))
    idx = np.arange(len(c)) if idx is None else np.asarray(idx)
    if idx.size == 0:
        raise SCNetInputError("No particles to average.")
    acc = np.zeros((box, box, box), dtype=np.float64)
    for s in range(0, len(idx), CHUNK):
        j = idx[s:s + CHUNK]
        acc += extract(volume, c[j], rot[j], box).sum(axis=0, dtype=np.float64)
    return (acc / len(idx)).astype(np.float32)


def soft_sphere(box: int, radius: Optional[float] = None, edge: float = 2.0) -> np.ndarray:
    """A sphere of ``radius`` (default box/2 - edge) about the box centre (box//2) with a cosine edge."""
    radius = box / 2 - edge if radius is None else float(radius)
    g = box_grid(box)
    r = np.sqrt((g ** 2).sum(axis=0))
    m = np.clip((radius + edge - r) / edge, 0.0, 1.0) if edge > 0 else (r <= radius).astype(float)
    return (0.5 - 0.5 * np.cos(np.pi * m)) if edge > 0 else m


# --------------------------------------------------------------------------- alignment
def local_shifts(subvols, reference, max_shift: int, mask=None) -> np.ndarray:
    """Integer shifts s (N, 3), ``|s_i| <= max_shift``, maximising the cross-correlation of each particle
    with ``reference``: the particle re-sampled at ``centre + R @ s`` matches the reference best.

    (Cross-correlation by FFT of the mean-subtracted, masked boxes; the peak at offset s means
    ``particle[x + s] ~ reference[x]``.)
    """
    p = np.asarray(subvols, dtype=np.float64)
    box = p.shape[-1]
    m = soft_sphere(box) if mask is None else np.asarray(mask, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    ref = (ref - ref[m > 0.5].mean()) * m
    fr = np.conj(np.fft.rfftn(ref))
    r = np.arange(-max_shift, max_shift + 1)
    shifts = np.stack(np.meshgrid(r, r, r, indexing="ij"), axis=-1).reshape(-1, 3)
    out = np.zeros((len(p), 3), dtype=np.int64)
    for s in range(0, len(p), CHUNK):
        q = p[s:s + CHUNK]
        mean = (q * (m > 0.5)).sum(axis=(1, 2, 3)) / max(1, int((m > 0.5).sum()))
        q = (q - mean[:, None, None, None]) * m
        cc = np.fft.irfftn(np.fft.rfftn(q, axes=(1, 2, 3)) * fr, s=(box,) * 3, axes=(1, 2, 3))
        vals = cc[:, shifts[:, 0] % box, shifts[:, 1] % box, shifts[:, 2] % box]
        out[s:s + len(q)] = shifts[np.argmax(vals, axis=1)]
    return out


def half_sets(n: int, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """A reproducible random split of ``range(n)`` into two disjoint halves (sizes differ by <= 1).

    Only for particles that share no voxels; for particles in a tomogram use :func:`independent_halves`."""
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[: (n + 1) // 2]), np.sort(perm[(n + 1) // 2:])


def independent_halves(centres, box: int, seed: int = 0) -> Tuple[np.ndarray, np.ndarray, int]:
    """Two half-sets whose subvolumes share NO voxel of the tomogram, so their noise is independent.

    Particles closer than 2 x the rotated box's radius (their boxes may overlap: a lattice, a membrane)
    are linked; whole connected groups (e.g. one virus-like particle each) go to one half, largest first
    to the smaller half, in a random (``seed``) order among equals.  When one group holds more than 2/3
    of the particles, the split is a plane instead: across the axis of widest spread at the median,
    dropping the particles whose box reaches the plane.  A random split of overlapping particles would
    put the same noise in both half averages and the FSC would stay at 1.

    Returns (half A indices, half B indices, particles dropped).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree
    c = np.asarray(centres, dtype=np.float64).reshape(-1, 3)
    n = len(c)
    rad = math.ceil(box * math.sqrt(3) / 2)
    pairs = cKDTree(c).query_pairs(2 * rad, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    ncomp, label = connected_components(graph, directed=False)
    sizes = np.bincount(label, minlength=ncomp)
    if ncomp >= 2 and sizes.max() <= 2 * n / 3:
        rng = np.random.default_rng(seed)
        order = sorted(range(ncomp), key=lambda k: (-sizes[k], rng.random()))
        halves, count = ([], []), [0, 0]
        for k in order:
            h = 0 if count[0] <= count[1] else 1
            halves[h].append(k)
            count[h] += sizes[k]
        a = np.nonzero(np.isin(label, halves[0]))[0]
        b = np.nonzero(np.isin(label, halves[1]))[0]
        return a, b, 0
    axis = int(np.argmax(c.max(axis=0) - c.min(axis=0)))
    cut = float(np.median(c[:, axis]))
    a = np.nonzero(c[:, axis] <= cut - rad)[0]
    b = np.nonzero(c[:, axis] >= cut + rad)[0]
    return a, b, int(n - len(a) - len(b))


def refine(align_volume, centres, rotations, box: int, halves, iterations: int = 2, max_shift: int = 2):
    """Centres (N, 3) refined by ``iterations`` rounds of :func:`local_shifts`, each half-set against its
    own average on ``align_volume`` (gold standard); new centre = centre + R @ s."""
    c = np.array(centres, dtype=np.float64).reshape(-1, 3)
    rot = _rotations(rotations, len(c))
    for _ in range(max(0, iterations)):
        for idx in halves:
            if len(idx) == 0:
                continue
            ref = average(align_volume, c, rot, box, idx)
            for s in range(0, len(idx), CHUNK):
                j = idx[s:s + CHUNK]
                sh = local_shifts(extract(align_volume, c[j], rot[j], box), ref, max_shift)
                c[j] += np.einsum("nij,nj->ni", rot[j], sh.astype(np.float64))
    return c


# --------------------------------------------------------------------------- the measure
def _masked_var(v, m) -> float:
    w = m / m.sum()
    mu = float((v * w).sum())
    return float((((v - mu) ** 2) * w).sum())


def gold_standard(volume, centres, vectors=None, box: int = 16, voxel_size: float = 1.0, align_volume=None,
                  iterations: int = 2, max_shift: int = 2, seed: int = 0, mask_radius: Optional[float] = None,
                  per_half: int = 0) -> dict:
    """Gold-standard subtomogram average of ``volume``: FSC of two half-set averages and the average's SNR.

    ``align_volume`` (default ``volume``): where the positions are refined (e.g. the denoised tomogram);
    the averages are always of ``volume``.  Particles whose box leaves the volume are dropped (counted).
    ``per_half``: at most this many particles (a random subset) in each half-set (0 = all).
    Returns ``n_particles``, ``n_dropped``, ``box``, ``voxel_size``, ``fsc_0.5`` and ``fsc_0.143`` (A;
    nan = not reached), ``rises_again``, ``snr``, ``mean_shift`` (voxels), ``frequency``, ``fsc`` (lists),
    ``average_a`` / ``average_b`` (arrays).
    """
    from .metrics import crossings, fsc
    vol = np.asarray(volume, dtype=np.float32)
    align = vol if align_volume is None else np.asarray(align_volume, dtype=np.float32)
    if align.shape != vol.shape:
        raise SCNetInputError(f"The alignment volume has shape {align.shape}, the averaged one {vol.shape}.")
    if box < 4 or box > min(vol.shape):
        raise SCNetInputError(f"Box {box} must be between 4 and the smallest volume edge {min(vol.shape)}.")
    c = np.asarray(centres, dtype=np.float64).reshape(-1, 3)
    keep = inside(c, vol.shape, box)
    if keep.sum() < 2:
        raise SCNetInputError(f"Only {int(keep.sum())} of {len(c)} particles lie at least half a box ({box}) from "
                              f"the volume's edges: give positions in voxels of this volume (x y z) or a smaller box.")
    c = c[keep]
    rot = rotation_to_z(np.asarray(vectors)[keep]) if vectors is not None else None
    ha, hb, n_split = independent_halves(c, box, seed)
    if len(ha) == 0 or len(hb) == 0:
        raise SCNetInputError(f"The {len(c)} particles cannot be split into two half-sets that share no voxel "
                              f"(box {box}); give particles spread over the tomogram, or a smaller box.")
    if per_half:  # a random subset of each half: with few particles the noise decides (a sensitive measure)
        rng = np.random.default_rng(seed + 1)
        ha, hb = (np.sort(rng.choice(h, min(per_half, len(h)), replace=False)) for h in (ha, hb))
    halves = (ha, hb)
    new = refine(align, c, rot, box, halves, iterations, max_shift) if iterations > 0 else c
    a = average(vol, new, rot, box, halves[0])
    b = average(vol, new, rot, box, halves[1])
    m = soft_sphere(box, mask_radius)
    curve = fsc(a, b, voxel_size, mask=m)
    cr = crossings(curve.frequency, curve.fsc)
    noise = _masked_var(a - b, m) / 4.0
    signal = _masked_var((a + b) / 2.0, m) - noise
    return {"n_particles": int(len(ha) + len(hb)), "n_dropped": int((~keep).sum()) + n_split,
            "half_sizes": [int(len(ha)), int(len(hb))], "box": int(box),
            "voxel_size": float(voxel_size), "fsc_0.5": float(cr[0]["resolution"]),
            "fsc_0.143": float(cr[1]["resolution"]), "rises_again": bool(cr[0]["rises_again"] or cr[1]["rises_again"]),
            "snr": float(signal / noise) if noise > 0 else float("inf"),
            "mean_shift": float(np.linalg.norm((new - c)[np.concatenate(halves)], axis=1).mean()),
            "frequency": [float(f) for f in curve.frequency], "fsc": [float(v) for v in curve.fsc],
            "average_a": a, "average_b": b}


# --------------------------------------------------------------------------- particle files
def read_particles(path: str):
    """``x y z [nx ny nz]`` per row (voxels of the tomogram; '#' comments) -> (centres (N, 3) z,y,x,
    vectors (N, 3) z,y,x or None)."""
    from .files import read_text
    rows, ncol = [], None
    content = read_text(path, "Particle file")  # a regular UTF-8 file, else a clear error
    for i, line in enumerate(content.splitlines(), 1):
        text = line.split("#", 1)[0].split()
        if not text:
            continue
        try:
            vals = [float(t) for t in text]
        except ValueError:
            raise SCNetInputError(f"{path}, line {i}: {line.strip()!r} is not numbers; each row must be "
                                  f"x y z or x y z nx ny nz.") from None
        if len(vals) not in (3, 6):
            raise SCNetInputError(f"{path}, line {i}: {len(vals)} columns; each row must be x y z (3) or "
                                  f"x y z nx ny nz (6).")
        if ncol is not None and len(vals) != ncol:
            raise SCNetInputError(f"{path}, line {i}: {len(vals)} columns after rows of {ncol}; use one format.")
        if not all(math.isfinite(v) for v in vals):
            raise SCNetInputError(f"{path}, line {i}: a value is not finite.")
        ncol = len(vals)
        rows.append(vals)
    if not rows:
        raise SCNetInputError(f"Particle file {path} holds no particles (rows of x y z [nx ny nz]).")
    a = np.asarray(rows, dtype=np.float64)
    centres = a[:, 2::-1].copy()
    vectors = a[:, 5:2:-1].copy() if ncol == 6 else None
    return centres, vectors


def write_particles(path: str, centres_zyx, vectors_zyx=None, comment: str = "") -> None:
    """The format of :func:`read_particles` (x y z [nx ny nz])."""
    from .outputs import write_text
    c = np.asarray(centres_zyx, dtype=np.float64).reshape(-1, 3)
    lines = [f"# {comment}".rstrip() if comment else "# particles",
             "# x y z" + (" nx ny nz" if vectors_zyx is not None else "") + " (voxels)"]
    v = None if vectors_zyx is None else np.asarray(vectors_zyx, dtype=np.float64).reshape(-1, 3)
    for i, (z, y, x) in enumerate(c):
        row = f"{x:.4f} {y:.4f} {z:.4f}"
        if v is not None:
            row += f" {v[i, 2]:.6f} {v[i, 1]:.6f} {v[i, 0]:.6f}"
        lines.append(row)
    write_text(path, "\n".join(lines) + "\n")
