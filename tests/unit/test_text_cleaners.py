"""Text cleaners: numbers, abbreviations, ASCII, whitespace; and the 66-symbol table."""

from __future__ import annotations

import pytest

from skiptool.text.cleaners import CLEANERS, english_cleaners, number_to_words, ordinal_to_words
from skiptool.text.symbols import EOS_ID, PAD_ID, SOS_ID, SYMBOL_TO_ID, SYMBOLS


def test_the_66_symbol_table():
    assert len(SYMBOLS) == 66 and len(set(SYMBOLS)) == 66
    assert SYMBOLS[:3] == ("<pad>", "<eos>", "<sos>") and (PAD_ID, EOS_ID, SOS_ID) == (0, 1, 2)
    assert "".join(SYMBOLS[3:]) == "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!'(),-.:;? "
    assert SYMBOL_TO_ID["a"] == 29 and SYMBOL_TO_ID[" "] == 65
    assert not any(c.isdigit() for c in SYMBOLS)  # numbers are spelt out by the cleaners


@pytest.mark.parametrize("n, words", [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (40, "forty"), (42, "forty two"), (100, "one hundred"),
    (115, "one hundred fifteen"), (1000, "one thousand"), (20_017, "twenty thousand seventeen"),
    (3_000_000, "three million"), (1_234_567, "one million two hundred thirty four thousand five hundred sixty seven"),
])
def test_number_to_words(n, words):
    assert number_to_words(n) == words


def test_ordinals():
    assert [ordinal_to_words(n) for n in (1, 2, 3, 5, 8, 9, 12, 20, 21, 40, 100)] == [
        "first", "second", "third", "fifth", "eighth", "ninth", "twelfth", "twentieth", "twenty first", "fortieth",
        "one hundredth"]


@pytest.mark.parametrize("text, cleaned", [
    ("Dr. Smith paid $15 on the 3rd of May, 1886.", "doctor smith paid fifteen dollars on the third of may, eighteen eighty six."),
    ("In 2005, 1,000 people came.", "in two thousand five, one thousand people came."),
    ("It costs $1.50 or 3.14%.", "it costs one dollar fifty cents or three point one four percent."),
    ("In 1900 and 1905 and 2024", "in nineteen hundred and nineteen oh five and twenty twenty four"),
    ("Call 1234567890123", "call one two three four five six seven eight nine zero one two three"),
    ("  Café   “quoted”\tand — dashes  ", 'cafe "quoted" and - dashes'),
    ("Mr. and Mrs. Jones [sic] & co.", "mister and missus jones (sic) and company"),
    ("A SMALL red circle.", "a small red circle."),
])
def test_english_cleaners(text, cleaned):
    assert english_cleaners(text) == cleaned


def test_cleaner_registry():
    assert set(CLEANERS) == {"english", "basic", "none"}
    assert CLEANERS["basic"]("  Two   RED stars 3 ") == "two red stars 3"
    assert CLEANERS["none"](" As Is 3 ") == " As Is 3 "
