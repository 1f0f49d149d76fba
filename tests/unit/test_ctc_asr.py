"""The CTC recogniser (skiptool/models/ctc_asr.py): shapes, learning, greedy decoding, the
`transcribe` decode task and the `ctc` scoring backend on real waveforms."""

from __future__ import annotations

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch

from skiptool.data.feats import extract_features
from skiptool.metrics.recognizers import make_recognizer
from skiptool.models.ctc_asr import (CTCASR, CTCASRConfig, collate_ctc, conv_output_length, ctc_asr_dataset,
                                     LexiconDecoder, greedy_decode)
from skiptool.text.symbols import SYMBOL_TO_ID
from skiptool.text.tokenizer import CharTokenizer
from skiptool.train.trainer import load_experiment_config, load_trained_model, train_experiment
from skiptool.utils.errors import SkiptoolError
from tests.conftest import assert_user_error
from tests.fixtures.featdirs import write_config

TINY = dict(speech_dim=8, conv_channels=4, rnn_dim=16, rnn_layers=1, dropout=0.0, freq_masks=0, time_masks=0)


def _batch(lengths=(20, 13), texts=("ab", "b a")):
    ids = [torch.tensor([SYMBOL_TO_ID[c] for c in t]) for t in texts]
    items = [{"speech": torch.randn(n, 8), "text": i} for n, i in zip(lengths, ids)]
    return collate_ctc(items)


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_output_shapes_follow_the_time_stride(stride):
    model = CTCASR(CTCASRConfig(**TINY, time_stride=stride)).eval()
    batch = _batch()
    log_probs, lengths = model.encode(batch["speech"], batch["speech_lengths"])
    expected = [-(-n // stride) for n in (20, 13)]
    assert lengths.tolist() == expected == conv_output_length(torch.tensor([20, 13]), stride).tolist()
    assert log_probs.shape == (2, expected[0], 66)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, expected[0]), atol=1e-5)


def test_padding_does_not_change_an_utterances_output():
    model = CTCASR(CTCASRConfig(**TINY)).eval()
    x = torch.randn(1, 11, 8)
    alone, _ = model.encode(x, torch.tensor([11]))
    padded, _ = model.encode(torch.cat([x, torch.randn(1, 9, 8)], 1), torch.tensor([11]))
    assert torch.allclose(alone[0], padded[0, :6], atol=1e-5)


