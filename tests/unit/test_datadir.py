"""Data dirs: tables, the strict DataDir loader, validate/fix/info/subset/split/combine."""

from __future__ import annotations

import os
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from skiptool.data import datadir
from skiptool.data.datadir import DataDir, Problem, validate_data_dir
from skiptool.utils.errors import SkiptoolError

SPEAKERS = {"alice": ["alice_0_0", "alice_1_0", "alice_2_0"], "bob": ["bob_0_0", "bob_1_0"]}
WORDS = ["zero", "one", "two"]


def make_data_dir(root: Path, images: bool = True) -> Path:
    """A valid 5-utterance data dir with real wavs (and images) under `root`."""
    data = root / "data"
    data.mkdir(parents=True)
    wavs, tables = root / "wavs", {n: {} for n in ("wav.scp", "text", "utt2spk", "utt2label", "utt2dur")}
    wavs.mkdir()
    rng = np.random.default_rng(0)
    for spk, utts in SPEAKERS.items():
        for utt in utts:
            digit = int(utt.split("_")[1])
            samples = 0.1 * rng.standard_normal(800 + 100 * digit).astype(np.float32)
            sf.write(wavs / f"{utt}.wav", samples, 8000, subtype="PCM_16")
            tables["wav.scp"][utt] = str(wavs / f"{utt}.wav")
            tables["text"][utt] = WORDS[digit]
            tables["utt2spk"][utt] = spk
            tables["utt2label"][utt] = str(digit)
            tables["utt2dur"][utt] = f"{len(samples) / 8000:.4f}"
            if images:
                Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(wavs / f"{utt}.png")
                tables.setdefault("img.scp", {})[utt] = str(wavs / f"{utt}.png")
    DataDir(tables).write(data, overwrite=True)
    return data


@pytest.fixture
def data(tmp_path) -> Path:
    return make_data_dir(tmp_path)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def set_lines(path: Path, rows: list[str]) -> None:
    path.write_text("".join(r + "\n" for r in rows))


def found(problems: list[Problem], file: str, key: str | None, needle: str) -> bool:
    return any(p.file == file and p.key == key and needle in p.message for p in problems)


# -- tables ---------------------------------------------------------------------------------------


def test_tables_round_trip_sorted_c_locale(tmp_path):
    table = {"b": "x y", "B": "2", "a": "1", "é": "accent", "k": ["p", "q"], "e": ""}
    datadir.write_table(tmp_path / "t", table)
    assert lines(tmp_path / "t") == ["B 2", "a 1", "b x y", "e", "k p q", "é accent"]
    assert datadir.read_table(tmp_path / "t") == {"B": "2", "a": "1", "b": "x y", "e": "", "k": "p q", "é": "accent"}


def test_read_table_splits_on_any_whitespace_and_rejects_duplicates(tmp_path):
    (tmp_path / "t").write_text("a\t1  2\nb   3\n\n")
    assert datadir.read_table(tmp_path / "t") == {"a": "1  2", "b": "3"}
    (tmp_path / "d").write_text("a 1\na 2\n")
    with pytest.raises(SkiptoolError, match="duplicate key 'a' .line 2."):
        datadir.read_table(tmp_path / "d")
    (tmp_path / "u").write_bytes(b"a 1\nb \xff\n")
    with pytest.raises(SkiptoolError, match="line 2 is not valid UTF-8"):
        datadir.read_table(tmp_path / "u")


