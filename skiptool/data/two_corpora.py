"""Two unpaired corpora that share only text (paper 000): an image-caption corpus A and a
text-speech corpus B, read from feature dirs, and the batches that mix or alternate them.

    captions = CaptionDataset("dump/image/train", tokenizer.encode)          # {key, image, image_text}
    speech = SpokenTextDataset("dump/mel/train", "dump/linear/train", tokenizer.encode)
                                                                             # {key, speech, linear, speech_text}
    both = TwoCorpora(captions, speech, batching="mixed")
    sampler = both.batch_sampler(batch_size=16, shuffle=True, seed=0)       # 8 + 8 per batch
    loader = DataLoader(both, batch_sampler=sampler, collate_fn=collate_mib)
    sampler.set_epoch(3)

Batching (paper 000, Table 5): `mixed` fills every batch half from each corpus; `alternating`
takes each whole batch from one corpus, A and B in turn. In training an epoch is as long as the
larger corpus, in both schemes: each corpus is streamed through permutations drawn from
(seed, epoch, corpus), and the smaller one is cycled (re-permuted) to the length of the larger,
so an epoch holds 2 x max(|A|, |B|) items and the same number of batches for both schemes.
Without shuffling (dev data) every item comes exactly once, in order.

A caption feature dir (`skiptool feats --type image` of a caption data dir) holds one image per
caption key `<img>-cN`; the copies of one image (same path in img.scp) are kept once in memory.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

import kaldiio
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from skiptool.data.datadir import read_table
from skiptool.data.datasets import IMAGE_CONF_KEYS
from skiptool.utils.config import read_yaml
from skiptool.utils.errors import SkiptoolError

Batching = Literal["mixed", "alternating"]
Encode = Callable[[str], list[int]]
CAPTION_SUFFIX = re.compile(r"-c\d+$")


def image_key(pair_key: str) -> str:
    """`shapes000042-c3` -> `shapes000042`: the image of a caption pair key (other keys unchanged)."""
    return CAPTION_SUFFIX.sub("", pair_key)


def feats_conf(feats_dir: Path) -> dict:
    """conf.yaml of a feature dir ({} when absent)."""
    path = feats_dir / "conf.yaml"
    return dict(read_yaml(path)) if path.is_file() else {}


def _scp(feats_dir: Path) -> Path:
    if not feats_dir.is_dir():
        raise SkiptoolError(f"{feats_dir}: feature dir not found; make it with `skiptool feats`")
    scp = feats_dir / "feats.scp"
    if not scp.is_file():
        raise SkiptoolError(f"{scp}: not found; {feats_dir} is not a feature dir (run `skiptool feats`)")
    return scp


def _read_matrices(feats_dir: Path) -> Iterator[tuple[str, np.ndarray]]:
    scp = _scp(feats_dir)
    key = None
    try:
        for key, mat in kaldiio.load_scp_sequential(str(scp)):
            yield key, np.array(mat, dtype=np.float32)
    except Exception as e:  # kaldiio raises many types (OSError, ValueError, struct.error...)
        where = f" after key '{key}'" if key else ""
        raise SkiptoolError(f"{scp}: cannot read the features{where} ({type(e).__name__}); "
                            f"re-run `skiptool feats` for this dir") from None


def read_token_ids(data_dir: Path, keys: Sequence[str], encode: Encode) -> list[Tensor]:
    """Token ids (long) of each key's transcript in data_dir/text; a missing or empty one is a user error."""
    path = data_dir / "text"
    if not path.is_file():
        raise SkiptoolError(f"{path}: not found; the feature dir needs the transcripts (`skiptool feats` copies "
                            f"the data dir's text)")
    table = read_table(path)
    out = []
    for key in keys:
        if key not in table:
            raise SkiptoolError(f"{path}: no transcript for '{key}' of feats.scp; run `skiptool data fix`")
        ids = encode(table[key])
        if not ids:
            raise SkiptoolError(f"{path}: the transcript of '{key}' has no token of the token list "
                                f"({table[key]!r}); fix or drop it (skiptool data fix)")
        out.append(torch.tensor(ids, dtype=torch.long))
    return out


