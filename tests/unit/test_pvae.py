"""PVAE and baselines (paper 004): architecture at the paper's sizes, shapes of every encoder and
decoder, the objective's terms (masking, CH, CM, labels unused), generation API, configs."""

import math
from pathlib import Path

import pytest
import torch
import yaml

from skiptool.models.pvae import PVAE, PVAEConfig, followed_by_silence
from skiptool.utils.config import from_dict, load_config
from skiptool.utils.errors import SkiptoolError

REPO = Path(__file__).resolve().parents[2]
VARIANTS = ["pvae", "pvae_nocm", "jmvae_kl", "vae_sp", "vae_im"]
D, S = 6, 8  # tiny feature dim and image side


def tiny(variant: str = "pvae", **overrides) -> PVAEConfig:
    sizes = dict(speech_dim=D, image_size=S, z_semantic_dim=3, z_style_dim=2, speech_hidden_dim=12,
                 image_encoder_channels=[2, 3], image_hidden_dim=10, image_decoder_channels=[4, 3])
    return PVAEConfig(variant=variant, **{**sizes, **overrides})


def make_batch(batch_size: int = 6, frames: int = 7, seed: int = 0) -> dict:
    """Padded speech and images that carry their digit class (a per-class pattern plus noise),
    so that there is something to learn; pairs share the class."""
    g = torch.Generator().manual_seed(seed)
    speech_patterns, image_patterns = 2 * torch.randn(10, frames, D, generator=g), torch.rand(10, 1, S, S, generator=g)
    label = torch.randint(0, 10, (batch_size,), generator=g)
    lengths = torch.randint(2, frames + 1, (batch_size,), generator=g)
    lengths[0] = frames
    speech = speech_patterns[label] + 0.3 * torch.randn(batch_size, frames, D, generator=g)
    speech[torch.arange(frames)[None, :] >= lengths[:, None]] = 0.0  # padding
    image = (image_patterns[label] + 0.2 * torch.rand(batch_size, 1, S, S, generator=g)).round().clamp(0, 1)
    return {"speech": speech, "speech_lengths": lengths, "image": image, "label": label}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and a busy shared machine makes 2-thread OpenMP
    spin-waits of such small ops very slow."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def loss_with_seed(model: PVAE, batch: dict, seed: int = 123) -> torch.Tensor:
    torch.manual_seed(seed)  # the same posterior samples and CM negatives for both calls
    return model(batch)[0]


# ---------------------------------------------------------------- architecture and config


def test_paper_defaults():
    cfg = PVAEConfig()
    assert (cfg.z_semantic_dim, cfg.z_style_dim, cfg.speech_dim, cfg.image_size) == (32, 32, 80, 28)
    assert (cfg.alpha_ch, cfg.alpha_cm, cfg.cm_margin) == (0.1, 10.0, 0.5)
    assert PVAEConfig(variant="pvae_nocm").alpha_cm == 0.0
    assert PVAEConfig(variant="jmvae_kl").z_dim == 96 and PVAEConfig(variant="jmvae_kl").alpha_ch == 0.1
    assert PVAEConfig(variant="vae_sp").z_dim == 64 and PVAEConfig(variant="vae_sp").modalities == ("speech",)


def test_paper_architecture():
    model = PVAE(PVAEConfig())
    joint, speech_enc, image_enc = model.joint_encoder, model.speech_encoder, model.image_encoder
    for lstm in (joint.speech_pre.lstm, speech_enc.speech_pre.lstm, model.speech_decoder.lstm):
        assert (lstm.num_layers, lstm.hidden_size) == (1, 512)
    assert model.speech_decoder.lstm.input_size == 64 and model.speech_decoder.out.out_features == 80
    assert {n: h.z_dim for n, h in joint.heads.items()} == {"z_s": 32, "z_a": 32, "z_i": 32}
    assert joint.heads["z_s"].proj.in_features == 1024  # concatenated pre-encoder outputs
    assert set(speech_enc.heads) == {"z_s", "z_a"} and set(image_enc.heads) == {"z_s", "z_i"}
    convs = [m for m in image_enc.image_pre.net if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8]
    linears = [m for m in model.image_decoder.net if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(64, 512), (512, 7 * 7 * 16)]
    # multimodal and unimodal pre-encoders do not share parameters
    joint_params = {p.data_ptr() for p in joint.parameters()}
    assert not joint_params & {p.data_ptr() for p in speech_enc.parameters()}
    assert not joint_params & {p.data_ptr() for p in image_enc.parameters()}

    jmvae = PVAE(PVAEConfig(variant="jmvae_kl"))
    assert {n: h.z_dim for n, h in jmvae.joint_encoder.heads.items()} == {"z": 96}
    assert jmvae.speech_decoder.lstm.input_size == 96
    vae_sp, vae_im = PVAE(PVAEConfig(variant="vae_sp")), PVAE(PVAEConfig(variant="vae_im"))
    assert vae_sp.image_encoder is None and vae_sp.joint_encoder is None
    assert vae_im.speech_decoder is None and vae_im.image_decoder.net[0].in_features == 64


@pytest.mark.parametrize("text, needle", [
    ("variant: pvae_nocm\nalpha_cm: 10\n", "alpha_cm"),
    ("variant: vae_im\nalpha_ch: 0.1\n", "alpha_ch"),
    ("variant: pvae\nz_dim: 64\n", "z_dim"),
    ("image_size: 30\n", "image_size"),
    ("variant: pvae\nlatent_dim: 3\n", "latent_dim"),
    ("variant: vae\n", "variant"),
])
def test_bad_config_is_a_user_error(tmp_path, text, needle):
    path = tmp_path / "model.yaml"
    path.write_text(text)
    with pytest.raises(SkiptoolError, match=needle):
        load_config(PVAEConfig, path)


