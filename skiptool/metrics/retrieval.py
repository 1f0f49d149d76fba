"""Cross-modal retrieval: recall@k and median rank under cosine similarity.

A query is a hit at k when one of its relevant candidates is among the k most similar
candidates. Ranks are pessimistic on ties: a relevant candidate ranks behind every irrelevant
candidate with an equal score, so collapsed (identical) embeddings score at chance, not 100%.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from skiptool.utils.errors import SkiptoolError


@dataclass(frozen=True)
class RetrievalResult:
    direction: str  # e.g. "query -> candidates"
    recall: dict[int, float]  # k -> recall@k in [0, 1]
    median_rank: float  # 1-based rank of the best relevant candidate
    num_queries: int
    num_candidates: int
    ranks: dict[str, int]  # query key -> 1-based rank of its best relevant candidate

    def summary(self) -> dict[str, str]:
        row = {"metric": "recall@k", "direction": self.direction, "Queries": str(self.num_queries),
               "Candidates": str(self.num_candidates)}
        row.update({f"R@{k}": f"{100 * r:.2f}" for k, r in self.recall.items()})
        row["medR"] = f"{self.median_rank:g}"
        return row


def identity_matches(queries: Mapping[str, object], candidates: Mapping[str, object]) -> dict[str, set[str]]:
    """The ground truth when none is given: a query matches the candidate with its own key."""
    missing = [k for k in queries if k not in candidates]
    if missing:
        raise SkiptoolError(f"query key '{missing[0]}' has no candidate with the same key ({len(missing)} such); "
                            f"give the ground truth with --matches")
    return {k: {k} for k in queries}


def invert_matches(matches: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """Candidate -> queries, for scoring the other direction."""
    inverted: dict[str, set[str]] = {}
    for query, relevant in matches.items():
        for cand in relevant:
            inverted.setdefault(cand, set()).add(query)
    return inverted


def recall_at_k(queries: Mapping[str, np.ndarray], candidates: Mapping[str, np.ndarray],
                matches: Mapping[str, set[str]] | None = None, ks: Sequence[int] = (1, 5, 10),
                direction: str = "query -> candidates") -> RetrievalResult:
    """Recall@k of retrieving relevant `candidates` for each query in `matches` (default: same key)."""
    if not queries or not candidates:
        raise SkiptoolError("retrieval needs at least one query and one candidate vector")
    if matches is None:
        matches = identity_matches(queries, candidates)
    unknown_q = [q for q in matches if q not in queries]
    if unknown_q:
        raise SkiptoolError(f"matches name query '{unknown_q[0]}' which has no vector ({len(unknown_q)} such)")
    unknown_c = sorted({c for rel in matches.values() for c in rel if c not in candidates})
    if unknown_c:
        raise SkiptoolError(f"matches name candidate '{unknown_c[0]}' which has no vector ({len(unknown_c)} such)")
    if any(k < 1 for k in ks):
        raise SkiptoolError(f"recall@k needs k >= 1, got {list(ks)}")
    q_keys, c_keys = list(matches), list(candidates)
    q = _unit_rows(np.stack([queries[k] for k in q_keys]))
    c = _unit_rows(np.stack([candidates[k] for k in c_keys]))
    if q.shape[1] != c.shape[1]:
        raise SkiptoolError(f"queries have {q.shape[1]} dims but candidates {c.shape[1]}; "
                            f"both must live in one embedding space")
    similarity = q @ c.T  # cosine similarity, queries x candidates
    column = {k: i for i, k in enumerate(c_keys)}
    ranks = {}
    for row, key in enumerate(q_keys):
        relevant = torch.zeros(len(c_keys), dtype=torch.bool)
        relevant[[column[c] for c in matches[key]]] = True
        scores = similarity[row]
        best = scores[relevant].max()
        # pessimistic on ties: every irrelevant candidate scoring >= the best relevant one is ahead
        ranks[key] = int((scores[~relevant] >= best).sum()) + 1
    values = np.array(list(ranks.values()))
    recall = {int(k): float(np.mean(values <= k)) for k in ks}
    return RetrievalResult(direction, recall, float(np.median(values)), len(q_keys), len(c_keys), ranks)


def _unit_rows(matrix: np.ndarray) -> torch.Tensor:
    m = torch.from_numpy(np.asarray(matrix, dtype=np.float64))
    return torch.nn.functional.normalize(m, dim=1)