def test_every_known_table_reads_and_writes(tmp_path, data):
    arks = tmp_path / "feats.ark"
    mats = {utt: np.full((3 + i, 4), i, dtype=np.float32) for i, utt in enumerate(sorted(lines_keys(data / "text")))}
    kaldiio.save_ark(str(arks), mats, scp=str(data / "feats.scp"))
    datadir.write_table(data / "utt2num_frames", {u: len(m) for u, m in mats.items()})
    datadir.write_table(data / "utt2emo", {u: "neutral" for u in mats})
    dd = DataDir.load(data)
    assert set(dd.tables) == {"wav.scp", "text", "utt2spk", "utt2label", "utt2dur", "img.scp", "feats.scp",
                              "utt2num_frames", "utt2emo"}
    assert dd.utts == sorted(mats) and dd.speakers == ["alice", "bob"]
    assert dd.spk2utt() == SPEAKERS
    assert dd.table("spk2utt")["bob"] == "bob_0_0 bob_1_0"
    assert dd.durations()["bob_1_0"] == pytest.approx(0.1125)
    assert dd.wav_paths()["alice_2_0"].name == "alice_2_0.wav"
    out = dd.write(tmp_path / "copy")
    for name in ("wav.scp", "text", "utt2spk", "spk2utt", "feats.scp", "utt2num_frames", "utt2emo", "img.scp"):
        assert (out / name).read_text() == (data / name).read_text(), name
    assert validate_data_dir(out) == []
    assert datadir.data_info(out).feat_dims == {4: 5}


def lines_keys(path: Path) -> list[str]:
    return [l.split()[0] for l in lines(path)]


def test_write_is_atomic_and_refuses_to_overwrite(tmp_path, data, monkeypatch):
    dd = DataDir.load(data)
    with pytest.raises(SkiptoolError, match="already exists; pass --overwrite"):
        dd.write(data)
    calls = []
    real_write_table = datadir.write_table

    def failing_write(path, table):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        real_write_table(path, table)

    monkeypatch.setattr(datadir, "write_table", failing_write)
    with pytest.raises(OSError):
        dd.write(tmp_path / "new")
    assert sorted(os.listdir(tmp_path)) == ["data", "wavs"]  # no half-written dir, no temp dir left


def test_load_is_strict_and_names_file_and_key(data):
    set_lines(data / "wav.scp", lines(data / "wav.scp")[:1] + ["alice_1_0 sox a.flac -t wav - |"]
              + lines(data / "wav.scp")[2:])
    with pytest.raises(SkiptoolError) as e:
        DataDir.load(data)
    assert "wav.scp: alice_1_0: is a pipe command" in str(e.value)
    assert "skiptool data validate" in str(e.value)


def test_pipe_rejected_by_wav_paths():
    dd = DataDir({"wav.scp": {"u1": "cat x.wav |"}, "text": {"u1": "one"}})
    with pytest.raises(SkiptoolError, match="'u1' is a pipe command"):
        dd.wav_paths()


# -- validate -------------------------------------------------------------------------------------


def test_valid_dir_has_no_problems(data):
    assert validate_data_dir(data) == []


def test_unsorted_and_duplicate_keys_are_each_reported(data):
    rows = lines(data / "text")
    set_lines(data / "text", [rows[1], rows[0], *rows[2:], rows[3]])
    problems = validate_data_dir(data, check_files=False)
    assert found(problems, "text", "alice_0_0", "not sorted")
    assert found(problems, "text", rows[3].split()[0], "duplicate key (lines 4 and 6)")


def test_mismatched_key_sets_list_every_missing_key(data):
    set_lines(data / "text", lines(data / "text")[2:])
    problems = validate_data_dir(data, check_files=False)
    assert found(problems, "text", "alice_0_0", "missing (present in wav.scp")
    assert found(problems, "text", "alice_1_0", "missing")
    assert len([p for p in problems if p.file == "text"]) == 2


def test_spk2utt_must_agree_with_utt2spk(data):
    set_lines(data / "spk2utt", ["alice alice_0_0 alice_1_0 alice_2_0 bob_1_0", "bob bob_0_0"])
    problems = validate_data_dir(data, check_files=False)
    assert found(problems, "spk2utt", "alice", "lists 'bob_1_0', but utt2spk gives its speaker as 'bob'")
    (data / "spk2utt").unlink()
    assert found(validate_data_dir(data, check_files=False), "spk2utt", None, "missing while utt2spk exists")


