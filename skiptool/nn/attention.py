"""Tacotron-style attention decoder for speech, conditioned on one vector (paper 000, sec. 3.3).

Paper 000 decodes speech from the single vector u (its text, image or speech representation):
"we initialize both RNNs with u^j and unroll them to generate a series of t-by-80 mel-spectrogram
chunks", with an attention RNN and a decoder RNN as in Tacotron, predicting r non-overlapping
frames per step. It does not say what the attention attends to when the input is one vector;
here u is expanded by one FC layer + tanh into `num_slots` vectors ("slots") that the attention
reads, so the decoder can lay an utterance out over them and the alignment (steps x slots) shows
how it moves through them. Per decoder step:

    prenet(last frame of the previous step; zeros at step 0)
    -> attention RNN: GRUCell(prenet ++ previous context)                  (appendix: GRU 256)
    -> location-sensitive attention over the slots -> context
    -> decoder RNN: Linear(attention state ++ context) -> LSTMCell layers with residual connections
       and dropout (appendix: two LSTM 256, dropout 0.3)
    -> r mel frames and one stop logit, from (decoder output ++ context)

The attention RNN and every decoder RNN layer start from tanh(Linear(u)). The stop logit of step
s says "the utterance ends within this step's r frames"; generation ends when its sigmoid passes
`stop_threshold` (every item of the batch) or after `max_steps`.

`guided_attention_loss` is the diagonal prior of Tachibana et al. (2018, DCTTS; ESPnet's
GuidedAttentionLoss): it penalises weight far from "step s of S reads slot s/S of N", so the
decoder lays the utterance out over the slots in order from the first epochs instead of learning
an alignment from scratch (not in paper 000; off unless a config weights it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from skiptool.nn.prenet import Prenet


class LocationSensitiveAttention(nn.Module):
    """Additive attention (Bahdanau) with location features from the cumulative weights
    (Chorowski et al., 2015): query (B, Q), memory (B, N, M) -> context (B, M), weights (B, N)."""

    def __init__(self, query_dim: int, memory_dim: int, attention_dim: int = 128, location_filters: int = 32,
                 location_kernel: int = 31):
        super().__init__()
        self.query_layer = nn.Linear(query_dim, attention_dim, bias=False)
        self.memory_layer = nn.Linear(memory_dim, attention_dim, bias=False)
        self.location_conv = nn.Conv1d(1, location_filters, location_kernel, padding=location_kernel // 2,
                                       bias=False)
        self.location_layer = nn.Linear(location_filters, attention_dim, bias=False)
        self.score = nn.Linear(attention_dim, 1, bias=True)

    def forward(self, query: Tensor, memory: Tensor, processed_memory: Tensor,
                cumulative_weights: Tensor) -> tuple[Tensor, Tensor]:
        location = self.location_layer(self.location_conv(cumulative_weights.unsqueeze(1)).transpose(1, 2))
        energies = self.score(torch.tanh(self.query_layer(query).unsqueeze(1) + processed_memory + location))
        weights = torch.softmax(energies.squeeze(-1), dim=-1)
        return torch.bmm(weights.unsqueeze(1), memory).squeeze(1), weights


def guided_attention_loss(alignments: Tensor, step_lengths: Tensor, sigma: float = 0.2) -> Tensor:
    """Mean of weights (B, steps, N) times 1 - exp(-(n/N - s/S_b)^2 / (2 sigma^2)) over each item's
    S_b = step_lengths[b] valid steps and all N slots (written here: torch and torchaudio have no
    such loss, and ESPnet's is not worth the dependency)."""
    batch, steps, slots = alignments.shape
    step = torch.arange(steps, device=alignments.device, dtype=alignments.dtype)[None, :, None]
    slot = torch.arange(slots, device=alignments.device, dtype=alignments.dtype)[None, None, :]
    valid_steps = step_lengths.to(alignments).clamp(min=1)[:, None, None]
    penalty = 1 - torch.exp(-((slot / slots - step / valid_steps) ** 2) / (2 * sigma ** 2))
    mask = (step < valid_steps).to(alignments)
    return (alignments * penalty * mask).sum() / (mask.sum() * slots)


@dataclass
class DecoderOutput:
    mel: Tensor  # (B, steps * r, mel_dim)
    stop_logits: Tensor  # (B, steps)
    alignments: Tensor  # (B, steps, num_slots)
    lengths: Tensor | None = None  # (B,) generated frames (inference only)


class AttentionSpeechDecoder(nn.Module):
    def __init__(self, cond_dim: int, mel_dim: int = 80, reduction_factor: int = 5, num_slots: int = 32,
                 slot_dim: int = 128, prenet_sizes: Sequence[int] = (256, 128), prenet_dropout: float = 0.5,
                 attention_rnn_dim: int = 256, attention_dim: int = 128, location_filters: int = 32,
                 location_kernel: int = 31, decoder_rnn_dim: int = 256, decoder_rnn_layers: int = 2,
                 decoder_dropout: float = 0.3):
        super().__init__()
        self.mel_dim, self.r, self.num_slots, self.slot_dim = mel_dim, reduction_factor, num_slots, slot_dim
        self.to_slots = nn.Linear(cond_dim, num_slots * slot_dim)
        self.prenet = Prenet(mel_dim, prenet_sizes, prenet_dropout)
        self.attention_rnn = nn.GRUCell(self.prenet.out_dim + slot_dim, attention_rnn_dim)
        self.attention = LocationSensitiveAttention(attention_rnn_dim, slot_dim, attention_dim, location_filters,
                                                    location_kernel)
        self.decoder_input = nn.Linear(attention_rnn_dim + slot_dim, decoder_rnn_dim)
        self.decoder_rnns = nn.ModuleList(nn.LSTMCell(decoder_rnn_dim, decoder_rnn_dim)
                                          for _ in range(decoder_rnn_layers))
        self.dropout = nn.Dropout(decoder_dropout)
        self.init_attention = nn.Linear(cond_dim, attention_rnn_dim)
        self.init_decoder = nn.Linear(cond_dim, decoder_rnn_dim * decoder_rnn_layers)
        self.frame_layer = nn.Linear(decoder_rnn_dim + slot_dim, mel_dim * reduction_factor)
        self.stop_layer = nn.Linear(decoder_rnn_dim + slot_dim, 1)

    def _initial_state(self, cond: Tensor) -> dict:
        memory = torch.tanh(self.to_slots(cond)).view(cond.size(0), self.num_slots, self.slot_dim)
        hidden = torch.tanh(self.init_decoder(cond)).chunk(len(self.decoder_rnns), dim=-1)
        return {"memory": memory, "processed": self.attention.memory_layer(memory),
                "attention_h": torch.tanh(self.init_attention(cond)),
                "decoder": [(h, torch.zeros_like(h)) for h in hidden],
                "context": cond.new_zeros(cond.size(0), self.slot_dim),
                "cumulative": cond.new_zeros(cond.size(0), self.num_slots)}

    def _step(self, state: dict, previous_frame: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One decoder step (updates `state`): r frames (B, r * mel_dim), stop logit (B,), weights (B, N)."""
        x = torch.cat([self.prenet(previous_frame), state["context"]], dim=-1)
        state["attention_h"] = self.attention_rnn(x, state["attention_h"])
        context, weights = self.attention(state["attention_h"], state["memory"], state["processed"],
                                          state["cumulative"])
        state["context"], state["cumulative"] = context, state["cumulative"] + weights
        x = self.decoder_input(torch.cat([state["attention_h"], context], dim=-1))
        for layer, rnn in enumerate(self.decoder_rnns):
            h, c = rnn(x, state["decoder"][layer])
            state["decoder"][layer] = (h, c)
            x = x + self.dropout(h)
        out = torch.cat([x, context], dim=-1)
        return self.frame_layer(out), self.stop_layer(out).squeeze(-1), weights

    def forward(self, cond: Tensor, target: Tensor) -> DecoderOutput:
        """Teacher-forced: cond (B, C), target mel (B, T, mel_dim) -> ceil(T / r) steps; step s
        is fed the last target frame of step s - 1."""
        batch, frames, _ = target.shape
        steps = -(-frames // self.r)
        padded = torch.nn.functional.pad(target, (0, 0, 0, steps * self.r - frames))
        inputs = torch.cat([target.new_zeros(batch, 1, self.mel_dim), padded[:, self.r - 1 :: self.r][:, :-1]], 1)
        state = self._initial_state(cond)
        outputs = [self._step(state, inputs[:, s]) for s in range(steps)]
        frames_out, stops, weights = (torch.stack(t, dim=1) for t in zip(*outputs))
        return DecoderOutput(frames_out.reshape(batch, steps * self.r, self.mel_dim), stops, weights)

    @torch.no_grad()
    def infer(self, cond: Tensor, max_steps: int = 500, stop_threshold: float = 0.5) -> DecoderOutput:
        """Free-running from cond (B, C) until every item's stop probability passes
        `stop_threshold`, or `max_steps`; lengths (B,) are frames up to each item's stop step."""
        batch = cond.size(0)
        state = self._initial_state(cond)
        previous = cond.new_zeros(batch, self.mel_dim)
        stop_step = torch.full((batch,), max_steps, dtype=torch.long, device=cond.device)
        outputs = []
        for s in range(max_steps):
            frames, stop, weights = self._step(state, previous)
            outputs.append((frames, stop, weights))
            previous = frames[:, -self.mel_dim :]
            stopped = (torch.sigmoid(stop) > stop_threshold) & (stop_step == max_steps)
            stop_step[stopped] = s + 1
            if bool((stop_step < max_steps).all()):
                break
        frames_out, stops, weights = (torch.stack(t, dim=1) for t in zip(*outputs))
        steps = frames_out.size(1)
        return DecoderOutput(frames_out.reshape(batch, steps * self.r, self.mel_dim), stops, weights,
                             lengths=stop_step.clamp(max=steps) * self.r)
