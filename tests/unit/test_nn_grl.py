"""Gradient reversal: identity forward, -alpha x gradient backward."""

import pytest
import torch

from skiptool.nn.grl import GradientReversal, reverse_gradient


def test_forward_is_identity_and_backward_flips_and_scales():
    x = torch.randn(4, 3, requires_grad=True)
    y = GradientReversal(0.1)(x)
    assert torch.equal(y, x)
    weights = torch.randn(4, 3)
    (y * weights).sum().backward()
    assert torch.allclose(x.grad, -0.1 * weights)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.5])
def test_alpha_scales_the_reversed_gradient(alpha):
    x = torch.ones(2, requires_grad=True)
    reverse_gradient(x, alpha).sum().backward()
    assert torch.allclose(x.grad, torch.full((2,), -alpha))


def test_parameters_before_the_layer_ascend_what_after_it_descends():
    torch.manual_seed(0)
    before, after = torch.nn.Linear(3, 3), torch.nn.Linear(3, 1)
    x = torch.randn(8, 3)
    after(GradientReversal(1.0)(before(x))).sum().backward()
    grad_reversed = before.weight.grad.clone()
    before.zero_grad()
    after(before(x)).sum().backward()
    assert torch.allclose(grad_reversed, -before.weight.grad)


def test_negative_alpha_is_rejected():
    with pytest.raises(ValueError):
        GradientReversal(-1.0)
