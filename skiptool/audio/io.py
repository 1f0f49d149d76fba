"""Waveform I/O with soundfile (torchaudio 2.9 has no load/save without torchcodec)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import atomic_write


def load_wav(path: str | os.PathLike, key: str | None = None) -> tuple[np.ndarray, int]:
    """Read a mono wav as float32 in [-1, 1] and its sample rate."""
    who = f"{key} ({path})" if key else str(path)
    try:
        wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise SkiptoolError(f"{who}: cannot read audio ({e}); check the path in wav.scp") from None
    return wav[:, 0], sr


def write_wav(path: str | os.PathLike, wav: np.ndarray, sample_rate: int) -> None:
    """Write float samples as 16-bit PCM wav, atomically."""
    path = Path(path)
    with atomic_write(path, "wb") as f:
        sf.write(f, np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0), sample_rate,
                 subtype="PCM_16", format="WAV")
