"""`skiptool prep ...` through the CLI, followed by `data validate` as the recipes run them."""

from __future__ import annotations

import filecmp

import pytest

from tests.conftest import assert_user_error
from tests.unit.test_corpora_fsdd import make_fsdd


def test_prep_fsdd_fixture_then_validate(cli, tmp_path):
    corpus = make_fsdd(tmp_path)
    r = cli("prep", "fsdd", corpus, tmp_path / "data")
    assert r.code == 0, r.err
    assert f"wrote {tmp_path / 'data' / 'train'}: 12 utterances, 2 speakers" in r.out
    assert f"wrote {tmp_path / 'data' / 'test'}: 30 utterances, 2 speakers" in r.out
    assert cli("data", "validate", tmp_path / "data" / "test").code == 0
    assert_user_error(cli("prep", "fsdd", corpus, tmp_path / "data"), "already exists", "--overwrite")
    r = cli("prep", "fsdd", corpus, tmp_path / "data", "--split", "speaker", "--test-speaker", "jackson", "--overwrite")
    assert r.code == 0 and "test: 21 utterances, 1 speaker" in r.out, r.err


def test_prep_fsdd_bad_corpus(cli, tmp_path):
    assert_user_error(cli("prep", "fsdd", tmp_path / "missing", tmp_path / "out"), str(tmp_path / "missing"),
                      "recordings/{digit}_{speaker}_{index}.wav")
    (tmp_path / "empty").mkdir()
    assert_user_error(cli("prep", "fsdd", tmp_path / "empty", tmp_path / "out"), "no recordings/ folder")
    r = cli("prep", "fsdd", tmp_path / "empty", tmp_path / "out", "--split", "random")
    assert r.code != 0 and "Traceback" not in r.err and "random" in r.err


def test_prep_real_fsdd(cli, tmp_path, fsdd_dir):
    r = cli("prep", "fsdd", fsdd_dir, tmp_path / "fsdd")
    assert r.code == 0, r.err
    assert "train: 2700 utterances, 6 speakers" in r.out and "test: 300 utterances, 6 speakers" in r.out
    assert cli("data", "validate", tmp_path / "fsdd" / "test").code == 0


def test_prep_espeak_digits_as_the_demo_runs_it(cli, tmp_path):
    out = tmp_path / "espeak"
    r = cli("prep", "espeak-digits", out, "--num-speakers", "4", "--takes", "2")
    assert r.code == 0, r.err
    assert "train: 60 utterances, 3 speakers" in r.out and "test: 20 utterances, 1 speaker" in r.out
    for part in ("train", "test"):
        assert cli("data", "validate", out / part).code == 0
    r = cli("data", "subset", out / "test", tmp_path / "test4", "--random", "4", "--seed", "0")
    assert r.code == 0, r.err
    assert_user_error(cli("prep", "espeak-digits", out, "--num-speakers", "4", "--takes", "2"), str(out),
                      "--overwrite")
    # Same seed, same corpus: every wav is byte-identical.
    again = tmp_path / "again"
    assert cli("--quiet", "prep", "espeak-digits", again, "--num-speakers", "4", "--takes", "2").code == 0
    wavs = sorted(p.relative_to(out) for p in (out / "wav").rglob("*.wav"))
    assert len(wavs) == 80
    match, mismatch, errors = filecmp.cmpfiles(out, again, [str(w) for w in wavs], shallow=False)
    assert len(match) == 80 and not mismatch and not errors


def test_prep_espeak_digits_bad_options(cli, tmp_path):
    assert_user_error(cli("prep", "espeak-digits", tmp_path / "x", "--num-speakers", "1"), "--num-speakers 1")
    assert_user_error(cli("prep", "espeak-digits", tmp_path / "x", "--sample-rate", "5"), "--sample-rate 5")
    assert not (tmp_path / "x").exists()


def test_prep_help(cli):
    for command in ("fsdd", "espeak-digits"):
        r = cli("prep", command, "--help")
        assert r.code == 0 and f"Example: skiptool prep {command}" in " ".join(r.out.split())
    assert "[default: 30]" in cli("prep", "espeak-digits", "--help").out


def _tidigits(root):
    from tests.unit.test_corpora_tidigits import make_tidigits

    return make_tidigits(root / "tidigits")


def _audiomnist(root):
    from tests.unit.test_corpora_audiomnist import make_audiomnist

    return make_audiomnist(root / "AudioMNIST")


def _speech_commands(root):
    from tests.unit.test_corpora_speech_commands import make_speech_commands

    return make_speech_commands(root / "speech_commands")


def _mnist(root):
    from tests.unit.test_corpora_mnist import make_mnist

    make_mnist(root / "mnist", n_t10k=60)
    return root / "mnist"


@pytest.mark.parametrize("corpus, make, options", [
    ("tidigits", _tidigits, ["--groups", "man,woman,boy"]),
    ("audiomnist", _audiomnist, []),
    ("speech-commands", _speech_commands, []),
    ("mnist", _mnist, ["--dev-size", "10", "--test-size", "10"]),
    ("sklearn-digits", None, []),
])
def test_prep_other_corpora_then_validate(cli, tmp_path, corpus, make, options):
    """Each registered corpus through its `skiptool prep` command, on a tiny fixture in its real layout."""
    args = [make(tmp_path)] if make else []
    r = cli("prep", corpus, *args, tmp_path / "data", *options)
    assert r.code == 0, r.err
    for part in ("train", "dev", "test"):
        assert f"wrote {tmp_path / 'data' / part}: " in r.out
        assert cli("data", "validate", tmp_path / "data" / part).code == 0, part
    if make:
        assert_user_error(cli("prep", corpus, tmp_path / "missing", tmp_path / "other"), str(tmp_path / "missing"))
