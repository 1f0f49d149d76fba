"""The baselines and the tts model end to end on tiny feature dirs: `skiptool train`'s library call
with their dataset hooks, then their decode tasks (skiptool/decode/baselines.py) in MIB's output
layouts, and `skiptool synth` with them."""

from __future__ import annotations

from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml

from skiptool.data.datadir import read_table, write_table
from skiptool.decode import DecodeRequest, check_task, decode
from skiptool.train.trainer import load_experiment_config, load_trained_model, train_experiment
from skiptool.utils.errors import SkiptoolError
from tests.fixtures.featdirs import write_config
from tests.unit import test_cyclegan, test_piecewise

S, MEL, LIN = 16, 8, 10
CPU = torch.device("cpu")
SPEC = {"sample_rate": 16000, "n_fft": 18, "win_length": 16, "hop_length": 4, "num_mels": MEL}  # as conf.yaml states them
CAPTIONS = {"img0": ["a red circle", "one red ring"], "img1": ["a blue square", "blue box"],
            "img2": ["two green dots", "green spots"]}
SENTENCES = {"utt0": "a red box", "utt1": "the green circle", "utt2": "blue", "utt3": "two squares"}


pytestmark = pytest.mark.usefixtures("one_thread")


def write_feats(out: Path, mats: dict[str, np.ndarray], conf: dict, text: dict[str, str]) -> Path:
    out.mkdir(parents=True)
    with kaldiio.WriteHelper(f"ark,scp:{out / 'feats.ark'},{out / 'feats.scp'}") as writer:
        for key in sorted(mats):
            writer(key, mats[key].astype(np.float32))
    (out / "conf.yaml").write_text(yaml.safe_dump(conf))
    write_table(out / "text", text)
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """A caption corpus (3 images x 2 captions, keys <img>-cN) and a text-speech corpus (mel + linear)."""
    root = tmp_path_factory.mktemp("feats")
    rng = np.random.default_rng(0)
    images, texts = {}, {}
    for img, captions in CAPTIONS.items():
        pixels = rng.random((S, S * 3))
        for n, caption in enumerate(captions, start=1):
            images[f"{img}-c{n}"], texts[f"{img}-c{n}"] = pixels, caption
    frames = {key: int(rng.integers(6, 14)) for key in SENTENCES}
    return {
        "image": write_feats(root / "image", images, {"type": "image", "height": S, "width": S, "channels": 3},
                             texts),
        "speech": write_feats(root / "mel", {k: rng.random((n, MEL)) for k, n in frames.items()},
                              {"type": "mel", **SPEC}, SENTENCES),
        "linear": write_feats(root / "linear", {k: rng.random((n, LIN)) for k, n in frames.items()},
                              {"type": "linear", **SPEC}, SENTENCES),
    }


def train(model: str, model_conf: dict, data: dict[str, Path], exp_dir: Path) -> Path:
    config = write_config(exp_dir.parent / f"{model}.yaml", model, model_conf, max_epochs=1, batch_size=4,
                          best_metric="cycle" if model == "cyclegan" else "loss")
    train_experiment(load_experiment_config(config), data, None, exp_dir, device="cpu", quiet=True)
    return exp_dir


TINY_TTS = {k: v for k, v in test_piecewise.TINY.items() if not k.startswith("image")}


@pytest.fixture(scope="module")
def piecewise_exp(data, tmp_path_factory) -> Path:
    conf = {**test_piecewise.TINY, "vocab_size": 66, "max_decoder_steps": 4, "max_text_length": 6}
    return train("piecewise", conf, data, tmp_path_factory.mktemp("exp") / "piecewise")


@pytest.fixture(scope="module")
def tts_exp(data, tmp_path_factory) -> Path:
    conf = {**TINY_TTS, "vocab_size": 66, "max_decoder_steps": 4}
    speech_only = {k: data[k] for k in ("speech", "linear")}
    return train("tts", conf, speech_only, tmp_path_factory.mktemp("exp") / "tts")


@pytest.fixture(scope="module")
def cyclegan_exp(data, tmp_path_factory) -> Path:
    conf = {**test_cyclegan.TINY, "num_frames": 0}  # set by the training data
    return train("cyclegan", conf, data, tmp_path_factory.mktemp("exp") / "cyclegan")


