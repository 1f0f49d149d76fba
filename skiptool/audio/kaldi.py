"""Kaldi-compatible FBank and MFCC, batched: the values of `torchaudio.compliance.kaldi.fbank`/`mfcc`
(and so of Kaldi's compute-fbank-feats / compute-mfcc-feats), computed for many utterances at once.

The configs' keys are exactly the argument names of `torchaudio.compliance.kaldi.fbank`/`mfcc`,
with Kaldi's defaults (FBank: 80 bins and no dither), plus `waveform_scale` and the shared input
and VAD options of `SpeechInputConfig`.

No torch here: `import torch` alone costs 884 MiB of resident memory with PyPI's (CUDA) build,
more than `skiptool feats` needs for everything else, so this module is numpy, an FFT library
(MKL or scipy.fft: `skiptool.audio.fft`) and the numba kernels of `skiptool.audio.kernels`. The
few constants torchaudio would provide are written out below (Kaldi's mel banks and VTLN warp,
its window functions, the DCT and lifter); the tests compare them and the features with
torchaudio.compliance.kaldi and kaldi-native-fbank.

Why not a loop over per-utterance calls: they spend most of their time in small array ops.
`compute` copies the utterances of a group into one flat signal and lists where each frame
starts; then every step runs over many frames at once, `chunk_frames` at a time (which keeps
them in cache): one numba pass frames the signal the way Kaldi does (DC removal, raw energy,
pre-emphasis, window; `kernels.kaldi_frames`), MKL or scipy.fft takes the FFT, one pass gives
|X|^2 (`kernels.power_spectrum`), the mel projection skips the zeros of the filterbank
(`skiptool.audio.banded`), and numpy takes the log and the DCT. Work buffers are reused from
group to group.

Dither, when on, is added to the waveform once (seeded per utterance, so reruns give the same
features) rather than independently to every overlapping frame as Kaldi does; both are Gaussian
noise of the configured scale.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Literal, NamedTuple, Sequence

import numpy as np

from skiptool.audio.banded import BandedProjection
from skiptool.audio.fft import rfft_rows

# Kaldi's floor for log(): std::numeric_limits<float>::epsilon()
EPSILON = float(np.finfo(np.float32).eps)

WindowType = Literal["hamming", "hanning", "povey", "rectangular", "blackman"]
VadMode = Literal["span", "frames"]


@dataclass(frozen=True)
class SpeechInputConfig:
    """Options every speech feature config shares: channels, sample rate policy and energy VAD."""

    channel: int = -1  # -1: expect mono (several channels is an error unless downmix); N >= 0: take channel N
    downmix: bool = False  # average all channels of a multi-channel file
    allow_resample: bool = True  # resample other rates to the config's (with a notice); false: error
    vad: bool = False  # energy VAD: drop silence (paper 004)
    vad_threshold_db: float = -40.0  # frames below (loudest frame + this, in dB) are silence
    vad_mode: VadMode = "span"  # span: keep first..last voiced frame; frames: drop every silent frame
    vad_context: int = 2  # silent frames kept on each side of voiced ones

    def check_input_options(self) -> None:
        if self.channel < -1:
            raise ValueError(f"channel must be -1 (mono) or a channel index >= 0, got {self.channel}")
        if self.vad_threshold_db >= 0:
            raise ValueError(f"vad_threshold_db must be negative (dB below the loudest frame), got {self.vad_threshold_db}")
        if self.vad_context < 0:
            raise ValueError(f"vad_context must be >= 0, got {self.vad_context}")


@dataclass(frozen=True)
class _FbankFields:
    # The argument names and Kaldi defaults of compute-fbank-feats (torchaudio.compliance.kaldi.fbank),
    # except num_mel_bins (Kaldi: 23) and dither (Kaldi: 1.0).
    blackman_coeff: float = 0.42
    dither: float = 0.0
    energy_floor: float = 0.0
    frame_length: float = 25.0  # ms
    frame_shift: float = 10.0  # ms
    high_freq: float = 0.0  # <= 0: offset from Nyquist
    htk_compat: bool = False
    low_freq: float = 20.0
    min_duration: float = 0.0  # s; shorter utterances are skipped
    num_mel_bins: int = 80
    preemphasis_coefficient: float = 0.97
    raw_energy: bool = True
    remove_dc_offset: bool = True
    round_to_power_of_two: bool = True
    sample_frequency: float = 16000.0
    snip_edges: bool = True
    subtract_mean: bool = False
    use_energy: bool = False
    use_log_fbank: bool = True
    use_power: bool = True
    vtln_high: float = -500.0
    vtln_low: float = 100.0
    vtln_warp: float = 1.0
    window_type: WindowType = "povey"
    waveform_scale: float = 32768.0  # [-1, 1] floats -> int16 range, as Kaldi reads wav files


@dataclass(frozen=True)
class _MfccFields:
    # compute-mfcc-feats' argument names and Kaldi defaults (use_energy true, 23 bins, dither 1).
    blackman_coeff: float = 0.42
    cepstral_lifter: float = 22.0
    dither: float = 1.0
    energy_floor: float = 0.0
    frame_length: float = 25.0
    frame_shift: float = 10.0
    high_freq: float = 0.0
    htk_compat: bool = False
    low_freq: float = 20.0
    num_ceps: int = 13
    min_duration: float = 0.0
    num_mel_bins: int = 23
    preemphasis_coefficient: float = 0.97
    raw_energy: bool = True
    remove_dc_offset: bool = True
    round_to_power_of_two: bool = True
    sample_frequency: float = 16000.0
    snip_edges: bool = True
    subtract_mean: bool = False
    use_energy: bool = True
    vtln_high: float = -500.0
    vtln_low: float = 100.0
    vtln_warp: float = 1.0
    window_type: WindowType = "povey"
    waveform_scale: float = 32768.0


def _check_frame_options(cfg) -> None:
    window_size = int(cfg.sample_frequency * cfg.frame_length * 0.001)
    window_shift = int(cfg.sample_frequency * cfg.frame_shift * 0.001)
    if cfg.sample_frequency <= 0:
        raise ValueError(f"sample_frequency must be > 0, got {cfg.sample_frequency}")
    if window_size < 2 or window_shift < 1:
        raise ValueError(f"frame_length ({cfg.frame_length} ms) and frame_shift ({cfg.frame_shift} ms) "
                         f"give a window of {window_size} and a shift of {window_shift} samples; make them larger")
    padded = _next_power_of_2(window_size) if cfg.round_to_power_of_two else window_size
    if padded % 2:
        raise ValueError(f"the FFT size {padded} must be even; set round_to_power_of_two: true or change frame_length")
    if not 0.0 <= cfg.preemphasis_coefficient <= 1.0:
        raise ValueError(f"preemphasis_coefficient must be in [0, 1], got {cfg.preemphasis_coefficient}")
    if cfg.num_mel_bins <= 3:
        raise ValueError(f"num_mel_bins must be > 3, got {cfg.num_mel_bins}")
    nyquist = cfg.sample_frequency / 2
    high = cfg.high_freq + nyquist if cfg.high_freq <= 0 else cfg.high_freq
    if not (0 <= cfg.low_freq < nyquist and 0 < high <= nyquist and cfg.low_freq < high):
        raise ValueError(f"low_freq {cfg.low_freq} and high_freq {cfg.high_freq} must satisfy "
                         f"0 <= low_freq < high_freq <= Nyquist ({nyquist} Hz)")
    if cfg.waveform_scale <= 0:
        raise ValueError(f"waveform_scale must be > 0, got {cfg.waveform_scale}")
    if cfg.dither < 0:
        raise ValueError(f"dither must be >= 0, got {cfg.dither}")


@dataclass(frozen=True)
class FbankConfig(SpeechInputConfig, _FbankFields):
    """Kaldi FBank: torchaudio.compliance.kaldi.fbank's arguments, then the shared input/VAD options."""

    def __post_init__(self):
        _check_frame_options(self)
        self.check_input_options()