@pytest.mark.parametrize("name, variant", [("pvae", "pvae"), ("pvae_nocm", "pvae_nocm"),
                                           ("pvae_jmvae_kl", "jmvae_kl"), ("pvae_vae_sp", "vae_sp"),
                                           ("pvae_vae_im", "vae_im")])
def test_shipped_configs(name, variant):
    data = yaml.safe_load((REPO / "conf" / "train" / f"{name}.yaml").read_text())
    assert data["model"] == "pvae"
    cfg = from_dict(PVAEConfig, data["model_conf"], source=name)
    assert cfg.variant == variant and cfg.alpha_cm == (10.0 if variant == "pvae" else 0.0)
    assert cfg.latent_dims() == PVAEConfig(variant=variant).latent_dims()
    optim = data["train"]["optim"]
    assert (data["train"]["batch_size"], optim["name"], optim["lr"], optim["betas"]) == (
        256, "adam", 0.001, [0.95, 0.999])


def test_crossmodal_config_changes_only_its_documented_weights():
    paper, tuned = (yaml.safe_load((REPO / "conf" / "train" / f"{name}.yaml").read_text())
                    for name in ("pvae", "pvae_crossmodal"))
    changed = {key: value for key, value in tuned["model_conf"].items() if paper["model_conf"][key] != value}
    assert changed == {"image_likelihood": "bernoulli", "alpha_ch": 1.0, "alpha_cm": 30.0, "ch_warmup_steps": 1000,
                       "kl_z_a_weight": 2.0, "kl_z_i_weight": 2.5}
    assert set(tuned["model_conf"]) == set(paper["model_conf"])
    cfg = from_dict(PVAEConfig, tuned["model_conf"], source="pvae_crossmodal")
    assert (cfg.kl_z_a_weight, cfg.kl_z_i_weight) == (2.0, 2.5)
    assert (tuned["train"]["batch_size"], tuned["train"]["max_epochs"]) == (64, 200)
    assert (REPO / "egs" / "tidigit_mnist" / "conf" / "train_pvae_crossmodal.yaml").resolve() == (
        REPO / "conf" / "train" / "pvae_crossmodal.yaml")



def test_augmented_config_adds_only_augmentation_and_epochs():
    plain, augmented = (yaml.safe_load((REPO / "conf" / "train" / f"{name}.yaml").read_text())
                        for name in ("pvae_crossmodal", "pvae_crossmodal_aug"))
    changed = {key: value for key, value in augmented["model_conf"].items() if plain["model_conf"][key] != value}
    assert changed == {"image_augment_degrees": 5.0, "image_augment_translate": 0.07, "image_augment_scale": 0.05,
                       "image_augment_inputs": "encoders"}
    assert set(augmented["model_conf"]) == set(plain["model_conf"])
    assert from_dict(PVAEConfig, augmented["model_conf"], source="pvae_crossmodal_aug").image_augment_inputs == "encoders"
    train_changes = {key: value for key, value in augmented["train"].items() if plain["train"].get(key) != value}
    assert train_changes == {"max_epochs": 260, "keep_nbest": 10}
    assert (REPO / "egs" / "tidigit_mnist" / "conf" / "train_pvae_crossmodal_aug.yaml").resolve() == (
        REPO / "conf" / "train" / "pvae_crossmodal_aug.yaml")

def test_voice_config_adds_only_the_cross_term_and_its_style_lstm():
    augmented, voice = (yaml.safe_load((REPO / "conf" / "train" / f"{name}.yaml").read_text())
                        for name in ("pvae_crossmodal_aug", "pvae_crossmodal_voice"))
    changed = {key: value for key, value in voice["model_conf"].items() if augmented["model_conf"][key] != value}
    assert changed == {"alpha_cross_reconstruction": 1.0, "cross_reconstruction_warmup_steps": 1000,
                       "speech_style_own_lstm": True}
    assert set(voice["model_conf"]) == set(augmented["model_conf"]) and voice["train"] == augmented["train"]
    assert PVAE(from_dict(PVAEConfig, voice["model_conf"], source="pvae_crossmodal_voice")).speech_encoder.own_speech_pre
    assert (REPO / "egs" / "tidigit_mnist" / "conf" / "train_pvae_crossmodal_voice.yaml").resolve() == (
        REPO / "conf" / "train" / "pvae_crossmodal_voice.yaml")


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("variant", VARIANTS)
def test_encoder_and_decoder_shapes(variant):
    cfg = tiny(variant)
    model = PVAE(cfg)
    batch = make_batch(batch_size=4)
    dims = cfg.latent_dims()
    if "speech" in cfg.modalities:
        post = model.encode_speech(batch["speech"], batch["speech_lengths"])
        assert set(post) == set(cfg.latents("speech"))
        assert all(m.shape == v.shape == (4, dims[n]) for n, (m, v) in post.items())
        z = [post[n][0] for n in cfg.latents("speech")] + [None]
        assert model.decode_speech(z[0], z[1], 11).shape == (4, 11, D)
    else:
        with pytest.raises(SkiptoolError, match="no speech encoder"):
            model.encode_speech(batch["speech"], batch["speech_lengths"])
    if "image" in cfg.modalities:
        post = model.encode_image(batch["image"])
        assert set(post) == set(cfg.latents("image"))
        assert all(m.shape == v.shape == (4, dims[n]) for n, (m, v) in post.items())
        z = [post[n][0] for n in cfg.latents("image")] + [None]
        image = model.decode_image(z[0], z[1])
        assert image.shape == (4, 1, S, S) and image.min() >= 0 and image.max() <= 1
    if model.joint_encoder is not None:
        post = model.encode_multimodal(batch["speech"], batch["speech_lengths"], batch["image"])
        assert {n: m.shape for n, (m, _) in post.items()} == {n: (4, d) for n, d in dims.items()}


