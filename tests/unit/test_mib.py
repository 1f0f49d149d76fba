"""MIB (paper 000): config and ablations, the batch contract, losses, training on a toy batch,
every generation direction, embeddings, collate and the alignment plot."""

from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import yaml

from skiptool.models.mib import MODALITIES, MIB, MIBConfig, build_mib, collate_mib, plot_alignment, save_alignment_plot
from skiptool.nn.grl import GradientReversal
from skiptool.nn.memory import FCFusion, MemoryFusion
from skiptool.utils.config import from_dict
from skiptool.utils.errors import SkiptoolError

REPO = Path(__file__).resolve().parents[2]
V, S, MEL, LIN = 12, 16, 8, 10  # vocabulary, image side, mel and linear bins

TINY = dict(vocab_size=V, image_size=S, image_encoder_channels=[4, 8], image_decoder_channels=[8, 6, 4, 4],
            mel_dim=MEL, linear_dim=LIN, embed_dim=16, text_embed_dim=8, text_prenet_sizes=[12, 8],
            encoder_cbhg_bank_size=3, encoder_cbhg_channels=8, encoder_cbhg_highways=1, speech_encoder_channels=[2, 3],
            speech_encoder_gru_dim=8, latent_dim=16, memory_slots=6, memory_heads=2, classifier_hidden_dim=8,
            text_decoder_embed_dim=8, text_decoder_dim=8, reduction_factor=2, speech_decoder_slots=5,
            speech_decoder_slot_dim=8, decoder_prenet_sizes=[8, 8], attention_rnn_dim=8, attention_dim=8,
            location_filters=2, location_kernel=3, decoder_rnn_dim=8, postnet_cbhg_bank_size=2,
            postnet_cbhg_channels=4, postnet_projection_dim=8, postnet_highways=1, max_decoder_steps=6,
            max_text_length=7)
ABLATIONS = {"full": {}, "no_memory": {"fusion": "none"}, "fc_memory": {"fusion": "fc"},
             "no_transformer": {"use_transformer": False, "use_adversarial": False},
             "no_adversarial": {"use_adversarial": False}}


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**overrides) -> MIB:
    torch.manual_seed(0)
    return MIB(MIBConfig(**{**TINY, **overrides}))


