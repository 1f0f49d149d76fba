"""Feature-dir datasets, same-class pairing redrawn per epoch, collate padding, and the errors
a user can cause with a wrong or broken feature dir."""

from __future__ import annotations

from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml

from skiptool.data.datasets import FeatsDataset, ImageFeatsDataset, SameClassPairs, collate, data_dir
from skiptool.utils.errors import SkiptoolError
from tests.fixtures.featdirs import write_image_dir, write_speech_dir


@pytest.fixture(scope="module")
def speech_dir(tmp_path_factory) -> Path:
    return write_speech_dir(tmp_path_factory.mktemp("f") / "speech", per_class=5, classes=3, dim=6)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory) -> Path:
    return write_image_dir(tmp_path_factory.mktemp("f") / "image", per_class=4, classes=3, side=8, channels=3)


def test_feats_dataset_reads_features_and_labels(speech_dir):
    ds = FeatsDataset(speech_dir)
    reference = dict(kaldiio.load_scp(str(speech_dir / "feats.scp")))
    assert len(ds) == 15 and ds.dim == 6 and ds.keys == sorted(reference)
    item = ds[4]
    assert item["key"] == ds.keys[4] and item["label"] == int(item["key"][-1])
    assert item["speech"].dtype == torch.float32
    assert np.array_equal(item["speech"].numpy(), reference[item["key"]])
    assert "label" not in FeatsDataset(speech_dir, labels=False)[0]


def test_feats_dataset_numbers_a_table_of_names_by_the_class_list(speech_dir):
    speakers = [f"spk{i:02d}" for i in range(5)][::-1]  # ids follow the list, not the sort order
    ds = FeatsDataset(speech_dir, labels=True, label_table="utt2spk", classes=speakers)
    assert [speakers[label] for label in ds.labels] == [key.split("_")[0] for key in ds.keys]
    with pytest.raises(SkiptoolError, match=r"utt2spk: 'spk04' of 'spk04_0' is not one of the model's 4 classes"):
        FeatsDataset(speech_dir, labels=True, label_table="utt2spk", classes=speakers[1:])
    with pytest.raises(SkiptoolError, match=r"utt2spk: label 'spk00' of 'spk00_0' is not an integer class id; "
                                            r"a table of names needs the list of classes"):
        FeatsDataset(speech_dir, labels=True, label_table="utt2spk")
    with pytest.raises(SkiptoolError, match=r"utt2emo: not found"):
        FeatsDataset(speech_dir, labels=True, label_table="utt2emo")


def test_image_dataset_unfolds_interleaved_channels(image_dir):
    ds = ImageFeatsDataset(image_dir)
    assert ds.shape == (3, 8, 8) and len(ds) == 12
    key = ds.keys[0]
    matrix = kaldiio.load_scp(str(image_dir / "feats.scp"))[key]  # (H, W*C), pixel-major
    image = ds[0]["image"]
    # pixel (row 2, column 5) of channel 1 sits at matrix column 5 * C + 1
    assert image[1, 2, 5].item() == matrix[2, 5 * 3 + 1]
    assert np.array_equal(image.permute(1, 2, 0).reshape(8, 24).numpy(), matrix)


def test_same_class_pairs_redrawn_per_epoch_and_reproducible(speech_dir, tmp_path):
    images_dir = write_image_dir(tmp_path / "many", per_class=20, classes=3)
    speech, images = FeatsDataset(speech_dir), ImageFeatsDataset(images_dir)
    pairs = SameClassPairs(speech, images, seed=5)
    assert len(pairs) == len(speech)
    for epoch in (0, 1, 2):
        pairs.set_epoch(epoch)
        for i in range(len(pairs)):
            item = pairs[i]
            assert images.labels[images.keys.index(item["image_key"])] == item["label"] == speech.labels[i]
            assert torch.equal(item["image"], images[images.keys.index(item["image_key"])]["image"])
    pairs.set_epoch(1)
    epoch1 = pairs.pairs.copy()
    pairs.set_epoch(2)
    assert not np.array_equal(epoch1, pairs.pairs)  # a new draw every epoch
    again = SameClassPairs(speech, images, seed=5)
    again.set_epoch(1)
    assert np.array_equal(epoch1, again.pairs)  # ... that depends on (seed, epoch) only
    other_seed = SameClassPairs(speech, images, seed=6)
    other_seed.set_epoch(1)
    assert not np.array_equal(epoch1, other_seed.pairs)


