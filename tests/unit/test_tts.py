"""The tts model (MIB's text -> speech path alone): it is the piecewise baseline's TTS, its config
mirrors MIB's, it trains on text-speech batches only, generates text -> speech only, and its
dataset reads one text-speech corpus."""

from dataclasses import asdict, fields
from pathlib import Path

import pytest
import torch
import yaml

from skiptool.models import MODELS
from skiptool.models.mib import MIBConfig, collate_mib
from skiptool.models.tts import TTSConfig, TextToSpeech, tts_dataset
from skiptool.utils.config import from_dict
from skiptool.utils.errors import SkiptoolError
from tests.fixtures.mib_dirs import TINY_MIB, write_mib_corpora
from tests.unit.test_piecewise import MEL, TINY, V, items, tiny

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_tts(**overrides) -> TextToSpeech:
    torch.manual_seed(0)
    return TextToSpeech(TTSConfig(**{**TINY, **overrides}))


def speech_batch(seed: int = 0) -> dict:
    return collate_mib([it for it in items(seed) if "speech" in it])


def seeded(model, batch: dict) -> tuple[torch.Tensor, dict]:
    torch.manual_seed(1)  # the same dropout masks for every call
    return model(batch)


def test_registered_with_mibs_defaults():
    assert MODELS["tts"].config_cls is TTSConfig
    mib = MIBConfig()
    for f in fields(TTSConfig):
        assert getattr(TTSConfig(), f.name) == getattr(mib, f.name), f.name
    with pytest.raises(ValueError):
        TTSConfig(**{**TINY, "reduction_factor": 0})


def test_config_file_lists_the_tts_fields_at_mibs_sizes():
    data = yaml.safe_load((REPO / "conf/train/tts.yaml").read_text())
    mib = yaml.safe_load((REPO / "conf/train/mib.yaml").read_text())
    assert data["model"] == "tts"
    from_dict(TTSConfig, data["model_conf"], source="tts")  # every key a field
    listed = set(data["model_conf"])
    assert {"speech_features", "encoder_cbhg_channels", "decoder_rnn_dim", "postnet_cbhg_channels",
            "guided_attention_weight"} <= listed
    assert not listed & {"image_size", "image_features", "text_decoder_dim", "batching"}  # unused: not listed
    assert data["model_conf"] == {k: mib["model_conf"][k] for k in listed}
    assert data["train"] == mib["train"]
    assert (REPO / "egs/coco_emt4/conf/train_tts.yaml").resolve() == REPO / "conf/train/tts.yaml"


def test_it_is_the_piecewise_tts():
    """Same modules and parameters as the piecewise baseline's TTS, and the same loss on the same
    text-speech batch."""
    piecewise, model = tiny(), tiny_tts()
    model.tts.load_state_dict(piecewise.tts.state_dict())
    batch = speech_batch()
    loss, stats = seeded(model, batch)
    reference = seeded(piecewise, batch)[1]
    assert set(stats) == {"loss", "mel_l1", "linear_l1", "stop_bce"}
    assert {k: stats[k] for k in ("mel_l1", "linear_l1", "stop_bce")} == \
        {k: reference[k] for k in ("mel_l1", "linear_l1", "stop_bce")}
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_guided_attention_adds_its_term():
    stats = seeded(tiny_tts(guided_attention_weight=1.0), speech_batch())[1]
    assert stats["guided_attn"] > 0
    assert stats["loss"] == pytest.approx(sum(v for k, v in stats.items() if k != "loss"), rel=1e-5)


def test_bad_batches_are_user_errors():
    model, batch = tiny_tts(), speech_batch()
    with pytest.raises(SkiptoolError, match="no speech"):
        model(collate_mib([it for it in items() if "image" in it]))
    with pytest.raises(SkiptoolError, match="linear"):
        model({k: v for k, v in batch.items() if k != "linear"})
    with pytest.raises(SkiptoolError, match="vocab_size"):
        model({**batch, "speech_text": batch["speech_text"] + V})


def test_generates_text_to_speech_only():
    model = tiny_tts().eval()
    tokens = torch.randint(3, V, (2, 5))
    speech = model.generate("text", "speech", tokens)
    assert speech.mel.shape[0] == 2 and speech.mel.size(-1) == MEL and speech.lengths.tolist()[0] > 0
    assert not model.tts.decoder.prenet.training  # dropout kept while generating, then back in eval mode
    assert model.generate("text", "speech", tokens[:, :0]).mel.size(0) == 2  # empty text: one padding token
    with pytest.raises(SkiptoolError, match="text -> speech only"):
        model.generate("image", "speech", torch.rand(1, 3, 16, 16))


def test_dataset_reads_one_text_speech_corpus(tmp_path):
    corpora = write_mib_corpora(tmp_path, images=2, captions=1, utterances=3)
    conf = {k: v for k, v in TINY_MIB.items() if k in TTSConfig.__dataclass_fields__}
    cfg = TTSConfig(**conf)
    data = tts_dataset(cfg, {"speech": corpora["speech"], "linear": corpora["linear"]}, True, 0)
    assert len(data) == 3 and {"speech", "linear", "speech_text"} <= set(data[0])
    assert cfg.speech_features["num_mels"] == TINY_MIB["mel_dim"]
    assert "num_items" in collate_mib([data[0], data[1]])
    with pytest.raises(SkiptoolError, match=r"--data image=\.\.\.: model 'tts' reads speech=DIR"):
        tts_dataset(cfg, {k: corpora[k] for k in ("image", "speech", "linear")}, True, 0)
    with pytest.raises(SkiptoolError, match=r"--dev-data linear=DIR: missing"):
        tts_dataset(cfg, {"speech": corpora["speech"]}, False, 0)
    with pytest.raises(SkiptoolError, match="model_conf.mel_dim"):
        tts_dataset(TTSConfig(**{**conf, "mel_dim": 9}), {k: corpora[k] for k in ("speech", "linear")}, True, 0)
    assert asdict(cfg)["speech_features"] == cfg.speech_features
