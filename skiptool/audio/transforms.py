"""Configured feature extractors over batches of waveforms, and cached resampling.

`make_extractor(type, config)` gives a callable that turns a list of mono float waveforms (at the
config's sample rate) into a list of (frames, dim) float32 arrays, with energy VAD applied when
the config asks for it. Types: `fbank`, `mfcc` (Kaldi, `skiptool.audio.kaldi`) and `mel`,
`linear` (Tacotron, `skiptool.audio.tacotron`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import torch
import torchaudio

from skiptool.audio import kaldi, tacotron
from skiptool.audio.kaldi import FbankConfig, MfccConfig, SpeechInputConfig
from skiptool.audio.tacotron import TacotronSpecConfig
from skiptool.audio.vad import apply_vad


@dataclass(frozen=True)
class TacotronFeatsConfig(SpeechInputConfig, TacotronSpecConfig):
    """Tacotron mel/linear features: TacotronSpecConfig's fields, then the shared input/VAD options."""

    def __post_init__(self):
        TacotronSpecConfig.__post_init__(self)
        self.check_input_options()


SpeechConfig = FbankConfig | MfccConfig | TacotronFeatsConfig

# feature type -> its config class (the image type lives in skiptool.data.image)
SPEECH_CONFIGS: dict[str, type] = {
    "fbank": FbankConfig,
    "mfcc": MfccConfig,
    "mel": TacotronFeatsConfig,
    "linear": TacotronFeatsConfig,
}


def sample_rate_of(cfg: SpeechConfig) -> int:
    """The rate a config's waveforms must have."""
    rate = cfg.sample_frequency if isinstance(cfg, (FbankConfig, MfccConfig)) else cfg.sample_rate
    return int(round(rate))


@lru_cache(maxsize=16)
def _resampler(orig: int, new: int) -> torchaudio.transforms.Resample:
    return torchaudio.transforms.Resample(orig, new)  # builds the sinc kernel once per rate pair


def resample(wav: np.ndarray | torch.Tensor, orig: int, new: int) -> np.ndarray:
    """torchaudio's sinc resampling (its defaults), with the kernel cached per (orig, new)."""
    x = torch.as_tensor(np.asarray(wav, dtype=np.float32))
    if orig == new:
        return x.numpy()
    with torch.inference_mode():
        return _resampler(int(orig), int(new))(x).numpy()


# torch.stft pad modes -> numpy's names for the same padding
_NUMPY_PAD = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def tacotron_features(wavs: Sequence[np.ndarray | torch.Tensor], cfg: tacotron.TacotronSpecConfig,
                      linear: bool = False, chunk_frames: int = 256) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Batched `tacotron.mel_spectrogram` / `linear_spectrogram`: (frames, dims) in [0, 1] per utterance,
    and each frame's natural-log power (for VAD).

    Same values as the per-utterance functions (center=True STFT). All utterances are laid out in
    one signal and framed by one strided view, as in `skiptool.audio.kaldi`. Only the window's
    `win_length` samples of each `n_fft` frame are non-zero and an FFT's magnitude does not depend
    on where in the frame they sit, so frames hold the windowed samples followed by zeros.
    """
    n_fft, win, hop = cfg.n_fft, cfg.win_length, cfg.hop_length
    half = n_fft // 2 - (n_fft - win) // 2  # samples of padding before frame 0's window starts
    pieces, row_offsets, counts = [], [], []
    rows = 0
    for wav in wavs:
        x = np.asarray(wav.numpy() if isinstance(wav, torch.Tensor) else wav, dtype=np.float32).reshape(-1)
        emphasized = x.copy()
        if cfg.preemphasis:
            emphasized[1:] -= np.float32(cfg.preemphasis) * x[:-1]
        n = cfg.num_frames(len(x))
        if cfg.pad_mode == "constant":
            start, segment = half, emphasized
        else:
            start, segment = 0, np.pad(emphasized, (half, half), mode=_NUMPY_PAD[cfg.pad_mode])
        reach = max((n - 1) * hop + win, start + len(segment))
        pieces.append((rows, start, segment))
        row_offsets.append(rows)
        counts.append(n)
        rows += -(-reach // hop)
    flat = np.zeros(rows * hop + win, dtype=np.float32)
    for row, start, segment in pieces:
        flat[row * hop + start: row * hop + start + len(segment)] = segment
    signal = torch.from_numpy(flat)
    framed = signal.as_strided((rows, win), (hop, 1))

    window = torch.hann_window(win)
    basis = None if linear else tacotron.mel_basis(cfg)
    out = torch.empty(rows, cfg.n_freqs if linear else cfg.num_mels)
    log_power = torch.empty(rows)
    chunk_frames = max(1, min(chunk_frames, rows))
    buf = torch.zeros(chunk_frames, n_fft)
    power = torch.empty(chunk_frames, cfg.n_freqs)
    for r0 in range(0, rows, chunk_frames):
        r1 = min(r0 + chunk_frames, rows)
        frames, pw = buf[: r1 - r0], power[: r1 - r0]
        torch.mul(framed[r0:r1], window, out=frames[:, :win])
        parts = torch.view_as_real(torch.fft.rfft(frames)).reshape(r1 - r0, -1).square_()
        torch.add(parts[:, 0::2], parts[:, 1::2], out=pw)
        log_power[r0:r1] = pw.sum(1).clamp_min_(1e-20).log_()
        magnitude = pw.sqrt_()
        spec = magnitude if linear else magnitude @ basis
        out[r0:r1] = tacotron.normalize(tacotron.amp_to_db(spec), cfg)
    feats = [out[r: r + n] for r, n in zip(row_offsets, counts)]
    energy = [log_power[r: r + n] for r, n in zip(row_offsets, counts)]
    return feats, energy


class SpeechFeatureExtractor:
    """Callable: list of waveforms at `sample_rate` -> list of (frames, dim) float32 arrays (None: too short)."""

    def __init__(self, feat_type: str, cfg: SpeechConfig):
        if feat_type not in SPEECH_CONFIGS or not isinstance(cfg, SPEECH_CONFIGS[feat_type]):
            raise ValueError(f"feature type {feat_type!r} does not take a {type(cfg).__name__}")
        self.feat_type = feat_type
        self.cfg = cfg
        self.sample_rate = sample_rate_of(cfg)

    @property
    def dim(self) -> int:
        cfg = self.cfg
        if isinstance(cfg, MfccConfig):
            return cfg.num_ceps
        if isinstance(cfg, FbankConfig):
            return cfg.num_mel_bins + int(cfg.use_energy)
        return cfg.n_freqs if self.feat_type == "linear" else cfg.num_mels

    def __call__(self, wavs: Sequence[np.ndarray], seeds: Sequence[int] | None = None) -> list[np.ndarray | None]:
        with torch.inference_mode():
            if isinstance(self.cfg, (FbankConfig, MfccConfig)):
                feats, energy = kaldi.compute(wavs, self.cfg, seeds=seeds)
            else:
                feats, energy = tacotron_features(wavs, self.cfg, linear=self.feat_type == "linear")
            out: list[np.ndarray | None] = []
            for f, e in zip(feats, energy):
                if f is not None and self.cfg.vad:
                    f = apply_vad(f, e, self.cfg.vad_threshold_db, self.cfg.vad_mode, self.cfg.vad_context)
                out.append(None if f is None else np.ascontiguousarray(f.numpy(), dtype=np.float32))
            return out


def make_extractor(feat_type: str, cfg: SpeechConfig) -> Callable[..., list[np.ndarray | None]]:
    return SpeechFeatureExtractor(feat_type, cfg)