def items(seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    text = lambda n: torch.randint(3, V, (n,), generator=g)
    image_text = [{"key": f"a{i}", "image": torch.rand(3, S, S, generator=g), "text": text(n)}
                  for i, n in enumerate((4, 6))]
    text_speech = [{"key": f"b{i}", "speech": torch.rand(t, MEL, generator=g),
                    "linear": torch.rand(t, LIN, generator=g), "text": text(n)}
                   for i, (t, n) in enumerate(((9, 3), (12, 5)))]
    return image_text + text_speech


def loss_with_seed(model: MIB, batch: dict, seed: int = 1) -> torch.Tensor:
    torch.manual_seed(seed)  # the same dropout masks for both calls
    return model(batch)[0]


# ------------------------------------------------------------------------------- config


def test_paper_defaults():
    cfg = MIBConfig()
    assert (cfg.vocab_size, cfg.text_embed_dim, cfg.embed_dim, cfg.latent_dim) == (66, 128, 512, 256)
    assert (cfg.memory_slots, cfg.memory_heads, cfg.grl_alpha, cfg.image_size) == (128, 4, 0.1, 128)
    assert cfg.image_encoder_channels == [64, 128, 256, 512] and cfg.speech_encoder_channels == [32, 64]
    assert (cfg.encoder_cbhg_bank_size, cfg.encoder_cbhg_channels, cfg.text_decoder_layers) == (16, 128, 2)
    assert (cfg.fusion, cfg.use_transformer, cfg.use_adversarial) == ("memory", True, True)


@pytest.mark.parametrize("bad", [{"fusion": "attention"}, {"image_size": 40}, {"latent_dim": 17},
                                 {"image_decoder_channels": [8, 4]}, {"eos_id": 0}, {"text_decoder_dropout": 1.0}])
def test_bad_config_is_rejected(bad):
    with pytest.raises(ValueError):
        MIBConfig(**{**TINY, **bad})


@pytest.mark.parametrize("name", ["mib", "mib_paper", "mib_no_memory", "mib_fc_memory", "mib_no_transformer",
                                  "mib_no_adversarial"])
def test_config_files_load(name):
    data = yaml.safe_load((REPO / "conf" / "train" / f"{name}.yaml").read_text())
    assert data["model"] == "mib"
    cfg = from_dict(MIBConfig, data["model_conf"], source=name)
    assert set(data["model_conf"]) == set(asdict(cfg))  # every field listed
    assert data["train"]["optim"]["lr"] == 0.002


def test_ablations_build_the_right_modules():
    assert isinstance(tiny().fusion, MemoryFusion) and isinstance(tiny().classifier[0], GradientReversal)
    assert tiny().classifier[0].alpha == 0.1
    assert isinstance(tiny(fusion="fc").fusion, FCFusion)
    assert tiny(use_adversarial=False).classifier is None
    assert isinstance(tiny(use_transformer=False).transformer, torch.nn.Linear)
    z = torch.randn(3, 16)
    assert torch.equal(tiny(fusion="none").fusion(z)[0], z)


# ------------------------------------------------------------------------ training objective


def test_collate_mixed_batch():
    batch = collate_mib(items())
    assert batch["image"].shape == (2, 3, S, S)
    assert batch["image_text"].shape == (2, 6) and batch["image_text_lengths"].tolist() == [4, 6]
    assert batch["speech"].shape == (2, 12, MEL) and batch["linear"].shape == (2, 12, LIN)
    assert batch["speech_lengths"].tolist() == [9, 12] and batch["speech_text_lengths"].tolist() == [3, 5]
    assert batch["image_text"][0, 4:].eq(0).all() and batch["speech"][0, 9:].eq(0).all()


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_each_ablation_trains_on_a_mixed_batch(name):
    model = tiny(**ABLATIONS[name])
    loss, stats = model(collate_mib(items()))
    assert torch.isfinite(loss)
    expected = {"loss", "recon", "image_l1", "text_ce_image", "mel_l1", "linear_l1", "stop_bce", "text_ce_speech",
                "u_spread_image", "u_spread_text", "u_spread_speech"}
    if model.classifier is not None:
        expected |= {"adv_ce", "adv_acc"}
    assert set(stats) == expected
    loss.backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, unused


@pytest.mark.parametrize("corpus", ["image", "speech"])
def test_batch_from_one_corpus(corpus):
    batch = collate_mib([it for it in items() if corpus in it])
    loss, stats = tiny()(batch)
    assert torch.isfinite(loss)
    assert ("image_l1" in stats) == (corpus == "image") and ("mel_l1" in stats) == (corpus == "speech")


def test_loss_decreases_on_a_toy_batch():
    model = tiny()
    batch = collate_mib(items())
    before = loss_with_seed(model, batch).item()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(15):
        optimizer.zero_grad()
        model(batch)[0].backward()
        optimizer.step()
    assert loss_with_seed(model, batch).item() < 0.9 * before


def test_adversarial_gradient_reaches_the_transformer_reversed():
    """Only the classifier's loss: C descends it, T receives the reversed, scaled gradient."""
    model = tiny()
    z = torch.randn(4, 16, requires_grad=True)
    targets = torch.tensor([0, 1, 2, 1])
    torch.nn.functional.cross_entropy(model.classifier(z), targets).backward()
    reversed_grad = z.grad.clone()
    z.grad = None
    torch.nn.functional.cross_entropy(model.classifier[1:](z), targets).backward()
    assert torch.allclose(reversed_grad, -0.1 * z.grad, atol=1e-7)


def test_adversary_warmup_ramps_the_reversed_gradient():
    """adversary_warmup_steps: alpha grows linearly from 0 with each training step, then holds;
    evaluation steps do not count, and the step count is part of the checkpoint."""
    model = tiny(adversary_warmup_steps=4).train()
    batch = collate_mib(items())
    alphas = [model(batch)[1]["adv_alpha"] for _ in range(6)]
    assert alphas == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1, 0.1])
    assert model.classifier[0].alpha == pytest.approx(0.1)
    model.eval()
    with torch.no_grad():
        model(batch)
    assert model.train_steps.item() == 6
    state = model.state_dict()
    restored = tiny(adversary_warmup_steps=4)
    restored.load_state_dict(state)
    assert restored.adversary_weight() == pytest.approx(0.1)
    older = {k: v for k, v in state.items() if k != "train_steps"}  # a checkpoint from before the option
    plain = tiny()
    plain.load_state_dict(older)
    assert "adv_alpha" not in plain(batch)[1] and plain.classifier[0].alpha == 0.1  # no warm-up: the paper's alpha


