"""Images as features: read (PIL), convert to the configured channels, resize, scale to [0, 1].

Storage layout (other stages rely on it): each image is one float32 matrix of shape
(height, width * channels), the row-major (H, W, C) array with W and C merged, in a Kaldi ark
with `feats.scp`; `height`, `width` and `channels` are in the feature dir's conf.yaml.
`load_image_feats(matrix, height, width, channels)` turns a stored matrix back into (C, H, W).

Conversions: palette and bilevel images are expanded; an alpha channel (RGBA, LA, PA) is composited
over `alpha_background` (0 black, 1 white); 16-bit grayscale is scaled by 65535, float images
are clipped to [0, 1]; then to gray (ITU-R 601-2 luma, PIL's "L") or RGB as configured.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from skiptool.utils.errors import SkiptoolError

ResizeFilter = Literal["nearest", "box", "bilinear", "hamming", "bicubic", "lanczos"]
_FILTERS = {
    "nearest": Image.Resampling.NEAREST, "box": Image.Resampling.BOX, "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING, "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class ImageFeatsConfig:
    height: int = 28  # 28x28 gray for digits (MNIST); paper 000 uses 128x128 RGB
    width: int = 28
    channels: Literal[1, 3] = 1  # 1 gray, 3 RGB
    resize_filter: ResizeFilter = "bicubic"  # PIL filter; reducing filters are antialiased
    alpha_background: float = 0.0  # transparent pixels become this gray level (0 black .. 1 white)

    def __post_init__(self):
        if self.height < 1 or self.width < 1:
            raise ValueError(f"height and width must be >= 1, got {self.height}x{self.width}")
        if not 0.0 <= self.alpha_background <= 1.0:
            raise ValueError(f"alpha_background must be in [0, 1], got {self.alpha_background}")


def open_image(path: str | os.PathLike, key: str | None = None) -> Image.Image:
    """Open and fully decode an image, with one clear error for a missing or corrupt file."""
    who = f"{key} ({path})" if key else str(path)
    if not Path(path).is_file():
        raise SkiptoolError(f"{who}: image file not found; fix the path in img.scp or drop the key (skiptool data fix)")
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy() if img.mode != "P" else img.convert("RGBA" if "transparency" in img.info else "RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SkiptoolError(f"{who}: cannot read image ({reason}); replace the file or drop the key") from None


def _to_float_array(img: Image.Image, channels: int, background: float) -> np.ndarray:
    """(H, W, C) float32 in [0, 1] with the configured number of channels."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        gray = np.asarray(img, dtype=np.float32) / 65535.0
        arr = np.clip(gray, 0.0, 1.0)[..., None]
    elif img.mode == "F":
        arr = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)[..., None]
    else:
        if img.mode == "1":
            img = img.convert("L")
        if img.mode in ("LA", "PA", "RGBa", "La"):
            img = img.convert("RGBA")
        if img.mode == "RGBA":
            rgba = np.asarray(img, dtype=np.float32) / 255.0
            alpha = rgba[..., 3:4]
            arr = rgba[..., :3] * alpha + background * (1.0 - alpha)
        elif img.mode == "L":
            arr = np.asarray(img, dtype=np.float32)[..., None] / 255.0
        else:
            arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    if channels == 1 and arr.shape[-1] == 3:
        # ITU-R 601-2 luma, the weights of PIL's convert("L")
        arr = arr @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        arr = arr[..., None]
    elif channels == 3 and arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return arr.astype(np.float32)


def _resize(arr: np.ndarray, height: int, width: int, resize_filter: str) -> np.ndarray:
    if arr.shape[:2] == (height, width):
        return arr
    planes = [np.asarray(Image.fromarray(arr[..., c], mode="F").resize((width, height), _FILTERS[resize_filter]))
              for c in range(arr.shape[-1])]
    return np.clip(np.stack(planes, axis=-1), 0.0, 1.0)


def image_to_array(img: Image.Image, cfg: ImageFeatsConfig) -> np.ndarray:
    """A PIL image -> (height, width, channels) float32 in [0, 1]."""
    arr = _to_float_array(img, cfg.channels, cfg.alpha_background)
    return _resize(arr, cfg.height, cfg.width, cfg.resize_filter).astype(np.float32)


def load_image(path: str | os.PathLike, cfg: ImageFeatsConfig, key: str | None = None) -> np.ndarray:
    """Read an image file -> (height, width, channels) float32 in [0, 1]."""
    return image_to_array(open_image(path, key), cfg)


def image_to_matrix(arr: np.ndarray) -> np.ndarray:
    """(H, W, C) -> the stored (H, W * C) matrix."""
    h, w, c = arr.shape
    return np.ascontiguousarray(arr.reshape(h, w * c), dtype=np.float32)


def load_image_feats(matrix: np.ndarray, height: int, width: int, channels: int) -> np.ndarray:
    """A stored (H, W * C) matrix -> (C, H, W) float32 array."""
    matrix = np.asarray(matrix)
    if matrix.shape != (height, width * channels):
        raise SkiptoolError(f"image feature matrix has shape {tuple(matrix.shape)}, expected "
                            f"({height}, {width * channels}) for {height}x{width}x{channels} from conf.yaml; "
                            f"the features and their conf.yaml do not belong together")
    return np.ascontiguousarray(matrix.reshape(height, width, channels).transpose(2, 0, 1), dtype=np.float32)
