"""CycleGAN baseline (paper 000, Table 1): config, fixed-length speech windows, each loss term is
what it claims, generator terms train only the generators and critic terms only the critics, the
one-optimizer step equals the reference's generator step then critic step, training with the
trainer, generation."""

import copy
from dataclasses import asdict, fields
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.data import Dataset

from skiptool.models.cyclegan import (
    CRITIC_TERMS,
    GENERATOR_TERMS,
    CycleGAN,
    CycleGANConfig,
    frozen,
    speech_windows,
)
from skiptool.models.mib import MIBConfig, collate_mib
from skiptool.train.trainer import OptimConfig, TrainConfig, Trainer
from skiptool.utils.config import from_dict
from skiptool.utils.errors import SkiptoolError

REPO = Path(__file__).resolve().parents[2]
S, MEL, LIN, FRAMES = 16, 8, 10, 10  # image side, mel and linear bins, generated frames

TINY = dict(image_size=S, image_encoder_channels=[4, 8], image_decoder_channels=[8, 6, 4, 4], mel_dim=MEL,
            linear_dim=LIN, embed_dim=16, speech_encoder_channels=[2, 3], speech_encoder_gru_dim=8, latent_dim=16,
            reduction_factor=2, speech_decoder_slots=5, speech_decoder_slot_dim=8, decoder_prenet_sizes=[8, 8],
            attention_rnn_dim=8, attention_dim=8, location_filters=2, location_kernel=3, decoder_rnn_dim=8,
            postnet_cbhg_bank_size=2, postnet_cbhg_channels=4, postnet_projection_dim=8, postnet_highways=1,
            num_frames=FRAMES)


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**overrides) -> CycleGAN:
    torch.manual_seed(0)
    return CycleGAN(CycleGANConfig(**{**TINY, **overrides}))


def items(seed: int = 0) -> list[dict]:
    """Two images (with captions, unused) and two utterances, one shorter and one longer than FRAMES."""
    g = torch.Generator().manual_seed(seed)
    image_text = [{"image": torch.rand(3, 1, 1, generator=g).expand(3, S, S).clone(), "text": torch.tensor([3, 4])}
                  for _ in range(2)]  # plain colours: reconstructions that a few steps can learn
    text_speech = [{"speech": torch.rand(t, MEL, generator=g), "linear": torch.rand(t, LIN, generator=g),
                    "text": torch.tensor([5])} for t in (7, 13)]
    return image_text + text_speech


def seeded_terms(model: CycleGAN, batch: dict, seed: int = 1) -> dict:
    torch.manual_seed(seed)  # the same dropout masks for every call
    return model.terms(batch)


# ------------------------------------------------------------------------------- config


def test_config_fields_are_mibs_with_mibs_defaults():
    mib = MIBConfig()
    own = {"num_frames", "cycle_weight"}
    for f in fields(CycleGANConfig):
        if f.name not in own:
            assert getattr(CycleGANConfig(), f.name) == getattr(mib, f.name), f.name


@pytest.mark.parametrize("bad", [{"num_frames": 11}, {"num_frames": -2}, {"cycle_weight": -1.0}, {"image_size": 40},
                                 {"image_decoder_channels": [8, 4]}])
def test_bad_config_is_rejected(bad):
    with pytest.raises(ValueError):
        CycleGANConfig(**{**TINY, **bad})


def test_num_frames_zero_waits_for_the_training_data():
    cfg = CycleGANConfig(**{**TINY, "num_frames": 0})  # valid: the dataset hook sets it (test_decode_baselines)
    with pytest.raises(SkiptoolError, match="num_frames is 0"):
        CycleGAN(cfg)


def test_config_file_mirrors_mib_sizes():
    data = yaml.safe_load((REPO / "conf/train/cyclegan.yaml").read_text())
    mib = yaml.safe_load((REPO / "conf/train/mib.yaml").read_text())
    assert data["model"] == "cyclegan"
    cfg = from_dict(CycleGANConfig, data["model_conf"], source="cyclegan")
    assert set(data["model_conf"]) == set(asdict(cfg))  # every field listed
    shared = set(data["model_conf"]) - {"num_frames", "cycle_weight"}
    assert {k: data["model_conf"][k] for k in shared} == {k: mib["model_conf"][k] for k in shared}
    assert data["train"]["best_metric"] == "cycle" and data["train"]["grad_clip"] == 0


# ------------------------------------------------------------------------ training objective


def test_speech_windows_cut_and_pad():
    mel = torch.rand(2, 13, MEL)
    assert torch.equal(speech_windows(mel, 10), mel[:, :10])
    padded = speech_windows(mel[:, :7], 10)
    assert padded.shape == (2, 10, MEL) and padded[:, 7:].eq(0).all() and torch.equal(padded[:, :7], mel[:, :7])