def test_text_target_adversary_trains_c_and_t_on_separate_terms():
    """adversary text_target (Eq. 1 literally): C sees detached latents (no reversal layer), and
    L_T = -log C(z)_txt moves the latents towards "text" without touching C's weights."""
    torch.manual_seed(0)
    model = tiny(adversary="text_target")
    assert isinstance(model.classifier[0], torch.nn.Identity)
    _, stats = model(collate_mib(items()))
    assert {"adv_ce", "adv_fool"} <= stats.keys()

    z = torch.randn(4, 16, requires_grad=True)
    model.zero_grad(set_to_none=True)
    model._fool_loss([z]).backward()
    assert all(p.grad is None for p in model.classifier.parameters())  # C's weights held fixed
    step = z - 0.5 * z.grad  # a step down L_T makes C call the latents "text" more
    text = MODALITIES.index("text")
    with torch.no_grad():
        before = model.classifier(z).softmax(-1)[:, text].mean()
        after = model.classifier(step).softmax(-1)[:, text].mean()
    assert after > before


def test_u_spread_reports_a_collapsed_modality():
    """u_spread_<modality>: ~0 when every input of a modality gets the same u."""
    torch.manual_seed(0)
    model = tiny()
    batch = collate_mib(items())
    _, stats = model(batch)
    assert all(stats[f"u_spread_{m}"] > 1e-4 for m in ("image", "text", "speech"))
    same_text = {**batch, "image_text": batch["image_text"][:1].expand_as(batch["image_text"]).clone(),
                 "image_text_lengths": batch["image_text_lengths"][:1].expand(2).clone(),
                 "speech_text": batch["image_text"][:1].expand_as(batch["image_text"]).clone(),
                 "speech_text_lengths": batch["image_text_lengths"][:1].expand(2).clone()}
    model.eval()
    _, stats = model(same_text)
    assert stats["u_spread_text"] < 1e-5  # one sentence four times: no spread


def test_layer_norm_transformer_keeps_items_apart():
    """transformer_norm layer: one item's z gets no gradient from another item's loss (BatchNorm
    in training mode couples them)."""
    torch.manual_seed(0)
    for norm, coupled in (("batch", True), ("layer", False)):
        model = tiny(transformer_norm=norm).train()
        e = torch.randn(4, model.cfg.embed_dim, requires_grad=True)
        model.transformer(e)[0].sum().backward()  # the loss of item 0 only
        assert (e.grad[1:].abs().sum() > 0) == coupled, norm


def test_unknown_adversary_is_rejected():
    with pytest.raises(ValueError, match="adversary"):
        MIBConfig(adversary="minimax")


def test_bad_batches_are_user_errors():
    model = tiny()
    batch = collate_mib(items())
    with pytest.raises(SkiptoolError, match="neither"):
        model({"image_text": batch["image_text"]})
    with pytest.raises(SkiptoolError, match="linear"):
        model({k: v for k, v in batch.items() if k != "linear"})
    with pytest.raises(SkiptoolError, match="vocab_size"):
        model({**batch, "image_text": batch["image_text"] + V})
    with pytest.raises(SkiptoolError, match="image_size"):
        model({**batch, "image": torch.rand(2, 3, S * 2, S * 2)})


# ------------------------------------------------------------------------------ generation


