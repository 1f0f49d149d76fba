"""Recurrent building blocks for variable-length feature sequences (B, T, D) with lengths (B,)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def length_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B, max_len) float mask: 1 for frames t < length, 0 for padding."""
    steps = torch.arange(max_len, device=lengths.device)
    return (steps[None, :] < lengths[:, None]).float()


class LSTMSummary(nn.Module):
    """A one-layer LSTM that summarises a padded sequence by its hidden state at the last valid
    frame of each item: (B, T, D), (B,) -> (B, hidden_dim).

    The LSTM runs over the padded batch and the state at t = length - 1 is gathered; because the
    LSTM is causal this equals packing the sequence (padding cannot reach earlier steps) and it
    avoids PackedSequence overhead on CPU.
    """

    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__()
        self.lstm = nn.LSTM(input_dim, hidden_dim, num_layers=1, batch_first=True)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        outputs, _ = self.lstm(x)
        last = (lengths - 1).clamp(min=0).to(outputs.device)
        return outputs[torch.arange(outputs.size(0), device=outputs.device), last]


class ConditionalLSTMDecoder(nn.Module):
    """Generates a sequence from one vector: a one-layer LSTM takes the same conditioning vector
    at every step, and a linear layer shared across steps maps each output to a frame.

    (B, C), num_frames -> (B, num_frames, out_dim).
    """

    def __init__(self, cond_dim: int, hidden_dim: int, out_dim: int):
        super().__init__()
        self.lstm = nn.LSTM(cond_dim, hidden_dim, num_layers=1, batch_first=True)
        self.out = nn.Linear(hidden_dim, out_dim)

    def forward(self, cond: Tensor, num_frames: int) -> Tensor:
        if num_frames < 1:
            raise ValueError(f"num_frames must be at least 1, got {num_frames}")
        steps = cond.unsqueeze(1).expand(-1, int(num_frames), -1)
        outputs, _ = self.lstm(steps)
        return self.out(outputs)