def test_terms_are_what_they_claim():
    """In eval mode (no dropout, batch norm on running stats) every term recomputed by hand."""
    model = tiny().eval()
    batch = collate_mib(items())
    terms = model.terms(batch)
    assert set(terms) == set(GENERATOR_TERMS) | set(CRITIC_TERMS)
    x, y = batch["image"], speech_windows(batch["speech"], FRAMES)
    G, F = model.image_to_speech_net, model.speech_to_image_net
    fake_y, fake_x = G(x)[0], F(y)
    assert fake_y.shape == (2, FRAMES, MEL) and fake_x.shape == x.shape and 0 <= fake_x.min() <= fake_x.max() <= 1
    expected = {
        "cycle_image": (F(fake_y) - x).abs().mean(),
        "cycle_speech": (G(fake_x)[0] - y).abs().mean(),
        "g_adv_speech": (model.critic_speech(fake_y) - 1).pow(2).mean(),
        "g_adv_image": (model.critic_image(fake_x) - 1).pow(2).mean(),
        "d_speech": ((model.critic_speech(y) - 1).pow(2).mean() + model.critic_speech(fake_y).pow(2).mean()) / 2,
        "d_image": ((model.critic_image(x) - 1).pow(2).mean() + model.critic_image(fake_x).pow(2).mean()) / 2,
    }
    for name, value in expected.items():
        assert torch.allclose(terms[name], value, atol=1e-6), name
    # the post-net's L1 is over the valid frames of the whole (unwindowed) utterances
    lengths = batch["speech_lengths"]
    linear = model.postnet(batch["speech"], lengths)
    by_item = [(linear[i, :n] - batch["linear"][i, :n]).abs().sum() for i, n in enumerate(lengths.tolist())]
    assert torch.allclose(terms["postnet_l1"], sum(by_item) / (lengths.sum() * LIN), atol=1e-6)
    loss, stats = model(batch)
    total = (sum(terms[k] for k in ("g_adv_speech", "g_adv_image", "postnet_l1", "d_speech", "d_image"))
             + 10 * (terms["cycle_image"] + terms["cycle_speech"]))
    assert torch.allclose(loss, total) and stats["cycle"] == pytest.approx((expected["cycle_image"]
                                                                          + expected["cycle_speech"]).item())


def test_generator_terms_train_generators_critic_terms_train_critics():
    model = tiny()
    terms = seeded_terms(model, collate_mib(items()))
    generators, critics = model.generator_parameters(), model.critic_parameters()
    assert len(generators) + len(critics) == len(list(model.parameters())) and critics
    generator_loss = sum(terms[k] for k in GENERATOR_TERMS)
    critic_loss = sum(terms[k] for k in CRITIC_TERMS)
    grads = torch.autograd.grad(generator_loss, critics, retain_graph=True, allow_unused=True)
    assert all(g is None for g in grads)
    grads = torch.autograd.grad(critic_loss, generators, retain_graph=True, allow_unused=True)
    assert all(g is None for g in grads)
    assert all(g is not None for g in torch.autograd.grad(critic_loss, critics, retain_graph=True))
    # the adversarial terms reach both generators through the (frozen) critics
    g_net = list(model.image_to_speech_net.parameters())
    f_net = list(model.speech_to_image_net.parameters())
    assert any(g is not None and g.abs().sum() > 0
               for g in torch.autograd.grad(terms["g_adv_speech"], g_net, retain_graph=True, allow_unused=True))
    assert any(g is not None and g.abs().sum() > 0
               for g in torch.autograd.grad(terms["g_adv_image"], f_net, retain_graph=True, allow_unused=True))


def test_frozen_critic_passes_the_same_gradient_as_the_critic():
    model = tiny().eval()
    fake = torch.rand(2, FRAMES, MEL, requires_grad=True)
    through_frozen = torch.autograd.grad(frozen(model.critic_speech, fake).sum(), fake)[0]
    through_critic = torch.autograd.grad(model.critic_speech(fake).sum(), fake)[0]
    assert torch.allclose(through_frozen, through_critic)


