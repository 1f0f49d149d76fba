"""Word and character error rates with jiwer, summarised and aligned as sclite does.

`error_rate` aligns every utterance with jiwer (`process_words` / `process_characters`) and
counts what sclite's `sys` summary shows: sentences, reference words, correct, substituted,
deleted and inserted words, total errors and the share of sentences with any error. A reference
key with no hypothesis is scored as an empty hypothesis (all deletions); a hypothesis key that is
not in the reference is an error (a mismatch of sets is almost always a mistake).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping

import jiwer

from skiptool.metrics.inputs import check_hyp_keys, normalize_text
from skiptool.utils.errors import SkiptoolError

Unit = Literal["word", "char"]


@dataclass(frozen=True)
class ErrorCounts:
    """Totals as in sclite's `sys`/`dtl` summary (Snt, Wrd, Corr, Sub, Del, Ins, Err, S.Err)."""

    sentences: int
    ref_tokens: int
    correct: int
    substitutions: int
    deletions: int
    insertions: int
    sentence_errors: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    def percent(self, count: int) -> float:
        """`count` as a percentage of the reference tokens (sclite's Corr/Sub/Del/Ins/Err)."""
        return 100.0 * count / self.ref_tokens if self.ref_tokens else float("nan")

    @property
    def error_rate(self) -> float:
        """WER or CER in percent."""
        return self.percent(self.errors)

    @property
    def sentence_error_rate(self) -> float:
        return 100.0 * self.sentence_errors / self.sentences if self.sentences else float("nan")


@dataclass(frozen=True)
class AlignedUtterance:
    """One utterance aligned: `ops` holds (mark, ref token, hyp token) with mark in C S D I."""

    key: str
    ops: tuple[tuple[str, str, str], ...]

    def count(self, mark: str) -> int:
        return sum(op[0] == mark for op in self.ops)


@dataclass(frozen=True)
class ErrorRateResult:
    unit: Unit
    counts: ErrorCounts
    utterances: tuple[AlignedUtterance, ...]
    missing: tuple[str, ...]  # reference keys that had no hypothesis (scored as deletions)

    @property
    def name(self) -> str:
        return "WER" if self.unit == "word" else "CER"

    @property
    def rate(self) -> float:
        return self.counts.error_rate

    def summary(self) -> dict[str, str]:
        """The sclite `sys` summary line: counts, then percentages of reference tokens."""
        c = self.counts
        return {
            "metric": self.name, "Snt": str(c.sentences), "Wrd": str(c.ref_tokens),
            "Corr": f"{c.percent(c.correct):.1f}", "Sub": f"{c.percent(c.substitutions):.1f}",
            "Del": f"{c.percent(c.deletions):.1f}", "Ins": f"{c.percent(c.insertions):.1f}",
            "Err": f"{c.error_rate:.2f}", "S.Err": f"{c.sentence_error_rate:.1f}",
        }

    def kaldi_line(self) -> str:
        """Kaldi's `compute-wer` line, e.g. `%WER 12.50 [ 5 / 40, 1 ins, 2 del, 2 sub ]`."""
        c = self.counts
        return (f"%{self.name} {c.error_rate:.2f} [ {c.errors} / {c.ref_tokens}, {c.insertions} ins, "
                f"{c.deletions} del, {c.substitutions} sub ]")


_MARKS = {"equal": "C", "substitute": "S", "delete": "D", "insert": "I"}


def error_rate(ref: Mapping[str, str], hyp: Mapping[str, str], unit: Unit = "word",
               normalize: bool = False, ref_name: str = "ref", hyp_name: str = "hyp") -> ErrorRateResult:
    """WER (`unit="word"`) or CER (`unit="char"`) of `hyp` against `ref`, both {key: text}."""
    if not ref:
        raise SkiptoolError(f"{ref_name}: no reference utterances to score")
    missing = check_hyp_keys(ref, hyp, hyp_name, ref_name)
    keys = list(ref)
    prep = normalize_text if normalize else (lambda s: s)
    refs = [prep(ref[k]) for k in keys]
    hyps = [prep(hyp.get(k, "")) for k in keys]
    if unit == "word":
        out = jiwer.process_words(refs, hyps)
    else:
        out = jiwer.process_characters(refs, hyps)
    utterances = tuple(_aligned(key, r, h, chunks)
                       for key, r, h, chunks in zip(keys, out.references, out.hypotheses, out.alignments))
    counts = ErrorCounts(
        sentences=len(keys), ref_tokens=sum(len(r) for r in out.references), correct=out.hits,
        substitutions=out.substitutions, deletions=out.deletions, insertions=out.insertions,
        sentence_errors=sum(any(op[0] != "C" for op in u.ops) for u in utterances))
    return ErrorRateResult(unit, counts, utterances, tuple(missing))


def wer(ref: Mapping[str, str], hyp: Mapping[str, str], normalize: bool = False) -> ErrorRateResult:
    return error_rate(ref, hyp, "word", normalize)


def cer(ref: Mapping[str, str], hyp: Mapping[str, str], normalize: bool = False) -> ErrorRateResult:
    return error_rate(ref, hyp, "char", normalize)


def _aligned(key: str, ref: list[str], hyp: list[str], chunks) -> AlignedUtterance:
    ops: list[tuple[str, str, str]] = []
    for chunk in chunks:
        mark = _MARKS[chunk.type]
        r = ref[chunk.ref_start_idx:chunk.ref_end_idx]
        h = hyp[chunk.hyp_start_idx:chunk.hyp_end_idx]
        for i in range(max(len(r), len(h))):
            ops.append((mark, r[i] if i < len(r) else "", h[i] if i < len(h) else ""))
    return AlignedUtterance(key, tuple(ops))


def format_alignment(result: ErrorRateResult) -> str:
    """Per-utterance alignments in sclite's `pra` layout (as in ESPnet's `result.txt`).

    Written by hand because jiwer's `visualize_alignment` numbers sentences instead of naming
    keys and has no per-utterance score line. Gaps are `*` as wide as the word opposite them;
    in CER alignments a space is shown as `<space>`.
    """
    lines = []
    for utt in result.utterances:
        ref_cells, hyp_cells, eval_cells = [], [], []
        for mark, r, h in utt.ops:
            if result.unit == "char":
                r, h = ("<space>" if t == " " else t for t in (r, h))
            width = max(len(r), len(h), 1)
            ref_cells.append((r or "*" * width).ljust(width))
            hyp_cells.append((h or "*" * width).ljust(width))
            eval_cells.append(("" if mark == "C" else mark).ljust(width))
        lines += [
            f"id: ({utt.key})",
            f"Scores: (#C #S #D #I) {utt.count('C')} {utt.count('S')} {utt.count('D')} {utt.count('I')}",
            ("REF:  " + " ".join(ref_cells)).rstrip(),
            ("HYP:  " + " ".join(hyp_cells)).rstrip(),
            ("Eval: " + " ".join(eval_cells)).rstrip(),
            "",
        ]
    return "\n".join(lines)