def test_generation_shapes_and_style_wiring():
    torch.manual_seed(0)
    model = PVAE(tiny()).eval()
    batch = make_batch(batch_size=3)
    speech, lengths, image = batch["speech"], batch["speech_lengths"], batch["image"]
    with torch.no_grad():
        # semantics from the source, style from the reference (here one shared reference)
        out = model.speech_to_image(speech, lengths, style_image=image[:1])
        z_s = model.encode_speech(speech, lengths)["z_s"][0]
        z_i = model.encode_image(image[:1])["z_i"][0].expand(3, -1)
        assert torch.allclose(out, model.decode_image(z_s, z_i))
        out = model.image_to_speech(image, 9, style_speech=speech, style_lengths=lengths)
        z_s = model.encode_image(image)["z_s"][0]
        z_a = model.encode_speech(speech, lengths)["z_a"][0]
        assert out.shape == (3, 9, D) and torch.allclose(out, model.decode_speech(z_s, z_a, 9))
        # without a reference the style comes from the prior: reproducible with a generator
        a = model.speech_to_image(speech, lengths, generator=torch.Generator().manual_seed(1))
        b = model.speech_to_image(speech, lengths, generator=torch.Generator().manual_seed(1))
        c = model.speech_to_image(speech, lengths, generator=torch.Generator().manual_seed(2))
        assert torch.equal(a, b) and not torch.allclose(a, c)
        assert model.image_to_speech(image, 5).shape == (3, 5, D)
        with pytest.raises(SkiptoolError, match="style references"):
            model.speech_to_image(speech, lengths, style_image=image[:2])


def test_cross_modal_errors_for_baselines():
    batch = make_batch(batch_size=2)
    jmvae = PVAE(tiny("jmvae_kl"))
    assert jmvae.speech_to_image(batch["speech"], batch["speech_lengths"]).shape == (2, 1, S, S)
    assert jmvae.image_to_speech(batch["image"], 4).shape == (2, 4, D)
    with pytest.raises(SkiptoolError, match="no style latent"):
        jmvae.speech_to_image(batch["speech"], batch["speech_lengths"], style_image=batch["image"])
    with pytest.raises(SkiptoolError, match="cannot generate across"):
        PVAE(tiny("vae_sp")).speech_to_image(batch["speech"], batch["speech_lengths"])


# ---------------------------------------------------------------- objective


@pytest.mark.parametrize("variant", VARIANTS)
def test_loss_is_finite_and_reaches_every_parameter(variant):
    torch.manual_seed(0)
    model = PVAE(tiny(variant))
    loss, stats = model(make_batch())
    assert torch.isfinite(loss) and stats["loss"] == pytest.approx(loss.item())
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    expected = {"pvae": {"ch", "cm"}, "pvae_nocm": {"ch"}, "jmvae_kl": {"ch"}}.get(variant, set())
    assert {"ch", "cm"} & set(stats) == expected


def test_loss_is_negative_eq9():
    torch.manual_seed(0)
    model = PVAE(tiny())
    batch = make_batch()
    torch.manual_seed(5)
    terms = model.terms(batch)
    torch.manual_seed(5)
    loss, stats = model(batch)
    expected = -(terms["elbo"] - 0.1 * terms["ch"] - 10.0 * terms["cm"]).mean()
    assert torch.allclose(loss, expected)
    assert terms["elbo"].allclose(-(terms["nll_speech"] + terms["nll_image"] + terms["kl_z_s"]
                                    + terms["kl_z_a"] + terms["kl_z_i"]))


def test_single_modality_variants_need_only_their_modality():
    batch = make_batch()
    speech_only = {k: batch[k] for k in ("speech", "speech_lengths")}
    image_only = {"image": batch["image"]}
    assert torch.isfinite(PVAE(tiny("vae_sp"))(speech_only)[0])
    assert torch.isfinite(PVAE(tiny("vae_im"))(image_only)[0])
    with pytest.raises(SkiptoolError, match="image"):
        PVAE(tiny("pvae"))(speech_only)
    with pytest.raises(SkiptoolError, match="speech_lengths"):
        PVAE(tiny("vae_sp"))({"speech": batch["speech"]})
    with pytest.raises(SkiptoolError, match=f"{D + 1}"):
        PVAE(tiny("vae_sp"))({"speech": torch.zeros(2, 3, D + 1), "speech_lengths": torch.tensor([3, 2])})


def test_padding_does_not_change_the_loss():
    torch.manual_seed(0)
    model = PVAE(tiny())
    batch = make_batch(frames=7)
    lengths = batch["speech_lengths"]
    assert lengths.min() < 7
    reference = loss_with_seed(model, batch)
    padded = dict(batch)
    speech = torch.cat([batch["speech"], torch.zeros(6, 4, D)], dim=1)  # 4 more padding frames
    speech[torch.arange(11)[None, :] >= lengths[:, None]] = 1e3  # garbage in every padding frame
    padded["speech"] = speech
    assert torch.allclose(loss_with_seed(model, padded), reference, rtol=1e-5)
    changed = dict(batch)
    changed["speech"] = batch["speech"].clone()
    changed["speech"][1, lengths[1] - 1] += 1.0  # a real frame does count
    assert not torch.allclose(loss_with_seed(model, changed), reference, rtol=1e-5)


