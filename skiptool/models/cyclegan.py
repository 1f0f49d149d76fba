"""CycleGAN baseline of paper 000 (sec. 4.1, Table 1): image <-> speech from unpaired data with
cycle consistency (Zhu et al., 2017), "trained directly on images and audio samples from both
datasets", with MIB's encoders and decoders. Text is not used.

    G: image -> speech   ImageEncoder -> FC -> MIB's attention speech decoder, free-running for
                         num_frames / r steps (fed its own frames, with gradients)
    F: speech -> image   SpeechEncoder -> FC -> ImageDecoder
    D_speech, D_image    SpeechEncoder / ImageEncoder -> FC(1): least-squares GAN critics
    PostNet              G's mel -> linear spectrogram (Griffin-Lim); trained on real pairs

Why a fixed number of frames: an image has no speech to say how long its utterance is, so G's
stop token would get no training signal (the discriminator's gradient cannot reach a discrete
length). G therefore always generates `num_frames` frames (by default the mean length of the
training utterances, set when training starts), and the real speech is seen in
windows of the same length: its first num_frames frames, zero-padded (silence in a Tacotron mel
in [0, 1]) when shorter. D_speech, F and the speech cycle see these windows; the post-net is
trained on the whole utterances (mel -> linear, L1 over valid frames and bins), a supervised
task on real speech that involves no image.

Losses on a batch of images x and speech windows y (CycleGAN's, LSGAN form, no identity loss:
it needs the two domains to have the same shape, which image and speech have not):

    g_adv_speech = mean (D_speech(G(x)) - 1)^2      g_adv_image = mean (D_image(F(y)) - 1)^2
    cycle_image  = mean |F(G(x)) - x|                cycle_speech = mean |G(F(y)) - y|
    d_speech = (mean (D_speech(y) - 1)^2 + mean D_speech(G(x))^2) / 2, d_image likewise
    loss = g_adv_speech + g_adv_image + cycle_weight (cycle_image + cycle_speech)
           + d_speech + d_image + postnet_l1

Updates, with the trainer's one optimizer: in the generator terms the critics run with
detached parameters (`torch.func.functional_call`), so those terms give gradients to G, F only;
in the critic terms the generated samples are detached, so those give gradients to the critics
only. One backward pass and one Adam step over all parameters therefore make the generator step
and the critic step of the reference implementation (per iteration: G step with the critics
frozen, then the critic step on the samples G made before its step): both steps' gradients are
taken at the same (G, D), and Adam's update of a parameter depends only on its own gradient.
The only difference is that train.grad_clip, if set, clips the norm of both together (set it to
0 for the reference's behaviour); the reference's pool of 50 past fakes is not kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from skiptool.models.mib import (
    ImageDecoder,
    ImageEncoder,
    PostNet,
    SpeechEncoder,
    SpeechOutput,
    SpeechToImageFields,
    build_speech_decoder,
    length_mask,
)
from skiptool.models.piecewise import (
    alignment_plot,
    as_mib_config,
    baseline_dataset,
    check_image,
    check_speech,
    prenet_dropout,
    require_keys,
)
from skiptool.nn.attention import AttentionSpeechDecoder
from skiptool.utils.errors import SkiptoolError

GENERATOR_TERMS = ("g_adv_speech", "g_adv_image", "cycle_image", "cycle_speech", "postnet_l1")
CRITIC_TERMS = ("d_speech", "d_image")


@dataclass
class CycleGANConfig(SpeechToImageFields):
    """MIBConfig's fields of the modules used here (mib.py's SpeechToImageFields: image and speech
    encoders and decoders, post-net, data; text is read with the built-in character table and
    unused), with MIB's names and defaults (paper 000's), then CycleGAN's own. `latent_dim` is
    the FC output between an encoder and a decoder."""

    # CycleGAN
    num_frames: int = 0  # mel frames G makes per image, a multiple of reduction_factor; 0: set by the training data
    cycle_weight: float = 10.0  # lambda of the cycle-consistency L1 (CycleGAN's 10)

    def __post_init__(self) -> None:
        as_mib_config(self)  # MIB's checks of the shared fields (ValueError)
        if self.num_frames < 0 or self.num_frames % self.reduction_factor:
            raise ValueError(f"num_frames {self.num_frames} must be a multiple of reduction_factor "
                             f"{self.reduction_factor} (0: the mean length of the training utterances)")
        if self.cycle_weight < 0:
            raise ValueError(f"cycle_weight must be >= 0, got {self.cycle_weight}")


def unroll(decoder: AttentionSpeechDecoder, cond: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """The attention decoder free-running for `steps` steps with gradients (its `infer` runs
    without them and stops at the stop token): mel (B, steps * r, mel_dim) and alignments
    (B, steps, slots). Uses the decoder's step function, as `infer` does."""
    state = decoder._initial_state(cond)
    previous = cond.new_zeros(cond.size(0), decoder.mel_dim)
    frames, weights = [], []
    for _ in range(steps):
        out, _, w = decoder._step(state, previous)
        frames.append(out)
        weights.append(w)
        previous = out[:, -decoder.mel_dim:]
    mel = torch.stack(frames, dim=1).reshape(cond.size(0), steps * decoder.r, decoder.mel_dim)
    return mel, torch.stack(weights, dim=1)


