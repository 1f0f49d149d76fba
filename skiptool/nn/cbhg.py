"""CBHG (Wang et al., Tacotron, 2017): a 1-D Convolution Bank, Highway network and bidirectional
GRU, which paper 000 uses in its text encoder and as the post-net mapping mel to linear frames.

    bank of K convs (kernel 1..K, BN, ReLU), concatenated -> max-pool (width 2, stride 1)
    -> conv projections (kernel 3, BN; ReLU on all but the last) -> + input (residual)
    -> [Linear to highway size] -> highway layers -> bidirectional GRU -> (B, T, 2 * gru_dim)

Tacotron's settings: encoder K=16, bank 128, projections [128, 128], 4 highway layers of 128,
GRU 128 per direction; post-net K=8, bank 128, projections [256, mel_dim], same highway and GRU.
With `lengths`, padded frames are zeroed before every convolution (so an item's output does not
depend on how much it was padded) and the GRU runs on the packed sequence.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class BatchNormConv1d(nn.Module):
    """Same-length Conv1d (B, C, T) -> BatchNorm -> optional ReLU; even kernels are cut back to T."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.norm = nn.BatchNorm1d(out_channels)
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm(self.conv(x)[..., : x.size(-1)])
        return torch.relu(y) if self.relu else y


class Highway(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.transform = nn.Linear(dim, dim)
        self.gate = nn.Linear(dim, dim)
        nn.init.constant_(self.gate.bias, -1.0)  # start close to carrying the input through

    def forward(self, x: Tensor) -> Tensor:
        gate = torch.sigmoid(self.gate(x))
        return gate * torch.relu(self.transform(x)) + (1 - gate) * x


class CBHG(nn.Module):
    """(B, T, in_dim)[, lengths (B,)] -> (B, T, 2 * gru_dim). projections[-1] must equal in_dim
    (the residual connection)."""

    def __init__(self, in_dim: int, bank_size: int = 16, bank_channels: int = 128,
                 projections: Sequence[int] = (128, 128), highway_dim: int = 128, num_highways: int = 4,
                 gru_dim: int = 128):
        super().__init__()
        if not projections or projections[-1] != in_dim:
            raise ValueError(f"the last projection size must equal in_dim ({in_dim}) for the residual "
                             f"connection, got projections {list(projections)}")
        self.bank = nn.ModuleList(BatchNormConv1d(in_dim, bank_channels, k) for k in range(1, bank_size + 1))
        self.pool = nn.MaxPool1d(2, stride=1, padding=1)
        sizes = [bank_size * bank_channels, *projections]
        self.projections = nn.ModuleList(BatchNormConv1d(i, o, 3, relu=n < len(projections) - 1)
                                         for n, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])))
        self.pre_highway = nn.Linear(in_dim, highway_dim, bias=False) if in_dim != highway_dim else nn.Identity()
        self.highways = nn.Sequential(*(Highway(highway_dim) for _ in range(num_highways)))
        self.gru = nn.GRU(highway_dim, gru_dim, batch_first=True, bidirectional=True)
        self.out_dim = 2 * gru_dim

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        steps = x.size(1)
        mask = None
        if lengths is not None:
            mask = (torch.arange(steps, device=x.device)[None, :] < lengths.to(x.device)[:, None]).unsqueeze(1)
        masked = (lambda y: y * mask) if mask is not None else (lambda y: y)
        residual = x
        y = masked(x.transpose(1, 2))  # (B, D, T)
        y = torch.cat([conv(y) for conv in self.bank], dim=1)
        y = masked(self.pool(masked(y))[..., :steps])
        for conv in self.projections:
            y = masked(conv(y))
        y = self.highways(self.pre_highway(y.transpose(1, 2) + residual))
        if lengths is None:
            return self.gru(y)[0]
        packed = pack_padded_sequence(y, lengths.cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=steps)[0]
