"""Classification accuracy of predicted labels, per class and as a confusion matrix (sklearn).

Used for cross-modal generation accuracy: a classifier trained on real data labels generated
samples, and its predictions are scored against the labels the generations were asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix

from skiptool.metrics.inputs import check_hyp_keys
from skiptool.utils.errors import SkiptoolError

# Predicted label given to a reference key with no prediction: it counts as wrong.
MISSING = "<none>"


@dataclass(frozen=True)
class AccuracyResult:
    accuracy: float  # in [0, 1]
    num_utts: int
    num_correct: int
    labels: tuple[str, ...]  # reference classes, then MISSING if any prediction was missing
    per_class: dict[str, float]  # reference class -> share of its keys predicted correctly
    confusion: np.ndarray  # rows: reference label, columns: predicted label (order of `labels`)
    missing: tuple[str, ...]

    def summary(self) -> dict[str, str]:
        return {"metric": "accuracy", "Utts": str(self.num_utts), "Correct": str(self.num_correct),
                "Acc (%)": f"{100 * self.accuracy:.2f}"}


def accuracy(ref: Mapping[str, str], hyp: Mapping[str, str], ref_name: str = "ref",
             hyp_name: str = "hyp") -> AccuracyResult:
    """Accuracy of predicted labels `hyp` {key: label} against `ref` {key: label}."""
    if not ref:
        raise SkiptoolError(f"{ref_name}: no reference labels to score")
    missing = check_hyp_keys(ref, hyp, hyp_name, ref_name)
    keys = list(ref)
    y_true = [str(ref[k]) for k in keys]
    y_pred = [str(hyp.get(k, MISSING)) for k in keys]
    classes = _sorted_labels(set(y_true))
    extra = _sorted_labels(set(y_pred) - set(classes) - {MISSING})  # predicted classes never in ref
    labels = classes + extra + ([MISSING] if missing else [])
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    per_class = {c: float(matrix[i, i] / matrix[i].sum()) for i, c in enumerate(classes)}
    correct = int(np.trace(matrix))
    return AccuracyResult(float(accuracy_score(y_true, y_pred)), len(keys), correct, tuple(labels),
                          per_class, matrix, tuple(missing))


def _sorted_labels(labels: set[str]) -> list[str]:
    """Numeric labels in numeric order (2 before 10), others in string order."""
    def numeric(s: str) -> bool:
        try:
            float(s)
            return True
        except ValueError:
            return False

    if all(numeric(s) for s in labels):
        return sorted(labels, key=float)
    return sorted(labels)
