"""Energy VAD and Kaldi-style CMVN (checked against kaldi-native-fbank's implementation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skiptool.audio import cmvn
from skiptool.audio.kaldi import FbankConfig
from skiptool.audio.transforms import TacotronFeatsConfig, make_extractor
from skiptool.audio.vad import apply_vad, keep_index, voiced_frames
from skiptool.utils.errors import SkiptoolError

knf = pytest.importorskip("kaldi_native_fbank")


def db_to_log_energy(db: list[float]) -> torch.Tensor:
    return torch.tensor(db, dtype=torch.float64) / (10 / np.log(10))


def test_voiced_frames_threshold_and_context():
    energy = db_to_log_energy([10, 10, 60, 70, 20, 65, 10, 10, 10])  # loudest 70 dB
    assert voiced_frames(energy, -30, 0).tolist() == [0, 0, 1, 1, 0, 1, 0, 0, 0]
    assert voiced_frames(energy, -30, 1).tolist() == [0, 1, 1, 1, 1, 1, 1, 0, 0]
    assert voiced_frames(energy, -55, 0).tolist() == [0, 0, 1, 1, 1, 1, 0, 0, 0]


def test_span_keeps_pauses_frames_drops_them():
    voiced = torch.tensor([0, 1, 1, 0, 0, 1, 0], dtype=torch.bool)
    assert keep_index(voiced, "span").tolist() == [1, 2, 3, 4, 5]
    assert keep_index(voiced, "frames").tolist() == [1, 2, 5]
    with pytest.raises(ValueError):
        keep_index(voiced, "nope")


def test_equal_energies_keep_everything():
    feats = torch.randn(5, 3)
    assert torch.equal(apply_vad(feats, torch.full((5,), -15.9), -40, "frames", 0), feats)


@pytest.mark.parametrize("feat_type, cfg", [("fbank", FbankConfig(vad=True, vad_context=0)),
                                            ("mel", TacotronFeatsConfig(vad=True, vad_context=0))])
def test_extractor_vad_trims_silence_around_a_tone(feat_type, cfg):
    rng = np.random.default_rng(0)
    tone = 0.5 * np.sin(2 * np.pi * 300 * np.arange(8000) / 16000)
    quiet = 1e-4 * rng.standard_normal(8000)  # -74 dB relative to the tone
    wave = np.concatenate([quiet, tone, quiet]).astype(np.float32)
    with_vad = make_extractor(feat_type, cfg)([wave])[0]
    without = make_extractor(feat_type, type(cfg)())([wave])[0]
    hop = 160 if feat_type == "fbank" else cfg.hop_length
    assert without.shape[0] > 2.9 * 8000 / hop
    assert abs(with_vad.shape[0] - 8000 / hop) <= 4  # about the tone's half second


def test_stats_and_apply_equal_kaldi_native_fbank():
    rng = np.random.default_rng(1)
    feats = (rng.standard_normal((50, 6)) * 3 + 7).astype(np.float32)
    stats = cmvn.accumulate(feats)
    np.testing.assert_allclose(stats[:, :-1], knf.compute_cmvn_stats(feats)[:, :-1], rtol=1e-12)
    assert stats[0, -1] == 50
    for norm_vars in (False, True):
        opts = knf.CmvnOptions()
        opts.norm_vars = norm_vars
        np.testing.assert_allclose(cmvn.apply_cmvn(feats, stats, norm_vars), knf.apply_cmvn(stats, opts, feats),
                                   rtol=1e-5, atol=1e-5)
    normed = cmvn.apply_cmvn(feats, stats, True)
    np.testing.assert_allclose(normed.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(normed.std(0), 1, atol=1e-4)
    np.testing.assert_allclose(cmvn.invert_cmvn(normed, stats, True), feats, rtol=1e-5, atol=1e-4)


def test_global_and_speaker_stats():
    rng = np.random.default_rng(2)
    utts = {f"u{i}": rng.standard_normal((10 + i, 4)) + i for i in range(4)}
    total = cmvn.global_stats(utts.values())
    np.testing.assert_allclose(total, cmvn.accumulate(np.concatenate(list(utts.values()))))
    per_spk = cmvn.speaker_stats(utts.items(), {"u0": "a", "u1": "b", "u2": "a", "u3": "b"})
    np.testing.assert_allclose(per_spk["a"], cmvn.accumulate(np.concatenate([utts["u0"], utts["u2"]])))
    np.testing.assert_allclose(per_spk["a"] + per_spk["b"], total)


def test_constant_dimension_is_floored_not_divided_by_zero():
    feats = np.ones((5, 2), np.float32)
    out = cmvn.apply_cmvn(feats, cmvn.accumulate(feats), norm_vars=True)
    assert np.isfinite(out).all() and np.allclose(out, 0)


def test_check_stats_names_the_problem():
    with pytest.raises(SkiptoolError, match="do not fit 80-dim"):
        cmvn.check_stats(np.zeros((2, 14)), 80, "cmvn.ark")
    with pytest.raises(SkiptoolError, match="frame count"):
        cmvn.check_stats(np.zeros((2, 81)), 80, "cmvn.ark")
