"""Mel filterbanks as banded matrices: the same product with a fraction of the work.

A mel filterbank (frequency bins x mel bands) is almost all zeros: each band covers a few
neighbouring bins, so each bin feeds at most two bands. A dense `power @ bank` therefore spends
most of its multiplications on zeros (80 bands over 1025 bins: 2% of the entries are non-zero).
`BandedProjection` cuts the bank into groups of consecutive bands, keeps for each group only
the contiguous range of bins it touches, and computes one small dense product per group (BLAS,
through numpy); it writes the bands-major result (bands, frames), which the callers take logs
of in one go. Products of the non-zero entries are the same as the dense ones; only the
summation order of the BLAS kernel may differ (float rounding).
"""

from __future__ import annotations

import numpy as np


class BandedProjection:
    """`x @ bank` for a (bins, bands) matrix with banded non-zeros, as `project_t(x, out)` = (x @ bank).T."""

    def __init__(self, bank, group: int = 8):
        bank = np.asarray(bank, dtype=np.float32)  # numpy, or a CPU torch tensor
        if bank.ndim != 2:
            raise ValueError(f"expected a (bins, bands) matrix, got shape {tuple(bank.shape)}")
        self.bins, self.bands = bank.shape
        self.blocks: list[tuple[int, int, int, int, np.ndarray]] = []  # (lo, hi, m0, m1, block.T)
        for m0 in range(0, self.bands, group):
            m1 = min(m0 + group, self.bands)
            rows = np.flatnonzero((bank[:, m0:m1] != 0).any(1))
            lo, hi = (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 0)
            self.blocks.append((lo, hi, m0, m1, np.ascontiguousarray(bank[lo:hi, m0:m1].T)))

    def project_t(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """(frames, bins) float32 -> `out` (bands, frames) = (x @ bank).T."""
        return self.bind(x, out)()

    def bind(self, x: np.ndarray, out: np.ndarray):
        """`project_t(x, out)` as a function of no arguments, its views taken once: a loop that
        refills the same buffers calls it without slicing them again."""
        xt = x.T
        steps = [(block_t, xt[lo:hi], out[m0:m1]) for lo, hi, m0, m1, block_t in self.blocks if hi > lo]
        empty = [out[m0:m1] for lo, hi, m0, m1, _ in self.blocks if hi <= lo]
        matmul = np.matmul

        def run() -> np.ndarray:
            for block_t, x_rows, out_rows in steps:
                matmul(block_t, x_rows, out=out_rows)
            for out_rows in empty:
                out_rows.fill(0.0)
            return out
        return run
