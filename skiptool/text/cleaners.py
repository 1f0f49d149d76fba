"""Text cleaners, run on every text before tokenising (Tacotron's `english_cleaners`, simplified).

    english_cleaners("Dr. Smith paid $15 on the 3rd of May, 1886.")
    -> "doctor smith paid fifteen dollars on the third of may, eighteen eighty six."

`english`: accents and typographic punctuation to ASCII, lower case, common abbreviations and
numbers spelt out (integers with or without thousands commas, decimals, ordinals, $ amounts, %,
years 1001-2999 read as years), then whitespace collapsed. `basic`: lower case and collapse
whitespace. `none`: the text unchanged. Number words are separated by spaces ("eighty six"), so
that they count as words in WER. Characters the cleaners leave outside the symbol table are
dropped by the tokenizer, with a warning naming them.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
            "nine": "ninth", "twelve": "twelfth"}
_ABBREVIATIONS = [(re.compile(rf"\b{a}\.", re.IGNORECASE), full) for a, full in (
    ("mrs", "missus"), ("mr", "mister"), ("dr", "doctor"), ("st", "saint"), ("co", "company"),
    ("jr", "junior"), ("maj", "major"), ("gen", "general"), ("drs", "doctors"), ("rev", "reverend"),
    ("lt", "lieutenant"), ("hon", "honorable"), ("sgt", "sergeant"), ("capt", "captain"),
    ("esq", "esquire"), ("ltd", "limited"), ("col", "colonel"), ("ft", "fort"))]
_TO_ASCII = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                           "\u2014": " - ", "\u2026": "...", "\u00a0": " ", "[": "(", "]": ")",
                           "{": "(", "}": ")", "&": " and "})

_NUM = r"\d+(?:,\d{3}(?!\d))*(?:\.\d+)?"  # 1886, 1,000, 3.14: a trailing comma is punctuation
_MONEY = re.compile(rf"\$({_NUM})")
_PERCENT = re.compile(rf"({_NUM})\s?%")
_ORDINAL_NUMBER = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_NUMBER = re.compile(_NUM)
_WHITESPACE = re.compile(r"\s+")


def number_to_words(n: int) -> str:
    """0 -> 'zero', 1886 -> 'one thousand eight hundred eighty six' (any size; words by thousands)."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_to_words(n % 100))
    for scale, name in _SCALES:
        if n >= scale:
            head, rest = divmod(n, scale)
            return f"{number_to_words(head)} {name}" + ("" if rest == 0 else " " + number_to_words(rest))
    raise AssertionError(n)


def ordinal_to_words(n: int) -> str:
    """3 -> 'third', 21 -> 'twenty first', 40 -> 'fortieth'."""
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL:
        words[-1] = _ORDINAL[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _cardinal(text: str, year_like: bool = True) -> str:
    """A matched number (digits, thousands commas, optional decimals) in words."""
    whole, _, decimals = text.replace(",", "").partition(".")
    n = int(whole)
    if decimals:
        return number_to_words(n) + " point " + " ".join(_ONES[int(d)] for d in decimals)
    if year_like and 1000 < n < 3000 and "," not in text and not 2000 <= n < 2010:
        if n % 100 == 0:
            return number_to_words(n // 100) + " hundred"
        high, low = divmod(n, 100)
        return f"{number_to_words(high)} {'oh ' + _ONES[low] if low < 10 else number_to_words(low)}"
    if n >= 10**12:  # phone numbers, ids: digit by digit
        return " ".join(_ONES[int(d)] for d in whole)
    return number_to_words(n)


def _money(match: re.Match) -> str:
    whole, _, cents = match.group(1).replace(",", "").partition(".")
    dollars = int(whole)
    words = f"{number_to_words(dollars)} dollar{'' if dollars == 1 else 's'}"
    if cents and int(cents[:2].ljust(2, "0")):
        c = int(cents[:2].ljust(2, "0"))
        words += f" {number_to_words(c)} cent{'' if c == 1 else 's'}"
    return words


def expand_numbers(text: str) -> str:
    """Spell out $ amounts, percentages, ordinals and numbers."""
    text = _MONEY.sub(_money, text)
    text = _PERCENT.sub(lambda m: _cardinal(m.group(1), year_like=False) + " percent", text)
    text = _ORDINAL_NUMBER.sub(lambda m: ordinal_to_words(int(m.group(1))), text)
    return _NUMBER.sub(lambda m: _cardinal(m.group(0)), text)


def to_ascii(text: str) -> str:
    """Typographic quotes and dashes to ASCII, accents stripped (cafe for café)."""
    text = text.translate(_TO_ASCII)
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def collapse_whitespace(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def expand_abbreviations(text: str) -> str:
    for pattern, full in _ABBREVIATIONS:
        text = pattern.sub(full, text)
    return text


def english_cleaners(text: str) -> str:
    text = to_ascii(text).lower()
    return collapse_whitespace(expand_numbers(expand_abbreviations(text)))


def basic_cleaners(text: str) -> str:
    return collapse_whitespace(text.lower())


def no_cleaners(text: str) -> str:
    return text


CLEANERS: dict[str, Callable[[str], str]] = {
    "english": english_cleaners,
    "basic": basic_cleaners,
    "none": no_cleaners,
}
