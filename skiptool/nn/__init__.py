"""Reusable layers shared by the models; model-specific wiring lives in skiptool/models/.

- `vae`: Gaussian posterior heads, reparameterised sampling, KL terms, output likelihoods
- `rnn`: LSTM sequence summariser (pre-encoder), LSTM frame decoder conditioned on a vector
- `conv`: strided-conv image encoder, FC + transposed-conv image decoder
- `contrastive`: RBF kernel and the in-batch kernel hinge loss
- `augment`: data augmentation for training (a random-shift function, random-affine and random-tempo layers)
"""

from skiptool.nn.augment import RandomAffine, RandomTempo
from skiptool.nn.contrastive import in_batch_negatives, kernel_hinge, rbf_kernel
from skiptool.nn.conv import ConvEncoder2d, DeconvDecoder2d
from skiptool.nn.rnn import ConditionalLSTMDecoder, LSTMSummary, length_mask
from skiptool.nn.vae import (
    GaussianHead,
    Posterior,
    bernoulli_log_likelihood,
    diag_normal,
    kl_between,
    kl_to_standard_normal,
    sample,
    unit_gaussian_log_likelihood,
)

__all__ = [
    "ConditionalLSTMDecoder", "ConvEncoder2d", "DeconvDecoder2d", "GaussianHead", "LSTMSummary",
    "Posterior", "RandomAffine", "RandomTempo", "bernoulli_log_likelihood", "diag_normal", "in_batch_negatives",
    "kernel_hinge", "kl_between", "kl_to_standard_normal", "length_mask", "rbf_kernel", "sample",
    "unit_gaussian_log_likelihood",
]
