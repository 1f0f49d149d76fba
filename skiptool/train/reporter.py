"""What a training run tells its user: `train.log` lines and loss curves in `images/<stat>.png`.

The history (per-epoch means of every stat the model returns, for train and dev) lives in the
checkpoint, so a resumed run redraws complete curves.
"""

from __future__ import annotations

import io
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from skiptool.utils import progress
from skiptool.utils.fileio import atomic_write

LOG_FILE = "train.log"
IMAGES_DIR = "images"
# Curves are redrawn after the last epoch and otherwise at most this often: drawing a PNG per
# stat costs ~0.1 s each, which would slow down models with many stats and second-long epochs.
PLOT_INTERVAL_S = 60.0


@dataclass
class EpochRecord:
    epoch: int
    train: dict[str, float]
    dev: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    items_per_second: float = 0.0

    def to_dict(self) -> dict:
        return {"epoch": self.epoch, "train": dict(self.train), "dev": dict(self.dev),
                "seconds": self.seconds, "items_per_second": self.items_per_second}

    @classmethod
    def from_dict(cls, d: dict) -> "EpochRecord":
        return cls(int(d["epoch"]), dict(d["train"]), dict(d.get("dev", {})),
                   float(d.get("seconds", 0.0)), float(d.get("items_per_second", 0.0)))


def format_stats(stats: dict[str, float]) -> str:
    return " ".join(f"{k}={_fmt(v)}" for k, v in stats.items())


def _fmt(value: float) -> str:
    if value == 0 or math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.4g}" if 1e-3 <= abs(value) < 1e5 else f"{value:.3e}"


class Reporter:
    """Appends lines to `exp_dir/train.log` (and stderr unless quiet) and draws the curves.

    `enabled=False` (ranks other than 0) makes every method a no-op.
    """

    def __init__(self, exp_dir: str | os.PathLike, enabled: bool = True, quiet: bool | None = None):
        self.exp_dir = Path(exp_dir)
        self.enabled = enabled
        self.quiet = quiet
        self._last_plot = time.monotonic()

    def log(self, message: str, to_stderr: bool = True) -> None:
        if not self.enabled:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.exp_dir.mkdir(parents=True, exist_ok=True)
        with open(self.exp_dir / LOG_FILE, "a", encoding="utf-8") as f:
            f.write(f"{stamp} {message}\n")
        quiet = progress.QUIET if self.quiet is None else self.quiet
        if to_stderr and not quiet:
            print(message, file=sys.stderr, flush=True)

    def epoch_line(self, record: EpochRecord, max_epochs: int, lr: float, best_mark: bool) -> str:
        parts = [f"epoch {record.epoch}/{max_epochs}: train {format_stats(record.train)}"]
        if record.dev:
            parts.append(f"dev {format_stats(record.dev)}")
        parts.append(f"lr={lr:g} {record.seconds:.1f}s {record.items_per_second:.1f} items/s"
                     + (" [best]" if best_mark else ""))
        return " | ".join(parts)

    def maybe_plot(self, history: Iterable[EpochRecord], final: bool) -> list[Path]:
        """`plot` if this is the final epoch or PLOT_INTERVAL_S passed since the last plot."""
        if final or time.monotonic() - self._last_plot >= PLOT_INTERVAL_S:
            return self.plot(history)
        return []

    def plot(self, history: Iterable[EpochRecord]) -> list[Path]:
        """One PNG per stat: its train and dev means per epoch. Returns the files written."""
        if not self.enabled:
            return []
        # Imported here: matplotlib costs a second or more to import, which every CLI call would pay.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        self._last_plot = time.monotonic()
        history = list(history)
        names = list(dict.fromkeys(k for r in history for k in (*r.train, *r.dev)))
        written = []
        for name in names:
            # The object API (no pyplot): no global figure state, no GUI backend, no leaks.
            fig = Figure(figsize=(6, 4), dpi=80)
            FigureCanvasAgg(fig)
            ax = fig.add_subplot()
            fig.subplots_adjust(left=0.14, right=0.97, bottom=0.13, top=0.92)  # tight_layout is slow
            for split in ("train", "dev"):
                points = [(r.epoch, getattr(r, split)[name]) for r in history if name in getattr(r, split)]
                if points:
                    xs, ys = zip(*points)
                    ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=split)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(name)
            ax.set_title(name)
            ax.grid(alpha=0.3)
            ax.legend()
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png")
            path = self.exp_dir / IMAGES_DIR / f"{_safe_name(name)}.png"
            with atomic_write(path, "wb") as f:
                f.write(buffer.getvalue())
            written.append(path)
        return written


def _safe_name(stat: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stat)
