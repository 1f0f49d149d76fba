"""Pieces every VAE-style model needs: diagonal-Gaussian posterior heads, sampling, KL terms and
the output likelihoods of the decoders.

Distributions come from `torch.distributions` (reparameterised sampling, closed-form KL,
log-densities); this module only fixes shapes and reductions: a latent's KL is summed over its
dimensions, a likelihood over every observed value that the mask keeps.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import Normal, kl_divergence
from torch.nn import functional as F

Posterior = tuple[Tensor, Tensor]
"""(mean, log-variance) of a diagonal Gaussian, each (B, Z)."""


class GaussianHead(nn.Module):
    """A fully-connected layer predicting the mean and log-variance of a diagonal Gaussian."""

    def __init__(self, in_dim: int, z_dim: int):
        super().__init__()
        self.z_dim = z_dim
        self.proj = nn.Linear(in_dim, 2 * z_dim)

    def forward(self, h: Tensor) -> Posterior:
        mean, logvar = self.proj(h).split(self.z_dim, dim=-1)
        return mean, logvar


def diag_normal(posterior: Posterior) -> Normal:
    """The `Normal` with the posterior's mean and standard deviation exp(logvar / 2)."""
    mean, logvar = posterior
    return Normal(mean, torch.exp(0.5 * logvar))


def sample(posterior: Posterior) -> Tensor:
    """One reparameterised draw (differentiable w.r.t. mean and log-variance)."""
    return diag_normal(posterior).rsample()


def kl_to_standard_normal(posterior: Posterior) -> Tensor:
    """KL(q || N(0, I)) per batch item, summed over latent dimensions: (B,)."""
    mean, _ = posterior
    prior = Normal(torch.zeros_like(mean), torch.ones_like(mean))
    return kl_divergence(diag_normal(posterior), prior).sum(-1)


def kl_between(q: Posterior, r: Posterior) -> Tensor:
    """KL(q || r) between two diagonal Gaussians per batch item, summed over dimensions: (B,)."""
    return kl_divergence(diag_normal(q), diag_normal(r)).sum(-1)


def unit_gaussian_log_likelihood(x: Tensor, mean: Tensor, mask: Tensor | None = None) -> Tensor:
    """log N(x; mean, I) per batch item (B,), summed over all non-batch axes.

    `mask` (broadcastable to x, 1 = observed) drops padded values from the sum, so padding never
    changes the likelihood.
    """
    log_prob = Normal(mean, torch.ones_like(mean)).log_prob(x)
    if mask is not None:
        log_prob = log_prob * mask
    return log_prob.flatten(1).sum(-1)


def bernoulli_log_likelihood(x: Tensor, logits: Tensor) -> Tensor:
    """log Bernoulli(x; sigmoid(logits)) per batch item (B,) for x in [0, 1] (continuous
    Bernoulli without its normaliser, the usual choice for grey-level MNIST)."""
    nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return -nll.flatten(1).sum(-1)
