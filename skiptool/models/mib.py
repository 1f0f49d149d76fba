"""MIB: skip-modal generation through a multimodal information bottleneck (paper 000, sec. 3 and
appendix 6). Learns image <-> text <-> speech from an image-text corpus A and a text-speech
corpus B that share only text, and generates speech from images (skip-modal) through u.

    e^j = E^j(x^j)            modality encoders (image CNN, character CBHG text encoder, conv+GRU speech)
    z^j = T(e^j)              modality transformer, trained against the classifier C through a GRL
    u^j = M(z^j)              memory fusion: attention over a shared external memory
    D^img(u^txt_A), D^spch(u^txt_B), D^txt(u^img_A), D^txt(u^spch_B)   cross-modal reconstructions

Batch contract of `forward` (make one with `collate_mib`). Either corpus part may be absent (an
alternating schedule gives one corpus per batch); a mixed batch has both, half each:

    corpus A (image-text)   image               float (Ba, C, S, S) in [0, 1]
                            image_text          long  (Ba, La) token ids, padded with pad_id, no <sos>/<eos>
                            image_text_lengths  long  (Ba,)
    corpus B (text-speech)  speech              float (Bb, T, mel_dim) Tacotron mel in [0, 1], zero-padded
                            speech_lengths      long  (Bb,) frames (also those of `linear`)
                            linear              float (Bb, T, linear_dim) Tacotron linear spectrogram
                            speech_text         long  (Bb, Lb) token ids, as image_text
                            speech_text_lengths long  (Bb,)

Losses (`forward` returns loss = L_recon + classifier_weight * L_adv, Eq. 3-7):
- image_l1: mean |D^img(u^txt_A) - x^img| over pixels (images mapped to [-1, 1] to match tanh);
- speech: mel_l1 + linear_l1 (mean over valid frames and bins) + stop_bce (stop token, Tacotron),
  plus guided_attn when `guided_attention_weight` > 0 (not in the paper; `speech_decoder_loss`);
- text_ce_image, text_ce_speech: per-token cross-entropy of D^txt(u^img_A), D^txt(u^spch_B),
  teacher-forced, targets ending in <eos>;
- adv_ce: C's 3-way cross-entropy on z of every item (image, text of A and B, speech), L_C of
  Eq. 1: C learns to tell the modalities apart. The gradient-reversal layer hands T (and the
  encoders) -grl_alpha times that gradient for the image and speech latents only; the text
  latents reach C detached. Eq. 1's L_T, which the GRL stands in for, has only image and speech
  terms ("T tries to fool C into believing that all z^j are from the text modality"): text is the
  anchor of the shared space, and a reversed gradient on it would push the text latents away
  from looking like text, i.e. away from the space the others are dragged into.

- adv_fool (`adversary: text_target`, the literal Eq. 1): instead of the reversal, C learns
  from detached z and T minimises L_T = -log C(z)_txt of the image and speech latents through C's
  weights held fixed, weighted by grl_alpha (Eq. 7's alpha). The reversal only pushes image z away
  from what C calls "image" (towards "speech" as readily as towards "text"); L_T pulls it to "text",
  the space the decoders are trained from.

Choices where the paper is silent or inconsistent (all in `MIBConfig`):
- Eq. 4-5 sum the L1 over an instance; here it is averaged over pixels / frames x bins (as
  Tacotron does), which keeps the three reconstruction terms on comparable scales.
- Eq. 7's alpha = 0.1 is the GRL's coefficient (`grl_alpha`), so C trains at full strength and T
  sees -0.1 x its gradient; `classifier_weight` scales C's loss (1.0). classifier_weight = 0.1 with
  grl_alpha = 1.0 is the other reading of Eq. 7.
- The speech decoder attends over slots made from u (see skiptool/nn/attention.py); r = 5 frames
  per step (keithito/tacotron's outputs_per_step; the paper does not give r).
- Image decoder: FC -> reshape to (image_decoder_channels[0], S/16, S/16) -> 4 deconvs; at S = 64
  that is the paper's FC(1024) = 4x4x64; at 128 the FC grows to 8x8x64 = 4096 (the paper's
  4x4 start with four stride-2 deconvs cannot reach 128). The last deconv has image_channels (3)
  outputs (the appendix's "8" cannot be an RGB image).
- Speech encoder: appendix 6.1's GRU(256) (sec. 3.1 says 512); its last valid state.
- The text encoder's CBHG returns 2 x 128 dims (Tacotron's bidirectional GRU of 128), averaged over
  the valid characters.
- Ablation "without T" maps e (512) to z (d_k) with one linear layer: the memory needs a d_k query.
- The decoder pre-net keeps its dropout when generating (`prenet_dropout_at_inference`), as
  Tacotron does; generated speech then depends on torch's RNG (decoding seeds it).

Training data (`mib_dataset`, the registry's dataset hook): `--data image=` image features of
the caption corpus, `speech=` mel and `linear=` linear features of the text-speech corpus, their
`text` tokenised by `token_type`/`token_list`; batches `mixed` or `alternating`
(skiptool/data/two_corpora.py). The feature configs of the training data are recorded in
`speech_features`/`image_features`, so an exp dir says how to make inputs for (skiptool synth)
and vocode outputs of (skiptool decode) its model. During training, `on_epoch_end` plots the
attention alignment of a fixed item to exp/<tag>/images/alignment_epochNNN.png.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence

from skiptool.nn.attention import AttentionSpeechDecoder, guided_attention_loss
from skiptool.nn.cbhg import CBHG
from skiptool.nn.grl import GradientReversal
from skiptool.nn.memory import FCFusion, MemoryFusion, fc_fusion_hidden_size
from skiptool.nn.prenet import Prenet
from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import atomic_write

MODALITIES = ("image", "text", "speech")  # also the classifier's class ids 0, 1, 2
Fusion = Literal["memory", "fc", "none"]


@dataclass
class ImageToSpeechFields:
    """MIBConfig's fields that every model built from MIB's modules takes (MIB and the baselines of
    piecewise.py and cyclegan.py): data, image encoder, speech decoder and post-net. Defaults are
    paper 000's (appendix 6) unless noted; MIB's checks are in MIBConfig.__post_init__."""

    # data: batching and the feature configs of the training data (see mib_dataset)
    batching: Literal["mixed", "alternating"] = "mixed"  # half of each corpus per batch, or one corpus per batch
    speech_features: dict = field(default_factory=dict)  # conf of --data speech; {}: recorded when training
    image_features: dict = field(default_factory=dict)  # conf of --data image; {}: recorded when training
    image_size: int = 128  # square images; divisible by 16 (four stride-2 layers)
    image_channels: int = 3
    mel_dim: int = 80
    linear_dim: int = 1025  # n_fft / 2 + 1 of the linear features
    embed_dim: int = 512  # e^j, output of every encoder
    # image encoder: Conv2D(c, 4, 2) -> BN -> ReLU per entry, then global max-pool
    image_encoder_channels: list[int] = field(default_factory=lambda: [64, 128, 256, 512])
    latent_dim: int = 256  # the decoders' input: MIB's z^j and u^j (= d_k, the size of each memory vector)
    # speech decoder (Tacotron) and CBHG post-net
    reduction_factor: int = 5  # r, mel frames per decoder step
    speech_decoder_slots: int = 32  # attention slots made from u
    speech_decoder_slot_dim: int = 128
    decoder_prenet_sizes: list[int] = field(default_factory=lambda: [256, 128])
    decoder_prenet_dropout: float = 0.5
    attention_rnn_dim: int = 256
    attention_dim: int = 128
    location_filters: int = 32
    location_kernel: int = 31
    decoder_rnn_dim: int = 256
    decoder_rnn_layers: int = 2
    decoder_dropout: float = 0.3
    postnet_cbhg_bank_size: int = 8
    postnet_cbhg_channels: int = 128
    postnet_projection_dim: int = 256  # first projection; the second is mel_dim
    postnet_highways: int = 4
    prenet_dropout_at_inference: bool = True  # Tacotron keeps the decoder pre-net's dropout on when generating


@dataclass
class TextFields(ImageToSpeechFields):
    """The text modality's fields (MIB and the piecewise baseline): tokenizer, text encoder and
    decoder, and the speech decoder's stop token, which text-speech pairs train."""

    token_type: Literal["char", "bpe"] = "char"  # char: the paper's 66-symbol table; bpe: sentencepiece pieces
    token_list: str = ""  # token-list dir of `skiptool token list`; needed for bpe, optional for char
    vocab_size: int = 66  # symbols of the tokenizer (the paper's 66-character table)
    pad_id: int = 0
    eos_id: int = 1
    sos_id: int = 2
    # text encoder: lookup -> FC+ReLU+dropout per prenet entry -> CBHG -> avg-pool -> FC(512) -> tanh
    text_embed_dim: int = 128
    text_prenet_sizes: list[int] = field(default_factory=lambda: [256, 128])
    text_prenet_dropout: float = 0.5
    encoder_cbhg_bank_size: int = 16  # K
    encoder_cbhg_channels: int = 128  # bank channels, highway size and GRU cells per direction
    encoder_cbhg_highways: int = 4
    # text decoder: two-layer LSTM initialised from u
    text_decoder_embed_dim: int = 128
    text_decoder_dim: int = 128
    text_decoder_layers: int = 2
    text_decoder_dropout: float = 0.3
    text_decoder_feed_u: bool = False  # also feed u at every step (not in the paper: it only initialises)
    # Not in the paper (0 = off): in training, each teacher-forced input token after <sos> becomes
    # <pad> (the zero embedding) with this probability, "word dropout" (Bowman et al., 2016), so the
    # decoder cannot model the text from its own inputs alone and must read u.
    text_decoder_word_dropout: float = 0.0
    max_text_length: int = 200  # greedy decoding limit, tokens
    # speech decoder's stop token
    max_decoder_steps: int = 200  # generation limit, steps of r frames
    stop_threshold: float = 0.5
    stop_weight: float = 1.0  # weight of the stop-token BCE within the speech loss
    # Not in the paper (0 = off): weight of the guided-attention loss (skiptool/nn/attention.py), a
    # diagonal prior on the speech decoder's alignment over its slots, and its width sigma
    guided_attention_weight: float = 0.0
    guided_attention_sigma: float = 0.2


