"""Volumetric blind-spot replacement (paper §4.3, Fig. 2, eq. 2-3).

For each patch, ``ratio`` x (number of voxels) block centres are drawn; the
``n x n x n`` block around each centre is replaced by the block found at a
random offset ``o`` in its neighbourhood (``o`` in ``[-radius, radius]³``,
all directions, never ``(0, 0, 0)``).  The mask ``M`` marks every replaced
voxel (eq. 3).

Leak-free by construction:

* the offset is never zero on all axes, so a replaced voxel never receives
  its own value (the public code draws offsets in {-1, 0}³ and replaces
  nothing 1/8 of the time);
* at a border an out-of-range source is reflected (``p - o`` instead of
  ``p + o``), which keeps the offset non-zero;
* replacement values are always read from the ORIGINAL patch, and the
  original patch is returned untouched as the loss target (the public code
  returns an alias of the replaced patch, so its eq. 2 target is the
  network's own altered input).

Fully vectorised: one gather and one scatter per call, for a whole batch,
on any device.  Duplicate targets (overlapping blocks) receive one of the
candidate values, each of which is a valid replacement.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch


def block_offsets(n: int, device=None) -> torch.Tensor:
    """The n³ voxel offsets of a block around its centre, shape (n³, 3)."""
    lo = -(n // 2)
    r = torch.arange(lo, lo + n, device=device)
    return torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)


def blindspot_replace(x: torch.Tensor, ratio: float = 0.1, size: int = 3, radius: Optional[int] = None,
                      generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Return ``(x_bs, mask)`` for a batch ``x`` of shape (B, 1, Z, Y, X) (or (B, Z, Y, X)).

    ``x`` itself is never modified: it stays the reconstruction target of
    eq. 2.  ``mask`` is a float tensor, 1 where ``x_bs`` was replaced (eq. 3).
    ``radius`` (default ``size``) bounds the offset per axis.
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
    dims = torch.tensor(spatial, device=dev)

    def rand_int(high, size_):
        return torch.randint(0, high, size_, generator=generator, device="cpu").to(dev)

    centres = torch.stack([rand_int(int(s), (B, K)) for s in spatial], -1)  # (B,K,3)
    # offsets in [-radius, radius]^3 \ {0}: draw an index among (2r+1)^3 - 1 and skip the zero
    side = 2 * radius + 1
    idx = rand_int(side ** 3 - 1, (B, K))
    idx = idx + (idx >= (side ** 3) // 2).long()   # skip the centre code = zero offset
    off = torch.stack([idx // (side * side), (idx // side) % side, idx % side], -1) - radius  # (B,K,3)

    blk = block_offsets(size, dev)  # (n³,3)
    tgt = centres[:, :, None, :] + blk[None, None]  # (B,K,n³,3)
    src = tgt + off[:, :, None, :]
    # reflect an out-of-range source to the other side (offset stays non-zero)
    out_of_range = (src < 0) | (src >= dims)
    src = torch.where(out_of_range, tgt - off[:, :, None, :], src)
    valid = ((tgt >= 0) & (tgt < dims)).all(-1)  # block voxels outside the patch are dropped
    src = src.clamp(min=torch.zeros_like(dims), max=dims - 1)  # only relevant for dropped targets

    def lin(p):
        return (p[..., 0] * spatial[1] + p[..., 1]) * spatial[2] + p[..., 2]

    b_idx = torch.arange(B, device=dev)[:, None, None].expand_as(valid)
    t_lin = lin(tgt)[valid]
    s_lin = lin(src)[valid]
    bb = b_idx[valid]
    out = flat.clone()
    out[bb, t_lin] = flat[bb, s_lin]
    mask = torch.zeros_like(flat)
    mask[bb, t_lin] = 1.0
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
