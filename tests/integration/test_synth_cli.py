"""MIB through the CLI: a tiny `skiptool train` (alignment PNGs in exp/images), `skiptool decode`
into `skiptool vocode` and `skiptool score`, and `skiptool synth` on every direction and every
bad input (one clear line, non-zero exit, no traceback)."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import soundfile as sf
import yaml
from PIL import Image

from skiptool.data.datadir import read_table
from tests.conftest import assert_user_error, run_cli
from tests.fixtures.mib_dirs import SIDE, write_mib_config, write_mib_corpora


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("mib_cli")
    corpora = write_mib_corpora(root, images=3, captions=2, utterances=3)
    config = write_mib_config(root / "mib.yaml", max_epochs=2)
    exp = root / "exp" / "mib"
    r = run_cli("--quiet", "train", "--config", config, "--data", f"image={corpora['image']}",
                "--data", f"speech={corpora['speech']}", "--data", f"linear={corpora['linear']}",
                "--exp-dir", exp, "--device", "cpu")
    assert r.code == 0, r.err
    return {**corpora, "exp": exp, "root": root}


def synth(*args) -> object:
    return run_cli("synth", *map(str, args))


# ------------------------------------------------------------------------------ train, decode


def test_train_writes_alignments_and_records_features(trained):
    images = trained["exp"] / "images"
    assert (images / "alignment_epoch001.png").read_bytes()[:4] == b"\x89PNG"
    assert (images / "alignment_epoch002.png").is_file() and (images / "loss.png").is_file()
    conf = yaml.safe_load((trained["exp"] / "config.yaml").read_text())["model_conf"]
    assert conf["speech_features"]["sample_rate"] == 8000 and conf["image_features"]["height"] == SIDE


def test_decode_text2speech_then_vocode(trained, tmp_path):
    out = tmp_path / "t2s"
    r = run_cli("--quiet", "decode", trained["exp"], out, "--task", "text2speech", "--data", f"text={trained['text']}")
    assert r.code == 0, r.err
    r = run_cli("--quiet", "vocode", out / "linear" / "feats.scp", out / "wav", "--type", "linear", "--n-iter", "4")
    assert r.code == 0, r.err
    wavs = read_table(out / "wav" / "wav.scp")
    assert sorted(wavs) == sorted(read_table(trained["text"] / "text"))
    assert sf.info(next(iter(wavs.values()))).samplerate == 8000


def test_decode_image2text_then_bleu(trained, tmp_path):
    out = tmp_path / "i2t"
    r = run_cli("--quiet", "decode", trained["exp"], out, "--task", "image2text", "--data", f"image={trained['image']}")
    assert r.code == 0, r.err
    r = run_cli("score", "--metric", "bleu", "--ref", out / "ref_captions", "--hyp", out / "text")
    assert r.code == 0 and "BLEU" in r.out, r.err


def test_decode_text_dir_needs_a_text_file(trained, tmp_path):
    assert_user_error(run_cli("decode", trained["exp"], tmp_path / "o", "--task", "text2image",
                              "--data", f"text={tmp_path}"), "no text file")


# ---------------------------------------------------------------------------- synth, happy


def test_image_to_speech(trained, tmp_path):
    png = trained["png"] / "img00.png"
    r = synth("--from", "image", "--to", "speech", png, "-o", tmp_path / "out.wav", "--model", trained["exp"])
    assert r.code == 0, r.err
    info = sf.info(tmp_path / "out.wav")
    assert info.samplerate == 8000 and info.frames > 0
    again = synth("--from", "image", "--to", "speech", png, "-o", tmp_path / "out.wav", "--model", trained["exp"])
    assert_user_error(again, "already exists", "--overwrite")
    r = synth("--from", "image", "--to", "speech", png, "-o", tmp_path / "out.wav", "--model", trained["exp"],
              "--overwrite")
    assert r.code == 0, r.err


def test_every_direction(trained, tmp_path):
    exp, png, wav = trained["exp"], trained["png"] / "img01.png", trained["wav"] / "utt00.wav"
    r = synth("--from", "image", "--to", "text", png, "--model", exp)
    assert r.code == 0 and len(r.out.splitlines()) == 1, r.err
    r = synth("--from", "speech", "--to", "text", wav, "--model", exp, "-o", tmp_path / "s2t.txt")
    assert r.code == 0 and (tmp_path / "s2t.txt").read_text() == r.out
    r = synth("--from", "speech", "--to", "image", wav, "--model", exp, "-o", tmp_path / "s2i.png")
    assert r.code == 0 and Image.open(tmp_path / "s2i.png").size == (SIDE, SIDE)
    r = synth("--from", "text", "--to", "image", "a", "red", "circle", "--model", exp, "-o", tmp_path / "t2i.png")
    assert r.code == 0 and Image.open(tmp_path / "t2i.png").mode == "RGB"
    r = synth("--from", "text", "--to", "speech", "a red circle.", "--model", exp, "-o", tmp_path / "t2s.wav")
    assert r.code == 0 and sf.info(tmp_path / "t2s.wav").frames > 0


def test_batches_from_a_directory_and_a_text_file(trained, tmp_path):
    r = synth("--from", "image", "--to", "speech", trained["png"], "-o", tmp_path / "wavs", "--model", trained["exp"])
    assert r.code == 0, r.err
    assert sorted(p.name for p in (tmp_path / "wavs").iterdir()) == ["img00.wav", "img01.wav", "img02.wav"]
    lines = tmp_path / "lines.txt"
    lines.write_text("a red circle\n\ntwo blue squares\n")
    r = synth("--from", "text", "--to", "image", lines, "-o", tmp_path / "pngs", "--model", trained["exp"])
    assert r.code == 0 and sorted(p.name for p in (tmp_path / "pngs").iterdir()) == ["line0001.png", "line0002.png"]
    r = synth("--from", "image", "--to", "text", trained["png"], "--model", trained["exp"])
    assert r.code == 0 and [l.split()[0] for l in r.out.splitlines()] == ["img00", "img01", "img02"]
    r = synth("--from", "text", "--to", "speech", trained["text"], "-o", tmp_path / "kaldi", "--model", trained["exp"])
    assert r.code == 0, r.err
    assert sorted(p.stem for p in (tmp_path / "kaldi").iterdir()) == sorted(read_table(trained["text"] / "text"))


def test_rgba_and_grayscale_images_are_converted(trained, tmp_path):
    for mode in ("RGBA", "L", "LA", "P"):
        path = tmp_path / f"{mode}.png"
        Image.fromarray((np.random.default_rng(0).random((40, 30, 4)) * 255).astype(np.uint8), "RGBA").convert(mode).save(path)
        r = synth("--from", "image", "--to", "text", path, "--model", trained["exp"])
        assert r.code == 0, (mode, r.err)


def test_default_model_is_the_recipes_full_mib(trained, tmp_path, monkeypatch, caplog):
    import skiptool.decode.synth as synth_lib

    monkeypatch.setattr(synth_lib, "REPO", tmp_path)
    monkeypatch.chdir(tmp_path)
    r = synth("--from", "image", "--to", "text", trained["png"] / "img00.png")
    assert_user_error(r, "no trained model found", "egs/coco_emt4/run.sh", "--model")
    setup = tmp_path / "egs" / "coco_emt4" / "exp" / "shapes_espeak"
    shutil.copytree(trained["exp"], setup / "mib")
    shutil.copytree(trained["exp"], setup / "mib_no_memory")  # an ablation, trained later
    with caplog.at_level(logging.INFO):
        r = synth("--from", "image", "--to", "text", trained["png"] / "img00.png")
    assert r.code == 0, r.err
    assert any(rec.getMessage().endswith("shapes_espeak/mib") for rec in caplog.records)


# ------------------------------------------------------------------------------ synth, bad input


def test_corrupt_and_non_image_files(trained, tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    assert_user_error(synth("--from", "image", "--to", "speech", corrupt, "-o", tmp_path / "o.wav",
                            "--model", trained["exp"]), "corrupt.png", "cannot read image")
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    assert_user_error(synth("--from", "image", "--to", "text", text, "--model", trained["exp"]),
                      "notes.txt", "cannot read image")
    assert_user_error(synth("--from", "speech", "--to", "text", text, "--model", trained["exp"]),
                      "notes.txt", "cannot read audio")
    assert_user_error(synth("--from", "image", "--to", "text", tmp_path / "missing.png", "--model", trained["exp"]),
                      "missing.png", "no such file")
    assert not (tmp_path / "o.wav").exists()


def test_empty_text(trained, tmp_path):
    for blank in ("  ", ""):  # "" is also the current dir as a path: still empty text
        assert_user_error(synth("--from", "text", "--to", "image", blank, "-o", tmp_path / "o.png",
                                "--model", trained["exp"]), "empty text")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert_user_error(synth("--from", "text", "--to", "image", empty, "-o", tmp_path / "o.png",
                            "--model", trained["exp"]), "empty text")
    assert_user_error(synth("--from", "text", "--to", "image", "\u2603", "-o", tmp_path / "o.png",
                            "--model", trained["exp"]), "no character of the model's symbol table")


def test_characters_outside_the_table_are_dropped_with_a_warning(trained, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        r = synth("--from", "text", "--to", "image", "a red circle @ #", "-o", tmp_path / "o.png",
                  "--model", trained["exp"])
    assert r.code == 0, r.err
    warning = [rec.getMessage() for rec in caplog.records if "outside" in rec.getMessage()]
    assert warning and "'@'" in warning[0] and "'#'" in warning[0]


def test_models_and_directions_that_cannot_synthesise(trained, tmp_path):
    png = trained["png"] / "img00.png"
    pvae = tmp_path / "pvae"
    pvae.mkdir()
    (pvae / "config.yaml").write_text("model: pvae\n")
    assert_user_error(synth("--from", "image", "--to", "speech", png, "-o", tmp_path / "o.wav", "--model", pvae),
                      "'pvae' model", "MIB", "piecewise, cyclegan")
    assert_user_error(synth("--from", "image", "--to", "image", png, "-o", tmp_path / "o.png",
                            "--model", trained["exp"]), "--from image --to image", "not a direction")
    assert_user_error(synth("--from", "video", "--to", "text", png, "--model", trained["exp"]), "--from video")
    assert_user_error(synth("--from", "image", "--to", "text", png, "--model", tmp_path), "not an exp dir")
    assert_user_error(synth("--from", "image", "--to", "speech", png, "--model", trained["exp"]), "-o: missing")
    assert_user_error(synth("--from", "image", "--to", "speech", trained["png"], "-o", png, "--model", trained["exp"]),
                      "need a directory")


@pytest.mark.slow  # 4 processes (CLI, torchrun agent, 2 workers)
def test_train_on_two_processes(trained, tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    exp = tmp_path / "exp"
    run = subprocess.run([sys.executable, "-m", "skiptool.bin.main", "--quiet", "train",
                          "--config", str(trained["root"] / "mib.yaml"), "--data", f"image={trained['image']}",
                          "--data", f"speech={trained['speech']}", "--data", f"linear={trained['linear']}",
                          "--dev-data", f"image={trained['image']}", "--dev-data", f"speech={trained['speech']}",
                          "--dev-data", f"linear={trained['linear']}", "--exp-dir", str(exp), "--device", "cpu",
                          "--nproc", "2", "train.max_epochs=1"],
                         env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)},
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (exp / "images" / "alignment_epoch001.png").is_file()
    assert len([l for l in (exp / "train.log").read_text().splitlines() if " epoch 1/1: " in l]) == 1