@dataclass
class SpeechToImageFields(ImageToSpeechFields):
    """The speech -> image modules' fields (MIB and the CycleGAN baseline)."""

    # speech encoder: Conv2D(c, 3, 2) -> BN -> ReLU per entry -> GRU -> FC(512) -> tanh
    speech_encoder_channels: list[int] = field(default_factory=lambda: [32, 64])
    speech_encoder_gru_dim: int = 256
    # the utterance's vector: last (the GRU state at the last frame) | mean (of the GRU outputs over
    # its frames, as the text encoder pools; not in the paper, which does not say)
    speech_encoder_pooling: Literal["last", "mean"] = "last"
    # Not in the paper (false = its FC -> tanh): a LayerNorm between the FC and the tanh, so the
    # output cannot drift into saturation. Measured: without it 71-85% of e sits beyond 0.99 under
    # the adversary; with it none, but speech u still collapses (egs/coco_emt4/RESULTS.md).
    speech_encoder_layer_norm: bool = False
    # image decoder: FC -> reshape (channels[0], S/16, S/16) -> ConvT(c, 4, 2)+BN+ReLU ... -> ConvT(C) -> tanh
    image_decoder_channels: list[int] = field(default_factory=lambda: [64, 32, 16, 8])


@dataclass
class MIBConfig(TextFields, SpeechToImageFields):
    """Hyper-parameters of MIB: its modules' fields (the classes above, which the baselines share),
    then the bottleneck's. Defaults are paper 000's (appendix 6) unless noted. The optimiser (Adam,
    lr 0.002, batch 8, 100 epochs) belongs to the trainer's `train:` section."""

    # multimodal information bottleneck
    memory_slots: int = 128  # n_k
    memory_heads: int = 4
    # M's initialisation (not in the paper; skiptool/nn/memory.py): std of the memory, and the key
    # conv's start: default (PyTorch's) | identity (keys = values, attention input-dependent at once)
    memory_init_std: float = 0.5
    memory_key_init: Literal["default", "identity"] = "default"
    memory_scale: Literal["d_k", "head"] = "d_k"  # logits / sqrt(d_k) (Eq. 2) | / sqrt(d_k / memory_heads) (GST)
    fusion: Fusion = "memory"  # memory: M | fc: the "M -> FC" ablation | none: "without M" (u = z)
    use_transformer: bool = True  # False: the "without T" ablation (z = Linear(e))
    # T's normalisation: batch (BatchNorm over the whole mixed batch, every modality together) |
    # layer (LayerNorm per item: no coupling between items; see ModalityTransformer)
    transformer_norm: Literal["batch", "layer"] = "batch"
    use_adversarial: bool = True  # False: the "without L_adv" ablation (no classifier C)
    classifier_hidden_dim: int = 256
    grl_alpha: float = 0.1  # Eq. 7's alpha: the gradient-reversal coefficient, or L_T's weight (text_target)
    classifier_weight: float = 1.0  # weight of C's cross-entropy in the total loss
    adversary: Literal["reversal", "text_target"] = "reversal"  # how T plays against C (module doc)
    # Not in the paper: the adversary's pull on T (grl_alpha) ramps linearly from 0 over the first N
    # training steps (0 = off), so the decoders learn to read u before C pushes the modalities together.
    adversary_warmup_steps: int = 0

    def __post_init__(self) -> None:
        positive = ("vocab_size", "image_size", "image_channels", "mel_dim", "linear_dim", "embed_dim",
                    "text_embed_dim", "encoder_cbhg_bank_size", "encoder_cbhg_channels", "speech_encoder_gru_dim",
                    "latent_dim", "memory_slots", "memory_heads", "classifier_hidden_dim", "text_decoder_embed_dim",
                    "text_decoder_dim", "text_decoder_layers", "max_text_length", "reduction_factor",
                    "speech_decoder_slots", "speech_decoder_slot_dim", "attention_rnn_dim", "attention_dim",
                    "location_filters", "location_kernel", "decoder_rnn_dim", "decoder_rnn_layers",
                    "postnet_cbhg_bank_size", "postnet_cbhg_channels", "postnet_projection_dim",
                    "max_decoder_steps")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("image_encoder_channels", "text_prenet_sizes", "speech_encoder_channels",
                     "image_decoder_channels", "decoder_prenet_sizes"):
            if not getattr(self, name) or min(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a non-empty list of positive sizes, got {getattr(self, name)}")
        if self.speech_encoder_pooling not in ("last", "mean"):
            raise ValueError(f"speech_encoder_pooling must be last or mean, got {self.speech_encoder_pooling!r}")
        if self.transformer_norm not in ("batch", "layer"):
            raise ValueError(f"transformer_norm must be batch or layer, got {self.transformer_norm!r}")
        if self.adversary not in ("reversal", "text_target"):
            raise ValueError(f"adversary must be reversal or text_target, got {self.adversary!r}")
        if len(self.image_decoder_channels) != 4 or self.image_size % 16:
            raise ValueError(f"image_decoder_channels takes 4 entries (four stride-2 deconvs) and image_size "
                             f"must be divisible by 16, got {self.image_decoder_channels} and {self.image_size}")
        if self.image_size % 2 ** len(self.image_encoder_channels):
            raise ValueError(f"image_size {self.image_size} is not divisible by 2^{len(self.image_encoder_channels)}")
        if self.latent_dim % self.memory_heads:
            raise ValueError(f"latent_dim {self.latent_dim} is not divisible by memory_heads {self.memory_heads}")
        if self.token_type not in ("char", "bpe"):
            raise ValueError(f"token_type must be char or bpe, got {self.token_type!r}")
        if self.token_type == "bpe" and not self.token_list:
            raise ValueError("token_type bpe needs token_list: the dir written by `skiptool token list --token-type bpe`")
        if self.batching not in ("mixed", "alternating"):
            raise ValueError(f"batching must be mixed or alternating, got {self.batching!r}")
        if self.memory_scale not in ("d_k", "head"):
            raise ValueError(f"memory_scale must be d_k or head, got {self.memory_scale!r}")
        if self.memory_key_init not in ("default", "identity") or self.memory_init_std <= 0:
            raise ValueError(f"memory_key_init must be default or identity and memory_init_std positive, got "
                             f"{self.memory_key_init!r}, {self.memory_init_std}")
        if self.fusion not in ("memory", "fc", "none"):
            raise ValueError(f"fusion must be memory, fc or none, got {self.fusion!r}")
        for name in ("text_prenet_dropout", "text_decoder_dropout", "text_decoder_word_dropout",
                     "decoder_prenet_dropout", "decoder_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.grl_alpha < 0 or self.classifier_weight < 0 or self.stop_weight < 0 or self.adversary_warmup_steps < 0:
            raise ValueError("grl_alpha, classifier_weight, stop_weight and adversary_warmup_steps must be >= 0")
        if self.guided_attention_weight < 0 or self.guided_attention_sigma <= 0:
            raise ValueError(f"guided_attention_weight must be >= 0 and guided_attention_sigma > 0, got "
                             f"{self.guided_attention_weight}, {self.guided_attention_sigma}")
        if not 0 < self.stop_threshold < 1:
            raise ValueError(f"stop_threshold must be in (0, 1), got {self.stop_threshold}")
        special = (self.pad_id, self.eos_id, self.sos_id)
        if len(set(special)) != 3 or min(special) < 0 or max(special) >= self.vocab_size:
            raise ValueError("pad_id, eos_id, sos_id must be distinct ids below vocab_size")


# ------------------------------------------------------------------------------------ encoders


def length_mask(lengths: Tensor, steps: int) -> Tensor:
    """(B, steps) bool: True for positions < length."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


class ImageEncoder(nn.Module):
    """(B, C, S, S) in [0, 1] -> e (B, embed_dim): Conv2D(c, 4, 2) -> BN -> ReLU per channel
    entry, global max-pool (a Linear to embed_dim only when the last channels differ from it)."""

    def __init__(self, cfg: MIBConfig):
        super().__init__()
        layers: list[nn.Module] = []
        prev = cfg.image_channels
        for ch in cfg.image_encoder_channels:
            layers += [nn.Conv2d(prev, ch, 4, stride=2, padding=1), nn.BatchNorm2d(ch), nn.ReLU()]
            prev = ch
        layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten()]
        if prev != cfg.embed_dim:
            layers.append(nn.Linear(prev, cfg.embed_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image * 2 - 1)


class TextEncoder(nn.Module):
    """Tokens (B, L), lengths (B,) -> e (B, embed_dim)."""

    def __init__(self, cfg: MIBConfig):
        super().__init__()
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.text_embed_dim, padding_idx=cfg.pad_id)
        self.prenet = Prenet(cfg.text_embed_dim, cfg.text_prenet_sizes, cfg.text_prenet_dropout)
        ch = cfg.encoder_cbhg_channels
        self.cbhg = CBHG(self.prenet.out_dim, cfg.encoder_cbhg_bank_size, ch, [ch, self.prenet.out_dim], ch,
                         cfg.encoder_cbhg_highways, ch)
        self.output = nn.Linear(self.cbhg.out_dim, cfg.embed_dim)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        lengths = lengths.clamp(min=1)
        h = self.cbhg(self.prenet(self.embedding(tokens)), lengths)
        mask = length_mask(lengths, tokens.size(1)).unsqueeze(-1)
        pooled = (h * mask).sum(1) / lengths[:, None].to(h)
        return torch.tanh(self.output(pooled))


class SpeechEncoder(nn.Module):
    """Mel (B, T, mel_dim), lengths (B,) -> e (B, embed_dim): Conv2D(c, 3, 2) -> BN -> ReLU per
    channel entry over the (time, mel) plane, GRU over time, its state at the last valid frame (or
    the mean of its outputs: speech_encoder_pooling), FC, (LayerNorm: speech_encoder_layer_norm), tanh."""

    def __init__(self, cfg: MIBConfig):
        super().__init__()
        blocks: list[nn.Module] = []
        prev, bins = 1, cfg.mel_dim
        for ch in cfg.speech_encoder_channels:
            blocks.append(nn.Sequential(nn.Conv2d(prev, ch, 3, stride=2, padding=1), nn.BatchNorm2d(ch), nn.ReLU()))
            prev, bins = ch, (bins - 1) // 2 + 1
        self.convs = nn.ModuleList(blocks)
        self.gru = nn.GRU(prev * bins, cfg.speech_encoder_gru_dim, batch_first=True)
        self.output = nn.Linear(cfg.speech_encoder_gru_dim, cfg.embed_dim)
        # no gain or bias: a learnt gain would let the output grow back into saturation
        self.norm = (nn.LayerNorm(cfg.embed_dim, elementwise_affine=False) if cfg.speech_encoder_layer_norm
                     else nn.Identity())
        self.pooling = cfg.speech_encoder_pooling

    def forward(self, mel: Tensor, lengths: Tensor) -> Tensor:
        lengths = lengths.clamp(min=1)
        x = mel.unsqueeze(1) * length_mask(lengths, mel.size(1))[:, None, :, None]  # (B, 1, T, mel_dim)
        for block in self.convs:  # padding is zeroed after every block, as an unpadded item sees it
            x = block(x)
            lengths = (lengths - 1) // 2 + 1
            x = x * length_mask(lengths, x.size(2))[:, None, :, None]
        x = x.permute(0, 2, 1, 3).flatten(2)  # (B, T', C * F')
        outputs, _ = self.gru(x)  # causal: a step's output never sees the padding after it
        if self.pooling == "mean":
            mask = length_mask(lengths, outputs.size(1)).unsqueeze(-1).to(outputs)
            pooled = (outputs * mask).sum(1) / lengths[:, None].to(outputs)
        else:
            pooled = outputs[torch.arange(x.size(0), device=x.device), (lengths - 1).to(x.device)]
        return torch.tanh(self.norm(self.output(pooled)))


# ------------------------------------------------------------------- information bottleneck


class ModalityTransformer(nn.Module):
    """T: e -> FC -> ReLU -> (+ residual: Conv1D(1) -> ReLU -> BN -> Conv1D(1) -> ReLU -> BN) -> tanh.
    A kernel-1 conv over a vector is a Linear layer."""

    def __init__(self, in_dim: int, dim: int, norm: str = "batch"):
        super().__init__()
        # BatchNorm couples the items of a batch: its backward hands every item part of the others'
        # gradients, so in a mixed batch the adversarial gradient of the image and speech latents
        # also reaches the text encoder. LayerNorm normalises each item alone.
        make_norm = nn.BatchNorm1d if norm == "batch" else nn.LayerNorm
        self.input = nn.Linear(in_dim, dim)
        self.block = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), make_norm(dim),
                                   nn.Linear(dim, dim), nn.ReLU(), make_norm(dim))

    def forward(self, e: Tensor) -> Tensor:
        h = torch.relu(self.input(e))
        return torch.tanh(h + self.block(h))


class NoFusion(nn.Module):
    """The "without M" ablation: u = z."""

    def forward(self, z: Tensor) -> tuple[Tensor, None]:
        return z, None


# ------------------------------------------------------------------------------------ decoders


class ImageDecoder(nn.Module):
    """u (B, latent) -> image logits in [-1, 1] (tanh), (B, C, S, S)."""

    def __init__(self, cfg: MIBConfig):
        super().__init__()
        channels = cfg.image_decoder_channels
        start = cfg.image_size // 16
        layers: list[nn.Module] = [nn.Linear(cfg.latent_dim, channels[0] * start * start), nn.ReLU(),
                                   nn.Unflatten(1, (channels[0], start, start))]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += [nn.ConvTranspose2d(channels[-1], cfg.image_channels, 4, stride=2, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, u: Tensor) -> Tensor:
        return self.net(u)


class TextDecoder(nn.Module):
    """LSTM layers initialised from u (h0 = tanh(Linear(u)), c0 = 0), teacher-forced or greedy."""

    def __init__(self, cfg: MIBConfig):
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.text_decoder_embed_dim, padding_idx=cfg.pad_id)
        extra = cfg.latent_dim if cfg.text_decoder_feed_u else 0
        self.init_state = nn.Linear(cfg.latent_dim, cfg.text_decoder_dim * cfg.text_decoder_layers)
        self.lstm = nn.LSTM(cfg.text_decoder_embed_dim + extra, cfg.text_decoder_dim, cfg.text_decoder_layers,
                            batch_first=True, dropout=cfg.text_decoder_dropout if cfg.text_decoder_layers > 1 else 0)
        self.dropout = nn.Dropout(cfg.text_decoder_dropout)
        self.output = nn.Linear(cfg.text_decoder_dim, cfg.vocab_size)

    def _initial_state(self, u: Tensor) -> tuple[Tensor, Tensor]:
        layers, dim = self.cfg.text_decoder_layers, self.cfg.text_decoder_dim
        h = torch.tanh(self.init_state(u)).view(u.size(0), layers, dim).transpose(0, 1).contiguous()
        return h, torch.zeros_like(h)

    def _run(self, u: Tensor, tokens: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        x = self.embedding(tokens)
        if self.cfg.text_decoder_feed_u:
            x = torch.cat([x, u.unsqueeze(1).expand(-1, x.size(1), -1)], dim=-1)
        out, state = self.lstm(x, state)
        return self.output(self.dropout(out)), state

    def forward(self, u: Tensor, inputs: Tensor) -> Tensor:
        """u (B, latent), inputs (B, L) starting with <sos> -> logits (B, L, vocab); in training,
        inputs after <sos> are dropped to <pad> with probability text_decoder_word_dropout."""
        if self.training and self.cfg.text_decoder_word_dropout > 0:
            drop = torch.rand(inputs.shape, device=inputs.device) < self.cfg.text_decoder_word_dropout
            drop[:, 0] = False
            inputs = inputs.masked_fill(drop, self.cfg.pad_id)
        return self._run(u, inputs, self._initial_state(u))[0]

    def loss(self, u: Tensor, tokens: Tensor, lengths: Tensor) -> Tensor:
        """Per-token cross-entropy of tokens (B, L) with lengths (B,), teacher-forced from <sos>,
        the targets ending in <eos>."""
        cfg = self.cfg
        batch = tokens.size(0)
        targets = F.pad(tokens, (0, 1), value=cfg.pad_id)
        targets[~length_mask(lengths, targets.size(1))] = cfg.pad_id
        targets[torch.arange(batch, device=tokens.device), lengths] = cfg.eos_id
        inputs = torch.cat([torch.full((batch, 1), cfg.sos_id, dtype=torch.long, device=tokens.device),
                            targets[:, :-1]], dim=1)
        return F.cross_entropy(self(u, inputs).transpose(1, 2), targets, ignore_index=cfg.pad_id)

    @torch.no_grad()
    def greedy(self, u: Tensor, max_length: int) -> tuple[Tensor, Tensor]:
        """Tokens (B, L) up to and without <eos> (pad after), lengths (B,)."""
        cfg = self.cfg
        state = self._initial_state(u)
        token = torch.full((u.size(0), 1), cfg.sos_id, dtype=torch.long, device=u.device)
        lengths = torch.full((u.size(0),), max_length, dtype=torch.long, device=u.device)
        out = []
        for step in range(max_length):
            logits, state = self._run(u, token, state)
            token = logits[:, -1].argmax(-1, keepdim=True)
            ended = (token.squeeze(1) == cfg.eos_id) & (lengths == max_length)
            lengths[ended] = step
            out.append(token)
            if bool((lengths < max_length).all()):
                break
        tokens = torch.cat(out, dim=1)
        tokens[~length_mask(lengths, tokens.size(1))] = cfg.pad_id
        return tokens[:, : int(lengths.max()) if len(lengths) else 0], lengths


class PostNet(nn.Module):
    """Mel (B, T, mel_dim) -> linear spectrogram (B, T, linear_dim): CBHG then FC (Tacotron)."""

    def __init__(self, cfg: MIBConfig):
        super().__init__()
        ch = cfg.postnet_cbhg_channels
        self.cbhg = CBHG(cfg.mel_dim, cfg.postnet_cbhg_bank_size, ch, [cfg.postnet_projection_dim, cfg.mel_dim],
                         ch, cfg.postnet_highways, ch)
        self.output = nn.Linear(self.cbhg.out_dim, cfg.linear_dim)

    def forward(self, mel: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.output(self.cbhg(mel, lengths))


def build_speech_decoder(cfg: ImageToSpeechFields) -> AttentionSpeechDecoder:
    """The attention speech decoder D^spch, conditioned on a latent_dim vector (MIB and baselines)."""
    return AttentionSpeechDecoder(
        cfg.latent_dim, cfg.mel_dim, cfg.reduction_factor, cfg.speech_decoder_slots, cfg.speech_decoder_slot_dim,
        cfg.decoder_prenet_sizes, cfg.decoder_prenet_dropout, cfg.attention_rnn_dim, cfg.attention_dim,
        cfg.location_filters, cfg.location_kernel, cfg.decoder_rnn_dim, cfg.decoder_rnn_layers, cfg.decoder_dropout)


def speech_decoder_loss(decoder: AttentionSpeechDecoder, postnet: PostNet, cfg: TextFields, cond: Tensor,
                        mel: Tensor, linear: Tensor, lengths: Tensor) -> tuple[dict[str, Tensor], Tensor]:
    """Tacotron's loss of the speech decoder teacher-forced from cond (B, latent_dim) (MIB's D^spch
    and the piecewise TTS): mel and linear L1 over valid frames and bins, the stop-token BCE, and
    the guided-attention term when `guided_attention_weight` is set; also item 0's alignment
    (steps, slots) for the trainer's plots."""
    r = cfg.reduction_factor
    out = decoder(cond, mel)
    frames = mel.size(1)
    mel_out = out.mel[:, :frames]
    mask = length_mask(lengths, frames).unsqueeze(-1).to(mel)
    linear_out = postnet(mel_out, lengths)
    valid = mask.sum()
    step_lengths = (lengths + r - 1) // r
    steps = out.stop_logits.size(1)
    stop_target = (torch.arange(steps, device=mel.device)[None, :] >= step_lengths[:, None] - 1).to(mel)
    terms = {"mel_l1": ((mel_out - mel).abs() * mask).sum() / (valid * mel.size(-1)),
             "linear_l1": ((linear_out - linear).abs() * mask).sum() / (valid * linear.size(-1)),
             "stop_bce": cfg.stop_weight * F.binary_cross_entropy_with_logits(out.stop_logits, stop_target)}
    if cfg.guided_attention_weight:
        terms["guided_attn"] = cfg.guided_attention_weight * guided_attention_loss(
            out.alignments, step_lengths, cfg.guided_attention_sigma)
    return terms, out.alignments[0, : int(step_lengths[0])].detach().cpu()


# --------------------------------------------------------------------------------------- model


@dataclass
class SpeechOutput:
    mel: Tensor  # (B, T, mel_dim)
    linear: Tensor  # (B, T, linear_dim)
    lengths: Tensor  # (B,) frames
    alignments: Tensor  # (B, steps, slots)


class MIB(nn.Module):
    def __init__(self, cfg: MIBConfig):
        super().__init__()
        self.cfg = cfg
        self.encoders = nn.ModuleDict({"image": ImageEncoder(cfg), "text": TextEncoder(cfg),
                                       "speech": SpeechEncoder(cfg)})
        self.transformer = (ModalityTransformer(cfg.embed_dim, cfg.latent_dim, cfg.transformer_norm) if cfg.use_transformer
                            else nn.Linear(cfg.embed_dim, cfg.latent_dim))
        if cfg.fusion == "memory":
            self.fusion: nn.Module = MemoryFusion(cfg.latent_dim, cfg.memory_slots, cfg.memory_heads,
                                                       cfg.memory_init_std, cfg.memory_key_init, cfg.memory_scale)
        elif cfg.fusion == "fc":
            self.fusion = FCFusion(cfg.latent_dim, fc_fusion_hidden_size(cfg.latent_dim, cfg.memory_slots))
        else:
            self.fusion = NoFusion()
        self.classifier = None
        if cfg.use_adversarial:
            # (index 0 holds no weights: checkpoints of either adversary share their keys)
            first = GradientReversal(cfg.grl_alpha) if cfg.adversary == "reversal" else nn.Identity()
            self.classifier = nn.Sequential(first,
                                            nn.Linear(cfg.latent_dim, cfg.classifier_hidden_dim), nn.ReLU(),
                                            nn.Linear(cfg.classifier_hidden_dim, len(MODALITIES)))
        self.image_decoder = ImageDecoder(cfg)
        self.text_decoder = TextDecoder(cfg)
        self.speech_decoder = build_speech_decoder(cfg)
        self.postnet = PostNet(cfg)
        self.register_buffer("train_steps", torch.zeros((), dtype=torch.float64))  # for adversary_warmup_steps
        self.last_alignment: Tensor | None = None  # (steps, slots) of the first B item of the last forward
        self._probe: tuple[Tensor, Tensor] | None = None  # (tokens, mel) of the first B item trained on

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.setdefault(prefix + "train_steps", torch.zeros((), dtype=torch.float64))  # older checkpoints
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def adversary_weight(self) -> float:
        """grl_alpha, ramped from 0 over the first `adversary_warmup_steps` training steps when set."""
        warmup = self.cfg.adversary_warmup_steps
        if not warmup:
            return self.cfg.grl_alpha
        return self.cfg.grl_alpha * min(1.0, self.train_steps.item() / warmup)

    # ------------------------------------------------------------------ training objective

    def forward(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Eq. 7 on a batch from corpus A, corpus B or both (module doc: the batch contract)."""
        has_a, has_b = self._check_batch(batch)
        if self.training and has_b and self._probe is None:
            self._probe = (batch["speech_text"][0, : int(batch["speech_text_lengths"][0])].detach().cpu().clone(),
                           batch["speech"][0, : int(batch["speech_lengths"][0])].detach().cpu().clone())
        # One encoder call per modality; both corpora's texts go through the text encoder together.
        texts = [(batch[f"{p}_text"], batch[f"{p}_text_lengths"]) for p, has in (("image", has_a), ("speech", has_b))
                 if has]
        width = max(t.size(1) for t, _ in texts)
        text_tokens = torch.cat([F.pad(t, (0, width - t.size(1)), value=self.cfg.pad_id) for t, _ in texts])
        text_lengths = torch.cat([n for _, n in texts])
        e = {}  # modality -> e^j, in the classifier's class order
        if has_a:
            e["image"] = self.encoders["image"](batch["image"])
        e["text"] = self.encoders["text"](text_tokens, text_lengths)
        if has_b:
            e["speech"] = self.encoders["speech"](batch["speech"], batch["speech_lengths"])
        sizes = [x.size(0) for x in e.values()]
        z = self.transformer(torch.cat(list(e.values())))  # one call: batch norm sees every modality
        u = dict(zip(e, self.fusion(z)[0].split(sizes)))
        num_a = batch["image"].size(0) if has_a else 0
        u_text_a, u_text_b = u["text"][:num_a], u["text"][num_a:]

        terms: dict[str, Tensor] = {}
        if has_a:
            terms["image_l1"] = (self.image_decoder(u_text_a) - (batch["image"] * 2 - 1)).abs().mean()
            terms["text_ce_image"] = self.text_decoder.loss(u["image"], batch["image_text"],
                                                            batch["image_text_lengths"])
        if has_b:
            terms.update(self._speech_loss(u_text_b, batch["speech"], batch["linear"], batch["speech_lengths"]))
            terms["text_ce_speech"] = self.text_decoder.loss(u["speech"], batch["speech_text"],
                                                             batch["speech_text_lengths"])
        recon = sum(terms.values())
        loss, stats = recon, {}
        if self.classifier is not None:
            alpha = self.adversary_weight()
            if self.cfg.adversary == "reversal":
                self.classifier[0].alpha = alpha
            if self.cfg.adversary_warmup_steps:
                stats["adv_alpha"] = alpha
            targets = torch.cat([torch.full((n,), MODALITIES.index(m), dtype=torch.long, device=z.device)
                                 for n, m in zip(sizes, e)])
            parts = z.split(sizes)
            if self.cfg.adversary == "reversal":
                # C learns from every z; only image and speech z pass its reversed gradient back to
                # T (module doc: the text latent is the anchor of Eq. 1, not pushed away from "text").
                seen = torch.cat([part.detach() if m == "text" else part for m, part in zip(e, parts)])
            else:
                seen = z.detach()  # L_C trains C only; L_T below trains T only
            logits = self.classifier(seen)
            terms["adv_ce"] = F.cross_entropy(logits, targets)
            stats["adv_acc"] = (logits.argmax(-1) == targets).float().mean().item()
            loss = recon + self.cfg.classifier_weight * terms["adv_ce"]
            if self.cfg.adversary == "text_target":
                terms["adv_fool"] = self._fool_loss([part for m, part in zip(e, parts) if m != "text"])
                loss = loss + alpha * terms["adv_fool"]
        if self.training:
            self.train_steps += 1
        # Collapse monitor: spread of u across the batch's items, per modality (mean over dims of
        # the std over items). Near 0 means every input of that modality gets the same u, so the
        # decoders run unconditioned (measured 2026-11-27: ~1e-6 for text after 5-15 epochs of
        # the CPU default, a saturated text encoder; see egs/coco_emt4/RESULTS.md).
        with torch.no_grad():
            stats.update({f"u_spread_{m}": float(part.std(0).mean()) for m, part in u.items() if part.size(0) > 1})
        stats = {"loss": loss.item(), "recon": recon.item(), **{k: v.item() for k, v in terms.items()}, **stats}
        return loss, stats

    def _fool_loss(self, latents: list[Tensor]) -> Tensor:
        """Eq. 1's L_T: -log C(z)_txt of the image and speech latents, through C with its weights
        held fixed (torch.func.functional_call on detached parameters), so it trains T alone."""
        z = torch.cat(latents)
        fixed = {name: p.detach() for name, p in self.classifier.named_parameters()}
        logits = torch.func.functional_call(self.classifier, fixed, (z,))
        text = torch.full((z.size(0),), MODALITIES.index("text"), dtype=torch.long, device=z.device)
        return F.cross_entropy(logits, text)

    def _speech_loss(self, u: Tensor, mel: Tensor, linear: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        terms, self.last_alignment = speech_decoder_loss(self.speech_decoder, self.postnet, self.cfg, u, mel, linear,
                                                         lengths)
        return terms

    def _check_batch(self, batch: Mapping[str, Tensor]) -> tuple[bool, bool]:
        cfg = self.cfg
        has_a, has_b = "image" in batch, "speech" in batch
        if not (has_a or has_b):
            raise SkiptoolError("batch: neither image (image-text corpus) nor speech (text-speech corpus); "
                                "MIB trains on image + image_text and/or speech + linear + speech_text")
        need = (["image_text", "image_text_lengths"] if has_a else []) + \
               (["speech_lengths", "linear", "speech_text", "speech_text_lengths"] if has_b else [])
        missing = [k for k in need if k not in batch]
        if missing:
            raise SkiptoolError(f"batch: no {', '.join(missing)}; see the batch contract in skiptool/models/mib.py")
        if has_a:
            self._check_image(batch["image"])
        if has_b:
            self._check_speech(batch["speech"])
            if batch["linear"].shape[:2] != batch["speech"].shape[:2] or batch["linear"].size(-1) != cfg.linear_dim:
                raise SkiptoolError(f"linear: expected (batch, {batch['speech'].size(1)}, {cfg.linear_dim}) like "
                                    f"speech, got {tuple(batch['linear'].shape)}; set model_conf.linear_dim")
        for part in [p for p, has in (("image", has_a), ("speech", has_b)) if has]:
            tokens = batch[f"{part}_text"]
            if tokens.numel() and int(tokens.max()) >= cfg.vocab_size:
                raise SkiptoolError(f"{part}_text: token id {int(tokens.max())} is outside the vocabulary of "
                                    f"{cfg.vocab_size}; set model_conf.vocab_size to the tokenizer's size")
        return has_a, has_b

    def _check_image(self, image: Tensor) -> None:
        cfg = self.cfg
        expected = (cfg.image_channels, cfg.image_size, cfg.image_size)
        if image.dim() != 4 or tuple(image.shape[1:]) != expected:
            raise SkiptoolError(f"image: expected (batch, {', '.join(map(str, expected))}), got {tuple(image.shape)}; "
                                f"set model_conf.image_size/image_channels")

    def _check_speech(self, mel: Tensor) -> None:
        if mel.dim() != 3 or mel.size(-1) != self.cfg.mel_dim:
            raise SkiptoolError(f"speech: expected (batch, frames, {self.cfg.mel_dim}) mel frames, got "
                                f"{tuple(mel.shape)}; set model_conf.mel_dim")

    # ------------------------------------------------------------------ inference

    def embed(self, modality: str, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """u (B, latent_dim) of images (B, C, S, S), tokens (B, L) + lengths, or mel (B, T, mel_dim)
        + lengths; the representation used for decoding and for retrieval (cosine similarity)."""
        if modality not in MODALITIES:
            raise SkiptoolError(f"modality '{modality}': MIB knows {', '.join(MODALITIES)}")
        if modality == "image":
            self._check_image(x)
            e = self.encoders["image"](x)
        else:
            if lengths is None:
                lengths = torch.full((x.size(0),), x.size(1), dtype=torch.long, device=x.device)
            if modality == "speech":
                self._check_speech(x)
            e = self.encoders[modality](x, lengths)
        return self.fusion(self.transformer(e))[0]

    @torch.no_grad()
    def decode_text(self, u: Tensor, max_length: int | None = None) -> tuple[Tensor, Tensor]:
        """Greedy tokens (B, L) without <eos>, pad after, and lengths (B,)."""
        return self.text_decoder.greedy(u, max_length or self.cfg.max_text_length)

    @torch.no_grad()
    def decode_image(self, u: Tensor) -> Tensor:
        """Images (B, C, S, S) in [0, 1]."""
        return (self.image_decoder(u) + 1) / 2

    @torch.no_grad()
    def decode_speech(self, u: Tensor, max_steps: int | None = None, fixed_steps: int | None = None) -> SpeechOutput:
        """Mel and linear frames, zeroed after each item's stop, with lengths and alignments.
        `fixed_steps` ignores the stop token and decodes exactly that many steps (for timing).
        The pre-net keeps its dropout unless `prenet_dropout_at_inference` is off (Tacotron keeps
        it: without it the decoder sees inputs unlike those it was trained on and tends to stall
        or repeat); seed torch's RNG for repeatable output."""
        prenet = self.speech_decoder.prenet
        prenet.train(self.training or self.cfg.prenet_dropout_at_inference)
        try:
            steps = fixed_steps or max_steps or self.cfg.max_decoder_steps
            threshold = 1.0 if fixed_steps else self.cfg.stop_threshold  # a sigmoid never exceeds 1: no stop
            out = self.speech_decoder.infer(u, steps, threshold)
        finally:
            prenet.train(self.training)
        mask = length_mask(out.lengths, out.mel.size(1)).unsqueeze(-1).to(out.mel)
        mel = out.mel * mask
        return SpeechOutput(mel, self.postnet(mel, out.lengths) * mask, out.lengths, out.alignments)

    def on_epoch_end(self, exp_dir: str | Path, epoch: int) -> Path | None:
        """Trainer hook: exp_dir/images/alignment_epochNNN.png, the speech decoder's attention on one
        fixed item (the first text-speech item this process trained on), teacher-forced in eval
        mode. Touches no random state, so a resumed run stays identical."""
        if self._probe is None:
            return None
        tokens, mel = self._probe
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                u = self.embed("text", tokens[None].to(device), torch.tensor([len(tokens)], device=device))
                alignment = self.speech_decoder(u, mel[None].to(device)).alignments[0].cpu()
        finally:
            self.train(was_training)
        name = f"alignment_epoch{epoch:03d}"
        return plot_alignment(alignment, Path(exp_dir) / "images" / f"{name}.png", title=f"{name} (teacher-forced)")

    @torch.no_grad()
    def generate(self, source: str, target: str, x: Tensor, lengths: Tensor | None = None) -> Any:
        """Any direction source -> target: text gives (tokens, lengths), image (B, C, S, S) in
        [0, 1], speech a SpeechOutput. Call `model.eval()` first."""
        if target not in MODALITIES:
            raise SkiptoolError(f"--to {target}: MIB generates {', '.join(MODALITIES)}")
        u = self.embed(source, x, lengths)
        if target == "text":
            return self.decode_text(u)
        return self.decode_image(u) if target == "image" else self.decode_speech(u)

    def image_to_text(self, image: Tensor) -> tuple[Tensor, Tensor]:
        return self.generate("image", "text", image)

    def speech_to_text(self, mel: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        return self.generate("speech", "text", mel, lengths)

    def text_to_speech(self, tokens: Tensor, lengths: Tensor) -> SpeechOutput:
        return self.generate("text", "speech", tokens, lengths)

    def text_to_image(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        return self.generate("text", "image", tokens, lengths)

    def image_to_speech(self, image: Tensor) -> SpeechOutput:
        """Skip-modal generation: speech from an image, a pairing never seen in training."""
        return self.generate("image", "speech", image)


# ------------------------------------------------------------------------- batches and plots


def collate_mib(items: Sequence[Mapping[str, Any]], pad_id: int = 0) -> dict[str, Tensor]:
    """Items -> a batch of the contract above. An image-text item has "image" (C, S, S) and its
    tokens as "image_text" (or "text") long (L,); a text-speech item has "speech" (T, mel_dim),
    "linear" (T, linear_dim) and "speech_text" (or "text"). An item may carry one of each (a
    pair drawn from the two corpora: a batch of N such items is a mixed batch of N + N); a list
    of single-corpus items of both kinds is mixed too. Other entries (keys, labels) are left out."""
    if not items:
        raise ValueError("collate_mib: empty batch")
    if any("image" not in it and "speech" not in it for it in items):
        raise ValueError("collate_mib: every item needs an image or speech entry")
    batch: dict[str, Tensor] = {}

    def pad(values: list, value: float = 0, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
        values = [torch.as_tensor(v, dtype=dtype) for v in values]
        lengths = torch.tensor([len(v) for v in values], dtype=torch.long)
        return pad_sequence(values, batch_first=True, padding_value=value), lengths

    def tokens(part: list[Mapping[str, Any]], name: str) -> list:
        return [it[name] if name in it else it["text"] for it in part]

    image_part = [it for it in items if "image" in it]
    speech_part = [it for it in items if "speech" in it]
    if image_part:
        batch["image"] = torch.stack([torch.as_tensor(it["image"], dtype=torch.float32) for it in image_part])
        batch["image_text"], batch["image_text_lengths"] = pad(tokens(image_part, "image_text"), pad_id, torch.long)
    if speech_part:
        batch["speech"], batch["speech_lengths"] = pad([it["speech"] for it in speech_part])
        batch["linear"] = pad([it["linear"] for it in speech_part])[0]
        batch["speech_text"], batch["speech_text_lengths"] = pad(tokens(speech_part, "speech_text"), pad_id,
                                                                 torch.long)
    batch["num_items"] = len(image_part) + len(speech_part)  # the trainer's items/s (not a tensor)
    return batch


def plot_alignment(alignment: Tensor, path: str | Path, title: str = "") -> Path:
    """Save an attention alignment (decoder steps, slots) as a PNG (for exp/<tag>/images/), written
    atomically. A bare Figure on the Agg canvas: pyplot's global backend is left alone."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(torch.as_tensor(alignment).float().numpy().T, aspect="auto", origin="lower",
                      interpolation="none")
    fig.colorbar(image, ax=ax)
    ax.set_xlabel("decoder step")
    ax.set_ylabel("slot")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png")
    return path


def save_alignment_plot(model: MIB, exp_dir: str | Path, name: str) -> Path | None:
    """exp_dir/images/<name>.png of the alignment of the model's last training or dev batch
    (None before any batch with speech); e.g. name = f"alignment_epoch{epoch}"."""
    if model.last_alignment is None:
        return None
    return plot_alignment(model.last_alignment, Path(exp_dir) / "images" / f"{name}.png", title=name)


def build_mib(cfg: MIBConfig) -> MIB:
    """Registry builder (`ModelEntry.build`)."""
    return MIB(cfg)


# ------------------------------------------------------------------------ data (registry hook)

DATA_NAMES = ("image", "speech", "linear")  # what `--data NAME=DIR` gives MIB


def mib_tokenizer(cfg: MIBConfig, exp_dir: str | Path | None = None):
    """The tokenizer `cfg` names (token_type, token_list), checked against vocab_size and the
    special ids. A relative token_list (relative to the recipe dir it was trained in) is looked up
    in the current dir, then in `exp_dir` and each of its parents, so a model decodes from
    anywhere (e.g. egs/coco_emt4/exp/<setup>/mib from the repository root)."""
    from skiptool.text.tokenizer import CharTokenizer, load_tokenizer

    where = "the built-in 66-symbol table"
    if cfg.token_list:
        token_dir = Path(cfg.token_list)
        if not token_dir.is_absolute() and not token_dir.is_dir():
            search_dirs = [] if exp_dir is None else [Path(exp_dir).resolve(), *Path(exp_dir).resolve().parents]
            found = [d / token_dir for d in search_dirs if (d / token_dir).is_dir()]
            if not found:
                raise SkiptoolError(f"model_conf.token_list: {token_dir} not found (here or beside the exp dir); "
                                    f"run from the dir the model was trained in, or give the path")
            token_dir = found[0]
        tokenizer = load_tokenizer(token_dir)
        where = str(token_dir)
        if tokenizer.token_type != cfg.token_type:
            raise SkiptoolError(f"model_conf.token_type is {cfg.token_type} but {token_dir} is a "
                                f"{tokenizer.token_type} token list; make them agree")
    else:
        tokenizer = CharTokenizer()
    if len(tokenizer) != cfg.vocab_size:
        raise SkiptoolError(f"model_conf.vocab_size is {cfg.vocab_size} but the {cfg.token_type} tokenizer ({where}) "
                            f"has {len(tokenizer)} tokens; set model_conf.vocab_size={len(tokenizer)}")
    if (cfg.pad_id, cfg.eos_id, cfg.sos_id) != (0, 1, 2):  # every skiptool token list starts <pad> <eos> <sos>
        raise SkiptoolError(f"model_conf pad_id/eos_id/sos_id are {cfg.pad_id}/{cfg.eos_id}/{cfg.sos_id}; "
                            f"skiptool's token lists use 0/1/2")
    return tokenizer


def recorded_features(recorded: dict, conf: Mapping[str, Any], fields: Sequence[str], where: Path, name: str) -> dict:
    """The feature config to keep in model_conf.<name> (speech_features or image_features): the
    dir's own when nothing is recorded yet (training data), so config.yaml says how to make inputs
    for and vocode outputs of the model; else the recorded one, and a dir made with other
    settings is a user error."""
    found = {k: conf[k] for k in fields if k in conf}
    if not recorded:
        return found
    for key in sorted(set(found) | set(recorded)):
        if found.get(key) != recorded.get(key):
            raise SkiptoolError(f"{where}/conf.yaml: {key} is {found.get(key)!r} but the model's features have "
                                f"{recorded.get(key)!r} (model_conf.{name}); make the features with the same config")
    return recorded


def text_speech_corpus(cfg: ImageToSpeechFields, mel_dir: Path, linear_dir: Path, encode):
    """The text-speech corpus of `--data speech=MEL_DIR linear=LINEAR_DIR` (a SpokenTextDataset),
    checked against the config (mel_dim, linear_dim; one spectrogram config for mel and linear).
    The mel dir's feature config is recorded in cfg.speech_features on the first call (training
    data) and every later dir (dev data) is checked against it."""
    from skiptool.audio.tacotron import TacotronSpecConfig
    from skiptool.audio.transforms import TacotronFeatsConfig
    from skiptool.data.two_corpora import SpokenTextDataset

    speech = SpokenTextDataset(mel_dir, linear_dir, encode)
    for where, dim, name in ((mel_dir, speech.mel_dim, "mel_dim"), (linear_dir, speech.linear_dim, "linear_dim")):
        if dim != getattr(cfg, name):
            raise SkiptoolError(f"{where}: features have {dim} bins but model_conf.{name} is {getattr(cfg, name)}; "
                                f"set it to {dim}")
    spec_fields = [f.name for f in dataclasses.fields(TacotronSpecConfig)]
    mel_spec = {k: speech.mel_conf.get(k) for k in spec_fields}
    linear_spec = {k: speech.linear_conf.get(k) for k in spec_fields}
    if mel_spec != linear_spec:
        key = next(k for k in spec_fields if mel_spec[k] != linear_spec[k])
        raise SkiptoolError(f"{linear_dir}/conf.yaml: {key} is {linear_spec[key]!r} but {mel_spec[key]!r} in "
                            f"{mel_dir}; make mel and linear features with one config")
    cfg.speech_features = recorded_features(cfg.speech_features, speech.mel_conf,
                                            [f.name for f in dataclasses.fields(TacotronFeatsConfig)], mel_dir,
                                            "speech_features")
    return speech


def mib_dataset(cfg: MIBConfig, data_dirs: Mapping[str, Path], train: bool, seed: int):
    """Registry dataset (`ModelEntry.dataset`): `--data image=` an image feature dir of the
    caption corpus, `speech=` a mel and `linear=` a linear feature dir of the text-speech corpus
    (same keys), transcripts from the `text` copied into them, tokenised as the config says;
    batches mixed or alternating (`batching`). The feature configs of the first call (training
    data) are recorded in the config, and every later dir (dev data) is checked against them."""
    from skiptool.data.datasets import data_dir
    from skiptool.data.image import ImageFeatsConfig
    from skiptool.data.two_corpora import CaptionDataset, TwoCorpora

    flag = "--data" if train else "--dev-data"
    unknown = sorted(set(data_dirs) - set(DATA_NAMES))
    if unknown:
        raise SkiptoolError(f"{flag} {unknown[0]}=...: model 'mib' reads {', '.join(n + '=DIR' for n in DATA_NAMES)}")
    dirs = {name: data_dir(data_dirs, name, train, "mib") for name in DATA_NAMES}
    encode = mib_tokenizer(cfg).encode
    captions = CaptionDataset(dirs["image"], encode)
    speech = text_speech_corpus(cfg, dirs["speech"], dirs["linear"], encode)
    expected = (cfg.image_channels, cfg.image_size, cfg.image_size)
    if captions.shape != expected:
        raise SkiptoolError(f"{dirs['image']}: images are {captions.shape} (C, H, W) but the model takes {expected}; "
                            f"set model_conf.image_size/image_channels or redo the image features")
    cfg.image_features = recorded_features(cfg.image_features, captions.conf,
                                           [f.name for f in dataclasses.fields(ImageFeatsConfig)], dirs["image"],
                                           "image_features")
    return TwoCorpora(captions, speech, cfg.batching)
