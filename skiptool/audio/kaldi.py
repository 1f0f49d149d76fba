"""Kaldi-compatible FBank and MFCC, batched: the values of `torchaudio.compliance.kaldi.fbank`/`mfcc`
(and so of Kaldi's compute-fbank-feats / compute-mfcc-feats), computed for many utterances at once.

The configs' keys are exactly the argument names of `torchaudio.compliance.kaldi.fbank`/`mfcc`,
with Kaldi's defaults (FBank: 80 bins and no dither), plus `waveform_scale` and the shared input
and VAD options of `SpeechInputConfig`.

Why not a loop over `torchaudio.compliance.kaldi.fbank`: per-utterance calls spend most of their
time in small tensor ops. `compute` lays the utterances of a group out in one flat signal, each
starting on a frame-shift boundary, so that one strided view frames them all and every step
(pre-emphasis, DC removal, window, FFT, power, mel, log, DCT) is one tensor op over many frames
(taken in cache-sized chunks). Mel banks, windows, DCT and lifter come from torchaudio's own
helpers; written by hand is only the layout and this algebra, which no library does:

* pre-emphasis is applied once to the signal instead of to every frame; Kaldi's per-frame
  pre-emphasis differs only in each frame's first sample, which is fixed per frame (and is
  multiplied by zero anyway for the Povey and Hann windows);
* DC removal commutes with it: preemph(x - mean) = preemph(x) - (mean - coef * mean), so each
  frame's mean is subtracted from the pre-emphasised frame as it is copied out;
* frame means and the raw energy sum((x - mean)^2) come from sums over frame-shift blocks (each
  sample read once, not frame_length / frame_shift times), the blocks centred in float32 and
  combined in float64 (`_frame_moments`);
* |X|^2 is one fused pass (`skiptool.audio.kernels`), the mel projection skips the zeros of the
  filterbank (`skiptool.audio.banded`), and the work buffers are reused from group to group.

Constant (DC-only) frames are the one place where results differ visibly: after DC removal they
are all rounding noise, which this code and torchaudio round differently (both far below any
real signal).

Dither, when on, is added to the waveform once (seeded per utterance, so reruns give the same
features) rather than independently to every overlapping frame as Kaldi does; both are Gaussian
noise of the configured scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Literal, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio.compliance.kaldi as ta_kaldi

from skiptool.audio.banded import BandedProjection

# Kaldi's floor for log(): std::numeric_limits<float>::epsilon()
EPSILON = float(torch.finfo(torch.float32).eps)

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
    feats: list[torch.Tensor | None]  # (frames, dim) per utterance; None when too short for one frame
    log_energy: list[torch.Tensor | None]  # (frames,) Kaldi's signal log energy, for VAD


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


@lru_cache(maxsize=16)
def _window(cfg) -> torch.Tensor:
    g = _geometry(cfg)
    return ta_kaldi._feature_window_function(cfg.window_type, g.window_size, cfg.blackman_coeff,
                                             torch.device("cpu"), torch.float32)


@lru_cache(maxsize=16)
def _mel_projection(cfg) -> torch.Tensor:
    """(FFT bins, mel bins) from torchaudio's Kaldi mel banks."""
    g = _geometry(cfg)
    banks, _ = ta_kaldi.get_mel_banks(cfg.num_mel_bins, g.padded_window_size, cfg.sample_frequency, cfg.low_freq,
                                      cfg.high_freq, cfg.vtln_low, cfg.vtln_high, cfg.vtln_warp)
    return F.pad(banks, (0, 1)).T.contiguous().float()  # the Nyquist bin has weight 0, as in torchaudio


@lru_cache(maxsize=16)
def _banded_projection(cfg) -> BandedProjection:
    return BandedProjection(_mel_projection(cfg))


@lru_cache(maxsize=16)
def _dct_lifter(cfg: MfccConfig) -> torch.Tensor:
    dct = ta_kaldi._get_dct_matrix(cfg.num_ceps, cfg.num_mel_bins)
    if cfg.cepstral_lifter != 0.0:
        dct = dct * ta_kaldi._get_lifter_coeffs(cfg.num_ceps, cfg.cepstral_lifter).unsqueeze(0)
    return dct.float().contiguous()


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
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """A contiguous tensor of `shape` (contents undefined), backed by a buffer that grows as needed."""
        n = math.prod(shape)
        buf = self._buffers.get(name)
        if buf is None or buf.numel() < n or buf.dtype != dtype:
            buf = self._buffers[name] = torch.empty(max(n, 1), dtype=dtype)
        return buf[:n].view(shape)


