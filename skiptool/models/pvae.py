"""Partitioned VAE (PVAE) for paired speech and images, and its baselines (paper 004, Hsu & Glass,
"Disentangling by Partitioning"; architecture in its appendix B).

Variants, all built from the same modules:

- `pvae`: latents z_s (semantic, shared), z_a (speech style), z_i (image style); maximises
  Eq. 9 = ELBO + alpha_ch * CH + alpha_cm * CM.
- `pvae_nocm`: PVAE trained with alpha_cm = 0 (the paper's "PVAE (no CM)").
- `jmvae_kl`: one latent z of z_s + z_a + z_i dims (96) that both decoders condition on;
  ELBO + alpha_ch * CH, which is JMVAE-kl's objective (Suzuki et al.).
- `vae_sp` / `vae_im`: a VAE on one modality with that modality's PVAE encoder and decoder; its
  latent z has the size the PVAE decoder takes for that modality (z_s + z_a = 64 dims).

Where the paper is silent, choices made here (all in `PVAEConfig`):
- Decoders are unit-variance Gaussians (paper, sec. 4.1) for FBank and, by default, for pixels;
  the image mean is sigmoid(decoder output) so that it stays in [0, 1] like the data.
  `image_likelihood: bernoulli` uses the same outputs as Bernoulli logits instead.
- Activations: ReLU after every conv layer and after the image pre-encoder's FC layer, and
  between the two transposed convolutions (the paper names ReLU only for the decoder's FC layers).
- The speech pre-encoder's 512-d output is the LSTM state at the last valid frame.
- Posterior heads predict log-variances.
- CM negatives: Eq. 9 draws a random negative sample X~ from the training set; here it is another
  pair of the same batch drawn uniformly (`cm_negatives: random`, the same X~ for both directions
  of Eq. 8), or the average over all other pairs (`all`, same expectation, lower variance).
  Labels are never used, so a negative can share the digit of its anchor (1 in 10 for digits),
  exactly as a random draw from the training set can.
- Losses are per-pair sums (over frames, pixels, latent dims) averaged over the batch.
- The model counts the utterance lengths it trains on (buffers saved with the weights), so that
  speech generated without a reference utterance takes the mean training length.
- `kl_style_weight` (default 1, the paper's ELBO) can weight the KLs of z_a and z_i above z_s's,
  against digit identity leaking into the style latents (see the field); `kl_z_a_weight` and
  `kl_z_i_weight` set one of them alone, `kl_z_s_weight` (default 1) z_s's.
- conf/train/pvae.yaml uses `cm_negatives: all`: with `random`, the hinge stays at the margin
  (no learning) for the few hundred updates a CPU budget allows (measurements in that file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from skiptool.nn import (
    ConditionalLSTMDecoder,
    ConvEncoder2d,
    DeconvDecoder2d,
    GaussianHead,
    LSTMSummary,
    Posterior,
    RandomAffine,
    RandomTempo,
    bernoulli_log_likelihood,
    in_batch_negatives,
    kernel_hinge,
    kl_between,
    kl_to_standard_normal,
    length_mask,
    sample,
    unit_gaussian_log_likelihood,
)
from skiptool.utils.errors import SkiptoolError

Variant = Literal["pvae", "pvae_nocm", "jmvae_kl", "vae_sp", "vae_im"]

PARTITIONED = ("pvae", "pvae_nocm")
MULTIMODAL = ("pvae", "pvae_nocm", "jmvae_kl")
AUGMENT_INPUTS = ("all", "encoders", "unimodal")  # PVAEConfig.image_augment_inputs


@dataclass
class PVAEConfig:
    """Hyper-parameters of the PVAE and its baselines; defaults are paper 004's.

    One class for all five variants because they share every module and hyper-parameter; the
    variant only decides which latents exist and which objective terms are used. Weights left at
    null take the paper's value for the variant (alpha_ch 0.1 for the multimodal variants,
    alpha_cm 10 for pvae, 0 where the term does not exist). The optimiser (Adam, lr 1e-3,
    betas 0.95/0.999, batch 256, 400 epochs) belongs to the trainer's `train:` section.
    """

    variant: Variant = "pvae"
    speech_dim: int = 80  # FBank bins
    image_size: int = 28  # square images, side divisible by 2 ** len(image_encoder_channels)
    image_channels: int = 1
    z_semantic_dim: int = 32  # z_s
    z_style_dim: int = 32  # z_a and z_i
    z_dim: int | None = None  # single-latent variants only; null: jmvae_kl 96, vae_sp/vae_im 64
    speech_hidden_dim: int = 512  # LSTM cells of the speech pre-encoders and decoder
    image_encoder_channels: list[int] = field(default_factory=lambda: [4, 8])
    image_hidden_dim: int = 512  # FC of the image pre-encoder and first FC of its decoder
    image_decoder_channels: list[int] = field(default_factory=lambda: [16, 8])  # 7x7x16 -> 8 -> 1
    kernel_size: int = 4
    image_likelihood: Literal["gaussian", "bernoulli"] = "gaussian"
    alpha_ch: float | None = None
    alpha_cm: float | None = None
    cm_margin: float = 0.5
    cm_negatives: Literal["random", "all"] = "random"
    # Not in the paper: alpha_ch ramps linearly from 0 over the first N training steps (0 = off; dev
    # losses always take the full weight).
    # Early on, CH pulls the unimodal speech z_s to the multimodal one, which then encodes speaking
    # style with a large norm (|mu| ~ 3-4): the RBF kernel of CM is ~0.01 for every pair, its
    # gradient vanishes and CM stays at the margin for hundreds of updates (see conf/train/pvae.yaml).
    ch_warmup_steps: int = 0
    # Not in the paper (1 = its plain ELBO): the KL terms of the style latents z_a and z_i are
    # weighted by this factor in the training objective (the logged `elbo` stays the true ELBO).
    # Above 1 it strengthens the paper's own argument for partitioning (sec. 2.2.1: a factor shared
    # by both modalities costs one KL term in z_s but two in z_a and z_i), against digit identity
    # leaking into the style latents, which makes cross-modal generation follow the style reference.
    kl_style_weight: float = 1.0
    # The weights of z_a's and z_i's KL alone (null: kl_style_weight): image->speech needs digit
    # identity out of z_a, speech->image out of z_i, and the two trade against z_s purity differently.
    kl_z_a_weight: float | None = None
    kl_z_i_weight: float | None = None
    # Not in the paper (1 = its ELBO): the weight of z_s's KL. With the style KLs up-weighted, a factor
    # of one modality alone (the speaker's voice) is cheaper in z_s than in z_a: it moves to the
    # multimodal z_s, which image->speech never sees, and the voice of the style reference is lost.
    kl_z_s_weight: float = 1.0
    # Not in the paper (0 = off): the weight of a cross-reconstruction term, -log p(x | z_s of the
    # paired image, z_a of another utterance by the same speaker): the path of image->speech with a
    # style reference. The image's unimodal z_s knows the digit but not the voice, and the other
    # utterance (batch entry `style_speech`, drawn from the speech dir's utt2spk) most often says
    # another digit, so the decoder must take the voice, and only the voice, from z_a. The term
    # trains the speech decoder and the style encoder; the image's z_s enters it as a constant
    # (through it, the term pulled the images' z_s away from the speech's and CM stayed at 0.47
    # after 12 epochs). With z_a of the same utterance instead, z_a carried the digit too and z_s
    # collapsed (CM at its margin).
    alpha_cross_reconstruction: float = 0.0
    # ... ramped linearly from 0 over the first N training steps (0 = off; dev losses take the full
    # weight). Full from step 0 it stalls CM as a strong CH does: the image's z_s grows to rebuild
    # speech, and CM's kernel vanishes.
    cross_reconstruction_warmup_steps: int = 0
    # Not in the paper (false = its shared pre-encoder): the unimodal speech network infers z_a through
    # an LSTM of its own, not the one that z_s reads. The cross-reconstruction term trains the style
    # encoder towards the voice; through a shared LSTM it pulls z_s along (speech z_s purity 100 ->
    # 91.67% and speech->image 73 -> 37% at 60 epochs, egs/tidigit_mnist/RESULTS.md).
    speech_style_own_lstm: bool = False
    # Not in the paper (0 = off): training images are randomly rotated (+-degrees), scaled (1 +- scale)
    # and shifted (+-translate of the side) (skiptool/nn/augment.py). With MNIST's 10k test split
    # alone there are 8,000 training images.
    image_augment_degrees: float = 0.0
    image_augment_translate: float = 0.0
    image_augment_scale: float = 0.0
    # Where the warped image goes: "all" (every encoder, and it is the reconstruction target),
    # "encoders" (every encoder; the clean image is the target), "unimodal" (the unimodal image
    # encoder alone, i.e. CH and CM; the joint encoder and the target see the clean image).
    image_augment_inputs: str = "all"
    # Not in the paper (false = off): the speech decoder also gets t / T at step t of a T-frame
    # utterance (skiptool/nn/rnn.py), so a digit generated at a reference's length T is spread over
    # those T frames instead of being cut off after them. Measured on FSDD + MNIST at 60 epochs: it
    # does not close the gap between the reference's length and the mean length, and it costs
    # speech->image 25 points (egs/tidigit_mnist/RESULTS.md, "Telling the speech decoder the length").
    speech_decoder_progress: bool = False
    # Not in the paper (0 = off): every training utterance is resampled along time by a factor drawn
    # from [1 - rate, 1 + rate] (skiptool/nn/augment.py: RandomTempo), for every encoder and as the
    # reconstruction target, so that a digit comes at many durations: generating at a short
    # reference's length is where image->speech loses. Measured on FSDD + MNIST at 60 epochs (rate
    # 0.25 and 0.5): the gap to the mean length narrows, but every cross-modal accuracy falls
    # (egs/tidigit_mnist/RESULTS.md, "Tempo augmentation of the training speech").
    speech_augment_tempo: float = 0.0
    # Not in the paper (0 = off): the speech decoder's target runs N frames past each utterance's
    # end, with a quiet frame (the batch's 1st percentile per FBank channel), so the decoder learns
    # where a digit ends instead of being free after the last frame. Measured on FSDD + MNIST at 60
    # epochs (N = 20): generated digits then end at real lengths, but still not at the reference's
    # pace, and cross-modal accuracy collapses (egs/tidigit_mnist/RESULTS.md, "Teaching the decoder
    # where a digit ends").
    speech_decoder_silence_frames: int = 0

    def __post_init__(self) -> None:
        for name in ("speech_dim", "image_size", "image_channels", "z_semantic_dim", "z_style_dim",
                     "speech_hidden_dim", "image_hidden_dim", "kernel_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.variant in PARTITIONED:
            if self.z_dim is not None:
                raise ValueError(f"z_dim is for the single-latent variants; '{self.variant}' sizes its "
                                 f"latents with z_semantic_dim and z_style_dim")
        elif self.z_dim is None:
            # JMVAE-kl: the sum of z_s, z_a, z_i (paper, sec. 4.2); a VAE: what its PVAE decoder takes.
            self.z_dim = self.z_semantic_dim + self.z_style_dim * (2 if self.variant == "jmvae_kl" else 1)
        elif self.z_dim < 1:
            raise ValueError(f"z_dim must be positive, got {self.z_dim}")
        for name in ("image_encoder_channels", "image_decoder_channels"):
            channels = getattr(self, name)
            if not channels or min(channels) < 1:
                raise ValueError(f"{name} must be a non-empty list of positive channel counts, got {channels}")
            if self.image_size % (2 ** len(channels)):
                raise ValueError(f"image_size {self.image_size} is not divisible by 2^{len(channels)} "
                                 f"({len(channels)} stride-2 layers in {name})")
        if self.kernel_size % 2:
            raise ValueError(f"kernel_size must be even (stride-2 layers halve/double exactly), got {self.kernel_size}")
        self.alpha_ch = self._weight("alpha_ch", self.alpha_ch, 0.1, self.variant in MULTIMODAL)
        self.alpha_cm = self._weight("alpha_cm", self.alpha_cm, 10.0, self.variant == "pvae")
        if self.cm_margin <= 0:
            raise ValueError(f"cm_margin must be positive, got {self.cm_margin}")
        if self.ch_warmup_steps < 0:
            raise ValueError(f"ch_warmup_steps must be >= 0, got {self.ch_warmup_steps}")
        for name in ("kl_style_weight", "kl_z_s_weight", "kl_z_a_weight", "kl_z_i_weight"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
            if value is not None and value != 1.0 and self.variant not in PARTITIONED:
                raise ValueError(f"{name}={value} but variant '{self.variant}' has no style latents; "
                                 f"remove {name} or use pvae or pvae_nocm")
        if self.alpha_cross_reconstruction < 0:
            raise ValueError(f"alpha_cross_reconstruction must be >= 0, got {self.alpha_cross_reconstruction}")
        if self.cross_reconstruction_warmup_steps < 0:
            raise ValueError(f"cross_reconstruction_warmup_steps must be >= 0, got "
                             f"{self.cross_reconstruction_warmup_steps}")
        if self.alpha_cross_reconstruction and self.variant not in PARTITIONED:
            raise ValueError(f"alpha_cross_reconstruction={self.alpha_cross_reconstruction} but variant "
                             f"'{self.variant}' has no style latents; use pvae or pvae_nocm")
        if self.speech_style_own_lstm and self.variant not in PARTITIONED:
            raise ValueError(f"speech_style_own_lstm is set but variant '{self.variant}' has no z_a; "
                             f"use pvae or pvae_nocm")
        self.kl_z_a_weight = self.kl_style_weight if self.kl_z_a_weight is None else self.kl_z_a_weight
        self.kl_z_i_weight = self.kl_style_weight if self.kl_z_i_weight is None else self.kl_z_i_weight
        augment = {name: getattr(self, f"image_augment_{name}") for name in ("degrees", "translate", "scale")}
        RandomAffine(**augment)  # validates the ranges
        if self.image_augment_inputs not in AUGMENT_INPUTS:
            raise ValueError(f"image_augment_inputs must be one of {', '.join(AUGMENT_INPUTS)}, "
                             f"got '{self.image_augment_inputs}'")
        if self.image_augment_inputs == "unimodal" and self.variant not in MULTIMODAL:
            raise ValueError(f"image_augment_inputs=unimodal but variant '{self.variant}' has one encoder; "
                             f"use all or encoders")
        if any(augment.values()) and "image" not in self.modalities:
            raise ValueError(f"image_augment_* is set but variant '{self.variant}' has no images; remove it")
        if self.speech_decoder_silence_frames < 0:
            raise ValueError(f"speech_decoder_silence_frames must be >= 0, got {self.speech_decoder_silence_frames}")
        if self.speech_decoder_silence_frames and "speech" not in self.modalities:
            raise ValueError(f"speech_decoder_silence_frames is set but variant '{self.variant}' has no speech; "
                             f"remove it")
        RandomTempo(self.speech_augment_tempo)  # validates the rate
        if self.speech_augment_tempo and "speech" not in self.modalities:
            raise ValueError(f"speech_augment_tempo is set but variant '{self.variant}' has no speech; remove it")

    def _weight(self, name: str, value: float | None, paper: float, has_term: bool) -> float:
        if value is None:
            return paper if has_term else 0.0
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
        if value and not has_term:
            raise ValueError(f"{name}={value} but variant '{self.variant}' has no such term; "
                             f"remove {name} or pick a variant that has it")
        return value

    @property
    def modalities(self) -> tuple[str, ...]:
        """The batch entries this variant trains on: ('speech', 'image'), ('speech',) or ('image',)."""
        return {"vae_sp": ("speech",), "vae_im": ("image",)}.get(self.variant, ("speech", "image"))

    def latent_dims(self) -> dict[str, int]:
        """Every latent of the variant and its size."""
        if self.variant in PARTITIONED:
            return {"z_s": self.z_semantic_dim, "z_a": self.z_style_dim, "z_i": self.z_style_dim}
        return {"z": self.z_dim}

    def latents(self, modality: str) -> tuple[str, ...]:
        """Latents inferred from (and conditioned on by the decoder of) one modality, e.g. for
        purity scoring: speech -> (z_s, z_a), image -> (z_s, z_i), single-latent variants -> (z,)."""
        if modality not in self.modalities:
            return ()
        if self.variant in PARTITIONED:
            return ("z_s", "z_a") if modality == "speech" else ("z_s", "z_i")
        return ("z",)


class InferenceNetwork(nn.Module):
    """Pre-encoders of the given modalities (own parameters: never shared between networks),
    concatenated, then one Gaussian head per latent (paper, appendix B, figs. 8-10). The latents
    in `own_speech_pre` (a speech-only network) read an LSTM pre-encoder of their own instead."""

    def __init__(self, cfg: PVAEConfig, modalities: tuple[str, ...], latents: dict[str, int],
                 own_speech_pre: tuple[str, ...] = ()):
        super().__init__()
        self.modalities = modalities
        width = 0
        if "speech" in modalities:
            self.speech_pre = LSTMSummary(cfg.speech_dim, cfg.speech_hidden_dim)
            width += cfg.speech_hidden_dim
        if "image" in modalities:
            self.image_pre = ConvEncoder2d(cfg.image_channels, cfg.image_size, cfg.image_encoder_channels,
                                           cfg.image_hidden_dim, cfg.kernel_size)
            width += cfg.image_hidden_dim
        if own_speech_pre and modalities != ("speech",):
            raise ValueError(f"own_speech_pre is for a speech-only network, not one of {modalities}")
        self.own_speech_pre = nn.ModuleDict({name: LSTMSummary(cfg.speech_dim, cfg.speech_hidden_dim)
                                             for name in own_speech_pre})
        self.heads = nn.ModuleDict({name: GaussianHead(width, dim) for name, dim in latents.items()})

    def forward(self, speech: Tensor | None = None, speech_lengths: Tensor | None = None,
                image: Tensor | None = None, only: tuple[str, ...] | None = None) -> dict[str, Posterior]:
        """The posteriors of every latent, or of the latents in `only` (the others' pre-encoders
        are not run)."""
        names = tuple(self.heads) if only is None else only
        shared = [name for name in names if name not in self.own_speech_pre]
        h = None
        if shared:
            parts = []
            if "speech" in self.modalities:
                parts.append(self.speech_pre(speech, speech_lengths))
            if "image" in self.modalities:
                parts.append(self.image_pre(image))
            h = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        return {name: self.heads[name](h if name in shared else self.own_speech_pre[name](speech, speech_lengths))
                for name in names}


def followed_by_silence(speech: Tensor, lengths: Tensor, frames: int) -> tuple[Tensor, Tensor]:
    """Each utterance of the padded batch (B, T, D) followed by `frames` quiet frames: the batch's
    1st percentile of each channel over its real frames (a speech batch has no silence after VAD).
    Returns the (B, T + frames, D) batch and lengths + frames."""
    real = speech[length_mask(lengths, speech.size(1)).bool()]
    quiet = torch.quantile(real.detach().float(), 0.01, dim=0).to(speech)
    padded = torch.cat([speech, quiet.expand(speech.size(0), frames, -1)], dim=1)
    steps = torch.arange(padded.size(1), device=speech.device)[None, :]
    after = (steps >= lengths[:, None]) & (steps < lengths[:, None] + frames)
    padded = torch.where(after.unsqueeze(-1), quiet, padded)
    return padded, lengths + frames


class PVAE(nn.Module):
    """The PVAE (or a baseline, by `cfg.variant`) with its training objective and generation API.

    Modules: `joint_encoder` q(. | speech, image) (multimodal variants), `speech_encoder`
    r(. | speech), `image_encoder` r(. | image), `speech_decoder` (a frame per step from its
    latents), `image_decoder`; each exists only where the variant has the modality.
    """

    def __init__(self, cfg: PVAEConfig):
        super().__init__()
        self.cfg = cfg
        dims = cfg.latent_dims()
        self.joint_encoder = (InferenceNetwork(cfg, ("speech", "image"), dims)
                              if cfg.variant in MULTIMODAL else None)
        self.speech_encoder = self.speech_decoder = None
        self.image_encoder = self.image_decoder = None
        if "speech" in cfg.modalities:
            latents = {n: dims[n] for n in cfg.latents("speech")}
            self.speech_encoder = InferenceNetwork(cfg, ("speech",), latents,
                                                   own_speech_pre=("z_a",) if cfg.speech_style_own_lstm else ())
            self.speech_decoder = ConditionalLSTMDecoder(sum(latents.values()), cfg.speech_hidden_dim,
                                                         cfg.speech_dim, progress=cfg.speech_decoder_progress)
        if "image" in cfg.modalities:
            latents = {n: dims[n] for n in cfg.latents("image")}
            self.image_encoder = InferenceNetwork(cfg, ("image",), latents)
            start_size = cfg.image_size // 2 ** len(cfg.image_decoder_channels)
            self.image_decoder = DeconvDecoder2d(
                sum(latents.values()), [cfg.image_hidden_dim], start_size,
                [*cfg.image_decoder_channels, cfg.image_channels], cfg.kernel_size)
        self.image_augment = RandomAffine(cfg.image_augment_degrees, cfg.image_augment_translate,
                                          cfg.image_augment_scale)  # training mode only
        self.speech_augment = RandomTempo(cfg.speech_augment_tempo)  # training mode only
        # Utterance lengths seen in training (a sum and a count, saved with the weights): without a
        # reference utterance, generated speech takes the mean training length.
        self.register_buffer("speech_frames_seen", torch.zeros((), dtype=torch.float64))
        self.register_buffer("speech_items_seen", torch.zeros((), dtype=torch.float64))
        self.register_buffer("train_steps", torch.zeros((), dtype=torch.float64))  # for ch_warmup_steps

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("speech_frames_seen", "speech_items_seen", "train_steps"):  # older checkpoints
            state_dict.setdefault(prefix + name, torch.zeros((), dtype=torch.float64))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def mean_speech_frames(self) -> int | None:
        """Mean length of the training utterances (frames), or None before any training on speech."""
        if self.speech_items_seen.item() == 0:
            return None
        return max(1, round(self.speech_frames_seen.item() / self.speech_items_seen.item()))

    # ---------------------------------------------------------------- training objective

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Negative Eq. 9 averaged over the pairs of the batch, and the batch means of `terms`
        (with `kl_z_s_weight` / `kl_z_a_weight` / `kl_z_i_weight` != 1, those KLs of its ELBO take
        those weights).

        batch: `speech` (B, T, speech_dim) padded, `speech_lengths` (B,), `image` (B, C, S, S)
        in [0, 1]; single-modality variants need only their own. Other keys (e.g. `label`) are
        ignored: the objective never sees labels.
        """
        terms = self.terms(batch)
        objective = terms["elbo"]
        for latent in ("z_s", "z_a", "z_i"):  # the extra weight of a latent's KL (1 = the plain ELBO)
            weight = getattr(self.cfg, f"kl_{latent}_weight")
            if weight != 1.0 and f"kl_{latent}" in terms:
                objective = objective - (weight - 1.0) * terms[f"kl_{latent}"]
        if "ch" in terms:
            objective = objective - self.ch_weight() * terms["ch"]
        if "cross_reconstruction" in terms:
            objective = objective - self.cross_reconstruction_weight() * terms["cross_reconstruction"]
        if self.training:
            self.train_steps += 1
        if "cm" in terms:
            objective = objective - self.cfg.alpha_cm * terms["cm"]
        loss = -objective.mean()
        stats = {"loss": loss.item()}
        stats.update({name: value.mean().item() for name, value in terms.items()})
        return loss, stats

    def ch_weight(self) -> float:
        """alpha_ch, ramped from 0 over the first `ch_warmup_steps` training steps when set."""
        return self._ramped(self.cfg.alpha_ch, self.cfg.ch_warmup_steps)

    def cross_reconstruction_weight(self) -> float:
        """alpha_cross_reconstruction, ramped over `cross_reconstruction_warmup_steps` when set."""
        return self._ramped(self.cfg.alpha_cross_reconstruction, self.cfg.cross_reconstruction_warmup_steps)

    def _ramped(self, weight: float, warmup: int) -> float:
        """`weight` ramped over the first `warmup` training steps; in eval mode the full weight, so
        that the dev loss of every epoch measures the same objective (with the ramped weight, the
        best dev loss of a cross-reconstruction run was its first epoch, where the term weighed ~0)."""
        if not warmup or not self.training:
            return weight
        return weight * min(1.0, self.train_steps.item() / warmup)

    def terms(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The objective's terms per pair (B,), in nats, as positive costs except `elbo`:
        nll_speech, nll_image (negative log-likelihoods), kl_<latent> (KL to the prior), elbo,
        ch (the sum of the KLs of Eq. 7, i.e. -CH; multimodal variants), cm (the hinge of Eq. 8,
        i.e. -CM; pvae), cross_reconstruction (the speech's negative log-likelihood from the image's
        z_s and the style utterance's z_a; with alpha_cross_reconstruction). A one-sample
        reparameterised estimate, in training and eval mode alike.
        """
        cfg = self.cfg
        speech, lengths, image = self._inputs(batch)
        if speech is not None:
            speech, lengths = self.speech_augment(speech, lengths)  # the identity unless training with it
        warped = image  # the identity unless training with image_augment_*
        if image is not None:
            warped = self.image_augment(image)
        encoder_image = image if cfg.image_augment_inputs == "unimodal" else warped
        if cfg.image_augment_inputs == "all":
            image = warped  # also the reconstruction target
        if self.joint_encoder is not None:
            posterior = self.joint_encoder(speech, lengths, encoder_image)
        elif cfg.variant == "vae_sp":
            posterior = self.speech_encoder(speech, lengths)
        else:
            posterior = self.image_encoder(image=encoder_image)
        z = {name: sample(p) for name, p in posterior.items()}

        terms: dict[str, Tensor] = {}
        if speech is not None and self.training:
            with torch.no_grad():
                self.speech_frames_seen += lengths.sum().to(self.speech_frames_seen)
                self.speech_items_seen += lengths.numel()
        if speech is not None:
            terms["nll_speech"] = -self._speech_log_likelihood(speech, lengths, z)
        if image is not None:
            terms["nll_image"] = -self._image_log_likelihood(image, z)
        for name, p in posterior.items():
            terms[f"kl_{name}"] = kl_to_standard_normal(p)
        terms["elbo"] = -sum(terms.values())

        if self.joint_encoder is not None and (cfg.alpha_ch or cfg.alpha_cm or cfg.alpha_cross_reconstruction):
            unimodal = {"speech": self.speech_encoder(speech, lengths),
                        "image": self.image_encoder(image=warped)}
            terms["ch"] = sum(kl_between(posterior[name], r[name])
                              for r in unimodal.values() for name in r)
            if cfg.variant == "pvae":
                terms["cm"] = self.semantic_contrastiveness(unimodal["speech"]["z_s"][0],
                                                            unimodal["image"]["z_s"][0])
            if cfg.alpha_cross_reconstruction:
                terms["cross_reconstruction"] = self._cross_reconstruction(batch, speech, lengths, unimodal["image"])
        return terms

    def _cross_reconstruction(self, batch: dict[str, Tensor], speech: Tensor, lengths: Tensor,
                              image_posterior: dict[str, Posterior]) -> Tensor:
        """-log p(speech | z_s ~ r(. | image), z_a ~ r(. | style_speech)) per pair (B,); no gradient
        reaches the image's z_s."""
        if "style_speech" not in batch:
            raise SkiptoolError("batch: no style_speech; alpha_cross_reconstruction needs another utterance "
                                "of each speaker (pvae_dataset draws it from the speech dir's utt2spk)")
        style, style_lengths = batch["style_speech"], batch["style_speech_lengths"]
        self._check_speech(style, style_lengths)
        z_a = sample(self.speech_encoder(style, style_lengths, only=("z_a",))["z_a"])
        z_s = sample(image_posterior["z_s"]).detach()
        return -self._speech_log_likelihood(speech, lengths, {"z_s": z_s, "z_a": z_a})

    def semantic_contrastiveness(self, mu_speech: Tensor, mu_image: Tensor,
                                 negative_index: Tensor | None = None) -> Tensor:
        """The hinge of Eq. 8 per pair (B,), i.e. -CM: for both directions m' -> m, the unimodal
        semantic mean of one modality is the anchor, the other modality's mean of the same pair
        the positive, and that modality's mean of a negative pair the negative; averaged over the
        M = 2 directions."""
        cfg = self.cfg
        if cfg.cm_negatives == "random" and negative_index is None and mu_speech.size(0) > 1:
            # One negative pair X~ per pair, the same for both directions (Eq. 8).
            negative_index = in_batch_negatives(mu_speech.size(0), mu_speech.device)
        hinge = kernel_hinge(mu_image, mu_speech, cfg.cm_margin, cfg.cm_negatives, negative_index)
        hinge = hinge + kernel_hinge(mu_speech, mu_image, cfg.cm_margin, cfg.cm_negatives, negative_index)
        return hinge / 2

    def _speech_log_likelihood(self, speech: Tensor, lengths: Tensor, z: dict[str, Tensor]) -> Tensor:
        cond = torch.cat([z[n] for n in self.cfg.latents("speech")], dim=-1)
        if self.cfg.speech_decoder_silence_frames:
            speech, lengths = followed_by_silence(speech, lengths, self.cfg.speech_decoder_silence_frames)
        mean = self.speech_decoder(cond, speech.size(1), lengths)
        mask = length_mask(lengths, speech.size(1)).unsqueeze(-1)
        return unit_gaussian_log_likelihood(speech, mean, mask)

    def _image_log_likelihood(self, image: Tensor, z: dict[str, Tensor]) -> Tensor:
        logits = self.image_decoder(torch.cat([z[n] for n in self.cfg.latents("image")], dim=-1))
        if self.cfg.image_likelihood == "bernoulli":
            return bernoulli_log_likelihood(image, logits)
        return unit_gaussian_log_likelihood(image, torch.sigmoid(logits))

    def _inputs(self, batch: dict[str, Tensor]) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """The modalities this variant uses, checked against the config."""
        cfg = self.cfg
        missing = [k for m in cfg.modalities for k in ((m, "speech_lengths") if m == "speech" else (m,))
                   if k not in batch]
        if missing:
            raise SkiptoolError(f"batch: variant '{cfg.variant}' needs {', '.join(missing)}; "
                                f"give the model the data of every modality it trains on "
                                f"({' and '.join(cfg.modalities)})")
        speech = lengths = image = None
        if "speech" in cfg.modalities:
            speech, lengths = batch["speech"], batch["speech_lengths"]
            self._check_speech(speech, lengths)
        if "image" in cfg.modalities:
            image = batch["image"]
            self._check_image(image)
        if speech is not None and image is not None and speech.size(0) != image.size(0):
            raise SkiptoolError(f"batch: {speech.size(0)} utterances but {image.size(0)} images; "
                                f"speech and images must come in pairs")
        return speech, lengths, image

    def _check_speech(self, speech: Tensor, lengths: Tensor) -> None:
        if speech.dim() != 3 or speech.size(-1) != self.cfg.speech_dim:
            raise SkiptoolError(f"speech: expected (batch, frames, {self.cfg.speech_dim}) features, got "
                                f"{tuple(speech.shape)}; extract {self.cfg.speech_dim}-dim FBank or "
                                f"set model_conf.speech_dim")
        if lengths.shape != (speech.size(0),):
            raise SkiptoolError(f"speech_lengths: expected shape ({speech.size(0)},), got {tuple(lengths.shape)}")

    def _check_image(self, image: Tensor) -> None:
        cfg = self.cfg
        expected = (cfg.image_channels, cfg.image_size, cfg.image_size)
        if image.dim() != 4 or tuple(image.shape[1:]) != expected:
            raise SkiptoolError(f"image: expected (batch, {', '.join(map(str, expected))}) images, got "
                                f"{tuple(image.shape)}; make image features of that size or set "
                                f"model_conf.image_size/image_channels")

    # ---------------------------------------------------------------- inference and generation

    def encode_speech(self, speech: Tensor, lengths: Tensor) -> dict[str, Posterior]:
        """Unimodal speech posteriors r(. | speech): {z_s, z_a} (PVAE) or {z}; each (mean, logvar)."""
        if self.speech_encoder is None:
            raise SkiptoolError(f"variant '{self.cfg.variant}' has no speech encoder; use a model trained on speech")
        self._check_speech(speech, lengths)
        return self.speech_encoder(speech, lengths)

    def encode_image(self, image: Tensor) -> dict[str, Posterior]:
        """Unimodal image posteriors r(. | image): {z_s, z_i} (PVAE) or {z}; each (mean, logvar)."""
        if self.image_encoder is None:
            raise SkiptoolError(f"variant '{self.cfg.variant}' has no image encoder; use a model trained on images")
        self._check_image(image)
        return self.image_encoder(image=image)

    def encode_multimodal(self, speech: Tensor, lengths: Tensor, image: Tensor) -> dict[str, Posterior]:
        """Multimodal posteriors q(. | speech, image) of the paired inputs."""
        if self.joint_encoder is None:
            raise SkiptoolError(f"variant '{self.cfg.variant}' has no multimodal encoder")
        self._check_speech(speech, lengths)
        self._check_image(image)
        return self.joint_encoder(speech, lengths, image)

    def decode_speech(self, z_s: Tensor, z_a: Tensor | None, num_frames: int,
                      lengths: Tensor | None = None) -> Tensor:
        """Mean FBank frames (B, num_frames, speech_dim) from z_s and z_a; single-latent variants
        pass their z as `z_s` and None as `z_a`. `lengths` (B,): the length item b is meant to have.
        With `speech_decoder_progress` the decoder spreads item b over lengths[b] frames (zeros
        after); without it the lengths are ignored and the caller cuts each item to its length."""
        if self.speech_decoder is None:
            raise SkiptoolError(f"variant '{self.cfg.variant}' has no speech decoder; use a model trained on speech")
        if not self.speech_decoder.progress:
            lengths = None  # a frame never depends on the length: one pass at num_frames, the caller cuts
        return self.speech_decoder(self._decoder_input(z_s, z_a, "z_a"), num_frames, lengths)

    def decode_image(self, z_s: Tensor, z_i: Tensor | None) -> Tensor:
        """Mean images (B, C, S, S) in [0, 1] from z_s and z_i; single-latent variants pass their
        z as `z_s` and None as `z_i`."""
        if self.image_decoder is None:
            raise SkiptoolError(f"variant '{self.cfg.variant}' has no image decoder; use a model trained on images")
        return torch.sigmoid(self.image_decoder(self._decoder_input(z_s, z_i, "z_i")))

    def _decoder_input(self, z_s: Tensor, z_style: Tensor | None, style_name: str) -> Tensor:
        if self.cfg.variant in PARTITIONED:
            if z_style is None:
                raise ValueError(f"variant '{self.cfg.variant}' decodes from z_s and {style_name}; got no {style_name}")
            return torch.cat([z_s, z_style], dim=-1)
        if z_style is not None:
            raise ValueError(f"variant '{self.cfg.variant}' has a single latent z; pass it as z_s "
                             f"and None as {style_name}")
        return z_s

    @torch.no_grad()
    def speech_to_image(self, speech: Tensor, lengths: Tensor, style_image: Tensor | None = None,
                        generator: torch.Generator | None = None) -> Tensor:
        """Written digits (B, C, S, S) saying what `speech` says (its z_s posterior mean) in the
        writing style z_i of `style_image` (posterior mean; a batch of B or of 1 shared by all) or,
        without one, a style drawn from the prior (paper, fig. 5 left)."""
        self._require_cross_modal(style_image is not None)
        semantic = self.encode_speech(speech, lengths)
        if self.cfg.variant == "jmvae_kl":
            return self.decode_image(semantic["z"][0], None)
        z_s = semantic["z_s"][0]
        if style_image is None:
            z_i = self._prior_sample(z_s.size(0), self.cfg.z_style_dim, z_s, generator)
        else:
            z_i = self._broadcast(self.encode_image(style_image)["z_i"][0], z_s.size(0), "style_image")
        return self.decode_image(z_s, z_i)

    @torch.no_grad()
    def image_to_speech(self, image: Tensor, num_frames: int, style_speech: Tensor | None = None,
                        style_lengths: Tensor | None = None,
                        generator: torch.Generator | None = None, lengths: Tensor | None = None) -> Tensor:
        """Spoken digits (B, num_frames, speech_dim) of the digit in `image` (its z_s posterior
        mean) in the speaking style z_a of `style_speech` (a batch of B or of 1) or, without one,
        a style drawn from the prior (paper, fig. 5 right); `lengths` as in `decode_speech`."""
        self._require_cross_modal(style_speech is not None)
        semantic = self.encode_image(image)
        if self.cfg.variant == "jmvae_kl":
            return self.decode_speech(semantic["z"][0], None, num_frames, lengths)
        z_s = semantic["z_s"][0]
        if style_speech is None:
            z_a = self._prior_sample(z_s.size(0), self.cfg.z_style_dim, z_s, generator)
        else:
            if style_lengths is None:
                raise ValueError("style_speech needs style_lengths")
            z_a = self._broadcast(self.encode_speech(style_speech, style_lengths)["z_a"][0], z_s.size(0),
                                  "style_speech")
        return self.decode_speech(z_s, z_a, num_frames, lengths)

    def _require_cross_modal(self, has_style: bool) -> None:
        variant = self.cfg.variant
        if variant not in MULTIMODAL:
            raise SkiptoolError(f"variant '{variant}' models one modality and cannot generate across "
                                f"modalities; use a pvae, pvae_nocm or jmvae_kl model")
        if has_style and variant == "jmvae_kl":
            raise SkiptoolError("variant 'jmvae_kl' has no style latent, so a style reference cannot be "
                                "used; drop the style reference or use a pvae model")

    @staticmethod
    def _prior_sample(batch: int, dim: int, like: Tensor, generator: torch.Generator | None) -> Tensor:
        return torch.randn(batch, dim, generator=generator).to(like)

    @staticmethod
    def _broadcast(z: Tensor, batch: int, what: str) -> Tensor:
        if z.size(0) == batch:
            return z
        if z.size(0) == 1:
            return z.expand(batch, -1)
        raise SkiptoolError(f"{what}: {z.size(0)} style references for {batch} sources; "
                            f"give one reference or one per source")


def build_pvae(cfg: PVAEConfig) -> PVAE:
    """Registry builder (`ModelEntry.build`): the model of `cfg.variant`."""
    return PVAE(cfg)


def pvae_dataset(cfg: PVAEConfig, data_dirs: dict, train: bool, seed: int):
    """Registry dataset (`ModelEntry.dataset`): the variant's modalities from `--data`/`--dev-data`;
    for two modalities, each utterance with a same-class image redrawn every epoch (SameClassPairs)
    and, with alpha_cross_reconstruction, another utterance of its speaker (the dir's utt2spk)."""
    from skiptool.data.datadir import read_table
    from skiptool.data.datasets import FeatsDataset, ImageFeatsDataset, SameClassPairs, data_dir

    speech = images = None
    if "speech" in cfg.modalities:
        speech = FeatsDataset(data_dir(data_dirs, "speech", train, "pvae"), labels=cfg.variant != "vae_sp" or None)
        if speech.dim != cfg.speech_dim:
            raise SkiptoolError(f"{speech.feats_dir}: features have {speech.dim} dims but model_conf.speech_dim "
                                f"is {cfg.speech_dim}; set it to {speech.dim}")
    if "image" in cfg.modalities:
        images = ImageFeatsDataset(data_dir(data_dirs, "image", train, "pvae"),
                                   labels=cfg.variant != "vae_im" or None)
        expected = (cfg.image_channels, cfg.image_size, cfg.image_size)
        if images.shape != expected:
            raise SkiptoolError(f"{images.feats_dir}: images are {images.shape} (C, H, W) but the model takes "
                                f"{expected}; set model_conf.image_size/image_channels")
    if speech is not None and images is not None:
        speakers = None
        if cfg.alpha_cross_reconstruction:
            table = speech.feats_dir / "utt2spk"
            if not table.is_file():
                raise SkiptoolError(f"{table}: not found; alpha_cross_reconstruction draws each utterance's style "
                                    f"from another utterance of its speaker (copy utt2spk from the data dir)")
            utt2spk = read_table(table)
            missing = [key for key in speech.keys if key not in utt2spk]
            if missing:
                raise SkiptoolError(f"{table}: no speaker for '{missing[0]}' of feats.scp; run `skiptool data fix`")
            speakers = [utt2spk[key] for key in speech.keys]
        return SameClassPairs(speech, images, seed, speakers)
    return speech if speech is not None else images