def test_speaker_ids_must_prefix_utterance_order(tmp_path):
    utt2spk = {"a1": "s1", "a2": "s2", "a3": "s1"}
    dd = DataDir({"utt2spk": utt2spk, "text": {u: "x" for u in utt2spk}})
    dd.write(tmp_path / "d")
    assert found(validate_data_dir(tmp_path / "d"), "utt2spk", "a3", "not contiguous")


def test_empty_text_and_non_utf8_text(data):
    rows = lines(data / "text")
    rows[2] = rows[2].split()[0]
    set_lines(data / "text", rows)
    with open(data / "text", "ab") as f:
        f.write(b"zz_9 caf\xe9\n")
    problems = validate_data_dir(data, check_files=False)
    assert found(problems, "text", "alice_2_0", "empty transcription")
    assert found(problems, "text", "line 6", "not valid UTF-8")


def test_missing_unreadable_and_empty_wavs(data):
    (data.parent / "wavs" / "alice_0_0.wav").unlink()
    (data.parent / "wavs" / "alice_1_0.wav").write_bytes(b"RIFF garbage")
    sf.write(data.parent / "wavs" / "bob_0_0.wav", np.zeros(0, dtype=np.float32), 8000)
    problems = validate_data_dir(data)
    assert found(problems, "wav.scp", "alice_0_0", "file not found")
    assert found(problems, "wav.scp", "alice_1_0", "cannot open as audio")
    assert found(problems, "wav.scp", "bob_0_0", "empty audio")
    assert validate_data_dir(data, check_files=False) == []


def test_missing_and_corrupt_images(data):
    (data.parent / "wavs" / "bob_0_0.png").unlink()
    png = (data.parent / "wavs" / "bob_1_0.png").read_bytes()
    (data.parent / "wavs" / "bob_1_0.png").write_bytes(png[:40] + b"\0" * 20 + png[60:])
    problems = validate_data_dir(data)
    assert found(problems, "img.scp", "bob_0_0", "file not found")
    assert found(problems, "img.scp", "bob_1_0", "cannot open as an image")


def test_feats_checks(tmp_path, data):
    mats = {u: np.ones((4, 3), dtype=np.float32) for u in lines_keys(data / "text")}
    mats["bob_1_0"] = np.ones((4, 5), dtype=np.float32)
    kaldiio.save_ark(str(tmp_path / "f.ark"), mats, scp=str(data / "feats.scp"))
    datadir.write_table(data / "utt2num_frames", {u: 4 for u in mats} | {"alice_0_0": 9})
    problems = validate_data_dir(data)
    assert found(problems, "feats.scp", "bob_1_0", "dimension 5, most matrices have 3")
    assert found(problems, "utt2num_frames", "alice_0_0", "says 9 frames, feats.scp has 4")
    (tmp_path / "f.ark").write_bytes(b"garbage")
    assert found(validate_data_dir(data), "feats.scp", "alice_0_0", "cannot read the matrix")


def test_segments_reference_recordings(tmp_path):
    sf.write(tmp_path / "rec.wav", np.zeros(8000, dtype=np.float32), 8000)
    tables = {"wav.scp": {"rec1": str(tmp_path / "rec.wav")},
              "segments": {"rec1-a": "rec1 0.0 0.4", "rec1-b": "rec1 0.5 0.5", "rec1-c": "rec2 0 1"},
              "text": {"rec1-a": "a", "rec1-b": "b", "rec1-c": "c"}}
    DataDir(tables).write(tmp_path / "d")
    problems = validate_data_dir(tmp_path / "d")
    assert found(problems, "segments", "rec1-b", "need 0 <= start < end")
    assert found(problems, "segments", "rec1-c", "recording 'rec2' is not in wav.scp")
    assert not any(p.file == "wav.scp" for p in problems)  # keyed by recording, not utterance
    sub = DataDir(tables).subset(["rec1-a"])
    assert sub.tables["wav.scp"] == {"rec1": str(tmp_path / "rec.wav")}


