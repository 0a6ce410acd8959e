"""Volumetric blind spot (§4.3, eq. 2-3): leak-free, vectorised, target is the original patch."""
import numpy as np
import pytest
import torch

from scnet.blindspot import blindspot_reference_loop, blindspot_replace, centre_ratio
from scnet.losses import reconstruction_loss


def test_replaced_voxels_never_keep_their_own_value():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 1, 16, 20, 12)  # unique continuous values
    x_bs, mask = blindspot_replace(x, 0.1, 3, generator=g)
    m = mask.bool()
    assert m.any() and (~m).any()
    # eq. 3: mask marks exactly the changed voxels; a replaced voxel never gets its own value (offset != 0)
    assert torch.equal(m, x_bs != x)
    # unmasked voxels untouched
    assert torch.equal(x_bs[~m], x[~m])
    # every replacement value comes from the same patch (a neighbour)
    for b in range(3):
        vals = set(x[b].flatten().tolist())
        assert set(x_bs[b][m[b]].tolist()) <= vals


def test_replacement_comes_from_the_neighbourhood_in_all_directions():
    g = torch.Generator().manual_seed(1)
    Z, Y, X = 12, 12, 12
    idx = torch.arange(Z * Y * X, dtype=torch.float32).reshape(1, 1, Z, Y, X)
    x_bs, mask = blindspot_replace(idx, 0.02, 1, radius=2, generator=g)
    m = mask.bool()[0, 0]
    src = x_bs[0, 0][m].long()
    tgt = torch.nonzero(m)
    s = torch.stack([src // (Y * X), (src // X) % Y, src % X], -1)
    off = s - tgt
    assert off.abs().max() <= 2 and (off.abs().sum(-1) > 0).all()
    assert (off < 0).any() and (off > 0).any()  # both directions (the public code only has -1 / 0)


@pytest.mark.parametrize("size,radius", [(3, None), (3, 5), (1, 2), (2, 3)])
def test_source_block_is_disjoint_from_the_target_block(size, radius):
    """Every replaced voxel reads a voxel at Chebyshev distance >= block size: outside its own block,
    so neither its own noisy value nor one of its block sits next to it in the network input."""
    g = torch.Generator().manual_seed(3)
    Z, Y, X = 20, 22, 18
    idx = torch.arange(Z * Y * X, dtype=torch.float32).reshape(1, 1, Z, Y, X).repeat(2, 1, 1, 1, 1)
    x_bs, mask = blindspot_replace(idx, 0.05, size, radius=radius, generator=g)
    for b in range(2):
        m = mask.bool()[b, 0]
        src = x_bs[b, 0][m].long()
        tgt = torch.nonzero(m)
        s = torch.stack([src // (Y * X), (src // X) % Y, src % X], -1)
        cheb = (s - tgt).abs().amax(-1)
        assert m.sum() > 100
        assert (cheb >= size).all(), f"{int((cheb < size).sum())} replaced voxels read from inside their block"
        assert cheb.max() <= (size if radius is None else radius)


def test_ratio_and_block_size_and_input_untouched():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 1, 32, 32, 32)
    x0 = x.clone()
    _, mask = blindspot_replace(x, 0.01, 3, generator=g)
    assert torch.equal(x, x0)
    frac = mask.mean().item()
    # 1% centres with 27-voxel blocks: 1 - 0.99^27 ~ 0.24 covered
    assert 0.18 < frac < 0.28


@pytest.mark.parametrize("ratio,size", [(0.1, 3), (0.3, 3), (0.1, 5)])
def test_replaced_ratio_is_the_fraction_of_voxels_replaced(ratio, size):
    """Paper §5.1 counts replaced voxels: 10% replaced, not 10% block centres (~94% replaced)."""
    g = torch.Generator().manual_seed(5)
    _, mask = blindspot_replace(torch.randn(2, 1, 48, 48, 48), centre_ratio(ratio, size, "replaced"), size,
                                generator=g)
    assert mask.mean().item() == pytest.approx(ratio, abs=0.02)
    _, mask_c = blindspot_replace(torch.randn(2, 1, 48, 48, 48), centre_ratio(0.1, 3, "centres"), 3, generator=g)
    assert mask_c.mean().item() > 0.85
    with pytest.raises(ValueError):
        centre_ratio(1.0, 3, "replaced")


def test_reproducible_with_generator():
    x = torch.randn(1, 1, 16, 16, 16)
    a = blindspot_replace(x, generator=torch.Generator().manual_seed(5))
    b = blindspot_replace(x, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_target_is_original_patch_not_aliased():
    """Fails on the public code's bug (target == replaced patch): L_rec must be > 0 for the identity map."""
    x = torch.randn(2, 1, 16, 16, 16)
    x_bs, mask = blindspot_replace(x, 0.1, 3, generator=torch.Generator().manual_seed(0))
    identity_output = x_bs  # a network that copies its input
    assert reconstruction_loss(identity_output, x, mask) > 0.5  # ~2 sigma^2 for white noise
    # the re-stated public code: its "target" is the replaced array itself -> loss 0 (the bug)
    v = x[0, 0].numpy().copy()
    rep, tgt, m = blindspot_reference_loop(v, 0.05, 3, np.random.default_rng(0))
    assert tgt is rep
    ours_tgt = x[0, 0].numpy()
    assert not np.array_equal(ours_tgt[m > 0], rep[m > 0])
