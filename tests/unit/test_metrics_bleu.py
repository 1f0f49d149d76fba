"""BLEU-1..4: hand-computed cases and agreement with sacrebleu's own corpus_bleu."""

import math

import pytest
import sacrebleu

from skiptool.metrics.bleu import bleu
from skiptool.metrics.inputs import read_multi_text
from skiptool.utils.errors import SkiptoolError


def test_bleu1_by_hand_with_brevity_penalty():
    # unigram precision 2/2; hypothesis 2 words vs reference 3: BP = exp(1 - 3/2)
    result = bleu({"u": ["the cat sat"]}, {"u": "the cat"}, max_order=1)
    assert result.scores[0] == pytest.approx(100 * math.exp(1 - 3 / 2), abs=1e-6)
    assert result.brevity_penalty == pytest.approx(math.exp(-0.5), abs=1e-6)


def test_identical_hypotheses_score_100_at_every_order():
    refs = {"a": ["a small dog runs on the grass"], "b": ["two people ride horses on a beach"]}
    result = bleu(refs, {k: v[0] for k, v in refs.items()})
    assert result.scores == pytest.approx((100, 100, 100, 100))


def test_matches_sacrebleu_with_several_and_variable_references():
    refs = {"1": ["the cat is on the mat", "there is a cat on the mat"],
            "2": ["a dog runs in the park"],
            "3": ["children play football outside", "kids are playing soccer", "boys kick a ball"]}
    hyps = {"1": "the cat sat on the mat", "2": "a dog is running in a park", "3": "kids play soccer outside"}
    result = bleu(refs, hyps)
    keys = list(refs)
    streams = [[refs[k][j] if j < len(refs[k]) else None for k in keys] for j in range(3)]
    for order in range(1, 5):
        expected = sacrebleu.BLEU(max_ngram_order=order).corpus_score([hyps[k] for k in keys], streams).score
        assert result.scores[order - 1] == pytest.approx(expected)
    assert result.refs_per_key == (1, 3) and "nrefs:var" in result.signature


def test_more_references_can_only_help_unigram_precision():
    one = bleu({"u": ["a b x y"]}, {"u": "a b c d"}, max_order=1)
    two = bleu({"u": ["a b x y", "z z c d"]}, {"u": "a b c d"}, max_order=1)
    assert one.scores[0] == pytest.approx(50.0) and two.scores[0] == pytest.approx(100.0)


def test_missing_hypothesis_is_empty_and_stray_key_is_an_error():
    result = bleu({"a": ["x y"], "b": ["z"]}, {"a": "x y"})
    assert result.missing == ("b",) and result.hyp_length == 2
    with pytest.raises(SkiptoolError, match="'?c'?"):
        bleu({"a": ["x"]}, {"c": "x"})


def test_repeated_keys_and_several_files_are_several_references(tmp_path):
    (tmp_path / "r1").write_text("img1 a dog\nimg1 the dog\nimg2 a cat\n")
    (tmp_path / "r2").write_text("img2 one cat\n")
    assert read_multi_text([tmp_path / "r1", tmp_path / "r2"]) == {
        "img1": ["a dog", "the dog"], "img2": ["a cat", "one cat"]}