def run(exp_dir: Path, task: str, out_dir: Path, **data_dirs: Path) -> Path:
    model, experiment = load_trained_model(exp_dir)
    decode(DecodeRequest(model, experiment, dict(data_dirs), out_dir, CPU, seed=1, exp_dir=exp_dir), task)
    return out_dir


def check_speech_dirs(out: Path, expected_frames: int | None = None) -> dict[str, np.ndarray]:
    """OUT/mel and OUT/linear as `skiptool feats` writes them, one utterance per image."""
    mats = {}
    for kind, dim in (("mel", MEL), ("linear", LIN)):
        found = dict(kaldiio.load_scp(str(out / kind / "feats.scp")))
        assert sorted(found) == sorted(CAPTIONS)
        counts = {k: int(v) for k, v in read_table(out / kind / "utt2num_frames").items()}
        assert counts == {k: len(v) for k, v in found.items()} and all(v.shape[1] == dim for v in found.values())
        if expected_frames is not None:
            assert set(counts.values()) == {expected_frames}
        conf = yaml.safe_load((out / kind / "conf.yaml").read_text())
        assert conf["type"] == kind and conf["feat_dim"] == dim and conf["hop_length"] == SPEC["hop_length"]
        mats[kind] = found
    return mats


def test_training_records_the_feature_configs(piecewise_exp, cyclegan_exp):
    for exp_dir in (piecewise_exp, cyclegan_exp):
        saved = yaml.safe_load((exp_dir / "config.yaml").read_text())["model_conf"]
        assert saved["speech_features"]["hop_length"] == SPEC["hop_length"]
        assert saved["image_features"]["height"] == S
        assert (exp_dir / "images" / "alignment_epoch001.png").read_bytes()[:4] == b"\x89PNG"


def test_piecewise_image2text(piecewise_exp, data, tmp_path):
    out = run(piecewise_exp, "image2text", tmp_path / "i2t", image=data["image"])
    assert sorted(read_table(out / "text")) == sorted(CAPTIONS)  # each image once, keyed by image
    lines = (out / "ref_captions").read_text().splitlines()
    assert len(lines) == 6 and lines[0] == "img0 a red circle"


def test_piecewise_image2speech_speaks_its_captions(piecewise_exp, data, tmp_path):
    out = run(piecewise_exp, "image2speech", tmp_path / "i2s", image=data["image"])
    mats = check_speech_dirs(out)
    assert all(0 < len(v) <= 4 * 2 for v in mats["mel"].values())  # max_decoder_steps x r
    assert sorted(read_table(out / "captions")) == sorted(CAPTIONS) and (out / "ref_captions").is_file()
    assert not (out / "text").exists()  # the spoken captions are not a hypothesis to score
    assert len(list((out / "images").glob("alignment_*.png"))) == 3
    again = run(piecewise_exp, "image2speech", tmp_path / "again", image=data["image"])
    assert (again / "mel" / "utt2num_frames").read_text() == (out / "mel" / "utt2num_frames").read_text()


def test_piecewise_text2speech_is_its_tts_alone(piecewise_exp, data, tmp_path):
    out = run(piecewise_exp, "text2speech", tmp_path / "t2s", text=data["speech"])
    for kind in ("mel", "linear"):
        found = dict(kaldiio.load_scp(str(out / kind / "feats.scp")))
        assert sorted(found) == sorted(SENTENCES) and all(0 < len(v) <= 4 * 2 for v in found.values())
        assert read_table(out / kind / "text") == SENTENCES
    assert read_table(out / "text") == SENTENCES
    with pytest.raises(SkiptoolError, match=r"--data text=DIR: missing; task 'text2speech' of model 'piecewise'"):
        run(piecewise_exp, "text2speech", tmp_path / "x", image=data["image"])


