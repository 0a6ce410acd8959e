"""Re-statement of the authors' public SC-Net topology (for speed/quality comparison only).

Written from the description in shared/notes/reference-implementation.md (no
code copied): 639,681 parameters at width 32.

* encoder: four Conv3d k3 stride 2 (1->32->32->32->32) with bias; BatchNorm3d +
  LeakyReLU(0.1) after the first three; P -> P/2 -> P/4 -> P/8 -> P/16;
* decoder: nearest up-sampling of the deepest map straight to the P/4 level,
  concat with that level's features, two conv+BN+LReLU (64 ch); concat the
  same skip again, two more; nearest up-sampling to full size P, concat the
  raw input, conv 65->32 + BN + LReLU, conv 32->1 (3³, linear, with bias);
* kaiming-normal conv init.  The 2x "up-sampling block" is NOT in the net:
  the tomogram is up-sampled before patching, so the network runs on P³
  patches of the up-sampled data and ~86% of its FLOPs are the full-res
  65->32 conv.

The blind spot of the public code (Python loop, offsets in {-1, 0}, aliased
target) is :func:`scnet.blindspot.blindspot_reference_loop`.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _cbr(cin, cout, stride=1, bn=True):
    layers = [nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=True)]
    if bn:
        layers += [nn.BatchNorm3d(cout), nn.LeakyReLU(0.1, inplace=True)]
    return nn.Sequential(*layers)


class ReferenceSCNet(nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        w = width
        self.e1, self.e2, self.e3 = _cbr(1, w, 2), _cbr(w, w, 2), _cbr(w, w, 2)
        self.e4 = _cbr(w, w, 2, bn=False)
        self.d1 = nn.Sequential(_cbr(2 * w, 2 * w), _cbr(2 * w, 2 * w))
        self.d2 = nn.Sequential(_cbr(3 * w, 2 * w), _cbr(2 * w, 2 * w))
        self.f1 = _cbr(2 * w + 1, w)
        self.f2 = nn.Conv3d(w, 1, 3, padding=1, bias=True)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        e1 = self.e1(x)
        e2 = self.e2(e1)
        e3 = self.e3(e2)
        e4 = self.e4(e3)
        h = F.interpolate(e4, size=e2.shape[2:], mode="nearest")
        h = self.d1(torch.cat([h, e2], 1))
        h = self.d2(torch.cat([h, e2], 1))
        h = F.interpolate(h, size=x.shape[2:], mode="nearest")
        return self.f2(self.f1(torch.cat([h, x], 1)))


if __name__ == "__main__":
    print(sum(p.numel() for p in ReferenceSCNet().parameters()))
