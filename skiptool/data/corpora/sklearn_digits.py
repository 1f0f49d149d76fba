"""scikit-learn's bundled 8x8 digits (UCI optdigits test part, 1797 images), made MNIST-like.

The offline fallback for written digits: no download, the data ship inside scikit-learn.
Each 8x8 image (values 0..16) is scaled to 0..255, enlarged to 20x20 with PIL's bilinear
filter and centred in a 28x28 black frame, as MNIST centres a 20x20 digit in 28x28.
Split seeded and stratified by digit into train/dev/test (by default 80/10/10%: 1437/180/180).
Output layout as MNIST's (`skiptool.data.corpora.mnist`): ``out_dir/images/<split>/<key>.png``
and data dirs with ``img.scp`` + ``utt2label``; keys ``sklearn-digits-0042``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from skiptool.data.corpora.mnist import SPLITS, check_image_outputs_writable, stratified_split, write_image_splits
from skiptool.data.datadir import DataDir


def upscale_to_mnist(digit_8x8: np.ndarray) -> np.ndarray:
    """One 8x8 image with values 0..16 -> 28x28 uint8, the digit as a 20x20 block in the centre."""
    scaled = Image.fromarray(np.asarray(digit_8x8, dtype=np.float32) * (255.0 / 16.0))
    block = np.asarray(scaled.resize((20, 20), Image.Resampling.BILINEAR))
    frame = np.zeros((28, 28), dtype=np.uint8)
    frame[4:24, 4:24] = np.clip(np.rint(block), 0, 255).astype(np.uint8)
    return frame


def prepare_sklearn_digits(out_dir: str | os.PathLike, *, dev_fraction: float = 0.1,
                           test_fraction: float = 0.1, seed: int = 0, overwrite: bool = False,
                           quiet: bool | None = None) -> dict[str, DataDir]:
    """Write the upscaled digits as PNGs with image data dirs out_dir/{train,dev,test}; returns them."""
    check_image_outputs_writable(Path(out_dir).resolve(), SPLITS, overwrite)
    images, labels, keys, splits = load_sklearn_digits_splits(dev_fraction=dev_fraction,
                                                              test_fraction=test_fraction, seed=seed)
    return write_image_splits(out_dir, images, labels, keys, splits, overwrite, quiet)


def load_sklearn_digits_splits(*, dev_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
                               ) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, np.ndarray]]:
    """(images 28x28 uint8, labels, keys, {split: indices}) of the upscaled digits, nothing written."""
    from sklearn.datasets import load_digits  # lazy: sklearn takes seconds to import

    digits = load_digits()
    images = np.stack([upscale_to_mnist(d) for d in digits.images])
    labels = digits.target.astype(np.int64)
    keys = [f"sklearn-digits-{i:04d}" for i in range(len(images))]
    sizes = {"dev": round(dev_fraction * len(images)), "test": round(test_fraction * len(images))}
    return images, labels, keys, stratified_split(labels, sizes, seed)
