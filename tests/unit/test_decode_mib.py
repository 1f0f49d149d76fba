"""skiptool/decode/mib.py on a tiny random MIB and tiny feature dirs: every task's outputs in the
layout the next stage reads (BLEU references, vocodable mel/linear dirs, image dirs, recall@k vectors)."""

from __future__ import annotations

import kaldiio
import numpy as np
import pytest
import torch
import yaml

from skiptool.audio.griffinlim import features_to_wavs, resolve_spec_config
from skiptool.data.datadir import read_table
from skiptool.data.datasets import ImageFeatsDataset
from skiptool.decode.mib import ALIGNMENT_PLOTS, run_task
from skiptool.metrics.inputs import load_vectors, read_matches, read_multi_text
from skiptool.models.mib import MIB, MIBConfig, mib_dataset
from skiptool.utils.errors import SkiptoolError
from tests.fixtures.mib_dirs import LINEAR, MEL, SIDE, TINY_MIB, write_mib_corpora

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    return write_mib_corpora(tmp_path_factory.mktemp("mib"), images=3, captions=2, utterances=3)


@pytest.fixture(scope="module")
def model(corpora) -> MIB:
    cfg = MIBConfig(**TINY_MIB)
    mib_dataset(cfg, {k: corpora[k] for k in ("image", "speech", "linear")}, True, 0)  # records the features
    torch.manual_seed(0)
    return MIB(cfg).eval()


pytestmark = pytest.mark.usefixtures("one_thread")


def test_image2text_keys_by_image_and_writes_references(model, corpora, tmp_path):
    run_task(model, "image2text", {"image": corpora["image"]}, tmp_path, CPU)
    hyp = read_table(tmp_path / "text")
    assert sorted(hyp) == ["img00", "img01", "img02"]
    refs = read_multi_text([tmp_path / "ref_captions"])
    assert set(refs) == set(hyp) and all(len(r) == 2 for r in refs.values())


def test_speech2text(model, corpora, tmp_path):
    run_task(model, "speech2text", {"speech": corpora["speech"]}, tmp_path, CPU)
    assert sorted(read_table(tmp_path / "text")) == ["utt00", "utt01", "utt02"]
    assert read_table(tmp_path / "ref_text") == read_table(corpora["speech"] / "text")


def check_speech_dirs(out, keys):
    lengths = {}
    for kind, dim in (("mel", MEL), ("linear", LINEAR)):
        mats = dict(kaldiio.load_scp(str(out / kind / "feats.scp")))
        assert sorted(mats) == sorted(keys) and all(m.shape[1] == dim and len(m) > 0 for m in mats.values())
        frames = {k: int(v) for k, v in read_table(out / kind / "utt2num_frames").items()}
        assert frames == {k: len(m) for k, m in mats.items()}
        conf = yaml.safe_load((out / kind / "conf.yaml").read_text())
        assert conf["type"] == kind and conf["sample_rate"] == 8000 and conf["feat_dim"] == dim
        lengths[kind] = frames
    assert lengths["mel"] == lengths["linear"]
    spec, _ = resolve_spec_config(out / "linear" / "feats.scp", None)  # what `skiptool vocode` reads
    linear = torch.from_numpy(next(iter(kaldiio.load_scp(str(out / "linear" / "feats.scp")).values())).copy())
    wav = features_to_wavs([linear], "linear", spec)[0]
    assert wav.ndim == 1 and len(wav) > 0
    plots = sorted((out / "images").glob("alignment_*.png"))
    assert len(plots) == min(ALIGNMENT_PLOTS, len(keys))


def test_text2speech_is_vocodable_and_repeatable(model, corpora, tmp_path):
    run_task(model, "text2speech", {"text": corpora["text"]}, tmp_path / "a", CPU, seed=3)
    keys = sorted(read_table(corpora["text"] / "text"))
    check_speech_dirs(tmp_path / "a", keys)
    assert read_table(tmp_path / "a" / "text") == read_table(corpora["text"] / "text")
    assert (tmp_path / "a" / "linear" / "text").is_file()
    run_task(model, "text2speech", {"text": corpora["text"]}, tmp_path / "b", CPU, seed=3)
    first = lambda d: next(iter(kaldiio.load_scp(str(d / "mel" / "feats.scp")).values()))
    assert np.array_equal(first(tmp_path / "a"), first(tmp_path / "b"))


