"""Data augmentation for training: `random_shift` (a function: whole-pixel translations),
`resample_time` (a function: one feature sequence at another length), `RandomAffine` (images) and
`RandomTempo` (feature sequences), layers of the model active in training
mode only, the shape of ESPnet2's SpecAug module, so that dev losses, decoding and scoring see the
data unchanged. The random draws come from torch's global generator, which the trainer
checkpoints, so a resumed run stays bit-identical.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def random_shift(image: Tensor, max_shift: int) -> Tensor:
    """Translate each image by a random whole number of pixels in [-max_shift, max_shift] along
    each axis, filling with zeros (torch's global RNG)."""
    b, _, h, w = image.shape
    padded = F.pad(image, (max_shift,) * 4)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, b)).tolist()
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(b)])


class RandomAffine(nn.Module):
    """A random rotation (+-`degrees`), isotropic scaling (1 +- `scale`) and translation
    (+-`translate` of the side, per axis) of every image of a batch (B, C, H, W), drawn uniformly
    and independently per image; pixels brought in from outside the image are 0 (MNIST's
    background). torchvision's RandomAffine does the same per image on PIL images or tensors; here
    one batched `affine_grid` + `grid_sample` warps the whole batch at once, on the model's device.
    Identity when every range is 0 or in eval mode.
    """

    def __init__(self, degrees: float = 0.0, translate: float = 0.0, scale: float = 0.0):
        super().__init__()
        if degrees < 0 or not 0 <= translate < 0.5 or not 0 <= scale < 1:
            raise ValueError(f"RandomAffine needs degrees >= 0, 0 <= translate < 0.5 and 0 <= scale < 1; "
                             f"got degrees={degrees}, translate={translate}, scale={scale}")
        self.degrees, self.translate, self.scale = degrees, translate, scale

    @property
    def active(self) -> bool:
        return bool(self.degrees or self.translate or self.scale)

    def forward(self, images: Tensor) -> Tensor:
        if not (self.training and self.active):
            return images
        batch = images.size(0)

        def uniform(*shape: int) -> Tensor:  # U(-1, 1)
            return torch.rand(*shape, device=images.device, dtype=images.dtype) * 2 - 1

        angle = uniform(batch) * math.radians(self.degrees)
        zoom = 1 + uniform(batch) * self.scale
        # theta maps output to input coordinates in [-1, 1]: a shift of t of the side is 2t there
        shift = uniform(batch, 2) * 2 * self.translate
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], -1),
                             torch.stack([sin, cos, shift[:, 1]], -1)], 1)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def extra_repr(self) -> str:
        return f"degrees={self.degrees}, translate={self.translate}, scale={self.scale}"


def resample_time(frames: Tensor, length: int) -> Tensor:
    """A (T, D) feature sequence resampled along time to `length` frames by linear interpolation
    between frames (the first and last frames kept): the same content faster or slower."""
    old = frames.size(0)
    return F.interpolate(frames.t().unsqueeze(0), size=length, mode="linear", align_corners=old > 1)[0].t()


class RandomTempo(nn.Module):
    """Resample every utterance of a padded batch (B, T, D) along time by its own factor drawn
    uniformly from [1 - `rate`, 1 + `rate`] (new length round(length * factor), at least 1; linear
    interpolation between frames), so that the same content comes at other durations: a tempo
    change of the features, as Kaldi's and ESPnet's speed perturbation does to waveforms (which
    also shifts pitch, and would mean a feature pass per factor). Returns the new padded batch and
    lengths. Written here because torchaudio's TimeStretch needs complex spectrograms and
    ESPnet2's TimeWarp warps around one point of a batch-wide length. Identity at rate 0 or in
    eval mode.
    """

    def __init__(self, rate: float = 0.0):
        super().__init__()
        if not 0 <= rate < 1:
            raise ValueError(f"RandomTempo needs 0 <= rate < 1, got rate={rate}")
        self.rate = rate

    def forward(self, speech: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        if not (self.training and self.rate):
            return speech, lengths
        factors = 1 + (torch.rand(len(lengths), dtype=torch.float64) * 2 - 1) * self.rate
        new_lengths = (lengths.cpu().double() * factors).round().clamp(min=1).long()
        out = speech.new_zeros(speech.size(0), int(new_lengths.max()), speech.size(2))
        for i, (old, new) in enumerate(zip(lengths.tolist(), new_lengths.tolist())):
            out[i, :new] = resample_time(speech[i, :old], new)
        return out, new_lengths.to(lengths)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"
