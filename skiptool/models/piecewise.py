"""Piecewise baseline of paper 000 (sec. 4.1, Table 1): image -> text -> speech by two separately
trained models run one after the other, built from MIB's encoders and decoders ("for a fair
comparison, we design both baselines using the same encoder-decoder architectures as ours").

    captioner  image  -> ImageEncoder -> FC -> TextDecoder                 trained on corpus A's pairs
    TTS        tokens -> TextEncoder  -> FC -> AttentionSpeechDecoder -> PostNet   on corpus B's pairs
    image -> speech:  greedy caption of the image -> TTS

The two share no parameter and no data: the captioner sees only image-text pairs, the TTS only
text-speech pairs. Both live in one nn.Module so that one `skiptool train` run and one exp dir
hold them; `forward` returns the sum of their losses, whose gradients do not mix (no parameter
is in both graphs), so each part trains exactly as it would alone, with Adam's per-parameter
steps. The FC maps e (embed_dim) to the latent_dim vector the decoders take, the place of MIB's
T and M, which the baseline has not. The batch contract is MIB's (`collate_mib`); the text of a
batch part is only used with its own corpus. Loss terms keep MIB's names: text_ce_image
(captioner), mel_l1 + linear_l1 + stop_bce (TTS).
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from skiptool.models.mib import (
    ImageEncoder,
    MIBConfig,
    PostNet,
    SpeechOutput,
    TextDecoder,
    TextEncoder,
    TextFields,
    build_speech_decoder,
    length_mask,
    mib_dataset,
    plot_alignment,
    speech_decoder_loss,
)
from skiptool.nn.attention import AttentionSpeechDecoder
from skiptool.utils.errors import SkiptoolError


@dataclass
class PiecewiseConfig(TextFields):
    """MIBConfig's fields of the modules the baseline uses (mib.py's TextFields: image and text
    encoders, text and speech decoders, post-net, data), with MIB's names and defaults (the
    paper's, appendix 6); `latent_dim` is the size of the FC output that conditions the decoders."""

    def __post_init__(self) -> None:
        as_mib_config(self)  # MIB's checks of the shared fields (ValueError)


def as_mib_config(cfg: Any) -> MIBConfig:
    """The MIBConfig that MIB's modules take, from a baseline config's fields of the same names
    (others at MIB's defaults; memory_heads 1 because a baseline has no memory whose heads
    latent_dim must divide into)."""
    names = {f.name for f in dataclasses.fields(MIBConfig)}
    shared = {k: v for k, v in dataclasses.asdict(cfg).items() if k in names}
    return MIBConfig(**{"memory_heads": 1, **shared})


def baseline_dataset(cfg: Any, data_dirs: Mapping[str, Path], train: bool, seed: int):
    """Registry dataset of a baseline: MIB's (`mib_dataset`, the same `--data image= speech=
    linear=` dirs and batches), run with the MIBConfig of the baseline's fields; the feature
    configs it records are copied back into `cfg` (they go to config.yaml, and decoding writes
    them beside generated speech so that it can be vocoded)."""
    mib_cfg = as_mib_config(cfg)
    dataset = mib_dataset(mib_cfg, data_dirs, train, seed)
    cfg.speech_features, cfg.image_features = mib_cfg.speech_features, mib_cfg.image_features
    return dataset


def alignment_plot(alignment: Tensor | None, exp_dir: str | Path, epoch: int) -> Path | None:
    """Trainer hook body (`on_epoch_end`): exp_dir/images/alignment_epochNNN.png of the speech
    decoder's attention on the first item of the last batch (None before any)."""
    if alignment is None:
        return None
    name = f"alignment_epoch{epoch:03d}"
    return plot_alignment(alignment, Path(exp_dir) / "images" / f"{name}.png", title=name)


@contextlib.contextmanager
def prenet_dropout(decoder: AttentionSpeechDecoder, keep: bool) -> Iterator[None]:
    """While generating speech, the decoder's pre-net keeps its dropout if `keep` (Tacotron's
    practice, MIB's `prenet_dropout_at_inference`); seed torch's RNG for repeatable output."""
    was_training = decoder.prenet.training
    decoder.prenet.train(was_training or keep)
    try:
        yield
    finally:
        decoder.prenet.train(was_training)


