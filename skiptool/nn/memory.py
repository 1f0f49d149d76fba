"""Memory fusion module M of paper 000 (sec. 3.2, appendix 6.2), and the two-FC stand-in of its
ablation "M -> FC" (Table 4).

An external memory M (n_k basis vectors of d_k dims) is shared by all modalities. A query z
(B, d_k) reads from it by multi-head scaled dot-product attention, Eq. 2 / appendix 6.2:

    V = tanh(M)                      (n_k, d_k)   values
    K = Conv1D(d_k, 1, 1)(tanh(M))   (n_k, d_k)   keys
    per head h (d_k / n_heads dims):  a_h = softmax(z_h K_h^T / sqrt(d_k)),  u_h = a_h V_h
    u = concat_h(u_h)                (B, d_k)

Appendix 6.2 writes M as n_k x (d_k / n_heads), the shape of the GST token layer it derives from,
yet takes the 256-channel key conv of tanh(M) and returns u of d_k dims; here M is n_k x d_k as in
Eq. 2, so that value and key heads have the same size. The scale is sqrt(d_k), as written in the
paper (not sqrt of the head size; `scale: head` divides by sqrt(d_k / n_heads), as GST's code does).

Initialisation (not given by the paper). With GST's memory N(0, 0.5) and PyTorch's default key
conv, the logits z K^T / sqrt(d_k) start near 0: the attention is uniform (entropy log n_k) and u
is the mean of the values for every input, carrying 0.5% of z's spread (u's std over items / z's,
measured at init on the coco_emt4 default). The decoders then learn to ignore u and the encoders
collapse (egs/coco_emt4/RESULTS.md). `init_std` and `key_init: identity` (keys start equal to the
values) make the attention input-dependent from the first step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class MemoryFusion(nn.Module):
    """(B, dim) queries -> (u (B, dim), attention weights (B, num_heads, num_slots))."""

    def __init__(self, dim: int = 256, num_slots: int = 128, num_heads: int = 4, init_std: float = 0.5,
                 key_init: str = "default", scale: str = "d_k"):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"memory dim {dim} is not divisible by {num_heads} heads")
        if key_init not in ("default", "identity"):
            raise ValueError(f"key_init must be default or identity, got {key_init!r}")
        if scale not in ("d_k", "head"):
            raise ValueError(f"scale must be d_k or head, got {scale!r}")
        # sqrt(d_k) as Eq. 2 writes it, or sqrt of the head size as GST's code (and Transformer) do
        self.scale = math.sqrt(dim if scale == "d_k" else dim // num_heads)
        self.dim, self.num_slots, self.num_heads = dim, num_slots, num_heads
        self.memory = nn.Parameter(torch.randn(num_slots, dim) * init_std)
        self.key_conv = nn.Conv1d(dim, dim, kernel_size=1)
        if key_init == "identity":
            with torch.no_grad():
                self.key_conv.weight.copy_(torch.eye(dim).unsqueeze(-1))
                self.key_conv.bias.zero_()

    def forward(self, query: Tensor) -> tuple[Tensor, Tensor]:
        values = torch.tanh(self.memory)  # (n_k, d_k)
        keys = self.key_conv(values.t().unsqueeze(0)).squeeze(0).t()  # a 1x1 conv over the slots
        heads = (self.num_heads, self.dim // self.num_heads)
        q = query.view(query.size(0), *heads)
        k = keys.view(self.num_slots, *heads)
        v = values.view(self.num_slots, *heads)
        weights = torch.softmax(torch.einsum("bhd,nhd->bhn", q, k) / self.scale, dim=-1)
        u = torch.einsum("bhn,nhd->bhd", weights, v).reshape(query.size(0), self.dim)
        return u, weights


def fc_fusion_hidden_size(dim: int, num_slots: int) -> int:
    """Hidden size h of FCFusion(dim, h) whose parameter count (513 h + dim for dim 256) is closest
    to MemoryFusion(dim, num_slots)'s (num_slots * dim + dim * dim + dim)."""
    memory_params = num_slots * dim + dim * dim + dim
    return max(1, round((memory_params - dim) / (2 * dim + 1)))


class FCFusion(nn.Module):
    """The "M -> FC" ablation: FC(hidden) -> ReLU -> FC(dim) -> tanh, (B, dim) -> ((B, dim), None).
    tanh keeps u in [-1, 1] like the memory's tanh values."""

    def __init__(self, dim: int = 256, hidden: int = 192):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim), nn.Tanh())

    def forward(self, query: Tensor) -> tuple[Tensor, None]:
        return self.net(query), None
