"""SC-Net network (paper §4.2, Fig. 1).

A ``depth``-level (default 3) encoder/decoder U-Net whose basic block is a
3³ Conv3d (stride 2 in the encoder) + BatchNorm3d + LeakyReLU(0.1), with
nearest up-sampling in the decoder, an **up-sampling block** (2x nearest)
before the encoder and a 0.5x nearest down-sampling at the end.

Topology for an input patch of L³ voxels with the up-sampling block
(R = 2L is the "lifted" resolution)::

    u  = up2(x)                                 R³    (1 channel)
    e1 = CBR(u,  stride 2)                      R/2   c1
    e2 = CBR(e1, stride 2)                      R/4   c2
    e3 = CBR(e2, stride 2)                      R/8   c3
    b  = CBR(e3, stride 1)                      R/8   c3   (bottleneck)
    d2 = CBR(cat(up2(b),  e2))                  R/4   c2
    d1 = CBR(cat(up2(d2), e1))                  R/2   c1
    f  = LReLU(conv3(cat(up2(d1), u)))          R     c1   (no BatchNorm)
    y  = conv1(f)[::2, ::2, ::2]                L     1

Two implementations share the same parameters (same ``state_dict``):

* ``impl="naive"`` materialises ``up2(x)`` (8x the voxels), runs the two
  lifted-resolution layers there and subsamples at the end;
* ``impl="fast"`` (default) never builds the 8x volume.  Nearest-2x then a
  3-tap conv evaluated at even positions reads source voxels (i-1, i, i), so
  the stride-2 3³ conv on ``up2(x)`` equals a 2³ conv at native resolution
  with per-axis taps ``(w0, w1 + w2)`` at offsets ``(-1, 0)`` (zero padding
  1 before, 0 after).  The final conv is only needed at the kept (even)
  voxels, where its input ``cat(up2(d1), up2(x)) = up2(cat(d1, x))`` is
  nearest-upsampled, so it collapses the same way; the 1x1 conv is
  point-wise.

Memory layout: weights and activations are channels-last (``torch.channels_last_3d``, NDHWC);
oneDNN's 3D convolutions on the CPU run ~2x faster in it than in NCDHW, for the same function
(float summation order aside; measured in ``benchmarks/speed.py``).  The stored weights are
contiguous (:mod:`scnet.modelfile`), so model files do not depend on it.

Equivalence (tested): the two give the same output to float tolerance in
eval AND train mode, for any weights, because no BatchNorm sits on a
lifted-resolution (R³) layer: the first encoder BN sees exactly the same
R/2 map in both, and the final lifted conv has no BN.  Gradients are equal
too (same function of the same parameters).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .choices import NETWORK_DEFAULTS

NEG_SLOPE = 0.1
CHANNELS_LAST = torch.channels_last_3d  # the layout of weights and activations (module docstring)


@dataclass
class ModelConfig:
    """Network shape: ``base_width`` channels at the first level, doubled per level."""

    base_width: int = NETWORK_DEFAULTS["base_width"]
    depth: int = NETWORK_DEFAULTS["depth"]
    upsampling_block: bool = NETWORK_DEFAULTS["upsampling_block"]
    max_width: int = 64
    row_gap: Optional[int] = None   # None: ordinary; g >= 0: row y predicted from rows |y' - y| > g (slab mode)

    def widths(self) -> List[int]:
        return [min(self.base_width * 2 ** k, self.max_width) for k in range(self.depth)]

    def multiple(self) -> int:
        """Input sizes must be a multiple of this (pooling arithmetic)."""
        return 2 ** (self.depth - 1) if self.upsampling_block else 2 ** self.depth

    def receptive_radius(self) -> int:
        """Largest distance (voxels, per axis) from which an input voxel reaches an output voxel.

        Two 3³ convolutions per level, each level at half the resolution of the one above:
        3·2^(depth-1) with the 2x up-sampling block (its encoder starts at twice the resolution),
        3·2^depth - 1 without. Tiled prediction reads this much context around each tile, so a
        tiled output equals the whole-volume one (tests/test_model.py measures it from gradients).
        A row-blind network (``row_gap``) reaches further along Y, one way per branch (each causal 3-tap
        conv reads two rows on one side): 7·2^(depth-1) - 2 + row_gap along Y, measured the same way.
        """
        return max(self.receptive_radii())

    def receptive_radii(self):
        """:meth:`receptive_radius` per axis (Z, Y, X): a row-blind network reaches further along Y only."""
        r = 3 * 2 ** (self.depth - 1) if self.upsampling_block else 3 * 2 ** self.depth - 1
        return (r, r if self.row_gap is None else 7 * 2 ** (self.depth - 1) - 2 + int(self.row_gap), r)

    def to_dict(self) -> dict:
        return asdict(self)


def _cbr(cin: int, cout: int, stride: int, causal: bool = False) -> nn.Sequential:
    """Conv 3³ + BN + LReLU; ``causal``: no padding in the conv (:func:`_pad` pads Y on one side only)."""
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride=stride, padding=0 if causal else 1, bias=False),
                         nn.BatchNorm3d(cout), nn.LeakyReLU(NEG_SLOPE, inplace=True))


def _pad(h: torch.Tensor, causal: bool) -> torch.Tensor:
    """Zero padding before a causal 3³ conv: 1 on each side of Z and X, 2 before Y and none after, so
    the output row y reads rows y-2..y (stride 2: row i reads 2i-2..2i) and never a row below it."""
    return F.pad(h, (1, 1, 2, 0, 1, 1)) if causal else h


def shift_rows(h: torch.Tensor, s: int) -> torch.Tensor:
    """Move every Y row ``s`` rows down (zeros enter at the top): row y then holds what row y - s held."""
    return F.pad(h, (0, 0, s, 0, 0, 0))[:, :, :, :h.shape[3]]


def collapse_nearest2(weight: torch.Tensor) -> torch.Tensor:
    """3³ kernel applied at even positions of a nearest-2x input -> 2³ kernel at native res.

    Per axis the taps (w0, w1, w2) at source offsets (-1, 0, 0) become (w0, w1 + w2).
    """
    w = weight
    for dim in (2, 3, 4):
        a = w.narrow(dim, 0, 1)
        b = w.narrow(dim, 1, 2).sum(dim, keepdim=True)
        w = torch.cat([a, b], dim)
    return w


def _conv2tap(x: torch.Tensor, w: torch.Tensor, bias=None) -> torch.Tensor:
    """2³ conv with taps at offsets (-1, 0) per axis (zero padding 1 before, 0 after)."""
    return F.conv3d(F.pad(x, (1, 0, 1, 0, 1, 0)), w, bias)


def up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class SCNet(nn.Module):
    """SC-Net U-Net (§4.2).  ``forward(x)`` maps (B, 1, Z, Y, X) -> (B, 1, Z, Y, X)."""

    def __init__(self, cfg: ModelConfig = None, impl: str = "fast"):
        super().__init__()
        self.cfg = cfg or ModelConfig()
        if impl not in ("fast", "naive"):
            raise ValueError(f"impl must be 'fast' or 'naive', got {impl!r}")
        self.impl = impl
        c = self.cfg.widths()
        self.causal = self.cfg.row_gap is not None
        if self.causal and (impl != "fast" or not self.cfg.upsampling_block or int(self.cfg.row_gap) < 0):
            raise ValueError("a row-blind network (row_gap >= 0) needs impl 'fast' and the up-sampling block")
        self.encoder = nn.ModuleList()
        cin = 1
        for k in range(self.cfg.depth):
            self.encoder.append(_cbr(cin, c[k], 2, self.causal and k > 0))  # level 0: the 2-tap conv, causal
            cin = c[k]
        self.bottleneck = _cbr(c[-1], c[-1], 1, self.causal)
        self.decoder = nn.ModuleList()
        for k in range(self.cfg.depth - 2, -1, -1):  # levels depth-2 .. 0
            self.decoder.append(_cbr(c[k + 1] + c[k], c[k], 1, self.causal))
        # lifted-resolution layers: no BatchNorm (see module docstring)
        self.final = nn.Conv3d(c[0] + 1, c[0], 3, padding=1, bias=True)
        if self.causal:  # the two branches' features (rows above, rows below) mixed voxel by voxel
            self.mix = nn.Conv3d(2 * c[0], c[0], 1, bias=True)
        self.head = nn.Conv3d(c[0], 1, 1, bias=True)
        self.reset_parameters()
        self.set_memory_format(CHANNELS_LAST)

    def set_memory_format(self, memory_format) -> "SCNet":
        """Lay weights and activations out in ``memory_format`` (default channels-last; the standard
        ``torch.contiguous_format`` is the same function, slower on the CPU: benchmarks compare them)."""
        self.memory_format = memory_format
        return self.to(memory_format=memory_format)

    def reset_parameters(self) -> None:
        """Kaiming-normal init for the LeakyReLU(0.1) convs; BN to identity."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, a=NEG_SLOPE, mode="fan_in", nonlinearity="leaky_relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # ------------------------------------------------------------------
    def _first(self, x: torch.Tensor) -> torch.Tensor:
        conv, bn, act = self.encoder[0]
        if self.cfg.upsampling_block and self.impl == "fast":
            y = _conv2tap(x, collapse_nearest2(conv.weight), conv.bias)
        else:
            y = conv(x)
        return act(bn(y))

    def _final(self, d: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.upsampling_block and self.impl == "fast":
            h = _conv2tap(torch.cat([d, x], 1), collapse_nearest2(self.final.weight), self.final.bias)
        else:
            h = self.final(torch.cat([up2(d), x], 1))
        return F.leaky_relu(h, NEG_SLOPE)

    @staticmethod
    def _point(h: torch.Tensor, conv: nn.Conv3d) -> torch.Tensor:
        """A 1x1 conv as an einsum: same function, ~20x faster than a 1x1 Conv3d on CPU."""
        y = torch.einsum("bczyx,oc->bozyx", h, conv.weight[:, :, 0, 0, 0])
        return y + conv.bias.view(1, -1, 1, 1, 1)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """The U-Net up to the head: (B, c0, Z, Y, X); causal along Y for a row-blind network."""
        skips = []
        h = self._first(x)
        skips.append(h)
        for blk in self.encoder[1:]:
            h = blk[2](blk[1](blk[0](_pad(h, self.causal))))
            skips.append(h)
        blk = self.bottleneck
        h = blk[2](blk[1](blk[0](_pad(h, self.causal))))
        for i, blk in enumerate(self.decoder):
            skip = skips[-2 - i]
            h = blk[2](blk[1](blk[0](_pad(torch.cat([up2(h), skip], 1), self.causal))))
        return self._final(h, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.cfg.multiple()
        if any(s % m for s in x.shape[2:]):
            raise ValueError(f"SCNet input sizes must be multiples of {m}, got {tuple(x.shape[2:])}")
        x = x.contiguous(memory_format=self.memory_format)
        if self.causal:
            return self._forward_row_blind(x)
        if self.cfg.upsampling_block and self.impl == "naive":
            x = up2(x)
        y = self._point(self._features(x), self.head)
        if self.cfg.upsampling_block and self.impl == "naive":
            y = y[:, :, ::2, ::2, ::2]
        return y

    def _forward_row_blind(self, x: torch.Tensor) -> torch.Tensor:
        """J-invariant along Y (the tilt axis): the output row y never sees the input rows y-g..y+g.

        One causal U-Net (row y reads rows <= y) runs on the volume and on its Y-flip (rows >= y); each
        feature map is shifted g + 1 rows away from the rows it may not see, then the two are mixed
        voxel by voxel (Laine et al. 2019's shifted receptive fields, along one axis).  A whole slab of
        XZ slices is hidden, so noise correlated within a slice (along the rays, by the ramp filter) or
        between neighbouring slices (rows mixed by an interpolation) cannot be copied to the output.
        """
        b = x.shape[0]
        f = self._features(torch.cat([x, x.flip(3)], 0))
        f = shift_rows(f, int(self.cfg.row_gap) + 1)
        h = torch.cat([f[:b], f[b:].flip(3)], 1)
        h = F.leaky_relu(self._point(h, self.mix), NEG_SLOPE)
        return self._point(h, self.head)


@torch.no_grad()
def fold_batchnorm(model: SCNet) -> SCNet:
    """Fold eval-mode BatchNorm into the preceding conv (inference only; same eval output, fewer passes)."""
    model.eval()
    for seq in list(model.encoder) + [model.bottleneck] + list(model.decoder):
        conv, bn = seq[0], seq[1]
        if isinstance(bn, nn.Identity):
            continue
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused = nn.Conv3d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                          padding=conv.padding, bias=True).to(conv.weight.device)
        fused.weight.copy_(conv.weight * scale[:, None, None, None, None])
        b0 = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias.copy_(bn.bias + (b0 - bn.running_mean) * scale)
        seq[0], seq[1] = fused, nn.Identity()
    return model.set_memory_format(model.memory_format)


def build_model(cfg: ModelConfig = None, impl: str = "fast") -> SCNet:
    return SCNet(cfg or ModelConfig(), impl=impl)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
