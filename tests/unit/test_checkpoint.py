"""Checkpoint files: atomic writes, latest/best links, pruning, RNG round trips, bad files."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from skiptool.train import checkpoint as ckpt
from skiptool.utils.errors import SkiptoolError


def state(epoch: int) -> dict:
    return {"epoch": epoch, "model": {"w": torch.full((3,), float(epoch))}, "rng": [ckpt.capture_rng_state()]}


def test_save_links_latest_and_best_and_prunes(tmp_path):
    for epoch in (1, 2, 3, 4):
        ckpt.save_checkpoint(tmp_path, epoch, state(epoch), is_best=epoch == 2, keep_last_n=2)
    assert ckpt.saved_epochs(tmp_path) == [3, 4]
    assert ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path, "latest"))["epoch"] == 4
    best = ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path, "best"))
    assert best["epoch"] == 2 and torch.equal(best["model"]["w"], torch.full((3,), 2.0))
    assert ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path, "3"))["epoch"] == 3
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["3epoch.pt", "4epoch.pt", "best.pt",
                                                                           "latest.pt"]


def test_keep_all_epochs_with_zero(tmp_path):
    for epoch in (1, 2, 3):
        ckpt.save_checkpoint(tmp_path, epoch, state(epoch), is_best=False, keep_last_n=0)
    assert ckpt.saved_epochs(tmp_path) == [1, 2, 3]


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("killed while saving")


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path):
    ckpt.save_checkpoint(tmp_path, 1, state(1), is_best=True)
    with pytest.raises(RuntimeError, match="killed while saving"):
        ckpt.save_checkpoint(tmp_path, 2, {**state(2), "bad": Unpicklable()}, is_best=True)
    assert ckpt.saved_epochs(tmp_path) == [1]
    assert ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path, "latest"))["epoch"] == 1
    assert [p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")] == []


def test_rng_states_round_trip_through_a_file(tmp_path):
    ckpt.seed_everything(7)
    ckpt.save_checkpoint(tmp_path, 1, state(1), is_best=False)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.rand(5), np.random.rand(5), random.random()  # move every generator on
    ckpt.restore_rng_state(ckpt.load_checkpoint(ckpt.epoch_path(tmp_path, 1))["rng"][0])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]


def test_bad_checkpoints_are_user_errors(tmp_path):
    with pytest.raises(SkiptoolError, match=r"latest.pt: checkpoint not found"):
        ckpt.load_checkpoint(tmp_path / "latest.pt")
    (tmp_path / "truncated.pt").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(SkiptoolError, match=r"truncated.pt: unreadable checkpoint.*delete it"):
        ckpt.load_checkpoint(tmp_path / "truncated.pt")
    torch.save({"weights": torch.ones(1)}, tmp_path / "other.pt")
    with pytest.raises(SkiptoolError, match=r"other.pt: not a skiptool checkpoint"):
        ckpt.load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(SkiptoolError, match=r"checkpoint 'first'"):
        ckpt.checkpoint_path(tmp_path, "first")