def test_labels_are_not_used():
    torch.manual_seed(0)
    model = PVAE(tiny())
    batch = make_batch()
    reference = loss_with_seed(model, batch)
    assert torch.equal(loss_with_seed(model, {**batch, "label": torch.zeros_like(batch["label"])}), reference)
    assert torch.equal(loss_with_seed(model, {k: v for k, v in batch.items() if k != "label"}), reference)


def test_batch_of_one_has_no_negatives():
    torch.manual_seed(0)
    loss, stats = PVAE(tiny())(make_batch(batch_size=1))
    assert torch.isfinite(loss) and stats["cm"] == 0.0


def test_eval_mode_forward():
    model = PVAE(tiny()).eval()
    with torch.no_grad():
        loss, stats = model(make_batch())
    assert torch.isfinite(loss) and set(stats) >= {"loss", "elbo", "nll_speech", "nll_image", "ch", "cm"}


def _train(model: PVAE, objective, steps: int, lr: float = 1e-2) -> list[float]:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.95, 0.999))
    values = []
    for _ in range(steps):
        optimizer.zero_grad()
        value = objective()
        value.backward()
        optimizer.step()
        values.append(value.item())
    return values


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_few_steps_reduce_the_loss(variant):
    torch.manual_seed(0)
    cfg = tiny(variant)
    model = PVAE(cfg)
    batch = make_batch()
    # Unit-variance Gaussian likelihoods carry a constant 0.5 log(2 pi) per observed value that no
    # training can remove; compare what is left above it.
    observed = (batch["speech_lengths"].sum() * D / len(batch["image"]) if "speech" in cfg.modalities else 0)
    observed += S * S if "image" in cfg.modalities else 0
    constant = 0.5 * math.log(2 * math.pi) * float(observed)
    losses = [loss - constant for loss in _train(model, lambda: model(batch)[0], steps=60, lr=3e-2)]
    assert sum(losses[-5:]) < 0.85 * sum(losses[:5]), losses