def compute(wavs: Sequence[torch.Tensor | np.ndarray], cfg: FbankConfig | MfccConfig, *,
            seeds: Sequence[int] | None = None, group_frames: int = 4096,
            chunk_frames: int = 512) -> KaldiFeatures:
    """Kaldi FBank or MFCC (by the config's type) of 1-D float waveforms in [-1, 1] at cfg.sample_frequency.

    Utterances are laid out in groups of about `group_frames` frames (bounding memory); the FFT
    and mel steps then run over `chunk_frames` frames at a time, which keeps them in cache.
    `seeds` (one per utterance) seed the dither noise; without them the utterance index does.
    """
    feats: list[torch.Tensor | None] = [None] * len(wavs)
    energy: list[torch.Tensor | None] = [None] * len(wavs)
    min_samples = cfg.min_duration * cfg.sample_frequency
    group: list[tuple[int, np.ndarray, int]] = []  # (index, waveform, frames)
    frames_in_group = 0
    work = Workspace()
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
            _compute_group(group, cfg, seeds, chunk_frames, feats, energy, work)
            group, frames_in_group = [], 0
        group.append((i, x, n))
        frames_in_group += n
    if group:
        _compute_group(group, cfg, seeds, chunk_frames, feats, energy, work)
    return KaldiFeatures(feats, energy)


def fbank(wavs: Sequence[torch.Tensor | np.ndarray], cfg: FbankConfig | None = None, **kw) -> list[torch.Tensor | None]:
    """Batched `torchaudio.compliance.kaldi.fbank` of [-1, 1] waveforms (scaled by cfg.waveform_scale)."""
    return compute(wavs, cfg or FbankConfig(), **kw).feats


def mfcc(wavs: Sequence[torch.Tensor | np.ndarray], cfg: MfccConfig | None = None, **kw) -> list[torch.Tensor | None]:
    """Batched `torchaudio.compliance.kaldi.mfcc` of [-1, 1] waveforms (scaled by cfg.waveform_scale)."""
    return compute(wavs, cfg or MfccConfig(), **kw).feats


def _as_numpy(wav) -> np.ndarray:
    if type(wav) is np.ndarray and wav.dtype == np.float32 and wav.ndim == 1:
        return wav
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().numpy()
    return np.asarray(wav, dtype=np.float32).reshape(-1)


def _edge_padded(x: np.ndarray, g: _Geometry) -> np.ndarray:
    """snip_edges=False: Kaldi's reflection at both ends, built as torchaudio's _get_strided does."""
    pad = g.window_size // 2 - g.window_shift // 2
    if pad > 0:
        return np.concatenate((x[:pad][::-1], x, x[::-1]))
    return np.concatenate((x[-pad:], x[::-1]))


