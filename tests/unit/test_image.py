"""Image features: mode conversions, resizing, the (H, W*C) storage layout and bad files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from skiptool.data.image import ImageFeatsConfig, image_to_matrix, load_image, load_image_feats
from skiptool.utils.errors import SkiptoolError

GRAY = ImageFeatsConfig()
RGB = ImageFeatsConfig(channels=3)


def gradient(h: int = 28, w: int = 28) -> np.ndarray:
    return (np.arange(h * w).reshape(h, w) % 256).astype(np.uint8)


def test_gray_png_is_scaled_to_unit_range(tmp_path):
    Image.fromarray(gradient()).save(tmp_path / "g.png")
    arr = load_image(tmp_path / "g.png", GRAY)
    assert arr.shape == (28, 28, 1) and arr.dtype == np.float32
    np.testing.assert_allclose(arr[..., 0], gradient() / 255.0, atol=1e-7)


def test_rgb_to_gray_uses_luma_and_gray_to_rgb_repeats(tmp_path):
    rgb = np.zeros((28, 28, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 255, 128, 0
    Image.fromarray(rgb).save(tmp_path / "c.png")
    gray = load_image(tmp_path / "c.png", GRAY)
    np.testing.assert_allclose(gray, 0.299 + 0.587 * 128 / 255, atol=1e-6)
    Image.fromarray(gradient()).save(tmp_path / "g.png")
    as_rgb = load_image(tmp_path / "g.png", RGB)
    assert as_rgb.shape == (28, 28, 3) and np.array_equal(as_rgb[..., 0], as_rgb[..., 2])


def test_rgba_is_composited_over_the_background(tmp_path):
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[:14, :, 3] = 255  # top half opaque white, bottom half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    black = load_image(tmp_path / "a.png", GRAY)
    white = load_image(tmp_path / "a.png", ImageFeatsConfig(alpha_background=1.0))
    assert np.allclose(black[:14], 1) and np.allclose(black[14:], 0) and np.allclose(white, 1)
    Image.fromarray(rgba[..., [0, 3]], "LA").save(tmp_path / "la.png")
    np.testing.assert_allclose(load_image(tmp_path / "la.png", GRAY), black, atol=1e-6)


def test_palette_bilevel_and_16_bit(tmp_path):
    Image.fromarray(np.stack([gradient()] * 3, -1)).convert("P").save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png", GRAY).shape == (28, 28, 1)
    Image.fromarray(gradient() > 100).save(tmp_path / "b.png")
    assert set(np.unique(load_image(tmp_path / "b.png", GRAY))) <= {0.0, 1.0}
    Image.fromarray((gradient().astype(np.uint16) * 257)).save(tmp_path / "w.png")
    wide = Image.open(tmp_path / "w.png")
    assert wide.mode.startswith("I")
    np.testing.assert_allclose(load_image(tmp_path / "w.png", GRAY)[..., 0], gradient() / 255.0, atol=1e-6)


def test_resize_to_the_configured_size(tmp_path):
    Image.fromarray(np.full((56, 40), 200, np.uint8)).save(tmp_path / "big.png")
    arr = load_image(tmp_path / "big.png", ImageFeatsConfig(height=128, width=128, channels=3))
    assert arr.shape == (128, 128, 3) and np.allclose(arr, 200 / 255, atol=1e-5)
    assert 0.0 <= arr.min() and arr.max() <= 1.0


def test_matrix_layout_round_trip():
    rng = np.random.default_rng(0)
    hwc = rng.random((5, 7, 3)).astype(np.float32)
    matrix = image_to_matrix(hwc)
    assert matrix.shape == (5, 21)
    np.testing.assert_array_equal(matrix[2, 3 * 3 + 1], hwc[2, 3, 1])  # row-major H, W, C
    chw = load_image_feats(matrix, 5, 7, 3)
    np.testing.assert_array_equal(chw, hwc.transpose(2, 0, 1))
    with pytest.raises(SkiptoolError, match="expected \\(5, 7\\)"):
        load_image_feats(matrix, 5, 7, 1)


def test_missing_and_corrupt_images(tmp_path):
    with pytest.raises(SkiptoolError, match=r"img1 \(.*nope.png\): image file not found"):
        load_image(tmp_path / "nope.png", GRAY, "img1")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken" * 10)
    with pytest.raises(SkiptoolError, match="cannot read image"):
        load_image(tmp_path / "bad.png", GRAY, "img2")
    Image.fromarray(gradient()).save(tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(SkiptoolError, match="cannot read image"):
        load_image(tmp_path / "cut.png", GRAY, "img3")
