"""Training-time augmentation (skiptool/nn/augment.py): random_shift keeps content within its
bounds; RandomAffine and RandomTempo are the identity in eval mode and at zero ranges, draw within
their ranges, independently per item, reproducibly from torch's seed."""

import pytest
import torch

from skiptool.nn import RandomAffine, RandomTempo
from skiptool.nn.augment import random_shift, resample_time


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


def ramps(lengths: list[int], dim: int = 3) -> torch.Tensor:
    """A padded batch whose frame t of every utterance holds the value t in every dimension."""
    speech = torch.zeros(len(lengths), max(lengths), dim)
    for i, length in enumerate(lengths):
        speech[i, :length] = torch.arange(length, dtype=torch.float32)[:, None]
    return speech


def test_tempo_is_the_identity_in_eval_mode_and_at_rate_zero():
    speech, lengths = ramps([9, 4, 1]), torch.tensor([9, 4, 1])
    for augment in (RandomTempo(0.4).eval(), RandomTempo().train()):
        out, out_lengths = augment(speech, lengths)
        assert out is speech and out_lengths is lengths


def test_tempo_resamples_each_utterance_within_range():
    torch.manual_seed(0)
    lengths = torch.tensor([40] * 32 + [1])
    speech = ramps(lengths.tolist())
    out, new = RandomTempo(0.3).train()(speech, lengths)
    assert new.dtype == lengths.dtype and new[-1] == 1  # one frame stays one frame
    factors = new[:-1].double() / 40
    assert factors.min() >= 0.7 - 1 / 80 and factors.max() <= 1.3 + 1 / 80
    assert factors.min() < 0.85 and factors.max() > 1.15 and len(set(new.tolist())) > 5  # per utterance
    assert out.size(1) == new.max()
    for i, length in enumerate(new.tolist()[:-1]):
        # a ramp stays a ramp from the first frame to the last, and the padding stays zero
        expected = torch.linspace(0, 39, length)[:, None].expand(-1, 3)
        assert torch.allclose(out[i, :length], expected, atol=1e-4)
        assert not out[i, length:].any()


def test_tempo_is_reproducible_from_the_torch_seed():
    augment, speech, lengths = RandomTempo(0.5).train(), ramps([20, 11]), torch.tensor([20, 11])
    torch.manual_seed(3)
    first = augment(speech, lengths)
    torch.manual_seed(3)
    second = augment(speech, lengths)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


@pytest.mark.parametrize("rate", [-0.1, 1.0])
def test_bad_tempo_rates_are_refused(rate):
    with pytest.raises(ValueError, match="RandomTempo"):
        RandomTempo(rate)


def test_resample_time_keeps_the_ends_and_interpolates_between_frames():
    ramp = torch.arange(5.0)[:, None].repeat(1, 2)  # frames 0, 1, 2, 3, 4
    assert torch.allclose(resample_time(ramp, 9), torch.linspace(0, 4, 9)[:, None].expand(-1, 2))
    assert torch.allclose(resample_time(ramp, 3), torch.tensor([0.0, 2.0, 4.0])[:, None].expand(-1, 2))
    assert torch.equal(resample_time(ramp[:1], 4), torch.zeros(4, 2))  # one frame repeated
