"""AudioMNIST preparer on a tiny corpus in the release layout (data/<spk>/<digit>_<spk>_<take>.wav)."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from skiptool.data.corpora.audiomnist import prepare_audiomnist
from skiptool.data.datadir import read_table
from skiptool.utils.errors import SkiptoolError
from tests.unit.test_corpora_tidigits import written
from tests.unit.test_corpora_tidigits import check_spoken_digit_dir, written

SR = 48000
SPEAKERS = [f"{i:02d}" for i in range(1, 11)]
FEMALE = {"03", "07", "09", "10"}


def make_audiomnist(root: Path, meta: bool = True) -> Path:
    for spk in SPEAKERS:
        for digit in (0, 7):
            for take in (0, 1):
                path = root / "data" / spk / f"{digit}_{spk}_{take}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, np.zeros(SR // 20, dtype=np.float32), SR, subtype="PCM_16")
    if meta:
        info = {spk: {"accent": "german", "age": "30", "gender": "female" if spk in FEMALE else "male",
                      "native speaker": "no"} for spk in SPEAKERS}
        (root / "data" / "audioMNIST_meta.txt").write_text(json.dumps(info, indent=4))
    return root


@pytest.fixture(scope="module")
def audiomnist(tmp_path_factory):
    return make_audiomnist(tmp_path_factory.mktemp("audiomnist") / "AudioMNIST")


def test_prepare_audiomnist(audiomnist, tmp_path):
    dirs = written(prepare_audiomnist(audiomnist, tmp_path / "data", seed=0))
    assert list(dirs) == ["train", "dev", "test"]
    tables = {split: check_spoken_digit_dir(d) for split, d in dirs.items()}
    speakers = {split: set(t["utt2spk"].values()) for split, t in tables.items()}
    assert (len(speakers["train"]), len(speakers["dev"]), len(speakers["test"])) == (7, 1, 2)
    assert set().union(*speakers.values()) == {f"audiomnist_{s}" for s in SPEAKERS}
    assert not (speakers["train"] & speakers["test"] or speakers["train"] & speakers["dev"]
                or speakers["dev"] & speakers["test"])

    utt = "audiomnist_03_7_01"
    split = next(s for s, t in tables.items() if utt in t["text"])
    assert tables[split]["text"][utt] == "seven" and tables[split]["utt2label"][utt] == "7"
    assert tables[split]["wav.scp"][utt] == str((audiomnist / "data" / "03" / "7_03_1.wav").resolve())
    assert float(tables[split]["utt2dur"][utt]) == pytest.approx(0.05)
    genders = {}
    for d in dirs.values():
        genders |= read_table(d / "spk2gender")
    assert genders == {f"audiomnist_{s}": "f" if s in FEMALE else "m" for s in SPEAKERS}
    # stratified by gender (4 of 10 speakers female): one female among the 2 test speakers, any seed
    assert sum(genders[s] == "f" for s in speakers["test"]) == 1


def test_seeded_split_and_data_dir_as_corpus(audiomnist, tmp_path):
    a = written(prepare_audiomnist(audiomnist, tmp_path / "a", seed=5))
    b = written(prepare_audiomnist(audiomnist / "data", tmp_path / "b", seed=5))
    for split in a:
        assert (a[split] / "spk2utt").read_text() == (b[split] / "spk2utt").read_text()
    tests = {(written(prepare_audiomnist(audiomnist, tmp_path / f"s{seed}", seed=seed))["test"] / "spk2utt").read_text()
             for seed in range(4)}
    assert len(tests) > 1  # the seed changes which speakers are held out


def test_without_meta_has_no_spk2gender(tmp_path):
    corpus = make_audiomnist(tmp_path / "am", meta=False)
    dirs = written(prepare_audiomnist(corpus, tmp_path / "out"))
    assert not (dirs["train"] / "spk2gender").exists()


def test_layout_errors(tmp_path, audiomnist):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SkiptoolError, match=r"empty: not an AudioMNIST directory.*data/<01..60>/<digit>_<speaker>"):
        prepare_audiomnist(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(SkiptoolError, match="nowhere: not an AudioMNIST directory"):
        prepare_audiomnist(tmp_path / "nowhere", tmp_path / "out")
    corpus = make_audiomnist(tmp_path / "bad")
    sf.write(corpus / "data" / "02" / "3_05_0.wav", np.zeros(10), SR)
    with pytest.raises(SkiptoolError, match=r"3_05_0.wav: name does not fit"):
        prepare_audiomnist(corpus, tmp_path / "out")
    corpus = make_audiomnist(tmp_path / "badmeta")
    (corpus / "data" / "audioMNIST_meta.txt").write_text("{not json")
    with pytest.raises(SkiptoolError, match="audioMNIST_meta.txt: not a valid AudioMNIST meta file"):
        prepare_audiomnist(corpus, tmp_path / "out")
