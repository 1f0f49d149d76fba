"""Tacotron-style attention decoder: teacher-forced shapes, stopping by stop token or max steps."""

import torch

from skiptool.nn.attention import AttentionSpeechDecoder, LocationSensitiveAttention, guided_attention_loss


def tiny_decoder(r: int = 2) -> AttentionSpeechDecoder:
    torch.manual_seed(0)
    return AttentionSpeechDecoder(cond_dim=6, mel_dim=4, reduction_factor=r, num_slots=5, slot_dim=3,
                                  prenet_sizes=(5, 4), attention_rnn_dim=6, attention_dim=4, location_filters=2,
                                  location_kernel=3, decoder_rnn_dim=5, decoder_rnn_layers=2).eval()


def test_attention_weights_are_a_distribution():
    attention = LocationSensitiveAttention(query_dim=3, memory_dim=4, attention_dim=5, location_filters=2,
                                           location_kernel=3)
    memory = torch.randn(2, 7, 4)
    context, weights = attention(torch.randn(2, 3), memory, attention.memory_layer(memory), torch.zeros(2, 7))
    assert context.shape == (2, 4) and weights.shape == (2, 7)
    assert torch.allclose(weights.sum(-1), torch.ones(2))


def test_teacher_forced_shapes():
    decoder = tiny_decoder(r=3)
    out = decoder(torch.randn(2, 6), torch.rand(2, 10, 4))  # 10 frames -> 4 steps of 3
    assert out.mel.shape == (2, 12, 4)
    assert out.stop_logits.shape == (2, 4) and out.alignments.shape == (2, 4, 5)


def test_teacher_forcing_feeds_the_previous_step():
    """Step s sees only target frames of steps < s: changing the last step's frames changes nothing."""
    decoder = tiny_decoder(r=2)
    cond, target = torch.randn(1, 6), torch.rand(1, 6, 4)
    changed = target.clone()
    changed[:, 4:] += 1
    assert torch.allclose(decoder(cond, target).mel, decoder(cond, changed).mel)


def test_stops_at_a_forced_stop_token():
    decoder = tiny_decoder(r=2)
    with torch.no_grad():
        decoder.stop_layer.weight.zero_()
        decoder.stop_layer.bias.fill_(10.0)
    out = decoder.infer(torch.randn(3, 6), max_steps=50)
    assert out.mel.shape == (3, 2, 4) and out.lengths.tolist() == [2, 2, 2]


def test_stops_at_max_steps_without_a_stop_token():
    decoder = tiny_decoder(r=2)
    with torch.no_grad():
        decoder.stop_layer.weight.zero_()
        decoder.stop_layer.bias.fill_(-10.0)
    out = decoder.infer(torch.randn(2, 6), max_steps=7)
    assert out.mel.shape == (2, 14, 4) and out.lengths.tolist() == [14, 14]
    assert out.alignments.shape == (2, 7, 5)


def test_guided_attention_loss_prefers_the_diagonal():
    steps, slots = 8, 4
    diagonal = torch.zeros(1, steps, slots)
    diagonal[0, torch.arange(steps), torch.arange(steps) * slots // steps] = 1.0  # step s reads slot s/S of N
    reversed_ = diagonal.flip(-1)
    uniform = torch.full((1, steps, slots), 1 / slots)
    lengths = torch.tensor([steps])
    losses = [float(guided_attention_loss(a, lengths)) for a in (diagonal, uniform, reversed_)]
    assert losses[0] < 0.25 * losses[1] and losses[1] < losses[2]


def test_guided_attention_loss_ignores_steps_after_each_items_end():
    alignments = torch.full((2, 6, 3), 1 / 3)
    alignments[1, 3:] = torch.tensor([1.0, 0.0, 0.0])  # past item 1's 3 steps: far off its diagonal
    lengths = torch.tensor([6, 3])
    padded = guided_attention_loss(alignments, lengths)
    alignments[1, 3:] = torch.tensor([0.0, 0.0, 1.0])
    assert torch.isclose(padded, guided_attention_loss(alignments, lengths))
    assert guided_attention_loss(alignments, lengths, sigma=0.05) > guided_attention_loss(alignments, lengths, sigma=1.0)
