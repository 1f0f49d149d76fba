"""Training-time augmentation (skiptool/nn/augment.py): random_shift keeps content within its
bounds; RandomAffine is the identity in eval mode and at zero ranges, draws within its ranges,
independently per image, reproducibly from torch's seed."""

import pytest
import torch

from skiptool.nn import RandomAffine
from skiptool.nn.augment import random_shift


def blob(batch: int = 8, side: int = 28) -> torch.Tensor:
    """A bright square off-centre, so that shifts and rotations move its centre of mass."""
    images = torch.zeros(batch, 1, side, side)
    images[:, :, 6:12, 16:22] = 1.0
    return images


def centre_of_mass(images: torch.Tensor) -> torch.Tensor:
    """(B, 2) as (x, y) in pixels."""
    side = images.size(-1)
    coords = torch.arange(side, dtype=images.dtype)
    mass = images.sum(dim=(1, 2, 3))
    x = (images.sum(dim=(1, 2)) * coords).sum(-1) / mass
    y = (images.sum(dim=(1, 3)) * coords).sum(-1) / mass
    return torch.stack([x, y], -1)


def test_identity_in_eval_mode_and_at_zero_ranges():
    images = blob()
    augment = RandomAffine(15, 0.1, 0.1).eval()
    assert torch.equal(augment(images), images)
    assert not RandomAffine().active
    assert torch.equal(RandomAffine().train()(images), images)


def test_translation_moves_each_image_within_range():
    torch.manual_seed(0)
    images = blob(64)
    shifted = RandomAffine(translate=0.1).train()(images)
    moved = centre_of_mass(shifted) - centre_of_mass(images)
    limit = 0.1 * 28
    assert moved.abs().max() <= limit + 0.5  # bilinear resampling blurs by under a pixel
    assert moved.abs().max() > limit / 2  # the draws use the range
    assert moved.std(0).min() > 0.5  # drawn per image, not one shift for the batch
    assert shifted.shape == images.shape and 0 <= shifted.min() and shifted.max() <= 1


def test_rotation_and_scale_keep_the_blob_and_move_it():
    torch.manual_seed(1)
    images = blob(32)
    rotated = RandomAffine(degrees=20).train()(images)
    mass = rotated.sum(dim=(1, 2, 3))
    assert torch.allclose(mass, images.sum(dim=(1, 2, 3)), rtol=0.1)  # a rotation keeps the area
    assert (centre_of_mass(rotated) - centre_of_mass(images)).norm(dim=-1).max() > 0.5
    zoomed = RandomAffine(scale=0.3).train()(images).sum(dim=(1, 2, 3)) / images.sum(dim=(1, 2, 3))
    assert zoomed.min() < 0.95 and zoomed.max() > 1.05  # area scales with zoom^2 both ways


def test_reproducible_from_the_torch_seed():
    augment = RandomAffine(10, 0.1, 0.1).train()
    torch.manual_seed(3)
    first = augment(blob())
    torch.manual_seed(3)
    assert torch.equal(augment(blob()), first)


@pytest.mark.parametrize("kwargs", [dict(degrees=-1), dict(translate=0.5), dict(scale=1.0), dict(translate=-0.1)])
def test_bad_ranges_are_refused(kwargs):
    with pytest.raises(ValueError, match="RandomAffine"):
        RandomAffine(**kwargs)


def test_random_shift_moves_content_within_bounds():
    torch.manual_seed(1)
    image = torch.zeros(16, 1, 8, 8)
    image[:, :, 4, 4] = 1.0
    shifted = random_shift(image, 2)
    rows, cols = shifted[:, 0].nonzero()[:, 1], shifted[:, 0].nonzero()[:, 2]
    assert shifted.shape == image.shape and shifted.sum() == 16
    assert rows.min() >= 2 and rows.max() <= 6 and cols.min() >= 2 and cols.max() <= 6
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 1
