"""Energy-based voice activity detection on feature frames (paper 004 removes silence this way).

A frame is voiced when its log energy is within `threshold_db` of the utterance's loudest frame;
`context` frames on each side of voiced frames are kept too. `span` mode keeps everything from
the first to the last voiced frame (trims leading and trailing silence, keeps pauses), `frames`
mode drops every silent frame. The threshold is relative, so it does not depend on the
recording level; an utterance whose frames are all equally quiet (digital silence) is kept whole.

Written here because torchaudio.functional.vad is sox's leading-silence trimmer (one end, its
own spectral measures), not a per-frame energy threshold on the frames the features use. numpy
only (no torch import in `skiptool feats`); arrays in may be numpy or CPU torch tensors.
"""

from __future__ import annotations

import math

import numpy as np

DB_PER_NEPER = 10.0 / math.log(10.0)  # natural-log energy -> dB


def voiced_frames(log_energy, threshold_db: float = -40.0, context: int = 2) -> np.ndarray:
    """(frames,) natural-log frame energies -> (frames,) bool mask of voiced frames."""
    db = np.asarray(log_energy, dtype=np.float64).reshape(-1) * DB_PER_NEPER
    if db.size == 0:
        return np.zeros(0, dtype=bool)
    voiced = db >= db.max() + threshold_db
    if context > 0:
        # widen by `context` frames each side: a max filter over the mask
        voiced = np.lib.stride_tricks.sliding_window_view(np.pad(voiced, context), 2 * context + 1).any(1)
    return voiced


def keep_index(voiced, mode: str = "span") -> np.ndarray:
    """Indices of the frames to keep for a voiced mask: the voiced span, or the voiced frames."""
    voiced = np.asarray(voiced, dtype=bool)
    where = np.flatnonzero(voiced)
    if mode not in ("span", "frames"):
        raise ValueError(f"vad mode must be 'span' or 'frames', got {mode!r}")
    if where.size == 0:  # cannot happen for masks from voiced_frames (the loudest frame is voiced)
        return np.arange(voiced.size)
    if mode == "span":
        return np.arange(where[0], where[-1] + 1)
    return where


def apply_vad(feats, log_energy, threshold_db: float = -40.0, mode: str = "span", context: int = 2):
    """Drop the silent frames of (frames, dim) features given each frame's log energy (same array type out)."""
    if feats.shape[0] != log_energy.shape[0]:
        raise ValueError(f"{feats.shape[0]} feature frames but {log_energy.shape[0]} energies")
    return feats[keep_index(voiced_frames(log_energy, threshold_db, context), mode)]