def test_every_direction():
    model = tiny().eval()
    batch = collate_mib(items())
    tokens, lengths = model.image_to_text(batch["image"])
    assert tokens.dtype == torch.long and tokens.size(0) == 2 and lengths.shape == (2,)
    assert tokens.size(1) <= 7 and int(lengths.max()) <= 7
    tokens, lengths = model.speech_to_text(batch["speech"], batch["speech_lengths"])
    assert tokens.size(0) == 2 and tokens.size(1) <= 7
    for speech in (model.text_to_speech(batch["speech_text"], batch["speech_text_lengths"]),
                   model.image_to_speech(batch["image"])):
        frames = speech.mel.size(1)
        assert speech.mel.shape == (2, frames, MEL) and speech.linear.shape == (2, frames, LIN)
        assert frames % 2 == 0 and frames <= 6 * 2 and int(speech.lengths.max()) <= frames
        assert speech.alignments.shape == (2, frames // 2, 5)
    image = model.text_to_image(batch["image_text"], batch["image_text_lengths"])
    assert image.shape == (2, 3, S, S) and image.min() >= 0 and image.max() <= 1


def test_text_decoding_stops_at_eos():
    model = tiny().eval()
    with torch.no_grad():
        model.text_decoder.output.weight.zero_()
        model.text_decoder.output.bias.zero_()
        model.text_decoder.output.bias[model.cfg.eos_id] = 5.0
    tokens, lengths = model.image_to_text(torch.rand(3, 3, S, S))
    assert lengths.tolist() == [0, 0, 0] and tokens.shape == (3, 0)


def test_word_dropout_feeds_pad_after_sos_in_training_only():
    model = tiny(text_decoder_word_dropout=0.999, text_decoder_dropout=0.0)
    decoder = model.text_decoder
    u = torch.rand(2, TINY["latent_dim"])
    inputs = torch.tensor([[2, 5, 6, 7], [2, 8, 9, 0]])  # <sos> then tokens (and padding)
    dropped = torch.tensor([[2, 0, 0, 0], [2, 0, 0, 0]])  # everything after <sos> fed as <pad>
    torch.manual_seed(0)
    training = decoder.train()(u, inputs)
    decoder.eval()
    assert torch.allclose(training, decoder(u, dropped))
    assert not torch.allclose(decoder(u, inputs), decoder(u, dropped))  # eval: inputs as given
    with pytest.raises(ValueError):
        MIBConfig(**{**TINY, "text_decoder_word_dropout": 1.0})


def test_guided_attention_term_is_weighted_and_trains_the_alignment():
    batch = collate_mib(items())
    plain = loss_with_seed(tiny(), batch)
    _, stats = tiny(guided_attention_weight=2.0)(batch)
    assert "guided_attn" in stats and "guided_attn" not in tiny()(batch)[1]
    assert torch.isclose(loss_with_seed(tiny(guided_attention_weight=2.0), batch),
                         plain + stats["guided_attn"], rtol=1e-5)
    model = tiny(guided_attention_weight=1.0)
    model(batch)[0].backward()
    assert model.speech_decoder.attention.score.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="guided_attention"):
        MIBConfig(**{**TINY, "guided_attention_sigma": 0.0})


def test_speech_generation_stops_at_the_stop_token():
    model = tiny().eval()
    with torch.no_grad():
        model.speech_decoder.stop_layer.weight.zero_()
        model.speech_decoder.stop_layer.bias.fill_(10.0)
    speech = model.image_to_speech(torch.rand(2, 3, S, S))
    assert speech.mel.shape == (2, 2, MEL) and speech.lengths.tolist() == [2, 2]


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_embed_every_modality_and_padding_invariance(pooling):
    model = tiny(speech_encoder_pooling=pooling).eval()
    batch = collate_mib(items())
    assert model.embed("image", batch["image"]).shape == (2, 16)
    u_text = model.embed("text", batch["image_text"], batch["image_text_lengths"])
    u_speech = model.embed("speech", batch["speech"], batch["speech_lengths"])
    assert u_text.shape == u_speech.shape == (2, 16)
    # the first (shorter) item alone, unpadded, gets the same u
    alone = model.embed("text", batch["image_text"][:1, :4], batch["image_text_lengths"][:1])
    assert torch.allclose(alone, u_text[:1], atol=1e-5)
    alone = model.embed("speech", batch["speech"][:1, :9], batch["speech_lengths"][:1])
    assert torch.allclose(alone, u_speech[:1], atol=1e-5)
    with pytest.raises(SkiptoolError, match="modality"):
        model.embed("video", batch["image"])


def test_speech_encoder_pooling_mean_averages_the_gru_outputs():
    model = tiny(speech_encoder_pooling="mean").eval()
    encoder = model.encoders["speech"]
    mel = torch.rand(1, 12, MEL)
    with torch.no_grad():
        x = mel.unsqueeze(1)
        for block in encoder.convs:
            x = block(x)
        outputs, _ = encoder.gru(x.permute(0, 2, 1, 3).flatten(2))
        expected = torch.tanh(encoder.output(outputs.mean(1)))
        assert torch.allclose(encoder(mel, torch.tensor([12])), expected, atol=1e-6)
    with pytest.raises(ValueError, match="speech_encoder_pooling"):
        tiny(speech_encoder_pooling="max")


@pytest.mark.parametrize("layer_norm", [False, True])
def test_speech_encoder_layer_norm_keeps_e_out_of_saturation(layer_norm):
    encoder = tiny(speech_encoder_layer_norm=layer_norm).eval().encoders["speech"]
    with torch.no_grad():
        encoder.output.weight.mul_(1000)  # an FC that has grown large, as under the adversary
        e = encoder(torch.rand(4, 12, MEL), torch.tensor([12, 10, 8, 6]))
    saturated = (e.abs() > 0.99).float().mean().item()
    assert saturated < 0.2 if layer_norm else saturated > 0.8
    assert any(isinstance(m, torch.nn.LayerNorm) for m in encoder.modules()) == layer_norm


