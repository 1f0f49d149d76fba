"""Cepstral mean and variance normalisation with Kaldi's statistics layout.

Stats are a (2, dim + 1) float64 matrix, as Kaldi's compute-cmvn-stats writes them: row 0 holds
the per-dimension sums and, in the last column, the frame count; row 1 the sums of squares.
Global stats are one such matrix (`kaldiio.save_mat`, like ESPnet's cmvn.ark); per-speaker stats
are a table keyed by speaker (`cmvn.scp`, like a Kaldi data dir's). `apply_cmvn` is Kaldi's
apply-cmvn: subtract the mean and, with norm_vars, divide by the standard deviation (variance
floored at 1e-20 as Kaldi does).
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from skiptool.utils.errors import SkiptoolError

VARIANCE_FLOOR = 1e-20


def accumulate(feats: np.ndarray, stats: np.ndarray | None = None) -> np.ndarray:
    """Add (frames, dim) features to Kaldi-layout stats (a new zero matrix when `stats` is None)."""
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2:
        raise ValueError(f"features must be (frames, dim), got shape {feats.shape}")
    dim = feats.shape[1]
    if stats is None:
        stats = np.zeros((2, dim + 1), dtype=np.float64)
    elif stats.shape != (2, dim + 1):
        raise ValueError(f"stats of shape {stats.shape} do not fit {dim}-dim features")
    stats[0, :dim] += feats.sum(axis=0)
    stats[1, :dim] += np.square(feats).sum(axis=0)
    stats[0, dim] += feats.shape[0]
    return stats


def global_stats(feats: Iterable[np.ndarray]) -> np.ndarray:
    """Stats over all utterances."""
    stats = None
    for mat in feats:
        stats = accumulate(mat, stats)
    if stats is None:
        raise ValueError("no features to compute CMVN statistics from")
    return stats


def speaker_stats(feats: Iterable[tuple[str, np.ndarray]], utt2spk: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Stats per speaker from (utterance id, features) pairs."""
    stats: dict[str, np.ndarray] = {}
    for utt, mat in feats:
        spk = utt2spk[utt]
        stats[spk] = accumulate(mat, stats.get(spk))
    return stats


def check_stats(stats: np.ndarray, dim: int, source: str) -> np.ndarray:
    """Validate stats read from a file against the feature dimension."""
    stats = np.asarray(stats, dtype=np.float64)
    if stats.shape != (2, dim + 1):
        raise SkiptoolError(f"{source}: CMVN stats of shape {tuple(stats.shape)} do not fit {dim}-dim features "
                            f"(expected (2, {dim + 1})); use stats computed on the same feature type and config")
    if stats[0, dim] <= 0:
        raise SkiptoolError(f"{source}: CMVN stats have a frame count of {stats[0, dim]:g}; recompute them")
    return stats


def mean_std(stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (floored) standard deviation from Kaldi-layout stats."""
    dim = stats.shape[1] - 1
    count = stats[0, dim]
    mean = stats[0, :dim] / count
    var = np.maximum(stats[1, :dim] / count - np.square(mean), VARIANCE_FLOOR)
    return mean, np.sqrt(var)


def apply_cmvn(feats: np.ndarray, stats: np.ndarray, norm_vars: bool = True) -> np.ndarray:
    """Kaldi's apply-cmvn (--norm-means=true, --norm-vars=norm_vars) on (frames, dim) features."""
    mean, std = mean_std(stats)
    out = np.asarray(feats, dtype=np.float64) - mean
    if norm_vars:
        out /= std
    return out.astype(np.float32)


def invert_cmvn(feats: np.ndarray, stats: np.ndarray, norm_vars: bool = True) -> np.ndarray:
    """Undo `apply_cmvn` (Kaldi's apply-cmvn --reverse), e.g. before vocoding normalised features."""
    mean, std = mean_std(stats)
    out = np.asarray(feats, dtype=np.float64)
    if norm_vars:
        out = out * std
    return (out + mean).astype(np.float32)