def _layout(group, cfg, g: _Geometry, seeds, work: Workspace):
    """Place the group's utterances in one zero-padded signal, each starting on a frame-shift boundary,
    so that one strided view frames them all. Returns (signal, first row of each utterance, frames of each)."""
    shift, size = g.window_shift, g.window_size
    signals, row_offsets, counts = [], [], []
    rows = 0
    for i, x, n in group:
        if cfg.dither != 0.0:
            rng = np.random.default_rng(int(seeds[i]) if seeds is not None else i)
            x = x + rng.standard_normal(len(x), dtype=np.float32) * np.float32(cfg.dither / cfg.waveform_scale)
        if not cfg.snip_edges:
            x = _edge_padded(x, g)[: (n - 1) * shift + size]
        signals.append(x)
        row_offsets.append(rows)
        counts.append(n)
        rows += -(-x.shape[0] // shift)  # rows this utterance occupies; the last few are dropped
    # + size: room for the last rows' windows; rounded up to whole frame-shift blocks (_frame_sums)
    signal = work.get("signal", ((rows + -(-size // shift) + 1) * shift,))
    flat = signal.numpy()
    scale = np.float32(cfg.waveform_scale)
    multiply = np.multiply
    end = 0
    for x, row in zip(signals, row_offsets):
        start = row * shift
        flat[end:start] = 0.0  # the padding (the buffer holds the previous group's samples)
        end = start + x.shape[0]
        multiply(x, scale, out=flat[start:end])
    flat[end:] = 0.0
    return signal, rows, row_offsets, counts


def _frame_sums(x: torch.Tensor, rows: int, size: int, shift: int) -> torch.Tensor:
    """Each frame's sum (float64) from sums over frame-shift blocks and their heads (as
    `_frame_moments`): every sample is read about once instead of size / shift times."""
    whole, rest = divmod(size, shift)
    count = x.numel() // shift
    blocks = x[: count * shift].view(count, shift)
    sums = torch.zeros(rows, dtype=torch.float64)
    for width, offsets in ((shift, range(whole)), (rest, [whole])):
        if width and offsets:
            piece_sums = blocks[:, :width].sum(1).double()
            for j in offsets:
                sums += piece_sums[j: j + rows]
    return sums


def _frame_moments(x: torch.Tensor, rows: int, size: int, shift: int,
                   work: Workspace) -> tuple[torch.Tensor, torch.Tensor]:
    """Each frame's sum and sum of squared deviations from its mean (float64), for `rows` frames
    of `size` samples every `shift` of the float32 signal `x`.

    Kaldi's raw energy after DC removal, sum((x - mean)^2), without framing the signal and
    without a float64 copy of it: the signal is cut into frame-shift blocks, and a frame is
    `size // shift` whole blocks and the head of the next one. Each block (and each head) is
    centred on its own mean in float32, so its sum of squares carries no DC and an all-zero one
    is exactly zero; the pieces' moments are combined per frame in float64, where
    sum(x^2) - sum(x)^2 / size cancels a large DC offset exactly enough. `x` holds whole blocks
    and at least rows + ceil(size / shift) of them (see `_layout`)."""
    whole, rest = divmod(size, shift)
    count = x.numel() // shift
    blocks = x[: count * shift].view(count, shift)
    sums = torch.zeros(rows, dtype=torch.float64)
    squares = torch.zeros(rows, dtype=torch.float64)
    for width, offsets in ((shift, range(whole)), (rest, [whole])):
        if width == 0 or not offsets:
            continue
        piece = blocks[:, :width]
        mu = piece.mean(1)
        centred = work.get(f"centred{width}", (count, width))
        torch.sub(piece, mu[:, None], out=centred)
        mu = mu.double()
        s1 = centred.sum(1).double()  # float32 sums of centred values lose nothing that matters
        s2 = centred.square_().sum(1).double()
        piece_sums = width * mu + s1  # sum x
        piece_squares = s2 + mu * (2.0 * s1 + width * mu)  # sum x^2
        for j in offsets:
            sums += piece_sums[j: j + rows]
            squares += piece_squares[j: j + rows]
    return sums, squares - sums * sums / size


def _compute_group(group, cfg, seeds, chunk_frames, feats_out, energy_out, work: Workspace) -> None:
    from skiptool.audio import kernels  # numba: imported on first use

    g = _geometry(cfg)
    size, shift, padded = g.window_size, g.window_shift, g.padded_window_size
    coef = cfg.preemphasis_coefficient
    is_mfcc = isinstance(cfg, MfccConfig)
    signal, total_rows, row_offsets, counts = _layout(group, cfg, g, seeds, work)

    def framed(x: torch.Tensor) -> torch.Tensor:
        return x.as_strided((total_rows, size), (shift, 1))

    need_energy = cfg.use_energy or cfg.vad
    means = log_energy = None
    if need_energy and cfg.raw_energy:
        sums, deviations = _frame_moments(signal, total_rows, size, shift, work)
        if cfg.remove_dc_offset:
            means = (sums / size).float()
            energy = deviations  # sum((x - mean)^2)
        else:
            energy = deviations + sums * sums / size  # sum(x^2)
        log_energy = energy.clamp_min_(0.0).float()
    elif need_energy:
        log_energy = torch.empty(total_rows)
    if cfg.remove_dc_offset and means is None:
        means = (_frame_sums(signal, total_rows, size, shift) / size).float()

    window = _window(cfg)
    fix_first = coef != 0.0 and window[0] != 0.0
    if coef != 0.0:
        emphasized = work.get("emphasized", signal.shape)
        emphasized[0] = signal[0]
        torch.sub(signal[1:], signal[:-1], alpha=coef, out=emphasized[1:])
    else:
        emphasized = signal
    if fix_first:
        # Kaldi pre-emphasises a frame's first sample against itself, not against its predecessor
        # (Povey and Hann windows are zero there, so only other windows need this).
        first = signal[: total_rows * shift: shift]
        if means is not None:
            first = first - means
        first = (first - coef * first) * window[0]
    if means is not None:
        # preemph(x - mean) = preemph(x) - (mean - coef * mean)
        correction = (means - coef * means)[:, None]

    projection = _banded_projection(cfg)
    use_log = is_mfcc or cfg.use_log_fbank
    use_power = getattr(cfg, "use_power", True)
    chunk_frames = min(chunk_frames, total_rows)
    frames_buf = work.get("frames", (chunk_frames, padded))
    frames_buf[:, size:] = 0.0  # the FFT's zero padding; the loop writes only [:, :size]
    power_buf = work.get("power", (chunk_frames, padded // 2 + 1))
    mel_buf = work.get("mel", (cfg.num_mel_bins, chunk_frames))
    out = torch.empty(total_rows, cfg.num_ceps if is_mfcc else cfg.num_mel_bins)
    framed_emphasized = framed(emphasized)
    dct = _dct_lifter(cfg) if is_mfcc else None
    views = None  # the buffers' views for a full chunk, taken once
    for r0 in range(0, total_rows, chunk_frames):
        r1 = min(r0 + chunk_frames, total_rows)
        c = r1 - r0
        if views is None or c != chunk_frames:
            frames, power, mel_t = frames_buf[:c], power_buf[:c], mel_buf[:, :c]
            views = (frames, power, power.numpy(), mel_t, frames[:, :size], projection.bind(power, mel_t))
        frames, power, power_np, mel_t, body, project = views
        chunk = framed_emphasized[r0:r1]
        if means is not None:
            torch.sub(chunk, correction[r0:r1], out=body)
        else:
            body.copy_(chunk)
        body.mul_(window)
        if fix_first:
            frames[:, 0] = first[r0:r1]
        if need_energy and not cfg.raw_energy:
            log_energy[r0:r1] = frames.square().sum(1)
        spec = torch.view_as_real(torch.fft.rfft(frames)).view(c, -1)
        kernels.power_spectrum(spec.numpy(), power_np)  # |X|^2 = re^2 + im^2
        if not use_power:
            power.sqrt_()
        project()  # mel_t = (power @ mel banks).T
        if is_mfcc:
            torch.mm(mel_t.clamp_min_(EPSILON).log_().T, dct, out=out[r0:r1])
        else:
            out[r0:r1] = mel_t.T
    if not is_mfcc and use_log:
        out.clamp_min_(EPSILON).log_()

    if log_energy is not None:
        log_energy = log_energy.clamp_min_(EPSILON).log_()
        if cfg.energy_floor > 0.0:
            log_energy.clamp_min_(math.log(cfg.energy_floor))
    if is_mfcc:
        if cfg.use_energy:
            out[:, 0] = log_energy
        if cfg.htk_compat:
            c0 = out[:, :1] if cfg.use_energy else out[:, :1] * math.sqrt(2)
            out = torch.cat((out[:, 1:], c0), dim=1)
    elif cfg.use_energy:
        out = torch.cat((out, log_energy[:, None]) if cfg.htk_compat else (log_energy[:, None], out), dim=1)

    for (i, _, _), start, n in zip(group, row_offsets, counts):
        utt = out[start: start + n]
        if cfg.subtract_mean:
            utt = utt - utt.mean(0, keepdim=True)
        feats_out[i] = utt
        if log_energy is not None:
            energy_out[i] = log_energy[start: start + n]


def reference(wav: torch.Tensor, cfg: FbankConfig | MfccConfig) -> torch.Tensor:
    """One utterance through torchaudio.compliance.kaldi itself (the slow reference the tests compare with)."""
    fn = ta_kaldi.mfcc if isinstance(cfg, MfccConfig) else ta_kaldi.fbank
    return fn(wav.reshape(1, -1).float() * cfg.waveform_scale, **torchaudio_kwargs(cfg))


__all__ = ["FbankConfig", "MfccConfig", "SpeechInputConfig", "KaldiFeatures", "compute", "fbank", "mfcc",
           "num_frames", "reference", "torchaudio_kwargs"]
