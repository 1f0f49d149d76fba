"""Weighted k-means purity of latent vectors and the inertia-versus-k curve (paper 004, sec. 4.4).

Paper 004 clusters the latents inferred by each unimodal encoder with 10-class k-means and
reports the "cluster-size weighted average purity": a cluster's purity is the share of its
members carrying the cluster's majority digit label, averaged with weights |cluster| / N, which
equals (sum over clusters of the majority count) / N. Its Figure 3 plots k-means inertia (sum of
squared distances to the closest centroid) against the number of clusters. Both use
scikit-learn's seeded KMeans with several initialisations.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics.cluster import contingency_matrix

from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import atomic_write
from skiptool.utils.progress import track


@dataclass(frozen=True)
class PurityResult:
    purity: float  # weighted average purity in [0, 1]
    num_points: int
    num_clusters: int
    num_classes: int
    cluster_sizes: tuple[int, ...]
    cluster_majorities: tuple[str, ...]  # majority label of each cluster
    inertia: float

    def summary(self) -> dict[str, str]:
        return {"metric": "purity", "Points": str(self.num_points), "Classes": str(self.num_classes),
                "k": str(self.num_clusters), "Purity (%)": f"{100 * self.purity:.2f}",
                "Inertia": f"{self.inertia:.4g}"}


def weighted_purity(labels: Sequence, clusters: Sequence) -> float:
    """Cluster-size weighted average purity of a clustering against true labels."""
    if len(labels) == 0:
        raise SkiptoolError("purity of an empty set is undefined; give at least one vector")
    table = contingency_matrix(labels, clusters)  # classes x clusters
    return float(table.max(axis=0).sum() / table.sum())


def kmeans_purity(vectors: np.ndarray, labels: Sequence[str], num_clusters: int = 10,
                  n_init: int = 10, seed: int = 0) -> PurityResult:
    """k-means (`num_clusters`, seeded, best of `n_init` inits) on `vectors`, purity against `labels`."""
    vectors = np.asarray(vectors, dtype=np.float64)
    labels = np.asarray(labels)
    if len(vectors) != len(labels):
        raise SkiptoolError(f"{len(vectors)} vectors but {len(labels)} labels")
    if not 1 <= num_clusters <= len(vectors):
        raise SkiptoolError(f"cannot make {num_clusters} clusters from {len(vectors)} vectors; "
                            f"lower --clusters or give more vectors")
    km = KMeans(n_clusters=num_clusters, n_init=n_init, random_state=seed).fit(vectors)
    clusters = km.labels_
    majorities, sizes = [], []
    for c in range(num_clusters):
        members = labels[clusters == c]
        sizes.append(len(members))
        values, counts = np.unique(members, return_counts=True)
        majorities.append(str(values[counts.argmax()]) if len(members) else "")
    return PurityResult(weighted_purity(labels, clusters), len(vectors), num_clusters,
                        len(np.unique(labels)), tuple(sizes), tuple(majorities), float(km.inertia_))


def inertia_curve(vectors: np.ndarray, max_k: int = 20, n_init: int = 10, seed: int = 0) -> list[tuple[int, float]]:
    """[(k, inertia)] of seeded k-means for k = 1..max_k (capped at the number of vectors)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    ks = range(1, min(max_k, len(vectors)) + 1)
    return [(k, float(KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(vectors).inertia_))
            for k in track(ks, total=len(ks), description="k-means inertia curve", unit="k")]


def plot_inertia(curve: Sequence[tuple[int, float]], path: str | os.PathLike, title: str = "") -> None:
    """Save the inertia-versus-k curve as a PNG (matplotlib Agg), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    ks, values = zip(*curve)
    ax.plot(ks, values, marker="o")
    ax.set_xlabel("number of clusters k")
    ax.set_ylabel("k-means inertia")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)


def plot_tsne(vectors: np.ndarray, labels: Sequence[str], path: str | os.PathLike, title: str = "",
              seed: int = 0) -> None:
    """Save a 2-D t-SNE (scikit-learn, seeded) of `vectors` coloured by label as a PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    vectors = np.asarray(vectors, dtype=np.float64)
    if len(vectors) < 3:
        raise SkiptoolError(f"t-SNE needs at least 3 vectors, got {len(vectors)}")
    perplexity = min(30.0, (len(vectors) - 1) / 3)
    points = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(vectors)
    labels = np.asarray(labels)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    for i, label in enumerate(sorted(np.unique(labels), key=lambda x: (len(x), x))):
        chosen = labels == label
        ax.scatter(points[chosen, 0], points[chosen, 1], s=6, color=plt.cm.tab10(i % 10), label=label)
    ax.legend(markerscale=2, fontsize=7, loc="best", ncol=2)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_write(Path(path), "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)
