"""Classifiers that the recipes train on real data and use to score generated digits
(cross-modal generation accuracy): `image_classifier` (a small CNN over 28x28 images) and
`speech_classifier` (1-D convolutions over FBank frames, mean+max pooled over time). The speech
classifier also tells speakers apart (`labels: utt2spk` with `class_names`): it scores whether
generated speech has the speaking style of its reference.

Both follow the model contract of the trainer: `forward(batch) -> (loss, {"loss", "acc"})`, with
batch entries `image` (B, C, H, W) in [0, 1] or `speech` (B, T, D) + `speech_lengths` (B,), and
`label` (B,). `logits(batch)` gives the class scores, `predict_labels` labels a whole dataset.

Choices not fixed by any paper (the classifiers only need to be accurate, see RESULTS):
- image: two conv blocks (conv 3x3, batch norm, ReLU, 2x2 max pool), dropout, FC, FC; while
  training, images are shifted by up to `max_shift` pixels (`random_shift` of skiptool/nn/augment.py:
  a cheap augmentation that matters with the few thousand MNIST images a 10k-only split leaves).
- speech: each utterance is mean/variance normalised over its own frames first (`utterance_cmvn`),
  so that generated FBank with a level offset are judged by their shape; padded frames are zeroed
  before every convolution and excluded from batch-norm statistics and pooling, so a batch's
  padding never changes a score. Batch norm after each convolution: on FSDD it reached 98.0% test
  accuracy in 8 epochs where the same model without it had 95.7% (see the report of the trainer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from skiptool.data.datasets import FeatsDataset, ImageFeatsDataset, collate, data_dir
from skiptool.nn.augment import random_shift
from skiptool.utils.errors import SkiptoolError


@dataclass
class ImageClassifierConfig:
    image_size: int = 28
    image_channels: int = 1
    num_classes: int = 10
    channels: list[int] = field(default_factory=lambda: [32, 64])  # one conv block each, 2x2 pooling
    hidden_dim: int = 128
    dropout: float = 0.3
    max_shift: int = 2  # training-time random translation in pixels; 0 = off

    def __post_init__(self) -> None:
        if min(self.image_size, self.image_channels, self.num_classes, self.hidden_dim) < 1 or not self.channels:
            raise ValueError("image_size, image_channels, num_classes, hidden_dim must be positive "
                             "and channels non-empty")
        if self.image_size % 2 ** len(self.channels):
            raise ValueError(f"image_size {self.image_size} is not divisible by 2^{len(self.channels)} "
                             f"(one 2x2 pooling per entry of channels)")
        if not 0 <= self.dropout < 1 or self.max_shift < 0:
            raise ValueError("dropout must be in [0, 1) and max_shift >= 0")


@dataclass
class SpeechClassifierConfig:
    speech_dim: int = 80
    num_classes: int = 10
    channels: list[int] = field(default_factory=lambda: [128, 128, 128])  # one conv layer each
    kernel_size: int = 5
    hidden_dim: int = 128
    dropout: float = 0.2
    utterance_cmvn: bool = True
    batch_norm: bool = True  # after every convolution, statistics over valid frames only
    labels: str = "utt2label"  # the feature dir's table of classes, e.g. utt2spk for a speaker classifier
    class_names: list[str] | None = None  # when that table holds names: the classes, in id order

    def __post_init__(self) -> None:
        if min(self.speech_dim, self.num_classes, self.hidden_dim) < 1 or not self.channels:
            raise ValueError("speech_dim, num_classes, hidden_dim must be positive and channels non-empty")
        if self.class_names is not None:
            self.class_names = [str(name) for name in self.class_names]
            if len(self.class_names) != self.num_classes or len(set(self.class_names)) != self.num_classes:
                raise ValueError(f"class_names must be num_classes ({self.num_classes}) distinct names, "
                                 f"got {len(self.class_names)} ({len(set(self.class_names))} distinct)")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same-length convolutions), got {self.kernel_size}")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must be in [0, 1)")


def _classification_loss(logits: Tensor, labels: Tensor, num_classes: int) -> tuple[Tensor, dict[str, float]]:
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise SkiptoolError(f"utt2label: label {int(labels.max())} is outside 0..{num_classes - 1}; "
                            f"set model_conf.num_classes to the number of classes")
    loss = F.cross_entropy(logits, labels)
    acc = (logits.argmax(-1) == labels).float().mean()
    return loss, {"loss": loss.item(), "acc": acc.item()}


def _require(batch: dict[str, Tensor], *names: str) -> None:
    missing = [n for n in names if n not in batch]
    if missing:
        raise SkiptoolError(f"batch: no {', '.join(missing)}; this classifier needs "
                            f"{' and '.join(names)} (labels come from the feature dir's utt2label)")


class ImageClassifier(nn.Module):
    def __init__(self, cfg: ImageClassifierConfig):
        super().__init__()
        self.cfg = cfg
        blocks: list[nn.Module] = []
        in_ch = cfg.image_channels
        for out_ch in cfg.channels:
            blocks += [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.BatchNorm2d(out_ch), nn.ReLU(), nn.MaxPool2d(2)]
            in_ch = out_ch
        self.features = nn.Sequential(*blocks)
        side = cfg.image_size // 2 ** len(cfg.channels)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(cfg.dropout), nn.Linear(in_ch * side * side, cfg.hidden_dim),
                                  nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden_dim, cfg.num_classes))

    def logits(self, batch: dict[str, Tensor]) -> Tensor:
        """Class scores (B, num_classes) of `batch["image"]` (B, C, H, W)."""
        _require(batch, "image")
        image = batch["image"]
        expected = (self.cfg.image_channels, self.cfg.image_size, self.cfg.image_size)
        if image.dim() != 4 or tuple(image.shape[1:]) != expected:
            raise SkiptoolError(f"image: expected (batch, {', '.join(map(str, expected))}), got "
                                f"{tuple(image.shape)}; set model_conf.image_size/image_channels")
        if self.training and self.cfg.max_shift:
            image = random_shift(image, self.cfg.max_shift)
        return self.head(self.features(image))

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        _require(batch, "image", "label")
        return _classification_loss(self.logits(batch), batch["label"], self.cfg.num_classes)


class SpeechClassifier(nn.Module):
    def __init__(self, cfg: SpeechClassifierConfig):
        super().__init__()
        self.cfg = cfg
        dims = [cfg.speech_dim, *cfg.channels]
        self.convs = nn.ModuleList(nn.Conv1d(i, o, cfg.kernel_size, padding=cfg.kernel_size // 2)
                                   for i, o in zip(dims[:-1], dims[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(o) if cfg.batch_norm else nn.Identity() for o in dims[1:])
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Sequential(nn.Linear(2 * dims[-1], cfg.hidden_dim), nn.ReLU(), nn.Dropout(cfg.dropout),
                                  nn.Linear(cfg.hidden_dim, cfg.num_classes))

    def logits(self, batch: dict[str, Tensor]) -> Tensor:
        """Class scores (B, num_classes) of `batch["speech"]` (B, T, D) with `speech_lengths` (B,)."""
        return self.head[3](self.head[2](self.embed(batch)))

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        """The hidden layer before the class scores (B, hidden_dim): for a speaker classifier, an
        utterance's voice, comparable between speakers it was not trained on."""
        _require(batch, "speech", "speech_lengths")
        speech, lengths = batch["speech"], batch["speech_lengths"]
        if speech.dim() != 3 or speech.size(-1) != self.cfg.speech_dim:
            raise SkiptoolError(f"speech: expected (batch, frames, {self.cfg.speech_dim}), got "
                                f"{tuple(speech.shape)}; set model_conf.speech_dim to the feature dimension")
        mask = (torch.arange(speech.size(1), device=speech.device)[None, :] < lengths[:, None]).unsqueeze(1)
        x = speech.transpose(1, 2)  # (B, D, T)
        if self.cfg.utterance_cmvn:
            x = masked_normalize(x, mask)
        for conv, norm in zip(self.convs, self.norms):
            x = self.dropout(F.relu(masked_batch_norm(norm, conv(x * mask), mask)))
        x = x.masked_fill(~mask, 0.0)
        frames = mask.sum(-1).clamp(min=1)
        mean = x.sum(-1) / frames
        peak = x.masked_fill(~mask, float("-inf")).amax(-1)
        return self.head[1](self.head[0](torch.cat([mean, peak], dim=-1)))

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        _require(batch, "speech", "speech_lengths", "label")
        return _classification_loss(self.logits(batch), batch["label"], self.cfg.num_classes)