# -- fix ------------------------------------------------------------------------------------------


def test_fix_sorts_dedupes_intersects_and_backs_up(data):
    text = lines(data / "text")
    set_lines(data / "text", [text[1], text[0], text[0].split()[0] + " dup", *text[3:]])  # unsorted, dup, lost 1
    set_lines(data / "spk2utt", ["alice alice_0_0"])
    report = datadir.fix_data_dir(data)
    assert (report.kept, report.total) == (4, 5)
    assert any("dropped duplicate key 'alice_0_0'" in n for n in report.notes)
    assert validate_data_dir(data) == []
    assert lines(data / "text")[0] == text[0]  # the first of the duplicates is kept
    assert "alice_2_0" not in (data / "utt2spk").read_text()
    assert (report.backup / "text").read_text().splitlines()[0] == text[1]
    second = datadir.fix_data_dir(data)
    assert second.backup != report.backup and (report.backup / "text").exists()
    assert (second.kept, second.total) == (4, 4)


def test_fix_refuses_non_utf8(data):
    with open(data / "text", "ab") as f:
        f.write(b"zz \xff\n")
    with pytest.raises(SkiptoolError, match="not valid UTF-8"):
        datadir.fix_data_dir(data)
    assert not (data / ".backup").exists()


# -- info, subset, split, combine -----------------------------------------------------------------


def test_info(data):
    info = datadir.data_info(data)
    assert info.num_utts == 5 and info.num_speakers == 2
    assert info.labels == {"0": 2, "1": 2, "2": 1}
    assert sum(info.durations) == pytest.approx((800 * 2 + 900 * 2 + 1000) / 8000)
    assert info.num_images == 5
    (data / "utt2dur").unlink()
    info = datadir.data_info(data, quiet=True)
    assert info.sample_rates == {8000: 5} and info.duration_source == "wav headers"
    assert any(name == "labels" and "0 2, 1 2, 2 1" in value for name, value in info.lines())


def test_subset_modes(tmp_path, data):
    first = datadir.subset_data_dir(data, tmp_path / "first", first=2)
    assert first.utts == ["alice_0_0", "alice_1_0"]
    r1 = datadir.subset_data_dir(data, tmp_path / "r1", random=3, seed=5)
    r2 = datadir.subset_data_dir(data, tmp_path / "r2", random=3, seed=5)
    assert r1.utts == r2.utts and len(r1) == 3
    spk = datadir.subset_data_dir(data, tmp_path / "spk", speakers=["bob"])
    assert spk.utts == ["bob_0_0", "bob_1_0"] and (tmp_path / "spk" / "spk2utt").read_text() == "bob bob_0_0 bob_1_0\n"
    keys = datadir.subset_data_dir(data, tmp_path / "keys", keys=["bob_1_0", "nope"])
    assert keys.utts == ["bob_1_0"]
    assert validate_data_dir(tmp_path / "keys") == []
    with pytest.raises(SkiptoolError, match="--first 9: .* has 5 utterances"):
        datadir.subset_data_dir(data, tmp_path / "x", first=9)
    with pytest.raises(SkiptoolError, match="exactly one of"):
        datadir.subset_data_dir(data, tmp_path / "x", first=1, random=1)
    with pytest.raises(SkiptoolError, match="speaker 'carol' is not in"):
        datadir.subset_data_dir(data, tmp_path / "x", speakers=["carol"])
    with pytest.raises(SkiptoolError, match="already exists"):
        datadir.subset_data_dir(data, tmp_path / "first", first=1)