def _semantic_means(model: PVAE, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    mu_speech = model.encode_speech(batch["speech"], batch["speech_lengths"])["z_s"][0]
    return mu_speech, model.encode_image(batch["image"])["z_s"][0]


def _pair_vs_negative_distance(model: PVAE, batch: dict) -> float:
    """Mean squared distance of a pair's z_s means over the mean distance to other pairs."""
    with torch.no_grad():
        mu_speech, mu_image = _semantic_means(model, batch)
        distance = torch.cdist(mu_speech, mu_image).pow(2)
        off = ~torch.eye(len(distance), dtype=torch.bool)
        return (distance.diagonal().mean() / distance[off].mean()).item()


def test_cm_pulls_pairs_together_and_pushes_negatives_apart():
    torch.manual_seed(0)
    model = PVAE(tiny(cm_negatives="all"))
    batch = make_batch(batch_size=8)
    before = _pair_vs_negative_distance(model, batch)
    hinges = _train(model, lambda: model.semantic_contrastiveness(*_semantic_means(model, batch)).mean(),
                    steps=60)
    after = _pair_vs_negative_distance(model, batch)
    assert hinges[-1] < 0.5 * hinges[0], hinges
    assert after < 0.5 * before, (before, after)


def test_ch_decreases_when_optimised():
    torch.manual_seed(0)
    model = PVAE(tiny("pvae_nocm"))
    batch = make_batch()
    values = _train(model, lambda: model.terms(batch)["ch"].mean(), steps=30)
    assert values[-1] < 0.3 * values[0], values
    # and it is the KL between the multimodal and unimodal posteriors: zero when they agree
    with torch.no_grad():
        q = model.encode_multimodal(batch["speech"], batch["speech_lengths"], batch["image"])
        r_speech = model.encode_speech(batch["speech"], batch["speech_lengths"])
        gap = (q["z_s"][0] - r_speech["z_s"][0]).abs().mean()
    assert gap < 0.5


def _class_batch(classes: int = 3, per_class: int = 4, seed: int = 0) -> dict:
    """make_batch's class patterns, but every class several times, so that same-class items other
    than a pair exist."""
    batch = make_batch(batch_size=classes * per_class, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    frames = batch["speech"].size(1)
    speech_patterns, image_patterns = 2 * torch.randn(classes, frames, D, generator=g), torch.rand(classes, 1, S, S, generator=g)
    label = torch.arange(classes).repeat(per_class)
    n = len(label)
    speech = speech_patterns[label] + 0.3 * torch.randn(n, frames, D, generator=g)
    speech[torch.arange(frames)[None, :] >= batch["speech_lengths"][:, None]] = 0.0
    image = (image_patterns[label] + 0.2 * torch.rand(n, 1, S, S, generator=g)).round().clamp(0, 1)
    return {**batch, "speech": speech, "image": image, "label": label}


def _same_vs_other_class_distance(model: PVAE, batch: dict) -> float:
    """Mean squared distance between the z_s means (speech and image, all pairs of distinct
    items) of the same class over that of different classes."""
    with torch.no_grad():
        mu = torch.cat(_semantic_means(model, batch))
        label = batch["label"].repeat(2)
        distance = torch.cdist(mu, mu).pow(2)
        same = (label[:, None] == label[None, :]) & ~torch.eye(len(label), dtype=torch.bool)
        other = label[:, None] != label[None, :]
        return (distance[same].mean() / distance[other].mean()).item()


def test_cm_alone_gathers_each_class_in_the_semantic_space():
    """The paper's claim for CM (sec. 2.2.3): optimising it alone, with random negatives (it never
    sees labels), brings z_s of the same digit together across modalities, relative to others."""
    torch.manual_seed(0)
    model = PVAE(tiny())
    batch = _class_batch()
    before = _same_vs_other_class_distance(model, batch)
    hinges = _train(model, lambda: model.semantic_contrastiveness(*_semantic_means(model, batch)).mean(),
                    steps=60)
    after = _same_vs_other_class_distance(model, batch)
    assert sum(hinges[-5:]) < 0.5 * sum(hinges[:5]), hinges
    assert after < 0.5 * before, (before, after)


def test_ch_term_pulls_unimodal_posteriors_to_the_multimodal_one():
    """Gradient steps on the full pvae objective with alpha_ch raised lower CH more than with
    alpha_ch near 0: the term acts in the right direction."""
    batch = make_batch()
    finals = {}
    for alpha in (1e-4, 1.0):
        torch.manual_seed(0)
        model = PVAE(tiny("pvae_nocm", alpha_ch=alpha))
        _train(model, lambda: loss_with_seed(model, batch), steps=30)
        torch.manual_seed(1)
        finals[alpha] = model.terms(batch)["ch"].mean().item()
    assert finals[1.0] < 0.5 * finals[1e-4], finals


# ---------------------------------------------------------------- registry: data and training


@pytest.fixture(scope="module")
def featdirs(tmp_path_factory):
    from tests.fixtures.featdirs import write_image_dir, write_speech_dir

    root = tmp_path_factory.mktemp("pvae_feats")
    return {"speech": write_speech_dir(root / "speech", per_class=4, dim=D),
            "image": write_image_dir(root / "image", per_class=6, side=S)}


def test_registry_dataset_draws_style_utterances_from_utt2spk(featdirs, tmp_path):
    import shutil

    from skiptool.models import MODELS

    entry, cfg = MODELS["pvae"], tiny(alpha_cross_reconstruction=1.0)
    pairs = entry.dataset(cfg, featdirs, True, 0)
    batch = entry.collate([pairs[i] for i in range(4)])
    assert {"style_speech", "style_speech_lengths"} <= set(batch)
    assert torch.isfinite(PVAE(cfg)(batch)[0])
    assert "style_speech" not in entry.dataset(tiny(), featdirs, True, 0)[0]
    speech = shutil.copytree(featdirs["speech"], tmp_path / "speech")
    (speech / "utt2spk").write_text("spk00_0 spk00\n")
    with pytest.raises(SkiptoolError, match=r"utt2spk: no speaker for 'spk00_1'"):
        entry.dataset(cfg, {**featdirs, "speech": speech}, True, 0)
    (speech / "utt2spk").unlink()
    with pytest.raises(SkiptoolError, match=r"speech/utt2spk: not found; alpha_cross_reconstruction"):
        entry.dataset(cfg, {**featdirs, "speech": speech}, True, 0)


def test_registry_dataset_of_each_variant(featdirs):
    from skiptool.data.datasets import FeatsDataset, ImageFeatsDataset, SameClassPairs
    from skiptool.models import MODELS

    entry = MODELS["pvae"]
    for variant in ("pvae", "pvae_nocm", "jmvae_kl"):
        pairs = entry.dataset(tiny(variant), featdirs, True, 0)
        assert isinstance(pairs, SameClassPairs)
        batch = entry.collate([pairs[i] for i in range(4)])
        assert set(batch) >= {"speech", "speech_lengths", "image", "label"}
        with pytest.raises(SkiptoolError, match="--data image=DIR"):
            entry.dataset(tiny(variant), {"speech": featdirs["speech"]}, True, 0)
    # one-modality baselines: their own data alone, or both (the recipe passes both to every model)
    for variant, modality, cls in (("vae_sp", "speech", FeatsDataset), ("vae_im", "image", ImageFeatsDataset)):
        for given in ({modality: featdirs[modality]}, featdirs):
            data = entry.dataset(tiny(variant), given, True, 0)
            assert isinstance(data, cls)
            loss, _ = entry.build(tiny(variant))(entry.collate([data[i] for i in range(4)]))
            assert torch.isfinite(loss)
        with pytest.raises(SkiptoolError, match=f"--dev-data {modality}=DIR"):
            entry.dataset(tiny(variant), {}, False, 0)


def test_training_resumes_with_the_same_pairs(featdirs, tmp_path):
    """Pairs are redrawn per epoch from (seed, epoch): an interrupted run resumed from its
    checkpoint ends bit-identical to an uninterrupted one."""
    from skiptool.train import checkpoint as ckpt
    from skiptool.train.trainer import load_experiment_config, train_experiment
    from tests.fixtures.featdirs import write_config

    sizes = dict(speech_dim=D, image_size=S, z_semantic_dim=3, z_style_dim=2, speech_hidden_dim=12,
                 image_encoder_channels=[2, 3], image_hidden_dim=10, image_decoder_channels=[4, 3])
    config = write_config(tmp_path / "pvae.yaml", "pvae", {"variant": "pvae", **sizes}, batch_size=4)

    def run(exp: str, epochs: int):
        experiment = load_experiment_config(config, {"train.max_epochs": epochs})
        return train_experiment(experiment, featdirs, None, tmp_path / exp, device="cpu", quiet=True)

    run("straight", 3)
    run("resumed", 1)
    run("resumed", 3)
    a = ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path / "straight", "latest"))["model"]
    b = ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path / "resumed", "latest"))["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert "resumed from" in (tmp_path / "resumed" / "train.log").read_text()


def test_ch_warmup_ramps_alpha_ch_over_training_steps():
    torch.manual_seed(0)
    model = PVAE(tiny(ch_warmup_steps=4)).train()
    batch = make_batch()
    weights = []
    for _ in range(6):
        weights.append(model.ch_weight())
        model(batch)
    assert weights == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1, 0.1])
    copy = PVAE(tiny(ch_warmup_steps=4))
    assert copy.eval().ch_weight() == 0.1 and copy.train().ch_weight() == 0.0  # dev losses: the full weight
    copy.load_state_dict(model.state_dict())  # the step count is saved: a resumed run goes on
    assert copy.ch_weight() == pytest.approx(0.1)
    model.eval()
    model(batch)
    assert model.train_steps.item() == 6  # evaluation is not a training step
    assert PVAE(tiny()).ch_weight() == 0.1  # off by default: the paper's constant weight