def check_image(cfg: MIBConfig, image: Tensor) -> None:
    expected = (cfg.image_channels, cfg.image_size, cfg.image_size)
    if image.dim() != 4 or tuple(image.shape[1:]) != expected:
        raise SkiptoolError(f"image: expected (batch, {', '.join(map(str, expected))}), got {tuple(image.shape)}; "
                            f"set model_conf.image_size/image_channels")


def check_speech(cfg: MIBConfig, batch: Mapping[str, Tensor], with_linear: bool = True) -> None:
    mel = batch["speech"]
    if mel.dim() != 3 or mel.size(-1) != cfg.mel_dim:
        raise SkiptoolError(f"speech: expected (batch, frames, {cfg.mel_dim}) mel frames, got {tuple(mel.shape)}; "
                            f"set model_conf.mel_dim")
    if with_linear and (batch["linear"].shape[:2] != mel.shape[:2] or batch["linear"].size(-1) != cfg.linear_dim):
        raise SkiptoolError(f"linear: expected (batch, {mel.size(1)}, {cfg.linear_dim}) like speech, got "
                            f"{tuple(batch['linear'].shape)}; set model_conf.linear_dim")


def check_tokens(cfg: MIBConfig, name: str, tokens: Tensor) -> None:
    if tokens.numel() and int(tokens.max()) >= cfg.vocab_size:
        raise SkiptoolError(f"{name}: token id {int(tokens.max())} is outside the vocabulary of {cfg.vocab_size}; "
                            f"set model_conf.vocab_size to the tokenizer's size")


def require_keys(batch: Mapping[str, Tensor], keys: list[str], model: str) -> None:
    missing = [k for k in keys if k not in batch]
    if missing:
        raise SkiptoolError(f"batch: no {', '.join(missing)}; {model} takes MIB's batches (see the batch "
                            f"contract in skiptool/models/mib.py)")


