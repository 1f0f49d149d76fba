"""Digit classifiers: shapes at the shipped sizes, padding never changes a score, they learn a toy
task, predictions per key, and the user errors of wrong inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from skiptool.data.datasets import FeatsDataset, collate
from skiptool.models import MODELS
from skiptool.models.classifier import (
    ImageClassifier,
    ImageClassifierConfig,
    SpeechClassifier,
    SpeechClassifierConfig,
    predict_labels,
)
from skiptool.train.trainer import load_experiment_config
from skiptool.utils.errors import SkiptoolError
from tests.fixtures.featdirs import TINY_SPEECH_CLASSIFIER, write_speech_dir

REPO = Path(__file__).resolve().parents[2]


def test_shipped_sizes_give_logits_per_class():
    image_cfg = load_experiment_config(REPO / "conf/train/image_classifier.yaml").model_conf
    image_model = MODELS["image_classifier"].build(image_cfg).eval()
    assert image_model.logits({"image": torch.rand(5, 1, 28, 28)}).shape == (5, 10)

    speech_cfg = load_experiment_config(REPO / "conf/train/speech_classifier.yaml").model_conf
    speech_model = MODELS["speech_classifier"].build(speech_cfg).eval()
    batch = {"speech": torch.randn(4, 60, 80), "speech_lengths": torch.tensor([60, 31, 12, 1]),
             "label": torch.tensor([0, 1, 2, 9])}
    assert speech_model.logits(batch).shape == (4, 10)
    loss, stats = speech_model(batch)
    assert loss.dim() == 0 and set(stats) == {"loss", "acc"} and 0 <= stats["acc"] <= 1


@pytest.mark.parametrize("training", [False, True])
def test_speech_scores_do_not_depend_on_padding(training):
    """Neither in eval mode nor in training (batch-norm statistics over valid frames only)."""
    torch.manual_seed(0)
    model = SpeechClassifier(SpeechClassifierConfig(speech_dim=6, channels=[8, 8], kernel_size=3, dropout=0.0))
    model.train(training)
    short, other = torch.randn(1, 5, 6), torch.randn(1, 7, 6)
    lengths = torch.tensor([5, 7])
    tight = model.logits({"speech": torch.cat([torch.cat([short, torch.zeros(1, 2, 6)], 1), other]),
                          "speech_lengths": lengths})
    garbage = 100 * torch.randn(2, 9, 6)  # the same utterances padded further, with garbage
    loose = torch.cat([torch.cat([short, garbage[:1, :4]], 1), torch.cat([other, garbage[1:, :2]], 1)])
    torch.testing.assert_close(tight, model.logits({"speech": loose, "speech_lengths": lengths}))
    if not training:
        alone = model.logits({"speech": short, "speech_lengths": torch.tensor([5])})
        torch.testing.assert_close(alone, tight[:1])


def test_image_classifier_learns_a_toy_task():
    torch.manual_seed(0)
    patterns = torch.rand(3, 1, 8, 8)
    labels = torch.arange(3).repeat(10)
    images = (patterns[labels] + 0.1 * torch.randn(30, 1, 8, 8)).clamp(0, 1)
    model = ImageClassifier(ImageClassifierConfig(image_size=8, num_classes=3, channels=[4], hidden_dim=16,
                                                  max_shift=0))  # shifts would scramble random patterns
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model({"image": images, "label": labels})[0].item()
    for _ in range(30):
        loss, stats = model({"image": images, "label": labels})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    assert model({"image": images, "label": labels})[1]["acc"] == 1.0
    assert loss.item() < first / 3


def test_predict_labels_gives_a_class_per_key(tmp_path):
    ds = FeatsDataset(write_speech_dir(tmp_path / "sp", per_class=2, classes=3, dim=6))
    model = SpeechClassifier(SpeechClassifierConfig(**{**TINY_SPEECH_CLASSIFIER, "num_classes": 3}))
    predictions = predict_labels(model, ds, batch_size=4)
    assert list(predictions) == ds.keys and set(predictions.values()) <= {0, 1, 2}
    logits = model.eval().logits(collate([ds[0]]))
    assert predictions[ds.keys[0]] == logits.argmax(-1).item()


def test_speaker_classifier_numbers_utt2spk_by_its_class_names_and_predicts_names(tmp_path):
    from types import SimpleNamespace

    from skiptool.data.datadir import read_table
    from skiptool.decode.classify import classify

    shipped = load_experiment_config(REPO / "conf/train/speaker_classifier.yaml").model_conf
    assert shipped.labels == "utt2spk" and not shipped.utterance_cmvn
    feats = write_speech_dir(tmp_path / "sp", per_class=2, classes=3, dim=6)
    cfg = SpeechClassifierConfig(**{**TINY_SPEECH_CLASSIFIER, "num_classes": 2, "labels": "utt2spk",
                                    "class_names": ["spk01", "spk00"]})
    dataset = MODELS["speech_classifier"].dataset(cfg, {"speech": feats}, True, 0)
    assert dataset.labels == [1 if key.startswith("spk00") else 0 for key in dataset.keys]
    experiment = SimpleNamespace(model="speech_classifier", model_conf=cfg)
    written = classify(SpeechClassifier(cfg), experiment, feats, tmp_path / "out", torch.device("cpu"))
    assert written == tmp_path / "out" / "utt2spk"
    assert set(read_table(written)) == set(dataset.keys) and set(read_table(written).values()) <= {"spk00", "spk01"}
    assert (tmp_path / "out" / "ref_utt2spk").read_text() == (feats / "utt2spk").read_text()
    with pytest.raises(ValueError, match=r"class_names must be num_classes \(3\) distinct names, got 2"):
        SpeechClassifierConfig(num_classes=3, class_names=["a", "b"])
    with pytest.raises(ValueError, match=r"got 2 \(1 distinct\)"):
        SpeechClassifierConfig(num_classes=2, class_names=["a", "a"])


def test_wrong_inputs_are_user_errors():
    speech_model = SpeechClassifier(SpeechClassifierConfig(speech_dim=6, num_classes=3, channels=[4]))
    with pytest.raises(SkiptoolError, match=r"speech: expected \(batch, frames, 6\)"):
        speech_model.logits({"speech": torch.zeros(2, 5, 80), "speech_lengths": torch.tensor([5, 5])})
    with pytest.raises(SkiptoolError, match=r"label 7 is outside 0..2; set model_conf.num_classes"):
        speech_model({"speech": torch.zeros(1, 5, 6), "speech_lengths": torch.tensor([5]), "label": torch.tensor([7])})
    with pytest.raises(SkiptoolError, match=r"batch: no label"):
        speech_model({"speech": torch.zeros(1, 5, 6), "speech_lengths": torch.tensor([5])})
    image_model = ImageClassifier(ImageClassifierConfig())
    with pytest.raises(SkiptoolError, match=r"image: expected \(batch, 1, 28, 28\)"):
        image_model.logits({"image": torch.zeros(2, 1, 8, 8)})
    with pytest.raises(ValueError, match=r"image_size 30 is not divisible by 2\^2"):
        ImageClassifierConfig(image_size=30)
    with pytest.raises(ValueError, match=r"kernel_size must be odd"):
        SpeechClassifierConfig(kernel_size=4)