def test_kl_style_weight_weights_only_the_style_kls():
    batch = make_batch()
    torch.manual_seed(0)
    model = PVAE(tiny())
    weighted = PVAE(tiny(kl_style_weight=3.0))
    weighted.load_state_dict(model.state_dict())
    torch.manual_seed(5)
    terms = model.terms(batch)
    plain, weighted_loss = loss_with_seed(model, batch, 5), loss_with_seed(weighted, batch, 5)
    extra = 2.0 * (terms["kl_z_a"] + terms["kl_z_i"]).mean()
    assert torch.allclose(weighted_loss, plain + extra)
    torch.manual_seed(5)
    assert weighted(batch)[1]["elbo"] == pytest.approx(terms["elbo"].mean().item())  # logged ELBO unchanged
    assert PVAEConfig().kl_style_weight == 1.0  # the paper's plain ELBO by default
    with pytest.raises(ValueError, match="kl_style_weight"):
        tiny("jmvae_kl", kl_style_weight=2.0)
    with pytest.raises(ValueError, match="kl_style_weight"):
        tiny(kl_style_weight=-1.0)


def test_kl_z_a_and_z_i_weights_override_the_style_weight():
    batch = make_batch()
    torch.manual_seed(0)
    model = PVAE(tiny())
    split = PVAE(tiny(kl_style_weight=3.0, kl_z_i_weight=1.5))  # z_a takes 3.0, z_i 1.5
    split.load_state_dict(model.state_dict())
    torch.manual_seed(5)
    terms = model.terms(batch)
    plain, split_loss = loss_with_seed(model, batch, 5), loss_with_seed(split, batch, 5)
    assert torch.allclose(split_loss, plain + (2.0 * terms["kl_z_a"] + 0.5 * terms["kl_z_i"]).mean())
    assert (split.cfg.kl_z_a_weight, split.cfg.kl_z_i_weight) == (3.0, 1.5)
    assert (PVAEConfig().kl_z_a_weight, PVAEConfig().kl_z_i_weight) == (1.0, 1.0)
    with pytest.raises(ValueError, match="kl_z_a_weight"):
        tiny(kl_z_a_weight=-0.5)
    with pytest.raises(ValueError, match="kl_z_i_weight"):
        tiny("vae_im", kl_z_i_weight=2.0)


def test_kl_z_s_weight_weights_only_the_semantic_kl():
    batch = make_batch()
    torch.manual_seed(0)
    model = PVAE(tiny())
    weighted = PVAE(tiny(kl_z_s_weight=2.5, kl_z_a_weight=2.0))
    weighted.load_state_dict(model.state_dict())
    torch.manual_seed(5)
    terms = model.terms(batch)
    plain, weighted_loss = loss_with_seed(model, batch, 5), loss_with_seed(weighted, batch, 5)
    assert torch.allclose(weighted_loss, plain + (1.5 * terms["kl_z_s"] + 1.0 * terms["kl_z_a"]).mean())
    assert PVAEConfig().kl_z_s_weight == 1.0
    with pytest.raises(ValueError, match="kl_z_s_weight"):
        tiny(kl_z_s_weight=-1.0)
    with pytest.raises(ValueError, match="kl_z_s_weight"):
        tiny("jmvae_kl", kl_z_s_weight=2.0)


def with_style(batch: dict, shift: int = 1) -> dict:
    """`batch` plus style_speech: each utterance's style is the next one's (as if by its speaker)."""
    order = torch.roll(torch.arange(batch["speech"].size(0)), -shift)
    return {**batch, "style_speech": batch["speech"][order], "style_speech_lengths": batch["speech_lengths"][order]}


def test_cross_reconstruction_adds_its_weighted_term():
    batch = with_style(make_batch())
    torch.manual_seed(0)
    model = PVAE(tiny())
    crossed = PVAE(tiny(alpha_cross_reconstruction=0.5))
    crossed.load_state_dict(model.state_dict())  # no parameters of its own
    torch.manual_seed(5)
    terms = crossed.terms(batch)  # its extra draws come after every draw of the plain objective
    plain, crossed_loss = loss_with_seed(model, batch, 5), loss_with_seed(crossed, batch, 5)
    assert "cross_reconstruction" not in model.terms(batch)
    assert torch.allclose(crossed_loss, plain + 0.5 * terms["cross_reconstruction"].mean())
    with pytest.raises(SkiptoolError, match="no style_speech; alpha_cross_reconstruction"):
        crossed.terms(make_batch())


def test_cross_reconstruction_warmup_ramps_its_weight():
    model = PVAE(tiny(alpha_cross_reconstruction=2.0, cross_reconstruction_warmup_steps=4)).train()
    batch = with_style(make_batch())
    weights = []
    for _ in range(6):
        weights.append(model.cross_reconstruction_weight())
        model(batch)
    assert weights == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.0])
    fresh = PVAE(tiny(alpha_cross_reconstruction=2.0, cross_reconstruction_warmup_steps=4))
    assert fresh.eval().cross_reconstruction_weight() == 2.0  # dev losses: always the full objective
    assert PVAE(tiny(alpha_cross_reconstruction=2.0)).cross_reconstruction_weight() == 2.0
    with pytest.raises(ValueError, match="cross_reconstruction_warmup_steps"):
        tiny(cross_reconstruction_warmup_steps=-1)


