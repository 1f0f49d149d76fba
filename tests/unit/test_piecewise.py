"""Piecewise baseline (paper 000, Table 1): config mirrors MIB's, the two parts train only on their
own corpus and share nothing, losses, training on a toy batch, image -> text -> speech."""

from dataclasses import asdict, fields
from pathlib import Path

import pytest
import torch
import yaml

from skiptool.models.mib import MIBConfig, collate_mib
from skiptool.models.piecewise import Piecewise, PiecewiseConfig, build_piecewise
from skiptool.utils.config import from_dict
from skiptool.utils.errors import SkiptoolError

REPO = Path(__file__).resolve().parents[2]
V, S, MEL, LIN = 12, 16, 8, 10  # vocabulary, image side, mel and linear bins

TINY = dict(vocab_size=V, image_size=S, image_encoder_channels=[4, 8], mel_dim=MEL, linear_dim=LIN, embed_dim=16,
            text_embed_dim=8, text_prenet_sizes=[12, 8], encoder_cbhg_bank_size=3, encoder_cbhg_channels=8,
            encoder_cbhg_highways=1, latent_dim=16, text_decoder_embed_dim=8, text_decoder_dim=8,
            reduction_factor=2, speech_decoder_slots=5, speech_decoder_slot_dim=8, decoder_prenet_sizes=[8, 8],
            attention_rnn_dim=8, attention_dim=8, location_filters=2, location_kernel=3, decoder_rnn_dim=8,
            postnet_cbhg_bank_size=2, postnet_cbhg_channels=4, postnet_projection_dim=8, postnet_highways=1,
            max_decoder_steps=6, max_text_length=7)


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**overrides) -> Piecewise:
    torch.manual_seed(0)
    return Piecewise(PiecewiseConfig(**{**TINY, **overrides}))


