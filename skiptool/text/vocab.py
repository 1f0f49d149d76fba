"""Word vocabularies of texts and their overlap (paper 000: COCO and EMT-4 share 26% of words).

    vocabulary_overlap(read_texts(["data/shapes/train/text"]), read_texts(["data/espeak/train/text"]))

Words are those of the english cleaner's output with punctuation other than inner apostrophes
removed. The paper's 26% is the shared words over all words of both corpora (intersection over
union: 6,874 / (15,200 + 17,946 - 6,874)); the share of each vocabulary found in the other is
given too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from skiptool.text.cleaners import english_cleaners

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def words(text: str) -> list[str]:
    """Lower-case words of a text after the english cleaner (numbers spelt out)."""
    return _WORD.findall(english_cleaners(text))


def vocabulary(texts: Iterable[str]) -> set[str]:
    return {w for t in texts for w in words(t)}


@dataclass(frozen=True)
class Overlap:
    size_a: int
    size_b: int
    shared: int

    @property
    def union(self) -> int:
        return self.size_a + self.size_b - self.shared

    @property
    def jaccard(self) -> float:
        """Shared words over all words, the paper's measure."""
        return self.shared / self.union if self.union else 0.0

    @property
    def a_in_b(self) -> float:
        return self.shared / self.size_a if self.size_a else 0.0

    @property
    def b_in_a(self) -> float:
        return self.shared / self.size_b if self.size_b else 0.0

    def describe(self, name_a: str = "A", name_b: str = "B") -> str:
        return (f"{name_a} has {self.size_a} words, {name_b} {self.size_b}; {self.shared} shared: "
                f"{100 * self.jaccard:.1f}% of all {self.union} words (the paper's measure), "
                f"{100 * self.a_in_b:.1f}% of {name_a}'s, {100 * self.b_in_a:.1f}% of {name_b}'s")


def vocabulary_overlap(texts_a: Iterable[str], texts_b: Iterable[str]) -> Overlap:
    a, b = vocabulary(texts_a), vocabulary(texts_b)
    return Overlap(len(a), len(b), len(a & b))
