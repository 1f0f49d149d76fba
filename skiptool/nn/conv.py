"""Small convolutional image encoders/decoders: strided convolutions down to a vector and
fully-connected layers plus transposed convolutions back up to an image.

Each strided layer uses kernel k, stride 2 and padding (k - 2) / 2, so it halves (encoder) or
doubles (decoder) the spatial size exactly: 28 -> 14 -> 7 and back with k = 4.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn


def _same_scale_padding(kernel_size: int) -> int:
    if kernel_size < 2 or kernel_size % 2:
        raise ValueError(f"kernel_size must be even and >= 2 to halve/double exactly, got {kernel_size}")
    return (kernel_size - 2) // 2


class ConvEncoder2d(nn.Module):
    """Strided conv layers (ReLU after each), flattened, then one fully-connected ReLU layer.

    (B, in_channels, S, S) -> (B, out_dim); S must be divisible by 2 ** len(channels).
    """

    def __init__(self, in_channels: int, image_size: int, channels: Sequence[int], out_dim: int,
                 kernel_size: int = 4):
        super().__init__()
        scale = 2 ** len(channels)
        if image_size % scale:
            raise ValueError(f"image_size {image_size} is not divisible by {scale} "
                             f"({len(channels)} stride-2 layers)")
        padding = _same_scale_padding(kernel_size)
        layers: list[nn.Module] = []
        prev = in_channels
        for ch in channels:
            layers += [nn.Conv2d(prev, ch, kernel_size, stride=2, padding=padding), nn.ReLU()]
            prev = ch
        side = image_size // scale
        layers += [nn.Flatten(), nn.Linear(prev * side * side, out_dim), nn.ReLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image)


class DeconvDecoder2d(nn.Module):
    """Fully-connected ReLU layers, a reshape to (channels[0], S0, S0), then stride-2 transposed
    convolutions to channels[1:] (ReLU between them, none after the last: it returns raw
    outputs, e.g. logits or means).

    (B, in_dim) -> (B, channels[-1], S0 * 2 ** (len(channels) - 1), ...).
    """

    def __init__(self, in_dim: int, hidden_dims: Sequence[int], start_size: int,
                 channels: Sequence[int], kernel_size: int = 4):
        super().__init__()
        if len(channels) < 2:
            raise ValueError("channels needs the reshaped channel count and at least one output layer")
        padding = _same_scale_padding(kernel_size)
        self.start_shape = (channels[0], start_size, start_size)
        layers: list[nn.Module] = []
        prev = in_dim
        for dim in [*hidden_dims, channels[0] * start_size * start_size]:
            layers += [nn.Linear(prev, dim), nn.ReLU()]
            prev = dim
        layers.append(nn.Unflatten(1, self.start_shape))
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            layers.append(nn.ConvTranspose2d(c_in, c_out, kernel_size, stride=2, padding=padding))
            if i < len(channels) - 2:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)
