"""TIDIGITS preparer on a tiny corpus in the LDC layout, with NIST SPHERE files."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from skiptool.data.corpora.tidigits import prepare_tidigits, split_speakers
from skiptool.data.datadir import DataDir, keys_sorted, read_table, read_table_lines
from skiptool.utils.errors import SkiptoolError

SR = 20000


def write_sphere(path: Path, seconds: float = 0.1, sr: int = SR) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), sr, format="NIST", subtype="PCM_16")


def written(parts: dict) -> dict[str, Path]:
    """{split: path} of a preparer's returned data dirs, after checking that each was written and
    passes the strict Kaldi-style checks of `DataDir.load` (sorted, consistent keys, spk2utt)."""
    for name, data_dir in parts.items():
        assert isinstance(data_dir, DataDir) and data_dir.path.name == name
        assert len(DataDir.load(data_dir.path)) == len(data_dir) > 0
    return {name: data_dir.path for name, data_dir in parts.items()}


def check_spoken_digit_dir(data_dir: Path) -> dict[str, dict[str, str]]:
    """The tables every spoken-digit data dir has: sorted, same keys, ids prefixed by speaker."""
    tables = {}
    for name in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2label", "utt2dur"):
        keys = [key for _, key, _ in read_table_lines(data_dir / name)]
        assert keys_sorted(keys), name
        tables[name] = read_table(data_dir / name)
    keys = set(tables["wav.scp"])
    for name in ("text", "utt2spk", "utt2label", "utt2dur"):
        assert set(tables[name]) == keys, name
    for utt, spk in tables["utt2spk"].items():
        assert utt.startswith(spk + "_"), (utt, spk)
    for path in tables["wav.scp"].values():
        assert Path(path).is_absolute() and Path(path).is_file()
    assert {u for us in tables["spk2utt"].values() for u in us.split()} == keys
    assert all(0 <= int(v) <= 9 for v in tables["utt2label"].values())
    return tables


def make_tidigits(root: Path, upper: bool = False) -> Path:
    """train: 4 men, 2 women, 1 boy; test: 1 man, 1 woman, 1 girl; isolated and connected digits."""
    speakers = {"train": {"man": ["ae", "ah", "aj", "al"], "woman": ["ac", "ag"], "boy": ["ba"]},
                "test": {"man": ["ap"], "woman": ["aw"], "girl": ["ga"]}}
    for split, groups in speakers.items():
        for group, codes in groups.items():
            for code in codes:
                for name in ("1a.wav", "zb.wav", "oa.wav", "9b.wav", "12a.wav", "o3z4a.wav"):
                    rel = Path(split, group, code, name)
                    write_sphere(root / (Path(str(rel).upper()) if upper else rel))
    return root


@pytest.fixture(scope="module")
def tidigits(tmp_path_factory):
    return make_tidigits(tmp_path_factory.mktemp("tidigits") / "tidigits")


def test_sphere_files_are_read_by_soundfile(tidigits):
    info = sf.info(str(tidigits / "train" / "man" / "ae" / "1a.wav"))
    assert (info.format, info.subtype, info.samplerate) == ("NIST", "PCM_16", SR)
    assert (tidigits / "train" / "man" / "ae" / "1a.wav").read_bytes().startswith(b"NIST_1A")


def test_prepare_tidigits_adults(tidigits, tmp_path):
    dirs = written(prepare_tidigits(tidigits, tmp_path / "data"))
    assert list(dirs) == ["train", "dev", "test"]
    tables = {split: check_spoken_digit_dir(d) for split, d in dirs.items()}

    # isolated digits only: 4 per speaker (1, z, o, 9), never "12a" or "o3z4a"
    test = tables["test"]
    assert sorted(test["text"]) == [f"tidigits_{g}_{c}_{s}" for g, c in (("man", "ap"), ("woman", "aw"))
                                    for s in ("1a", "9b", "oa", "zb")]
    assert test["text"]["tidigits_man_ap_oa"] == "oh" and test["utt2label"]["tidigits_man_ap_oa"] == "0"
    assert test["text"]["tidigits_man_ap_zb"] == "zero" and test["utt2label"]["tidigits_man_ap_zb"] == "0"
    assert test["text"]["tidigits_man_ap_9b"] == "nine" and test["utt2label"]["tidigits_man_ap_9b"] == "9"
    assert float(test["utt2dur"]["tidigits_man_ap_1a"]) == pytest.approx(0.1)
    assert read_table(dirs["test"] / "spk2gender") == {"tidigits_man_ap": "m", "tidigits_woman_aw": "f"}

    # official test speakers stay in test; dev is carved from training speakers; no child by default
    speakers = {split: set(t["utt2spk"].values()) for split, t in tables.items()}
    assert speakers["test"] == {"tidigits_man_ap", "tidigits_woman_aw"}
    assert speakers["train"] | speakers["dev"] == {f"tidigits_man_{c}" for c in ("ae", "ah", "aj", "al")} | \
        {"tidigits_woman_ac", "tidigits_woman_ag"}
    assert not speakers["train"] & speakers["dev"] and len(speakers["dev"]) == 1


def test_children_groups_and_seeded_dev(tidigits, tmp_path):
    dirs = written(prepare_tidigits(tidigits, tmp_path / "a", groups=("man", "woman", "boy", "girl"), seed=3))
    again = written(prepare_tidigits(tidigits, tmp_path / "b", groups=("man", "woman", "boy", "girl"), seed=3))
    for split in dirs:
        assert (dirs[split] / "utt2spk").read_text() == (again[split] / "utt2spk").read_text()
    genders = read_table(dirs["test"] / "spk2gender")
    assert genders["tidigits_girl_ga"] == "f"
    all_train = read_table(dirs["train"] / "spk2gender") | read_table(dirs["dev"] / "spk2gender")
    assert all_train["tidigits_boy_ba"] == "m"


def test_upper_case_and_data_adults_layouts(tmp_path):
    upper = make_tidigits(tmp_path / "upper", upper=True)
    dirs = written(prepare_tidigits(upper, tmp_path / "out1"))
    assert "tidigits_man_ap_oa" in read_table(dirs["test"] / "text")

    ldc = tmp_path / "ldc"
    for age, groups in (("adults", ("man", "woman")), ("children", ("boy", "girl"))):
        for split in ("train", "test"):
            for group in groups:
                for code in ("x1", "x2") if split == "train" else ("y1",):
                    write_sphere(ldc / "data" / age / split / group / code / "5a.wav")
    dirs = written(prepare_tidigits(ldc, tmp_path / "out2", groups=("man", "woman", "girl", "boy")))
    assert set(read_table(dirs["test"] / "utt2spk").values()) == \
        {f"tidigits_{g}_y1" for g in ("man", "woman", "boy", "girl")}


def test_layout_errors_name_the_path(tidigits, tmp_path):
    with pytest.raises(SkiptoolError, match=r"missing.*not found.*\{train,test\}/\{man,woman,boy,girl\}"):
        prepare_tidigits(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "flat").mkdir()
    write_sphere(tmp_path / "flat" / "1a.wav")
    with pytest.raises(SkiptoolError, match=r"flat: no 'train' folder; expected"):
        prepare_tidigits(tmp_path / "flat", tmp_path / "out")
    with pytest.raises(SkiptoolError, match=r"groups.*'men'"):
        prepare_tidigits(tidigits, tmp_path / "out", groups=("men",))


def test_corrupt_audio_is_a_user_error(tmp_path):
    corpus = make_tidigits(tmp_path / "c")
    (corpus / "test" / "man" / "ap" / "1a.wav").write_bytes(b"NIST_1A\n garbage")
    with pytest.raises(SkiptoolError, match=r"ap/1a.wav: cannot read audio header"):
        prepare_tidigits(corpus, tmp_path / "out")


def test_split_speakers_is_stratified_seeded_and_disjoint():
    speakers = [f"s{i:02d}" for i in range(40)]
    strata = {s: "f" if i < 10 else "m" for i, s in enumerate(speakers)}
    split = split_speakers(speakers, {"dev": 0.1, "test": 0.2}, seed=1, strata=strata)
    assert split == split_speakers(reversed(speakers), {"dev": 0.1, "test": 0.2}, seed=1, strata=strata)
    assert split != split_speakers(speakers, {"dev": 0.1, "test": 0.2}, seed=2, strata=strata)
    test = [s for s in speakers if split[s] == "test"]
    assert len(test) == 8 and sum(strata[s] == "f" for s in test) == 2  # a quarter of them "f"
    assert sum(v == "dev" for v in split.values()) == 4
    with pytest.raises(SkiptoolError, match="only 2 speaker"):
        split_speakers(["a", "b"], {"dev": 0.1, "test": 0.2}, seed=0)
    with pytest.raises(SkiptoolError, match="test fraction 1.5: must be between 0 and 1"):
        split_speakers(speakers, {"test": 1.5}, seed=0)
    with pytest.raises(SkiptoolError, match="leave no training speakers"):
        split_speakers(speakers, {"dev": 0.5, "test": 0.5}, seed=0)


def test_existing_output_needs_overwrite(tidigits, tmp_path):
    first = written(prepare_tidigits(tidigits.parent, tmp_path / "out", quiet=True))  # corpus/tidigits/ found
    (first["dev"] / "note").write_text("user file")
    with pytest.raises(SkiptoolError, match=r"out/train: data dir already exists; pass --overwrite"):
        prepare_tidigits(tidigits, tmp_path / "out")
    again = written(prepare_tidigits(tidigits, tmp_path / "out", overwrite=True, quiet=True))
    assert not (again["dev"] / "note").exists()
    assert (again["test"] / "wav.scp").read_text() == (first["test"] / "wav.scp").read_text()
