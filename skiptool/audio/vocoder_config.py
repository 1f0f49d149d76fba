"""`GriffinLimConfig`, kept apart from skiptool.audio.griffinlim so that the CLI can show its
defaults without importing torch (`skiptool --help` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class GriffinLimConfig:
    """How features become waveforms; the STFT settings come from the feature config."""

    n_iter: int = 60
    power: float = 1.5  # magnitudes are raised to this before Griffin-Lim (Tacotron's sharpening)
    momentum: float = 0.99  # fast Griffin-Lim (Perraudin et al. 2013); 0 = plain Griffin-Lim
    init: Literal["random", "zeros"] = "random"  # initial phase
    seed: int = 0  # random initial phase: each utterance's generator is seeded from (seed, key)
    mel_inversion: Literal["pinv", "nnls"] = "pinv"
    nnls_iter: int = 50  # projected-gradient iterations for mel_inversion: nnls
    batch_size: int = 16

    def __post_init__(self):
        if self.n_iter < 0:
            raise ValueError(f"n_iter must be >= 0, got {self.n_iter}")
        if self.power <= 0:
            raise ValueError(f"power must be > 0, got {self.power}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.nnls_iter < 0:
            raise ValueError(f"nnls_iter must be >= 0, got {self.nnls_iter}")
