"""Fused loops for the feature extractors' element-wise steps, compiled with numba.

The FFTs (`skiptool.audio.fft`) and mel projections (BLAS, `skiptool.audio.banded`) are library calls.
The steps around them are chains of element-wise operations that numpy would run as several
passes over arrays larger than the cache (framing a signal the way Kaldi does takes six:
mean, subtraction, energy, pre-emphasis, window, copy). Each function here does its chain in
one pass over plain float32 numpy arrays, with no temporaries.

numba comes with librosa (a dependency) and is imported on first use, not by `skiptool --help`.
The compiled code is cached on disk (`cache=True`), so only the first run on a machine pays the
compilation (a few seconds). Each kernel's docstring gives the numpy expression it replaces;
the tests compare the extractors with torchaudio, librosa and kaldi-native-fbank.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Only exact algebra is allowed in the element-wise loops (no fastmath: their results must not
# depend on the vector width). The two reductions below are the exception: a sum in one serial
# chain is five times slower than the whole framing, so they let LLVM reassociate it into vector
# lanes, as numpy's own float32 sums do; the last bit of a sum may then differ between CPUs.
_OPTS = dict(cache=True, nogil=True, boundscheck=False, error_model="numpy")
_SUM_OPTS = dict(_OPTS, fastmath={"reassoc"})


@njit(**_SUM_OPTS)
def _sum(x: np.ndarray, shift: np.float32) -> np.float32:
    """float32 sum(x - shift)."""
    s = np.float32(0.0)
    for j in range(x.shape[0]):
        s += x[j] - shift
    return s


@njit(**_SUM_OPTS)
def _sum_squares(x: np.ndarray, shift: np.float32) -> np.float32:
    """float32 sum((x - shift)^2)."""
    s = np.float32(0.0)
    for j in range(x.shape[0]):
        d = x[j] - shift
        s += d * d
    return s


ENERGY_NONE, ENERGY_RAW, ENERGY_WINDOWED = 0, 1, 2


@njit(**_OPTS)
def kaldi_frames(signal: np.ndarray, starts: np.ndarray, window: np.ndarray, coef: np.float32,
                 remove_dc: bool, energy_kind: int, frames: np.ndarray, energy: np.ndarray) -> None:
    """Kaldi's processing of each frame up to the FFT (feature-window.cc, ProcessWindow), for the
    frames of `window.shape[0]` samples of `signal` that start at `starts`:

        x = signal[start: start + size]; d = x - mean(x) (when remove_dc)
        energy = sum(d^2)                          (energy_kind ENERGY_RAW: Kaldi's raw_energy)
        e = d - coef * [d[0], d[:-1]]              (pre-emphasis; the first sample against itself)
        frames[i, :size] = e * window
        energy = sum(frames[i]^2)                  (energy_kind ENERGY_WINDOWED)

    The columns of `frames` past the window (the FFT's zero padding) are not touched."""
    size = window.shape[0]
    zero = np.float32(0.0)
    for i in range(starts.shape[0]):
        x = signal[starts[i]: starts[i] + size]
        mean = _sum(x, zero) / np.float32(size) if remove_dc else zero
        if energy_kind == ENERGY_RAW:
            energy[i] = _sum_squares(x, mean)
        out = frames[i]
        d = x[0] - mean
        out[0] = (d - coef * d) * window[0]
        for j in range(1, size):
            out[j] = ((x[j] - mean) - coef * (x[j - 1] - mean)) * window[j]
        if energy_kind == ENERGY_WINDOWED:
            energy[i] = _sum_squares(out[:size], zero)


@njit(**_OPTS)
def stft_frames(signal: np.ndarray, hop: int, first_row: int, stops: np.ndarray, coef: np.float32,
                window: np.ndarray, frames: np.ndarray) -> None:
    """Pre-emphasised, windowed STFT frames of `signal`, frame i starting at t0 = (first_row + i) * hop:

        e[t] = signal[t] - coef * signal[t - 1] for t < stops[i], 0 from stops[i] on (signal[-1] = 0)
        frames[i, :win] = e[t0: t0 + win] * window

    numpy: one pre-emphasis pass over the signal, a zeroed sample after each utterance, then a
    strided view times the window. The columns of `frames` past the window are not touched."""
    win = window.shape[0]
    zero = np.float32(0.0)
    for i in range(frames.shape[0]):
        t0 = (first_row + i) * hop
        n = min(win, max(0, stops[i] - t0))
        x = signal[t0: t0 + n]
        out = frames[i]
        if n > 0:
            prev = signal[t0 - 1] if t0 > 0 else zero
            out[0] = (x[0] - coef * prev) * window[0]
        for j in range(1, n):
            out[j] = (x[j] - coef * x[j - 1]) * window[j]
        for j in range(n, win):
            out[j] = zero


@njit(**_OPTS)
def power_spectrum(spec: np.ndarray, out: np.ndarray) -> None:
    """out[i, k] = re^2 + im^2 of the interleaved (frames, 2 * bins) float32 FFT output `spec`.

    numpy: np.abs(X) ** 2 of the complex64 X = spec.view(np.complex64)."""
    frames, bins = out.shape
    for i in range(frames):
        row = spec[i]
        dst = out[i]
        for k in range(bins):
            re = row[2 * k]
            im = row[2 * k + 1]
            dst[k] = re * re + im * im


@njit(**_OPTS)
def magnitude_spectrum(spec: np.ndarray, out: np.ndarray) -> None:
    """out[i, k] = sqrt(re^2 + im^2) of the interleaved (frames, 2 * bins) FFT output `spec`.

    numpy: np.abs(X) of the complex64 X = spec.view(np.complex64)."""
    frames, bins = out.shape
    for i in range(frames):
        row = spec[i]
        dst = out[i]
        for k in range(bins):
            re = row[2 * k]
            im = row[2 * k + 1]
            dst[k] = np.sqrt(re * re + im * im)