class Captioner(nn.Module):
    """Image (B, C, S, S) in [0, 1] -> text: ImageEncoder -> FC -> TextDecoder."""

    def __init__(self, cfg: MIBConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = ImageEncoder(cfg)
        self.bridge = nn.Linear(cfg.embed_dim, cfg.latent_dim)
        self.decoder = TextDecoder(cfg)

    def condition(self, image: Tensor) -> Tensor:
        return self.bridge(self.encoder(image))

    def loss(self, image: Tensor, tokens: Tensor, lengths: Tensor) -> Tensor:
        """Per-token cross-entropy, teacher-forced, targets ending in <eos> (as MIB's)."""
        return self.decoder.loss(self.condition(image), tokens, lengths)

    @torch.no_grad()
    def greedy(self, image: Tensor, max_length: int | None = None) -> tuple[Tensor, Tensor]:
        return self.decoder.greedy(self.condition(image), max_length or self.cfg.max_text_length)


class TTS(nn.Module):
    """Tokens (B, L) + lengths -> speech: TextEncoder -> FC -> attention decoder -> PostNet."""

    def __init__(self, cfg: MIBConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = TextEncoder(cfg)
        self.bridge = nn.Linear(cfg.embed_dim, cfg.latent_dim)
        self.decoder = build_speech_decoder(cfg)
        self.postnet = PostNet(cfg)

    def condition(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        return self.bridge(self.encoder(tokens, lengths))

    def loss(self, tokens: Tensor, text_lengths: Tensor, mel: Tensor, linear: Tensor, lengths: Tensor,
             ) -> tuple[dict[str, Tensor], Tensor]:
        """MIB's speech loss (`speech_decoder_loss`) from the text's condition; also the first
        item's alignment (steps, slots)."""
        return speech_decoder_loss(self.decoder, self.postnet, self.cfg, self.condition(tokens, text_lengths), mel,
                                   linear, lengths)

    def train_step(self, batch: Mapping[str, Tensor], model: str) -> tuple[dict[str, Tensor], Tensor]:
        """`loss` on the text-speech part of a batch of MIB's contract, after checking it (`model`
        names the caller in errors)."""
        require_keys(batch, ["speech_lengths", "linear", "speech_text", "speech_text_lengths"], model)
        check_speech(self.cfg, batch)
        check_tokens(self.cfg, "speech_text", batch["speech_text"])
        return self.loss(batch["speech_text"], batch["speech_text_lengths"], batch["speech"], batch["linear"],
                         batch["speech_lengths"])

    @torch.no_grad()
    def speak(self, tokens: Tensor, lengths: Tensor | None = None) -> SpeechOutput:
        """`synthesize` for user input: token ids checked, lengths default to the full width, and
        a batch of empty texts is spoken as one padding token (the text encoder's minimum)."""
        check_tokens(self.cfg, "text", tokens)
        if lengths is None:
            lengths = torch.full((tokens.size(0),), tokens.size(1), dtype=torch.long, device=tokens.device)
        if tokens.size(1) == 0:
            tokens = F.pad(tokens, (0, 1), value=self.cfg.pad_id)
        return self.synthesize(tokens, lengths)

    @torch.no_grad()
    def synthesize(self, tokens: Tensor, lengths: Tensor, max_steps: int | None = None) -> SpeechOutput:
        """Mel and linear frames, zeroed after each item's stop (as MIB.decode_speech)."""
        cfg = self.cfg
        with prenet_dropout(self.decoder, cfg.prenet_dropout_at_inference):
            out = self.decoder.infer(self.condition(tokens, lengths), max_steps or cfg.max_decoder_steps,
                                     cfg.stop_threshold)
        mask = length_mask(out.lengths, out.mel.size(1)).unsqueeze(-1).to(out.mel)
        mel = out.mel * mask
        return SpeechOutput(mel, self.postnet(mel, out.lengths) * mask, out.lengths, out.alignments)


class Piecewise(nn.Module):
    def __init__(self, cfg: PiecewiseConfig):
        super().__init__()
        self.cfg = cfg
        modules_cfg = as_mib_config(cfg)
        self.captioner = Captioner(modules_cfg)
        self.tts = TTS(modules_cfg)
        self.last_alignment: Tensor | None = None  # (steps, slots) of the first TTS item of the last forward

    def forward(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Captioner loss on corpus A's part of the batch + TTS loss on corpus B's part."""
        cfg = self.cfg
        has_a, has_b = "image" in batch, "speech" in batch
        if not (has_a or has_b):
            raise SkiptoolError("batch: neither image (image-text corpus) nor speech (text-speech corpus); "
                                "piecewise trains on image + image_text and/or speech + linear + speech_text")
        terms: dict[str, Tensor] = {}
        if has_a:
            require_keys(batch, ["image_text", "image_text_lengths"], "piecewise")
            check_image(self.captioner.cfg, batch["image"])
            check_tokens(self.captioner.cfg, "image_text", batch["image_text"])
            terms["text_ce_image"] = self.captioner.loss(batch["image"], batch["image_text"],
                                                         batch["image_text_lengths"])
        if has_b:
            tts_terms, self.last_alignment = self.tts.train_step(batch, "piecewise")
            terms.update(tts_terms)
        loss = sum(terms.values())
        return loss, {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}}

    def on_epoch_end(self, exp_dir: str | Path, epoch: int) -> Path | None:
        """Trainer hook: the TTS's attention alignment of the epoch's last batch as a PNG."""
        return alignment_plot(self.last_alignment, exp_dir, epoch)

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def image_to_text(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """Greedy captions: tokens (B, L) without <eos>, pad after, and lengths (B,)."""
        check_image(self.captioner.cfg, image)
        return self.captioner.greedy(image)

    @torch.no_grad()
    def text_to_speech(self, tokens: Tensor, lengths: Tensor | None = None) -> SpeechOutput:
        return self.tts.speak(tokens, lengths)

    @torch.no_grad()
    def image_to_speech(self, image: Tensor) -> SpeechOutput:
        """The baseline's skip-modal path: the greedy caption, spoken by the TTS. An empty caption
        is spoken as one padding token (the text encoder's minimum length)."""
        return self.text_to_speech(*self.image_to_text(image))

    @torch.no_grad()
    def generate(self, source: str, target: str, x: Tensor, lengths: Tensor | None = None) -> Any:
        """As MIB.generate for the directions the baseline has: image -> text, text -> speech and
        image -> speech. Call `model.eval()` first."""
        if (source, target) == ("image", "text"):
            return self.image_to_text(x)
        if (source, target) == ("image", "speech"):
            return self.image_to_speech(x)
        if (source, target) == ("text", "speech"):
            return self.text_to_speech(x, lengths)
        raise SkiptoolError(f"--from {source} --to {target}: the piecewise baseline generates image -> text, "
                            f"text -> speech and image -> speech only")


def build_piecewise(cfg: PiecewiseConfig) -> Piecewise:
    """Registry builder (`ModelEntry.build`)."""
    return Piecewise(cfg)
