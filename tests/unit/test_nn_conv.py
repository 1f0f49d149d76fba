import pytest
import torch

from skiptool.nn.conv import ConvEncoder2d, DeconvDecoder2d


def test_encoder_paper_sizes():
    enc = ConvEncoder2d(1, 28, [4, 8], 512)
    convs = [m for m in enc.net if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(4, (4, 4), (2, 2)), (8, (4, 4), (2, 2))]
    assert enc(torch.rand(3, 1, 28, 28)).shape == (3, 512)


def test_decoder_paper_sizes():
    dec = DeconvDecoder2d(64, [512], 7, [16, 8, 1])
    linears = [m for m in dec.net if isinstance(m, torch.nn.Linear)]
    assert [l.out_features for l in linears] == [512, 7 * 7 * 16]
    deconvs = [m for m in dec.net if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(d.out_channels, d.kernel_size, d.stride) for d in deconvs] == [(8, (4, 4), (2, 2)), (1, (4, 4), (2, 2))]
    out = dec(torch.randn(3, 64))
    assert out.shape == (3, 1, 28, 28)
    with torch.no_grad():
        dec.net[-1].bias.fill_(-100.0)  # raw outputs: no activation after the last layer
    assert (dec(torch.randn(3, 64)) < 0).all()


def test_bad_geometry_raises():
    with pytest.raises(ValueError):
        ConvEncoder2d(1, 30, [4, 8], 16)  # 30 is not divisible by 4
    with pytest.raises(ValueError):
        ConvEncoder2d(1, 28, [4], 16, kernel_size=3)
    with pytest.raises(ValueError):
        DeconvDecoder2d(8, [16], 7, [16])
