"""Tacotron-style linear and mel spectrograms, normalised to [0, 1], and their inverse.

The recipe of keithito/tacotron that paper 000's model family uses: pre-emphasis, STFT magnitude,
optional mel projection, dB with `ref_level_db` subtracted, then `min_level_db`..0 dB mapped to
0..1. Features are returned time-major, (frames, dims), as Kaldi stores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
import torchaudio.functional as AF


@dataclass(frozen=True)
class TacotronSpecConfig:
    sample_rate: int = 16000
    n_fft: int = 2048
    win_length: int = 800
    hop_length: int = 200
    num_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = None  # None = sample_rate / 2
    preemphasis: float = 0.97
    min_level_db: float = -100.0
    ref_level_db: float = 20.0
    pad_mode: str = "constant"  # STFT centre padding, as librosa >= 0.10

    def __post_init__(self):
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length ({self.win_length}) must not exceed n_fft ({self.n_fft})")
        if self.min_level_db >= 0:
            raise ValueError(f"min_level_db must be negative, got {self.min_level_db}")

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1

    def num_frames(self, num_samples: int) -> int:
        return 1 + num_samples // self.hop_length


@lru_cache(maxsize=8)
def _window(win_length: int, device: str) -> torch.Tensor:
    return torch.hann_window(win_length, device=device)


@lru_cache(maxsize=8)
def mel_basis(cfg: TacotronSpecConfig, device: str = "cpu") -> torch.Tensor:
    """(n_freqs, num_mels) Slaney mel filterbank, equal to librosa.filters.mel(htk=False, norm='slaney')."""
    return AF.melscale_fbanks(cfg.n_freqs, cfg.fmin, cfg.fmax or cfg.sample_rate / 2, cfg.num_mels,
                              cfg.sample_rate, norm="slaney", mel_scale="slaney").to(device)


def preemphasis(wav: torch.Tensor, coef: float) -> torch.Tensor:
    """y[t] = x[t] - coef * x[t-1] along the last axis."""
    if coef == 0:
        return wav
    return torch.cat([wav[..., :1], wav[..., 1:] - coef * wav[..., :-1]], dim=-1)


def deemphasis(wav: torch.Tensor, coef: float) -> torch.Tensor:
    """Inverse of `preemphasis`: y[t] = x[t] + coef * y[t-1]."""
    if coef == 0:
        return wav
    a = torch.tensor([1.0, -coef], dtype=wav.dtype, device=wav.device)
    b = torch.tensor([1.0, 0.0], dtype=wav.dtype, device=wav.device)
    return AF.lfilter(wav, a, b, clamp=False)


def stft_magnitude(wav: torch.Tensor, cfg: TacotronSpecConfig) -> torch.Tensor:
    """(..., samples) -> (..., n_freqs, frames) magnitude after pre-emphasis."""
    x = preemphasis(wav, cfg.preemphasis)
    spec = torch.stft(x.reshape(-1, x.shape[-1]), cfg.n_fft, cfg.hop_length, cfg.win_length,
                      window=_window(cfg.win_length, str(x.device)), center=True,
                      pad_mode=cfg.pad_mode, return_complex=True)
    return spec.abs().reshape(*wav.shape[:-1], *spec.shape[-2:])


def amp_to_db(x: torch.Tensor) -> torch.Tensor:
    return 20.0 * torch.log10(torch.clamp(x, min=1e-5))


def db_to_amp(x: torch.Tensor) -> torch.Tensor:
    return torch.pow(10.0, x / 20.0)


def normalize(db: torch.Tensor, cfg: TacotronSpecConfig) -> torch.Tensor:
    return torch.clamp((db - cfg.ref_level_db - cfg.min_level_db) / -cfg.min_level_db, 0.0, 1.0)


def denormalize(x: torch.Tensor, cfg: TacotronSpecConfig) -> torch.Tensor:
    """Normalised [0, 1] features -> dB (with ref_level_db added back)."""
    return torch.clamp(x, 0.0, 1.0) * -cfg.min_level_db + cfg.min_level_db + cfg.ref_level_db


def linear_spectrogram(wav: torch.Tensor, cfg: TacotronSpecConfig) -> torch.Tensor:
    """(..., samples) -> (..., frames, n_freqs) in [0, 1]."""
    return normalize(amp_to_db(stft_magnitude(wav, cfg)), cfg).transpose(-1, -2)


def mel_spectrogram(wav: torch.Tensor, cfg: TacotronSpecConfig) -> torch.Tensor:
    """(..., samples) -> (..., frames, num_mels) in [0, 1]."""
    mag = stft_magnitude(wav, cfg).transpose(-1, -2)
    return normalize(amp_to_db(mag @ mel_basis(cfg, str(wav.device))), cfg)


def features_to_magnitude(feats: torch.Tensor, cfg: TacotronSpecConfig) -> torch.Tensor:
    """Normalised linear or mel features (..., frames, dims) -> linear-amplitude values, same shape."""
    return db_to_amp(denormalize(feats, cfg))
