"""Losses eq. 2, 4-8 on cases with a known answer."""
import pytest
import torch

from scnet.losses import (LossWeights, combined_loss, expectancy_loss, local_expectancy, reconstruction_loss,
                          regularisation_loss, smoothing_loss, sobel_magnitude)


def ramp(a, axis, shape=(1, 1, 8, 9, 10)):
    g = torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in shape[2:]], indexing="ij")
    return (a * g[axis])[None, None]


def test_rec_loss_masked_mean():
    out = torch.zeros(1, 1, 2, 2, 2)
    tgt = torch.full_like(out, 3.0)
    mask = torch.zeros_like(out)
    mask[0, 0, 0, 0, :] = 1
    tgt[0, 0, 1] = 100.0  # unmasked error is ignored
    assert reconstruction_loss(out, tgt, mask).item() == pytest.approx(9.0)  # sum 18 / 2 masked voxels


def test_sobel_magnitude_of_ramps():
    # Sobel d/dx of a*x = 2a * (1+2+1) = 8a ; Y likewise; Z is ignored by the 2-axis (paper) operator
    assert torch.allclose(sobel_magnitude(ramp(0.5, 2)), torch.tensor(4.0))
    assert torch.allclose(sobel_magnitude(ramp(-0.5, 1)), torch.tensor(4.0))
    assert torch.allclose(sobel_magnitude(ramp(1.0, 0)), torch.tensor(0.0))
    # 3-axis option: 2 * 16 = 32a along Z
    assert torch.allclose(sobel_magnitude(ramp(1.0, 0), three_d=True), torch.tensor(32.0))
    assert sobel_magnitude(ramp(1.0, 2)).shape == (1, 1, 8, 7, 8)  # valid convolution, per slice


def test_smoothing_and_regularisation_known_values():
    out, prior = ramp(1.0, 2), ramp(0.25, 2)
    assert smoothing_loss(out, prior).item() == pytest.approx((8 - 2) ** 2)
    assert regularisation_loss(out).item() == pytest.approx(8.0)
    assert smoothing_loss(prior, prior).item() == 0


def test_expectancy_known_values():
    a = torch.full((2, 1, 7, 7, 7), 2.0)
    b = torch.full((2, 1, 7, 7, 7), -1.0)
    assert expectancy_loss(a, b, 5).item() == pytest.approx(9.0)
    v = torch.arange(7.0).reshape(1, 1, 7, 1, 1).expand(1, 1, 7, 5, 5).contiguous()
    mu = local_expectancy(v, 5)  # box mean of 5 consecutive integers = centre value
    assert mu.flatten().tolist() == pytest.approx([2.0, 3.0, 4.0])
    # noise with zero mean in both -> small
    assert expectancy_loss(torch.randn(1, 1, 16, 16, 16), torch.zeros(1, 1, 16, 16, 16)) < 0.01


def test_combined_weights():
    w = LossWeights.paper(True)
    assert (w.rec, w.smooth, w.exp, w.reg) == (0.6, 0.1, 0.2, 0.01)
    w0 = LossWeights.paper(False)
    assert (w0.rec, w0.smooth, w0.exp, w0.reg) == (0.8, 0.1, 0.0, 0.01)
    out, prior = ramp(1.0, 2), ramp(0.25, 2)
    tgt = out + 1
    mask = torch.ones_like(out)
    t = combined_loss(out, tgt, mask, prior, w)
    expected = 0.6 * 1 + 0.1 * 36 + 0.2 * t["L_exp"].item() + 0.01 * 8
    assert t["loss"].item() == pytest.approx(expected, rel=1e-5)


def test_zero_weight_terms_are_logged_but_not_back_propagated():
    """Halves mode default 0.6/0/0/0: the prior terms are computed for the log only; the gradient is that of
    0.6 L_rec alone, and the logged values are the terms' own."""
    torch.manual_seed(0)
    out = torch.randn(2, 1, 12, 12, 12, requires_grad=True)
    tgt, prior = torch.randn(2, 1, 12, 12, 12), torch.randn(2, 1, 12, 12, 12)
    mask = torch.ones_like(tgt)
    t = combined_loss(out, tgt, mask, prior, LossWeights(0.6, 0.0, 0.0, 0.0))
    assert t["loss"].requires_grad and not t["L_smooth"].requires_grad and not t["L_reg"].requires_grad
    t["loss"].backward()
    g = out.grad.clone()
    out.grad = None
    (0.6 * reconstruction_loss(out, tgt, mask)).backward()
    assert torch.equal(g, out.grad)
    assert t["L_smooth"].item() == pytest.approx(smoothing_loss(out.detach(), prior).item())
    assert t["L_reg"].item() == pytest.approx(regularisation_loss(out.detach()).item())


@pytest.mark.parametrize("shape,kernel", [((2, 1, 16, 20, 12), 5), ((1, 3, 7, 9, 11), 3), ((1, 1, 5, 6, 8), 5)])
def test_expectation_of_local_expectancy_equals_the_box_filter_mean(shape, kernel):
    from scnet.losses import expectation_of_local_expectancy
    torch.manual_seed(0)
    v = torch.randn(shape, dtype=torch.float64) + 2.0
    want = local_expectancy(v, kernel).flatten(1).mean(1)
    assert torch.allclose(expectation_of_local_expectancy(v, kernel), want, rtol=1e-12, atol=1e-12)
