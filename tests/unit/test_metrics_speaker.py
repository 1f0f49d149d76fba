"""Speaker identification by mean embeddings: nearest speaker by cosine, leave-one-out for an
utterance that is also enrolled, chance and cosines reported, and the user errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skiptool.metrics.speaker import speaker_identification
from skiptool.models.classifier import SpeechClassifier, SpeechClassifierConfig
from skiptool.utils.errors import SkiptoolError
from tests.fixtures.featdirs import TINY_SPEECH_CLASSIFIER

VOICES = {"ann": np.array([1.0, 0.0, 0.0]), "bob": np.array([0.0, 1.0, 0.0]), "cy": np.array([0.0, 0.0, 1.0])}


def enrolment(per_speaker: int = 3, noise: float = 0.1, seed: int = 0):
    rng = np.random.default_rng(seed)
    embeddings, speakers = {}, {}
    for name, voice in VOICES.items():
        for i in range(per_speaker):
            key = f"{name}_{i}"
            embeddings[key], speakers[key] = voice + noise * rng.standard_normal(3), name
    return embeddings, speakers


def test_generated_voices_are_identified_among_the_enrolled_speakers():
    enrolled, speakers = enrolment()
    generated = {"g1": VOICES["ann"] + 0.05, "g2": VOICES["bob"], "g3": VOICES["bob"]}  # g3 should be cy's
    result = speaker_identification(generated, {"g1": "ann", "g2": "bob", "g3": "cy"}, enrolled, speakers)
    assert (result.num_utts, result.num_correct, result.num_speakers) == (3, 2, 3)
    assert result.accuracy == pytest.approx(2 / 3)
    assert result.same_cosine < 1 and result.other_cosine < result.same_cosine
    assert result.summary()["Acc (%)"] == "66.67" and result.summary()["Speakers"] == "3"


def test_an_enrolled_utterance_is_left_out_of_its_own_speakers_mean():
    enrolled, speakers = enrolment(per_speaker=2, noise=0.0)
    enrolled["ann_0"] = VOICES["bob"] * 10  # an outlier of ann's: with itself in ann's mean, ann would win
    result = speaker_identification({"ann_0": enrolled["ann_0"]}, {"ann_0": "ann"}, enrolled, speakers)
    assert result.num_correct == 0  # ann's mean without it is ann_1, pure ann: bob is nearer
    real = speaker_identification(*enrolment()[:1], enrolment()[1], *enrolment())
    assert real.accuracy == 1.0


def test_user_errors_name_what_is_wrong():
    enrolled, speakers = enrolment()
    with pytest.raises(SkiptoolError, match="speaker 'dee' is not enrolled"):
        speaker_identification({"g": VOICES["ann"]}, {"g": "dee"}, enrolled, speakers)
    with pytest.raises(SkiptoolError, match="no utterance 'h'"):
        speaker_identification({"g": VOICES["ann"]}, {"g": "ann", "h": "bob"}, enrolled, speakers)
    with pytest.raises(SkiptoolError, match="1 speaker"):
        speaker_identification({"g": VOICES["ann"]}, {"g": "ann"}, {"a": VOICES["ann"]}, {"a": "ann"})
    with pytest.raises(SkiptoolError, match="has only 'ann_0'"):
        one_each = {f"{n}_0": v for n, v in VOICES.items()}
        speaker_identification({"ann_0": VOICES["ann"]}, {"ann_0": "ann"}, one_each, {k: k.split("_")[0] for k in one_each})


def test_the_classifier_embedding_is_the_layer_under_its_scores():
    torch.manual_seed(0)
    model = SpeechClassifier(SpeechClassifierConfig(**TINY_SPEECH_CLASSIFIER)).eval()
    batch = {"speech": torch.randn(4, 9, 6), "speech_lengths": torch.tensor([9, 5, 7, 3])}
    hidden = model.embed(batch)
    assert hidden.shape == (4, TINY_SPEECH_CLASSIFIER["hidden_dim"]) and (hidden >= 0).all()  # after the ReLU
    assert torch.allclose(model.logits(batch), model.head[3](hidden))