def speech_windows(mel: Tensor, num_frames: int) -> Tensor:
    """The first num_frames frames of each utterance, zero-padded (padding is already zero)."""
    return F.pad(mel[:, :num_frames], (0, 0, 0, max(0, num_frames - mel.size(1))))


def least_squares(scores: Tensor, target: float) -> Tensor:
    return (scores - target).pow(2).mean()


class ImageToSpeech(nn.Module):
    """G: images (B, C, S, S) in [0, 1] -> mel (B, num_frames, mel_dim) and alignments."""

    def __init__(self, cfg, num_frames: int):
        super().__init__()
        self.encoder = ImageEncoder(cfg)
        self.bridge = nn.Linear(cfg.embed_dim, cfg.latent_dim)
        self.decoder = build_speech_decoder(cfg)
        self.steps = num_frames // cfg.reduction_factor

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        return unroll(self.decoder, self.bridge(self.encoder(image)), self.steps)


class SpeechToImage(nn.Module):
    """F: mel windows (B, T, mel_dim) -> images (B, C, S, S) in [0, 1]."""

    def __init__(self, cfg):
        super().__init__()
        self.encoder = SpeechEncoder(cfg)
        self.bridge = nn.Linear(cfg.embed_dim, cfg.latent_dim)
        self.decoder = ImageDecoder(cfg)

    def forward(self, mel: Tensor) -> Tensor:
        lengths = torch.full((mel.size(0),), mel.size(1), dtype=torch.long, device=mel.device)
        return (self.decoder(self.bridge(self.encoder(mel, lengths))) + 1) / 2


