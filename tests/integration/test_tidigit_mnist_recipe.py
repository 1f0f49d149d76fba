"""egs/tidigit_mnist/run.sh: corpus-variable checks, all six stages on a few dozen built-in
utterances (espeak-ng digits + scikit-learn digits, one epoch per model), then a resumed rerun, and
a run on a tiny FSDD whose test speakers are training speakers (the speaker-classifier scores)."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.conftest import copy_recipe, run_recipe
from tests.fixtures.corpora import FSDD_SPEAKERS, make_fsdd

# Two models keep the run short: one cross-modal (every decode task), one single-modality.
TINY = ("--espeak-speakers", "4", "--espeak-takes", "1", "--epochs", "1", "--n-iter", "4",
        "--models", "pvae vae_sp")


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    return copy_recipe("tidigit_mnist", tmp_path_factory.mktemp("recipe"))


def test_usage_lists_every_option(recipe):
    r = run_recipe(recipe, "--help")
    assert r.returncode == 0
    declared = (recipe / "run.sh").read_text().split("help_message=")[0]  # the option block
    options = re.findall(r"^(\w+)=", declared, flags=re.M)
    assert len(options) >= 15
    for option in options:
        assert f"--{option.replace('_', '-')}" in r.stdout, option


@pytest.mark.parametrize("layout", ["missing", "wrong"])
def test_a_corpus_variable_in_the_wrong_place_stops_stage_1(recipe, tmp_path, layout):
    path = tmp_path / "fsdd"
    if layout == "wrong":
        (path / "audio").mkdir(parents=True)
    r = run_recipe(recipe, "--stop-stage", "1", env={"FSDD": str(path)})
    assert r.returncode != 0
    errors = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"FSDD={path}"), r.stderr
    assert "recordings/" in errors[0]


def test_all_stages_on_the_builtin_corpus_then_resume(recipe):
    r = run_recipe(recipe, *TINY, timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "built-in corpus" in r.stdout
    exp = recipe / "exp" / "espeak_sklearn"
    assert (exp / "speaker_classifier" / "checkpoints" / "best.pt").is_file()  # 3 training voices
    assert "one test speaker, unseen in training: no score of the generated voices" in r.stdout
    results = (exp / "RESULTS.md").read_text()
    for model in ("pvae", "vae_sp"):
        assert f"| {model} " in results, model
        assert (exp / model / "checkpoints" / "latest.pt").exists()
    assert "| pvae speech_z_s | purity" in results and "| pvae image_z_i | purity" in results
    assert "| pvae speech->image | accuracy" in results and "| pvae image->speech | WER" in results
    assert "| pvae image->speech, mean length | accuracy" in results
    assert "| pvae image->speech, settled length | accuracy" in results
    assert "| pvae image->speech says the reference's digit (low is right) | accuracy" in results
    assert list((exp / "pvae" / "decode_test" / "grids").glob("*.png"))
    assert (exp / "pvae" / "decode_test" / "image2speech" / "griffinlim" / "wav.scp").is_file()
    assert (exp / "pvae" / "decode_test" / "embed" / "speech_z_s_tsne.png").is_file()

    again = run_recipe(recipe, "--stage", "3", *TINY)  # stages 3-6 again: finished steps are skipped
    assert again.returncode == 0, again.stderr[-4000:]
    assert "already decoded" in again.stdout and "already vocoded" in again.stdout
    assert "| pvae speech_z_s | purity" in (exp / "RESULTS.md").read_text()  # stage 6 remade it

    # stages 4-6 again for the averaged checkpoint, each test item generated in two reference styles
    averaged = run_recipe(recipe, "--stage", "4", *TINY, "--models", "pvae", "--average-nbest", "1",
                          "--style-draws", "2")
    assert averaged.returncode == 0, averaged.stderr[-4000:]
    assert "mean of epochs 1 (the 1 best by loss)" in averaged.stdout
    decoded = exp / "pvae" / "decode_test_ave1best_2draws"
    assert (decoded / "image2speech" / "griffinlim" / "wav.scp").is_file()
    test_utts = len((recipe / "dump" / "espeak_sklearn" / "fbank" / "test" / "utt2label").read_text().splitlines())
    row = re.search(r"^\| pvae speech->image \| accuracy \| (\d+) \|", (exp / "RESULTS_ave1best_2draws.md").read_text(),
                    flags=re.M)
    assert row and int(row.group(1)) == 2 * test_utts


def test_fsdd_run_scores_the_voice_of_generated_speech(tmp_path_factory):
    recipe = copy_recipe("tidigit_mnist", tmp_path_factory.mktemp("fsdd_recipe"))
    fsdd = make_fsdd(tmp_path_factory.mktemp("corpus"))
    r = run_recipe(recipe, "--image-corpus", "sklearn", "--epochs", "1", "--n-iter", "4", "--models", "pvae",
                   env={"FSDD": str(fsdd)}, timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    exp = recipe / "exp" / "fsdd_sklearn"
    classes = yaml.safe_load((exp / "speaker_classifier" / "config.yaml").read_text())["model_conf"]["class_names"]
    assert classes == list(FSDD_SPEAKERS)
    results = (exp / "RESULTS.md").read_text()
    assert re.search(r"^\| speaker classifier, real test speech \| accuracy \| 30 \|", results, flags=re.M)
    test_images = len((recipe / "dump" / "fsdd_sklearn" / "image" / "test" / "utt2label").read_text().splitlines())
    row = re.search(r"^\| pvae image->speech, reference's speaker \| accuracy \| (\d+) \|", results, flags=re.M)
    assert row and int(row.group(1)) == test_images
    assert re.search(r"^\| speaker embeddings, real test speech \(leave-one-out\) \| speaker-id \| 30 \| 2 \|",
                     results, flags=re.M)
    row = re.search(r"^\| pvae image->speech, reference's speaker \(embeddings\) \| speaker-id \| (\d+) \| 2 \|",
                    results, flags=re.M)
    assert row and int(row.group(1)) == test_images
