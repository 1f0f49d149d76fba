"""The trainer: resume after a kill is bit-identical, best.pt follows the dev metric, pruning,
configs (unknown keys, overrides), device selection, logs and curves."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn
from torch.utils.data import Dataset

from skiptool.data.datasets import ImageFeatsDataset, collate
from skiptool.models.classifier import ImageClassifier, ImageClassifierConfig
from skiptool.train import checkpoint as ckpt
from skiptool.train.distributed import resolve_device
from skiptool.train.trainer import (
    OptimConfig,
    TrainConfig,
    Trainer,
    load_experiment_config,
    load_trained_model,
    train_experiment,
)
from skiptool.utils.errors import SkiptoolError
from tests.fixtures.featdirs import TINY_IMAGE_CLASSIFIER, write_config, write_image_dir


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory) -> Path:
    return write_image_dir(tmp_path_factory.mktemp("feats") / "image", per_class=6)


def fit(image_dir: Path, exp_dir: Path, max_epochs: int, dataset: Dataset | None = None, **train) -> Trainer:
    """Train the tiny image classifier, whose dropout and random shifts use the global RNG, so
    that an exact resume needs the RNG states as well as model and optimizer."""
    cfg = TrainConfig(max_epochs=max_epochs, batch_size=5, log_interval=0, seed=3, **train)
    ckpt.seed_everything(cfg.seed)
    model = ImageClassifier(ImageClassifierConfig(**{**TINY_IMAGE_CLASSIFIER, "dropout": 0.5, "max_shift": 1}))
    trainer = Trainer(model, dataset or ImageFeatsDataset(image_dir), collate, cfg, exp_dir, device="cpu", quiet=True)
    trainer.fit()
    return trainer


def same_parameters(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class KillAt(Dataset):
    """Wraps a dataset; raises KeyboardInterrupt (as Ctrl-C or a kill would) at the N-th item read."""

    def __init__(self, dataset: Dataset, after_items: int):
        self.dataset, self.left = dataset, after_items

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt
        return self.dataset[i]


def test_resume_after_kill_is_bit_identical(image_dir, tmp_path):
    straight = fit(image_dir, tmp_path / "straight", 3)

    # Killed in the middle of epoch 2 (18 items per epoch): epoch 1 is saved, epoch 2 is not.
    with pytest.raises(KeyboardInterrupt):
        fit(image_dir, tmp_path / "killed", 3, dataset=KillAt(ImageFeatsDataset(image_dir), 18 + 7))
    assert ckpt.saved_epochs(tmp_path / "killed") == [1]
    resumed = fit(image_dir, tmp_path / "killed", 3)

    assert same_parameters(straight.model.state_dict(), resumed.model.state_dict())
    a = ckpt.load_checkpoint(tmp_path / "straight/checkpoints/latest.pt")
    b = ckpt.load_checkpoint(tmp_path / "killed/checkpoints/latest.pt")
    assert same_parameters(a["model"], b["model"])
    stats = lambda state: [(r["epoch"], r["train"], r["dev"]) for r in state["history"]]  # noqa: E731
    assert stats(a) == stats(b)
    assert "resumed from" in (tmp_path / "killed/train.log").read_text()


def test_resume_needs_the_rng_states(image_dir, tmp_path, monkeypatch):
    """The resume test above can fail: without restoring RNG states the parameters differ."""
    straight = fit(image_dir, tmp_path / "straight", 2)
    fit(image_dir, tmp_path / "stopped", 1)
    monkeypatch.setattr(ckpt, "restore_rng_state", lambda state: None)
    resumed = fit(image_dir, tmp_path / "stopped", 2)
    assert not same_parameters(straight.model.state_dict(), resumed.model.state_dict())


def test_finished_run_is_not_trained_again(image_dir, tmp_path):
    first = fit(image_dir, tmp_path / "exp", 1)
    again = fit(image_dir, tmp_path / "exp", 1)
    assert same_parameters(first.model.state_dict(), again.model.state_dict())
    assert "nothing to do" in (tmp_path / "exp/train.log").read_text()


class ScriptedModel(nn.Module):
    """A model whose dev stat `score` follows a script indexed by the current epoch."""

    def __init__(self, scores: list[float]):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1))
        self.scores, self.epoch = scores, 0

    def forward(self, batch):
        loss = (self.weight * batch["x"]).pow(2).mean()
        return loss, {"loss": loss.item(), "score": self.scores[self.epoch - 1]}


class EpochData(Dataset):
    def __init__(self, model: ScriptedModel):
        self.model = model

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return {"x": torch.tensor([float(i)])}

    def set_epoch(self, epoch):  # the trainer calls this before every epoch
        self.model.epoch = epoch


def scripted_fit(exp_dir: Path, scores: list[float], mode: str, max_epochs: int, keep_last_n: int = 0,
                 keep_nbest: int = 0):
    model = ScriptedModel(scores)
    cfg = TrainConfig(max_epochs=max_epochs, batch_size=2, best_metric="score", best_mode=mode,
                      keep_last_n=keep_last_n, keep_nbest=keep_nbest, optim=OptimConfig(name="sgd", lr=0.01), log_interval=0)
    trainer = Trainer(model, EpochData(model), collate, cfg, exp_dir, dev_set=EpochData(model), device="cpu",
                      quiet=True)
    return trainer.fit()


@pytest.mark.parametrize("mode, best, marked", [("max", 3, [1, 3]), ("min", 2, [1, 2])])
def test_best_checkpoint_is_the_best_dev_epoch(tmp_path, mode, best, marked):
    scores = [0.5, 0.2, 0.9, 0.7]
    result = scripted_fit(tmp_path, scores, mode, 4)
    assert (result.best_epoch, result.best_value) == (best, scores[best - 1])
    best_state = ckpt.load_checkpoint(tmp_path / "checkpoints/best.pt")
    assert best_state["epoch"] == best
    assert torch.equal(best_state["model"]["weight"],
                       ckpt.load_checkpoint(ckpt.epoch_path(tmp_path, best))["model"]["weight"])
    assert ckpt.load_checkpoint(tmp_path / "checkpoints/latest.pt")["epoch"] == 4
    log = (tmp_path / "train.log").read_text().splitlines()
    epoch_lines = [line for line in log if "/4: train" in line]
    assert [e for e, line in enumerate(epoch_lines, start=1) if line.endswith("[best]")] == marked


def test_a_tie_within_rounding_keeps_the_earlier_epoch(tmp_path):
    result = scripted_fit(tmp_path, [0.9, 0.97333333, 0.97333334, 0.98], "max", 4)
    assert [r.epoch for r in result.history] == [1, 2, 3, 4] and result.best_epoch == 4
    log = (tmp_path / "train.log").read_text().splitlines()
    assert [line.endswith("[best]") for line in log if "/4: train" in line] == [True, True, False, True]


def test_best_survives_resume_and_old_epochs_are_pruned(tmp_path):
    scores = [0.1, 0.9, 0.3, 0.4, 0.5]
    scripted_fit(tmp_path, scores, "max", 3, keep_last_n=2)
    result = scripted_fit(tmp_path, scores, "max", 5, keep_last_n=2)
    assert result.best_epoch == 2
    assert ckpt.saved_epochs(tmp_path) == [4, 5]
    assert ckpt.load_checkpoint(tmp_path / "checkpoints/best.pt")["epoch"] == 2  # its epoch file is gone
    assert [r.epoch for r in result.history] == [1, 2, 3, 4, 5]


def test_keep_nbest_keeps_the_best_epochs_for_averaging(tmp_path):
    scripted_fit(tmp_path, [0.1, 0.9, 0.3, 0.8, 0.5, 0.2], "max", 6, keep_last_n=1, keep_nbest=2)
    assert ckpt.saved_epochs(tmp_path) == [2, 4, 6]
    path, epochs = ckpt.write_average(tmp_path, 2, "score", "max")
    assert epochs == [2, 4] and ckpt.load_checkpoint(path)["averaged_epochs"] == [2, 4]


def test_log_line_per_epoch_and_curves(image_dir, tmp_path):
    fit(image_dir, tmp_path, 2)
    lines = (tmp_path / "train.log").read_text().splitlines()
    assert sum("epoch 1/2: train loss=" in l for l in lines) == 1
    assert sum("epoch 2/2: train loss=" in l for l in lines) == 1
    for stat in ("loss", "acc"):
        assert (tmp_path / "images" / f"{stat}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers


def test_unknown_best_metric_is_a_user_error(image_dir, tmp_path):
    with pytest.raises(SkiptoolError, match=r"train.best_metric: 'wer'.*loss, acc"):
        fit(image_dir, tmp_path, 1, best_metric="wer")


def test_diverging_loss_is_a_user_error(tmp_path):
    model = ScriptedModel([0.0])
    cfg = TrainConfig(max_epochs=1, batch_size=2, optim=OptimConfig(name="sgd", lr=1e30), log_interval=0)

    class Huge(EpochData):
        def __getitem__(self, i):
            return {"x": torch.tensor([1e30])}

    with pytest.raises(SkiptoolError, match=r"epoch 1, batch 1: the loss is inf; lower train.optim.lr"):
        Trainer(model, Huge(model), collate, cfg, tmp_path, device="cpu", quiet=True).fit()


def test_unknown_config_keys_are_named(tmp_path):
    good = write_config(tmp_path / "c.yaml", "image_classifier", TINY_IMAGE_CLASSIFIER)
    exp = load_experiment_config(good, {"train.optim.lr": 0.5, "model_conf.hidden_dim": 16})
    assert exp.train.optim.lr == 0.5 and exp.model_conf.hidden_dim == 16
    assert exp.model_conf.channels == [4] and exp.train.keep_last_n == 3  # file value, default
    with pytest.raises(SkiptoolError, match=r"unknown key 'train.optim.lrate'"):
        load_experiment_config(good, {"train.optim.lrate": 0.1})
    with pytest.raises(SkiptoolError, match=r"unknown key 'model_conf.hidden'"):
        load_experiment_config(good, {"model_conf.hidden": 3})
    with pytest.raises(SkiptoolError, match=r"unknown key 'trian'"):
        load_experiment_config(good, {"trian.seed": 1})
    with pytest.raises(SkiptoolError, match=r"'model' is 'cnn'.*image_classifier"):
        load_experiment_config(good, {"model": "cnn"})
    with pytest.raises(SkiptoolError, match=r"train.batch_size must be >= 1"):
        load_experiment_config(good, {"train.batch_size": 0})


def test_shipped_configs_are_valid():
    repo = Path(__file__).resolve().parents[2]
    for name in ("image_classifier", "speech_classifier"):
        exp = load_experiment_config(repo / "conf" / "train" / f"{name}.yaml")
        assert exp.model == name and exp.train.best_metric == "acc" and exp.train.best_mode == "max"


def test_device_selection():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(SkiptoolError, match="--device tpu: unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(SkiptoolError, match=r"--device cuda: no CUDA device is available"):
            resolve_device("cuda")


def test_train_experiment_and_load_trained_model(image_dir, tmp_path):
    exp = load_experiment_config(write_config(tmp_path / "c.yaml", "image_classifier", TINY_IMAGE_CLASSIFIER,
                                              best_metric="acc", best_mode="max"))
    result = train_experiment(exp, {"image": image_dir}, {"image": image_dir}, tmp_path / "exp", device="cpu",
                              quiet=True)
    assert result.epochs == 2 and (tmp_path / "exp/.train.done").exists()
    saved = yaml.safe_load((tmp_path / "exp/config.yaml").read_text())
    assert saved["model_conf"]["channels"] == [4] and saved["train"]["optim"]["name"] == "adam"
    model, loaded = load_trained_model(tmp_path / "exp", "best")
    assert not model.training and loaded == exp
    best = ckpt.load_checkpoint(tmp_path / "exp/checkpoints/best.pt")
    assert same_parameters(model.state_dict(), best["model"])
    with pytest.raises(SkiptoolError, match=r"--data speech=DIR: missing"):
        other = load_experiment_config(write_config(tmp_path / "s.yaml", "speech_classifier", {}))
        train_experiment(other, {"image": image_dir}, None, tmp_path / "exp2", device="cpu", quiet=True)


def test_an_exp_dir_from_before_a_new_key_still_resumes(image_dir, tmp_path):
    """A config key added after an exp dir was trained takes its default there (the old behaviour):
    the dir resumes; a changed value still makes it another experiment."""
    write = lambda name, **conf: load_experiment_config(write_config(
        tmp_path / name, "image_classifier", {**TINY_IMAGE_CLASSIFIER, **conf}, best_metric="acc", best_mode="max"))
    train_experiment(write("c.yaml"), {"image": image_dir}, None, tmp_path / "exp", device="cpu", quiet=True)
    saved = yaml.safe_load((tmp_path / "exp/config.yaml").read_text())
    del saved["model_conf"]["dropout"]  # as if `dropout` had been added to the model since
    (tmp_path / "exp/config.yaml").write_text(yaml.safe_dump(saved))
    again = write("c.yaml")
    again.train.max_epochs += 1
    assert train_experiment(again, {"image": image_dir}, None, tmp_path / "exp", device="cpu", quiet=True).epochs == 3
    with pytest.raises(SkiptoolError, match=r"another config \(model_conf.dropout"):
        train_experiment(write("d.yaml", dropout=0.25), {"image": image_dir}, None, tmp_path / "exp", device="cpu",
                         quiet=True)


def test_batch_size_counts_num_items_of_a_mixed_batch():
    from skiptool.train.trainer import _batch_size

    assert _batch_size({"image": torch.zeros(3, 1), "speech": torch.zeros(5, 2)}) == 3  # first tensor
    assert _batch_size({"image": torch.zeros(3, 1), "speech": torch.zeros(5, 2), "num_items": 8}) == 8
