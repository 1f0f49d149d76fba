"""Energy-based voice activity detection on feature frames (paper 004 removes silence this way).

A frame is voiced when its log energy is within `threshold_db` of the utterance's loudest frame;
`context` frames on each side of voiced frames are kept too. `span` mode keeps everything from
the first to the last voiced frame (trims leading and trailing silence, keeps pauses), `frames`
mode drops every silent frame. The threshold is relative, so it does not depend on the
recording level; an utterance whose frames are all equally quiet (digital silence) is kept whole.

Written here because torchaudio.functional.vad is sox's leading-silence trimmer (one end, its
own spectral measures), not a per-frame energy threshold on the frames the features use.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

DB_PER_NEPER = 10.0 / math.log(10.0)  # natural-log energy -> dB


def voiced_frames(log_energy: torch.Tensor, threshold_db: float = -40.0, context: int = 2) -> torch.Tensor:
    """(frames,) natural-log frame energies -> (frames,) bool mask of voiced frames."""
    if log_energy.numel() == 0:
        return torch.zeros(0, dtype=torch.bool)
    db = log_energy.double() * DB_PER_NEPER
    voiced = db >= db.max() + threshold_db
    if context > 0:
        # widen by `context` frames each side: a max filter over the mask
        voiced = F.max_pool1d(voiced.float()[None, None], 2 * context + 1, stride=1, padding=context)[0, 0] > 0
    return voiced


def keep_index(voiced: torch.Tensor, mode: str = "span") -> torch.Tensor:
    """Indices of the frames to keep for a voiced mask: the voiced span, or the voiced frames."""
    where = voiced.nonzero().flatten()
    if where.numel() == 0:  # cannot happen for masks from voiced_frames (the loudest frame is voiced)
        return torch.arange(voiced.numel())
    if mode == "span":
        return torch.arange(int(where[0]), int(where[-1]) + 1)
    if mode == "frames":
        return where
    raise ValueError(f"vad mode must be 'span' or 'frames', got {mode!r}")


def apply_vad(feats: torch.Tensor, log_energy: torch.Tensor, threshold_db: float = -40.0,
              mode: str = "span", context: int = 2) -> torch.Tensor:
    """Drop the silent frames of (frames, dim) features given each frame's log energy."""
    if feats.shape[0] != log_energy.shape[0]:
        raise ValueError(f"{feats.shape[0]} feature frames but {log_energy.shape[0]} energies")
    return feats[keep_index(voiced_frames(log_energy, threshold_db, context), mode)]
