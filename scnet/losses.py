"""SC-Net losses (paper §4.4, eq. 2 and 4-8).

All take tensors of shape (B, 1, Z, Y, X).

* :func:`reconstruction_loss` -- eq. 2: squared error on the blind-spot
  mask ``M`` (eq. 3), normalised by the number of masked voxels (the public
  code divides by all voxels, which only rescales lambda_1 by the mask
  fraction but makes it depend on the blind-spot ratio).
* :func:`sobel_magnitude` -- eq. 4: ``|Gx (x) V| + |Gy (x) V|`` with the 3x3
  Sobel operator applied slice by slice (X and Y derivatives, "valid"
  convolution); ``three_d=True`` uses 3x3x3 Sobel kernels along X, Y and Z.
* :func:`smoothing_loss` -- eq. 5: MSE between the Sobel magnitudes of the
  output and of the prior (smoothed volume).
* :func:`expectancy_loss` -- eq. 6-7: local expectancy with an S³ box kernel
  of weights 1/S³, then the global expectancy per patch; squared difference
  between output and prior, averaged over the batch.
* :func:`regularisation_loss` -- L_reg = ||grad f||_1, the mean Sobel
  magnitude of the output.
* :func:`combined_loss` -- eq. 8 with :class:`LossWeights`.
* :func:`halves_loss` -- eq. 8 for the halves mode: eq. 2 becomes the squared error to
  the OTHER half tomogram on every voxel (Noise2Noise; the noise of the even and odd
  halves is independent), the prior terms are unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F

from .choices import HALVES_WEIGHTS, PAPER_WEIGHTS_WITH_EXP, PAPER_WEIGHTS_WITHOUT_EXP


@dataclass
class LossWeights:
    """lambda_1..lambda_4 of eq. 8."""

    rec: float = 0.6
    smooth: float = 0.1
    exp: float = 0.2
    reg: float = 0.01

    @classmethod
    def paper(cls, use_expectancy: bool = True) -> "LossWeights":
        return cls(*(PAPER_WEIGHTS_WITH_EXP if use_expectancy else PAPER_WEIGHTS_WITHOUT_EXP))

    @classmethod
    def for_mode(cls, mode: str, use_expectancy: bool = True) -> "LossWeights":
        """Default weights: the paper's in the single mode, :data:`HALVES_WEIGHTS` in the halves, split and slab
        modes (their L_rec sees independent noise on every voxel)."""
        return cls(*HALVES_WEIGHTS) if mode in ("halves", "split", "slab") else cls.paper(use_expectancy)


_KERNELS: Dict[tuple, torch.Tensor] = {}


def sobel_kernels(three_d: bool = False, device=None, dtype=torch.float32) -> torch.Tensor:
    """Sobel kernels as a Conv3d weight (n_axes, 1, kz, ky, kx); derivative axes X, Y (, Z)."""
    key = (three_d, str(device), dtype)
    if key not in _KERNELS:
        d = torch.tensor([-1.0, 0.0, 1.0], dtype=dtype)
        s = torch.tensor([1.0, 2.0, 1.0], dtype=dtype)
        if not three_d:
            gx = torch.einsum("y,x->yx", s, d)[None]   # (1,3,3): d/dx, smoothed along y
            gy = torch.einsum("y,x->yx", d, s)[None]
            k = torch.stack([gx, gy])
        else:
            gx = torch.einsum("z,y,x->zyx", s, s, d)
            gy = torch.einsum("z,y,x->zyx", s, d, s)
            gz = torch.einsum("z,y,x->zyx", d, s, s)
            k = torch.stack([gx, gy, gz])
        _KERNELS[key] = k[:, None].to(device)
    return _KERNELS[key]


def sobel_magnitude(v: torch.Tensor, three_d: bool = False) -> torch.Tensor:
    """D_s(V) = sum over axes of |G_axis (x) V| (eq. 4), valid convolution -> (B, 1, ...)."""
    k = sobel_kernels(three_d, v.device, v.dtype)
    g = F.conv3d(v, k)
    return g.abs().sum(1, keepdim=True)


def reconstruction_loss(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 2: sum(M * (f(V_bs) - V)^2) / sum(M); ``target`` is the ORIGINAL noisy patch."""
    n = mask.sum().clamp(min=1.0)
    return (mask * (output - target) ** 2).sum() / n


