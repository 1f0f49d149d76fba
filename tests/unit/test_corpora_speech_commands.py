"""Speech Commands preparer on a tiny corpus in the release layout, with the official list files."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from skiptool.data.corpora.speech_commands import prepare_speech_commands
from skiptool.utils.errors import SkiptoolError
from tests.unit.test_corpora_tidigits import check_spoken_digit_dir, written

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TRAIN, DEV, TEST = ("0a7c2a8d", "1b4c9b89"), ("c634a189",), ("ffd2ba2f",)


def make_speech_commands(root: Path) -> Path:
    """Every listed speaker says every digit word (twice for the first) and "yes"."""
    for word in (*DIGITS, "yes"):
        for spk in TRAIN + DEV + TEST:
            for n in (0, 1) if spk == TRAIN[0] else (0,):
                path = root / word / f"{spk}_nohash_{n}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, np.zeros(1600, dtype=np.float32), 16000, subtype="PCM_16")
    (root / "_background_noise_").mkdir()
    sf.write(root / "_background_noise_" / "white_noise.wav", np.zeros(1600), 16000)
    for name, speakers in (("validation_list.txt", DEV), ("testing_list.txt", TEST)):
        (root / name).write_text("".join(f"{w}/{s}_nohash_0.wav\n" for w in ("yes", *DIGITS) for s in speakers))
    return root


@pytest.fixture(scope="module")
def speech_commands(tmp_path_factory):
    return make_speech_commands(tmp_path_factory.mktemp("sc") / "speech_commands_v0.02")


def test_prepare_speech_commands(speech_commands, tmp_path):
    dirs = written(prepare_speech_commands(speech_commands, tmp_path / "data"))
    assert list(dirs) == ["train", "dev", "test"]
    tables = {split: check_spoken_digit_dir(d) for split, d in dirs.items()}
    speakers = {split: set(t["utt2spk"].values()) for split, t in tables.items()}
    assert speakers == {"train": {f"speechcommands_{s}" for s in TRAIN},
                        "dev": {f"speechcommands_{s}" for s in DEV},
                        "test": {f"speechcommands_{s}" for s in TEST}}
    assert len(tables["train"]["text"]) == 30 and len(tables["test"]["text"]) == 10  # digits only, no "yes"
    utt = "speechcommands_0a7c2a8d_eight_1"
    assert tables["train"]["text"][utt] == "eight" and tables["train"]["utt2label"][utt] == "8"
    assert tables["train"]["wav.scp"][utt] == str((speech_commands / "eight" / "0a7c2a8d_nohash_1.wav").resolve())
    assert float(tables["dev"]["utt2dur"]["speechcommands_c634a189_zero_0"]) == pytest.approx(0.1)
    assert {tables["test"]["utt2label"][f"speechcommands_{TEST[0]}_{w}_0"] for w in DIGITS} == \
        {str(d) for d in range(10)}


def test_missing_lists_or_words_name_them(tmp_path):
    corpus = make_speech_commands(tmp_path / "sc")
    (corpus / "testing_list.txt").unlink()
    with pytest.raises(SkiptoolError, match=r"sc: not a Speech Commands directory, missing testing_list.txt"):
        prepare_speech_commands(corpus, tmp_path / "out")
    (tmp_path / "words").mkdir()
    with pytest.raises(SkiptoolError, match=r"missing zero, one, .*validation_list.txt"):
        prepare_speech_commands(tmp_path / "words", tmp_path / "out")
    with pytest.raises(SkiptoolError, match="nowhere: Speech Commands directory not found"):
        prepare_speech_commands(tmp_path / "nowhere", tmp_path / "out")


def test_lists_that_are_not_speaker_disjoint_are_refused(tmp_path):
    corpus = make_speech_commands(tmp_path / "sc")
    with open(corpus / "testing_list.txt", "a") as f:
        f.write(f"one/{TRAIN[0]}_nohash_1.wav\n")  # the speaker's other takes stay in train
    with pytest.raises(SkiptoolError, match=f"speechcommands_{TRAIN[0]} in both train and test"):
        prepare_speech_commands(corpus, tmp_path / "out")


def test_listed_file_missing_and_bad_name(tmp_path):
    corpus = make_speech_commands(tmp_path / "sc")
    (corpus / "five" / f"{DEV[0]}_nohash_0.wav").unlink()
    with pytest.raises(SkiptoolError, match=rf"validation_list.txt: lists five/{DEV[0]}_nohash_0.wav, which is missing"):
        prepare_speech_commands(corpus, tmp_path / "out")
    corpus = make_speech_commands(tmp_path / "sc2")
    sf.write(corpus / "two" / "recording.wav", np.zeros(10), 16000)
    with pytest.raises(SkiptoolError, match=r"two/recording.wav: name does not fit"):
        prepare_speech_commands(corpus, tmp_path / "out")
