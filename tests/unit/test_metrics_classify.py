"""Accuracy, per-class accuracy and the confusion matrix."""

import numpy as np
import pytest

from skiptool.metrics.classify import MISSING, accuracy
from skiptool.utils.errors import SkiptoolError


def test_accuracy_by_hand_with_a_missing_prediction():
    ref = {"a": "1", "b": "1", "c": "2", "d": "2", "e": "10"}
    hyp = {"a": "1", "b": "2", "c": "2", "e": "10"}
    result = accuracy(ref, hyp)
    assert result.accuracy == pytest.approx(3 / 5) and result.num_correct == 3
    assert result.per_class == {"1": 0.5, "2": 0.5, "10": 1.0}
    assert result.labels == ("1", "2", "10", MISSING)  # numeric order, then the missing column
    assert result.missing == ("d",)
    np.testing.assert_array_equal(result.confusion[:3], [[1, 1, 0, 0], [0, 1, 0, 1], [0, 0, 1, 0]])


def test_predicted_class_never_in_reference_gets_a_column():
    result = accuracy({"a": "cat"}, {"a": "dog"})
    assert result.labels == ("cat", "dog") and result.accuracy == 0.0


def test_stray_prediction_key_is_an_error():
    with pytest.raises(SkiptoolError, match="zz"):
        accuracy({"a": "1"}, {"zz": "1"})
