"""Configured feature extractors over batches of waveforms, and cached resampling.

`make_extractor(type, config)` gives a callable that turns a list of mono float waveforms (at the
config's sample rate) into a list of (frames, dim) float32 arrays, with energy VAD applied when
the config asks for it. Types: `fbank`, `mfcc` (Kaldi, `skiptool.audio.kaldi`) and `mel`,
`linear` (Tacotron, `skiptool.audio.tacotron`).

Like those modules, this one never imports torch (`skiptool feats` stays under 1 GiB; see
`skiptool.audio.kaldi`): arrays in and out are numpy, FFTs MKL's or scipy.fft's (`skiptool.audio.fft`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from skiptool.audio import kaldi, tacotron
from skiptool.audio.banded import BandedProjection
from skiptool.audio.fft import rfft_rows
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
def _resampler(orig: int, new: int) -> tuple[np.ndarray, int, int, int]:
    """torchaudio.functional.resample's windowed-sinc kernel (its defaults: sinc_interp_hann,
    lowpass_filter_width 6, rolloff 0.99), built once per rate pair: ((new, 2 * width + orig)
    float32 filters, width, orig, new) with the rates divided by their gcd. Written out (as
    torchaudio's _get_sinc_resample_kernel computes it) to give torchaudio's values without
    importing torch; scipy.signal.resample_poly designs another filter."""
    gcd = math.gcd(orig, new)
    orig, new = orig // gcd, new // gcd
    lowpass_width = 6
    base = min(orig, new) * 0.99
    width = math.ceil(lowpass_width * orig / base)
    idx = np.arange(-width, width + orig, dtype=np.float64)[None, :] / orig
    t = (np.arange(0, -new, -1, dtype=np.float32) / np.float32(new)).astype(np.float64)[:, None] + idx
    t = np.clip(t * base, -lowpass_width, lowpass_width)
    window = np.cos(t * math.pi / lowpass_width / 2) ** 2
    kernels = np.sinc(t) * window * (base / orig)  # np.sinc(t) = sin(pi t) / (pi t), 1 at 0
    return kernels.astype(np.float32), width, orig, new


def resample(wav, orig: int, new: int) -> np.ndarray:
    """torchaudio.functional.resample (its defaults) of a 1-D waveform, with the kernel cached per (orig, new)."""
    x = kaldi._as_numpy(wav)
    if orig == new:
        return x
    kernels, width, o, n = _resampler(int(orig), int(new))
    padded = np.pad(x, (width, width + o))
    steps = (len(padded) - kernels.shape[1]) // o + 1
    windows = np.lib.stride_tricks.as_strided(padded, (steps, kernels.shape[1]), (o * 4, 4), writeable=False)
    out = (np.ascontiguousarray(windows) @ kernels.T).reshape(-1)  # contiguous: a BLAS product  # output sample j * n + k from filter k at input step j
    return out[: math.ceil(np.float32(n * len(x) / o))]  # torchaudio's length (computed in float32)


# torch.stft pad modes -> numpy's names for the same padding
_NUMPY_PAD = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def tacotron_features(wavs: Sequence, cfg: tacotron.TacotronSpecConfig, linear: bool = False,
                      chunk_frames: int = 128, group_frames: int = 2048, energy: bool = True,
                      threads: int = 1) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """Batched `tacotron.mel_spectrogram` / `linear_spectrogram`: (frames, dims) in [0, 1] per utterance,
    and (when `energy`) each frame's natural-log power (for VAD; else None).

    Same values as the per-utterance functions (center=True STFT); waveforms are numpy arrays
    (or CPU torch tensors), the results float32 numpy arrays. The utterances of a group of about
    `group_frames` frames are laid out in one signal, which one numba pass frames, pre-emphasises
    and windows (`kernels.stft_frames`). Only the window's `win_length` samples of each `n_fft`
    frame are non-zero and an FFT's magnitude does not depend on where in the frame they sit, so
    frames hold the windowed samples followed by zeros. Framing, FFT (MKL or scipy.fft) and
    magnitude run `chunk_frames` frames at a time in reused buffers (cache-sized); the mel
    projection skips the zeros of the filterbank (`skiptool.audio.banded`); dB and normalisation
    run once per group. `threads` > 1 computes groups in parallel.
    """
    feats: list[np.ndarray] = [None] * len(wavs)  # type: ignore[list-item]
    energies: list[np.ndarray | None] = [None] * len(wavs)
    chunk_frames = max(1, chunk_frames)
    groups: list[tuple[list[np.ndarray], list[int]]] = []  # (waveforms, their indices)
    group: list[np.ndarray] = []
    index: list[int] = []
    frames = 0
    for i, wav in enumerate(wavs):
        x = kaldi._as_numpy(wav)
        n = cfg.num_frames(len(x))
        if group and frames + n > group_frames:
            groups.append((group, index))
            group, index, frames = [], [], 0
        group.append(x)
        index.append(i)
        frames += n
    if group:
        groups.append((group, index))
    kaldi.run_groups(lambda g, bufs: _tacotron_group(*g, cfg, linear, energy, bufs, feats, energies), groups,
                     threads, lambda: _TacotronBuffers(cfg, linear, chunk_frames))
    return feats, energies


class _TacotronBuffers:
    """Per-chunk work buffers, allocated once per call (and thread)."""

    def __init__(self, cfg: tacotron.TacotronSpecConfig, linear: bool, chunk: int):
        self.chunk = chunk
        self.frames = np.zeros((chunk, cfg.n_fft), np.float32)  # the columns past win_length stay zero
        self.magnitude = np.empty((chunk, cfg.n_freqs), np.float32)
        self.spectrum = np.empty((chunk, cfg.n_freqs), np.complex64)  # the FFT's output, reused
        self.window = tacotron.hann_window(cfg.win_length)
        self.projection = None if linear else _banded_mel(cfg)
        self.mel_t = None if linear else np.empty((cfg.num_mels, chunk), np.float32)
        self.work = kaldi.Workspace()


def _tacotron_group(xs: list[np.ndarray], index: list[int], cfg: tacotron.TacotronSpecConfig, linear: bool,
                    energy: bool, bufs: _TacotronBuffers, feats_out: list, energy_out: list) -> None:
    from skiptool.audio import kernels  # numba: imported on first use

    n_fft, win, hop = cfg.n_fft, cfg.win_length, cfg.hop_length
    half = n_fft // 2 - (n_fft - win) // 2  # samples of padding before frame 0's window starts
    coef = np.float32(cfg.preemphasis)
    # With zero padding, pre-emphasis can run on the laid-out signal as it is framed: each utterance
    # is preceded by zeros (so its first sample is kept as is), and the samples past its end count
    # as zeros (`stops`). Other padding modes pre-emphasise each utterance before padding it.
    emphasize_all = cfg.pad_mode == "constant" and half >= 1
    pieces, utt_rows, counts, ends = [], [], [], []
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
        counts.append(n)
        utt_rows.append(-(-reach // hop))
        rows += utt_rows[-1]
    signal = bufs.work.get("signal", (rows * hop + win + 1,))  # reused: no page faults per group
    end = 0
    for row, start, segment in pieces:
        start += row * hop
        signal[end:start] = 0.0  # the padding (the buffer holds the previous group's samples)
        end = start + len(segment)
        signal[start:end] = segment
    signal[end:] = 0.0
    if emphasize_all:
        stops = np.repeat(np.array(ends), utt_rows)  # each row's utterance ends there
    else:
        coef, stops = np.float32(0.0), np.full(rows, len(signal))
    row_offsets = np.concatenate(([0], np.cumsum(utt_rows)[:-1])).tolist()

    out = np.empty((rows, cfg.n_freqs if linear else cfg.num_mels), np.float32)
    log_power = np.empty(rows, np.float32) if energy else None
    views = None  # the buffers' views for a full chunk, taken once
    for r0 in range(0, rows, bufs.chunk):
        r1 = min(r0 + bufs.chunk, rows)
        c = r1 - r0
        if views is None or c != bufs.chunk:
            frames, mag, spec_out = bufs.frames[:c], bufs.magnitude[:c], bufs.spectrum[:c]
            project = None if linear else bufs.projection.bind(mag, bufs.mel_t[:, :c])
            views = (frames, mag, spec_out, project)
        frames, mag, spec_out, project = views
        kernels.stft_frames(signal, hop, r0, stops[r0:r1], coef, bufs.window, frames)
        spec = rfft_rows(frames, out=spec_out).view(np.float32)  # complex64, interleaved
        if linear:
            mag = out[r0:r1]
        kernels.magnitude_spectrum(spec, mag)  # |X|
        if energy:
            np.einsum("ij,ij->i", mag, mag, out=log_power[r0:r1])  # sum |X|^2
        if not linear:
            out[r0:r1] = project().T
    # tacotron.normalize(tacotron.amp_to_db(out)) in place, its affine steps folded into one
    span = -cfg.min_level_db
    np.log10(np.maximum(out, np.float32(1e-5), out=out), out=out)
    out *= np.float32(20.0 / span)
    out += np.float32((-cfg.ref_level_db - cfg.min_level_db) / span)
    np.clip(out, 0.0, 1.0, out=out)
    if energy:
        np.log(np.maximum(log_power, np.float32(1e-20), out=log_power), out=log_power)
    for i, r, n in zip(index, row_offsets, counts):
        feats_out[i] = out[r: r + n]
        energy_out[i] = log_power[r: r + n] if energy else None


@lru_cache(maxsize=8)
def _banded_mel(cfg: tacotron.TacotronSpecConfig) -> BandedProjection:
    return BandedProjection(tacotron.mel_filterbank(cfg))


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
        if isinstance(self.cfg, (FbankConfig, MfccConfig)):
            feats, energy = kaldi.compute(wavs, self.cfg, seeds=seeds)
        else:
            feats, energy = tacotron_features(wavs, self.cfg, linear=self.feat_type == "linear", energy=self.cfg.vad)
        out: list[np.ndarray | None] = []
        for f, e in zip(feats, energy):
            if f is not None and self.cfg.vad:
                f = apply_vad(f, e, self.cfg.vad_threshold_db, self.cfg.vad_mode, self.cfg.vad_context)
            out.append(None if f is None else np.ascontiguousarray(f, dtype=np.float32))
        return out


def make_extractor(feat_type: str, cfg: SpeechConfig) -> Callable[..., list[np.ndarray | None]]:
    return SpeechFeatureExtractor(feat_type, cfg)
