"""`skiptool train` end to end on tiny feature dirs: exp dir layout, resume through the CLI,
--print-config, overrides, and the one-line errors of every user mistake. Slow tests train the
shipped classifier configs on real data (FSDD, MNIST) and check the accuracy targets."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from skiptool.train import checkpoint as ckpt
from skiptool.train.trainer import load_experiment_config
from tests.conftest import REPO, assert_user_error
from tests.fixtures.featdirs import TINY_SPEECH_CLASSIFIER, write_config, write_image_dir, write_speech_dir


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dump")
    return {"train": write_speech_dir(root / "train", per_class=4), "dev": write_speech_dir(root / "dev", per_class=2, seed=1),
            "image": write_image_dir(root / "image", per_class=2)}


@pytest.fixture
def config(tmp_path) -> Path:
    return write_config(tmp_path / "speech.yaml", "speech_classifier", TINY_SPEECH_CLASSIFIER,
                        best_metric="acc", best_mode="max")


def train_args(config: Path, dirs: dict, exp: Path, *extra: str) -> list[str]:
    return ["--quiet", "train", "--config", config, "--data", f"speech={dirs['train']}",
            "--dev-data", f"speech={dirs['dev']}", "--exp-dir", exp, "--device", "cpu", *extra]


def test_train_writes_the_exp_dir_and_a_rerun_resumes(cli, config, dirs, tmp_path):
    exp = tmp_path / "exp"
    result = cli(*train_args(config, dirs, exp))
    assert result.code == 0, result.err
    assert f"{exp}: best acc=" in result.out and "at epoch" in result.out
    assert sorted(p.name for p in (exp / "checkpoints").iterdir()) == ["1epoch.pt", "2epoch.pt", "best.pt", "latest.pt"]
    assert (exp / "images" / "loss.png").is_file() and (exp / "images" / "acc.png").is_file()
    assert (exp / ".train.done").exists()
    saved = load_experiment_config(exp / "config.yaml")
    assert saved == load_experiment_config(config)
    log = (exp / "train.log").read_text()
    assert log.count("epoch 1/2: train loss=") == 1 and "| dev loss=" in log

    again = cli(*train_args(config, dirs, exp))
    assert again.code == 0 and "nothing to do" in (exp / "train.log").read_text()


def test_stop_and_extend_through_the_cli_equals_a_straight_run(cli, config, dirs, tmp_path):
    assert cli(*train_args(config, dirs, tmp_path / "straight", "train.max_epochs=3")).code == 0
    assert cli(*train_args(config, dirs, tmp_path / "parts", "train.max_epochs=1")).code == 0
    assert cli(*train_args(config, dirs, tmp_path / "parts", "train.max_epochs=3")).code == 0
    a = ckpt.load_checkpoint(tmp_path / "straight/checkpoints/latest.pt")["model"]
    b = ckpt.load_checkpoint(tmp_path / "parts/checkpoints/latest.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert yaml.safe_load((tmp_path / "parts/config.yaml").read_text())["train"]["max_epochs"] == 3


def test_print_config_shows_the_full_resolved_config(cli, config):
    result = cli("train", "--config", config, "--print-config", "train.optim.lr=0.01", "model_conf.hidden_dim=5")
    assert result.code == 0, result.err
    printed = yaml.safe_load(result.out)
    assert printed["model"] == "speech_classifier"
    assert printed["model_conf"]["hidden_dim"] == 5 and printed["model_conf"]["utterance_cmvn"] is True  # a default
    assert printed["train"]["optim"] == {"name": "adam", "lr": 0.01, "betas": [0.9, 0.999], "weight_decay": 0.0,
                                         "momentum": 0.0}
    assert printed["train"]["keep_last_n"] == 3 and printed["train"]["best_mode"] == "max"


def test_help_documents_data_names_and_an_example(cli):
    result = cli("train", "--help")
    assert result.code == 0
    text = " ".join(result.out.split())
    assert "NAME=DIR" in text and "--data speech=dump/fbank/train --data image=dump/image/train" in text
    assert "Example: skiptool train --config" in text and "--nproc" in text and "torchrun" in text


def test_user_errors_are_one_line(cli, config, dirs, tmp_path):
    exp = tmp_path / "exp"
    assert_user_error(cli(*train_args(config, dirs, exp, "train.optim.learning_rate=1")),
                      "unknown key 'train.optim.learning_rate'")
    bad = tmp_path / "bad.yaml"
    bad.write_text(config.read_text() + "epochs: 3\n")
    assert_user_error(cli("train", "--config", bad, "--print-config"), "unknown key 'epochs'")
    assert_user_error(cli("train", "--config", tmp_path / "none.yaml", "--print-config"), "none.yaml", "not found")
    assert_user_error(cli("train", "--config", config, "--exp-dir", exp), "--data: missing")
    assert_user_error(cli("train", "--config", config, "--data", str(dirs["train"]), "--exp-dir", exp),
                      "give NAME=DIR")
    assert_user_error(cli("train", "--config", config, "--data", f"speech={dirs['train']}"), "--exp-dir: missing")
    assert_user_error(cli("train", "--config", config, "--data", f"speech={tmp_path}/nope", "--exp-dir", exp),
                      "--data speech=", "no feats.scp")
    assert_user_error(cli("train", "--config", config, "--data", f"image={dirs['image']}", "--exp-dir", exp),
                      "--data speech=DIR: missing", "speech_classifier")
    assert_user_error(cli("train", "--config", config, "--data", f"speech={dirs['image']}", "--exp-dir", exp),
                      "holds image features")
    assert_user_error(cli(*train_args(config, dirs, exp, "model_conf.speech_dim=80")),
                      "features have 6 dims but model_conf.speech_dim is 80")
    assert_user_error(cli(*train_args(config, dirs, exp, "train.best_metric=wer")), "train.best_metric: 'wer'")
    if not torch.cuda.is_available():
        assert_user_error(cli(*train_args(config, dirs, tmp_path / "gpu", "--device", "cuda")),
                          "--device cuda: no CUDA device")


def test_an_exp_dir_of_another_config_needs_overwrite(cli, config, dirs, tmp_path):
    exp = tmp_path / "exp"
    assert cli(*train_args(config, dirs, exp, "train.max_epochs=1")).code == 0
    assert_user_error(cli(*train_args(config, dirs, exp, "train.optim.lr=0.01")),
                      "config.yaml", "train.optim.lr: 0.001 -> 0.01", "--overwrite")
    result = cli(*train_args(config, dirs, exp, "train.optim.lr=0.01", "train.max_epochs=1", "--overwrite"))
    assert result.code == 0, result.err
    assert yaml.safe_load((exp / "config.yaml").read_text())["train"]["optim"]["lr"] == 0.01
    assert "resumed" not in (exp / "train.log").read_text()


# ---------------------------------------------------------------------------------------------
# Real data: the shipped configs reach the accuracy the recipes rely on (slow; skip without data)


def write_feature_dir(out: Path, feats: dict[str, np.ndarray], labels: dict[str, int], conf: dict) -> Path:
    import kaldiio

    out.mkdir(parents=True)
    with kaldiio.WriteHelper(f"ark,scp:{out / 'feats.ark'},{out / 'feats.scp'}") as writer:
        for key in sorted(feats):
            writer(key, feats[key])
    (out / "utt2label").write_text("".join(f"{k} {labels[k]}\n" for k in sorted(labels)))
    (out / "conf.yaml").write_text(yaml.safe_dump(conf))
    return out


def real_accuracy(cli, name: str, dirs: dict[str, Path], exp: Path, *overrides: str) -> float:
    from skiptool.data.datasets import FeatsDataset, ImageFeatsDataset
    from skiptool.models.classifier import predict_labels
    from skiptool.train import load_trained_model

    modality = "image" if name == "image_classifier" else "speech"
    result = cli("--quiet", "train", "--config", REPO / "conf" / "train" / f"{name}.yaml", "--data",
                 f"{modality}={dirs['train']}", "--dev-data", f"{modality}={dirs['dev']}", "--exp-dir", exp,
                 *overrides)
    assert result.code == 0, result.err
    model, _ = load_trained_model(exp, "best")
    test = (ImageFeatsDataset if modality == "image" else FeatsDataset)(dirs["test"])
    predicted = predict_labels(model, test)
    return float(np.mean([predicted[k] == label for k, label in zip(test.keys, test.labels)]))


@pytest.mark.slow
def test_image_classifier_on_mnist(cli, mnist_dir, tmp_path):
    """MNIST's 10k test split, seeded 8000/1000/1000 train/dev/test; target >= 97% on test."""
    with gzip.open(mnist_dir / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(mnist_dir / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    order = np.random.default_rng(0).permutation(len(images))
    conf = {"type": "image", "height": 28, "width": 28, "channels": 1}
    dirs = {split: write_feature_dir(tmp_path / split, {f"mnist{i:05d}": images[i] / np.float32(255) for i in idx},
                                     {f"mnist{i:05d}": int(labels[i]) for i in idx}, conf)
            for split, idx in (("train", order[:8000]), ("dev", order[8000:9000]), ("test", order[9000:]))}
    # 4 of the config's 10 epochs keep the test under a minute (the full run: see the report)
    accuracy = real_accuracy(cli, "image_classifier", dirs, tmp_path / "exp", "train.max_epochs=4")
    print(f"image_classifier MNIST test accuracy: {100 * accuracy:.2f}%")
    assert accuracy >= 0.97


@pytest.mark.slow
def test_speech_classifier_on_fsdd(cli, fsdd_dir, tmp_path):
    """FSDD's standard split (takes 0-4 test; 10-49 train, 5-9 dev), 80-dim Kaldi FBank at 16 kHz
    (torchaudio.compliance.kaldi); target >= 95% on test."""
    import soundfile as sf
    import torchaudio

    feats: dict[str, dict] = {"train": {}, "dev": {}, "test": {}}
    labels: dict[str, dict] = {"train": {}, "dev": {}, "test": {}}
    resample = torchaudio.transforms.Resample(8000, 16000)
    for path in sorted((fsdd_dir / "recordings").glob("*.wav")):
        digit, speaker, take = path.stem.split("_")
        wav, rate = sf.read(path, dtype="float32")
        assert rate == 8000
        fbank = torchaudio.compliance.kaldi.fbank(resample(torch.from_numpy(wav)[None]) * 32768, num_mel_bins=80,
                                                  sample_frequency=16000, dither=0.0)
        split = "test" if int(take) < 5 else "dev" if int(take) < 10 else "train"
        key = f"{speaker}_{digit}_{int(take):02d}"
        feats[split][key], labels[split][key] = fbank.numpy(), int(digit)
    dirs = {split: write_feature_dir(tmp_path / split, feats[split], labels[split], {"type": "fbank"})
            for split in feats}
    # 8 of the config's 20 epochs keep the test under a minute (the full run: see the report)
    accuracy = real_accuracy(cli, "speech_classifier", dirs, tmp_path / "exp", "train.max_epochs=8")
    print(f"speech_classifier FSDD test accuracy: {100 * accuracy:.2f}%")
    assert accuracy >= 0.95


def test_average_the_nbest_epochs_and_decode_with_them(cli, config, dirs, tmp_path):
    exp = tmp_path / "exp"
    assert cli(*train_args(config, dirs, exp, "train.max_epochs=4", "train.keep_last_n=1",
                           "train.keep_nbest=2")).code == 0
    history = ckpt.load_checkpoint(exp / "checkpoints/latest.pt")["history"]
    nbest = ckpt.nbest_epochs(history, "acc", "max", 2)
    r = cli("--quiet", "average", exp, "--nbest", "2")
    assert r.code == 0, r.err
    assert f"mean of epochs {nbest[0]} {nbest[1]}" in r.out
    averaged = ckpt.load_checkpoint(exp / "checkpoints/ave_2best.pt")["model"]
    models = [ckpt.load_checkpoint(ckpt.epoch_path(exp, e))["model"] for e in nbest]
    assert all(torch.allclose(averaged[k], (models[0][k] + models[1][k]) / 2) for k in averaged
               if averaged[k].is_floating_point())
    out = tmp_path / "classify"
    r = cli("--quiet", "decode", exp, out, "--task", "classify", "--data", f"speech={dirs['dev']}",
            "--checkpoint", "ave_2best")
    assert r.code == 0 and "ave_2best checkpoint" in r.out, r.err

    assert_user_error(cli("--quiet", "average", exp, "--nbest", "2"), "ave_2best.pt: exists", "--overwrite")
    assert cli("--quiet", "average", exp, "--nbest", "2", "--overwrite").code == 0
    assert_user_error(cli("--quiet", "average", exp, "--nbest", "3"), "epoch.pt: not found", "train.keep_nbest >= 3")
