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
from skiptool.audio.banded import BandedProjection
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
                      linear: bool = False, chunk_frames: int = 128, group_frames: int = 2048,
                      energy: bool = True) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """Batched `tacotron.mel_spectrogram` / `linear_spectrogram`: (frames, dims) in [0, 1] per utterance,
    and (when `energy`) each frame's natural-log power (for VAD; else None).

    Same values as the per-utterance functions (center=True STFT). The utterances of a group of
    about `group_frames` frames are laid out in one signal and framed by one strided view, as in
    `skiptool.audio.kaldi`. Only the window's `win_length` samples of each `n_fft` frame are
    non-zero and an FFT's magnitude does not depend on where in the frame they sit, so frames
    hold the windowed samples followed by zeros. The FFT and magnitude run `chunk_frames` frames
    at a time in reused buffers (cache-sized: no allocation, no page faults per chunk); the mel
    projection skips the zeros of the filterbank (`skiptool.audio.banded`); dB and normalisation
    run once per group.
    """
    feats: list[torch.Tensor] = [None] * len(wavs)  # type: ignore[list-item]
    energies: list[torch.Tensor | None] = [None] * len(wavs)
    chunk_frames = max(1, chunk_frames)
    bufs = _TacotronBuffers(cfg, linear, chunk_frames)
    group: list[np.ndarray] = []
    index: list[int] = []
    frames = 0
    for i, wav in enumerate(wavs):
        x = np.asarray(wav.numpy() if isinstance(wav, torch.Tensor) else wav, dtype=np.float32).reshape(-1)
        n = cfg.num_frames(len(x))
        if group and frames + n > group_frames:
            _tacotron_group(group, index, cfg, linear, energy, bufs, feats, energies)
            group, index, frames = [], [], 0
        group.append(x)
        index.append(i)
        frames += n
    if group:
        _tacotron_group(group, index, cfg, linear, energy, bufs, feats, energies)
    return feats, energies


class _TacotronBuffers:
    """Per-chunk work buffers, allocated once per call."""

    def __init__(self, cfg: tacotron.TacotronSpecConfig, linear: bool, chunk: int):
        self.chunk = chunk
        self.frames = torch.zeros(chunk, cfg.n_fft)  # the columns past win_length stay zero
        self.magnitude = torch.empty(chunk, cfg.n_freqs)
        self.window = tacotron._window(cfg.win_length, "cpu")
        self.projection = None if linear else _banded_mel(cfg)
        self.mel_t = None if linear else torch.empty(cfg.num_mels, chunk)
        self.work = kaldi.Workspace()


def _tacotron_group(xs: list[np.ndarray], index: list[int], cfg: tacotron.TacotronSpecConfig, linear: bool,
                    energy: bool, bufs: _TacotronBuffers, feats_out: list, energy_out: list) -> None:
    from skiptool.audio import kernels  # numba: imported on first use

    n_fft, win, hop = cfg.n_fft, cfg.win_length, cfg.hop_length
    half = n_fft // 2 - (n_fft - win) // 2  # samples of padding before frame 0's window starts
    coef = np.float32(cfg.preemphasis)
    # With zero padding, pre-emphasis can run once over the whole laid-out signal: each utterance
    # is preceded by zeros (so its first sample is kept as is), and the one sample it spills past
    # its end is zeroed afterwards.
    emphasize_all = cfg.pad_mode == "constant" and half >= 1
    pieces, row_offsets, counts, ends = [], [], [], []
    rows = 0
    for x in xs:
        n = cfg.num_frames(len(x))
        if emphasize_all:
            start, segment = half, x
        else:
            emphasized = x.copy()
            if cfg.preemphasis:
                emphasized[1:] -= coef * x[:-1]
            if cfg.pad_mode == "constant":
                start, segment = half, emphasized
            else:
                start, segment = 0, np.pad(emphasized, (half, half), mode=_NUMPY_PAD[cfg.pad_mode])
        reach = max((n - 1) * hop + win, start + len(segment))
        pieces.append((rows, start, segment))
        ends.append(rows * hop + start + len(segment))
        row_offsets.append(rows)
        counts.append(n)
        rows += -(-reach // hop)
    signal = bufs.work.get("signal", (rows * hop + win + 1,))  # reused: no page faults per group
    flat = signal.numpy()
    end = 0
    for row, start, segment in pieces:
        start += row * hop
        flat[end:start] = 0.0  # the padding (the buffer holds the previous group's samples)
        end = start + len(segment)
        flat[start:end] = segment
    flat[end:] = 0.0
    if emphasize_all and cfg.preemphasis:
        raw = signal
        signal = bufs.work.get("emphasized", raw.shape)
        signal[0] = raw[0]
        torch.sub(raw[1:], raw[:-1], alpha=float(coef), out=signal[1:])
        signal[ends] = 0.0  # the spill past each utterance's end (the padding there is zero)
    framed = signal.as_strided((rows, win), (hop, 1))

    out = torch.empty(rows, cfg.n_freqs if linear else cfg.num_mels)
    log_power = torch.empty(rows) if energy else None
    views = None  # the buffers' views for a full chunk, taken once
    for r0 in range(0, rows, bufs.chunk):
        r1 = min(r0 + bufs.chunk, rows)
        c = r1 - r0
        if views is None or c != bufs.chunk:
            frames, mag = bufs.frames[:c], bufs.magnitude[:c]
            project = None if linear else bufs.projection.bind(mag, bufs.mel_t[:, :c])
            views = (frames, frames[:, :win], mag, mag.numpy(), project)
        frames, body, mag, mag_np, project = views
        torch.mul(framed[r0:r1], bufs.window, out=body)
        spec = torch.view_as_real(torch.fft.rfft(frames)).view(c, -1).numpy()
        if linear:
            kernels.magnitude_spectrum(spec, out[r0:r1].numpy())  # |X|
            mag = out[r0:r1]
        else:
            kernels.magnitude_spectrum(spec, mag_np)
        if energy:
            torch.linalg.vecdot(mag, mag, out=log_power[r0:r1])  # sum |X|^2
        if not linear:
            out[r0:r1] = project().T
    # tacotron.normalize(tacotron.amp_to_db(out)) in place, its affine steps folded into one
    span = -cfg.min_level_db
    out.clamp_min_(1e-5).log10_().mul_(20.0 / span).add_((-cfg.ref_level_db - cfg.min_level_db) / span)
    out.clamp_(0.0, 1.0)
    if energy:
        log_power.clamp_min_(1e-20).log_()
    for i, r, n in zip(index, row_offsets, counts):
        feats_out[i] = out[r: r + n]
        energy_out[i] = log_power[r: r + n] if energy else None


@lru_cache(maxsize=8)
def _banded_mel(cfg: tacotron.TacotronSpecConfig) -> BandedProjection:
    return BandedProjection(tacotron.mel_basis(cfg))


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
                feats, energy = tacotron_features(wavs, self.cfg, linear=self.feat_type == "linear",
                                                  energy=self.cfg.vad)
            out: list[np.ndarray | None] = []
            for f, e in zip(feats, energy):
                if f is not None and self.cfg.vad:
                    f = apply_vad(f, e, self.cfg.vad_threshold_db, self.cfg.vad_mode, self.cfg.vad_context)
                out.append(None if f is None else np.ascontiguousarray(f.numpy(), dtype=np.float32))
            return out


def make_extractor(feat_type: str, cfg: SpeechConfig) -> Callable[..., list[np.ndarray | None]]:
    return SpeechFeatureExtractor(feat_type, cfg)
