"""`skiptool decode` over the task registry, and `skiptool score --metric accuracy --classifier`:
a tiny speech classifier is trained, then classifies a feature dir through both commands; its
hidden layer then embeds the utterances for `skiptool score --metric speaker-id`."""

from __future__ import annotations

from pathlib import Path

import pytest

from skiptool.data.datadir import read_table
from tests.conftest import assert_user_error
from tests.fixtures.featdirs import TINY_SPEECH_CLASSIFIER, write_config, write_image_dir, write_speech_dir


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    from tests.conftest import run_cli

    root = tmp_path_factory.mktemp("decode")
    train = write_speech_dir(root / "train", per_class=6, noise=0.2)
    test = write_speech_dir(root / "test", per_class=2, seed=3, noise=0.2)
    config = write_config(root / "speech.yaml", "speech_classifier", TINY_SPEECH_CLASSIFIER, max_epochs=8)
    exp = root / "exp"
    r = run_cli("--quiet", "train", "--config", config, "--data", f"speech={train}", "--exp-dir", exp,
                "--device", "cpu")
    assert r.code == 0, r.err
    return {"exp": exp, "test": test, "image": write_image_dir(root / "image", per_class=2)}


def test_classify_writes_predictions_and_a_rerun_keeps_them(cli, trained, tmp_path):
    out = tmp_path / "classify"
    r = cli("--quiet", "decode", trained["exp"], out, "--task", "classify", "--data", f"speech={trained['test']}")
    assert r.code == 0, r.err
    predicted = read_table(out / "utt2label")
    assert set(predicted) == set(read_table(trained["test"] / "utt2label"))
    assert (out / "ref_utt2label").is_file() and (out / ".decode.done").is_file()
    before = (out / "utt2label").stat().st_mtime_ns
    r = cli("--quiet", "decode", trained["exp"], out, "--task", "classify", "--data", f"speech={trained['test']}")
    assert r.code == 0 and "already decoded" in r.out
    assert (out / "utt2label").stat().st_mtime_ns == before


def test_score_accuracy_with_a_classifier_equals_scoring_its_predictions(cli, trained, tmp_path):
    out = tmp_path / "classify"
    assert cli("--quiet", "decode", trained["exp"], out, "--task", "classify",
               "--data", f"speech={trained['test']}").code == 0
    ref = trained["test"] / "utt2label"
    by_file = cli("score", "--metric", "accuracy", "--ref", ref, "--hyp", out / "utt2label")
    results = tmp_path / "RESULTS.md"
    direct = cli("score", "--metric", "accuracy", "--ref", ref, "--classifier", trained["exp"],
                 "--feats", trained["test"], "--system", "tiny", "--results", results)
    assert by_file.code == 0 and direct.code == 0, direct.err
    accuracy = [line.split()[-1] for line in by_file.out.splitlines() if line.startswith("accuracy")]
    assert accuracy and accuracy[0] in direct.out
    row = results.read_text().splitlines()[-1]
    assert row.startswith("| tiny | accuracy") and "--classifier" in row


def test_score_speaker_id_enrols_real_speech_and_leaves_one_out(cli, trained, tmp_path):
    test = trained["test"]  # 2 utterances of 3 classes by each of spk00, spk01
    results = tmp_path / "RESULTS.md"
    r = cli("score", "--metric", "speaker-id", "--ref", test / "utt2spk", "--classifier", trained["exp"],
            "--feats", test, "--enroll", test, "--system", "real", "--results", results)
    assert r.code == 0, r.err
    assert "chance: 50.00% (2 enrolled speakers)" in r.out
    row = results.read_text().splitlines()[-1]
    assert row.startswith("| real | speaker-id | 6 | 2 |") and "--enroll" in row
    assert_user_error(cli("score", "--metric", "speaker-id", "--ref", test / "utt2spk", "--feats", test,
                          "--enroll", test), "--classifier EXP_DIR")
    no_speakers = tmp_path / "nospk"
    no_speakers.mkdir()
    for name in ("feats.scp", "conf.yaml"):
        (no_speakers / name).write_text((test / name).read_text())
    assert_user_error(cli("score", "--metric", "speaker-id", "--ref", test / "utt2spk", "--classifier", trained["exp"],
                          "--feats", test, "--enroll", no_speakers), "nospk/utt2spk: not found")
    assert_user_error(cli("score", "--metric", "accuracy", "--ref", test / "utt2label", "--hyp", test / "utt2label",
                          "--enroll", test), "--enroll")


def test_decode_user_errors(cli, trained, tmp_path):
    exp, test = trained["exp"], trained["test"]
    assert_user_error(cli("decode", exp, tmp_path / "o", "--task", "speech2image", "--data", f"speech={test}"),
                      "--task speech2image", "classify")
    assert_user_error(cli("decode", exp, tmp_path / "o", "--task", "classify"), "--data speech=DIR")
    assert_user_error(cli("decode", exp, tmp_path / "o", "--task", "classify", "--data", f"speech={tmp_path}"),
                      "no feats.scp")
    assert_user_error(cli("decode", tmp_path, tmp_path / "o", "--task", "classify"), "config.yaml")
    assert_user_error(cli("decode", exp, tmp_path / "o", "--task", "classify", "--data", f"speech={trained['image']}"),
                      "image")
    assert_user_error(cli("decode", exp, tmp_path / "o", "--task", "classify", "--data", f"speech={test}",
                          "--num-frames", "40"), "--num-frames is for --task image2speech of a pvae model")
    assert_user_error(cli("decode", exp, tmp_path / "o", "--task", "classify", "--data", f"speech={test}",
                          "--settle-threshold", "0.1"), "--settle-threshold is for --num-frames settled")
    assert_user_error(cli("decode", exp, tmp_path / "o", "--task", "classify", "--data", f"speech={test}",
                          "--draws", "3"), "--draws is for --task speech2image or image2speech of a pvae model")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert_user_error(cli("decode", exp, mine, "--task", "classify", "--data", f"speech={test}"), "--overwrite")
    assert (mine / "notes.txt").read_text() == "keep me"
