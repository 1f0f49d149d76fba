"""MNIST written digits from the original IDX files, written as PNGs with image data dirs.

Files read from `corpus_dir`, each plain or gzipped (``.gz``)::

    t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte     (required)
    train-images-idx3-ubyte  train-labels-idx1-ubyte    (optional; both or neither)

Splits (all seeded and stratified by digit, so each split keeps MNIST's class balance):

* with the 60k training files: ``dev`` = `dev_size` (1000) images drawn from train, ``train`` =
  the other 59000, ``test`` = the 10k t10k images (the official test set);
* with only the t10k files (as in ../shared/data/mnist): the 10000 images are split into
  ``train`` / ``dev`` / ``test`` = 8000 / 1000 / 1000 (`dev_size`, `test_size`).

Output: ``out_dir/images/<split>/<key>.png`` (28x28, 8-bit gray) and data dirs
``out_dir/{train,dev,test}`` holding ``img.scp`` (absolute paths) and ``utt2label``. Keys name
the source file and index: ``mnist-t10k-00042`` is image 42 of the t10k file. Instead of md5
sums, the IDX magic numbers, shapes and sizes are checked, with an error naming the file.
"""

from __future__ import annotations

import gzip
import os
import shutil
import zlib
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image

from skiptool.data.datadir import DataDir, make_temp_dir, replace_dir
from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import check_writable
from skiptool.utils.progress import track

SPLITS = ("train", "dev", "test")
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801  # unsigned bytes, 3 and 1 dimensions
MNIST_LAYOUT = ("t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] "
                "(train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] optional)")