@dataclass(frozen=True)
class MfccConfig(SpeechInputConfig, _MfccFields):
    """Kaldi MFCC: torchaudio.compliance.kaldi.mfcc's arguments, then the shared input/VAD options."""

    def __post_init__(self):
        _check_frame_options(self)
        if not 0 < self.num_ceps <= self.num_mel_bins:
            raise ValueError(f"num_ceps ({self.num_ceps}) must be in 1..num_mel_bins ({self.num_mel_bins})")
        self.check_input_options()


def torchaudio_kwargs(cfg: FbankConfig | MfccConfig) -> dict:
    """The config as keyword arguments of torchaudio.compliance.kaldi.fbank/mfcc (for reference checks)."""
    own = {f.name for f in fields(_MfccFields if isinstance(cfg, MfccConfig) else _FbankFields)}
    return {f.name: getattr(cfg, f.name) for f in fields(cfg)
            if f.name in own and f.name != "waveform_scale"} | {"channel": -1}


class KaldiFeatures(NamedTuple):
    feats: list[np.ndarray | None]  # (frames, dim) float32 per utterance; None when too short for one frame
    log_energy: list[np.ndarray | None]  # (frames,) Kaldi's signal log energy, for VAD


def _next_power_of_2(x: int) -> int:
    return 1 if x == 0 else 2 ** (x - 1).bit_length()


