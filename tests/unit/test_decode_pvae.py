"""skiptool/decode/pvae.py on a tiny random PVAE and tiny feature dirs: every output in the
layout the next stage reads (image feature dirs, vocodable FBank dirs, latent scps)."""

from __future__ import annotations

import kaldiio
import numpy as np
import pytest
import torch

from skiptool.data.datadir import read_table
from skiptool.data.datasets import FeatsDataset, ImageFeatsDataset, collate
from skiptool.decode import pvae as decode
from skiptool.models.pvae import PVAE
from skiptool.utils.errors import SkiptoolError
from tests.fixtures.featdirs import write_image_dir, write_speech_dir
from tests.unit.test_pvae import D, S, VARIANTS, tiny

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("feats")
    speech = write_speech_dir(root / "speech", per_class=3, dim=D)
    (speech / "cmvn.ark").write_bytes(b"stats")
    return {"speech": speech, "image": write_image_dir(root / "image", per_class=3, side=S)}


def model(variant: str) -> PVAE:
    torch.manual_seed(0)
    return PVAE(tiny(variant)).eval()


@pytest.mark.parametrize("variant", VARIANTS)
def test_embed_writes_each_latent_of_each_modality(variant, dirs, tmp_path):
    m = model(variant)
    given = {k: (dirs[k] if k in m.cfg.modalities else None) for k in ("speech", "image")}
    written = decode.embed(m, given["speech"], given["image"], tmp_path, CPU)
    expected = {f"{mod}_{z}" for mod in m.cfg.modalities for z in m.cfg.latents(mod)}
    assert set(written) == expected
    dims = m.cfg.latent_dims()
    for name, scp in written.items():
        vectors = dict(kaldiio.load_scp(str(scp)))
        modality, latent = name.split("_", 1)
        assert set(vectors) == set(read_table(tmp_path / f"{modality}_utt2label"))
        assert all(v.shape == (dims[latent],) for v in vectors.values())


def test_embed_skips_a_modality_the_variant_lacks(dirs, tmp_path):
    written = decode.embed(model("vae_sp"), dirs["speech"], dirs["image"], tmp_path / "both", CPU)
    assert set(written) == {"speech_z"} and not (tmp_path / "both" / "image_utt2label").exists()
    with pytest.raises(SkiptoolError, match="no image encoder"):
        decode.embed(model("vae_sp"), None, dirs["image"], tmp_path / "image", CPU)


def test_image_to_speech_without_reference_takes_the_mean_training_length(dirs, tmp_path):
    m = model("pvae").train()
    batch = collate([FeatsDataset(dirs["speech"])[i] for i in range(4)])
    m({**batch, "image": torch.rand(4, 1, S, S)})
    mean = round(batch["speech_lengths"].float().mean().item())
    assert m.mean_speech_frames == mean
    restored = model("pvae")
    restored.load_state_dict(m.state_dict())  # saved with the weights
    decode.image_to_speech(restored.eval(), dirs["image"], tmp_path, CPU)
    assert {len(f) for f in FeatsDataset(tmp_path).feats} == {mean}
    old = {k: v for k, v in m.state_dict().items() if "seen" not in k}  # a checkpoint from before
    model("pvae").load_state_dict(old)
    with pytest.raises(SkiptoolError, match="style reference"):
        decode.image_to_speech(model("pvae"), dirs["image"], tmp_path / "untrained", CPU)


def test_speech_to_image_writes_an_image_feature_dir(dirs, tmp_path):
    decode.speech_to_image(model("pvae"), dirs["speech"], tmp_path, CPU, style_image_dir=dirs["image"])
    images = ImageFeatsDataset(tmp_path, labels=True)  # what the image classifier reads
    assert images.shape == (1, S, S) and len(images) == 9
    assert images.labels == FeatsDataset(dirs["speech"], labels=True).labels
    assert len(list((tmp_path / "png").glob("*.png"))) == 9
    from skiptool.data.feats import read_feats_conf

    info = read_feats_conf(tmp_path)  # the conf.yaml reader of `skiptool feats` dirs
    assert (info.type, info.config.height, info.config.width, info.config.channels, info.feat_dim) == (
        "image", S, S, 1, S)


