import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from skiptool.nn.rnn import CPU_GROUP_SIZE, ConditionalLSTMDecoder, LSTMSummary, length_groups, length_mask


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


def test_length_groups_match_the_padded_batch_exactly():
    """Sorting into length groups (a CPU speed-up) changes nothing but the cost."""
    torch.manual_seed(0)
    enc, dec = LSTMSummary(5, 8, group_size=3), ConditionalLSTMDecoder(4, 8, 3, group_size=3)
    lengths = torch.tensor([2, 9, 4, 1, 7, 9, 3, 5])
    x = torch.randn(8, 9, 5, requires_grad=True)
    cond = torch.randn(8, 4)
    whole = LSTMSummary(5, 8, group_size=100)
    whole.load_state_dict(enc.state_dict())
    assert torch.allclose(enc(x, lengths), whole(x, lengths), atol=1e-6)
    _, (h_n, _) = enc.lstm(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    assert torch.allclose(enc(x, lengths), h_n[0], atol=1e-6)
    grouped, padded = dec(cond, 9, lengths), dec(cond, 9)
    mask = (torch.arange(9)[None, :] < lengths[:, None]).unsqueeze(-1)
    assert torch.allclose(grouped, padded * mask, atol=1e-6)
    assert (grouped[~mask.expand_as(grouped)] == 0).all()
    enc(x, lengths).sum().backward()
    assert x.grad[1].abs().sum() > 0 and (x.grad[0, 2:] == 0).all()  # no gradient from padding


def test_length_groups_default_by_device():
    """Groups of CPU_GROUP_SIZE for an LSTM on the CPU, the whole batch in one pass elsewhere."""
    lengths = torch.tensor([5, 3, 9, 1] * 10)
    groups = length_groups(lengths)
    assert [len(index) for index, _ in groups] == [CPU_GROUP_SIZE, CPU_GROUP_SIZE, 40 - 2 * CPU_GROUP_SIZE]
    assert [steps for _, steps in groups] == [3, 9, 9]  # sorted by length, each group cut to its longest
    assert sorted(torch.cat([index for index, _ in groups]).tolist()) == list(range(40))
    (index, steps), = length_groups(lengths, device=torch.device("cuda"))  # no GPU needed to plan
    assert len(index) == 40 and steps == 9
    assert len(length_groups(lengths, group_size=40)) == 1
    with pytest.raises(ValueError, match="group_size"):
        length_groups(lengths, group_size=0)


def test_progress_decoder_spreads_an_item_over_its_own_length():
    """With progress, step t of a T-frame item sees t / T: an item's frames are those of a
    one-item generation at its own length (in length groups too), and depend on T."""
    torch.manual_seed(0)
    dec = ConditionalLSTMDecoder(4, 8, 3, group_size=3, progress=True)
    assert dec.lstm.input_size == 5
    cond = torch.randn(6, 4)
    lengths = torch.tensor([2, 9, 4, 1, 7, 5])
    batch = dec(cond, 9, lengths)
    for b, length in enumerate(lengths.tolist()):
        alone = dec(cond[b:b + 1], length)
        assert torch.allclose(batch[b, :length], alone[0], atol=1e-6)
        assert (batch[b, length:] == 0).all()
    short, long = dec(cond, 5), dec(cond, 9)
    assert not torch.allclose(long[:, :5], short)  # unlike the plain decoder: the length is an input