def items(seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    text = lambda n: torch.randint(3, V, (n,), generator=g)
    image_text = [{"image": torch.rand(3, S, S, generator=g), "text": text(n)} for n in (4, 6)]
    text_speech = [{"speech": torch.rand(t, MEL, generator=g), "linear": torch.rand(t, LIN, generator=g),
                    "text": text(n)} for t, n in ((9, 3), (12, 5))]
    return image_text + text_speech


def seeded_stats(model: Piecewise, batch: dict, seed: int = 1) -> tuple[torch.Tensor, dict]:
    torch.manual_seed(seed)  # the same dropout masks for every call
    return model(batch)


# ------------------------------------------------------------------------------- config


def test_config_fields_are_mibs_with_mibs_defaults():
    mib = MIBConfig()
    for f in fields(PiecewiseConfig):
        assert getattr(PiecewiseConfig(), f.name) == getattr(mib, f.name), f.name


@pytest.mark.parametrize("bad", [{"image_size": 40}, {"eos_id": 0}, {"text_decoder_dropout": 1.0},
                                 {"text_prenet_sizes": []}])
def test_bad_config_is_rejected(bad):
    with pytest.raises(ValueError):
        PiecewiseConfig(**{**TINY, **bad})


def test_config_file_mirrors_mib_sizes():
    data = yaml.safe_load((REPO / "conf/train/piecewise.yaml").read_text())
    mib = yaml.safe_load((REPO / "conf/train/mib.yaml").read_text())
    assert data["model"] == "piecewise"
    cfg = from_dict(PiecewiseConfig, data["model_conf"], source="piecewise")
    assert set(data["model_conf"]) == set(asdict(cfg))  # every field listed
    assert data["model_conf"] == {k: mib["model_conf"][k] for k in data["model_conf"]}
    assert data["train"] == mib["train"]


# ------------------------------------------------------------------------ training objective


def test_losses_and_every_parameter_trained():
    model = tiny()
    loss, stats = model(collate_mib(items()))
    assert torch.isfinite(loss)
    assert set(stats) == {"loss", "text_ce_image", "mel_l1", "linear_l1", "stop_bce"}
    assert stats["loss"] == pytest.approx(sum(v for k, v in stats.items() if k != "loss"), rel=1e-5)
    loss.backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, unused


def test_parts_share_nothing_and_train_on_their_own_corpus_only():
    model = tiny()
    captioner = {id(p) for p in model.captioner.parameters()}
    assert captioner.isdisjoint(id(p) for p in model.tts.parameters())
    assert len(captioner) + sum(1 for _ in model.tts.parameters()) == sum(1 for _ in model.parameters())
    for corpus, trained, untouched in (("image", model.captioner, model.tts), ("speech", model.tts, model.captioner)):
        model.zero_grad(set_to_none=True)
        loss, stats = model(collate_mib([it for it in items() if corpus in it]))
        loss.backward()
        assert all(p.grad is None for p in untouched.parameters())
        assert all(p.grad is not None for p in trained.parameters())
    # the captioner's loss does not depend on the other corpus (and vice versa)
    batch = collate_mib(items())
    other = collate_mib(items(seed=5))
    a = seeded_stats(model, batch)[1]
    swapped_b = seeded_stats(model, {**batch, **{k: v for k, v in other.items() if not k.startswith("image")}})[1]
    assert a["text_ce_image"] == swapped_b["text_ce_image"] and a["mel_l1"] != swapped_b["mel_l1"]


def test_loss_decreases_on_a_toy_batch():
    model = tiny()
    batch = collate_mib(items())
    before = seeded_stats(model, batch)[0].item()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(15):
        optimizer.zero_grad()
        model(batch)[0].backward()
        optimizer.step()
    assert seeded_stats(model, batch)[0].item() < 0.9 * before


def test_bad_batches_are_user_errors():
    model = tiny()
    batch = collate_mib(items())
    with pytest.raises(SkiptoolError, match="neither"):
        model({"image_text": batch["image_text"]})
    with pytest.raises(SkiptoolError, match="linear"):
        model({k: v for k, v in batch.items() if k != "linear"})
    with pytest.raises(SkiptoolError, match="vocab_size"):
        model({**batch, "speech_text": batch["speech_text"] + V})
    with pytest.raises(SkiptoolError, match="image_size"):
        model({**batch, "image": torch.rand(2, 3, S * 2, S * 2)})
    with pytest.raises(SkiptoolError, match="mel_dim"):
        model({**batch, "speech": torch.rand(2, 12, MEL + 1)})


# ------------------------------------------------------------------------------ generation


def test_image_to_speech_is_the_tts_of_the_caption():
    model = tiny().eval()
    images = collate_mib(items())["image"]
    tokens, lengths = model.image_to_text(images)
    assert tokens.dtype == torch.long and tokens.size(0) == 2 and int(lengths.max()) <= 7
    torch.manual_seed(3)  # the pre-net keeps its dropout (prenet_dropout_at_inference)
    speech = model.image_to_speech(images)
    torch.manual_seed(3)
    reference = model.text_to_speech(tokens, lengths)
    assert not model.tts.decoder.prenet.training  # back in eval mode
    assert torch.equal(speech.mel, reference.mel) and torch.equal(speech.lengths, reference.lengths)
    frames = speech.mel.size(1)
    assert speech.linear.shape == (2, frames, LIN) and frames <= 6 * 2 and frames % 2 == 0
    assert model.generate("image", "speech", images).mel.shape == speech.mel.shape
    with pytest.raises(SkiptoolError, match="piecewise baseline generates"):
        model.generate("speech", "image", torch.rand(1, 9, MEL))


def test_generation_stops_at_eos_and_stop_token():
    model = tiny().eval()
    with torch.no_grad():
        model.captioner.decoder.output.weight.zero_()
        model.captioner.decoder.output.bias.zero_()
        model.captioner.decoder.output.bias[model.cfg.eos_id] = 5.0
        model.tts.decoder.stop_layer.weight.zero_()
        model.tts.decoder.stop_layer.bias.fill_(10.0)
    images = torch.rand(3, 3, S, S)
    tokens, lengths = model.image_to_text(images)
    assert lengths.tolist() == [0, 0, 0] and tokens.shape == (3, 0)
    speech = model.image_to_speech(images)  # an empty caption is still spoken
    assert speech.mel.shape == (3, 2, MEL) and speech.lengths.tolist() == [2, 2, 2]


def test_paper_size_builds():
    model = build_piecewise(PiecewiseConfig())
    assert sum(p.numel() for p in model.parameters()) > 5e6