class Critic(nn.Module):
    """A modality's encoder -> FC(1): one least-squares GAN score per item."""

    def __init__(self, encoder: nn.Module, embed_dim: int):
        super().__init__()
        self.encoder = encoder
        self.score = nn.Linear(embed_dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3:  # speech windows: every frame counts
            lengths = torch.full((x.size(0),), x.size(1), dtype=torch.long, device=x.device)
            return self.score(self.encoder(x, lengths)).squeeze(-1)
        return self.score(self.encoder(x)).squeeze(-1)


def frozen(module: nn.Module, x: Tensor) -> Tensor:
    """module(x) with its parameters detached: the gradient reaches x but not the module."""
    return functional_call(module, {name: p.detach() for name, p in module.named_parameters()}, (x,))


def cyclegan_dataset(cfg: CycleGANConfig, data_dirs: Mapping[str, Path], train: bool, seed: int):
    """Registry dataset: MIB's (`baseline_dataset`). With num_frames 0, the training data sets it
    to the mean length of its utterances, rounded up to a multiple of r; config.yaml records it."""
    dataset = baseline_dataset(cfg, data_dirs, train, seed)
    if cfg.num_frames == 0:
        frames = [len(mel) for mel in dataset.b.speech]
        r = cfg.reduction_factor
        cfg.num_frames = max(1, math.ceil(sum(frames) / len(frames) / r)) * r
    return dataset


class CycleGAN(nn.Module):
    def __init__(self, cfg: CycleGANConfig):
        super().__init__()
        if cfg.num_frames == 0:
            raise SkiptoolError("model_conf.num_frames is 0, which `skiptool train` sets from the training data; "
                                "give a positive multiple of reduction_factor to build the model without it")
        self.cfg = cfg
        self.modules_cfg = modules_cfg = as_mib_config(cfg)  # what MIB's modules take
        self.image_to_speech_net = ImageToSpeech(modules_cfg, cfg.num_frames)  # G
        self.speech_to_image_net = SpeechToImage(modules_cfg)  # F
        self.postnet = PostNet(modules_cfg)
        self.critic_speech = Critic(SpeechEncoder(modules_cfg), cfg.embed_dim)
        self.critic_image = Critic(ImageEncoder(modules_cfg), cfg.embed_dim)
        self.last_alignment: Tensor | None = None  # (steps, slots) of G on the first image of the last forward

    def generator_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("critic_")]

    def critic_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name.startswith("critic_")]

    def terms(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Every loss term (module doc). A batch with one domain only (the last dev batches when
        the corpora differ in size, or `batching: alternating`) gives that domain's terms: its
        cycle and generator term and its halves of the critics' terms."""
        cfg = self.cfg
        has_image, has_speech = "image" in batch, "speech" in batch
        if not (has_image or has_speech):
            raise SkiptoolError("batch: neither image nor speech; CycleGAN trains on the images of the image-text "
                                "corpus and the speech (+ linear) of the text-speech corpus")
        terms: dict[str, Tensor] = {}
        critic = {"d_speech": [], "d_image": []}  # halves of the critics' least-squares terms
        if has_image:
            x = batch["image"]
            check_image(self.modules_cfg, x)
            fake_y, alignments = self.image_to_speech_net(x)
            self.last_alignment = alignments[0].detach().cpu()
            terms["g_adv_speech"] = least_squares(frozen(self.critic_speech, fake_y), 1.0)
            terms["cycle_image"] = (self.speech_to_image_net(fake_y) - x).abs().mean()
            critic["d_speech"].append(least_squares(self.critic_speech(fake_y.detach()), 0.0))
            critic["d_image"].append(least_squares(self.critic_image(x), 1.0))
        if has_speech:
            require_keys(batch, ["speech_lengths", "linear"], "cyclegan")
            check_speech(self.modules_cfg, batch)
            y = speech_windows(batch["speech"], cfg.num_frames)
            fake_x = self.speech_to_image_net(y)
            terms["g_adv_image"] = least_squares(frozen(self.critic_image, fake_x), 1.0)
            terms["cycle_speech"] = (self.image_to_speech_net(fake_x)[0] - y).abs().mean()
            critic["d_image"].append(least_squares(self.critic_image(fake_x.detach()), 0.0))
            critic["d_speech"].append(least_squares(self.critic_speech(y), 1.0))
            mel, linear, lengths = batch["speech"], batch["linear"], batch["speech_lengths"]
            mask = length_mask(lengths, mel.size(1)).unsqueeze(-1).to(mel)
            terms["postnet_l1"] = (((self.postnet(mel, lengths) - linear).abs() * mask).sum()
                                   / (mask.sum() * linear.size(-1)))
        terms.update({name: sum(halves) / 2 for name, halves in critic.items()})
        return terms

    def forward(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        terms = self.terms(batch)
        cycle = sum(v for k, v in terms.items() if k.startswith("cycle_"))
        generator = sum(v for k, v in terms.items() if k in GENERATOR_TERMS and not k.startswith("cycle_"))
        generator = generator + self.cfg.cycle_weight * cycle
        critic = terms["d_speech"] + terms["d_image"]
        loss = generator + critic
        stats = {"loss": loss.item(), "generator": generator.item(), "critic": critic.item(), "cycle": cycle.item()}
        return loss, {**stats, **{k: v.item() for k, v in terms.items()}}

    def on_epoch_end(self, exp_dir: str | Path, epoch: int) -> Path | None:
        """Trainer hook: G's attention alignment (free-running) of the epoch's last batch as a PNG."""
        return alignment_plot(self.last_alignment, exp_dir, epoch)

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def image_to_speech(self, image: Tensor) -> SpeechOutput:
        """num_frames mel and linear frames per image (lengths all num_frames); the pre-net keeps
        its dropout as `prenet_dropout_at_inference` says (seed torch's RNG to repeat)."""
        check_image(self.modules_cfg, image)
        with prenet_dropout(self.image_to_speech_net.decoder, self.cfg.prenet_dropout_at_inference):
            mel, alignments = self.image_to_speech_net(image)
        lengths = torch.full((image.size(0),), mel.size(1), dtype=torch.long, device=image.device)
        return SpeechOutput(mel, self.postnet(mel, lengths), lengths, alignments)

    @torch.no_grad()
    def speech_to_image(self, mel: Tensor) -> Tensor:
        """Images (B, C, S, S) in [0, 1] from the first num_frames frames of each utterance."""
        check_speech(self.modules_cfg, {"speech": mel}, with_linear=False)
        return self.speech_to_image_net(speech_windows(mel, self.cfg.num_frames))

    @torch.no_grad()
    def generate(self, source: str, target: str, x: Tensor, lengths: Tensor | None = None) -> Any:
        """As MIB.generate for CycleGAN's two directions. Call `model.eval()` first."""
        if (source, target) == ("image", "speech"):
            return self.image_to_speech(x)
        if (source, target) == ("speech", "image"):
            return self.speech_to_image(x)
        raise SkiptoolError(f"--from {source} --to {target}: the CycleGAN baseline generates image -> speech "
                            f"and speech -> image only")


def build_cyclegan(cfg: CycleGANConfig) -> CycleGAN:
    """Registry builder (`ModelEntry.build`)."""
    return CycleGAN(cfg)