def test_tts_trains_on_the_text_speech_corpus_and_speaks(tts_exp, data, tmp_path):
    saved = yaml.safe_load((tts_exp / "config.yaml").read_text())["model_conf"]
    assert saved["speech_features"]["hop_length"] == SPEC["hop_length"]
    assert (tts_exp / "images" / "alignment_epoch001.png").read_bytes()[:4] == b"\x89PNG"
    out = run(tts_exp, "text2speech", tmp_path / "t2s", text=data["speech"])
    for kind in ("mel", "linear"):
        found = dict(kaldiio.load_scp(str(out / kind / "feats.scp")))
        assert sorted(found) == sorted(SENTENCES) and all(0 < len(v) <= 4 * 2 for v in found.values())
        assert yaml.safe_load((out / kind / "conf.yaml").read_text())["hop_length"] == SPEC["hop_length"]
    assert read_table(out / "text") == SENTENCES
    with pytest.raises(SkiptoolError, match=r"--task image2speech: model 'tts' cannot do it; its tasks: text2speech"):
        check_task("tts", "image2speech")
    with pytest.raises(SkiptoolError, match=r"--data image=\.\.\.: model 'tts' reads speech=DIR"):
        train("tts", {**TINY_TTS, "vocab_size": 66}, data, tmp_path / "tts")


def test_cyclegan_num_frames_is_the_mean_training_length(cyclegan_exp, data):
    lengths = [len(m) for _, m in kaldiio.load_scp_sequential(str(data["speech"] / "feats.scp"))]
    expected = int(np.ceil(np.mean(lengths) / 2)) * 2  # r = 2
    assert yaml.safe_load((cyclegan_exp / "config.yaml").read_text())["model_conf"]["num_frames"] == expected


def test_cyclegan_image2speech(cyclegan_exp, data, tmp_path):
    out = run(cyclegan_exp, "image2speech", tmp_path / "i2s", image=data["image"])
    num_frames = yaml.safe_load((cyclegan_exp / "config.yaml").read_text())["model_conf"]["num_frames"]
    check_speech_dirs(out, expected_frames=num_frames)
    assert (out / "ref_captions").is_file() and not (out / "captions").exists()


def test_user_errors(cyclegan_exp, data, tmp_path):
    with pytest.raises(SkiptoolError, match=r"--task image2text: model 'cyclegan' cannot do it; its tasks: "
                                            r"image2speech"):
        check_task("cyclegan", "image2text")
    with pytest.raises(SkiptoolError, match=r"--data image=DIR: missing"):
        run(cyclegan_exp, "image2speech", tmp_path / "a", speech=data["speech"])
    with pytest.raises(SkiptoolError, match=r"--data speech=DIR: not read"):
        run(cyclegan_exp, "image2speech", tmp_path / "b", image=data["image"], speech=data["speech"])


# ------------------------------------------------------------------------------ skiptool synth


def test_synth_with_the_baselines(piecewise_exp, cyclegan_exp, tts_exp, tmp_path):
    """`skiptool synth --model` takes a baseline for the directions it has (library call)."""
    import soundfile as sf
    from PIL import Image

    from skiptool.decode.synth import synthesize

    png = tmp_path / "in.png"
    Image.fromarray((np.random.default_rng(1).random((S, S, 3)) * 255).astype(np.uint8)).save(png)
    result = synthesize("image", "text", [str(png)], None, piecewise_exp)
    assert len(result.texts) == 1 and result.texts[0][0] == "in"
    for model, name in ((piecewise_exp, "pw"), (cyclegan_exp, "cg")):
        result = synthesize("image", "speech", [str(png)], tmp_path / f"{name}.wav", model)
        assert result.outputs == [tmp_path / f"{name}.wav"] and sf.info(result.outputs[0]).samplerate == 16000
    result = synthesize("text", "speech", ["a red box"], tmp_path / "tts.wav", piecewise_exp)
    assert result.audio_seconds > 0
    result = synthesize("text", "speech", ["a red box"], tmp_path / "alone.wav", tts_exp)
    assert result.outputs == [tmp_path / "alone.wav"] and sf.info(result.outputs[0]).samplerate == 16000
    with pytest.raises(SkiptoolError, match="not a direction tts generates; it does text->speech"):
        synthesize("image", "speech", [str(png)], tmp_path / "x.wav", tts_exp)
    result = synthesize("speech", "image", [str(tmp_path / "tts.wav")], tmp_path / "back.png", cyclegan_exp)
    assert Image.open(result.outputs[0]).size == (S, S)
    with pytest.raises(SkiptoolError, match="not a direction piecewise generates"):
        synthesize("speech", "text", [str(tmp_path / "tts.wav")], None, piecewise_exp)
    with pytest.raises(SkiptoolError, match="not a direction cyclegan generates"):
        synthesize("text", "image", ["a red box"], tmp_path / "o.png", cyclegan_exp)
