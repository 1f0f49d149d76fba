"""Recurrent building blocks for variable-length feature sequences (B, T, D) with lengths (B,).

Speed on CPU: PyTorch's packed-sequence LSTM is several times slower on CPU than a padded one
(measured: 7.0 s vs 1.5 s forward+backward, batch 256 of FSDD FBank, LSTM 512, one thread), yet a
padded batch of FSDD digits is ~3x longer than its valid frames (a few 2-second utterances pad
a whole batch of 0.4-second ones). So both modules below sort the batch by length and run the
LSTM on groups of `group_size` similar-length items, each cut to its own longest item: an LSTM is
causal, so a step's output never depends on the padding after it and the result is exactly that
of the padded batch, at ~1.2x the valid frames instead of ~3x (0.73 s for the batch above).

Group size on CPU: 16. At the recipe's batch of 64 FSDD utterances a PVAE training step is
1.52x faster than with the batch in one call (the earlier default of 64-item groups), and at batch
256 1.65x, as fast as 64-item groups (`benchmarks/bench_pvae.py`, which times both in one process).
On other devices the batch is one group: each group is a sequential pass of its own, which a GPU
cannot overlap, while padding costs it little (reasoned, not measured: no GPU here).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

CPU_GROUP_SIZE = 16  # items per length group on CPU (see the module doc)


def length_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B, max_len) float mask: 1 for frames t < length, 0 for padding."""
    steps = torch.arange(max_len, device=lengths.device)
    return (steps[None, :] < lengths[:, None]).float()


def length_groups(lengths: Tensor, group_size: int | None = None,
                  device: torch.device | None = None) -> list[tuple[Tensor, int]]:
    """Indices of the batch sorted by length, split into groups of `group_size`, each with its
    longest length: [(index (G,), max_length), ...]; together the groups cover the batch once.
    group_size None: CPU_GROUP_SIZE if the LSTM runs on the CPU (`device`, default: that of
    `lengths`), else the whole batch."""
    if group_size is None:
        on_cpu = (device or lengths.device).type == "cpu"
        group_size = CPU_GROUP_SIZE if on_cpu else max(1, lengths.numel())
    if group_size < 1:
        raise ValueError(f"group_size must be positive, got {group_size}")
    lengths = lengths.detach().cpu().clamp(min=1)
    order = torch.argsort(lengths, stable=True)
    return [(index, int(lengths[index].max())) for index in order.split(group_size)]


class LSTMSummary(nn.Module):
    """A one-layer LSTM that summarises a padded sequence by its hidden state at the last valid
    frame of each item: (B, T, D), (B,) -> (B, hidden_dim).

    Equal to the final state of the packed sequence (padding cannot reach earlier steps), computed
    on length groups (see the module doc) to avoid both PackedSequence and padding on CPU.
    """

    def __init__(self, input_dim: int, hidden_dim: int, group_size: int | None = None):
        super().__init__()
        self.lstm = nn.LSTM(input_dim, hidden_dim, num_layers=1, batch_first=True)
        self.group_size = group_size

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        groups = length_groups(lengths, self.group_size, x.device)
        if len(groups) == 1:
            index, steps = groups[0]
            outputs, _ = self.lstm(x[:, :steps])
            last = (lengths - 1).clamp(min=0).to(outputs.device)
            return outputs[torch.arange(outputs.size(0), device=outputs.device), last]
        summaries, order = [], []
        for index, steps in groups:
            outputs, _ = self.lstm(x[index.to(x.device), :steps])
            last = (lengths[index.to(lengths.device)] - 1).clamp(min=0).to(outputs.device)
            summaries.append(outputs[torch.arange(outputs.size(0), device=outputs.device), last])
            order.append(index)
        return torch.cat(summaries)[torch.argsort(torch.cat(order)).to(x.device)]


class ConditionalLSTMDecoder(nn.Module):
    """Generates a sequence from one vector: a one-layer LSTM takes the same conditioning vector
    at every step, and a linear layer shared across steps maps each output to a frame.

    (B, C), num_frames[, lengths (B,)] -> (B, num_frames, out_dim). With `lengths` (training:
    the lengths of the target sequences), only the first lengths[b] frames of item b are
    generated (on length groups, see the module doc) and the rest are zeros: the caller masks
    them out of the likelihood.

    With `progress`, each step also gets t / length, the fraction of the item's sequence already
    generated (length: lengths[b], or num_frames without `lengths`). The decoder then knows how long
    the item will be, so the same content can be spread over any requested length.
    """

    def __init__(self, cond_dim: int, hidden_dim: int, out_dim: int, group_size: int | None = None,
                 progress: bool = False):
        super().__init__()
        self.lstm = nn.LSTM(cond_dim + int(progress), hidden_dim, num_layers=1, batch_first=True)
        self.out = nn.Linear(hidden_dim, out_dim)
        self.group_size = group_size
        self.progress = progress

    def forward(self, cond: Tensor, num_frames: int, lengths: Tensor | None = None) -> Tensor:
        if num_frames < 1:
            raise ValueError(f"num_frames must be at least 1, got {num_frames}")
        num_frames = int(num_frames)
        if lengths is None:
            return self._generate(cond, num_frames, None)
        lengths = lengths.clamp(max=num_frames)
        groups = length_groups(lengths, self.group_size, cond.device)
        frames, order = [], []
        for index, steps in groups:
            generated = self._generate(cond[index.to(cond.device)], steps, lengths[index.to(lengths.device)])
            frames.append(F.pad(generated, (0, 0, 0, num_frames - steps)))
            order.append(index)
        frames_all = torch.cat(frames)[torch.argsort(torch.cat(order)).to(cond.device)]
        return frames_all * length_mask(lengths.to(cond.device), num_frames).unsqueeze(-1)

    def _generate(self, cond: Tensor, num_frames: int, lengths: Tensor | None) -> Tensor:
        steps = cond.unsqueeze(1).expand(-1, num_frames, -1)
        if self.progress:
            total = torch.full((cond.size(0),), num_frames) if lengths is None else lengths
            fraction = torch.arange(num_frames, device=cond.device)[None, :] / total.to(cond).clamp(min=1)[:, None]
            steps = torch.cat([steps, fraction.unsqueeze(-1)], dim=-1)
        outputs, _ = self.lstm(steps)
        return self.out(outputs)
