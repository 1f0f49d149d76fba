"""egs/coco_emt4/run.sh: options, corpus-variable checks, and all six stages on a handful of
built-in images and utterances (tiny models, one epoch), then a resumed rerun."""

from __future__ import annotations

import re

import pytest

from skiptool.utils.fileio import is_done
from tests.conftest import copy_recipe, run_recipe

# MIB at toy sizes (every layer present), 16x16 images: the recipe's plumbing, not its quality. The
# tts model takes the text encoder and speech decoder sizes; the others are MIB's only (mib:K=V).
MIB_ONLY = ("image_decoder_channels=[8,6,4,4]", "speech_encoder_channels=[2,3]", "speech_encoder_gru_dim=8",
            "memory_slots=6", "memory_heads=2", "classifier_hidden_dim=8")
TINY_MIB = " ".join([
    "model_conf.image_encoder_channels=[4,8]",
    "model_conf.embed_dim=16", "model_conf.text_embed_dim=8", "model_conf.text_prenet_sizes=[12,8]",
    "model_conf.encoder_cbhg_bank_size=3", "model_conf.encoder_cbhg_channels=8", "model_conf.encoder_cbhg_highways=1",
    "model_conf.latent_dim=16",
    "model_conf.text_decoder_embed_dim=8", "model_conf.text_decoder_dim=8", "model_conf.speech_decoder_slots=5",
    "model_conf.speech_decoder_slot_dim=8", "model_conf.decoder_prenet_sizes=[8,8]", "model_conf.attention_rnn_dim=8",
    "model_conf.attention_dim=8", "model_conf.location_filters=2", "model_conf.location_kernel=3",
    "model_conf.decoder_rnn_dim=8", "model_conf.postnet_cbhg_bank_size=2", "model_conf.postnet_cbhg_channels=4",
    "model_conf.postnet_projection_dim=8", "model_conf.postnet_highways=1", "model_conf.max_decoder_steps=20",
    "model_conf.max_text_length=30", *(f"mib:model_conf.{arg}" for arg in MIB_ONLY)])
TINY = ("--num-images", "3", "--num-test-images", "2", "--image-size", "16", "--num-sentences", "6",
        "--num-test-sentences", "2", "--nj", "1", "--epochs", "1", "--n-iter", "2", "--train-args", TINY_MIB,
        "--asr-args", "model_conf.rnn_dim=8 model_conf.rnn_layers=1 model_conf.conv_channels=2",
        "--models", "mib tts no_such_model")


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    return copy_recipe("coco_emt4", tmp_path_factory.mktemp("recipe"))


def test_usage_lists_every_option(recipe):
    r = run_recipe(recipe, "--help")
    assert r.returncode == 0
    declared = (recipe / "run.sh").read_text().split("help_message=")[0]  # the option block
    options = re.findall(r"^(\w+)=", declared, flags=re.M)
    assert len(options) >= 20
    for option in options:
        assert f"--{option.replace('_', '-')}" in r.stdout, option


@pytest.mark.parametrize("var, layout, expected", [
    ("COCO", "missing", "captions_"), ("LJSPEECH", "wrong", "metadata.csv"), ("EMT4", "missing", "train.tsv")])
def test_a_corpus_variable_in_the_wrong_place_stops_stage_1(recipe, tmp_path, var, layout, expected):
    path = tmp_path / var.lower()
    if layout == "wrong":
        (path / "audio").mkdir(parents=True)
    r = run_recipe(recipe, "--stop-stage", "1", env={var: str(path)})
    assert r.returncode != 0
    errors = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"{var}={path}"), r.stderr
    assert expected in errors[0]
    assert not (recipe / "data").exists()  # checked before any work


@pytest.mark.slow  # ~60 skiptool processes (each imports torch): a minute or two on 2 cores
def test_all_stages_on_the_builtin_corpora_then_resume(recipe):
    r = run_recipe(recipe, *TINY, timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "built-in corpora" in r.stdout
    assert "skipping model 'no_such_model'" in r.stderr
    data, exp = recipe / "data" / "shapes_espeak", recipe / "exp" / "shapes_espeak"
    assert "shared" in (data / "vocabulary_overlap.txt").read_text()
    assert (data / "token_list" / "char" / "tokens.txt").is_file()
    for model in ("ctc_asr", "mib", "tts"):
        assert (exp / model / "checkpoints" / "latest.pt").is_file(), model
    decoded = exp / "mib" / "decode_test"
    for task in ("image2text", "speech2text", "text2speech", "image2speech", "text2image", "embed"):
        assert is_done(decoded / task, "decode"), task
    for task in ("image2speech", "text2speech"):
        assert (decoded / task / "wav" / "wav.scp").is_file(), task
    assert (exp / "tts" / "decode_test" / "text2speech" / "wav" / "wav.scp").is_file()
    assert not (exp / "tts" / "decode_test" / "image2speech").exists()

    results = (exp / "RESULTS.md").read_text()
    sections = re.findall(r"^## (.*)$", results, flags=re.M)
    assert sections[0].startswith("Recognisers on real held-out speech")  # the recogniser comes first
    for row in ("| ctc_asr, real test speech | WER", "| pocketsphinx, real test speech | WER",
                "| mib image->speech | BLEU", "| mib image->speech (first caption) | WER", "| mib image->text | BLEU",
                "| mib speech->text | WER", "| mib text->speech | WER", "| mib image<->caption | recall@k",
                "| mib speech<->transcript | recall@k", "| tts text->speech | WER"):
        assert row in results, row
    rows = [line for line in results.splitlines() if line.startswith("| ") and "---" not in line
            and not line.startswith("| system")]
    assert all("`skiptool score " in line for line in rows)  # the command beside each row

    checkpoint = exp / "mib" / "checkpoints" / "latest.pt"
    stamp = checkpoint.stat().st_mtime_ns
    again = run_recipe(recipe, "--stage", "3", "--stop-stage", "5", *TINY)
    assert again.returncode == 0, again.stderr[-4000:]
    for done in ("nothing to do", "already decoded", "already vocoded"):
        assert done in again.stdout + again.stderr, done
    assert checkpoint.stat().st_mtime_ns == stamp

    averaged = run_recipe(recipe, "--stage", "4", *TINY, "--average-nbest", "1")
    assert averaged.returncode == 0, averaged.stderr[-4000:]
    assert "mean of epochs 1 (the 1 best by loss)" in averaged.stdout
    assert (exp / "mib" / "decode_test_ave1best" / "image2speech" / "wav" / "wav.scp").is_file()
    assert "| mib image->speech | BLEU" in (exp / "RESULTS_ave1best.md").read_text()
