"""FSDD preparer on a tiny fixture in the corpus's real layout, and on the real corpus when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from skiptool.data.corpora import PREPARERS
from skiptool.data.corpora.fsdd import prepare_fsdd, scan_fsdd
from skiptool.data.datadir import DataDir, validate_data_dir
from skiptool.utils.errors import SkiptoolError
from tests.fixtures.corpora import FSDD_DIGITS as DIGITS, FSDD_SPEAKERS as SPEAKERS, FSDD_TAKES as TAKES, make_fsdd


@pytest.fixture
def corpus(tmp_path) -> Path:
    return make_fsdd(tmp_path)


def test_registry_names_the_preparers():
    assert PREPARERS["fsdd"] is prepare_fsdd and "espeak-digits" in PREPARERS


def test_standard_split(tmp_path, corpus):
    parts = prepare_fsdd(corpus, tmp_path / "out", quiet=True)
    train, test = parts["train"], parts["test"]
    assert len(test) == len(SPEAKERS) * len(DIGITS) * 5 and len(train) == len(SPEAKERS) * len(DIGITS) * 2
    assert {int(u.rsplit("_", 1)[1]) for u in test.utts} == set(range(5))
    assert {int(u.rsplit("_", 1)[1]) for u in train.utts} == {5, 6}
    assert train.speakers == test.speakers == list(SPEAKERS)
    for part in ("train", "test"):
        assert validate_data_dir(tmp_path / "out" / part, quiet=True) == []
    dd = DataDir.load(tmp_path / "out" / "test")
    assert dd.tables["text"]["theo_9_3"] == "nine" and dd.tables["utt2label"]["theo_9_3"] == "9"
    assert dd.tables["utt2spk"]["theo_9_3"] == "theo"
    assert dd.wav_paths()["theo_9_3"] == (corpus / "recordings" / "9_theo_3.wav").resolve()
    assert float(dd.tables["utt2dur"]["jackson_3_4"]) == pytest.approx((400 + 40 * 4) / 8000)
    assert (tmp_path / "out" / "test" / "spk2utt").read_text().startswith("jackson jackson_0_0 jackson_0_1 ")


def test_speaker_split_holds_one_speaker_out(tmp_path, corpus):
    parts = prepare_fsdd(corpus, tmp_path / "out", split="speaker", test_speaker="jackson", quiet=True)
    assert parts["test"].speakers == ["jackson"] and parts["train"].speakers == ["theo"]
    assert len(parts["test"]) == len(parts["train"]) == len(DIGITS) * TAKES
    with pytest.raises(SkiptoolError, match="--test-speaker nobody: not an FSDD speaker here; choose one of jackson, theo"):
        prepare_fsdd(corpus, tmp_path / "other", split="speaker", test_speaker="nobody")


def test_refuses_to_overwrite(tmp_path, corpus):
    prepare_fsdd(corpus, tmp_path / "out", quiet=True)
    with pytest.raises(SkiptoolError, match="out/train: data dir already exists; pass --overwrite"):
        prepare_fsdd(corpus, tmp_path / "out")
    prepare_fsdd(corpus, tmp_path / "out", split="speaker", overwrite=True, quiet=True)
    assert DataDir.load(tmp_path / "out" / "test").speakers == ["theo"]


@pytest.mark.parametrize("layout, needle", [
    ("missing", "FSDD corpus dir not found; give the folder holding recordings/{digit}_{speaker}_{index}.wav"),
    ("no_recordings", "no recordings/ folder; an FSDD corpus dir holds recordings/{digit}_{speaker}_{index}.wav"),
    ("wrong_names", "no files named like {digit}_{speaker}_{index}.wav"),
])
def test_wrong_layout_is_one_clear_error(tmp_path, layout, needle):
    root = tmp_path / "corpus"
    if layout != "missing":
        (root / ("other" if layout == "no_recordings" else "recordings")).mkdir(parents=True)
        sf.write(root / "recordings" / "george-0.wav" if layout == "wrong_names" else root / "other" / "x.wav",
                 np.zeros(10, dtype=np.float32), 8000)
    with pytest.raises(SkiptoolError) as e:
        prepare_fsdd(root, tmp_path / "out")
    assert str(e.value).startswith(str(root)) and needle in str(e.value)
    assert not (tmp_path / "out").exists()


def test_unreadable_recording_names_the_file(tmp_path, corpus):
    (corpus / "recordings" / "3_theo_2.wav").write_bytes(b"not audio")
    with pytest.raises(SkiptoolError, match="3_theo_2.wav: cannot open as audio"):
        prepare_fsdd(corpus, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out" / "train").exists() and not (tmp_path / "out" / "test").exists()


def test_real_fsdd(tmp_path, fsdd_dir):
    assert len(scan_fsdd(fsdd_dir)) == 3000
    parts = prepare_fsdd(fsdd_dir, tmp_path / "out", quiet=True)
    assert (len(parts["train"]), len(parts["test"])) == (2700, 300)
    assert len(parts["test"].speakers) == 6
    assert validate_data_dir(tmp_path / "out" / "test", quiet=True) == []
    held_out = prepare_fsdd(fsdd_dir, tmp_path / "spk", split="speaker", quiet=True)
    assert held_out["test"].speakers == ["theo"] and len(held_out["test"]) == 500
    assert "theo" not in held_out["train"].speakers