def test_alignment_plot(tmp_path):
    model = tiny()
    model(collate_mib(items()))
    assert model.last_alignment.shape == (5, 5)  # the first speech item's ceil(9 / 2) steps x 5 slots
    path = plot_alignment(model.last_alignment, tmp_path / "images" / "alignment.png", title="epoch 1")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert save_alignment_plot(tiny(), tmp_path, "none") is None  # no batch with speech yet
    assert save_alignment_plot(model, tmp_path, "alignment_epoch1") == tmp_path / "images" / "alignment_epoch1.png"


def test_build_and_paper_size():
    model = build_mib(MIBConfig())
    count = sum(p.numel() for p in model.parameters())
    assert 10e6 < count < 20e6
    assert model.image_decoder.net[0].out_features == 64 * 8 * 8  # 128 px: 8x8x64 before four deconvs


def test_collate_pair_items_make_a_mixed_batch():
    image_text, text_speech = items()[:2], items()[2:]
    pairs = [{"image": a["image"], "image_text": a["text"], "speech": b["speech"], "linear": b["linear"],
              "speech_text": b["text"]} for a, b in zip(image_text, text_speech)]
    batch, reference = collate_mib(pairs), collate_mib(items())
    assert batch.keys() == reference.keys()
    assert batch["num_items"] == reference["num_items"] == 4  # 2 images + 2 utterances: the trainer's count
    assert all(torch.equal(batch[k], reference[k]) for k in batch if k != "num_items")


# ------------------------------------------------------- adversarial targets, hooks, inference


def test_only_image_and_speech_latents_get_the_classifier_gradient():
    """C trains on every z, but the text latents reach it detached: Eq. 1's L_T has no text term."""
    model = tiny()
    captured = {}

    def keep_z(module, inputs, z):
        z.retain_grad()
        captured["z"] = z

    model.transformer.register_forward_hook(keep_z)
    model.classifier.register_forward_hook(lambda module, inputs, logits: captured.update(logits=logits))
    model(collate_mib(items()))
    # z rows: image (2), text of A and B (4), speech (2)
    targets = torch.tensor([0, 0, 1, 1, 1, 1, 2, 2])
    torch.nn.functional.cross_entropy(captured["logits"], targets).backward()
    grad = captured["z"].grad
    assert grad[2:6].abs().sum() == 0
    assert grad[:2].abs().sum() > 0 and grad[6:].abs().sum() > 0
    assert model.classifier[1].weight.grad.abs().sum() > 0  # C itself learns from all rows


def test_epoch_hook_plots_a_fixed_item_without_touching_random_state(tmp_path):
    model = tiny()
    assert model.on_epoch_end(tmp_path, 1) is None  # nothing trained on yet
    batch = collate_mib(items())
    model(batch)
    model(collate_mib(items(seed=5)))  # the probe stays the first item
    state = torch.get_rng_state()
    first = model.on_epoch_end(tmp_path, 1)
    assert torch.equal(state, torch.get_rng_state()) and model.training
    assert first == tmp_path / "images" / "alignment_epoch001.png" and first.read_bytes()[:4] == b"\x89PNG"
    assert model._probe[1].shape == (9, MEL)


def test_plot_alignment_leaves_the_pyplot_backend_alone(tmp_path):
    import matplotlib

    before = matplotlib.get_backend()
    plot_alignment(torch.rand(4, 5), tmp_path / "a.png")
    assert matplotlib.get_backend() == before


def test_prenet_dropout_at_inference_and_fixed_steps():
    model = tiny().eval()
    u = model.embed("image", torch.rand(2, 3, S, S))

    def mel(seed: int, m: MIB = model) -> torch.Tensor:
        torch.manual_seed(seed)
        return m.decode_speech(u, fixed_steps=4).mel

    assert mel(0).shape == (2, 8, MEL) and torch.equal(mel(0), mel(0))
    assert not torch.equal(mel(0), mel(1))  # Tacotron: the pre-net's dropout stays on
    assert not model.speech_decoder.prenet.training  # and is switched back afterwards
    model.cfg.prenet_dropout_at_inference = False
    assert torch.equal(mel(0), mel(1))