def test_image2speech(model, corpora, tmp_path):
    run_task(model, "image2speech", {"image": corpora["image"]}, tmp_path, CPU)
    check_speech_dirs(tmp_path, ["img00", "img01", "img02"])
    assert set(read_multi_text([tmp_path / "ref_captions"])) == {"img00", "img01", "img02"}
    assert not (tmp_path / "text").exists()


def test_text2image_writes_an_image_feature_dir_and_pngs(model, corpora, tmp_path):
    run_task(model, "text2image", {"text": corpora["text"]}, tmp_path, CPU)
    images = ImageFeatsDataset(tmp_path, labels=False)
    keys = sorted(read_table(corpora["text"] / "text"))
    assert images.keys == keys and images.shape == (3, SIDE, SIDE)
    assert sorted(p.stem for p in (tmp_path / "png").glob("*.png")) == keys


def test_embed_fits_recall_at_k(model, corpora, tmp_path):
    dirs = {"image": corpora["image"], "speech": corpora["speech"], "text": corpora["text"]}
    run_task(model, "embed", dirs, tmp_path, CPU)
    image, captions = load_vectors(tmp_path / "image.scp"), load_vectors(tmp_path / "image_text.scp")
    assert sorted(image) == ["img00", "img01", "img02"] and len(captions) == 6
    assert all(v.shape == (TINY_MIB["latent_dim"],) for v in image.values())
    matches = read_matches(tmp_path / "image2text.matches")
    assert matches["img01"] == {"img01-c1", "img01-c2"}
    assert sorted(load_vectors(tmp_path / "speech.scp")) == sorted(load_vectors(tmp_path / "speech_text.scp"))
    assert len(load_vectors(tmp_path / "text.scp")) == 4
    # u of a caption equals u of the same text given as a text dir
    text = tmp_path / "one"
    text.mkdir()
    caption = read_table(corpora["image"] / "text")["img00-c1"]
    (text / "text").write_text(f"q {caption}\n")
    run_task(model, "embed", {"text": text}, tmp_path / "again", CPU)
    assert np.allclose(load_vectors(tmp_path / "again" / "text.scp")["q"], captions["img00-c1"], atol=1e-5)


def test_user_errors(model, corpora, tmp_path):
    with pytest.raises(SkiptoolError, match="--data text=DIR: missing"):
        run_task(model, "text2speech", {"image": corpora["image"]}, tmp_path, CPU)
    with pytest.raises(SkiptoolError, match="embed reads"):
        run_task(model, "embed", {"linear": corpora["linear"]}, tmp_path, CPU)
    with pytest.raises(SkiptoolError, match="holds linear features"):
        run_task(model, "speech2text", {"speech": corpora["linear"]}, tmp_path, CPU)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "text").write_text("k1 a red circle\nk2 \u2603\n")
    with pytest.raises(SkiptoolError, match="'k2' has no symbol"):
        run_task(model, "text2image", {"text": bad}, tmp_path / "out", CPU)
    with pytest.raises(SkiptoolError, match="not found"):
        run_task(model, "text2image", {"text": tmp_path / "nowhere"}, tmp_path / "out", CPU)
    small = MIB(MIBConfig(**{**TINY_MIB, "image_size": 32})).eval()
    with pytest.raises(SkiptoolError, match="the model takes images"):
        run_task(small, "image2text", {"image": corpora["image"]}, tmp_path, CPU)
    with pytest.raises(SkiptoolError, match="speech_features is empty"):
        run_task(small, "text2speech", {"text": corpora["text"]}, tmp_path / "t2s", CPU)


def test_inputs_made_with_other_features_are_an_error(model, corpora, tmp_path):
    import shutil

    speech = tmp_path / "mel"
    shutil.copytree(corpora["speech"], speech)
    conf = yaml.safe_load((speech / "conf.yaml").read_text())
    (speech / "conf.yaml").write_text(yaml.safe_dump({**conf, "hop_length": 32}))
    with pytest.raises(SkiptoolError, match="hop_length.*model_conf.speech_features"):
        run_task(model, "speech2text", {"speech": speech}, tmp_path / "out", CPU)
