"""The built-in text-speech corpus: sentences, emotion styles, data dirs, and its vocabulary
overlap with the shapes captions (paper 000: 26%)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import soundfile as sf

from skiptool.data.corpora import PREPARERS
from skiptool.data.corpora.espeak_sentences import (EMOTIONS, STYLES, make_sentences, prepare_espeak_sentences,
                                                    style_voice)
from skiptool.data.corpora.shapes import make_image
from skiptool.data.datadir import DataDir, validate_data_dir
from skiptool.data.espeak import synthesize
from skiptool.text.vocab import vocabulary, vocabulary_overlap
from skiptool.utils.errors import SkiptoolError
from tests.conftest import assert_user_error, run_cli
from tests.unit.test_espeak import f0


def test_sentences_are_distinct_seeded_and_not_captions():
    sentences = make_sentences(1000, seed=0)
    assert len(set(sentences)) == 1000 and sentences == make_sentences(1000, seed=0)
    assert sentences[:50] != make_sentences(50, seed=1)
    assert all(s[0].isupper() and s[-1] in ".?" for s in sentences)
    captions = [c for i in range(1000) for c in make_image(i, 0, 16)[1]]
    assert not {s.lower() for s in sentences} & {c.lower() for c in captions}
    overlap = vocabulary_overlap(captions, sentences)  # the default sizes: 1000 train images and sentences
    assert 0.22 <= overlap.jaccard <= 0.31, overlap.describe()
    assert overlap.a_in_b > 0.75  # most caption words are spoken somewhere...
    assert {"rhombus", "violet", "beneath"} <= vocabulary(captions) - vocabulary(sentences)  # ...not all


def test_styles_differ_in_pitch_rate_and_loudness():
    text = "The farmer painted a small red box near the river."
    rng = np.random.default_rng(0)
    waves = {e: synthesize(text, style_voice(e, "en-us", "f2", rng)) for e in EMOTIONS}
    pitch = {e: f0(w, 22050) for e, w in waves.items()}
    seconds = {e: len(w) / 22050 for e, w in waves.items()}
    rms = {e: float(np.sqrt(np.mean(w ** 2))) for e, w in waves.items()}
    assert pitch["happy"] > pitch["neutral"] > pitch["sad"] and pitch["angry"] > pitch["neutral"]
    assert seconds["sad"] > seconds["neutral"] > seconds["happy"] > seconds["angry"]
    assert rms["angry"] > rms["neutral"] > rms["sad"]
    assert STYLES["sad"].range < STYLES["neutral"].range < STYLES["happy"].range


def _digest(directory) -> str:
    h = hashlib.sha256()
    for path in sorted(directory.rglob("*.wav")):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_prepare_espeak_sentences(tmp_path):
    parts = prepare_espeak_sentences(tmp_path / "a", num_train=8, num_dev=4, num_test=4, seed=5, quiet=True)
    assert PREPARERS["espeak-sentences"] is prepare_espeak_sentences
    assert [len(parts[s]) for s in ("train", "dev", "test")] == [8, 4, 4]
    for split in ("train", "dev", "test"):
        assert validate_data_dir(tmp_path / "a" / split, quiet=True) == []
        assert sorted(p.name for p in (tmp_path / "a" / split).iterdir()) == [
            "spk2utt", "text", "utt2dur", "utt2emo", "utt2spk", "wav.scp"]
    train = DataDir.load(tmp_path / "a" / "train")
    assert sorted(train.tables["utt2emo"].values()) == sorted(EMOTIONS * 2) and train.speakers == ["spk01"]
    texts = [t for p in parts.values() for t in p.tables["text"].values()]
    assert len(set(texts)) == 16  # no sentence twice, across splits either
    utt = train.utts[3]
    info = sf.info(str(train.wav_paths()[utt]))
    assert info.samplerate == 16000 and info.subtype == "PCM_16" and info.channels == 1
    assert abs(info.frames / 16000 - float(train.tables["utt2dur"][utt])) < 1e-3
    assert 1.0 < info.frames / 16000 < 8.0

    prepare_espeak_sentences(tmp_path / "b", num_train=8, num_dev=4, num_test=4, seed=5, quiet=True)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")  # byte-identical for the same arguments
    with pytest.raises(SkiptoolError, match="already exists; pass --overwrite"):
        prepare_espeak_sentences(tmp_path / "a", num_train=8, num_dev=4, num_test=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_bad_arguments(tmp_path):
    with pytest.raises(SkiptoolError, match="--num-test 0: need at least 1 utterance"):
        prepare_espeak_sentences(tmp_path / "x", num_test=0)
    with pytest.raises(SkiptoolError, match="variant not found"):
        prepare_espeak_sentences(tmp_path / "x", variant="nobody")
    assert not (tmp_path / "x").exists()


def test_cli(tmp_path):
    result = run_cli("prep", "espeak-sentences", tmp_path / "e", "--num-train", "4", "--num-dev", "1", "--num-test", "1")
    assert result.code == 0, result.err
    assert f"wrote {tmp_path / 'e' / 'train'}: 4 utterances, 1 speaker" in result.out
    assert_user_error(run_cli("prep", "espeak-sentences", tmp_path / "e2", "--sample-rate", "10"), "--sample-rate 10")
