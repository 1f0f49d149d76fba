"""EMT-4-style list preparer (wav<TAB>text<TAB>emotion) on tiny fixtures."""

from __future__ import annotations

import pytest

from skiptool.data.corpora import PREPARERS
from skiptool.data.corpora.emt4 import prepare_emt4
from skiptool.data.datadir import DataDir, validate_data_dir
from skiptool.utils.errors import SkiptoolError
from tests.conftest import assert_user_error, run_cli
from tests.fixtures.corpora import make_emt4


def test_one_list_seeded_split(tmp_path):
    corpus = make_emt4(tmp_path)
    parts = prepare_emt4(corpus, tmp_path / "out", dev_size=2, test_size=3, seed=1)
    assert PREPARERS["emt4"] is prepare_emt4
    assert [len(parts[s]) for s in ("train", "dev", "test")] == [11, 2, 3]
    assert not set(parts["train"].utts) & set(parts["test"].utts)
    for split in ("train", "dev", "test"):
        assert validate_data_dir(tmp_path / "out" / split, quiet=True) == []
    dd = DataDir.load(tmp_path / "out" / "train")
    all_emos = {**dd.tables["utt2emo"], **parts["dev"].tables["utt2emo"], **parts["test"].tables["utt2emo"]}
    assert all_emos["emt4-0005"] == "happy" and all_emos["emt4-0002"] == "sad" and len(all_emos) == 16
    utt = dd.utts[0]
    assert dd.tables["text"][utt].startswith("Sentence number") and dd.speakers == ["emt4"]
    assert dd.wav_paths()[utt] == (corpus.parent / "wavs" / f"{utt.split('-')[1]}.wav").resolve()
    again = prepare_emt4(corpus, tmp_path / "again", dev_size=2, test_size=3, seed=1)
    assert again["test"].utts == parts["test"].utts  # seeded


def test_split_files_and_speaker(tmp_path):
    corpus = make_emt4(tmp_path, split_files=True)
    parts = prepare_emt4(corpus, tmp_path / "out", speaker="f01")
    assert [len(parts[s]) for s in ("train", "dev", "test")] == [12, 2, 2]
    assert parts["test"].utts == ["f01-0014", "f01-0015"] and parts["test"].speakers == ["f01"]


@pytest.mark.parametrize("damage, needle", [
    ("no_list", "emt4.tsv: not found; expected a UTF-8 list of 'wav<TAB>text<TAB>emotion' lines"),
    ("fields", "emt4.tsv: line 4 has 2 tab-separated fields; expected wav<TAB>text<TAB>emotion"),
    ("emotion", "emt4.tsv: line 4: emotion 'excited' must be one of neutral, happy, sad, angry"),
    ("no_wav", "0003.wav: not found; fix the list (paths are relative to its folder)"),
    ("duplicate", "file name 0000 also used by"),
    ("split_files", "no dev.tsv; expected"),
])
def test_wrong_layout_is_one_clear_error(tmp_path, damage, needle):
    corpus = make_emt4(tmp_path)
    lines = corpus.read_text().splitlines()
    if damage == "no_list":
        corpus.unlink()
    elif damage == "fields":
        lines[3] = "wavs/0001.wav\tno emotion"
    elif damage == "emotion":
        lines[3] = lines[3].replace("happy", "excited")
    elif damage == "no_wav":
        (corpus.parent / "wavs" / "0003.wav").unlink()
    elif damage == "duplicate":
        lines.append("other/0000.wav\tAgain.\tsad")
    else:
        corpus = make_emt4(tmp_path / "dirs", split_files=True)
        (corpus / "dev.tsv").unlink()
    if damage in ("fields", "emotion", "duplicate"):
        corpus.write_text("\n".join(lines) + "\n")
    with pytest.raises(SkiptoolError) as err:
        prepare_emt4(corpus, tmp_path / "out", dev_size=2, test_size=2)
    assert needle in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_cli(tmp_path):
    corpus = make_emt4(tmp_path)
    result = run_cli("prep", "emt4", corpus, tmp_path / "out", "--dev-size", "2", "--test-size", "2")
    assert result.code == 0, result.err
    assert f"wrote {tmp_path / 'out' / 'train'}: 12 utterances, 1 speaker" in result.out
    assert_user_error(run_cli("prep", "emt4", tmp_path / "x.tsv", tmp_path / "o2"), "x.tsv: not found")