class CaptionDataset(Dataset):
    """Corpus A: item i is {"key", "image": float32 (C, H, W) in [0, 1], "image_text": long (L,)}."""

    def __init__(self, feats_dir: str | os.PathLike, encode: Encode):
        self.feats_dir = Path(feats_dir)
        self.conf = feats_conf(self.feats_dir)
        missing = [k for k in IMAGE_CONF_KEYS if k not in self.conf]
        if missing:
            raise SkiptoolError(f"{self.feats_dir}/conf.yaml: no {', '.join(missing)}; not an image feature dir "
                                f"(make one with `skiptool feats DATA DIR --type image`)")
        height, width, channels = (int(self.conf[k]) for k in IMAGE_CONF_KEYS)
        paths = read_table(self.feats_dir / "img.scp") if (self.feats_dir / "img.scp").is_file() else {}
        by_source: dict[str, Tensor] = {}  # image path (or key) -> the one tensor of that image
        self.keys, self.images = [], []
        for key, mat in _read_matrices(self.feats_dir):
            source = paths.get(key, key)
            if source not in by_source:
                if mat.shape != (height, width * channels):
                    raise SkiptoolError(f"{self.feats_dir}/feats.scp: '{key}' has shape {mat.shape}, expected "
                                        f"({height}, {width * channels}) from conf.yaml; redo the image features")
                by_source[source] = torch.from_numpy(mat.reshape(height, width, channels)).permute(2, 0, 1).contiguous()
            self.keys.append(key)
            self.images.append(by_source[source])
        if not self.keys:
            raise SkiptoolError(f"{self.feats_dir}/feats.scp: no features; re-run `skiptool feats`")
        self.texts = read_token_ids(self.feats_dir, self.keys, encode)
        self.shape = (channels, height, width)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"key": self.keys[index], "image": self.images[index], "image_text": self.texts[index]}


class SpokenTextDataset(Dataset):
    """Corpus B: item i is {"key", "speech": mel (T, n_mels), "linear": (T, n_freqs), "speech_text": long (L,)};
    the mel and linear dirs must hold the same keys with the same frame counts."""

    def __init__(self, mel_dir: str | os.PathLike, linear_dir: str | os.PathLike, encode: Encode):
        self.mel_dir, self.linear_dir = Path(mel_dir), Path(linear_dir)
        self.mel_conf, self.linear_conf = feats_conf(self.mel_dir), feats_conf(self.linear_dir)
        for where, conf, kind in ((self.mel_dir, self.mel_conf, "mel"), (self.linear_dir, self.linear_conf, "linear")):
            if conf.get("type", kind) != kind:
                raise SkiptoolError(f"{where}/conf.yaml: holds {conf.get('type')} features, expected {kind}; "
                                    f"make them with `skiptool feats DATA DIR --type {kind}`")
        mel = dict(_read_matrices(self.mel_dir))
        linear = dict(_read_matrices(self.linear_dir))
        if set(mel) != set(linear):
            odd = sorted(set(mel) ^ set(linear))[0]
            raise SkiptoolError(f"{self.linear_dir}/feats.scp: key '{odd}' is in only one of the mel and linear "
                                f"dirs; extract both from the same data dir")
        self.keys = sorted(mel)
        if not self.keys:
            raise SkiptoolError(f"{self.mel_dir}/feats.scp: no features; re-run `skiptool feats`")
        for key in self.keys:
            m, lin = mel[key], linear[key]
            if m.ndim != 2 or lin.ndim != 2 or len(m) != len(lin) or len(m) == 0:
                raise SkiptoolError(f"{self.linear_dir}/feats.scp: '{key}' has {lin.shape} linear but {m.shape} mel "
                                    f"frames; both must be (frames, bins) of the same frames")
        self.speech = [torch.from_numpy(mel[k]) for k in self.keys]
        self.linear = [torch.from_numpy(linear[k]) for k in self.keys]
        self.mel_dim, self.linear_dim = int(self.speech[0].size(1)), int(self.linear[0].size(1))
        self.texts = read_token_ids(self.mel_dir, self.keys, encode)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"key": self.keys[index], "speech": self.speech[index], "linear": self.linear[index],
                "speech_text": self.texts[index]}


