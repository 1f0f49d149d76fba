"""Recall@k and median rank of cosine-similarity retrieval."""

import numpy as np
import pytest

from skiptool.metrics.retrieval import identity_matches, invert_matches, recall_at_k
from skiptool.utils.errors import SkiptoolError


def test_identity_case_is_perfect():
    rng = np.random.default_rng(0)
    vectors = {f"k{i}": rng.normal(size=16) for i in range(20)}
    result = recall_at_k(vectors, vectors, ks=(1, 5))
    assert result.recall == {1: 1.0, 5: 1.0} and result.median_rank == 1.0


def test_ranks_by_hand():
    # angles: q1 at 0 deg; candidates at 10 (c2), 30 (c1), 90 (c3) degrees: c1 ranks 2nd for q1
    def unit(deg):
        return np.array([np.cos(np.radians(deg)), np.sin(np.radians(deg))])
    queries = {"q1": unit(0), "q2": unit(90)}
    cands = {"c1": unit(30), "c2": unit(10), "c3": unit(90)}
    result = recall_at_k(queries, cands, {"q1": {"c1"}, "q2": {"c3"}}, ks=(1, 2))
    assert result.ranks == {"q1": 2, "q2": 1}
    assert result.recall == {1: 0.5, 2: 1.0} and result.median_rank == 1.5


def test_several_relevant_candidates_use_the_best_one():
    queries = {"img": np.array([1.0, 0.0])}
    cands = {"cap1": np.array([0.0, 1.0]), "cap2": np.array([1.0, 0.1]), "other": np.array([1.0, 0.5])}
    assert recall_at_k(queries, cands, {"img": {"cap1", "cap2"}}, ks=(1,)).recall == {1: 1.0}


def test_ties_are_pessimistic():
    same = {f"k{i}": np.ones(4) for i in range(5)}
    result = recall_at_k(same, same, ks=(1, 5))
    assert result.recall == {1: 0.0, 5: 1.0}


def test_matches_inversion_and_errors():
    assert invert_matches({"q1": {"a", "b"}, "q2": {"a"}}) == {"a": {"q1", "q2"}, "b": {"q1"}}
    with pytest.raises(SkiptoolError, match="x"):
        identity_matches({"x": 1}, {"y": 1})
    with pytest.raises(SkiptoolError, match="'nope'"):
        recall_at_k({"q": np.ones(2)}, {"c": np.ones(2)}, {"q": {"nope"}})
    with pytest.raises(SkiptoolError, match="dims"):
        recall_at_k({"q": np.ones(2)}, {"q": np.ones(3)})
