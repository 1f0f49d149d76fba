"""Tacotron-style linear and mel spectrograms, normalised to [0, 1], and their inverse.

The recipe of keithito/tacotron that paper 000's model family uses: pre-emphasis, STFT magnitude,
optional mel projection, dB with `ref_level_db` subtracted, then `min_level_db`..0 dB mapped to
0..1. Features are returned time-major, (frames, dims), as Kaldi stores them.

The config and the mel filterbank are plain numpy, so that `skiptool feats` (whose batched
extractor, `skiptool.audio.transforms.tacotron_features`, needs nothing else from here) never
imports torch: `import torch` alone costs 884 MiB of resident memory with PyPI's CUDA build.
The per-utterance functions below work on torch tensors (Griffin-Lim and the tests use them)
and import torch when called.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


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


def hann_window(win_length: int) -> np.ndarray:
    """The periodic Hann window of torch.hann_window / librosa's STFT, float32."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win_length) / win_length)).astype(np.float32)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (librosa.hz_to_mel, htk=False)."""
    f = np.asarray(f, dtype=np.float64)
    linear = 3.0 * f / 200.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1000.0) / 1000.0) / (np.log(6.4) / 27.0), linear)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (np.maximum(m, 15.0) - 15.0)), 200.0 * m / 3.0)


@lru_cache(maxsize=8)
def mel_filterbank(cfg: TacotronSpecConfig) -> np.ndarray:
    """(n_freqs, num_mels) float32 Slaney mel filterbank, equal to librosa.filters.mel(htk=False,
    norm='slaney') (and torchaudio's melscale_fbanks(norm='slaney', mel_scale='slaney')). Written
    out because importing librosa costs a second and 60 MiB; the tests compare it with both."""
    fmax = cfg.fmax or cfg.sample_rate / 2
    fft_freqs = np.linspace(0.0, cfg.sample_rate / 2, cfg.n_freqs)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(cfg.fmin), _hz_to_mel(fmax), cfg.num_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]  # Slaney: equal area per band
    return np.ascontiguousarray(weights.T, dtype=np.float32)


# ------------------------------------------------------------------ per-utterance torch functions

@lru_cache(maxsize=8)
def _window(win_length: int, device: str):
    import torch

    return torch.hann_window(win_length, device=device)


@lru_cache(maxsize=8)
def mel_basis(cfg: TacotronSpecConfig, device: str = "cpu"):
    """`mel_filterbank` as a (n_freqs, num_mels) torch tensor."""
    import torch

    return torch.from_numpy(mel_filterbank(cfg)).to(device)


def preemphasis(wav, coef: float):
    """y[t] = x[t] - coef * x[t-1] along the last axis (torch)."""
    import torch

    if coef == 0:
        return wav
    return torch.cat([wav[..., :1], wav[..., 1:] - coef * wav[..., :-1]], dim=-1)


def deemphasis(wav, coef: float):
    """Inverse of `preemphasis`: y[t] = x[t] + coef * y[t-1] (torch)."""
    import torch
    import torchaudio.functional as AF

    if coef == 0:
        return wav
    a = torch.tensor([1.0, -coef], dtype=wav.dtype, device=wav.device)
    b = torch.tensor([1.0, 0.0], dtype=wav.dtype, device=wav.device)
    return AF.lfilter(wav, a, b, clamp=False)


def stft_magnitude(wav, cfg: TacotronSpecConfig):
    """(..., samples) -> (..., n_freqs, frames) magnitude after pre-emphasis (torch)."""
    import torch

    x = preemphasis(wav, cfg.preemphasis)
    spec = torch.stft(x.reshape(-1, x.shape[-1]), cfg.n_fft, cfg.hop_length, cfg.win_length,
                      window=_window(cfg.win_length, str(x.device)), center=True,
                      pad_mode=cfg.pad_mode, return_complex=True)
    return spec.abs().reshape(*wav.shape[:-1], *spec.shape[-2:])


def amp_to_db(x):
    return 20.0 * x.clamp(min=1e-5).log10()


def db_to_amp(x):
    return 10.0 ** (x / 20.0)


def normalize(db, cfg: TacotronSpecConfig):
    return ((db - cfg.ref_level_db - cfg.min_level_db) / -cfg.min_level_db).clamp(0.0, 1.0)


def denormalize(x, cfg: TacotronSpecConfig):
    """Normalised [0, 1] features -> dB (with ref_level_db added back)."""
    return x.clamp(0.0, 1.0) * -cfg.min_level_db + cfg.min_level_db + cfg.ref_level_db


def linear_spectrogram(wav, cfg: TacotronSpecConfig):
    """(..., samples) -> (..., frames, n_freqs) in [0, 1] (torch)."""
    return normalize(amp_to_db(stft_magnitude(wav, cfg)), cfg).transpose(-1, -2)


def mel_spectrogram(wav, cfg: TacotronSpecConfig):
    """(..., samples) -> (..., frames, num_mels) in [0, 1] (torch)."""
    mag = stft_magnitude(wav, cfg).transpose(-1, -2)
    return normalize(amp_to_db(mag @ mel_basis(cfg, str(wav.device))), cfg)


def features_to_magnitude(feats, cfg: TacotronSpecConfig):
    """Normalised linear or mel features (..., frames, dims) -> linear-amplitude values, same shape (torch)."""
    return db_to_amp(denormalize(feats, cfg))
