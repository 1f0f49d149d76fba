"""Readers for scoring inputs: vectors through kaldiio/numpy, labels, matches; their user errors."""

import kaldiio
import numpy as np
import pytest

from skiptool.metrics.inputs import load_vectors, read_labels, read_matches, read_multi_text
from skiptool.utils.errors import SkiptoolError


def test_vectors_from_scp_ark_npz_and_npy(tmp_path):
    vecs = {"a": np.array([1.0, 2.0], np.float32), "b": np.array([[3.0, 4.0]], np.float32)}  # 1 x D is fine
    kaldiio.save_ark(str(tmp_path / "v.ark"), vecs, scp=str(tmp_path / "v.scp"))
    for name in ("v.scp", "v.ark"):
        loaded = load_vectors(tmp_path / name)
        assert list(loaded) == ["a", "b"] and loaded["b"].tolist() == [3.0, 4.0]
    np.savez(tmp_path / "v.npz", a=np.ones(3), b=np.zeros(3))
    assert load_vectors(tmp_path / "v.npz")["a"].tolist() == [1, 1, 1]
    np.save(tmp_path / "v.npy", np.eye(2))
    assert load_vectors(tmp_path / "v.npy", row_keys=["x", "y"])["y"].tolist() == [0, 1]
    assert list(load_vectors(tmp_path / "v.npy")) == ["0", "1"]


def test_vector_errors_name_the_file_and_key(tmp_path):
    kaldiio.save_ark(str(tmp_path / "m.ark"), {"utt1": np.zeros((5, 3), np.float32)}, scp=str(tmp_path / "m.scp"))
    with pytest.raises(SkiptoolError, match="'utt1' has shape \\(5, 3\\)"):
        load_vectors(tmp_path / "m.scp")
    (tmp_path / "gone.scp").write_text(f"utt9 {tmp_path / 'missing.ark'}:12\n")
    with pytest.raises(SkiptoolError, match="utt9"):
        load_vectors(tmp_path / "gone.scp")
    (tmp_path / "bad.scp").write_text("utt1\n")
    with pytest.raises(SkiptoolError, match="line 1"):
        load_vectors(tmp_path / "bad.scp")
    np.save(tmp_path / "v.npy", np.eye(3))
    with pytest.raises(SkiptoolError, match="3 rows but the reference has 2 keys"):
        load_vectors(tmp_path / "v.npy", row_keys=["a", "b"])
    with pytest.raises(SkiptoolError, match="not found"):
        load_vectors(tmp_path / "nothing.scp")


def test_label_and_match_tables(tmp_path):
    (tmp_path / "utt2label").write_text("a 1\nb 2\n")
    assert read_labels(tmp_path / "utt2label") == {"a": "1", "b": "2"}
    (tmp_path / "broken").write_text("a 1\nb\n")
    with pytest.raises(SkiptoolError, match="line 2 \\('b'\\) has no label"):
        read_labels(tmp_path / "broken")
    (tmp_path / "matches").write_text("q1 c1 c2\nq2 c3\nq1 c4\n")
    assert read_matches(tmp_path / "matches") == {"q1": {"c1", "c2", "c4"}, "q2": {"c3"}}


def test_reference_key_without_words_is_an_error(tmp_path):
    (tmp_path / "ref").write_text("img1 a dog\nimg2\n")
    with pytest.raises(SkiptoolError, match="img2"):
        read_multi_text([tmp_path / "ref"])