def test_same_class_pairs_add_another_utterance_of_the_speaker(speech_dir, tmp_path):
    images_dir = write_image_dir(tmp_path / "many", per_class=20, classes=3)
    speech, images = FeatsDataset(speech_dir), ImageFeatsDataset(images_dir)
    speakers = [key.split("_")[0] for key in speech.keys]  # 5 speakers, 3 utterances each
    pairs = SameClassPairs(speech, images, seed=5, speakers=speakers)
    assert "style_speech" not in SameClassPairs(speech, images, seed=5)[0]
    draws = []
    for epoch in (0, 1, 2):
        pairs.set_epoch(epoch)
        for i in range(len(pairs)):
            style = int(pairs.style[i])
            assert style != i and speakers[style] == speakers[i]
            assert torch.equal(pairs[i]["style_speech"], speech[style]["speech"])
        draws.append(pairs.style.copy())
        plain = SameClassPairs(speech, images, seed=5)
        plain.set_epoch(epoch)
        assert np.array_equal(plain.pairs, pairs.pairs)  # the images do not change with speakers
    assert not np.array_equal(draws[1], draws[2])
    alone = SameClassPairs(speech, images, speakers=[str(i) for i in range(len(speech))])
    assert np.array_equal(alone.style, np.arange(len(speech)))  # one utterance per speaker: itself
    batch = collate([pairs[i] for i in range(4)])
    assert batch["style_speech_lengths"].tolist() == [speech[int(pairs.style[i])]["speech"].shape[0] for i in range(4)]
    with pytest.raises(ValueError, match="2 names for 15 utterances"):
        SameClassPairs(speech, images, speakers=["a", "b"])


def test_pairing_errors(speech_dir, tmp_path):
    two_classes = write_image_dir(tmp_path / "img2", per_class=2, classes=2)
    with pytest.raises(SkiptoolError, match=r"img2: no image of class 2"):
        SameClassPairs(FeatsDataset(speech_dir), ImageFeatsDataset(two_classes))
    with pytest.raises(SkiptoolError, match=r"utt2label: not found; pairing by class"):
        SameClassPairs(FeatsDataset(speech_dir, labels=False), ImageFeatsDataset(two_classes))


def test_collate_pads_speech_and_stacks_the_rest(speech_dir, image_dir):
    speech = FeatsDataset(speech_dir)
    items = [speech[i] for i in range(4)]
    batch = collate(items)
    lengths = [item["speech"].shape[0] for item in items]
    assert batch["speech"].shape == (4, max(lengths), 6)
    assert batch["speech_lengths"].tolist() == lengths and batch["speech_lengths"].dtype == torch.long
    assert batch["label"].tolist() == [item["label"] for item in items]
    for i, item in enumerate(items):
        assert torch.equal(batch["speech"][i, :lengths[i]], item["speech"])
        assert not batch["speech"][i, lengths[i]:].any()
    assert "key" not in batch
    images = collate([ImageFeatsDataset(image_dir)[i] for i in range(3)])
    assert images["image"].shape == (3, 3, 8, 8) and set(images) == {"image", "label"}


def test_wrong_or_broken_feature_dirs(speech_dir, image_dir, tmp_path):
    with pytest.raises(SkiptoolError, match=r"nowhere: feature dir not found"):
        FeatsDataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SkiptoolError, match=r"empty/feats.scp: not found"):
        FeatsDataset(tmp_path / "empty")
    with pytest.raises(SkiptoolError, match=r"holds image features.*image=DIR"):
        FeatsDataset(image_dir)
    with pytest.raises(SkiptoolError, match=r"conf.yaml: no height, width, channels.*speech=DIR"):
        ImageFeatsDataset(speech_dir)

    broken = write_speech_dir(tmp_path / "broken", per_class=2)
    ark = broken / "feats.ark"
    ark.write_bytes(ark.read_bytes()[:40])  # truncated, as by a full disk
    with pytest.raises(SkiptoolError, match=r"broken/feats.scp: cannot read the features.*re-run `skiptool feats`"):
        FeatsDataset(broken)

    unlabelled = write_speech_dir(tmp_path / "unlabelled", per_class=2)
    (unlabelled / "utt2label").unlink()
    assert FeatsDataset(unlabelled).labels is None
    with pytest.raises(SkiptoolError, match=r"unlabelled/utt2label: not found"):
        FeatsDataset(unlabelled, labels=True)
    (unlabelled / "utt2label").write_text("spk00_0 zero\n")
    with pytest.raises(SkiptoolError, match=r"utt2label: label 'zero' of 'spk00_0' is not an integer"):
        FeatsDataset(unlabelled)
    (unlabelled / "utt2label").write_text("spk00_0 0\n")
    with pytest.raises(SkiptoolError, match=r"utt2label: no label for 'spk00_1'"):
        FeatsDataset(unlabelled)

    wrong_size = write_image_dir(tmp_path / "wrong", per_class=1, side=8)
    (wrong_size / "conf.yaml").write_text(yaml.safe_dump({"type": "image", "height": 28, "width": 28, "channels": 1}))
    with pytest.raises(SkiptoolError, match=r"has shape \(8, 8\), expected \(28, 28\)"):
        ImageFeatsDataset(wrong_size)


def test_data_dir_names_the_missing_flag():
    assert data_dir({"speech": Path("a")}, "speech", True, "m") == Path("a")
    with pytest.raises(SkiptoolError, match=r"--dev-data image=DIR: missing; model 'pvae' needs"):
        data_dir({"speech": Path("a")}, "image", False, "pvae")