def test_cross_reconstruction_trains_the_decoder_and_the_style_encoder_only():
    """Speech is rebuilt from the paired image's unimodal z_s (a constant) and the style utterance's
    unimodal z_a: the term reaches the decoder and the style utterance, never the image, the joint
    encoder or the speech's own z_s."""
    model = PVAE(tiny(alpha_ch=0.0, alpha_cm=0.0, alpha_cross_reconstruction=1.0))
    batch = with_style(make_batch())
    batch["image"].requires_grad_(True)
    batch["style_speech"].requires_grad_(True)
    model.terms(batch)["cross_reconstruction"].sum().backward()
    assert batch["style_speech"].grad.abs().sum() > 0
    assert batch["image"].grad is None
    assert all(p.grad is None for p in [*model.joint_encoder.parameters(), *model.image_encoder.parameters()])
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.speech_decoder.parameters())
    z_s_head = [p for name, p in model.speech_encoder.named_parameters() if "z_s" in name]
    assert z_s_head and all(p.grad is None or not p.grad.any() for p in z_s_head)
    with pytest.raises(ValueError, match="alpha_cross_reconstruction"):
        tiny(alpha_cross_reconstruction=-1.0)
    with pytest.raises(ValueError, match="alpha_cross_reconstruction"):
        tiny("jmvae_kl", alpha_cross_reconstruction=1.0)


def test_speech_style_own_lstm_keeps_the_cross_term_off_what_z_s_reads():
    """With its own LSTM, z_a of unimodal speech no longer shares the pre-encoder of z_s: the cross
    term reaches the style LSTM and the z_a head, and nothing that z_s is inferred from."""
    shared = PVAE(tiny(alpha_ch=0.0, alpha_cm=0.0, alpha_cross_reconstruction=1.0))
    own = PVAE(tiny(alpha_ch=0.0, alpha_cm=0.0, alpha_cross_reconstruction=1.0, speech_style_own_lstm=True))
    batch = with_style(make_batch())
    for model in (shared, own):
        model.terms(batch)["cross_reconstruction"].sum().backward()
    assert shared.speech_encoder.speech_pre.lstm.weight_ih_l0.grad.abs().sum() > 0
    encoder = own.speech_encoder
    reached = {name for name, p in encoder.named_parameters() if p.grad is not None and p.grad.any()}
    assert reached and all(name.startswith(("own_speech_pre.z_a.", "heads.z_a.")) for name in reached)
    assert any(name.startswith("own_speech_pre.z_a.") for name in reached)
    # z_s and z_a of one utterance come from different LSTMs, at the configured sizes
    speech, lengths = batch["speech"], batch["speech_lengths"]
    posterior = own.eval().encode_speech(speech, lengths)
    assert set(posterior) == {"z_s", "z_a"} and posterior["z_a"][0].shape == (speech.size(0), 2)
    only = encoder(speech, lengths, only=("z_a",))
    assert set(only) == {"z_a"} and torch.allclose(only["z_a"][0], posterior["z_a"][0])
    assert len(own.state_dict()) > len(shared.state_dict())  # off by default: old checkpoints load
    with pytest.raises(ValueError, match="speech_style_own_lstm"):
        tiny("jmvae_kl", speech_style_own_lstm=True)


# ---------------------------------------------------------------- image augmentation


def test_image_augmentation_acts_in_training_only():
    batch = make_batch()
    plain = PVAE(tiny(cm_negatives="all"))
    augmented = PVAE(tiny(cm_negatives="all", image_augment_degrees=20, image_augment_translate=0.2))
    augmented.load_state_dict(plain.state_dict())  # no parameters of its own: old checkpoints load
    for mode in ("eval", "train"):
        getattr(plain, mode)(), getattr(augmented, mode)()
        torch.manual_seed(5)
        expected = plain.terms(batch)["nll_image"]
        torch.manual_seed(5)
        got = augmented.terms(batch)["nll_image"]
        assert torch.equal(got, expected) == (mode == "eval")


def test_image_augmentation_config_is_checked():
    with pytest.raises(ValueError, match="RandomAffine"):
        tiny(image_augment_translate=0.6)
    with pytest.raises(ValueError, match="image_augment"):
        tiny("vae_sp", image_augment_degrees=10)
    assert tiny("vae_sp").image_augment_degrees == 0.0


@pytest.mark.parametrize("inputs, joint_warped, target_warped",
                         [("all", True, True), ("encoders", True, False), ("unimodal", False, False)])
def test_image_augmentation_goes_where_configured(inputs, joint_warped, target_warped):
    model = PVAE(tiny(cm_negatives="all", image_augment_degrees=10, image_augment_inputs=inputs)).train()
    model.image_augment.register_forward_hook(lambda m, args, out: 1 - args[0])  # a recognisable "warp"
    batch = make_batch()
    clean, warped = batch["image"], 1 - batch["image"]
    seen = {}
    model.joint_encoder.register_forward_pre_hook(lambda m, args: seen.update(joint=args[2]))
    model.image_encoder.register_forward_pre_hook(
        lambda m, args, kwargs: seen.update(unimodal=kwargs["image"]), with_kwargs=True)
    log_likelihood = model._image_log_likelihood

    def recording_log_likelihood(image, z):
        seen["target"] = image
        return log_likelihood(image, z)

    model._image_log_likelihood = recording_log_likelihood
    model.terms(batch)
    assert torch.equal(seen["unimodal"], warped)  # CH and CM always see the warp
    assert torch.equal(seen["joint"], warped if joint_warped else clean)
    assert torch.equal(seen["target"], warped if target_warped else clean)


