"""The loss of one training batch in each mode, and the validation loss on the fixed held-out patches.

* single (the paper): eq. 8 with the volumetric blind spot of eq. 3 (:mod:`scnet.blindspot`);
* halves: eq. 8 with L_rec against the other half tomogram (:func:`scnet.losses.halves_loss`);
* halves with ``wedge``: the rotated pairs and Fourier-space L_rec of :mod:`scnet.dewedge`;
* slab: eq. 8 with L_rec against the input itself on every voxel: the network is row-blind
  (:class:`scnet.model.SCNet` with ``row_gap``), so no voxel's own noise reaches its output (Noise2Self).
"""
from __future__ import annotations

import torch

from . import dewedge
from .blindspot import blindspot_replace
from .config import TrainConfig
from .losses import LossWeights, combined_loss, halves_loss


def step_loss(model, batch, mode, cfg, weights, gen):
    """The loss of one training batch: eq. 8 (single) or its halves form (wedge-aware: :mod:`scnet.dewedge`)."""
    if mode == "halves":
        _, p, e, o = batch
        flip = torch.rand(e.shape[0], generator=gen).to(e.device) < 0.5
        sel = flip.view(-1, 1, 1, 1, 1)
        inp, tgt = torch.where(sel, o, e), torch.where(sel, e, o)
        if cfg.wedge:
            measured = dewedge.measured_mask(e.shape[-3:], cfg.wedge_tilt_range(), e.device)
            x, y, pr, m = dewedge.wedge_pairs(inp, tgt, p, measured, gen)
            return combined_loss(model(x), y, m, pr, weights, cfg.expectancy_kernel, cfg.sobel_3d,
                                 rec_loss=dewedge.fourier_masked_loss)
        return halves_loss(model(inp), tgt, p, weights, cfg.expectancy_kernel, cfg.sobel_3d)
    if mode == "slab":
        x, p = batch
        return halves_loss(model(x), x, p, weights, cfg.expectancy_kernel, cfg.sobel_3d)
    x, p = batch
    x_bs, mask = blindspot_replace(x, cfg.centre_ratio(), cfg.blindspot_size, generator=gen)
    return combined_loss(model(x_bs), x, mask, p, weights, cfg.expectancy_kernel, cfg.sobel_3d)


VAL_MASKS = 2   # fixed blind-spot masks averaged in the single-mode validation loss


@torch.no_grad()
def validation_loss(model, val, mode: str, cfg: TrainConfig, weights: LossWeights) -> float:
    """Eq. 8 on the fixed held-out patches, in eval mode.

    single: with ``VAL_MASKS`` fixed blind spots (the same at every validation); halves: even->odd and
    odd->even (wedge: in Fourier space where the other half has data, without rotation).
    """
    was_training = model.training
    model.eval()
    if mode == "halves" and cfg.wedge:  # the error where the other half has data (its wedge is empty)
        _, p, e, o = val
        m = dewedge.measured_mask(e.shape[-3:], cfg.wedge_tilt_range(), e.device)
        loss = 0.5 * sum(float(combined_loss(model(a), b, m, p, weights, cfg.expectancy_kernel, cfg.sobel_3d,
                                             rec_loss=dewedge.fourier_masked_loss)["loss"]) for a, b in ((e, o), (o, e)))
    elif mode == "slab":
        x, p = val[:2]
        loss = float(halves_loss(model(x), x, p, weights, cfg.expectancy_kernel, cfg.sobel_3d)["loss"])
    elif mode == "halves":
        _, p, e, o = val
        loss = 0.5 * (float(halves_loss(model(e), o, p, weights, cfg.expectancy_kernel, cfg.sobel_3d)["loss"])
                      + float(halves_loss(model(o), e, p, weights, cfg.expectancy_kernel, cfg.sobel_3d)["loss"]))
    else:
        x, p = val[:2]
        g = torch.Generator().manual_seed(987654)
        loss = 0.0
        for _ in range(VAL_MASKS):
            x_bs, mask = blindspot_replace(x, cfg.centre_ratio(), cfg.blindspot_size, generator=g)
            out = model(x_bs)
            loss += float(combined_loss(out, x, mask, p, weights, cfg.expectancy_kernel, cfg.sobel_3d)["loss"])
        loss /= VAL_MASKS
    model.train(was_training)
    return loss
