"""SC-Net network (§4.2): fast up-sampling block == naive materialised one; shapes; init."""
import pytest
import torch

from scnet.model import ModelConfig, SCNet, collapse_nearest2, up2


def _pair(cfg, seed=0):
    torch.manual_seed(seed)
    fast = SCNet(cfg, impl="fast")
    naive = SCNet(cfg, impl="naive")
    naive.load_state_dict(fast.state_dict())
    # random (non-init) weights everywhere, including BN affine and biases
    with torch.no_grad():
        for p in fast.parameters():
            p.add_(0.3 * torch.randn_like(p))
    naive.load_state_dict(fast.state_dict())
    return fast, naive


@pytest.mark.parametrize("up", [True, False])
def test_fast_equals_naive_eval_mode(up):
    cfg = ModelConfig(base_width=4, upsampling_block=up)
    fast, naive = _pair(cfg)
    with torch.no_grad():
        for bn in [m for m in fast.modules() if isinstance(m, torch.nn.BatchNorm3d)]:
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
    naive.load_state_dict(fast.state_dict())
    fast.eval(), naive.eval()
    x = torch.randn(2, 1, 16, 32, 48)
    with torch.no_grad():
        a, b = fast(x), naive(x)
    assert a.shape == b.shape == x.shape
    assert torch.allclose(a, b, atol=1e-5 * float(a.abs().max()), rtol=1e-4), (a - b).abs().max()


@pytest.mark.parametrize("depth,up", [(2, True), (3, True), (3, False), (4, True)])
def test_receptive_radius_is_the_measured_gradient_support(depth, up):
    """ModelConfig.receptive_radius (the default tiling margin) == the farthest input voxel that moves
    an output voxel, measured from the gradient of one output voxel on a volume larger than the field."""
    cfg = ModelConfig(base_width=2, depth=depth, upsampling_block=up)
    torch.manual_seed(0)
    m = SCNet(cfg).eval()
    n = 4 * cfg.receptive_radius() + 2 * cfg.multiple()
    n += -n % cfg.multiple()
    x = torch.zeros(1, 1, n, n, n, requires_grad=True)
    m(x)[0, 0, n // 2, n // 2, n // 2].backward()
    g = x.grad[0, 0].abs()
    reach = 0
    for ax in range(3):
        idx = (g.sum(tuple(a for a in range(3) if a != ax)) > 0).nonzero().flatten() - n // 2
        reach = max(reach, int(idx.abs().max()))
    assert reach == cfg.receptive_radius()


def test_fast_equals_naive_train_mode_and_gradients():
    """No BatchNorm on the lifted-resolution layers -> train-mode BN statistics agree too."""
    cfg = ModelConfig(base_width=4)
    fast, naive = _pair(cfg, seed=1)
    fast.train(), naive.train()
    x = torch.randn(2, 1, 16, 16, 16)
    a, b = fast(x), naive(x)
    assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    (a ** 2).mean().backward()
    (b ** 2).mean().backward()
    for (n, pa), pb in zip(fast.named_parameters(), naive.parameters()):
        assert torch.allclose(pa.grad, pb.grad, atol=1e-4, rtol=1e-3), n
    # running statistics were updated identically
    for ma, mb in zip(fast.modules(), naive.modules()):
        if isinstance(ma, torch.nn.BatchNorm3d):
            assert torch.allclose(ma.running_mean, mb.running_mean, atol=1e-6)


def test_collapse_is_conv_on_nearest_upsample():
    torch.manual_seed(0)
    w = torch.randn(3, 2, 3, 3, 3)
    x = torch.randn(1, 2, 6, 7, 5)
    ref = torch.nn.functional.conv3d(up2(x), w, stride=2, padding=1)
    fast = torch.nn.functional.conv3d(torch.nn.functional.pad(x, (1, 0, 1, 0, 1, 0)), collapse_nearest2(w))
    assert torch.allclose(ref, fast, atol=1e-5)


def test_configurable_width_depth_and_size_check():
    m = SCNet(ModelConfig(base_width=2, depth=2))
    assert len(m.encoder) == 2 and m.encoder[0][0].out_channels == 2
    assert m(torch.randn(1, 1, 8, 12, 4)).shape == (1, 1, 8, 12, 4)
    with pytest.raises(ValueError, match="multiples"):
        m(torch.randn(1, 1, 9, 8, 8))


def test_kaiming_init_and_prior_not_an_input():
    m = SCNet(ModelConfig(base_width=8))
    conv = m.encoder[1][0]
    fan_in = conv.weight[0].numel()
    std = conv.weight.std().item()
    expected = (2.0 / (1 + 0.1 ** 2) / fan_in) ** 0.5
    assert abs(std - expected) / expected < 0.15
    assert m.encoder[0][0].in_channels == 1  # the network sees only the (blind-spotted) noisy patch


def test_batchnorm_folding_keeps_eval_output():
    from scnet.model import fold_batchnorm
    fast, _ = _pair(ModelConfig(base_width=4), seed=2)
    with torch.no_grad():
        fast.train()
        fast(torch.randn(2, 1, 16, 16, 16))  # non-trivial running stats
    fast.eval()
    x = torch.randn(1, 1, 16, 16, 24)
    with torch.no_grad():
        a = fast(x)
        b = fold_batchnorm(fast)(x)
    assert torch.allclose(a, b, atol=1e-5 * float(a.abs().max()), rtol=1e-4)


def test_channels_last_layout_same_function_and_standard_files(tmp_path):
    """Weights and activations run channels-last (faster oneDNN convolutions), folded or not; the
    function equals the same weights in the standard layout, and model.pt stores contiguous tensors."""
    from scnet.data import Normalisation
    from scnet.model import CHANNELS_LAST, fold_batchnorm
    from scnet.modelfile import load_model_file, save_model
    from scnet.config import TrainConfig
    torch.manual_seed(3)
    m = SCNet(ModelConfig(base_width=4, depth=3))
    convs = [p for p in m.parameters() if p.dim() == 5]
    assert convs and all(p.is_contiguous(memory_format=CHANNELS_LAST) for p in convs)
    std = SCNet(ModelConfig(base_width=4, depth=3))
    std.load_state_dict(m.state_dict())
    std.set_memory_format(torch.contiguous_format)
    assert not std.encoder[1][0].weight.is_contiguous(memory_format=CHANNELS_LAST)
    m.eval(), std.eval()
    x = torch.randn(1, 1, 16, 24, 16)
    with torch.no_grad():
        a, b = m(x), std(x)
    assert torch.allclose(a, b, atol=1e-5 * float(b.abs().max()))
    path = str(tmp_path / "model.pt")
    save_model(path, m, TrainConfig(base_width=4, depth=3), Normalisation(0.0, 1.0))
    fold_batchnorm(m)
    assert all(p.is_contiguous(memory_format=CHANNELS_LAST) for p in m.parameters() if p.dim() == 5)
    sd = torch.load(path, weights_only=True)["state_dict"]
    assert all(v.is_contiguous() for v in sd.values())
    loaded, _, _ = load_model_file(path)
    with torch.no_grad():
        assert torch.allclose(loaded(x), a, atol=1e-5 * float(a.abs().max()))
