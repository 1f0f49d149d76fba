import math

import torch

from skiptool.nn.vae import (
    GaussianHead,
    bernoulli_log_likelihood,
    kl_between,
    kl_to_standard_normal,
    sample,
    unit_gaussian_log_likelihood,
)


def test_gaussian_head_shapes():
    mean, logvar = GaussianHead(7, 3)(torch.randn(5, 7))
    assert mean.shape == logvar.shape == (5, 3)


def test_kl_to_standard_normal_matches_closed_form():
    mean, logvar = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.2, -0.7]])
    # KL(N(m, s^2) || N(0, 1)) = (s^2 + m^2 - 1 - log s^2) / 2, summed over dimensions
    expected = 0.5 * (logvar.exp() + mean**2 - 1 - logvar).sum()
    assert torch.allclose(kl_to_standard_normal((mean, logvar)), expected[None])
    assert kl_to_standard_normal((torch.zeros(2, 4), torch.zeros(2, 4))).abs().max() < 1e-7


def test_kl_between_matches_closed_form_and_is_zero_for_equal():
    q = (torch.tensor([[0.3, 1.0]]), torch.tensor([[0.1, -0.4]]))
    r = (torch.tensor([[-0.2, 0.5]]), torch.tensor([[0.6, 0.3]]))
    var_q, var_r = q[1].exp(), r[1].exp()
    expected = 0.5 * (r[1] - q[1] + (var_q + (q[0] - r[0]) ** 2) / var_r - 1).sum()
    assert torch.allclose(kl_between(q, r), expected[None])
    assert kl_between(q, q).abs().max() < 1e-7


def test_sample_is_reparameterised():
    mean = torch.zeros(1000, 2, requires_grad=True)
    logvar = torch.full((1000, 2), math.log(4.0), requires_grad=True)
    z = sample((mean, logvar))
    assert abs(z.std().item() - 2.0) < 0.2
    z.sum().backward()
    assert mean.grad is not None and logvar.grad is not None


def test_unit_gaussian_log_likelihood_and_mask():
    x, mean = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    expected = (-0.5 * (x - mean) ** 2 - 0.5 * math.log(2 * math.pi)).sum((1, 2))
    assert torch.allclose(unit_gaussian_log_likelihood(x, mean), expected, atol=1e-5)
    mask = torch.ones(2, 3, 1)
    mask[:, 2] = 0
    masked = unit_gaussian_log_likelihood(x, mean, mask)
    x_changed = x.clone()
    x_changed[:, 2] += 100  # masked frames do not count
    assert torch.allclose(unit_gaussian_log_likelihood(x_changed, mean, mask), masked)
    assert not torch.allclose(masked, expected)


def test_bernoulli_log_likelihood():
    x = torch.tensor([[1.0, 0.0, 0.5]])
    logits = torch.tensor([[2.0, -1.0, 0.0]])
    p = torch.sigmoid(logits)
    expected = (x * p.log() + (1 - x) * (1 - p).log()).sum()
    assert torch.allclose(bernoulli_log_likelihood(x, logits), expected[None])
