"""Wedge-aware halves training (``--wedge``): denoise and fill the missing wedge together.

The even and odd half tomograms have independent noise and the same missing wedge ``W`` (the
Fourier samples that no tilt measured, :func:`scnet.wedge.missing_wedge_mask`). At each step, each
training pair is turned by a random rotation ``R`` of the cube (one of its 24 proper rotations,
exact on the voxel grid, no interpolation):

* the input is the rotated half with the ORIGINAL wedge removed once more,
  ``x' = F^-1[(1 - W) . F R(x)]``: it now lacks ``W`` and ``R(W)``, as a real tomogram lacks ``W``;
* the target is the other half rotated, ``y' = R(y)``: it has data everywhere but in ``R(W)``;
* the reconstruction loss is the squared error in Fourier space where the target has data,
  ``sum_k (1 - R(W))_k |F(f(x') - y')|_k^2 / sum_k (1 - R(W))_k`` (orthonormal FFT: with no wedge it is
  the voxel MSE of :func:`scnet.losses.halves_loss`).

Samples inside ``W`` but outside ``R(W)`` are missing from the input and present in the target: the
network learns to fill the wedge in the orientation a real tomogram lacks it, and the noise of the
target half is independent of the input's (Noise2Noise). The same idea as DeepDeWedge
(Wiedemann & Heckel, Nat. Commun. 2024), written here on the cube's rotations. Prediction is unchanged:
the trained network is applied to the tomogram as it is.

Volumes are ``(B, 1, Z, Y, X)`` tensors with cubic patches; the tilt axis is Y (:mod:`scnet.wedge`).
"""
from __future__ import annotations

import itertools
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from .wedge import missing_wedge_mask

Rotation = Tuple[Tuple[int, int, int], Tuple[int, ...]]


def _proper_rotations() -> List[Rotation]:
    """The 24 rotations of a cube as (axis permutation, flipped axes) of a (Z, Y, X) array: the signed
    permutation matrices of determinant +1 (reflections excluded)."""
    out = []
    for perm in itertools.permutations(range(3)):
        inversions = sum(1 for i in range(3) for j in range(i + 1, 3) if perm[i] > perm[j])
        for flips in itertools.product((False, True), repeat=3):
            if (inversions + sum(flips)) % 2 == 0:
                out.append((perm, tuple(a for a in range(3) if flips[a])))
    return out


ROTATIONS: List[Rotation] = _proper_rotations()


def rotate(v: torch.Tensor, rot: Rotation) -> torch.Tensor:
    """``v`` (..., Z, Y, X) with a cube rotation applied to its last three axes (cubic arrays)."""
    perm, flips = rot
    lead = v.dim() - 3
    v = v.permute(*range(lead), *(lead + a for a in perm))
    return torch.flip(v, [lead + a for a in flips]) if flips else v


def rotate_spectrum_mask(mask: torch.Tensor, rot: Rotation) -> torch.Tensor:
    """Where the spectrum of ``rotate(v, rot)`` lives when that of ``v`` lives in ``mask`` (an
    ``fftn``-ordered (Z, Y, X) array): axes permuted as the volume's, and a flip of the volume maps the
    frequency k to -k (mod N) on that axis, an exact permutation of the samples."""
    perm, flips = rot
    m = mask.permute(*perm)
    for a in flips:
        m = torch.roll(torch.flip(m, [a]), 1, dims=a)
    return m


_MASKS: Dict[tuple, torch.Tensor] = {}


def measured_mask(shape: Sequence[int], tilt_range: Sequence[float], device=None) -> torch.Tensor:
    """Float ``shape`` (Z, Y, X) ``fftn``-ordered mask: 1 where a tilt of ``tilt_range`` measures, 0 in the wedge."""
    key = (tuple(int(n) for n in shape), tuple(float(t) for t in tilt_range), str(device))
    if key not in _MASKS:
        m = ~missing_wedge_mask(key[0], tilt_range)
        _MASKS[key] = torch.from_numpy(m.astype(np.float32)).to(device)
    return _MASKS[key]


def apply_spectrum_mask(v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``F^-1[mask . F v]`` over the last three axes (real part)."""
    return torch.fft.ifftn(torch.fft.fftn(v, dim=(-3, -2, -1)) * mask, dim=(-3, -2, -1)).real


def fourier_masked_loss(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the Fourier samples where ``mask`` is 1 (orthonormal FFT; ``mask``
    broadcast to the batch): the voxel MSE when ``mask`` is all ones (Parseval)."""
    d = torch.fft.fftn(output - target, dim=(-3, -2, -1), norm="ortho")
    m = mask.expand_as(d.real)
    return (m * d.abs() ** 2).sum() / m.sum().clamp(min=1.0)


def wedge_pairs(inp: torch.Tensor, tgt: torch.Tensor, prior: torch.Tensor, measured: torch.Tensor,
                generator: torch.Generator):
    """One random cube rotation per sample: (input with the wedge re-applied, rotated target, rotated
    prior, the target's measured mask (B, 1, P, P, P))."""
    xs, ys, ps, ms = [], [], [], []
    for b in range(inp.shape[0]):
        rot = ROTATIONS[int(torch.randint(len(ROTATIONS), (1,), generator=generator))]
        xs.append(apply_spectrum_mask(rotate(inp[b:b + 1], rot), measured))
        ys.append(rotate(tgt[b:b + 1], rot))
        ps.append(rotate(prior[b:b + 1], rot))
        ms.append(rotate_spectrum_mask(measured, rot)[None, None])
    return torch.cat(xs), torch.cat(ys), torch.cat(ps), torch.cat(ms)