@pytest.mark.parametrize("style", [True, False])
def test_image_to_speech_takes_the_reference_length_and_is_vocodable(dirs, tmp_path, style):
    decode.image_to_speech(model("pvae"), dirs["image"], tmp_path, CPU,
                           style_speech_dir=dirs["speech"] if style else None, seed=1,
                           num_frames=None if style else 7)
    generated = FeatsDataset(tmp_path, labels=True)
    if style:  # each output as long as the reference it names in utt2style
        references = FeatsDataset(dirs["speech"])
        ref_length = {k: len(f) for k, f in zip(references.keys, references.feats)}
        used = read_table(tmp_path / "utt2style")
        assert set(used) == set(generated.keys)
        assert all(len(f) == ref_length[used[k]] for k, f in zip(generated.keys, generated.feats))
        # the voice each output should have: its reference's speaker
        ref_speaker = read_table(dirs["speech"] / "utt2spk")
        assert read_table(tmp_path / "utt2spk") == {k: ref_speaker[used[k]] for k in generated.keys}
        ref_digit = read_table(dirs["speech"] / "utt2label")  # ... and the digit it should not take from it
        assert read_table(tmp_path / "style_utt2label") == {k: ref_digit[used[k]] for k in generated.keys}
    else:
        assert {len(f) for f in generated.feats} == {7} and not (tmp_path / "utt2style").exists()
        assert not (tmp_path / "utt2spk").exists() and not (tmp_path / "style_utt2label").exists()
    text = read_table(tmp_path / "text")
    assert text["img00_1"] == "one" and set(text) == set(generated.keys)
    assert (tmp_path / "cmvn.ark").exists() == style and (tmp_path / "conf.yaml").exists() == style


def test_image_to_speech_num_frames_overrides_the_reference_length(dirs, tmp_path):
    m = model("pvae")
    decode.image_to_speech(m, dirs["image"], tmp_path / "n", CPU, style_speech_dir=dirs["speech"], num_frames=5)
    assert {len(f) for f in FeatsDataset(tmp_path / "n").feats} == {5}
    with torch.no_grad():
        m.speech_frames_seen += 12.0
        m.speech_items_seen += 2.0
    decode.image_to_speech(m, dirs["image"], tmp_path / "mean", CPU, style_speech_dir=dirs["speech"],
                           num_frames="mean")
    assert {len(f) for f in FeatsDataset(tmp_path / "mean").feats} == {6}
    with pytest.raises(SkiptoolError, match="--num-frames 0"):
        decode.image_to_speech(m, dirs["image"], tmp_path / "zero", CPU, num_frames=0)


def test_settled_length_ends_after_the_last_frame_that_moves():
    frames = np.zeros((20, 3))
    frames[:6] = np.arange(6)[:, None] * 0.5  # moving by 0.5 per frame up to frame 5, then a jump down
    frames[9] = 0.01  # a change below the threshold: settled already
    assert decode.settled_length(frames, threshold=0.1) == 7  # frames 0-6: 6 -> 0 is the last move
    assert decode.settled_length(frames, threshold=5.0) == 1  # never moves
    assert decode.settled_length(frames, threshold=0.001) == 11  # frame 9 and back at frame 10
    moving = np.arange(10.0)[:, None].repeat(2, axis=1)
    assert decode.settled_length(moving, threshold=0.1) == 10  # never settles: all of it


def test_image_to_speech_settled_cuts_each_output_where_the_decoder_settles(dirs, tmp_path, monkeypatch):
    m = model("pvae")
    with torch.no_grad():
        m.speech_frames_seen += 10.0
        m.speech_items_seen += 2.0  # mean length 5 -> the decoder runs 5 x SETTLE_MAX_FACTOR frames
    asked = []

    def image_to_speech(image, num_frames, *args, **kwargs):  # output b moves for its first 3 + b frames
        asked.append(num_frames)
        steps = torch.arange(num_frames, dtype=torch.float32)
        frames = torch.stack([steps.clamp(max=2 + b) for b in range(image.size(0))])
        return frames.unsqueeze(-1).expand(-1, -1, D).contiguous()

    monkeypatch.setattr(m, "image_to_speech", image_to_speech)
    decode.image_to_speech(m, dirs["image"], tmp_path, CPU, style_speech_dir=dirs["speech"], num_frames="settled")
    assert asked == [5 * decode.SETTLE_MAX_FACTOR]
    order = ImageFeatsDataset(dirs["image"]).keys  # the batch order of the sources
    out = FeatsDataset(tmp_path)
    generated = dict(zip(out.keys, out.feats))
    assert {k: len(generated[k]) for k in order} == {k: 3 + b for b, k in enumerate(order)}
    with pytest.raises(SkiptoolError, match="--settle-threshold 0"):
        decode.image_to_speech(m, dirs["image"], tmp_path / "bad", CPU, style_speech_dir=dirs["speech"],
                               num_frames="settled", settle_threshold=0.0)