def test_speech_tempo_augmentation_acts_in_training_only_and_feeds_every_use():
    batch = make_batch()
    plain = PVAE(tiny(cm_negatives="all"))
    tempo = PVAE(tiny(cm_negatives="all", speech_augment_tempo=0.5))
    tempo.load_state_dict(plain.state_dict())  # no parameters of its own: old checkpoints load
    for mode in ("eval", "train"):
        getattr(plain, mode)(), getattr(tempo, mode)()
        torch.manual_seed(5)
        expected = plain.terms(batch)
        torch.manual_seed(5)
        got = tempo.terms(batch)
        for name in ("nll_speech", "ch"):
            assert torch.equal(got[name], expected[name]) == (mode == "eval")
    seen = {}
    tempo.speech_augment.register_forward_hook(lambda m, args, out: seen.update(lengths=out[1]))
    tempo.joint_encoder.register_forward_pre_hook(lambda m, args: seen.update(joint=args[1]))
    tempo.speech_encoder.register_forward_pre_hook(lambda m, args: seen.update(unimodal=args[1]))
    tempo.terms(batch)
    assert not torch.equal(seen["lengths"], batch["speech_lengths"])
    assert torch.equal(seen["joint"], seen["lengths"]) and torch.equal(seen["unimodal"], seen["lengths"])


def test_speech_tempo_config_is_checked():
    with pytest.raises(ValueError, match="RandomTempo"):
        tiny(speech_augment_tempo=1.0)
    with pytest.raises(ValueError, match="speech_augment_tempo is set"):
        tiny("vae_im", speech_augment_tempo=0.2)


def test_followed_by_silence_appends_quiet_frames_after_each_end():
    speech = torch.randn(3, 5, D)
    lengths = torch.tensor([5, 2, 4])
    speech[1, 2:] = speech[2, 4:] = 99.0  # padding: never a real frame, never kept
    padded, new_lengths = followed_by_silence(speech, lengths, 3)
    real = torch.cat([speech[0], speech[1, :2], speech[2, :4]])
    quiet = torch.quantile(real, 0.01, dim=0)
    assert padded.shape == (3, 8, D) and new_lengths.tolist() == [8, 5, 7]
    for b, n in enumerate(lengths.tolist()):
        assert torch.equal(padded[b, :n], speech[b, :n])  # the utterance itself is untouched
        assert torch.allclose(padded[b, n:n + 3], quiet.expand(3, -1))
    assert (quiet < real.mean(0)).all()


def test_speech_decoder_silence_frames_train_the_decoder_past_the_end():
    batch = make_batch()
    plain = PVAE(tiny(cm_negatives="all"))
    silent = PVAE(tiny(cm_negatives="all", speech_decoder_silence_frames=4))
    silent.load_state_dict(plain.state_dict())  # no parameters of its own: old checkpoints load
    seen = {}
    silent.speech_decoder.register_forward_hook(lambda m, args, out: seen.update(frames=out.size(1)))
    for model in (plain, silent):
        model.eval()
        torch.manual_seed(3)
        seen[model is silent] = model.terms(batch)
    assert seen["frames"] == batch["speech"].size(1) + 4  # the decoder runs past the longest utterance
    assert (seen[True]["nll_speech"] > seen[False]["nll_speech"]).all()  # 4 more frames per item to explain
    assert torch.equal(seen[True]["kl_z_s"], seen[False]["kl_z_s"])  # the encoders see the speech as it is
    with pytest.raises(ValueError, match="speech_decoder_silence_frames must be >= 0"):
        tiny(speech_decoder_silence_frames=-1)
    with pytest.raises(ValueError, match="speech_decoder_silence_frames is set"):
        tiny("vae_im", speech_decoder_silence_frames=5)


def test_image_augment_inputs_is_checked():
    with pytest.raises(ValueError, match="image_augment_inputs must be one of"):
        tiny(image_augment_inputs="decoder")
    with pytest.raises(ValueError, match="image_augment_inputs=unimodal"):
        tiny("vae_im", image_augment_inputs="unimodal")


def test_speech_decoder_progress_follows_the_requested_lengths():
    """speech_decoder_progress: generated speech depends on each item's length; without it, the
    lengths only cut (the frames are those of one pass at the longest)."""
    torch.manual_seed(0)
    z_s, z_a = torch.randn(3, 3), torch.randn(3, 2)
    lengths = torch.tensor([4, 9, 6])
    plain = PVAE(tiny("pvae")).eval()
    assert torch.equal(plain.decode_speech(z_s, z_a, 9, lengths), plain.decode_speech(z_s, z_a, 9))
    m = PVAE(tiny("pvae", speech_decoder_progress=True)).eval()
    with_lengths = m.decode_speech(z_s, z_a, 9, lengths)
    for b, length in enumerate(lengths.tolist()):
        alone = m.decode_speech(z_s[b:b + 1], z_a[b:b + 1], length)
        assert torch.allclose(with_lengths[b, :length], alone[0], atol=1e-5)
    assert not torch.allclose(with_lengths[0, :4], m.decode_speech(z_s, z_a, 9)[0, :4])
    loss, _ = m.train()(make_batch())  # trains on each utterance's own length
    loss.backward()
    assert torch.isfinite(loss) and m.speech_decoder.lstm.weight_ih_l0.grad[:, -1].abs().sum() > 0
