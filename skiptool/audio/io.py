"""Waveform I/O with soundfile (torchaudio 2.9 has no load/save without torchcodec).

What `load_wav` accepts: every format libsndfile reads (WAV, FLAC, OGG, SPHERE, ...). Integer PCM
of any width (8-bit unsigned, 16, 24, 32-bit) is scaled to [-1, 1) by soundfile; float files are
taken as they are. It rejects, with one line naming the key and file: a missing or unreadable
file, an empty one (0 samples), NaN or Inf samples, several channels when mono is expected
(unless `channel` picks one or `downmix` averages them), and `wav.scp` pipe commands.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import atomic_write


def _who(path: str | os.PathLike, key: str | None) -> str:
    return f"{key} ({path})" if key else str(path)


def check_wav_entry(value: str, key: str | None = None, table: str | os.PathLike = "wav.scp") -> str:
    """The audio path of a `wav.scp` value; pipe commands (`cmd ... |`) are rejected."""
    value = value.strip()
    if value.endswith("|"):
        raise SkiptoolError(
            f"{table}: entry '{key}' is a pipe command ('{value[:60]}'); skiptool reads audio files only: "
            f"write the audio to files (e.g. with sox) and list their paths in {Path(table).name}")
    if not value:
        raise SkiptoolError(f"{table}: entry '{key}' has no path; give '<utt> <path>' on every line")
    return value


def audio_info(path: str | os.PathLike, key: str | None = None) -> sf._SoundFileInfo:
    """soundfile's header info (rate, channels, frames, subtype), with user errors as SkiptoolError."""
    who = _who(path, key)
    if not Path(path).exists():
        raise SkiptoolError(f"{who}: audio file not found; fix the path in wav.scp or drop the key (skiptool data fix)")
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise SkiptoolError(f"{who}: cannot read audio ({_reason(e)}); replace the file or drop the key") from None


def load_wav(path: str | os.PathLike, key: str | None = None, *, channel: int = -1,
             downmix: bool = False) -> tuple[np.ndarray, int]:
    """Read audio as float32 mono in [-1, 1] and its sample rate.

    channel: -1 expects a mono file; N >= 0 takes channel N of a multi-channel file.
    downmix: average all channels instead (takes precedence over `channel`).
    """
    who = _who(path, key)
    if str(path).rstrip().endswith("|"):
        check_wav_entry(str(path), key)
    if not Path(path).exists():
        raise SkiptoolError(f"{who}: audio file not found; fix the path in wav.scp or drop the key (skiptool data fix)")
    try:
        wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as e:
        raise SkiptoolError(f"{who}: cannot read audio ({_reason(e)}); replace the file or drop the key") from None
    if wav.shape[0] == 0:
        raise SkiptoolError(f"{who}: empty audio (0 samples); replace the file or drop the key (skiptool data fix)")
    channels = wav.shape[1]
    if downmix:
        wav = wav.mean(axis=1, dtype=np.float32)
    elif channel >= 0:
        if channel >= channels:
            raise SkiptoolError(f"{who}: has {channels} channel(s), config asks for channel {channel}; "
                                f"set channel: -1 for mono files or a channel index below {channels}")
        wav = wav[:, channel]
    elif channels > 1:
        raise SkiptoolError(f"{who}: has {channels} channels, expected mono; set 'downmix: true' (average) or "
                            f"'channel: 0' in the feature config, or convert the file to mono")
    else:
        wav = wav[:, 0]
    if not np.isfinite(wav).all():
        bad = int((~np.isfinite(wav)).sum())
        raise SkiptoolError(f"{who}: {bad} sample(s) are NaN or Inf; repair or replace the file, or drop the key")
    return np.ascontiguousarray(wav, dtype=np.float32), int(sr)


def write_wav(path: str | os.PathLike, wav: np.ndarray, sample_rate: int) -> None:
    """Write float samples as 16-bit PCM wav, atomically."""
    path = Path(path)
    with atomic_write(path, "wb") as f:
        sf.write(f, np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0), sample_rate,
                 subtype="PCM_16", format="WAV")


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    # libsndfile repeats the path; keep the part after it
    return text.split(": ", 1)[-1] if "Error opening" in text else text