def test_one_step_is_the_reference_generator_step_then_critic_step():
    """The trainer's one Adam over all parameters on `loss` == CycleGAN's reference iteration: a
    generator Adam step on the generator terms, then a critic Adam step on the critic terms, both
    from the same forward pass (the critics see the samples made before the generator's step)."""
    batch = collate_mib(items())
    ours = tiny()
    reference = copy.deepcopy(ours)
    optimizer = torch.optim.Adam(ours.parameters(), lr=0.01, betas=(0.5, 0.999))
    torch.manual_seed(1)
    loss, _ = ours(batch)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

    opt_g = torch.optim.Adam(reference.generator_parameters(), lr=0.01, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(reference.critic_parameters(), lr=0.01, betas=(0.5, 0.999))
    torch.manual_seed(1)
    terms = reference.terms(batch)
    opt_g.zero_grad()
    (terms["g_adv_speech"] + terms["g_adv_image"] + terms["postnet_l1"]
     + 10 * (terms["cycle_image"] + terms["cycle_speech"])).backward(retain_graph=True)
    opt_g.step()
    opt_d.zero_grad()  # drops what the generator terms left on the critics (nothing, as tested above)
    (terms["d_speech"] + terms["d_image"]).backward()
    opt_d.step()
    moved = 0
    for (name, a), b in zip(ours.state_dict().items(), reference.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name
        moved += not torch.equal(a, tiny().state_dict()[name])
    assert moved > 0


def test_a_few_steps_reduce_the_cycle_and_postnet_losses():
    model = tiny()
    batch = collate_mib(items())
    before = seeded_terms(model, batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.5, 0.999))
    for _ in range(20):
        optimizer.zero_grad()
        model(batch)[0].backward()
        optimizer.step()
    after = seeded_terms(model, batch)
    cycle = lambda terms: terms["cycle_image"] + terms["cycle_speech"]
    assert cycle(after) < 0.9 * cycle(before)  # the adversarial terms go up and down: a GAN's game
    assert after["postnet_l1"] < 0.9 * before["postnet_l1"]
    assert all(torch.isfinite(v) for v in after.values())


@pytest.mark.parametrize("domain", ["image", "speech"])
def test_a_batch_of_one_domain_gives_its_terms(domain):
    """The last dev batches of unequal corpora, or alternating batching, hold one domain."""
    model = tiny()
    terms = model.terms(collate_mib([it for it in items() if domain in it]))
    if domain == "image":
        assert set(terms) == {"g_adv_speech", "cycle_image", "d_speech", "d_image"}
    else:
        assert set(terms) == {"g_adv_image", "cycle_speech", "postnet_l1", "d_speech", "d_image"}
    loss, stats = model(collate_mib([it for it in items() if domain in it]))
    assert torch.isfinite(loss) and stats["cycle"] == pytest.approx(stats[f"cycle_{domain}"])


def test_bad_batches_are_user_errors():
    model = tiny()
    batch = collate_mib(items())
    with pytest.raises(SkiptoolError, match="neither image nor speech"):
        model({"image_text": batch["image_text"]})
    with pytest.raises(SkiptoolError, match="linear"):
        model({k: v for k, v in batch.items() if k != "linear"})
    with pytest.raises(SkiptoolError, match="image_size"):
        model({**batch, "image": torch.rand(2, 3, S * 2, S * 2)})


class Pairs(Dataset):
    """Mixed items: an image-text item and a text-speech item each (as collate_mib pairs)."""

    def __init__(self):
        a, b = items()[:2], items()[2:]
        self.items = [{"image": x["image"], "image_text": x["text"], "speech": y["speech"], "linear": y["linear"],
                       "speech_text": y["text"]} for x, y in zip(a, b)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_trains_with_the_trainer(tmp_path):
    cfg = TrainConfig(max_epochs=2, batch_size=2, log_interval=0, best_metric="cycle",
                      optim=OptimConfig(lr=0.01, betas=[0.5, 0.999]))
    result = Trainer(tiny(), Pairs(), collate_mib, cfg, tmp_path, device="cpu", quiet=True).fit()
    assert result.epochs == 2 and (tmp_path / "checkpoints/best.pt").exists()
    assert {"cycle", "d_speech", "g_adv_image"} <= set(result.history[-1].train)


# ------------------------------------------------------------------------------ generation


def test_generation():
    model = tiny().eval()
    batch = collate_mib(items())
    torch.manual_seed(3)  # the pre-net keeps its dropout (prenet_dropout_at_inference)
    speech = model.image_to_speech(batch["image"])
    assert speech.mel.shape == (2, FRAMES, MEL) and speech.linear.shape == (2, FRAMES, LIN)
    assert speech.lengths.tolist() == [FRAMES, FRAMES] and speech.alignments.shape == (2, FRAMES // 2, 5)
    torch.manual_seed(3)
    assert torch.equal(model.generate("image", "speech", batch["image"]).mel, speech.mel)
    assert not model.image_to_speech_net.decoder.prenet.training  # back in eval mode
    model = tiny(prenet_dropout_at_inference=False).eval()
    assert torch.equal(model.image_to_speech(batch["image"]).mel, model.image_to_speech(batch["image"]).mel)
    images = model.generate("speech", "image", batch["speech"], batch["speech_lengths"])
    assert images.shape == (2, 3, S, S)
    with pytest.raises(SkiptoolError, match="CycleGAN baseline generates"):
        model.generate("image", "text", batch["image"])
