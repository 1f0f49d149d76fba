"""Corpus BLEU-1..4 with sacrebleu, several references per key.

BLEU-n is sacrebleu's corpus BLEU with `max_ngram_order=n` (uniform weights over 1..n-grams,
brevity penalty against the closest reference length), which is what image-captioning papers
report as B@1..B@4. Note that the COCO caption toolkit tokenises with the PTB tokenizer and
lowercases; sacrebleu's default tokenizer is `13a`, so numbers are close to, not identical to,
coco-caption's. The sacrebleu signature printed with the scores says exactly what was computed.

References: `refs[key]` is a list, so a key may have any number of references (5 captions per
COCO image); keys with fewer references are padded for sacrebleu with None, which it skips.
A reference key with no hypothesis is scored as an empty hypothesis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from sacrebleu.metrics import BLEU

from skiptool.metrics.inputs import check_hyp_keys, normalize_text
from skiptool.utils.errors import SkiptoolError


@dataclass(frozen=True)
class BleuResult:
    scores: tuple[float, ...]  # BLEU-1 .. BLEU-max_order, in percent (0-100)
    precisions: tuple[float, ...]  # n-gram precisions (percent) of the highest order's score
    brevity_penalty: float
    hyp_length: int
    ref_length: int
    num_hyps: int
    refs_per_key: tuple[int, int]  # fewest and most references of a key
    signature: str  # sacrebleu's, of the highest order
    missing: tuple[str, ...]  # reference keys with no hypothesis (scored as empty)

    def summary(self) -> dict[str, str]:
        lo, hi = self.refs_per_key
        row = {"metric": "BLEU", "Hyps": str(self.num_hyps), "Refs/key": str(lo) if lo == hi else f"{lo}-{hi}"}
        row.update({f"BLEU-{n}": f"{s:.2f}" for n, s in enumerate(self.scores, start=1)})
        row.update({"BP": f"{self.brevity_penalty:.3f}", "signature": self.signature})
        return row


def bleu(refs: Mapping[str, Sequence[str]], hyp: Mapping[str, str], max_order: int = 4,
         normalize: bool = False, tokenize: str = "13a", lowercase: bool = False,
         ref_name: str = "ref", hyp_name: str = "hyp") -> BleuResult:
    """Corpus BLEU-1..`max_order` of `hyp` {key: text} against `refs` {key: [text, ...]}."""
    if not refs:
        raise SkiptoolError(f"{ref_name}: no references to score against")
    if not 1 <= max_order <= 4:
        raise SkiptoolError(f"BLEU order must be 1..4, got {max_order}")
    missing = check_hyp_keys(refs, hyp, hyp_name, ref_name)
    prep = normalize_text if normalize else (lambda s: s)
    keys = list(refs)
    hyps = [prep(hyp.get(k, "")) for k in keys]
    most = max(len(refs[k]) for k in keys)
    # sacrebleu takes references as parallel streams; None pads keys with fewer references.
    streams = [[prep(refs[k][j]) if j < len(refs[k]) else None for k in keys] for j in range(most)]
    scores, last, signature = [], None, ""
    for order in range(1, max_order + 1):
        try:
            metric = BLEU(max_ngram_order=order, tokenize=tokenize, lowercase=lowercase)
        except Exception as e:  # an unknown tokenizer name
            raise SkiptoolError(f"sacrebleu rejected the options ({e})") from None
        last = metric.corpus_score(hyps, streams)
        scores.append(last.score)
        signature = str(metric.get_signature())
    return BleuResult(
        scores=tuple(scores), precisions=tuple(last.precisions), brevity_penalty=last.bp,
        hyp_length=last.sys_len, ref_length=last.ref_len, num_hyps=len(keys),
        refs_per_key=(min(len(refs[k]) for k in keys), most), signature=signature,
        missing=tuple(missing))
