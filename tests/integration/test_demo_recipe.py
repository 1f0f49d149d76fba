"""`make demo`'s recipe, end to end: prep -> feats -> Griffin-Lim -> recognition and scoring."""

import re

import pytest

from tests.conftest import copy_recipe, run_recipe


def _check_run(recipe, corpus):
    results = (recipe / "exp" / corpus / "RESULTS.md").read_text()
    rows = [l for l in results.splitlines() if l.startswith("|") and "skiptool score" in l]
    assert len(rows) == 2, results  # original speech and Griffin-Lim speech
    wav_scp = recipe / "exp" / corpus / "griffinlim" / "wav.scp"
    assert len(wav_scp.read_text().splitlines()) == 4
    for marker in ("data", "dump", "exp"):
        assert (recipe / marker).is_dir()


@pytest.mark.slow
def test_demo_on_espeak_digits(tmp_path):
    recipe = copy_recipe("demo", tmp_path)
    r = run_recipe(recipe, "--corpus", "espeak", "--num-utts", "4", "--n-iter", "8")
    assert r.returncode == 0, r.stdout + r.stderr
    _check_run(recipe, "espeak")
    # a rerun from stage 6 reuses everything before it
    r = run_recipe(recipe, "--corpus", "espeak", "--num-utts", "4", "--stage", "6")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.slow
def test_demo_on_fsdd(tmp_path, fsdd_dir):
    recipe = copy_recipe("demo", tmp_path)
    r = run_recipe(recipe, "--corpus", "fsdd", "--num-utts", "4", "--n-iter", "8", env={"FSDD": str(fsdd_dir)})
    assert r.returncode == 0, r.stdout + r.stderr
    _check_run(recipe, "fsdd")


def test_demo_rejects_unknown_option(tmp_path):
    recipe = copy_recipe("demo", tmp_path)
    r = run_recipe(recipe, "--no-such-option", "1")
    assert r.returncode != 0 and "unknown option --no-such-option" in r.stderr
    r = run_recipe(recipe, "--help")
    assert r.returncode == 0 and re.search(r"--stage N\s+first stage", r.stdout)
