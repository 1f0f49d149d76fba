import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from skiptool.nn.rnn import ConditionalLSTMDecoder, LSTMSummary, length_mask


def test_length_mask():
    mask = length_mask(torch.tensor([3, 1]), 4)
    assert mask.tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]


def test_lstm_summary_equals_packed_final_state_and_ignores_padding():
    torch.manual_seed(0)
    enc = LSTMSummary(5, 8)
    x = torch.randn(3, 6, 5)
    lengths = torch.tensor([6, 2, 4])
    out = enc(x, lengths)
    assert out.shape == (3, 8)
    _, (h_n, _) = enc.lstm(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    assert torch.allclose(out, h_n[0], atol=1e-6)
    x_padded = torch.cat([x, torch.randn(3, 5, 5)], dim=1)  # more padding, garbage values
    x_padded[1, 2:] = 1e3
    assert torch.allclose(enc(x_padded, lengths), out, atol=1e-6)


def test_conditional_decoder_shapes_and_causality():
    torch.manual_seed(0)
    dec = ConditionalLSTMDecoder(4, 8, 3)
    cond = torch.randn(2, 4)
    short, long = dec(cond, 5), dec(cond, 9)
    assert short.shape == (2, 5, 3) and long.shape == (2, 9, 3)
    assert torch.allclose(long[:, :5], short, atol=1e-6)  # a frame depends only on earlier steps
    with pytest.raises(ValueError):
        dec(cond, 0)
