"""Memory fusion M (paper 000, Eq. 2): shapes, attention weights, u inside the memory's span;
the M -> FC stand-in and its matched size."""

import pytest
import torch

from skiptool.nn.memory import FCFusion, MemoryFusion, fc_fusion_hidden_size


def test_shapes_and_weights():
    fusion = MemoryFusion(dim=16, num_slots=10, num_heads=4)
    u, weights = fusion(torch.randn(5, 16))
    assert u.shape == (5, 16) and weights.shape == (5, 4, 10)
    assert torch.allclose(weights.sum(-1), torch.ones(5, 4))


def test_u_is_a_convex_combination_of_the_memory_per_head():
    torch.manual_seed(0)
    fusion = MemoryFusion(dim=8, num_slots=6, num_heads=2)
    u, weights = fusion(torch.randn(3, 8))
    values = torch.tanh(fusion.memory).view(6, 2, 4)
    expected = torch.einsum("bhn,nhd->bhd", weights, values).reshape(3, 8)
    assert torch.allclose(u, expected, atol=1e-6)
    assert u.abs().max() <= 1


def test_paper_sizes_and_gradient_reaches_memory():
    fusion = MemoryFusion()  # n_k 128, d_k 256, 4 heads
    assert fusion.memory.shape == (128, 256) and fusion.num_heads == 4
    assert fusion.key_conv.kernel_size == (1,) and fusion.key_conv.out_channels == 256
    fusion(torch.randn(2, 256))[0].sum().backward()
    assert fusion.memory.grad is not None and fusion.memory.grad.abs().sum() > 0


def test_heads_must_divide_dim():
    with pytest.raises(ValueError):
        MemoryFusion(dim=10, num_heads=4)


def test_fc_fusion_matches_the_memory_parameter_count():
    memory = MemoryFusion(256, 128, 4)
    fc = FCFusion(256, fc_fusion_hidden_size(256, 128))
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert abs(count(fc) - count(memory)) / count(memory) < 0.01
    u, weights = fc(torch.randn(3, 256))
    assert u.shape == (3, 256) and weights is None


def test_identity_key_init_makes_u_follow_the_query():
    """key_init identity: keys start equal to the values; with a wider memory the attention is
    input-dependent at once (PyTorch's default key conv leaves it uniform: u the same for all)."""
    torch.manual_seed(0)
    z = torch.tanh(torch.randn(64, 256))
    default = MemoryFusion(256, 128, 4)
    identity = MemoryFusion(256, 128, 4, init_std=2.0, key_init="identity")
    values = torch.tanh(identity.memory).t().unsqueeze(0)
    assert torch.allclose(identity.key_conv(values), values, atol=1e-6)
    spread = lambda fusion: fusion(z)[0].std(0).mean().item()
    assert spread(identity) > 5 * spread(default)
    with pytest.raises(ValueError, match="key_init"):
        MemoryFusion(16, 4, 2, key_init="orthogonal")


def test_head_scale_divides_the_logits_by_the_head_size():
    torch.manual_seed(0)
    paper, gst = MemoryFusion(16, 6, 4), MemoryFusion(16, 6, 4, scale="head")
    gst.load_state_dict(paper.state_dict())
    z = torch.randn(3, 16)
    logits = lambda w: w.clamp_min(1e-30).log() - w.clamp_min(1e-30).log().mean(-1, keepdim=True)
    # softmax(x / 2) against softmax(x / 4): the centred log-weights differ by a factor 2
    assert torch.allclose(logits(gst(z)[1]), 2 * logits(paper(z)[1]), atol=1e-5)
    with pytest.raises(ValueError, match="scale"):
        MemoryFusion(16, 6, 4, scale="sqrt")
