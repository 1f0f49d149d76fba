"""MNIST (IDX files) and scikit-learn digits preparers: tiny IDX fixtures and the real t10k split."""

import gzip
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skiptool.data.corpora.mnist import load_mnist_splits, prepare_mnist, read_idx
from skiptool.data.corpora.sklearn_digits import load_sklearn_digits_splits, prepare_sklearn_digits, upscale_to_mnist
from skiptool.data.datadir import keys_sorted, read_table, read_table_lines
from skiptool.utils.errors import SkiptoolError
from tests.unit.test_corpora_tidigits import written


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> None:
    """The IDX format: magic 0x0000 08 <ndim>, the dimensions as big-endian uint32, the bytes."""
    header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def make_mnist(root: Path, n_t10k: int = 100, n_train: int = 0, gz: bool = True) -> tuple[np.ndarray, np.ndarray]:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    arrays = {}
    for part, n in (("t10k", n_t10k), ("train", n_train)):
        if n:
            images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
            labels = np.arange(n, dtype=np.uint8) % 10
            write_idx(root / f"{part}-images-idx3-ubyte{suffix}", images, gz)
            write_idx(root / f"{part}-labels-idx1-ubyte{suffix}", labels, gz)
            arrays[part] = images, labels
    return arrays


def check_image_dir(data_dir: Path) -> dict[str, str]:
    """img.scp and utt2label sorted with the same keys, absolute PNG paths; returns utt2label."""
    for name in ("img.scp", "utt2label"):
        assert keys_sorted([key for _, key, _ in read_table_lines(data_dir / name)]), name
    img_scp, utt2label = read_table(data_dir / "img.scp"), read_table(data_dir / "utt2label")
    assert set(img_scp) == set(utt2label) and img_scp
    for key, path in img_scp.items():
        assert Path(path).is_absolute() and Path(path).name == f"{key}.png"
        assert Path(path).parent == data_dir.parent / "images" / data_dir.name
    return utt2label


def test_t10k_only_is_split_stratified_and_seeded(tmp_path):
    arrays = make_mnist(tmp_path / "mnist", n_t10k=100)
    dirs = written(prepare_mnist(tmp_path / "mnist", tmp_path / "out", dev_size=10, test_size=20, seed=1))
    assert list(dirs) == ["train", "dev", "test"]
    labels = {split: check_image_dir(d) for split, d in dirs.items()}
    assert [len(v) for v in labels.values()] == [70, 10, 20]
    assert set().union(*map(set, labels.values())) == {f"mnist-t10k-{i:05d}" for i in range(100)}
    assert sorted(labels["dev"].values()) == [str(d) for d in range(10)]  # one of each digit
    assert sorted(labels["test"].values()) == sorted(2 * [str(d) for d in range(10)])
    images, truth = arrays["t10k"]
    key = next(iter(labels["test"]))
    index = int(key.rsplit("-", 1)[1])
    assert labels["test"][key] == str(truth[index])
    png = np.asarray(Image.open(read_table(dirs["test"] / "img.scp")[key]))
    assert png.dtype == np.uint8 and np.array_equal(png, images[index])
    again = written(prepare_mnist(tmp_path / "mnist", tmp_path / "again", dev_size=10, test_size=20, seed=1))
    assert (again["dev"] / "utt2label").read_text() == (dirs["dev"] / "utt2label").read_text()
    assert not list((tmp_path / "out" / "images").glob(".*"))  # no scratch folder left behind


def test_train_present_gives_official_test(tmp_path):
    make_mnist(tmp_path / "mnist", n_t10k=30, n_train=50, gz=False)
    dirs = written(prepare_mnist(tmp_path / "mnist", tmp_path / "out", dev_size=10))
    labels = {split: check_image_dir(d) for split, d in dirs.items()}
    assert set(labels["test"]) == {f"mnist-t10k-{i:05d}" for i in range(30)}
    assert len(labels["dev"]) == 10 and len(labels["train"]) == 40
    assert all(k.startswith("mnist-train-") for k in (*labels["train"], *labels["dev"]))


