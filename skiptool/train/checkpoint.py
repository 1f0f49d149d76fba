"""Checkpoints of an experiment: `exp/<tag>/checkpoints/{N}epoch.pt`, `latest.pt`, `best.pt`.

A checkpoint holds everything a resumed run needs to continue exactly as an uninterrupted one:
model and optimizer state, the epoch just finished, the history of per-epoch stats, the best
epoch so far, and the random-number states (torch, CUDA, numpy, Python) of every rank. The
shuffle order of an epoch is not state: it derives from (seed, epoch) (see `trainer.py`).

Every file is written atomically (temporary file + rename), so a run killed while saving leaves
the previous checkpoint intact. `latest.pt` and `best.pt` are hard links to the epoch file
(a copy where the file system has no links), so pruning old epochs never touches them.
Everything saved is a tensor or plain Python data, so `torch.load(weights_only=True)` reads it.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import atomic_write

CHECKPOINT_DIR = "checkpoints"
LATEST = "latest.pt"
BEST = "best.pt"
_EPOCH_FILE = re.compile(r"^(\d+)epoch\.pt$")


def epoch_path(exp_dir: str | os.PathLike, epoch: int) -> Path:
    return Path(exp_dir) / CHECKPOINT_DIR / f"{epoch}epoch.pt"


def checkpoint_path(exp_dir: str | os.PathLike, which: str = "best") -> Path:
    """`which` is 'best', 'latest' or an epoch number."""
    if which in ("best", "latest"):
        return Path(exp_dir) / CHECKPOINT_DIR / f"{which}.pt"
    if str(which).isdigit():
        return epoch_path(exp_dir, int(which))
    raise SkiptoolError(f"checkpoint '{which}': give best, latest or an epoch number")


def saved_epochs(exp_dir: str | os.PathLike) -> list[int]:
    """Epoch numbers of the `{N}epoch.pt` files present, ascending."""
    directory = Path(exp_dir) / CHECKPOINT_DIR
    if not directory.is_dir():
        return []
    return sorted(int(m.group(1)) for p in directory.iterdir() if (m := _EPOCH_FILE.match(p.name)))


# ---------------------------------------------------------------------------------------------
# Random-number states


def capture_rng_state() -> dict[str, Any]:
    """This process's RNG states as tensors and plain data (loadable with weights_only=True)."""
    np_state = np.random.get_state(legacy=False)
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"bit_generator": np_state["bit_generator"],
                  "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]),
                  "has_gauss": int(np_state["has_gauss"]), "gauss": float(np_state["gauss"])},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state({"bit_generator": np_state["bit_generator"],
                         "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
                         "has_gauss": np_state["has_gauss"], "gauss": np_state["gauss"]})
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy's global generator and Python's `random`."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# Save / load


def save_checkpoint(exp_dir: str | os.PathLike, epoch: int, state: dict[str, Any], *,
                    is_best: bool, keep_last_n: int = 0) -> Path:
    """Write `{epoch}epoch.pt` atomically, point latest.pt (and best.pt if `is_best`) at it, and
    delete epoch files older than the last `keep_last_n` (0 keeps all)."""
    path = epoch_path(exp_dir, epoch)
    with atomic_write(path, "wb") as f:
        torch.save(state, f)
    # best before latest: a run killed in between redoes this epoch and links both again.
    if is_best:
        _link_atomically(path, path.with_name(BEST))
    _link_atomically(path, path.with_name(LATEST))
    if keep_last_n > 0:
        for old in saved_epochs(exp_dir)[:-keep_last_n]:
            with contextlib.suppress(FileNotFoundError):
                epoch_path(exp_dir, old).unlink()
    return path


def _link_atomically(target: Path, link: Path) -> None:
    """Make `link` the same file as `target`, replacing `link` in one rename."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(target, tmp)
    except OSError:  # no hard links on this file system: copy instead
        shutil.copyfile(target, tmp)
    os.replace(tmp, link)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; a missing or unreadable file is a user error."""
    path = Path(path)
    if not path.is_file():
        raise SkiptoolError(f"{path}: checkpoint not found; train the model first (skiptool train)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError... for bad files
        raise SkiptoolError(f"{path}: unreadable checkpoint ({type(e).__name__}: {str(e).splitlines()[0]}); "
                            f"delete it (and latest.pt if it is the same file) to resume from the "
                            f"epoch before") from None
    if not isinstance(state, dict) or "model" not in state or "epoch" not in state:
        raise SkiptoolError(f"{path}: not a skiptool checkpoint (no model/epoch entries)")
    return state
