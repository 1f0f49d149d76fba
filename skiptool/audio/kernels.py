"""Fused loops for the feature extractors' element-wise steps, compiled with numba.

The FFTs and the mel projections run in torch (MKL and BLAS). Between them, torch computes
|X|^2 = re^2 + im^2 and |X| as several passes over arrays larger than the cache: for a
2048-point FFT those passes cost half as much as the FFT itself. Each function here does the
chain in one pass over plain float32 numpy arrays (views of the torch buffers, no copies).
Framing and windowing stay in torch, where a numba loop measured no faster.

numba comes with librosa (a dependency) and is imported on first use, not by `skiptool --help`.
The compiled code is cached on disk (`cache=True`), so only the first run on a machine pays the
compilation (about a second). Each kernel's docstring gives the torch expression it replaces;
the tests compare the extractors with torchaudio, librosa and the per-utterance reference
functions.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Only exact algebra is allowed (no reassociation: results must not depend on vector width).
_OPTS = dict(cache=True, nogil=True, boundscheck=False, error_model="numpy")


@njit(**_OPTS)
def power_spectrum(spec: np.ndarray, out: np.ndarray) -> None:
    """out[i, k] = re^2 + im^2 of the interleaved (frames, 2 * bins) float32 FFT output `spec`.

    torch: view_as_real(X).square().sum(-1)."""
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

    torch: view_as_real(X).square().sum(-1).sqrt()."""
    frames, bins = out.shape
    for i in range(frames):
        row = spec[i]
        dst = out[i]
        for k in range(bins):
            re = row[2 * k]
            im = row[2 * k + 1]
            dst[k] = np.sqrt(re * re + im * im)
