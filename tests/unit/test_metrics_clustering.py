"""Weighted k-means purity (paper 004) and the inertia curve."""

import numpy as np
import pytest

from skiptool.metrics.clustering import inertia_curve, kmeans_purity, plot_inertia, weighted_purity
from skiptool.utils.errors import SkiptoolError


def _blobs(n_per_class=30, classes=10, dim=8, spread=0.5, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (classes, dim))
    labels = np.repeat(np.arange(classes), n_per_class)
    return centres[labels] + rng.normal(0, spread, (len(labels), dim)), labels.astype(str)


def test_weighted_purity_by_hand():
    # cluster 0 = {a, a, b} (majority 2), cluster 1 = {b} (majority 1): (2 + 1) / 4
    assert weighted_purity(["a", "a", "b", "b"], [0, 0, 0, 1]) == pytest.approx(0.75)
    assert weighted_purity(["a", "b", "c"], [5, 5, 5]) == pytest.approx(1 / 3)


def test_separable_classes_have_purity_one():
    vectors, labels = _blobs()
    result = kmeans_purity(vectors, labels, num_clusters=10, n_init=4, seed=0)
    assert result.purity == 1.0
    assert sorted(result.cluster_majorities) == sorted(set(labels)) and sum(result.cluster_sizes) == 300


def test_random_labels_are_near_chance():
    vectors, _ = _blobs(n_per_class=200)
    labels = np.random.default_rng(1).integers(0, 10, len(vectors)).astype(str)
    result = kmeans_purity(vectors, labels, num_clusters=10, n_init=4, seed=0)
    # chance is 0.1; the majority of ~200 random labels adds a little (0.14 measured with these seeds)
    assert 0.1 <= result.purity < 0.18


def test_purity_is_seeded():
    vectors, labels = _blobs(spread=6.0)
    a = kmeans_purity(vectors, labels, n_init=2, seed=3)
    b = kmeans_purity(vectors, labels, n_init=2, seed=3)
    assert a == b


def test_too_many_clusters_is_a_user_error():
    with pytest.raises(SkiptoolError, match="clusters"):
        kmeans_purity(np.zeros((3, 2)), ["a", "b", "c"], num_clusters=10)


def test_inertia_curve_drops_until_the_true_number_of_classes(tmp_path):
    vectors, _ = _blobs(n_per_class=10)
    curve = dict(inertia_curve(vectors, max_k=12, n_init=2, seed=0))
    assert list(curve) == list(range(1, 13))
    assert curve[9] > 3 * curve[10]  # the last real split still removes most inertia
    assert curve[10] < 1.3 * curve[12]  # past ten clusters it hardly moves
    plot_inertia(list(curve.items()), tmp_path / "inertia.png", "test")
    assert (tmp_path / "inertia.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