def read_idx(path: str | os.PathLike, magic: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes (plain or gzipped) after checking its magic and size.

    The format (big-endian magic 0x0000080N, N dimension sizes as uint32, then the bytes) is
    parsed with numpy by hand: no installed library reads IDX (torchvision is not a dependency).
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise SkiptoolError(f"{path}: cannot read ({e}); download the file again") from None
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        found = f"0x{int.from_bytes(raw[:4], 'big'):08x}" if len(raw) >= 4 else "nothing"
        raise SkiptoolError(f"{path}: not an IDX file of {ndim}-d unsigned bytes (magic 0x{magic:08x}, "
                            f"found {found}); check that it is the MNIST file it is named after")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    if len(raw) - header != int(np.prod(shape)):
        raise SkiptoolError(f"{path}: header says shape {shape} ({int(np.prod(shape))} bytes) but holds "
                            f"{len(raw) - header} bytes; the file is truncated or corrupt, download it again")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_mnist_part(corpus_dir: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 28, 28], labels int64 [N]) of part "train" or "t10k"."""
    images = read_idx(_find(corpus_dir, f"{part}-images-idx3-ubyte"), IMAGES_MAGIC)
    labels_path = _find(corpus_dir, f"{part}-labels-idx1-ubyte")
    labels = read_idx(labels_path, LABELS_MAGIC).astype(np.int64)
    if images.shape[1:] != (28, 28):
        raise SkiptoolError(f"{corpus_dir}: {part} images are {images.shape[1]}x{images.shape[2]}, "
                            "MNIST images are 28x28")
    if len(images) != len(labels):
        raise SkiptoolError(f"{labels_path}: {len(labels)} labels for {len(images)} images; "
                            "the images and labels files do not belong together")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise SkiptoolError(f"{labels_path}: labels outside 0-9; this is not an MNIST labels file")
    return images, labels


def _find(corpus_dir: Path, name: str) -> Path:
    for candidate in (corpus_dir / name, corpus_dir / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise SkiptoolError(f"{corpus_dir}: {name}[.gz] not found; expected {MNIST_LAYOUT}")


def has_part(corpus_dir: Path, part: str) -> bool:
    return any((corpus_dir / f"{part}-{kind}{gz}").is_file()
               for kind in ("images-idx3-ubyte", "labels-idx1-ubyte") for gz in ("", ".gz"))


def stratified_split(labels: np.ndarray, sizes: Mapping[str, int], seed: int) -> dict[str, np.ndarray]:
    """Indices of held-out splits of the given sizes, the rest as "train"; seeded, by label."""
    from sklearn.model_selection import train_test_split  # lazy: sklearn takes seconds to import

    remaining = np.arange(len(labels))
    splits = {}
    for name, size in sizes.items():
        if size <= 0 or size >= len(remaining):
            raise SkiptoolError(f"{name} size {size}: must be between 1 and {len(remaining) - 1} "
                                f"for {len(labels)} images")
        try:
            remaining, held = train_test_split(remaining, test_size=size, random_state=seed,
                                               stratify=labels[remaining])
        except ValueError as e:  # e.g. fewer held-out images than classes, or a class of one image
            raise SkiptoolError(f"{name} size {size}: no stratified split of {len(remaining)} images "
                                f"possible ({e}); choose another size") from None
        splits[name] = np.sort(held)
    return {"train": np.sort(remaining), **splits}


def write_image_splits(out_dir: str | os.PathLike, images: np.ndarray, labels: np.ndarray,
                       keys: Sequence[str], splits: Mapping[str, np.ndarray], overwrite: bool = False,
                       quiet: bool | None = None) -> dict[str, DataDir]:
    """Write images[idx] as out_dir/images/<split>/<key>.png and data dirs out_dir/<split> with
    img.scp (absolute paths) and utt2label, for each split -> indices; returns the data dirs."""
    out_dir = Path(out_dir).resolve()
    check_image_outputs_writable(out_dir, splits, overwrite)
    parts = {}
    for split, indices in splits.items():
        image_dir = out_dir / "images" / split
        # PNGs go to a scratch folder renamed into place when complete, so that a killed run
        # leaves no folder that looks finished.
        image_dir.parent.mkdir(parents=True, exist_ok=True)
        scratch = make_temp_dir(image_dir)
        try:
            for i in track(indices, total=len(indices), description=f"images {split}", quiet=quiet, unit="img"):
                Image.fromarray(images[i]).save(scratch / f"{keys[i]}.png")
            replace_dir(scratch, image_dir)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        parts[split] = DataDir({"img.scp": {keys[i]: str(image_dir / f"{keys[i]}.png") for i in indices},
                                "utt2label": {keys[i]: str(int(labels[i])) for i in indices}})
    for split, data_dir in parts.items():  # the data dirs last: each names images that exist
        data_dir.write(out_dir / split, overwrite=overwrite)
    return parts


def check_image_outputs_writable(out_dir: Path, splits: Sequence[str], overwrite: bool) -> None:
    """Fail before any work when a data dir or image folder exists and --overwrite was not given."""
    for split in splits:
        check_writable(out_dir / split, overwrite, "data dir")
        check_writable(out_dir / "images" / split, overwrite, "image folder")


def prepare_mnist(corpus_dir: str | os.PathLike, out_dir: str | os.PathLike, *, dev_size: int = 1000,
                  test_size: int = 1000, seed: int = 0, overwrite: bool = False,
                  quiet: bool | None = None) -> dict[str, DataDir]:
    """Write MNIST PNGs and image data dirs out_dir/{train,dev,test}; returns the data dirs.

    `test_size` applies only when the 60k training files are absent (see the module docstring).
    """
    check_image_outputs_writable(Path(out_dir).resolve(), SPLITS, overwrite)
    images, labels, keys, splits = load_mnist_splits(corpus_dir, dev_size=dev_size, test_size=test_size, seed=seed)
    return write_image_splits(out_dir, images, labels, keys, splits, overwrite, quiet)


def load_mnist_splits(corpus_dir: str | os.PathLike, *, dev_size: int = 1000, test_size: int = 1000,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, np.ndarray]]:
    """(images, labels, keys, {split: indices}) of the MNIST files in `corpus_dir`, nothing written."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise SkiptoolError(f"{corpus_dir}: MNIST directory not found; expected {MNIST_LAYOUT}")
    t10k_images, t10k_labels = load_mnist_part(corpus_dir, "t10k")
    t10k_keys = [f"mnist-t10k-{i:05d}" for i in range(len(t10k_images))]
    if not has_part(corpus_dir, "train"):
        splits = stratified_split(t10k_labels, {"dev": dev_size, "test": test_size}, seed)
        return t10k_images, t10k_labels, t10k_keys, splits

    train_images, train_labels = load_mnist_part(corpus_dir, "train")
    train_split = stratified_split(train_labels, {"dev": dev_size}, seed)
    images = np.concatenate([train_images, t10k_images])
    labels = np.concatenate([train_labels, t10k_labels])
    keys = [f"mnist-train-{i:05d}" for i in range(len(train_images))] + t10k_keys
    return images, labels, keys, {**train_split, "test": len(train_images) + np.arange(len(t10k_images))}
