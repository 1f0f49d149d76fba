import pytest
import torch

from skiptool.nn.contrastive import in_batch_negatives, kernel_hinge, rbf_kernel


def test_rbf_kernel_values():
    a = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    k = rbf_kernel(a, b)
    expected = torch.exp(-0.5 * torch.tensor([[0.0, 25.0], [2.0, 13.0]]))
    assert torch.allclose(k, expected)


def test_rbf_kernel_gradient_finite_at_zero_distance():
    a = torch.zeros(2, 3, requires_grad=True)
    rbf_kernel(a, a.detach()).sum().backward()
    assert torch.isfinite(a.grad).all()


def test_in_batch_negatives_never_self_and_cover_batch():
    idx = torch.stack([in_batch_negatives(5, generator=torch.Generator().manual_seed(s)) for s in range(50)])
    assert (idx != torch.arange(5)).all()
    assert set(idx.flatten().tolist()) == set(range(5))
    with pytest.raises(ValueError):
        in_batch_negatives(1)


def test_all_negatives_is_the_mean_over_every_random_choice():
    torch.manual_seed(0)
    anchor, positive = torch.randn(4, 3), torch.randn(4, 3)
    by_offset = [kernel_hinge(anchor, positive, 0.5, "random", (torch.arange(4) + k) % 4) for k in (1, 2, 3)]
    assert torch.allclose(kernel_hinge(anchor, positive, 0.5, "all"), torch.stack(by_offset).mean(0))


def test_hinge_gradient_pulls_positive_and_pushes_negative():
    anchor = torch.tensor([[0.0, 0.0], [4.0, 4.0]])
    positive = torch.tensor([[1.5, 0.0], [0.0, 1.0]], requires_grad=True)  # item 1 is item 0's negative
    hinge = kernel_hinge(anchor, positive, margin=0.5, negatives="random", negative_index=torch.tensor([1, 0]))
    assert hinge[0] > 0
    hinge[0].backward()
    descent = -positive.grad  # the direction a gradient step moves each embedding
    towards_anchor = anchor[0] - positive.detach()
    assert (descent[0] * towards_anchor[0]).sum() > 0  # the positive moves towards the anchor
    assert (descent[1] * towards_anchor[1]).sum() < 0  # the negative moves away from it


def test_hinge_zero_when_margin_met_and_batch_of_one():
    anchor = torch.tensor([[0.0, 0.0], [10.0, 10.0]])
    assert kernel_hinge(anchor, anchor.clone(), 0.5, "all").abs().max() == 0
    assert kernel_hinge(anchor[:1], anchor[:1], 0.5).shape == (1,)
