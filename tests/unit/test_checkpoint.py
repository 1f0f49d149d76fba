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


# ---------------------------------------------------------------- averaging


def record(epoch: int, dev_loss: float) -> dict:
    return {"epoch": epoch, "train": {"loss": 0.0}, "dev": {"loss": dev_loss}}


def test_nbest_epochs_ranks_by_the_metric_and_keeps_the_earlier_of_a_tie():
    history = [record(1, 5.0), record(2, 3.0), record(3, 4.0), record(4, 3.0), record(5, 9.0)]
    assert ckpt.nbest_epochs(history, "loss", "min", 3) == [2, 4, 3]
    assert ckpt.nbest_epochs(history, "loss", "max", 2) == [5, 1]
    assert ckpt.nbest_epochs(history, "loss", "min", 0) == []


def test_average_models_means_floats_and_keeps_counters():
    states = [{"w": torch.tensor([1.0, 2.0]), "steps": torch.tensor(7)},
              {"w": torch.tensor([3.0, 6.0]), "steps": torch.tensor(9)}]
    averaged = ckpt.average_models(states)
    assert torch.equal(averaged["w"], torch.tensor([2.0, 4.0])) and averaged["steps"].item() == 7


def test_pruning_spares_the_kept_epochs(tmp_path):
    for epoch in (1, 2, 3, 4, 5):
        ckpt.save_checkpoint(tmp_path, epoch, state(epoch), is_best=False, keep_last_n=2, keep=[1, 3])
    assert ckpt.saved_epochs(tmp_path) == [1, 3, 4, 5]


def test_write_average_of_the_nbest_epochs(tmp_path):
    losses = [5.0, 1.0, 4.0, 2.0]
    for epoch, loss in enumerate(losses, start=1):
        s = state(epoch) | {"history": [record(e, losses[e - 1]) for e in range(1, epoch + 1)]}
        ckpt.save_checkpoint(tmp_path, epoch, s, is_best=False)
    path, epochs = ckpt.write_average(tmp_path, 2, "loss", "min")
    assert epochs == [2, 4] and path == ckpt.checkpoint_path(tmp_path, "ave_2best")
    assert torch.equal(ckpt.load_checkpoint(path)["model"]["w"], torch.full((3,), 3.0))
    ckpt.epoch_path(tmp_path, 2).unlink()
    with pytest.raises(SkiptoolError, match="2epoch.pt: not found.*train.keep_nbest >= 3"):
        ckpt.write_average(tmp_path, 3, "loss", "min")
    with pytest.raises(SkiptoolError, match="4 epochs trained, fewer than the 5"):
        ckpt.write_average(tmp_path, 5, "loss", "min")
    with pytest.raises(SkiptoolError, match="ave_<N>best"):
        ckpt.checkpoint_path(tmp_path, "ave_best")
