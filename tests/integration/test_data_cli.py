"""`skiptool data ...` through the CLI: the exact forms recipes use, and every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import assert_user_error
from tests.unit.test_datadir import make_data_dir


@pytest.fixture
def data(tmp_path) -> Path:
    return make_data_dir(tmp_path)


def edit(path: Path, change) -> None:
    rows = path.read_text().splitlines()
    path.write_text("".join(r + "\n" for r in change(rows)))


def test_validate_ok(cli, data):
    r = cli("data", "validate", data)
    assert r.code == 0, r.err
    assert r.out.strip().endswith("OK (5 utterances, 2 speakers; tables and files checked)")


def _break_wav_missing(data):
    (data.parent / "wavs" / "alice_1_0.wav").unlink()


def _break_wav_unreadable(data):
    (data.parent / "wavs" / "alice_1_0.wav").write_bytes(b"RIFF\x00\x00not really a wav")


def _break_duplicate(data):
    edit(data / "utt2label", lambda rows: rows[:2] + [rows[1]] + rows[2:])


def _break_unsorted(data):
    edit(data / "utt2dur", lambda rows: [rows[1], rows[0], *rows[2:]])


def _break_non_utf8(data):
    with open(data / "text", "ab") as f:
        f.write(b"carol_0_0 z\xe9ro\n")


def _break_image_missing(data):
    (data.parent / "wavs" / "bob_1_0.png").unlink()


def _break_image_corrupt(data):
    (data.parent / "wavs" / "bob_1_0.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)


def _break_key_sets(data):
    edit(data / "utt2label", lambda rows: [r for r in rows if not r.startswith("bob_0_0 ")])


def _break_spk2utt(data):
    (data / "spk2utt").write_text("alice alice_0_0 alice_1_0\nbob alice_2_0 bob_0_0 bob_1_0\n")


def _break_empty_text(data):
    edit(data / "text", lambda rows: [r.split()[0] if r.startswith("bob_0_0 ") else r for r in rows])


def _break_pipe(data):
    edit(data / "wav.scp", lambda rows: [f"{r.split()[0]} sox {r.split()[1]} -t wav - |" if r.startswith("alice_2_0")
                                         else r for r in rows])


BAD_INPUTS = [  # (break, file, key, what the listing says)
    (_break_wav_missing, "wav.scp", "alice_1_0", "file not found"),
    (_break_wav_unreadable, "wav.scp", "alice_1_0", "cannot open as audio"),
    (_break_duplicate, "utt2label", "alice_1_0", "duplicate key (lines 2 and 3)"),
    (_break_unsorted, "utt2dur", "alice_0_0", "not sorted"),
    (_break_non_utf8, "text", "line 6", "not valid UTF-8"),
    (_break_image_missing, "img.scp", "bob_1_0", "file not found"),
    (_break_image_corrupt, "img.scp", "bob_1_0", "cannot open as an image"),
    (_break_key_sets, "utt2label", "bob_0_0", "missing (present in wav.scp, text, utt2spk, utt2dur, img.scp)"),
    (_break_spk2utt, "spk2utt", "bob", "lists 'alice_2_0', but utt2spk gives its speaker as 'alice'"),
    (_break_empty_text, "text", "bob_0_0", "empty transcription"),
    (_break_pipe, "wav.scp", "alice_2_0", "is a pipe command; skiptool does not run shell pipes"),
]


@pytest.mark.parametrize("breaker, file, key, message", BAD_INPUTS, ids=[b[0].__name__[7:] for b in BAD_INPUTS])
def test_validate_lists_each_bad_input(cli, data, breaker, file, key, message):
    breaker(data)
    r = cli("data", "validate", data)
    assert_user_error(r, str(data), "problem", "skiptool data fix")
    assert f"{file}: {key}: {message}" in r.out.splitlines()[0] or any(
        line.startswith(f"{file}: {key}: ") and message in line for line in r.out.splitlines()), r.out


@pytest.mark.parametrize("breaker, file, key, message", [b for b in BAD_INPUTS if b[1] not in ("img.scp",)
                                                         and "file not found" not in b[3]
                                                         and "cannot open" not in b[3]],
                         ids=lambda v: v.__name__[7:] if callable(v) else None)
def test_other_commands_refuse_a_bad_dir_in_one_line(cli, tmp_path, data, breaker, file, key, message):
    breaker(data)
    r = cli("data", "subset", data, tmp_path / "sub", "--first", "2")
    assert_user_error(r, f"{data / file}", "skiptool data validate")
    assert not (tmp_path / "sub").exists()


def test_validate_lists_every_offender_and_can_skip_files(cli, data):
    for name in ("alice_0_0", "bob_1_0"):
        (data.parent / "wavs" / f"{name}.wav").unlink()
    edit(data / "text", lambda rows: rows[:-1])
    r = cli("data", "validate", data)
    listed = [l for l in r.out.splitlines() if l]
    assert listed == [f"wav.scp: alice_0_0: file not found: {data.parent / 'wavs' / 'alice_0_0.wav'}",
                      f"wav.scp: bob_1_0: file not found: {data.parent / 'wavs' / 'bob_1_0.wav'}",
                      "text: bob_1_0: missing (present in wav.scp, utt2spk, utt2dur, img.scp, utt2label)"]
    assert_user_error(r, "3 problems in text, wav.scp")
    r = cli("data", "validate", data, "--no-check-files")
    assert_user_error(r, "1 problem in text")


def test_validate_missing_dir(cli, tmp_path):
    assert_user_error(cli("data", "validate", tmp_path / "nope"), str(tmp_path / "nope"), "data dir not found")


def test_fix_then_validate(cli, data):
    _break_duplicate(data)
    _break_unsorted(data)
    _break_key_sets(data)
    (data / "spk2utt").unlink()
    r = cli("data", "fix", data)
    assert r.code == 0, r.err
    assert "kept 4 of 5 utterances" in r.out and "dropped duplicate key 'alice_1_0'" in r.out
    backups = list((data / ".backup").iterdir())
    assert len(backups) == 1 and (backups[0] / "utt2label").read_text().count("alice_1_0") == 2
    assert cli("data", "validate", data).code == 0
    assert "kept 4 of 4" in cli("data", "fix", data).out
    assert len(list((data / ".backup").iterdir())) == 2  # the first backup is kept


def test_info(cli, data):
    r = cli("data", "info", data)
    assert r.code == 0, r.err
    assert "utterances: 5" in r.out and "speakers: 2 (2-3 utterances each)" in r.out
    assert "labels: 3 classes: 0 2, 1 2, 2 1" in r.out
    assert "duration: 0.6 s total (0:00:01)" in r.out and "(utt2dur)" in r.out


def test_subset_split_combine(cli, tmp_path, data):
    r = cli("data", "subset", data, tmp_path / "r3", "--random", "3", "--seed", "1")
    assert r.code == 0 and "wrote" in r.out and "3 utterances" in r.out, r.err
    assert cli("data", "validate", tmp_path / "r3").code == 0
    assert_user_error(cli("data", "subset", data, tmp_path / "r3", "--first", "1"), "already exists", "--overwrite")
    assert cli("data", "subset", data, tmp_path / "r3", "--first", "1", "--overwrite").code == 0
    assert len((tmp_path / "r3" / "text").read_text().splitlines()) == 1

    (tmp_path / "spk.list").write_text("bob\n")
    assert cli("data", "subset", data, tmp_path / "bob", "--speakers", tmp_path / "spk.list").code == 0
    (tmp_path / "keys.list").write_text("alice_1_0 anything\nalice_0_0\n")
    assert cli("data", "subset", data, tmp_path / "keys", "--keys", tmp_path / "keys.list").code == 0
    assert (tmp_path / "keys" / "utt2spk").read_text() == "alice_0_0 alice\nalice_1_0 alice\n"
    assert_user_error(cli("data", "subset", data, tmp_path / "x"), "exactly one of --keys, --first")

    r = cli("data", "split", data, f"{tmp_path}/part", "--parts", "2", "--by", "speaker", "--seed", "3")
    assert r.code == 0, r.err
    speakers = {(tmp_path / f"part{i}" / "spk2utt").read_text().split()[0] for i in (1, 2)}
    assert speakers == {"alice", "bob"}
    assert cli("data", "split", data, f"{tmp_path}/k", "--ratios", "0.6,0.4", "--by", "key").code == 0
    assert_user_error(cli("data", "split", data, f"{tmp_path}/q", "--ratios", "a,b"), "--ratios a,b")

    assert_user_error(cli("data", "combine", tmp_path / "c", tmp_path / "keys", data), "key 'alice_0_0' is also in")
    r = cli("data", "combine", tmp_path / "c", tmp_path / "keys", data, "--prefix", "k,d")
    assert r.code == 0 and "7 utterances" in r.out, r.err
    assert cli("data", "validate", tmp_path / "c").code == 0
    assert_user_error(cli("data", "combine", tmp_path / "c2", data, data, "--prefix", "x"), "2 source dirs")


def test_segments_dir_validates(cli, tmp_path):
    sf.write(tmp_path / "rec.wav", np.zeros(16000, dtype=np.float32), 16000)
    data = tmp_path / "seg"
    data.mkdir()
    (data / "wav.scp").write_text(f"rec1 {tmp_path / 'rec.wav'}\n")
    (data / "segments").write_text("rec1_a rec1 0.00 0.40\nrec1_b rec1 0.40 0.95\n")
    (data / "text").write_text("rec1_a one\nrec1_b two\n")
    (data / "utt2spk").write_text("rec1_a rec1\nrec1_b rec1\n")
    (data / "spk2utt").write_text("rec1 rec1_a rec1_b\n")
    assert cli("data", "validate", data).code == 0
    assert "duration: 0.9 s total" in cli("data", "info", data).out


def test_help_shows_defaults_and_examples(cli):
    for command in ("validate", "fix", "info", "subset", "split", "combine"):
        r = cli("data", command, "--help")
        assert r.code == 0 and "Example: skiptool data " + command in " ".join(r.out.split()), command
    assert "[default: speaker]" in cli("data", "split", "--help").out
