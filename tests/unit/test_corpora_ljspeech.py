"""LJSpeech preparer on a tiny fixture in the real layout (metadata.csv + wavs/)."""

from __future__ import annotations

import pytest

from skiptool.data.corpora import PREPARERS
from skiptool.data.corpora.ljspeech import prepare_ljspeech
from skiptool.data.datadir import DataDir, validate_data_dir
from skiptool.utils.errors import SkiptoolError
from tests.conftest import assert_user_error, run_cli
from tests.fixtures.corpora import make_ljspeech


def test_prepare_ljspeech(tmp_path):
    corpus = make_ljspeech(tmp_path)
    parts = prepare_ljspeech(corpus, tmp_path / "out", dev_size=2, test_size=3)
    assert PREPARERS["ljspeech"] is prepare_ljspeech
    assert [len(parts[s]) for s in ("train", "dev", "test")] == [7, 2, 3]
    assert parts["test"].utts == ["LJ002-0005", "LJ003-0001", "LJ003-0002"]  # the last ones by id
    for split in ("train", "dev", "test"):
        assert validate_data_dir(tmp_path / "out" / split, quiet=True) == []
    train = DataDir.load(tmp_path / "out" / "train")
    assert train.speakers == ["LJ"] and set(train.tables["utt2emo"].values()) == {"neutral"}
    assert train.tables["text"]["LJ001-0001"].endswith('concerned, number 1; "quoted".')  # normalized column
    assert "No. 4" in train.tables["text"]["LJ001-0004"]  # empty normalized column: the raw text
    assert float(train.tables["utt2dur"]["LJ001-0002"]) == pytest.approx(0.21, abs=1e-4)
    assert train.wav_paths()["LJ001-0001"] == (corpus / "wavs" / "LJ001-0001.wav").resolve()


@pytest.mark.parametrize("damage, needle", [
    ("no_dir", "LJSpeech dir not found; give the folder holding metadata.csv (id|text|normalized text) and wavs/<id>.wav"),
    ("no_metadata", "metadata.csv: not found; an LJSpeech dir holds metadata.csv"),
    ("fields", "metadata.csv: line 2 has 2 '|'-separated fields; each line must be id|text|normalized text"),
    ("no_wav", "LJ001-0003.wav: not found; an LJSpeech dir holds"),
    ("sizes", "--dev-size 6 --test-size 6: "),
])
def test_wrong_layout_is_one_clear_error(tmp_path, damage, needle):
    corpus = make_ljspeech(tmp_path)
    sizes = {"dev_size": 2, "test_size": 2}
    if damage == "no_dir":
        corpus = tmp_path / "nowhere"
    elif damage == "no_metadata":
        (corpus / "metadata.csv").unlink()
    elif damage == "fields":
        lines = (corpus / "metadata.csv").read_text().splitlines()
        lines[1] = "LJ001-0002|only text"
        (corpus / "metadata.csv").write_text("\n".join(lines))
    elif damage == "no_wav":
        (corpus / "wavs" / "LJ001-0003.wav").unlink()
    else:
        sizes = {"dev_size": 6, "test_size": 6}
    with pytest.raises(SkiptoolError) as err:
        prepare_ljspeech(corpus, tmp_path / "out", **sizes)
    assert needle in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_cli(tmp_path):
    corpus = make_ljspeech(tmp_path)
    result = run_cli("prep", "ljspeech", corpus, tmp_path / "out", "--dev-size", "1", "--test-size", "1")
    assert result.code == 0, result.err
    assert f"wrote {tmp_path / 'out' / 'train'}: 10 utterances, 1 speaker" in result.out
    assert_user_error(run_cli("prep", "ljspeech", tmp_path, tmp_path / "o2"), "metadata.csv: not found")