def test_image_to_speech_stretched_resamples_each_settled_output_to_its_reference_length(dirs, tmp_path,
                                                                                          monkeypatch):
    m = model("pvae")
    with torch.no_grad():
        m.speech_frames_seen += 10.0
        m.speech_items_seen += 2.0

    def image_to_speech(image, num_frames, *args, **kwargs):  # output b rises 0, 1, ..., 2 + b, then settles
        steps = torch.arange(num_frames, dtype=torch.float32)
        frames = torch.stack([steps.clamp(max=2 + b) for b in range(image.size(0))])
        return frames.unsqueeze(-1).expand(-1, -1, D).contiguous()

    monkeypatch.setattr(m, "image_to_speech", image_to_speech)
    decode.image_to_speech(m, dirs["image"], tmp_path, CPU, style_speech_dir=dirs["speech"], num_frames="stretched")
    references = FeatsDataset(dirs["speech"])
    ref_length = {k: len(f) for k, f in zip(references.keys, references.feats)}
    used = read_table(tmp_path / "utt2style")
    out = FeatsDataset(tmp_path)
    generated = dict(zip(out.keys, out.feats))
    for b, key in enumerate(ImageFeatsDataset(dirs["image"]).keys):  # the batch order of the sources
        frames = generated[key][:, 0]
        assert len(frames) == ref_length[used[key]]  # the reference's length ...
        expected = np.linspace(0, 2 + b, len(frames)) if len(frames) > 1 else [0.0]
        assert np.allclose(frames, expected, atol=1e-5)  # ... holding the whole settled rise 0 .. 2 + b
    with pytest.raises(SkiptoolError, match="--num-frames stretched: .*--style speech=DIR"):
        decode.image_to_speech(m, dirs["image"], tmp_path / "bad", CPU, num_frames="stretched")


def test_speech_to_image_names_its_style_references(dirs, tmp_path):
    decode.speech_to_image(model("pvae"), dirs["speech"], tmp_path, CPU, style_image_dir=dirs["image"], seed=2)
    used = read_table(tmp_path / "utt2style")
    assert set(used) == set(FeatsDataset(dirs["speech"]).keys)
    assert set(used.values()) <= set(ImageFeatsDataset(dirs["image"]).keys)


@pytest.mark.parametrize("task", ["speech2image", "image2speech"])
def test_draws_generate_each_source_once_per_seed(task, dirs, tmp_path):
    """K draws = the K one-draw decodes of seeds seed .. seed + K - 1, keyed <key>-draw<k>, with the
    source's label, digit word and the reference actually used for every output."""
    m = model("pvae")
    run = decode.speech_to_image if task == "speech2image" else decode.image_to_speech
    sources, refs = (dirs["speech"], dirs["image"]) if task == "speech2image" else (dirs["image"], dirs["speech"])
    style = {"style_image_dir" if task == "speech2image" else "style_speech_dir": refs}
    run(m, sources, tmp_path / "k3", CPU, seed=4, draws=3, **style)
    for seed in (4, 6):
        run(m, sources, tmp_path / f"seed{seed}", CPU, seed=seed, **style)
    pooled = dict(kaldiio.load_scp(str(tmp_path / "k3" / "feats.scp")))
    source_labels = read_table(sources / "utt2label")
    assert set(pooled) == {f"{key}-draw{k}" for key in source_labels for k in range(3)}
    labels, used = read_table(tmp_path / "k3" / "utt2label"), read_table(tmp_path / "k3" / "utt2style")
    assert set(labels) == set(used) == set(pooled)
    assert all(labels[key] == source_labels[key.rsplit("-draw", 1)[0]] for key in labels)
    for seed, k in ((4, 0), (6, 2)):
        single = dict(kaldiio.load_scp(str(tmp_path / f"seed{seed}" / "feats.scp")))
        single_used = read_table(tmp_path / f"seed{seed}" / "utt2style")
        for key, mat in single.items():
            assert np.allclose(pooled[f"{key}-draw{k}"], mat, atol=1e-6)
            assert used[f"{key}-draw{k}"] == single_used[key]
    if task == "image2speech":
        text = read_table(tmp_path / "k3" / "text")
        assert set(text) == set(pooled) and text["img00_1-draw2"] == "one"
    with pytest.raises(SkiptoolError, match="--draws 0"):
        run(m, sources, tmp_path / "zero", CPU, draws=0, **style)


def test_generation_is_seeded(dirs, tmp_path):
    for run in ("a", "b"):
        decode.speech_to_image(model("pvae"), dirs["speech"], tmp_path / run, CPU, seed=3)
    a, b = (dict(kaldiio.load_scp(str(tmp_path / run / "feats.scp"))) for run in ("a", "b"))
    assert all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("variant", VARIANTS)
def test_style_grids(variant, dirs, tmp_path):
    written = decode.style_grids(model(variant), dirs["speech"], dirs["image"], tmp_path, CPU, n=2)
    names = {p.name for p in written}
    m = model(variant)
    if variant in ("pvae", "pvae_nocm", "jmvae_kl"):
        assert names == {"image_from_image.png", "image_from_speech.png", "speech_from_speech.png",
                         "speech_from_image.png"}
    else:
        modality = m.cfg.modalities[0]
        assert names == {f"{modality}_from_{modality}.png"}
    assert all(p.stat().st_size > 0 for p in written)


def test_jmvae_ignores_style_references_it_cannot_use(dirs, tmp_path):
    m = model("jmvae_kl")
    decode.speech_to_image(m, dirs["speech"], tmp_path / "s2i", CPU, style_image_dir=dirs["image"])
    decode.image_to_speech(m, dirs["image"], tmp_path / "i2s", CPU, style_speech_dir=dirs["speech"])
    assert len(ImageFeatsDataset(tmp_path / "s2i")) == 9 and len(FeatsDataset(tmp_path / "i2s")) == 9
