"""WER/CER against hand-counted edits, sclite-style summary and alignment layout."""

import math

import pytest

from skiptool.metrics.wer import cer, error_rate, format_alignment, wer
from skiptool.utils.errors import SkiptoolError


def test_wer_counts_a_known_edit():
    # "a b c d" -> "a x c d e": b->x substituted, e inserted: 2 errors over 4 words
    result = wer({"u1": "a b c d"}, {"u1": "a x c d e"})
    c = result.counts
    assert (c.sentences, c.ref_tokens, c.correct, c.substitutions, c.deletions, c.insertions) == (1, 4, 3, 1, 0, 1)
    assert result.rate == pytest.approx(50.0)
    assert result.kaldi_line() == "%WER 50.00 [ 2 / 4, 1 ins, 0 del, 1 sub ]"
    assert result.summary() == {"metric": "WER", "Snt": "1", "Wrd": "4", "Corr": "75.0", "Sub": "25.0",
                                "Del": "0.0", "Ins": "25.0", "Err": "50.00", "S.Err": "100.0"}


def test_missing_hypothesis_is_all_deletions_and_sentence_errors_count():
    result = wer({"u1": "one two", "u2": "three four five", "u3": "six"}, {"u1": "one two", "u3": "seven"})
    assert result.missing == ("u2",)
    c = result.counts
    assert (c.ref_tokens, c.correct, c.substitutions, c.deletions, c.insertions) == (6, 2, 1, 3, 0)
    assert c.sentence_errors == 2 and c.sentence_error_rate == pytest.approx(200 / 3)
    assert result.rate == pytest.approx(4 / 6 * 100)


def test_hyp_key_not_in_ref_is_an_error_naming_it():
    with pytest.raises(SkiptoolError, match="stray"):
        wer({"u1": "a"}, {"u1": "a", "stray": "b"})


def test_cer_counts_characters_including_spaces():
    # "abc d" vs "abd d": one substituted character out of 5 (the space is a character)
    result = cer({"u": "abc d"}, {"u": "abd d"})
    assert result.counts.ref_tokens == 5 and result.counts.substitutions == 1
    assert result.rate == pytest.approx(20.0)
    assert result.name == "CER"


def test_normalisation_is_off_by_default():
    ref, hyp = {"u": "Hello, World!"}, {"u": "hello world"}
    assert wer(ref, hyp).rate == pytest.approx(100.0)
    assert wer(ref, hyp, normalize=True).rate == 0.0


def test_empty_reference_counts_insertions_and_no_words_gives_nan():
    result = error_rate({"u": ""}, {"u": "x y"})
    assert result.counts.insertions == 2 and result.counts.ref_tokens == 0
    assert math.isnan(result.rate)


def test_alignment_file_layout():
    result = wer({"k1": "the cat sat", "k2": "a b"}, {"k1": "the dog sat down", "k2": "a"})
    text = format_alignment(result)
    assert text.splitlines()[:5] == [
        "id: (k1)",
        "Scores: (#C #S #D #I) 2 1 0 1",
        "REF:  the cat sat ****",
        "HYP:  the dog sat down",
        "Eval:     S       I",
    ]
    assert "REF:  a b\nHYP:  a *\nEval:   D" in text


def test_char_alignment_shows_spaces():
    text = format_alignment(cer({"k": "a b"}, {"k": "ab"}))
    assert "REF:  a <space> b" in text and "HYP:  a ******* b" in text
