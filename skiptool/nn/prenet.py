"""Tacotron pre-net: fully-connected ReLU layers, each followed by dropout (active in training only)."""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn


class Prenet(nn.Module):
    """(..., in_dim) -> (..., sizes[-1]); Tacotron's pre-nets are sizes [256, 128], dropout 0.5."""

    def __init__(self, in_dim: int, sizes: Sequence[int] = (256, 128), dropout: float = 0.5):
        super().__init__()
        if not sizes:
            raise ValueError("Prenet needs at least one layer size")
        layers: list[nn.Module] = []
        for size in sizes:
            layers += [nn.Linear(in_dim, size), nn.ReLU(), nn.Dropout(dropout)]
            in_dim = size
        self.net = nn.Sequential(*layers)
        self.out_dim = in_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