def test_idx_checks_name_the_file(tmp_path):
    root = tmp_path / "mnist"
    make_mnist(root, n_t10k=10)
    with pytest.raises(SkiptoolError, match=r"t10k-images-idx3-ubyte.gz: not an IDX file of 1-d .*magic 0x00000801, found 0x00000803"):
        read_idx(root / "t10k-images-idx3-ubyte.gz", 0x00000801)
    raw = gzip.decompress((root / "t10k-images-idx3-ubyte.gz").read_bytes())
    (root / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw[:-5]))
    with pytest.raises(SkiptoolError, match=r"t10k-images-idx3-ubyte.gz: header says shape \(10, 28, 28\).*truncated"):
        prepare_mnist(root, tmp_path / "out")
    (root / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(SkiptoolError, match=r"t10k-images-idx3-ubyte.gz: cannot read"):
        prepare_mnist(root, tmp_path / "out")
    (root / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(SkiptoolError, match=r"mnist: t10k-images-idx3-ubyte\[.gz\] not found; expected"):
        prepare_mnist(root, tmp_path / "out")
    with pytest.raises(SkiptoolError, match="elsewhere: MNIST directory not found"):
        prepare_mnist(tmp_path / "elsewhere", tmp_path / "out")


def test_impossible_split_sizes_are_user_errors(tmp_path):
    make_mnist(tmp_path / "mnist", n_t10k=100)
    with pytest.raises(SkiptoolError, match="dev size 5: no stratified split of 100 images possible"):
        load_mnist_splits(tmp_path / "mnist", dev_size=5, test_size=20)
    with pytest.raises(SkiptoolError, match="test size 100: must be between 1 and"):
        load_mnist_splits(tmp_path / "mnist", dev_size=10, test_size=100)


def test_labels_must_match_images(tmp_path):
    root = tmp_path / "mnist"
    make_mnist(root, n_t10k=10)
    write_idx(root / "t10k-labels-idx1-ubyte.gz", np.zeros(9, dtype=np.uint8))
    with pytest.raises(SkiptoolError, match="9 labels for 10 images"):
        prepare_mnist(root, tmp_path / "out")


def test_real_mnist_t10k_split_is_stratified(mnist_dir):
    images, labels, keys, splits = load_mnist_splits(mnist_dir)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8 and images.max() == 255
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert [len(splits[s]) for s in ("train", "dev", "test")] == [8000, 1000, 1000]
    assert len(np.unique(np.concatenate(list(splits.values())))) == 10000
    # stratified: dev and test hold each digit in proportion to the whole set, within one image
    for split in ("dev", "test"):
        assert np.all(np.abs(np.bincount(labels[splits[split]], minlength=10) - np.bincount(labels) / 10) <= 1)
    assert keys[42] == "mnist-t10k-00042"


@pytest.mark.slow
def test_real_mnist_prepared(mnist_dir, tmp_path):
    dirs = written(prepare_mnist(mnist_dir, tmp_path / "out"))
    labels = {split: check_image_dir(d) for split, d in dirs.items()}
    assert [len(v) for v in labels.values()] == [8000, 1000, 1000]
    images, truth, keys, _ = load_mnist_splits(mnist_dir)
    key = next(iter(labels["test"]))
    png = np.asarray(Image.open(read_table(dirs["test"] / "img.scp")[key]))
    assert np.array_equal(png, images[keys.index(key)]) and labels["test"][key] == str(truth[keys.index(key)])


def test_sklearn_digits_upscaled_and_split():
    images, labels, keys, splits = load_sklearn_digits_splits(seed=0)
    assert images.shape == (1797, 28, 28) and images.dtype == np.uint8 and keys[42] == "sklearn-digits-0042"
    assert [len(splits[s]) for s in ("train", "dev", "test")] == [1437, 180, 180]
    assert len(np.unique(np.concatenate(list(splits.values())))) == 1797
    for split in ("dev", "test"):  # stratified: 18 (+-1) of each digit
        assert np.all(np.abs(np.bincount(labels[splits[split]], minlength=10) - 18) <= 1)
    # digits sit in the central 20x20 block, as in MNIST; the frame is black
    assert not images[:, :4].any() and not images[:, 24:].any() and not images[:, :, :4].any()
    assert not images[:, :, 24:].any() and images.max() == 255
    full = upscale_to_mnist(np.full((8, 8), 16.0))
    assert full[4:24, 4:24].min() == 255 and full.sum() == 255 * 400
    ramp = upscale_to_mnist(np.tile(np.arange(8) * 2.0, (8, 1)))  # 0..14 left to right
    assert np.all(np.diff(ramp[10, 4:24].astype(int)) >= 0) and ramp[10, 4] < ramp[10, 23]


@pytest.mark.slow
def test_sklearn_digits_prepared(tmp_path):
    dirs = written(prepare_sklearn_digits(tmp_path / "out", seed=0))
    labels = {split: check_image_dir(d) for split, d in dirs.items()}
    assert [len(v) for v in labels.values()] == [1437, 180, 180]
    images, _, keys, _ = load_sklearn_digits_splits(seed=0)
    key = next(iter(labels["dev"]))
    png = np.asarray(Image.open(read_table(dirs["dev"] / "img.scp")[key]))
    assert np.array_equal(png, images[keys.index(key)])


def test_existing_images_need_overwrite(tmp_path):
    make_mnist(tmp_path / "mnist", n_t10k=40)
    first = written(prepare_mnist(tmp_path / "mnist", tmp_path / "out", dev_size=10, test_size=10, quiet=True))
    first_test = set(read_table(first["test"] / "img.scp"))
    with pytest.raises(SkiptoolError, match=r"out/train: data dir already exists; pass --overwrite"):
        prepare_mnist(tmp_path / "mnist", tmp_path / "out", dev_size=10, test_size=10)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "images" / "dev").mkdir(parents=True)
    with pytest.raises(SkiptoolError, match=r"images/dev: image folder already exists; pass --overwrite"):
        prepare_mnist(tmp_path / "mnist", tmp_path / "other", dev_size=10, test_size=10)
    again = written(prepare_mnist(tmp_path / "mnist", tmp_path / "out", dev_size=10, test_size=10, seed=2,
                                  overwrite=True, quiet=True))
    new_test = set(read_table(again["test"] / "img.scp"))
    assert new_test != first_test  # another seed, another split: the old images must be gone
    assert {p.name for p in (tmp_path / "out" / "images" / "test").iterdir()} == {f"{k}.png" for k in new_test}