def smoothing_loss(output: torch.Tensor, prior: torch.Tensor, three_d: bool = False,
                   prior_grad: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Eq. 5: mean squared difference of D_s(output) and D_s(prior)."""
    gp = sobel_magnitude(prior, three_d) if prior_grad is None else prior_grad
    return F.mse_loss(sobel_magnitude(output, three_d), gp)


def local_expectancy(v: torch.Tensor, kernel: int = 5) -> torch.Tensor:
    """Eq. 6: mu_V = V (x) 1_S (box mean of S³ voxels, valid)."""
    return F.avg_pool3d(v, kernel, stride=1)


def _window_counts(n: int, kernel: int, device, dtype) -> torch.Tensor:
    """How many valid windows of ``kernel`` voxels along an axis of ``n`` hold each voxel, over their number."""
    i = torch.arange(n, device=device)
    starts = n - kernel + 1
    count = torch.minimum(i, torch.full_like(i, starts - 1)) - torch.clamp(i - kernel + 1, min=0) + 1
    return count.clamp(min=0).to(dtype) / (kernel * starts)


def expectation_of_local_expectancy(v: torch.Tensor, kernel: int = 5) -> torch.Tensor:
    """E(mu_V) per sample: the mean of eq. 6's box means over all valid positions, computed without
    the box filter as one weighted sum of the voxels (a voxel counts once per window holding it;
    the weights are separable), equal to ``local_expectancy(v).flatten(1).mean(1)``."""
    w = None
    for ax, n in zip((2, 3, 4), v.shape[2:]):
        c = _window_counts(n, kernel, v.device, v.dtype).view([n if a == ax else 1 for a in range(v.dim())])
        w = c if w is None else w * c
    return (v * w).flatten(1).sum(1) / v.shape[1]


def expectancy_loss(output: torch.Tensor, prior: torch.Tensor, kernel: int = 5) -> torch.Tensor:
    """Eq. 7: (E(mu_f) - E(mu_prior))^2 with one global expectancy per patch, mean over the batch."""
    eo = expectation_of_local_expectancy(output, kernel)
    ep = expectation_of_local_expectancy(prior, kernel)
    return ((eo - ep) ** 2).mean()


def regularisation_loss(output: torch.Tensor, three_d: bool = False) -> torch.Tensor:
    """L_reg = ||grad f||_1: the mean Sobel magnitude of the output."""
    return sobel_magnitude(output, three_d).mean()


def combined_loss(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, prior: torch.Tensor,
                  weights: LossWeights, expectancy_kernel: int = 5, three_d: bool = False,
                  rec_loss: Callable = reconstruction_loss) -> Dict[str, torch.Tensor]:
    """Eq. 8: L = l1 L_rec + l2 L_smooth + l3 L_exp + l4 L_reg.  Returns every term and ``loss``.

    ``rec_loss(output, target, mask)``: L_rec, eq. 2 by default (the wedge-aware halves training
    passes its Fourier-space form, :func:`scnet.dewedge.fourier_masked_loss`).

    A term whose weight is 0 (the halves mode's default for the prior terms) is still computed for the
    loss log, but outside autograd: it adds nothing to the gradient, so nothing is back-propagated.
    """
    def term(weight, fn, *args):
        if weight:
            return fn(*args)
        with torch.no_grad():
            return fn(*args)

    terms = {
        "L_rec": term(weights.rec, rec_loss, output, target, mask),
        "L_smooth": term(weights.smooth, smoothing_loss, output, prior, three_d),
        "L_exp": term(weights.exp, expectancy_loss, output, prior, expectancy_kernel),
        "L_reg": term(weights.reg, regularisation_loss, output, three_d),
    }
    terms["loss"] = (weights.rec * terms["L_rec"] + weights.smooth * terms["L_smooth"]
                     + weights.exp * terms["L_exp"] + weights.reg * terms["L_reg"])
    return terms


def halves_loss(output: torch.Tensor, other_half: torch.Tensor, prior: torch.Tensor, weights: LossWeights,
                expectancy_kernel: int = 5, three_d: bool = False) -> Dict[str, torch.Tensor]:
    """Eq. 8 with L_rec = mean((f(half_a) - half_b)^2) over all voxels (no blind spot needed)."""
    ones = torch.ones_like(other_half)
    return combined_loss(output, other_half, ones, prior, weights, expectancy_kernel, three_d)
