"""Kernel-similarity hinge losses for pulling paired embeddings together and pushing other
items of the batch away (paper 004's cross-modality semantic contrastiveness, Eq. 8).

Written by hand: PyTorch's margin losses (`nn.TripletMarginLoss`, `nn.MarginRankingLoss`) work
on distances, not on an RBF similarity with in-batch negatives.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor


def rbf_kernel(a: Tensor, b: Tensor) -> Tensor:
    """k(a_i, b_j) = exp(-||a_i - b_j||^2 / 2) for all pairs: (N, Z), (M, Z) -> (N, M) in (0, 1]."""
    # Explicit differences rather than torch.cdist: cdist's gradient is undefined at distance 0,
    # which happens whenever a positive pair coincides.
    squared_distance = (a[:, None, :] - b[None, :, :]).pow(2).sum(-1)
    return torch.exp(-0.5 * squared_distance)


def in_batch_negatives(batch_size: int, device: torch.device | None = None,
                       generator: torch.Generator | None = None) -> Tensor:
    """For each item i, the index of one other item drawn uniformly from the rest of the batch."""
    if batch_size < 2:
        raise ValueError("in-batch negatives need a batch of at least 2")
    offsets = torch.randint(1, batch_size, (batch_size,), generator=generator)
    return ((torch.arange(batch_size) + offsets) % batch_size).to(device)


def kernel_hinge(anchor: Tensor, positive: Tensor, margin: float,
                 negatives: Literal["random", "all"] = "random",
                 negative_index: Tensor | None = None) -> Tensor:
    """Per-item hinge max(0, margin - k(a_i, p_i) + k(a_i, p_j)) with j another item of the batch.

    `negatives="random"`: one j per item (`negative_index`, or drawn with `in_batch_negatives`);
    `"all"`: the mean over every j != i (same expectation, lower variance). Returns (B,);
    a batch of one has no negatives and gives zeros.
    """
    batch = anchor.size(0)
    if batch < 2:
        return anchor.new_zeros(batch)
    similarity = rbf_kernel(anchor, positive)  # (B, B); the diagonal holds the positive pairs
    positive_sim = similarity.diagonal()
    if negatives == "all":
        off_diagonal = ~torch.eye(batch, dtype=torch.bool, device=anchor.device)
        hinge = torch.relu(margin - positive_sim[:, None] + similarity) * off_diagonal
        return hinge.sum(1) / (batch - 1)
    if negative_index is None:
        negative_index = in_batch_negatives(batch, anchor.device)
    negative_sim = similarity.gather(1, negative_index[:, None]).squeeze(1)
    return torch.relu(margin - positive_sim + negative_sim)
