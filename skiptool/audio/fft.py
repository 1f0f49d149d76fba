"""The batched real FFT of the feature extractors: Intel MKL's (mkl_fft) where it is installed, else scipy.fft.

Every mel, MFCC and FBank frame goes through one real FFT, and the FFT is most of their time
(60-75% with scipy's pocketfft). MKL's is about 1.6x faster here per frame for the 512- and
2048-point float32 transforms (benchmarks/README.md), with the same values up to float rounding.
mkl_fft is a dependency on x86-64 (pyproject); elsewhere, or when it cannot load, scipy.fft
(pocketfft) gives the same results more slowly.

MKL is held to one thread: the extractors parallelise over groups of utterances (`threads`) and
`skiptool feats` over jobs (`--nj`), and a few hundred short transforms gain nothing from more.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def _backend():
    """The rfft function (x, axis, out) and its name; loaded on first use (not by `skiptool --help`)."""
    try:
        import mkl_fft
        from threadpoolctl import ThreadpoolController

        ThreadpoolController().select(internal_api="mkl").limit(limits=1)  # for the process: see above
        return mkl_fft.rfft, "mkl_fft"
    except (ImportError, OSError):  # not installed (non-x86 platforms), or its libraries fail to load
        import scipy.fft

        def scipy_rfft(x: np.ndarray, axis: int = -1, out: np.ndarray | None = None) -> np.ndarray:
            return scipy.fft.rfft(x, axis=axis)
        return scipy_rfft, "scipy.fft"


def backend_name() -> str:
    """'mkl_fft' or 'scipy.fft': which library `rfft` uses in this process."""
    return _backend()[1]


def rfft_rows(frames: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The real FFT of each row of a (frames, n) float32 array: (frames, n // 2 + 1) complex64,
    written into `out` when given (mkl_fft) or returned as a new array (scipy.fft)."""
    return _backend()[0](frames, axis=1, out=out)
