"""MIB's dataset hook and skiptool/data/two_corpora.py: reading the caption and text-speech
feature dirs, tokenisation, mixed and alternating batches, feature-config recording, user errors."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest
import torch
import yaml

from skiptool.data.two_corpora import TwoCorpusBatchSampler, image_key
from skiptool.models.mib import MIBConfig, build_mib, collate_mib, mib_dataset, mib_tokenizer
from skiptool.text.tokenizer import CharTokenizer, build_token_list
from skiptool.utils.errors import SkiptoolError
from tests.fixtures.mib_dirs import LINEAR, MEL, SIDE, TINY_MIB, write_mib_corpora


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    return write_mib_corpora(tmp_path_factory.mktemp("mib"), images=4, captions=2, utterances=3)


pytestmark = pytest.mark.usefixtures("one_thread")


def dirs(corpora) -> dict:
    return {k: corpora[k] for k in ("image", "speech", "linear")}


def config(**overrides) -> MIBConfig:
    return MIBConfig(**{**TINY_MIB, **overrides})


# --------------------------------------------------------------------------- reading, tokens


def test_items_tokens_and_shared_images(corpora):
    data = mib_dataset(config(), dirs(corpora), True, 0)
    assert (len(data.a), len(data.b), len(data)) == (8, 3, 11)
    item = data[0]
    assert item["key"] == "img00-c1" and item["image"].shape == (3, SIDE, SIDE)
    assert 0 <= float(item["image"].min()) and float(item["image"].max()) <= 1
    text = dict(line.split(" ", 1) for line in (corpora["image"] / "text").read_text().splitlines())
    assert item["image_text"].tolist() == CharTokenizer().encode(text["img00-c1"])
    assert data[1]["image"] is item["image"]  # the two captions of one image share its tensor
    speech = data[8]
    assert speech["key"] == "utt00" and speech["speech"].shape[1] == MEL and speech["linear"].shape[1] == LINEAR
    assert speech["speech"].shape[0] == speech["linear"].shape[0] and speech["speech_text"].dtype == torch.long


def test_training_data_records_its_feature_configs(corpora):
    cfg = config()
    mib_dataset(cfg, dirs(corpora), True, 0)
    assert cfg.speech_features["sample_rate"] == 8000 and cfg.speech_features["num_mels"] == MEL
    assert "type" not in cfg.speech_features and "feat_dim" not in cfg.speech_features
    assert cfg.image_features["height"] == SIDE and cfg.image_features["channels"] == 3
    mib_dataset(cfg, dirs(corpora), False, 0)  # the same features again (dev): accepted


def test_dev_features_made_otherwise_are_an_error(corpora, tmp_path):
    cfg = config()
    mib_dataset(cfg, dirs(corpora), True, 0)
    other = {**dirs(corpora)}
    for name in ("speech", "linear"):
        other[name] = tmp_path / name
        shutil.copytree(corpora[name], other[name])
        conf = yaml.safe_load((other[name] / "conf.yaml").read_text())
        (other[name] / "conf.yaml").write_text(yaml.safe_dump({**conf, "preemphasis": 0.5}))
    with pytest.raises(SkiptoolError, match="preemphasis.*model_conf.speech_features"):
        mib_dataset(cfg, other, False, 0)


def test_batches_collate_and_train(corpora):
    cfg = config()
    data = mib_dataset(cfg, dirs(corpora), True, 0)
    sampler = data.batch_sampler(4, shuffle=True, seed=0)
    batch = collate_mib([data[i] for i in next(iter(sampler))])
    assert batch["image"].shape[0] == 2 and batch["speech"].shape[0] == 2
    torch.manual_seed(0)
    loss, stats = build_mib(cfg)(batch)
    assert torch.isfinite(loss) and "adv_ce" in stats


def test_image_key():
    assert image_key("shapes000042-c3") == "shapes000042" and image_key("utt-c") == "utt-c"


# -------------------------------------------------------------------------------- batching


def corpus_of(batch: list[int], n_a: int) -> Counter:
    return Counter("A" if i < n_a else "B" for i in batch)


def test_mixed_batches_take_half_of_each_corpus_and_cycle_the_smaller():
    sampler = TwoCorpusBatchSampler(10, 3, batch_size=4, batching="mixed", shuffle=True, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 5  # the larger corpus once, two per batch
    assert all(corpus_of(b, 10) == Counter(A=2, B=2) for b in batches)
    seen_a = sorted(i for b in batches for i in b if i < 10)
    assert seen_a == list(range(10))  # every A item once per epoch
    assert set(i for b in batches for i in b if i >= 10) == {10, 11, 12}


def test_alternating_batches_take_one_corpus_in_turn():
    sampler = TwoCorpusBatchSampler(10, 3, batch_size=4, batching="alternating", shuffle=True, seed=1)
    batches = list(sampler)
    kinds = ["".join(sorted(corpus_of(b, 10))) for b in batches]
    assert kinds == ["A", "B"] * 3 and all(len(b) == 4 for b in batches)
    mixed = TwoCorpusBatchSampler(10, 3, batch_size=4, batching="mixed", shuffle=True, seed=1)
    assert sum(map(len, batches)) == sum(map(len, mixed)) + 4  # ~ the same items per epoch (ceil per corpus)


def test_epochs_are_reproducible_and_differ():
    sampler = TwoCorpusBatchSampler(10, 3, batch_size=4, shuffle=True, seed=1)
    sampler.set_epoch(1)
    first = list(sampler)
    assert list(sampler) == first
    sampler.set_epoch(2)
    assert list(sampler) != first


def test_dev_order_takes_every_item_once():
    for batching in ("mixed", "alternating"):
        batches = list(TwoCorpusBatchSampler(5, 3, batch_size=4, batching=batching, shuffle=False))
        assert sorted(i for b in batches for i in b) == list(range(8))


def test_ranks_split_each_global_batch():
    shares = [list(TwoCorpusBatchSampler(10, 3, batch_size=4, shuffle=True, seed=1, rank=r, world_size=2))
              for r in range(2)]
    whole = list(TwoCorpusBatchSampler(10, 3, batch_size=4, shuffle=True, seed=1))
    assert [sorted(a + b) for a, b in zip(*shares)] == [sorted(b) for b in whole]


def test_batching_option_reaches_the_sampler(corpora):
    data = mib_dataset(config(batching="alternating"), dirs(corpora), True, 0)
    batches = list(data.batch_sampler(4, shuffle=True))
    assert all(len(corpus_of(b, len(data.a))) == 1 for b in batches)


# ---------------------------------------------------------------------------------- errors


def test_vocab_size_must_match_the_tokenizer(corpora):
    with pytest.raises(SkiptoolError, match="vocab_size=66"):
        mib_dataset(config(vocab_size=70), dirs(corpora), True, 0)


def test_bpe_token_list(corpora, tmp_path):
    token_dir = tmp_path / "bpe"
    tokenizer = build_token_list([corpora["image"] / "text", corpora["speech"] / "text"], token_dir, "bpe", nbpe=30)
    cfg = config(token_type="bpe", token_list=str(token_dir), vocab_size=len(tokenizer))
    data = mib_dataset(cfg, dirs(corpora), True, 0)
    first = (corpora["image"] / "text").read_text().splitlines()[0].split(" ", 1)[1]
    assert data[0]["image_text"].tolist() == tokenizer.encode(first)
    with pytest.raises(SkiptoolError, match="token_type is char"):
        mib_tokenizer(config(token_list=str(token_dir), vocab_size=len(tokenizer)))
    with pytest.raises(ValueError, match="token_list"):
        config(token_type="bpe")
    with pytest.raises(SkiptoolError, match="not found"):
        mib_tokenizer(config(token_type="bpe", token_list="nowhere/bpe"))
    relative = config(token_type="bpe", token_list="bpe", vocab_size=len(tokenizer))  # relative to the recipe dir
    assert mib_tokenizer(relative, tmp_path).token_type == "bpe"  # the exp dir itself
    exp_dir = tmp_path / "exp" / "setup" / "mib"  # a recipe's exp/<setup>/<model>, from anywhere
    exp_dir.mkdir(parents=True)
    assert mib_tokenizer(relative, exp_dir).token_type == "bpe"


@pytest.mark.parametrize("drop", ["linear", "image"])
def test_missing_data_dir(corpora, drop):
    given = {k: v for k, v in dirs(corpora).items() if k != drop}
    with pytest.raises(SkiptoolError, match=f"--data {drop}=DIR: missing"):
        mib_dataset(config(), given, True, 0)
    with pytest.raises(SkiptoolError, match="--dev-data"):
        mib_dataset(config(), given, False, 0)


def test_unknown_data_name(corpora):
    with pytest.raises(SkiptoolError, match="--data text=.*reads image=DIR"):
        mib_dataset(config(), {**dirs(corpora), "text": corpora["text"]}, True, 0)


def test_wrong_sizes_are_errors(corpora):
    with pytest.raises(SkiptoolError, match="image_size"):
        mib_dataset(config(image_size=32), dirs(corpora), True, 0)
    with pytest.raises(SkiptoolError, match="mel_dim is 80"):
        mib_dataset(config(mel_dim=80), dirs(corpora), True, 0)
    with pytest.raises(SkiptoolError, match="linear_dim"):
        mib_dataset(config(linear_dim=1025), dirs(corpora), True, 0)
    swapped = {**dirs(corpora), "speech": corpora["linear"], "linear": corpora["speech"]}
    with pytest.raises(SkiptoolError, match="expected mel"):
        mib_dataset(config(), swapped, True, 0)


def test_mel_and_linear_keys_must_agree(corpora, tmp_path):
    linear = tmp_path / "linear"
    shutil.copytree(corpora["linear"], linear)
    lines = (linear / "feats.scp").read_text().splitlines()
    (linear / "feats.scp").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(SkiptoolError, match="only one of the mel and linear"):
        mib_dataset(config(), {**dirs(corpora), "linear": linear}, True, 0)


def test_missing_or_empty_transcripts(corpora, tmp_path):
    image = tmp_path / "image"
    shutil.copytree(corpora["image"], image)
    lines = (image / "text").read_text().splitlines()
    (image / "text").write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(SkiptoolError, match="no transcript for 'img00-c1'"):
        mib_dataset(config(), {**dirs(corpora), "image": image}, True, 0)
    (image / "text").write_text("\n".join(["img00-c1 \u2603 \u2764"] + lines[1:]) + "\n")
    with pytest.raises(SkiptoolError, match="'img00-c1' has no token"):
        mib_dataset(config(), {**dirs(corpora), "image": image}, True, 0)


def test_the_trainer_takes_batches_from_the_dataset_sampler(corpora, tmp_path):
    from skiptool.train.trainer import TrainConfig, Trainer

    cfg = config(batching="alternating")
    data = mib_dataset(cfg, dirs(corpora), True, 0)
    corpora_seen = []

    def spy(items):
        corpora_seen.append({"image" in it for it in items})
        return collate_mib(items)

    torch.manual_seed(0)
    Trainer(build_mib(cfg), data, spy, TrainConfig(max_epochs=1, batch_size=4, log_interval=0), tmp_path,
            device="cpu", quiet=True).fit()
    assert corpora_seen == [{True}, {False}, {True}, {False}]  # 8 image-text items, 3 text-speech cycled
    assert (tmp_path / "images" / "alignment_epoch001.png").is_file()  # the model's epoch hook