@dataclass(frozen=True)
class _Geometry:
    window_size: int
    window_shift: int
    padded_window_size: int


def _geometry(cfg) -> _Geometry:
    size = int(cfg.sample_frequency * cfg.frame_length * 0.001)
    shift = int(cfg.sample_frequency * cfg.frame_shift * 0.001)
    return _Geometry(size, shift, _next_power_of_2(size) if cfg.round_to_power_of_two else size)


# ------------------------------------------------------------------------ Kaldi's constants
# As torchaudio.compliance.kaldi computes them (there in float32, here in float64, then float32).

def window_function(window_type: str, size: int, blackman_coeff: float = 0.42) -> np.ndarray:
    """Kaldi's analysis windows (feature-window.cc), float32: numpy's symmetric Hann and Hamming,
    Povey's Hann^0.85, and Blackman with Kaldi's adjustable coefficient."""
    if window_type == "hanning":
        w = np.hanning(size)
    elif window_type == "hamming":
        w = np.hamming(size)
    elif window_type == "povey":
        w = np.hanning(size) ** 0.85
    elif window_type == "rectangular":
        w = np.ones(size)
    elif window_type == "blackman":
        a = 2 * math.pi / (size - 1) * np.arange(size)
        w = blackman_coeff - 0.5 * np.cos(a) + (0.5 - blackman_coeff) * np.cos(2 * a)
    else:
        raise ValueError(f"unknown window_type {window_type!r}")
    return w.astype(np.float32)


def mel_scale(freq):
    return 1127.0 * np.log(1.0 + np.asarray(freq, dtype=np.float64) / 700.0)


def inverse_mel_scale(mel):
    return 700.0 * (np.exp(np.asarray(mel, dtype=np.float64) / 1127.0) - 1.0)


def _vtln_warp_freq(vtln_low: float, vtln_high: float, low_freq: float, high_freq: float, warp: float,
                    freq: np.ndarray) -> np.ndarray:
    """Kaldi's piecewise-linear VTLN warp (mel-computations.cc, VtlnWarpFreq)."""
    lo = vtln_low * max(1.0, warp)
    hi = vtln_high * min(1.0, warp)
    scale = 1.0 / warp
    scale_left = (scale * lo - low_freq) / (lo - low_freq)
    scale_right = (high_freq - scale * hi) / (high_freq - hi)
    res = np.where(freq < lo, low_freq + scale_left * (freq - low_freq),
                   np.where(freq < hi, scale * freq, high_freq + scale_right * (freq - high_freq)))
    return np.where((freq < low_freq) | (freq > high_freq), freq, res)


def mel_banks(num_bins: int, padded_window_size: int, sample_freq: float, low_freq: float, high_freq: float,
              vtln_low: float, vtln_high: float, vtln_warp: float) -> np.ndarray:
    """Kaldi's triangular mel banks (mel-computations.cc, MelBanks), (num_bins, padded_window_size // 2)
    float64: torchaudio.compliance.kaldi.get_mel_banks' first output."""
    num_fft_bins = padded_window_size // 2
    nyquist = 0.5 * sample_freq
    if high_freq <= 0.0:
        high_freq += nyquist
    if vtln_high < 0.0:
        vtln_high += nyquist
    mel_low, mel_high = float(mel_scale(low_freq)), float(mel_scale(high_freq))
    delta = (mel_high - mel_low) / (num_bins + 1)
    edges = mel_low + np.arange(num_bins + 2)[:, None] * delta  # left, centre, right of band b: b, b+1, b+2
    if vtln_warp != 1.0:
        edges = mel_scale(_vtln_warp_freq(vtln_low, vtln_high, low_freq, high_freq, vtln_warp,
                                          inverse_mel_scale(edges)))
    left, center, right = edges[:-2], edges[1:-1], edges[2:]
    mel = mel_scale(sample_freq / padded_window_size * np.arange(num_fft_bins))[None, :]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    if vtln_warp == 1.0:
        return np.maximum(0.0, np.minimum(up, down))
    # warping can reorder left, centre and right
    return np.where((mel > left) & (mel <= center), up, np.where((mel > center) & (mel < right), down, 0.0))


