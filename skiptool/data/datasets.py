"""Datasets over feature dirs (written by `skiptool feats`), the same-class pairing of paper 004,
and the collate function that pads speech.

    speech = FeatsDataset("dump/fbank/train")          # items {key, speech (T, D), label}
    images = ImageFeatsDataset("dump/image/train")     # items {key, image (C, H, W), label}
    pairs = SameClassPairs(speech, images, seed=0)     # items {key, image_key, speech, image, label}
    pairs.set_epoch(3)                                 # a new random same-class image per utterance
    loader = DataLoader(pairs, batch_size=256, collate_fn=collate)

A feature dir holds `feats.scp` (+ ark, read with kaldiio), `conf.yaml` (the feature config;
image dirs give `height`, `width`, `channels`), and copies of the data-dir tables, of which
`utt2label` (an integer class per utterance, e.g. the digit) gives the labels, or another table
of names (e.g. `utt2spk`) with the list of class names that numbers them. Features are read
into memory once, when the dataset is made: a digit corpus is tens of MB, and every later epoch
then costs no disk reads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import kaldiio
import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from skiptool.data.datadir import read_table
from skiptool.utils.config import read_yaml
from skiptool.utils.errors import SkiptoolError

# Item entries that are variable-length sequences (T, D): `collate` pads them and adds <name>_lengths.
SEQUENCE_KEYS = ("speech", "style_speech")
IMAGE_CONF_KEYS = ("height", "width", "channels")


def data_dir(data_dirs: Mapping[str, Path], name: str, train: bool, model: str) -> Path:
    """The dir given as `--data NAME=DIR` (or `--dev-data` when not `train`), or a user error."""
    flag = "--data" if train else "--dev-data"
    if name not in data_dirs:
        given = ", ".join(f"{k}=..." for k in data_dirs) or "nothing"
        raise SkiptoolError(f"{flag} {name}=DIR: missing; model '{model}' needs the {name} feature dir "
                            f"(got {given})")
    return Path(data_dirs[name])


def _read_feature_dir(feats_dir: Path) -> tuple[list[str], list[np.ndarray], dict]:
    """Keys, matrices (in feats.scp order) and conf.yaml ({} when absent) of a feature dir."""
    if not feats_dir.is_dir():
        raise SkiptoolError(f"{feats_dir}: feature dir not found; make it with `skiptool feats`")
    scp = feats_dir / "feats.scp"
    if not scp.is_file():
        raise SkiptoolError(f"{scp}: not found; {feats_dir} is not a feature dir (run `skiptool feats`)")
    conf = read_yaml(feats_dir / "conf.yaml") if (feats_dir / "conf.yaml").is_file() else {}
    keys, mats = [], []
    try:
        for key, mat in kaldiio.load_scp_sequential(str(scp)):
            keys.append(key)
            mats.append(np.array(mat, dtype=np.float32))  # a writable copy, not a view of the ark
    except Exception as e:  # kaldiio raises many types (OSError, ValueError, struct.error...)
        where = f" after key '{keys[-1]}'" if keys else ""
        raise SkiptoolError(f"{scp}: cannot read the features{where} ({type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else 'corrupt ark'}); "
                            f"re-run `skiptool feats` for this dir") from None
    if not keys:
        raise SkiptoolError(f"{scp}: no features; re-run `skiptool feats` on a non-empty data dir")
    if len(set(keys)) != len(keys):
        raise SkiptoolError(f"{scp}: duplicate keys; run `skiptool data fix` and make the features again")
    return keys, mats, conf


def _read_labels(feats_dir: Path, keys: Sequence[str], labels: bool | None, table: str = "utt2label",
                 classes: Sequence[str] | None = None) -> list[int] | None:
    """Integer labels from `table` (utt2label: class ids; with `classes`, names numbered by their
    place in it); None when not wanted, or not present and not required."""
    path = feats_dir / table
    if labels is False or (labels is None and not path.is_file()):
        return None
    if not path.is_file():
        raise SkiptoolError(f"{path}: not found; this model needs a class label per utterance "
                            f"(copy {table} from the data dir into the feature dir)")
    table_values = read_table(path)
    class_id = {name: i for i, name in enumerate(classes)} if classes is not None else None
    out = []
    for key in keys:
        if key not in table_values:
            raise SkiptoolError(f"{path}: no label for '{key}' of feats.scp; run `skiptool data fix`")
        value = table_values[key]
        if class_id is not None:
            if value not in class_id:
                raise SkiptoolError(f"{path}: '{value}' of '{key}' is not one of the model's "
                                    f"{len(class_id)} classes (model_conf.class_names)")
            out.append(class_id[value])
            continue
        try:
            out.append(int(value))
        except ValueError:
            raise SkiptoolError(f"{path}: label '{value}' of '{key}' is not an integer class id; a table of "
                                f"names needs the list of classes (model_conf.class_names)") from None
        if out[-1] < 0:
            raise SkiptoolError(f"{path}: label {out[-1]} of '{key}' is negative; class ids start at 0")
    return out


class FeatsDataset(Dataset):
    """Sequence features of a feature dir: item i is {"key", "speech": float32 (T, D), "label"}
    ("label" only when the dir has `label_table`, or always with `labels=True`)."""

    def __init__(self, feats_dir: str | os.PathLike, labels: bool | None = None, name: str = "speech",
                 label_table: str = "utt2label", classes: Sequence[str] | None = None):
        self.feats_dir = Path(feats_dir)
        self.name = name
        keys, mats, conf = _read_feature_dir(self.feats_dir)
        if all(k in conf for k in IMAGE_CONF_KEYS):
            raise SkiptoolError(f"{self.feats_dir}: holds image features (conf.yaml has height/width); "
                                f"give it as image=DIR")
        dims = {m.shape[1] if m.ndim == 2 else -1 for m in mats}
        if len(dims) != 1 or -1 in dims:
            bad = next(k for k, m in zip(keys, mats) if m.ndim != 2 or m.shape[1] != mats[0].shape[1])
            raise SkiptoolError(f"{self.feats_dir}/feats.scp: '{bad}' has shape {mats[keys.index(bad)].shape}, "
                                f"others (frames, {mats[0].shape[-1]}); all features need one dimension")
        empty = [k for k, m in zip(keys, mats) if m.shape[0] == 0]
        if empty:
            raise SkiptoolError(f"{self.feats_dir}/feats.scp: '{empty[0]}' has no frames; remove it "
                                f"(skiptool data fix) or redo its features")
        self.keys = keys
        self.feats = [torch.from_numpy(m) for m in mats]
        self.labels = _read_labels(self.feats_dir, keys, labels, label_table, classes)
        self.dim = int(mats[0].shape[1])
        self.conf = conf

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item: dict[str, Any] = {"key": self.keys[index], self.name: self.feats[index]}
        if self.labels is not None:
            item["label"] = self.labels[index]
        return item


class ImageFeatsDataset(Dataset):
    """Images of an image feature dir: item i is {"key", "image": float32 (C, H, W), "label"}.

    Each feats.scp matrix is one image as (H, W*C), channels interleaved per pixel (the layout of
    an (H, W, C) array reshaped to two dims); `height`, `width`, `channels` come from conf.yaml.
    """

    def __init__(self, feats_dir: str | os.PathLike, labels: bool | None = None):
        self.feats_dir = Path(feats_dir)
        keys, mats, conf = _read_feature_dir(self.feats_dir)
        missing = [k for k in IMAGE_CONF_KEYS if k not in conf]
        if missing:
            raise SkiptoolError(f"{self.feats_dir}/conf.yaml: no {', '.join(missing)}; not an image feature "
                                f"dir (speech features go in as speech=DIR)")
        try:
            height, width, channels = (int(conf[k]) for k in IMAGE_CONF_KEYS)
        except (TypeError, ValueError):
            raise SkiptoolError(f"{self.feats_dir}/conf.yaml: height, width and channels must be integers") from None
        images = []
        for key, mat in zip(keys, mats):
            if mat.shape != (height, width * channels):
                raise SkiptoolError(f"{self.feats_dir}/feats.scp: '{key}' has shape {mat.shape}, expected "
                                    f"({height}, {width * channels}) from conf.yaml; redo the image features")
            images.append(torch.from_numpy(mat.reshape(height, width, channels)).permute(2, 0, 1).contiguous())
        self.keys = keys
        self.images = images
        self.labels = _read_labels(self.feats_dir, keys, labels)
        self.shape = (channels, height, width)
        self.conf = conf

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item: dict[str, Any] = {"key": self.keys[index], "image": self.images[index]}
        if self.labels is not None:
            item["label"] = self.labels[index]
        return item


class SameClassPairs(Dataset):
    """Each utterance of `speech` paired with a random image of the same class from `images`,
    drawn anew for every epoch (paper 004, sec. 4.1: "we randomly pair each spoken digit with a
    written digit of the same identity for each training epoch").

    The draw of epoch e depends on (seed, e) only, so a resumed run sees the same pairs. Item i is
    speech item i plus "image" and "image_key". Before the first `set_epoch` the pairs of epoch 0
    are used (a fixed pairing, as wanted for dev data).

    With `speakers` (one name per utterance, e.g. from utt2spk), item i also gets "style_speech":
    another utterance of the same speaker, drawn anew every epoch (itself when the speaker has one),
    so a model can learn a voice from an utterance that says another digit (not in the paper).
    """

    def __init__(self, speech: Dataset, images: Dataset, seed: int = 0, speakers: Sequence[str] | None = None):
        for name, ds in (("speech", speech), ("images", images)):
            if getattr(ds, "labels", None) is None:
                where = getattr(ds, "feats_dir", name)
                raise SkiptoolError(f"{where}/utt2label: not found; pairing by class needs a label per item")
        self.speech, self.images, self.seed = speech, images, seed
        image_labels = np.asarray(images.labels)
        self._images_of = {c: np.flatnonzero(image_labels == c) for c in np.unique(image_labels)}
        missing = sorted(set(speech.labels) - set(self._images_of))
        if missing:
            raise SkiptoolError(f"{getattr(images, 'feats_dir', 'images')}: no image of class {missing[0]}, "
                                f"which the speech data has; give image data covering every class")
        self._speech_labels = np.asarray(speech.labels)
        if speakers is not None and len(speakers) != len(speech):
            raise ValueError(f"speakers: {len(speakers)} names for {len(speech)} utterances")
        self._speakers = None if speakers is None else np.unique(np.asarray(speakers), return_inverse=True)[1]
        self.epoch = 0
        self.pairs, self.style = self._draw(0), self._draw_style(0)

    def _draw(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, epoch])
        pairs = np.empty(len(self._speech_labels), dtype=np.int64)
        for label, candidates in sorted(self._images_of.items()):
            where = np.flatnonzero(self._speech_labels == label)
            pairs[where] = candidates[rng.integers(len(candidates), size=len(where))]
        return pairs

    def _draw_style(self, epoch: int) -> np.ndarray | None:
        """For each utterance, another of its speaker's (a stream of its own, so that the image pairs
        do not change with `speakers`)."""
        if self._speakers is None:
            return None
        rng = np.random.default_rng([self.seed, epoch, 1])
        style = np.arange(len(self._speakers))
        for speaker in range(self._speakers.max() + 1):
            where = np.flatnonzero(self._speakers == speaker)
            if len(where) > 1:  # a random other utterance: shift by 1..n-1 places within the speaker's
                shift = rng.integers(1, len(where), size=len(where))
                style[where] = where[(np.arange(len(where)) + shift) % len(where)]
        return style

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch = epoch
            self.pairs, self.style = self._draw(epoch), self._draw_style(epoch)

    @property
    def keys(self) -> list[str]:
        return self.speech.keys

    @property
    def labels(self) -> list[int]:
        return self.speech.labels

    def __len__(self) -> int:
        return len(self.speech)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.speech[index])
        image = self.images[int(self.pairs[index])]
        item["image"] = image["image"]
        item["image_key"] = image["key"]
        if self.style is not None:
            item["style_speech"] = self.speech[int(self.style[index])]["speech"]
        return item


def collate(items: Sequence[Mapping[str, Any]]) -> dict[str, Tensor]:
    """Items -> batch: sequences in SEQUENCE_KEYS zero-padded to (B, T_max, D) with
    `<name>_lengths` (B,) long; other tensors stacked; ints -> long (B,), floats -> float (B,);
    strings (keys) left out, since a batch holds tensors only."""
    if not items:
        raise ValueError("collate: empty batch")
    batch: dict[str, Tensor] = {}
    for name, first in items[0].items():
        values = [item[name] for item in items]
        if isinstance(first, str):
            continue
        if name in SEQUENCE_KEYS:
            batch[name] = pad_sequence(values, batch_first=True)
            batch[f"{name}_lengths"] = torch.tensor([v.shape[0] for v in values], dtype=torch.long)
        elif isinstance(first, Tensor):
            batch[name] = torch.stack(values)
        elif isinstance(first, (bool, int, np.integer)):
            batch[name] = torch.tensor(values, dtype=torch.long)
        elif isinstance(first, (float, np.floating)):
            batch[name] = torch.tensor(values, dtype=torch.float32)
    return batch
