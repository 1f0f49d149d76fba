"""Data-parallel training with 2 CPU processes (torchrun, gloo): every rank ends with the same
parameters, equal (to rounding) to a 1-process run with the same global batch, and only rank 0
writes checkpoints and log lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from skiptool.models import MODELS
from skiptool.train import checkpoint as ckpt
from skiptool.train.trainer import Trainer, load_experiment_config
from tests.conftest import REPO
from tests.fixtures.featdirs import TINY_SPEECH_CLASSIFIER, write_config, write_speech_dir

# No dropout and no batch norm (its batch statistics are per process, not synchronised): then
# 2 processes x half batches with averaged gradients is the 1-process run, to rounding.
MODEL_CONF = {**TINY_SPEECH_CLASSIFIER, "dropout": 0.0, "batch_norm": False}


def env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def single_process_parameters(config: Path, speech_dir: Path, exp_dir: Path) -> dict:
    experiment = load_experiment_config(config)
    entry = MODELS[experiment.model]
    ckpt.seed_everything(experiment.train.seed)
    model = entry.build(experiment.model_conf)
    dataset = entry.dataset(experiment.model_conf, {"speech": speech_dir}, True, experiment.train.seed)
    result = Trainer(model, dataset, entry.collate, experiment.train, exp_dir, dev_set=dataset, device="cpu",
                     quiet=True).fit()
    return model.state_dict(), result.history


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    speech = write_speech_dir(root / "speech", per_class=4)  # 12 items: 2 ranks x 6, no padding
    config = write_config(root / "c.yaml", "speech_classifier", MODEL_CONF, batch_size=4, max_epochs=2)
    return root, speech, config


@pytest.mark.slow  # 3 Python processes that import torch: ~10 s on an idle 2-core machine, more when busy
def test_two_processes_end_identical_and_match_one_process(setup, tmp_path):
    root, speech, config = setup
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                          str(REPO / "tests/fixtures/ddp_worker.py"), str(config), str(speech),
                          str(tmp_path / "exp"), str(tmp_path)],
                         env=env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    saved = ckpt.load_checkpoint(tmp_path / "exp/checkpoints/latest.pt")
    assert all(torch.equal(rank0[k], saved["model"][k]) for k in rank0)
    assert len(saved["rng"]) == 2 and saved["world_size"] == 2  # both ranks' RNG states, for resume
    reference, history = single_process_parameters(config, speech, tmp_path / "one")
    for k in reference:
        torch.testing.assert_close(rank0[k], reference[k], rtol=1e-5, atol=1e-6)
    # train and dev stats are means over all items, whichever process saw them
    for ours, theirs in zip(saved["history"], history):
        for split in ("train", "dev"):
            assert ours[split].keys() == getattr(theirs, split).keys()
            for k, v in ours[split].items():
                assert v == pytest.approx(getattr(theirs, split)[k], rel=1e-5)


@pytest.mark.slow  # 4 processes (CLI, torchrun agent, 2 workers)
def test_cli_nproc_writes_each_checkpoint_and_log_line_once(setup, tmp_path):
    root, speech, config = setup
    exp = tmp_path / "exp"
    run = subprocess.run([sys.executable, "-m", "skiptool.bin.main", "--quiet", "train", "--config", str(config),
                          "--data", f"speech={speech}", "--exp-dir", str(exp), "--device", "cpu", "--nproc", "2"],
                         env=env(), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(p.name for p in (exp / "checkpoints").iterdir()) == ["1epoch.pt", "2epoch.pt", "best.pt", "latest.pt"]
    log = (exp / "train.log").read_text()
    assert log.count("epoch 1/2: train") == 1 and log.count("epoch 2/2: train") == 1
    assert "cpu x 2 process(es)" in log
    assert run.stdout.count("best loss=") == 1