class TwoCorpora(Dataset):
    """Corpus A then corpus B as one dataset (index < len(a): A), with `batch_sampler` composing
    mixed or alternating batches. Without the sampler (a plain shuffled DataLoader) batches mix
    the corpora at random."""

    def __init__(self, a: Dataset, b: Dataset, batching: Batching = "mixed"):
        if batching not in ("mixed", "alternating"):
            raise SkiptoolError(f"batching '{batching}': choose mixed or alternating")
        self.a, self.b, self.batching = a, b, batching

    def __len__(self) -> int:
        return len(self.a) + len(self.b)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.a[index] if index < len(self.a) else self.b[index - len(self.a)]

    def batch_sampler(self, batch_size: int, shuffle: bool, seed: int = 0, rank: int = 0, world_size: int = 1,
                      drop_last: bool = False) -> "TwoCorpusBatchSampler":
        """Batches of `batch_size` items in all (the global batch; this rank gets its share)."""
        return TwoCorpusBatchSampler(len(self.a), len(self.b), batch_size, self.batching, shuffle, seed, rank,
                                     world_size, drop_last)


class TwoCorpusBatchSampler(Sampler):
    """Index batches over TwoCorpora (A: 0..n_a-1, B: n_a..n_a+n_b-1); see the module doc."""

    def __init__(self, n_a: int, n_b: int, batch_size: int, batching: Batching = "mixed", shuffle: bool = True,
                 seed: int = 0, rank: int = 0, world_size: int = 1, drop_last: bool = False):
        if n_a < 1 or n_b < 1:
            raise SkiptoolError(f"two corpora needed: got {n_a} image-text and {n_b} text-speech items")
        if batch_size < (2 if batching == "mixed" else 1) * world_size:
            raise SkiptoolError(f"train.batch_size {batch_size}: a {batching} batch needs at least "
                                f"{(2 if batching == 'mixed' else 1) * world_size} items here")
        self.n_a, self.n_b, self.batch_size, self.batching = n_a, n_b, batch_size, batching
        self.shuffle, self.seed, self.rank, self.world_size, self.drop_last = shuffle, seed, rank, world_size, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _stream(self, corpus: int, n: int, length: int) -> list[int]:
        """`length` indices 0..n-1: permutations of (seed, epoch, corpus) end to end (in order without shuffle)."""
        if not self.shuffle:
            return list(range(n))
        rng = np.random.default_rng([self.seed, self.epoch, corpus])
        rounds = [rng.permutation(n) for _ in range(math.ceil(length / n))]
        return np.concatenate(rounds)[:length].tolist()

    def _global_batches(self) -> list[list[int]]:
        size = self.batch_size
        half_a = size // 2 if self.batching == "mixed" else size
        half_b = size - size // 2 if self.batching == "mixed" else size
        if self.shuffle:  # the larger corpus once; the smaller cycled to the same number of batches
            steps = max(math.ceil(self.n_a / half_a), math.ceil(self.n_b / half_b))
            a = self._stream(0, self.n_a, steps * half_a)
            b = self._stream(1, self.n_b, steps * half_b)
        else:
            a, b = self._stream(0, self.n_a, self.n_a), self._stream(1, self.n_b, self.n_b)
        a_batches = [a[i:i + half_a] for i in range(0, len(a), half_a)]
        b_batches = [[self.n_a + j for j in b[i:i + half_b]] for i in range(0, len(b), half_b)]
        if self.batching == "mixed":
            batches = [x + y for x, y in zip_longest_lists(a_batches, b_batches)]
        else:
            batches = [batch for pair in zip_longest_lists(a_batches, b_batches) for batch in pair if batch]
        if self.drop_last:
            batches = [batch for batch in batches if len(batch) == size]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._global_batches():
            if len(batch) < self.world_size:  # every rank needs an item: repeat the batch's own
                batch = (batch * self.world_size)[: self.world_size]
            yield batch[self.rank :: self.world_size]

    def __len__(self) -> int:
        return len(self._global_batches())


def zip_longest_lists(xs: list[list[int]], ys: list[list[int]]) -> Iterator[tuple[list[int], list[int]]]:
    """Pairs of batches, an empty list standing in for the shorter side."""
    for i in range(max(len(xs), len(ys))):
        yield (xs[i] if i < len(xs) else []), (ys[i] if i < len(ys) else [])