def masked_batch_norm(norm: nn.Module, x: Tensor, mask: Tensor) -> Tensor:
    """`norm` (BatchNorm1d or Identity) applied with batch statistics of the valid frames only, so
    that padding neither shifts the statistics nor, in eval mode, the result. x: (B, C, T)."""
    if isinstance(norm, nn.Identity):
        return x
    valid = x.transpose(1, 2)[mask.squeeze(1)]  # (valid frames, C): BatchNorm1d's (N, C) input
    out = torch.zeros_like(x.transpose(1, 2))
    out[mask.squeeze(1)] = norm(valid)
    return out.transpose(1, 2)


def masked_normalize(x: Tensor, mask: Tensor, eps: float = 1e-5) -> Tensor:
    """Zero mean, unit variance over the valid frames of each utterance and dimension.
    x: (B, D, T), mask: (B, 1, T) bool."""
    frames = mask.sum(-1, keepdim=True).clamp(min=1)
    mean = (x * mask).sum(-1, keepdim=True) / frames
    var = (((x - mean) * mask) ** 2).sum(-1, keepdim=True) / frames
    return (x - mean) / torch.sqrt(var + eps)


@torch.no_grad()
def predict_labels(model: nn.Module, dataset: Dataset, batch_size: int = 256,
                   device: str | torch.device = "cpu") -> dict[str, int]:
    """{key: predicted class} for every item of a FeatsDataset/ImageFeatsDataset (labels unused)."""
    model = model.to(device).eval()
    predictions: list[int] = []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate):
        batch = {k: v.to(device) for k, v in batch.items()}
        predictions += model.logits(batch).argmax(-1).tolist()
    return dict(zip(dataset.keys, predictions))


