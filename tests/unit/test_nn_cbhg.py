"""CBHG: output shapes, padding invariance with lengths, the residual constraint; pre-net."""

import pytest
import torch

from skiptool.nn.cbhg import CBHG
from skiptool.nn.prenet import Prenet


@pytest.mark.parametrize("in_dim,projections", [(8, (6, 8)), (5, (7, 5))])
def test_output_shape(in_dim, projections):
    cbhg = CBHG(in_dim, bank_size=4, bank_channels=3, projections=projections, highway_dim=6, num_highways=2,
                gru_dim=5)
    x = torch.randn(3, 11, in_dim)
    assert cbhg(x).shape == (3, 11, 10) and cbhg.out_dim == 10
    assert cbhg(x, torch.tensor([11, 4, 1])).shape == (3, 11, 10)


def test_padding_does_not_change_an_item():
    torch.manual_seed(0)
    cbhg = CBHG(4, bank_size=3, bank_channels=3, projections=(5, 4), highway_dim=4, num_highways=1, gru_dim=3).eval()
    short = torch.randn(1, 6, 4)
    padded = torch.cat([short, torch.randn(1, 5, 4)], dim=1)  # garbage after the valid frames
    out_short = cbhg(short, torch.tensor([6]))
    out_padded = cbhg(padded, torch.tensor([6]))
    assert torch.allclose(out_short, out_padded[:, :6], atol=1e-6)
    assert torch.all(out_padded[:, 6:] == 0)


def test_last_projection_must_match_input():
    with pytest.raises(ValueError, match="residual"):
        CBHG(8, projections=(128, 128))


def test_prenet_shape_and_dropout_only_in_training():
    prenet = Prenet(7, (6, 4), dropout=0.5)
    x = torch.randn(2, 3, 7)
    assert prenet(x).shape == (2, 3, 4)
    prenet.eval()
    assert torch.equal(prenet(x), prenet(x))