def test_split_by_speaker_is_disjoint_and_seeded(tmp_path):
    utt2spk = {f"s{s}_{i}": f"s{s}" for s in range(10) for i in range(3 + s % 3)}
    DataDir({"utt2spk": utt2spk, "text": {u: "x" for u in utt2spk}}).write(tmp_path / "src")
    parts = datadir.split_data_dir(tmp_path / "src", str(tmp_path / "p"), ratios=[0.6, 0.2, 0.2], seed=1)
    again = datadir.split_data_dir(tmp_path / "src", str(tmp_path / "q"), ratios=[0.6, 0.2, 0.2], seed=1)
    assert [p.utts for p in parts] == [p.utts for p in again]
    speaker_sets = [set(p.speakers) for p in parts]
    assert all(speaker_sets) and not (speaker_sets[0] & speaker_sets[1] or speaker_sets[1] & speaker_sets[2]
                                      or speaker_sets[0] & speaker_sets[2])
    assert sum(len(p) for p in parts) == len(utt2spk)
    assert abs(len(parts[0]) / len(utt2spk) - 0.6) < 0.15
    other = datadir.split_data_dir(tmp_path / "src", str(tmp_path / "r"), ratios=[0.6, 0.2, 0.2], seed=2)
    assert [p.utts for p in other] != [p.utts for p in parts]
    by_key = datadir.split_data_dir(tmp_path / "src", str(tmp_path / "k"), parts=4, by="key")
    assert sorted(len(p) for p in by_key) == [9, 10, 10, 10]  # 39 utterances
    assert (tmp_path / "k4" / "text").exists()
    with pytest.raises(SkiptoolError, match="10 speakers cannot fill 11"):
        datadir.split_data_dir(tmp_path / "src", str(tmp_path / "z"), parts=11)


def test_combine_and_prefix(tmp_path, data):
    datadir.subset_data_dir(data, tmp_path / "a", speakers=["alice"])
    datadir.subset_data_dir(data, tmp_path / "b", speakers=["bob"])
    combined, dropped = datadir.combine_data_dirs(tmp_path / "ab", [tmp_path / "a", tmp_path / "b"])
    assert combined.utts == DataDir.load(data).utts and dropped == []
    assert validate_data_dir(tmp_path / "ab") == []
    with pytest.raises(SkiptoolError, match="key 'alice_0_0' is also in"):
        datadir.combine_data_dirs(tmp_path / "aa", [tmp_path / "a", tmp_path / "a"])
    both, _ = datadir.combine_data_dirs(tmp_path / "aa", [tmp_path / "a", tmp_path / "a"], prefixes=["x", "y"])
    assert both.utts[0] == "x-alice_0_0" and both.speakers == ["x-alice", "y-alice"]
    assert validate_data_dir(tmp_path / "aa") == []
    (tmp_path / "b" / "img.scp").unlink()
    _, dropped = datadir.combine_data_dirs(tmp_path / "ab2", [tmp_path / "a", tmp_path / "b"])
    assert dropped == ["img.scp"] and not (tmp_path / "ab2" / "img.scp").exists()


def test_spk2gender_is_checked_subset_and_combined(tmp_path, data):
    datadir.write_table(data / "spk2gender", {"alice": "f", "bob": "m"})
    assert validate_data_dir(data, check_files=False) == []
    assert datadir.data_info(data).genders == {"f": 1, "m": 1}
    bob = datadir.subset_data_dir(data, tmp_path / "bob", speakers=["bob"])
    assert bob.genders() == {"bob": "m"}
    halves = datadir.split_data_dir(data, str(tmp_path / "half"), parts=2, by="key", seed=0)
    assert all(set(h.genders()) == set(h.speakers) for h in halves)
    # parts of one corpus share speakers: their genders merge when they agree
    merged, _ = datadir.combine_data_dirs(tmp_path / "merged", [tmp_path / "half1", tmp_path / "half2"])
    assert merged.genders() == {"alice": "f", "bob": "m"}
    datadir.write_table(data / "spk2gender", {"alice": "female", "carol": "f"})
    problems = validate_data_dir(data, check_files=False)
    assert found(problems, "spk2gender", "alice", "must be m or f")
    assert found(problems, "spk2gender", "bob", "speaker in utt2spk has no gender")
    assert found(problems, "spk2gender", "carol", "not a speaker in utt2spk")