@torch.no_grad()
def embed_utterances(model: SpeechClassifier, dataset: Dataset, batch_size: int = 256,
                     device: str | torch.device = "cpu") -> dict[str, np.ndarray]:
    """{key: SpeechClassifier.embed vector} for every item of a FeatsDataset."""
    model = model.to(device).eval()
    vectors: list[np.ndarray] = []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate):
        vectors += list(model.embed({k: v.to(device) for k, v in batch.items()}).cpu().numpy())
    return dict(zip(dataset.keys, vectors))


# ------------------------------------------------------------------------- registry hooks


def image_classifier_dataset(cfg: ImageClassifierConfig, data_dirs: dict[str, Path], train: bool,
                             seed: int) -> ImageFeatsDataset:
    dataset = ImageFeatsDataset(data_dir(data_dirs, "image", train, "image_classifier"), labels=True)
    expected = (cfg.image_channels, cfg.image_size, cfg.image_size)
    if dataset.shape != expected:
        raise SkiptoolError(f"{dataset.feats_dir}: images are {dataset.shape} (C, H, W) but the model takes "
                            f"{expected}; set model_conf.image_size/image_channels")
    return dataset


def speech_classifier_dataset(cfg: SpeechClassifierConfig, data_dirs: dict[str, Path], train: bool,
                              seed: int) -> FeatsDataset:
    dataset = FeatsDataset(data_dir(data_dirs, "speech", train, "speech_classifier"), labels=True,
                           label_table=cfg.labels, classes=cfg.class_names)
    if dataset.dim != cfg.speech_dim:
        raise SkiptoolError(f"{dataset.feats_dir}: features have {dataset.dim} dims but model_conf.speech_dim "
                            f"is {cfg.speech_dim}; set it to {dataset.dim}")
    return dataset


def build_image_classifier(cfg: Any) -> ImageClassifier:
    return ImageClassifier(cfg)


def build_speech_classifier(cfg: Any) -> SpeechClassifier:
    return SpeechClassifier(cfg)
