"""COCO preparer (official and Karpathy splits) on tiny fixtures in the real layout; caption data dirs."""

from __future__ import annotations

import json

import pytest

from skiptool.data.corpora import PREPARERS
from skiptool.data.corpora.coco import caption_images, prepare_coco, read_captions
from skiptool.data.datadir import DataDir, validate_data_dir
from skiptool.metrics.inputs import read_multi_text
from skiptool.utils.errors import SkiptoolError
from tests.conftest import assert_user_error, run_cli
from tests.fixtures.corpora import COCO_CAPTIONS, make_coco


def test_official_split(tmp_path):
    corpus = make_coco(tmp_path)
    parts = prepare_coco(corpus, tmp_path / "out", dev_size=2)
    assert PREPARERS["coco"] is prepare_coco
    images = {split: sorted(set(caption_images(dd).values())) for split, dd in parts.items()}
    assert images == {"train": ["coco000000000009", "coco000000000025", "coco000000000030"],
                      "dev": ["coco000000000042", "coco000000000073"], "test": ["coco000000000074", "coco000000000090"]}
    for split in ("train", "dev", "test"):
        assert validate_data_dir(tmp_path / "out" / split, quiet=True) == []
    train = DataDir.load(tmp_path / "out" / "train")
    assert len(train) == 15  # 5 captions per image, the sixth of image 9 left out
    assert train.tables["text"]["coco000000000009-c1"] == COCO_CAPTIONS[0]  # annotation-id order, whitespace cleaned
    assert train.tables["text"]["coco000000000009-c5"] == COCO_CAPTIONS[4]
    assert train.image_paths()["coco000000000025-c3"] == (corpus / "train2014" / "COCO_train2014_000000000025.jpg").resolve()
    refs = read_captions(tmp_path / "out" / "test")
    assert refs["coco000000000090"] == list(COCO_CAPTIONS[:5])
    assert read_multi_text([tmp_path / "out" / "test" / "captions"]) == refs  # what `skiptool score --metric bleu` reads


def test_karpathy_split_and_captions_per_image(tmp_path):
    corpus = make_coco(tmp_path, karpathy=True)
    parts = prepare_coco(corpus, tmp_path / "out", captions_per_image=3)  # auto: dataset_coco.json is there
    images = {split: sorted(set(caption_images(dd).values())) for split, dd in parts.items()}
    assert images["train"] == ["coco000000000009", "coco000000000025", "coco000000000030"]  # train + restval
    assert images["dev"] == ["coco000000000042", "coco000000000090"] and len(parts["test"]) == 6
    with pytest.raises(SkiptoolError, match="data dir already exists; pass --overwrite"):
        prepare_coco(corpus, tmp_path / "out")
    parts = prepare_coco(corpus, tmp_path / "out", split="official", dev_size=1, overwrite=True)
    assert len(set(caption_images(parts["test"]).values())) == 3


def test_coco_2017_layout_with_json_in_root_and_images_folder(tmp_path):
    corpus = make_coco(tmp_path, year=2017)
    for path in (corpus / "annotations").iterdir():
        path.rename(corpus / path.name)
    (corpus / "images").mkdir()
    for split in ("train2017", "val2017"):
        (corpus / split).rename(corpus / "images" / split)
    parts = prepare_coco(corpus, tmp_path / "out", dev_size=1)
    assert parts["dev"].image_paths()["coco000000000042-c1"].name == "000000000042.jpg"


@pytest.mark.parametrize("damage, needle", [
    ("no_dir", "COCO dir not found; give the folder holding annotations/captions_{train,val}<year>.json"),
    ("no_json", "no captions_train<year>.json and captions_val<year>.json"),
    ("bad_json", "captions_val2014.json: cannot read as JSON"),
    ("no_field", "captions_val2014.json: not a COCO caption file (bad or missing field 'annotations')"),
    ("no_image", "COCO_val2014_000000000073.jpg: image listed in captions_val2014.json not found"),
    ("dev_size", "--dev-size 4: captions_val2014.json has 4 captioned images; choose 1 to 3"),
    ("karpathy", "dataset_coco.json: not found; --split karpathy needs dataset_coco.json"),
])
def test_wrong_layout_is_one_clear_error(tmp_path, damage, needle):
    corpus = make_coco(tmp_path)
    val = corpus / "annotations" / "captions_val2014.json"
    split, dev_size = "auto", 2
    if damage == "no_dir":
        corpus = tmp_path / "nowhere"
    elif damage == "no_json":
        val.unlink()
    elif damage == "bad_json":
        val.write_text("{not json")
    elif damage == "no_field":
        val.write_text(json.dumps({"images": []}))
    elif damage == "no_image":
        (corpus / "val2014" / "COCO_val2014_000000000073.jpg").unlink()
    elif damage == "dev_size":
        dev_size = 4
    else:
        split = "karpathy"
    with pytest.raises(SkiptoolError, match=None) as err:
        prepare_coco(corpus, tmp_path / "out", split=split, dev_size=dev_size)
    assert needle in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_cli(tmp_path):
    corpus = make_coco(tmp_path)
    result = run_cli("prep", "coco", corpus, tmp_path / "out", "--split", "official", "--dev-size", "2")
    assert result.code == 0, result.err
    assert f"wrote {tmp_path / 'out' / 'train'}: 3 images, 15 captions" in result.out
    assert_user_error(run_cli("prep", "coco", tmp_path / "none", tmp_path / "o2"), "COCO dir not found")
