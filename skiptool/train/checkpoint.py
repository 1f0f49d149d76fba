"""Checkpoints of an experiment: `exp/<tag>/checkpoints/{N}epoch.pt`, `latest.pt`, `best.pt`, and
`ave_{N}best.pt`, the mean weights of the N best epochs (`skiptool average`, ESPnet's
`average_nbest_models`).

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
from collections.abc import Iterable, Sequence
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
_AVERAGE_NAME = re.compile(r"^ave_\d+best$")


def epoch_path(exp_dir: str | os.PathLike, epoch: int) -> Path:
    return Path(exp_dir) / CHECKPOINT_DIR / f"{epoch}epoch.pt"


def checkpoint_path(exp_dir: str | os.PathLike, which: str = "best") -> Path:
    """`which` is 'best', 'latest', an epoch number or 'ave_{N}best'."""
    if which in ("best", "latest") or _AVERAGE_NAME.match(str(which)):
        return Path(exp_dir) / CHECKPOINT_DIR / f"{which}.pt"
    if str(which).isdigit():
        return epoch_path(exp_dir, int(which))
    raise SkiptoolError(f"checkpoint '{which}': give best, latest, an epoch number or ave_<N>best "
                        f"(written by skiptool average)")


def average_name(nbest: int) -> str:
    return f"ave_{nbest}best"


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
                    is_best: bool, keep_last_n: int = 0, keep: Iterable[int] = ()) -> Path:
    """Write `{epoch}epoch.pt` atomically, point latest.pt (and best.pt if `is_best`) at it, and
    delete epoch files older than the last `keep_last_n` (0 keeps all) except the epochs `keep`."""
    path = epoch_path(exp_dir, epoch)
    with atomic_write(path, "wb") as f:
        torch.save(state, f)
    # best before latest: a run killed in between redoes this epoch and links both again.
    if is_best:
        _link_atomically(path, path.with_name(BEST))
    _link_atomically(path, path.with_name(LATEST))
    if keep_last_n > 0:
        keep = set(keep)
        for old in saved_epochs(exp_dir)[:-keep_last_n]:
            if old in keep:
                continue
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


# ---------------------------------------------------------------------------------------------
# Averaging


def nbest_epochs(history: Sequence[dict[str, Any]], metric: str, mode: str, nbest: int) -> list[int]:
    """The `nbest` epochs of a checkpoint's history with the best `metric` (its dev stat, the train
    stat for a run without dev data), best first; ties keep the earlier epoch, as best.pt does."""
    def value(record: dict[str, Any]) -> float:
        stats = record["dev"] or record["train"]
        return stats[metric] if mode == "min" else -stats[metric]
    ranked = sorted(history, key=lambda r: (value(r), r["epoch"]))
    return [int(r["epoch"]) for r in ranked[:nbest]]


def average_models(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of model state dicts (ESPnet's `average_nbest_models`); tensors that
    are not floating point (step and frame counters) are taken from the first state."""
    if not states:
        raise ValueError("average_models: no states given")
    averaged = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            averaged[key] = torch.stack([s[key].to(first.dtype) for s in states]).mean(dim=0)
        else:
            averaged[key] = first.clone()
    return averaged


def write_average(exp_dir: str | os.PathLike, nbest: int, metric: str, mode: str) -> tuple[Path, list[int]]:
    """Average the models of the `nbest` best epochs of `exp_dir` (by `metric`, from latest.pt's
    history) into `ave_{nbest}best.pt`, written atomically; returns its path and the epochs."""
    latest = load_checkpoint(checkpoint_path(exp_dir, "latest"))
    if len(latest["history"]) < nbest:
        raise SkiptoolError(f"{exp_dir}: {len(latest['history'])} epochs trained, fewer than the {nbest} to "
                            f"average; average {len(latest['history'])} or fewer")
    epochs = nbest_epochs(latest["history"], metric, mode, nbest)
    missing = [e for e in epochs if not epoch_path(exp_dir, e).is_file()]
    if missing:
        raise SkiptoolError(f"{epoch_path(exp_dir, missing[0])}: not found, but epoch {missing[0]} is among the "
                            f"{nbest} best; train with train.keep_nbest >= {nbest} so that the best epochs stay, "
                            f"or average fewer")
    states = [load_checkpoint(epoch_path(exp_dir, e))["model"] for e in epochs]
    path = checkpoint_path(exp_dir, average_name(nbest))
    with atomic_write(path, "wb") as f:
        torch.save({"epoch": int(latest["epoch"]), "model": average_models(states), "averaged_epochs": epochs,
                    "metric": metric}, f)
    return path, epochs