def dct_matrix(num_ceps: int, num_mel_bins: int, cepstral_lifter: float = 0.0) -> np.ndarray:
    """(num_mel_bins, num_ceps) float32: Kaldi's DCT (the orthonormal DCT-II, scipy.fft.dct) times
    its lifter 1 + Q/2 sin(pi i / Q) when cepstral_lifter Q != 0."""
    import scipy.fft

    dct = scipy.fft.dct(np.eye(num_mel_bins), type=2, norm="ortho", axis=0)[:num_ceps].T
    if cepstral_lifter != 0.0:
        dct = dct * (1.0 + 0.5 * cepstral_lifter * np.sin(math.pi * np.arange(num_ceps) / cepstral_lifter))
    return np.ascontiguousarray(dct, dtype=np.float32)


@lru_cache(maxsize=16)
def _window(cfg) -> np.ndarray:
    return window_function(cfg.window_type, _geometry(cfg).window_size, cfg.blackman_coeff)


@lru_cache(maxsize=16)
def _mel_projection(cfg) -> np.ndarray:
    """(FFT bins, mel bins) float32 from Kaldi's mel banks; the Nyquist bin has weight 0, as in torchaudio."""
    g = _geometry(cfg)
    banks = mel_banks(cfg.num_mel_bins, g.padded_window_size, cfg.sample_frequency, cfg.low_freq,
                      cfg.high_freq, cfg.vtln_low, cfg.vtln_high, cfg.vtln_warp)
    out = np.zeros((g.padded_window_size // 2 + 1, cfg.num_mel_bins), np.float32)
    out[:-1] = banks.T
    return out


@lru_cache(maxsize=16)
def _banded_projection(cfg) -> BandedProjection:
    return BandedProjection(_mel_projection(cfg))


@lru_cache(maxsize=16)
def _dct_lifter(cfg: MfccConfig) -> np.ndarray:
    return dct_matrix(cfg.num_ceps, cfg.num_mel_bins, cfg.cepstral_lifter)


# ------------------------------------------------------------------------------ the features

def num_frames(num_samples: int, cfg) -> int:
    """Frames Kaldi makes from `num_samples` samples (0 when too short for one frame with snip_edges)."""
    return _num_frames(num_samples, _geometry(cfg), cfg.snip_edges)


def _num_frames(num_samples: int, g: _Geometry, snip_edges: bool) -> int:
    if snip_edges:
        return 0 if num_samples < g.window_size else 1 + (num_samples - g.window_size) // g.window_shift
    return (num_samples + g.window_shift // 2) // g.window_shift


class Workspace:
    """Work buffers reused from one group of utterances to the next: fresh multi-megabyte
    allocations per group would cost a page fault per 4 KiB (as much as the arithmetic)."""

    def __init__(self):
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
        """A C-contiguous array of `shape` (contents undefined), backed by a buffer that grows as needed."""
        n = math.prod(shape)
        buf = self._buffers.get(name)
        if buf is None or buf.size < n or buf.dtype != dtype:
            buf = self._buffers[name] = np.empty(max(n, 1), dtype=dtype)
        return buf[:n].reshape(shape)


def run_groups(fn, groups: list, threads: int = 1, make_work=Workspace) -> None:
    """fn(group, work) for each group, with work buffers from `make_work()` reused from group to group:
    in this thread, or spread over `threads` threads, each with its own buffers (the work releases
    the GIL: numba's nogil kernels, the FFT libraries and BLAS)."""
    if threads <= 1 or len(groups) <= 1:
        work = make_work()
        for group in groups:
            fn(group, work)
        return
    local = threading.local()

    def task(group) -> None:
        if not hasattr(local, "work"):
            local.work = make_work()
        fn(group, local.work)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(task, groups))


def compute(wavs: Sequence, cfg: FbankConfig | MfccConfig, *, seeds: Sequence[int] | None = None,
            group_frames: int = 4096, chunk_frames: int = 512, threads: int = 1) -> KaldiFeatures:
    """Kaldi FBank or MFCC (by the config's type) of 1-D float waveforms in [-1, 1] at cfg.sample_frequency
    (numpy arrays, or anything np.asarray takes, CPU torch tensors included); float32 numpy results.

    Utterances are processed in groups of about `group_frames` frames (bounding memory); the
    framing, FFT and mel steps then run over `chunk_frames` frames at a time, which keeps them
    in cache; `threads` > 1 computes groups in parallel. `seeds` (one per utterance) seed the
    dither noise; without them the utterance index does.
    """
    feats: list[np.ndarray | None] = [None] * len(wavs)
    energy: list[np.ndarray | None] = [None] * len(wavs)
    min_samples = cfg.min_duration * cfg.sample_frequency
    groups: list[list[tuple[int, np.ndarray, int]]] = []  # (index, waveform, frames) per utterance
    group: list[tuple[int, np.ndarray, int]] = []
    frames_in_group = 0
    g = _geometry(cfg)
    size, shift, snip_edges = g.window_size, g.window_shift, cfg.snip_edges
    for i, wav in enumerate(wavs):
        x = _as_numpy(wav)
        samples = x.shape[0]
        if snip_edges:  # _num_frames, inline: this loop runs once per utterance
            n = 0 if samples < size else 1 + (samples - size) // shift
        else:
            n = (samples + shift // 2) // shift
        if n == 0 or samples < min_samples:
            continue
        if group and frames_in_group + n > group_frames:
            groups.append(group)
            group, frames_in_group = [], 0
        group.append((i, x, n))
        frames_in_group += n
    if group:
        groups.append(group)
    run_groups(lambda group, work: _compute_group(group, cfg, seeds, chunk_frames, feats, energy, work),
               groups, threads)
    return KaldiFeatures(feats, energy)


def fbank(wavs: Sequence, cfg: FbankConfig | None = None, **kw) -> list[np.ndarray | None]:
    """Batched `torchaudio.compliance.kaldi.fbank` of [-1, 1] waveforms (scaled by cfg.waveform_scale)."""
    return compute(wavs, cfg or FbankConfig(), **kw).feats


def mfcc(wavs: Sequence, cfg: MfccConfig | None = None, **kw) -> list[np.ndarray | None]:
    """Batched `torchaudio.compliance.kaldi.mfcc` of [-1, 1] waveforms (scaled by cfg.waveform_scale)."""
    return compute(wavs, cfg or MfccConfig(), **kw).feats


def _as_numpy(wav) -> np.ndarray:
    """A 1-D float32 array of a waveform: numpy, a list, or a torch tensor (read without importing torch)."""
    if type(wav) is np.ndarray and wav.dtype == np.float32 and wav.ndim == 1:
        return wav
    if hasattr(wav, "detach"):  # a torch tensor
        wav = wav.detach().cpu().numpy()
    return np.asarray(wav, dtype=np.float32).reshape(-1)


def _edge_padded(x: np.ndarray, g: _Geometry) -> np.ndarray:
    """snip_edges=False: Kaldi's reflection at both ends, built as torchaudio's _get_strided does."""
    pad = g.window_size // 2 - g.window_shift // 2
    if pad > 0:
        return np.concatenate((x[:pad][::-1], x, x[::-1]))
    return np.concatenate((x[-pad:], x[::-1]))


def _layout(group, cfg, g: _Geometry, seeds, work: Workspace):
    """Copy the group's utterances (scaled, dithered, edge-padded) into one signal. Returns
    (signal, each frame's first sample, each utterance's first frame and frame count)."""
    shift, size = g.window_shift, g.window_size
    signals, counts = [], []
    for i, x, n in group:
        if cfg.dither != 0.0:
            rng = np.random.default_rng(int(seeds[i]) if seeds is not None else i)
            x = x + rng.standard_normal(len(x), dtype=np.float32) * np.float32(cfg.dither / cfg.waveform_scale)
        if not cfg.snip_edges:
            x = _edge_padded(x, g)[: (n - 1) * shift + size]
        signals.append(x)
        counts.append(n)
    lengths = np.array([len(x) for x in signals])
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    signal = np.concatenate(signals, out=work.get("signal", (int(lengths.sum()),)))
    signal *= np.float32(cfg.waveform_scale)
    counts = np.array(counts)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    # frame r of utterance u starts at offsets[u] + r * shift
    starts = np.repeat(offsets - first * shift, counts) + np.arange(int(counts.sum())) * shift
    return signal, starts, first.tolist(), counts.tolist()


def _compute_group(group, cfg, seeds, chunk_frames, feats_out, energy_out, work: Workspace) -> None:
    from skiptool.audio import kernels  # numba: imported on first use

    g = _geometry(cfg)
    is_mfcc = isinstance(cfg, MfccConfig)
    signal, starts, first, counts = _layout(group, cfg, g, seeds, work)
    total_rows = starts.shape[0]

    need_energy = cfg.use_energy or cfg.vad
    energy_kind = (kernels.ENERGY_RAW if cfg.raw_energy else kernels.ENERGY_WINDOWED) if need_energy \
        else kernels.ENERGY_NONE
    log_energy = np.empty(total_rows, np.float32) if need_energy else work.get("no_energy", (1,))
    window = _window(cfg)
    coef = np.float32(cfg.preemphasis_coefficient)

    projection = _banded_projection(cfg)
    use_log = is_mfcc or cfg.use_log_fbank
    use_power = getattr(cfg, "use_power", True)
    chunk_frames = min(chunk_frames, total_rows)
    frames_buf = work.get("frames", (chunk_frames, g.padded_window_size))
    frames_buf[:, g.window_size:] = 0.0  # the FFT's zero padding; the kernel writes only [:, :size]
    power_buf = work.get("power", (chunk_frames, g.padded_window_size // 2 + 1))
    spec_buf = work.get("spectrum", power_buf.shape, np.complex64)  # the FFT's output, reused
    mel_buf = work.get("mel", (cfg.num_mel_bins, chunk_frames))
    out = np.empty((total_rows, cfg.num_ceps if is_mfcc else cfg.num_mel_bins), np.float32)
    dct = _dct_lifter(cfg) if is_mfcc else None
    views = None  # the buffers' views for a full chunk, taken once
    for r0 in range(0, total_rows, chunk_frames):
        r1 = min(r0 + chunk_frames, total_rows)
        c = r1 - r0
        if views is None or c != chunk_frames:
            frames, power, mel_t, spec_out = frames_buf[:c], power_buf[:c], mel_buf[:, :c], spec_buf[:c]
            views = (frames, power, mel_t, spec_out, projection.bind(power, mel_t))
        frames, power, mel_t, spec_out, project = views
        kernels.kaldi_frames(signal, starts[r0:r1], window, coef, cfg.remove_dc_offset, energy_kind, frames,
                             log_energy[r0:r1] if need_energy else log_energy)
        spec = rfft_rows(frames, out=spec_out)  # complex64
        kernels.power_spectrum(spec.view(np.float32), power)  # |X|^2 = re^2 + im^2
        if not use_power:
            np.sqrt(power, out=power)
        project()  # mel_t = (power @ mel banks).T
        if is_mfcc:
            np.log(np.maximum(mel_t, EPSILON, out=mel_t), out=mel_t)
            np.matmul(mel_t.T, dct, out=out[r0:r1])
        else:
            out[r0:r1] = mel_t.T
    if not is_mfcc and use_log:
        np.log(np.maximum(out, EPSILON, out=out), out=out)

    if need_energy:
        np.log(np.maximum(log_energy, EPSILON, out=log_energy), out=log_energy)
        if cfg.energy_floor > 0.0:
            np.maximum(log_energy, np.float32(math.log(cfg.energy_floor)), out=log_energy)
    if is_mfcc:
        if cfg.use_energy:
            out[:, 0] = log_energy
        if cfg.htk_compat:
            c0 = out[:, :1] if cfg.use_energy else out[:, :1] * np.float32(math.sqrt(2))
            out = np.concatenate((out[:, 1:], c0), axis=1)
    elif cfg.use_energy:
        e = log_energy[:, None]
        out = np.concatenate((out, e) if cfg.htk_compat else (e, out), axis=1)

    for (i, _, _), start, n in zip(group, first, counts):
        utt = out[start: start + n]
        if cfg.subtract_mean:
            utt = utt - utt.mean(0, keepdims=True)
        feats_out[i] = utt
        if need_energy:
            energy_out[i] = log_energy[start: start + n]


def reference(wav, cfg: FbankConfig | MfccConfig):
    """One utterance through torchaudio.compliance.kaldi itself (the slow reference the tests compare
    with; imports torch), as a float32 numpy array."""
    import torch
    import torchaudio.compliance.kaldi as ta_kaldi

    fn = ta_kaldi.mfcc if isinstance(cfg, MfccConfig) else ta_kaldi.fbank
    x = torch.as_tensor(_as_numpy(wav)).reshape(1, -1) * cfg.waveform_scale
    return fn(x, **torchaudio_kwargs(cfg)).numpy()


__all__ = ["FbankConfig", "MfccConfig", "SpeechInputConfig", "KaldiFeatures", "compute", "fbank", "mfcc",
           "num_frames", "reference", "torchaudio_kwargs", "window_function", "mel_banks", "dct_matrix",
           "mel_scale", "inverse_mel_scale"]
