"""Readers for what the metrics score: Kaldi text tables, label tables, vectors and images.

Every reader turns a user's mistake (missing file, malformed line, duplicate key, wrong shape)
into a `SkiptoolError` naming the file and key.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import jiwer
import kaldiio
import numpy as np
from PIL import Image, UnidentifiedImageError

from skiptool.data.datadir import read_table, read_table_lines
from skiptool.utils.errors import SkiptoolError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# A kaldiio scp value points into an ark: `path.ark:1234` (optionally with a slice `[..]`).
_ARK_POINTER = re.compile(r":\d+(\[[^\]]*\])?$")

_NORMALIZE = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(),
                            jiwer.RemoveMultipleSpaces(), jiwer.Strip()])


def normalize_text(text: str) -> str:
    """Lowercase, strip punctuation, squeeze spaces (the `--normalize` option of text metrics)."""
    return _NORMALIZE(text)


def read_text(path: str | os.PathLike, what: str = "text") -> dict[str, str]:
    """A Kaldi `text` file as {key: transcript}; a transcript may be empty (nothing recognised)."""
    _require_file(path, what)
    return read_table(path)


def read_multi_text(paths: Sequence[str | os.PathLike]) -> dict[str, list[str]]:
    """References for BLEU: {key: [ref, ...]} from one or more Kaldi `text` files.

    A key repeated inside a file, or present in several files, gives that key several
    references (captions come five per image); empty references are dropped.
    """
    refs: dict[str, list[str]] = {}
    for path in paths:
        _require_file(path, "reference text")
        for _, key, value in read_table_lines(path):
            refs.setdefault(key, [])
            if value:
                refs[key].append(value)
    empty = [k for k, v in refs.items() if not v]
    if empty:
        raise SkiptoolError(f"{paths[0]}: key '{empty[0]}' has no reference words "
                            f"({len(empty)} such keys); remove them or give their references")
    return refs


def read_labels(path: str | os.PathLike, what: str = "labels") -> dict[str, str]:
    """A `utt2label`-like table {key: label}; every line must have a label."""
    _require_file(path, what)
    labels: dict[str, str] = {}
    for lineno, key, value in read_table_lines(path):
        if not value:
            raise SkiptoolError(f"{path}: line {lineno} ('{key}') has no label; "
                                f"each line must be '<key> <label>'")
        if len(value.split()) > 1:
            raise SkiptoolError(f"{path}: line {lineno} ('{key}') has more than one label: '{value}'")
        if key in labels:
            raise SkiptoolError(f"{path}: duplicate key '{key}' (line {lineno}); run `skiptool data fix`")
        labels[key] = value
    return labels


def read_matches(path: str | os.PathLike) -> dict[str, set[str]]:
    """Ground truth for retrieval: `<query key> <relevant candidate key> [more ...]` per line.

    A query may also be repeated on several lines; its relevant keys are merged.
    """
    _require_file(path, "matches file")
    matches: dict[str, set[str]] = {}
    for lineno, key, value in read_table_lines(path):
        if not value:
            raise SkiptoolError(f"{path}: line {lineno} ('{key}') names no relevant candidate; "
                                f"each line must be '<query key> <candidate key> ...'")
        matches.setdefault(key, set()).update(value.split())
    return matches


def check_hyp_keys(ref: Mapping[str, object], hyp: Mapping[str, object], hyp_name: str,
                   ref_name: str) -> list[str]:
    """Hypothesis keys must all be reference keys; returns the reference keys with no hypothesis."""
    extra = [k for k in hyp if k not in ref]
    if extra:
        shown = ", ".join(extra[:5]) + (", ..." if len(extra) > 5 else "")
        raise SkiptoolError(f"{hyp_name}: {len(extra)} key(s) not in the reference {ref_name}: {shown}; "
                            f"score against the matching reference or subset the hypotheses")
    return [k for k in ref if k not in hyp]


# ---------------------------------------------------------------------------------- arrays


def load_arrays(path: str | os.PathLike, row_keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Arrays keyed by utterance from a kaldiio `.scp`/`.ark`, an `.npz` or an `.npy`.

    An `.npy` holds one array per row and has no keys: its rows are keyed by `row_keys` (the
    reference's keys in file order) when given, else by their index "0", "1", ...
    """
    path = Path(path)
    _require_file(path, "array file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = _np_load(path)
        if array.ndim < 2:
            raise SkiptoolError(f"{path}: expected one row per utterance (2-D or more), got shape {array.shape}")
        if row_keys is None:
            row_keys = [str(i) for i in range(len(array))]
        elif len(row_keys) != len(array):
            raise SkiptoolError(f"{path}: {len(array)} rows but the reference has {len(row_keys)} keys; "
                                f"an .npy must hold one row per reference key, in the reference's order")
        return {key: array[i] for i, key in enumerate(row_keys)}
    if suffix == ".npz":
        archive = _np_load(path)
        return {key: archive[key] for key in archive.files}
    if suffix == ".ark":
        try:
            return {key: np.asarray(value) for key, value in kaldiio.load_ark(str(path))}
        except Exception as e:  # kaldiio raises many types on a corrupt ark
            raise SkiptoolError(f"{path}: not a readable Kaldi ark ({e}); regenerate it") from None
    return _load_scp(path)


def _load_scp(path: Path) -> dict[str, np.ndarray]:
    rows = read_table_lines(path)
    for lineno, key, value in rows:
        if not value:
            raise SkiptoolError(f"{path}: line {lineno} ('{key}') has no ark pointer; "
                                f"each line must be '<key> <file.ark:offset>'")
    loader = kaldiio.load_scp(str(path))
    arrays = {}
    for lineno, key, value in rows:
        if key in arrays:
            raise SkiptoolError(f"{path}: duplicate key '{key}' (line {lineno}); run `skiptool data fix`")
        try:
            with warnings.catch_warnings():  # kaldiio warns before raising; our error says it all
                warnings.simplefilter("ignore")
                arrays[key] = np.asarray(loader[key])
        except Exception as e:  # missing or corrupt ark: name the key and file
            raise SkiptoolError(f"{path}: cannot read '{key}' from {value} ({e}); regenerate the features") from None
    return arrays


def _np_load(path: Path):
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise SkiptoolError(f"{path}: not a readable numpy file ({e})") from None


def load_vectors(path: str | os.PathLike, row_keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """One vector per key (float64): 1-D arrays, or 1 x D matrices as kaldiio often stores them."""
    vectors = {}
    for key, array in load_arrays(path, row_keys).items():
        if array.ndim == 2 and array.shape[0] == 1:
            array = array[0]
        if array.ndim != 1:
            raise SkiptoolError(f"{path}: '{key}' has shape {array.shape}, expected one vector per key; "
                                f"pool frames into one embedding before scoring")
        vectors[key] = array.astype(np.float64)
    if not vectors:
        raise SkiptoolError(f"{path}: holds no vectors")
    dims = {v.shape[0] for v in vectors.values()}
    if len(dims) > 1:
        raise SkiptoolError(f"{path}: vectors of different sizes {sorted(dims)}; all must have one size")
    bad = [k for k, v in vectors.items() if not np.all(np.isfinite(v))]
    if bad:
        raise SkiptoolError(f"{path}: '{bad[0]}' has NaN or Inf values ({len(bad)} such keys)")
    return vectors


def stack(vectors: Mapping[str, np.ndarray], keys: Sequence[str]) -> np.ndarray:
    return np.stack([vectors[k] for k in keys]) if keys else np.zeros((0, 0))


# ---------------------------------------------------------------------------------- images


def load_images(path: str | os.PathLike, data_range: float | None = None) -> dict[str, np.ndarray]:
    """Images keyed by name, as float32 arrays scaled to [0, 1].

    `path` is a folder of image files (keyed by file stem), an `img.scp` (`<key> <image path>`),
    or arrays through kaldiio (`feats.scp`, `.ark`) or numpy (`.npz`). Integer images are divided
    by their type's maximum (255 for 8-bit); float arrays must already be in [0, 1] unless
    `data_range` (e.g. 255) says what their maximum is.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise SkiptoolError(f"{path}: folder has no image files ({', '.join(IMAGE_SUFFIXES)})")
        raw = {}
        for f in files:
            if f.stem in raw:
                raise SkiptoolError(f"{path}: two images named '{f.stem}' (different extensions); keep one")
            raw[f.stem] = _read_image_file(f, f.stem)
    elif path.suffix.lower() == ".scp" and _is_image_scp(path):
        raw = {}
        for lineno, key, value in read_table_lines(path):
            if not value:
                raise SkiptoolError(f"{path}: line {lineno} ('{key}') has no image path")
            if key in raw:
                raise SkiptoolError(f"{path}: duplicate key '{key}' (line {lineno}); run `skiptool data fix`")
            raw[key] = _read_image_file(Path(value), key)
    else:
        raw = load_arrays(path)
    return {key: _to_unit_range(array, data_range, f"{path}: '{key}'") for key, array in raw.items()}


def _is_image_scp(path: Path) -> bool:
    """img.scp lists image files; a kaldiio scp points into arks (`file.ark:123`)."""
    rows = read_table_lines(path)
    if not rows:
        raise SkiptoolError(f"{path}: empty file; expected '<key> <image path>' lines")
    return not _ARK_POINTER.search(rows[0][2])


def _read_image_file(path: Path, key: str) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "P", "PA"):
                # PSNR is defined on the colour channels; drop alpha, expand palettes.
                img = img.convert("RGB" if img.mode in ("RGBA", "P", "PA") else "L")
            elif img.mode == "1":
                img = img.convert("L")
            return np.asarray(img)
    except FileNotFoundError:
        raise SkiptoolError(f"{key} ({path}): image file not found; check the path") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise SkiptoolError(f"{key} ({path}): cannot read image ({e}); replace or remove it") from None


def _to_unit_range(array: np.ndarray, data_range: float | None, who: str) -> np.ndarray:
    array = np.asarray(array)
    if data_range is not None:
        scaled = array.astype(np.float32) / np.float32(data_range)
    elif np.issubdtype(array.dtype, np.integer):
        scaled = array.astype(np.float32) / np.float32(np.iinfo(array.dtype).max)
    elif np.issubdtype(array.dtype, np.floating):
        scaled = array.astype(np.float32)
    else:
        raise SkiptoolError(f"{who}: unsupported array type {array.dtype}")
    if not np.all(np.isfinite(scaled)):
        raise SkiptoolError(f"{who}: has NaN or Inf values")
    low, high = float(scaled.min(initial=0.0)), float(scaled.max(initial=0.0))
    if low < -1e-3 or high > 1 + 1e-3:
        hint = "pass --data-range 255 for 0..255 floats" if high <= 255 else "rescale the images"
        raise SkiptoolError(f"{who}: values span [{low:.3g}, {high:.3g}] after scaling, outside [0, 1]; {hint}")
    return scaled


def _require_file(path: str | os.PathLike, what: str) -> None:
    p = Path(path)
    if not p.exists():
        raise SkiptoolError(f"{p}: {what} not found; check the path")
    if p.is_dir():
        raise SkiptoolError(f"{p}: is a folder; expected a {what} file")
