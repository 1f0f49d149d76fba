"""PSNR: known MSE, paired and nearest-reference (paper 001) modes, image loading."""

import math

import kaldiio
import numpy as np
import pytest
from PIL import Image

from skiptool.metrics.image import psnr, psnr_nearest, psnr_paired
from skiptool.metrics.inputs import load_images
from skiptool.utils.errors import SkiptoolError


def test_psnr_of_a_known_mse():
    a = np.zeros((8, 8))
    assert psnr(a, a + 0.1) == pytest.approx(20.0)  # MSE 0.01 -> 10 log10(1 / 0.01)
    assert psnr(a, a + 10, data_range=255) == pytest.approx(10 * math.log10(255 ** 2 / 100))
    assert psnr(a, a) == math.inf


def test_paired_psnr_averages_per_key_and_rejects_strays():
    ref = {"a": np.zeros((4, 4)), "b": np.zeros((4, 4)), "c": np.zeros((4, 4))}
    hyp = {"a": np.full((4, 4), 0.1), "b": np.full((4, 4), 0.01)}
    result = psnr_paired(ref, hyp)
    assert result.per_key == pytest.approx({"a": 20.0, "b": 40.0})
    assert result.mean_psnr == pytest.approx(30.0) and result.missing == ("c",)
    with pytest.raises(SkiptoolError, match="zz"):
        psnr_paired(ref, {"zz": np.zeros((4, 4))})


def test_nearest_reference_picks_the_closest_image():
    refs = {"dark": np.full((5, 5), 0.1), "mid": np.full((5, 5), 0.5), "bright": np.full((5, 5), 0.9)}
    result = psnr_nearest(refs, {"g": np.full((5, 5), 0.45)})
    assert result.nearest == {"g": "mid"}
    assert result.per_key["g"] == pytest.approx(10 * math.log10(1 / 0.05 ** 2))


def test_nearest_agrees_with_brute_force_across_chunks():
    rng = np.random.default_rng(0)
    refs = {f"r{i}": rng.random((6, 6)).astype(np.float32) for i in range(40)}
    hyps = {f"g{i}": rng.random((6, 6)).astype(np.float32) for i in range(9)}
    hyps["copy"] = refs["r7"].copy()
    result = psnr_nearest(refs, hyps, chunk=4)
    for key, image in hyps.items():
        assert result.per_key[key] == pytest.approx(max(psnr(image, r) for r in refs.values()))
    assert result.per_key["copy"] == math.inf and result.nearest["copy"] == "r7" and result.identical == 1


def test_load_images_from_png_folder_img_scp_and_kaldiio(tmp_path):
    pixels = np.arange(16, dtype=np.uint8).reshape(4, 4) * 16
    folder = tmp_path / "png"
    folder.mkdir()
    Image.fromarray(pixels).save(folder / "x.png")
    Image.fromarray(np.dstack([pixels] * 3 + [np.full_like(pixels, 255)]), "RGBA").save(folder / "y.png")
    images = load_images(folder)
    assert images["x"] == pytest.approx(pixels / 255) and images["y"].shape == (4, 4, 3)  # alpha dropped
    (tmp_path / "img.scp").write_text(f"k1 {folder / 'x.png'}\n")
    assert load_images(tmp_path / "img.scp")["k1"] == pytest.approx(pixels / 255)
    kaldiio.save_ark(str(tmp_path / "f.ark"), {"k1": (pixels / 255).astype(np.float32)},
                     scp=str(tmp_path / "feats.scp"))
    assert load_images(tmp_path / "feats.scp")["k1"] == pytest.approx(pixels / 255)


def test_float_images_outside_unit_range_need_data_range(tmp_path):
    np.savez(tmp_path / "big.npz", k=np.full((3, 3), 200.0))
    with pytest.raises(SkiptoolError, match="--data-range 255"):
        load_images(tmp_path / "big.npz")
    assert load_images(tmp_path / "big.npz", data_range=255)["k"] == pytest.approx(np.full((3, 3), 200 / 255))


def test_corrupt_and_missing_images_name_the_key(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    (tmp_path / "img.scp").write_text(f"k1 {tmp_path / 'bad.png'}\n")
    with pytest.raises(SkiptoolError, match="k1 .*cannot read image"):
        load_images(tmp_path / "img.scp")
    (tmp_path / "img.scp").write_text(f"k2 {tmp_path / 'gone.png'}\n")
    with pytest.raises(SkiptoolError, match="k2 .*not found"):
        load_images(tmp_path / "img.scp")
