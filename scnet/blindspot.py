"""Volumetric blind-spot replacement (paper §4.3, Fig. 2, eq. 2-3).

For each patch, ``ratio`` x (number of voxels) block centres are drawn (see
:func:`centre_ratio` for the paper's "ratio of replaced voxels"); the
``n x n x n`` block around each centre is replaced by the block found at a
random offset ``o`` in its neighbourhood (``o`` in ``[-radius, radius]³``,
all directions).  The mask ``M`` marks every replaced voxel (eq. 3).

Leak-free by construction:

* the source block is DISJOINT from its target block: every offset has
  ``max |o_a| >= n`` (the block edge), so no replaced voxel receives its own
  value or a voxel of its own block (with offsets anywhere in
  ``[-n, n]³`` minus the zero offset a share of the source blocks overlaps the target block
  and a replaced voxel's own noisy value sits beside it in the input; the
  public code draws offsets in {-1, 0}³ and replaces nothing 1/8 of the
  time);
* at a border an out-of-range source is reflected (``p - o`` instead of
  ``p + o``), which keeps ``max |o_a| >= n``;
* replacement values are always read from the ORIGINAL patch, and the
  original patch is returned untouched as the loss target (the public code
  returns an alias of the replaced patch, so its eq. 2 target is the
  network's own altered input).

Fully vectorised for a whole batch on any device: centre ids are scattered
into a volume, a stride-1 max-pool of size n gives every voxel the id of the
last-drawn block covering it (overlapping blocks resolved deterministically),
and one gather reads the source voxels.  Cost is O(voxels), independent of
the number of blocks.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F


RATIO_OF = ("replaced", "centres")


def disjoint_offsets(size: int, radius: int) -> torch.Tensor:
    """All offsets in ``[-radius, radius]³`` whose source block does not overlap the target block.

    Two ``size³`` blocks whose centres differ by ``o`` are disjoint iff ``max_a |o_a| >= size``.
    Shape (n_offsets, 3); needs ``radius >= size``.
    """
    if radius < size:
        raise ValueError(f"blind-spot radius {radius} < block size {size}: no disjoint source block exists")
    r = torch.arange(-radius, radius + 1)
    o = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    return o[o.abs().amax(1) >= size]


def centre_ratio(ratio: float, size: int = 3, ratio_of: str = "replaced") -> float:
    """Fraction of voxels to draw as block centres so that ``ratio`` means what ``ratio_of`` says.

    ``"replaced"``: ``ratio`` is the fraction of voxels replaced in a patch -- the paper's
    wording (§5.1: "the ratio of replaced voxels in a volumetric patch was set to 10%").
    Centres drawn uniformly with replacement cover ``1 - exp(-r n³)`` of the patch, so
    ``r = -ln(1 - ratio) / n³`` (0.0039 for 10% with 3³ blocks).
    ``"centres"``: ``ratio`` is the fraction of block centres, as in the public code; with
    3³ blocks, 10% centres replace about 94% of the voxels.
    """
    if ratio_of == "centres":
        return float(ratio)
    if ratio_of != "replaced":
        raise ValueError(f"ratio_of must be one of {RATIO_OF}, got {ratio_of!r}")
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"a replaced-voxel ratio must be in (0, 1), got {ratio}")
    return float(min(1.0, -math.log1p(-ratio) / size ** 3))


def blindspot_replace(x: torch.Tensor, ratio: float = 0.1, size: int = 3, radius: Optional[int] = None,
                      generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Return ``(x_bs, mask)`` for a batch ``x`` of shape (B, 1, Z, Y, X) (or (B, Z, Y, X)).

    ``x`` itself is never modified: it stays the reconstruction target of
    eq. 2.  ``mask`` is a float tensor, 1 where ``x_bs`` was replaced (eq. 3).
    ``radius`` (default ``size``) bounds the offset per axis; every offset has ``max |o_a| >= size``
    (source block disjoint from the target block, see :func:`disjoint_offsets`).
    """
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"blindspot ratio must be in (0, 1], got {ratio}")
    if size < 1:
        raise ValueError(f"blindspot size must be >= 1, got {size}")
    radius = size if radius is None else int(radius)
    shape = x.shape
    spatial = shape[-3:]
    if min(spatial) <= 2 * radius:
        raise ValueError(f"patch {tuple(spatial)} too small for blind-spot radius {radius}")
    B = int(torch.tensor(shape[:-3]).prod()) if len(shape) > 3 else 1
    dev = x.device
    flat = x.reshape(B, -1)
    nvox = flat.shape[1]
    K = max(1, int(round(ratio * nvox)))

    def rand_int(high, size_):
        return torch.randint(0, high, size_, generator=generator, device="cpu").to(dev)

    centres = torch.stack([rand_int(int(s), (B, K)) for s in spatial], -1)  # (B,K,3)
    # offsets whose source block is disjoint from the target block (max |o_a| >= size)
    allowed = disjoint_offsets(size, radius).to(dev)
    off = allowed[rand_int(allowed.shape[0], (B, K))]                                  # (B,K,3)

    # 1) owner map: at each voxel, the id of the last-drawn centre whose n³ block covers it (-1: none).
    #    Deterministic (max is order-independent) and exact for overlapping blocks.
    Z, Y, X = (int(s) for s in spatial)
    c_lin = (centres[..., 0] * Y + centres[..., 1]) * X + centres[..., 2]              # (B,K)
    ids = torch.full((B, nvox), -1.0, device=dev)
    ids.scatter_reduce_(1, c_lin, torch.arange(K, device=dev, dtype=torch.float32).expand(B, K), reduce="amax")
    lo = -(size // 2)
    pl, pr = size - 1 + lo, -lo                     # covered by centres in [v - (lo+n-1), v - lo]
    ids = F.pad(ids.reshape(B, 1, Z, Y, X), (pl, pr, pl, pr, pl, pr), value=-1.0)
    owner = F.max_pool3d(ids, size, stride=1).reshape(B, nvox)
    hit = owner >= 0
    own = owner.clamp(min=0).long()
    # 2) source voxel = voxel + its block's offset, reflected at the patch border (offset stays non-zero)
    s_lin = torch.zeros((B, nvox), dtype=torch.long, device=dev)
    for a, n_a in enumerate((Z, Y, X)):
        shp = [1, 1, 1]
        shp[a] = n_a
        v_a = torch.arange(n_a, device=dev).reshape(shp).expand(Z, Y, X).reshape(1, nvox)
        o_a = torch.gather(off[:, :, a], 1, own)                                        # (B,N)
        s_a = v_a + o_a
        s_a = torch.where((s_a < 0) | (s_a >= n_a), v_a - o_a, s_a)
        s_lin = s_lin * n_a + s_a
    src = torch.gather(flat, 1, s_lin)
    out = torch.where(hit, src, flat)
    mask = hit.to(flat.dtype)
    return out.reshape(shape), mask.reshape(shape)


def blindspot_reference_loop(x, ratio: float = 0.1, size: int = 3, rng=None):
    """Slow Python-loop re-statement of the authors' blind spot (benchmark only).

    Offsets per axis in {-1, 0} (so (0,0,0) happens), 3³ blocks, and -- as in
    the public code -- the returned "target" is the SAME array as the input
    after replacement (the aliasing bug).  Used only by ``benchmarks/``.
    """
    import numpy as np
    rng = rng or np.random.default_rng(0)
    v = x  # alias, deliberately (bug re-stated)
    Z, Y, X = v.shape[-3:]
    n = int(ratio * Z * Y * X)
    mask = np.zeros(v.shape[-3:], np.float32)
    h = size // 2
    for _ in range(n):
        z, y, xx = rng.integers(h, Z - h), rng.integers(h, Y - h), rng.integers(h, X - h)
        dz, dy, dx = rng.integers(-1, 1, 3)
        z0, y0, x0 = max(z - h + dz, 0), max(y - h + dy, 0), max(xx - h + dx, 0)
        v[..., z - h:z + h + 1, y - h:y + h + 1, xx - h:xx + h + 1] = \
            v[..., z0:z0 + size, y0:y0 + size, x0:x0 + size]
        mask[z - h:z + h + 1, y - h:y + h + 1, xx - h:xx + h + 1] = 1
    return v, v, mask
