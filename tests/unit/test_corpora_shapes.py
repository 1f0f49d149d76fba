"""The built-in *shapes* image-caption corpus: drawing, captions, data dirs, determinism."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from skiptool.data.corpora import PREPARERS
from skiptool.data.corpora.coco import caption_images, read_captions
from skiptool.data.corpora.shapes import (COLOUR_WORDS, COLOURS, MIN_CONTRAST, RELATION_WORDS, SHAPE_WORDS, Scene,
                                          Thing, _luma, caption_scene, draw_scene, make_image, prepare_shapes,
                                          render_scene)
from skiptool.data.datadir import DataDir, validate_data_dir
from skiptool.utils.errors import SkiptoolError
from tests.conftest import assert_user_error, run_cli


def _digest(directory) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*.png")):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_prepare_shapes(tmp_path):
    parts = prepare_shapes(tmp_path / "a", num_train=6, num_dev=2, num_test=3, image_size=32, seed=3, quiet=True)
    assert PREPARERS["shapes"] is prepare_shapes
    assert [len(parts[s]) for s in ("train", "dev", "test")] == [30, 10, 15]
    for split in ("train", "dev", "test"):
        assert validate_data_dir(tmp_path / "a" / split, quiet=True) == []
        assert sorted(p.name for p in (tmp_path / "a" / split).iterdir()) == ["captions", "img.scp", "text"]
    test = DataDir.load(tmp_path / "a" / "test")
    assert sorted(set(caption_images(test).values())) == ["shapes000008", "shapes000009", "shapes000010"]
    refs = read_captions(tmp_path / "a" / "test")
    for image, captions in refs.items():
        assert len(set(captions)) == 5 and all(c[0].isupper() and c.endswith(".") for c in captions)
        assert [test.tables["text"][f"{image}-c{k}"] for k in range(1, 6)] == captions
    with Image.open(test.image_paths()["shapes000009-c2"]) as image:
        assert image.size == (32, 32) and image.mode == "RGB"

    prepare_shapes(tmp_path / "b", num_train=9, num_dev=1, num_test=1, image_size=32, seed=3, quiet=True)
    first = sorted((tmp_path / "a" / "images" / "train").iterdir())
    assert [p.read_bytes() for p in first] == [(tmp_path / "b" / "images" / "train" / p.name).read_bytes() for p in first]
    with pytest.raises(SkiptoolError, match="data dir already exists; pass --overwrite"):
        prepare_shapes(tmp_path / "a", num_train=6, num_dev=2, num_test=3, image_size=32, seed=3)
    before = _digest(tmp_path / "a")
    prepare_shapes(tmp_path / "a", num_train=6, num_dev=2, num_test=3, image_size=32, seed=3, overwrite=True, quiet=True)
    assert _digest(tmp_path / "a") == before  # same arguments, same bytes
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["dev", "images", "test", "train"]  # no temporaries


def test_scenes_are_varied_and_in_contrast():
    scenes = [draw_scene(np.random.default_rng([0, i])) for i in range(300)]
    assert {len(s.things) for s in scenes} == {1, 2, 3}
    things = [t for s in scenes for t in s.things]
    assert {t.shape for t in things} == set(SHAPE_WORDS) and {t.colour for t in things} == set(COLOURS)
    assert {t.size for t in things} == {"small", "medium", "large"} and {s.background for s in scenes} == {"light", "dark"}
    for s in scenes:
        for t in s.things:
            assert t.radius <= t.x <= 1 - t.radius and t.radius <= t.y <= 1 - t.radius
            for c in s.colours:
                assert abs(_luma(COLOURS[t.colour]) - _luma(c)) >= MIN_CONTRAST - 1e-9
        for i, a in enumerate(s.things):
            for b in s.things[i + 1:]:
                assert np.hypot(a.x - b.x, a.y - b.y) > a.radius + b.radius


def test_render_draws_the_objects_where_the_scene_says():
    scene = Scene((Thing("square", "red", "large", 0.3, 0.3, 0.2, 0.0), Thing("circle", "blue", "small", 0.75, 0.75, 0.1, 0.0)),
                  "light", ((200, 200, 200), (200, 200, 200)), 0.0, 0.0)
    image = render_scene(scene, 64, np.random.default_rng(0)).astype(int)
    assert image.shape == (64, 64, 3)
    assert np.abs(image[19, 19] - COLOURS["red"]).max() <= 2 and np.abs(image[48, 48] - COLOURS["blue"]).max() <= 2
    assert np.abs(image[5, 60] - 200).max() <= 2 and np.abs(image[60, 5] - 200).max() <= 2


def test_captions_name_the_objects_and_their_relation():
    one = Scene((Thing("star", "purple", "small", 0.2, 0.2, 0.1, 0.0),), "dark", ((40, 40, 40),) * 2, 0.0, 0.0)
    for seed in range(20):
        for caption in caption_scene(one, np.random.default_rng(seed)):
            text = caption.lower()
            assert "star" in text and any(w in text for w in COLOUR_WORDS["purple"]), caption
    left, right = Thing("circle", "red", "small", 0.2, 0.5, 0.1, 0.0), Thing("heart", "green", "large", 0.8, 0.55, 0.2, 0.0)
    pair = Scene((left, right), "light", ((210, 210, 210),) * 2, 0.0, 0.0)
    for seed in range(30):
        for caption in caption_scene(pair, np.random.default_rng(seed), count=7):
            lower = caption.lower()
            for side, other in (("left", "right"), ("right", "left")):
                for phrase in RELATION_WORDS[side]:
                    if f"circle {phrase} " in lower or f"dot {phrase} " in lower or f"disk {phrase} " in lower:
                        assert phrase in RELATION_WORDS["left"], caption
            assert " above " not in lower and " below " not in lower, caption
    _, captions, scene = make_image(5, 0, 32)
    assert len(set(captions)) == 5
    assert make_image(5, 0, 128)[1:] == (captions, scene)  # the image size changes only the pixels


def test_bad_arguments(tmp_path):
    with pytest.raises(SkiptoolError, match="--num-dev 0: need at least 1 image"):
        prepare_shapes(tmp_path / "x", num_dev=0)
    with pytest.raises(SkiptoolError, match="--image-size 8: must be 16 to 1024"):
        prepare_shapes(tmp_path / "x", image_size=8)
    with pytest.raises(SkiptoolError, match="--captions-per-image 8: must be 1 to 7"):
        prepare_shapes(tmp_path / "x", captions_per_image=8)
    assert not (tmp_path / "x").exists()


def test_cli(tmp_path):
    result = run_cli("prep", "shapes", tmp_path / "s", "--num-train", "4", "--num-dev", "1", "--num-test", "2",
                     "--image-size", "24", "--captions-per-image", "3")
    assert result.code == 0, result.err
    assert f"wrote {tmp_path / 's' / 'train'}: 4 images, 12 captions" in result.out
    assert_user_error(run_cli("prep", "shapes", tmp_path / "s", "--num-train", "4"), "already exists; pass --overwrite")
