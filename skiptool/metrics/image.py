"""PSNR between images, paired by key or against the nearest reference image (paper 001).

All images are float arrays in [0, 1] (see `inputs.load_images`), so the peak is 1 and
PSNR = 10 log10(1 / MSE), MSE the mean over every pixel and channel. Written by hand: it is one
line, and neither torchaudio nor scikit-learn has it (scikit-image, which does, is not a
dependency); the unit test checks it against a known MSE.

Paper 001 (Chaudhury et al. 2017, Eq. 3) scores a generated image against the test image closest
to it in Euclidean distance, i.e. the reference with the smallest MSE, which is the one giving
the highest PSNR; the table reports the mean over generated images. Eq. 3 prints the squared
norm without dividing by the pixel count, but the reported 14-20 dB for [0, 1] MNIST digits only
fit the per-pixel mean (the summed norm would give negative dB), so the mean is used here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from skiptool.metrics.inputs import check_hyp_keys
from skiptool.utils.errors import SkiptoolError
from skiptool.utils.progress import track


@dataclass(frozen=True)
class PsnrResult:
    mean_psnr: float  # dB, over scored images; inf if any image equals its reference exactly
    per_key: dict[str, float]
    nearest: dict[str, str] | None  # generated key -> nearest reference key (`--nearest`)
    num_refs: int
    missing: tuple[str, ...]  # paired mode: reference keys with no generated image

    @property
    def identical(self) -> int:
        return sum(math.isinf(v) for v in self.per_key.values())

    def summary(self) -> dict[str, str]:
        finite = [v for v in self.per_key.values() if math.isfinite(v)]
        return {
            "metric": "PSNR (nearest ref)" if self.nearest is not None else "PSNR",
            "Images": str(len(self.per_key)), "Refs": str(self.num_refs),
            "PSNR (dB)": f"{self.mean_psnr:.2f}",
            "min": f"{min(finite):.2f}" if finite else "-", "max": f"{max(finite):.2f}" if finite else "-",
            "identical": str(self.identical),
        }


def psnr(image: np.ndarray, reference: np.ndarray, data_range: float = 1.0) -> float:
    """PSNR in dB of `image` against `reference` (same shape, peak value `data_range`)."""
    image, reference = np.asarray(image, np.float64), np.asarray(reference, np.float64)
    if image.shape != reference.shape:
        raise SkiptoolError(f"PSNR needs images of one shape, got {image.shape} and {reference.shape}")
    mse = float(np.mean((image - reference) ** 2))
    return _psnr_from_mse(mse, data_range)


def _psnr_from_mse(mse: float, data_range: float = 1.0) -> float:
    return math.inf if mse == 0 else 10.0 * math.log10(data_range ** 2 / mse)


def psnr_paired(ref: Mapping[str, np.ndarray], hyp: Mapping[str, np.ndarray],
                ref_name: str = "ref", hyp_name: str = "hyp") -> PsnrResult:
    """PSNR of each generated image against the reference image with the same key."""
    if not hyp:
        raise SkiptoolError(f"{hyp_name}: no images to score")
    missing = check_hyp_keys(ref, hyp, hyp_name, ref_name)
    per_key = {}
    for key, image in hyp.items():
        if image.shape != ref[key].shape:
            raise SkiptoolError(f"{hyp_name}: '{key}' has shape {image.shape} but its reference has "
                                f"{ref[key].shape}; resize one side to the other")
        per_key[key] = psnr(image, ref[key])
    return PsnrResult(_mean(per_key), per_key, None, len(ref), tuple(missing))


def psnr_nearest(refs: Mapping[str, np.ndarray], hyp: Mapping[str, np.ndarray],
                 chunk: int = 256, shortlist: int = 4) -> PsnrResult:
    """Paper 001's PSNR: each generated image against the reference closest to it (max PSNR)."""
    if not hyp or not refs:
        raise SkiptoolError("PSNR against the nearest reference needs generated and reference images")
    ref_keys, hyp_keys = list(refs), list(hyp)
    shapes = {a.shape for a in refs.values()} | {a.shape for a in hyp.values()}
    if len(shapes) > 1:
        raise SkiptoolError(f"images of different shapes {sorted(shapes)}; the nearest-reference PSNR "
                            f"needs one shape throughout (resize first)")
    ref_mat = torch.from_numpy(np.stack([refs[k].reshape(-1) for k in ref_keys]).astype(np.float32))
    ref_sq = (ref_mat ** 2).sum(1)
    per_key, nearest = {}, {}
    shortlist = min(shortlist, len(ref_keys))
    starts = range(0, len(hyp_keys), chunk)
    for start in track(starts, total=len(starts), description="nearest-reference PSNR", unit="chunk"):
        keys = hyp_keys[start:start + chunk]
        batch = torch.from_numpy(np.stack([hyp[k].reshape(-1) for k in keys]).astype(np.float32))
        # Squared distances via |a|^2 + |b|^2 - 2ab in float32 pick a shortlist; the winner is then
        # recomputed exactly in float64, so rounding can neither pick a wrong near-tie nor hide a 0.
        approx = (batch ** 2).sum(1, keepdim=True) + ref_sq[None, :] - 2.0 * batch @ ref_mat.T
        candidates = approx.topk(shortlist, dim=1, largest=False).indices.numpy()
        for row, key in enumerate(keys):
            image = hyp[key].astype(np.float64).reshape(-1)
            mses = [(float(np.mean((image - ref_mat[c].numpy().astype(np.float64)) ** 2)), c)
                    for c in candidates[row]]
            mse, best = min(mses)
            per_key[key] = _psnr_from_mse(mse)
            nearest[key] = ref_keys[best]
    return PsnrResult(_mean(per_key), per_key, nearest, len(ref_keys), ())


def _mean(values: Mapping[str, float]) -> float:
    return float(np.mean(list(values.values())))
