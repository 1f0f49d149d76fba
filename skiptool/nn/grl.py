"""Gradient-reversal layer (Ganin & Lempitsky, 2015), used by paper 000 to train the modality
transformer T against the modality classifier C in one pass: identity forward, -alpha * gradient
backward, so C minimises its loss while everything before the layer maximises it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, alpha: float) -> Tensor:
        ctx.alpha = alpha
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.alpha * grad, None


def reverse_gradient(x: Tensor, alpha: float = 0.1) -> Tensor:
    """x unchanged; the gradient flowing back through it is multiplied by -alpha."""
    return _ReverseGradient.apply(x, alpha)


class GradientReversal(nn.Module):
    def __init__(self, alpha: float = 0.1):
        super().__init__()
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha = alpha

    def forward(self, x: Tensor) -> Tensor:
        return reverse_gradient(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"