def test_ctc_loss_decreases_on_a_toy_batch():
    torch.manual_seed(0)
    model = CTCASR(CTCASRConfig(**TINY))
    batch = _batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(150):
        loss, stats = model(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(stats["loss"])
    assert set(stats) == {"loss", "cer", "infeasible"}
    assert losses[-1] < 0.5 * losses[0], losses[::30]
    model.eval()
    assert model.recognize(batch["speech"], batch["speech_lengths"]) == [[29, 30], [30, 65, 29]]  # "ab", "b a": memorised


def test_text_that_cannot_fit_its_frames_is_counted_not_fatal():
    model = CTCASR(CTCASRConfig(**TINY, time_stride=4))
    loss, stats = model(_batch(lengths=(20, 4), texts=("ab", "abcdef")))
    assert torch.isfinite(loss) and stats["infeasible"] == 0.5


def test_greedy_decoding_merges_repeats_and_drops_blanks():
    path = [0, 5, 5, 0, 5, 7, 7, 7, 0, 0, 9, 9]  # blank=0: "5 5 7 9" (a blank separates the two 5s)
    log_probs = torch.full((2, len(path), 10), -10.0)
    log_probs[0, torch.arange(len(path)), torch.tensor(path)] = 0.0
    log_probs[1, :, 3] = 0.0
    assert greedy_decode(log_probs, torch.tensor([len(path), 4])) == [[5, 5, 7, 9], [3]]
    assert greedy_decode(log_probs, torch.tensor([3, 0])) == [[5], []]


def _spelling_log_probs(frames: list[dict[str, float]]) -> torch.Tensor:
    """(1, T, 66) log-probabilities: each frame's listed symbols (<pad> = blank) with their probabilities."""
    log_probs = torch.full((1, len(frames), len(SYMBOL_TO_ID)), -20.0)
    for t, probs in enumerate(frames):
        for symbol, p in probs.items():
            log_probs[0, t, SYMBOL_TO_ID[symbol]] = float(np.log(p))
    return log_probs


def test_lexicon_decoding_spells_only_known_words():
    """Greedy decoding merges the two o's of "book" (no frame's best symbol is the blank between
    them); the lexicon beam search finds the path with a blank and spells a known word."""
    frames = [{"b": 0.9, "<pad>": 0.1}, {"o": 0.9, "<pad>": 0.1}, {"o": 0.55, "<pad>": 0.45},
              {"o": 0.9, "<pad>": 0.1}, {"k": 0.9, "<pad>": 0.1}, {" ": 0.9, "<pad>": 0.1},
              {"a": 0.9, "<pad>": 0.1}, {" ": 0.9, "<pad>": 0.1}]
    log_probs, lengths = _spelling_log_probs(frames), torch.tensor([len(frames)])
    assert CharTokenizer().decode(greedy_decode(log_probs, lengths)[0]) == "bok a "
    decoder = LexiconDecoder(["book", "bag", "a", "b@d"])
    assert decoder.words == ["a", "bag", "book"]  # b@d cannot be spelt with the 66 symbols
    assert decoder(log_probs, lengths) == ["book a"]
    assert LexiconDecoder(["bag", "a"])(log_probs, lengths)[0].split()[-1] == "a"
    with pytest.raises(SkiptoolError, match="no word"):
        LexiconDecoder(["@@"])


def test_config_is_checked():
    with pytest.raises(ValueError, match="time_stride"):
        CTCASRConfig(time_stride=3)
    with pytest.raises(ValueError, match="blank_id"):
        CTCASRConfig(blank_id=66)


# ---------------------------------------------------------------- on real waveforms


def _wav_dir(root, seconds=(0.6, 0.5), rate=8000):
    """Two noisy chirps with transcripts, at 8 kHz (the features resample to 16 kHz)."""
    data = root / "data"
    (data / "wav").mkdir(parents=True)
    rng = np.random.default_rng(0)
    scp, text = [], []
    for i, (sec, words) in enumerate(zip(seconds, ("a red dot", "two blue stars"))):
        t = np.arange(int(sec * rate)) / rate
        wav = 0.3 * np.sin(2 * np.pi * (200 + 400 * t * (i + 1)) * t) + 0.01 * rng.standard_normal(t.size)
        path = data / "wav" / f"u{i}.wav"
        sf.write(path, wav.astype(np.float32), rate)
        scp.append(f"u{i} {path}\n")
        text.append(f"u{i} {words.capitalize()}.\n")
    (data / "wav.scp").write_text("".join(scp))
    (data / "text").write_text("".join(text))
    (data / "utt2spk").write_text("u0 s\nu1 s\n")
    return data


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ctc")
    data = _wav_dir(root)
    feats = root / "fbank"
    extract_features(data, feats, "fbank", overrides={"num_mel_bins": 8}, quiet=True)
    config = write_config(root / "ctc.yaml", "ctc_asr", {**TINY}, max_epochs=1, batch_size=2, best_metric="cer")
    experiment = load_experiment_config(config)
    train_experiment(experiment, {"speech": feats}, None, root / "exp", device="cpu", quiet=True)
    return root, data, feats


def test_the_exp_dir_records_the_training_features(trained):
    root, _, feats = trained
    _, experiment = load_trained_model(root / "exp")
    assert experiment.model_conf.feats["type"] == "fbank"
    assert experiment.model_conf.feats["num_mel_bins"] == 8


def test_the_backend_computes_the_training_features_and_transcribes(trained):
    root, data, feats = trained
    recognizer = make_recognizer("ctc", asr_exp=root / "exp")
    wavs = {"u0": data / "wav" / "u0.wav", "u1": data / "wav" / "u1.wav"}
    computed = recognizer.features(wavs)
    for key, mat in kaldiio.load_scp(str(feats / "feats.scp")).items():
        np.testing.assert_allclose(computed[key], mat, atol=1e-4)
    hyps = recognizer.transcribe(wavs)
    assert set(hyps) == {"u0", "u1"} and all(isinstance(h, str) for h in hyps.values())


def test_transcribe_task_and_score_cli(trained, cli, tmp_path):
    root, data, feats = trained
    out = tmp_path / "decode"
    r = cli("decode", root / "exp", out, "--task", "transcribe", "--data", f"speech={feats}", "--device", "cpu")
    assert r.code == 0, r.err
    assert [line.split()[0] for line in (out / "text").read_text().splitlines()] == ["u0", "u1"]
    r = cli("score", "--metric", "wer", "--normalize", "--ref", data / "text", "--hyp-wav", data / "wav.scp",
            "--recognizer", "ctc", "--asr-exp", root / "exp", "--hyp-out", tmp_path / "hyp")
    assert r.code == 0, r.err
    assert "%WER" in r.out and (tmp_path / "hyp").is_file()
    r = cli("score", "--metric", "wer", "--normalize", "--ref", data / "text", "--hyp-wav", data / "wav.scp",
            "--recognizer", "ctc", "--asr-exp", root / "exp", "--lm-text", data / "text", "--hyp-out", tmp_path / "lex")
    assert r.code == 0, r.err
    words = {w for line in (data / "text").read_text().splitlines() for w in line.lower().split()[1:]}
    hyp_words = {w for line in (tmp_path / "lex").read_text().splitlines() for w in line.split()[1:]}
    assert hyp_words <= {w.strip(".,?!") for w in words} | words  # only words of --lm-text


def test_backend_user_errors(trained, cli, tmp_path):
    root, data, _ = trained
    assert_user_error(cli("score", "--metric", "wer", "--ref", data / "text", "--hyp-wav", data / "wav.scp",
                          "--recognizer", "ctc"), "--asr-exp")
    assert_user_error(cli("score", "--metric", "wer", "--ref", data / "text", "--hyp-wav", data / "wav.scp",
                          "--asr-exp", root / "exp"), "--asr-exp is for a trained recognizer")
    assert_user_error(cli("score", "--metric", "wer", "--ref", data / "text", "--hyp-wav", data / "wav.scp",
                          "--recognizer", "ctc", "--asr-exp", tmp_path), "no config.yaml")


def test_dataset_rejects_features_it_could_not_remake(trained, tmp_path):
    _, _, feats = trained
    cmvn = tmp_path / "cmvn"
    cmvn.mkdir()
    for name in ("feats.scp", "text"):
        (cmvn / name).write_text((feats / name).read_text())
    (cmvn / "conf.yaml").write_text((feats / "conf.yaml").read_text().replace("cmvn: none", "cmvn: global"))
    with pytest.raises(SkiptoolError, match="--cmvn none"):
        ctc_asr_dataset(CTCASRConfig(**TINY), {"speech": cmvn}, True, 0)
    (cmvn / "conf.yaml").write_text((feats / "conf.yaml").read_text())
    (cmvn / "text").unlink()
    with pytest.raises(SkiptoolError, match="text: not found"):
        ctc_asr_dataset(CTCASRConfig(**TINY), {"speech": cmvn}, True, 0)
    other = CTCASRConfig(**TINY, feats={"type": "fbank", "num_mel_bins": 80})
    (cmvn / "text").write_text((feats / "text").read_text())
    with pytest.raises(SkiptoolError, match="num_mel_bins"):
        ctc_asr_dataset(other, {"speech": cmvn}, True, 0)
