"""Batched Kaldi FBank/MFCC against torchaudio.compliance.kaldi and kaldi-native-fbank; Tacotron batching."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from skiptool.audio import kaldi, tacotron
from skiptool.audio.kaldi import FbankConfig, MfccConfig
from skiptool.audio.transforms import TacotronFeatsConfig, make_extractor, resample, tacotron_features
from skiptool.data.feats import load_feats_config
from skiptool.utils.errors import SkiptoolError

knf = pytest.importorskip("kaldi_native_fbank")


def synthetic_waves() -> list[np.ndarray]:
    """Noise, tones, a DC offset, digital silence and lengths around the frame boundaries."""
    rng = np.random.default_rng(0)
    waves = []
    for n in (400, 401, 559, 560, 1600, 7013, 16000):
        t = np.arange(n) / 16000
        x = 0.1 * rng.standard_normal(n) + 0.3 * np.sin(2 * np.pi * 440 * t) + 0.02
        waves.append(x.astype(np.float32))
    waves.append(np.zeros(3000, np.float32))
    waves.append(np.concatenate([np.zeros(800), 1e-3 * rng.standard_normal(3000), 0.5 * np.ones(100)]).astype(np.float32))
    return waves


OPTIONS = [
    {},
    {"snip_edges": False},
    {"use_energy": True},
    {"use_energy": True, "raw_energy": False, "htk_compat": True, "energy_floor": 1.0},
    {"window_type": "hamming"},
    {"window_type": "rectangular", "preemphasis_coefficient": 0.0},
    {"window_type": "blackman", "low_freq": 100.0, "high_freq": -400.0},
    {"remove_dc_offset": False},
    {"round_to_power_of_two": False},
    {"subtract_mean": True},
    {"vtln_warp": 0.9},
    {"frame_length": 20.0, "frame_shift": 12.5},
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "defaults")
@pytest.mark.parametrize("kind", ["fbank", "mfcc"])
def test_equals_torchaudio_compliance_kaldi(kind, options):
    cfg = replace(FbankConfig() if kind == "fbank" else MfccConfig(dither=0.0), **options)
    waves = synthetic_waves()
    ours = kaldi.compute(waves, cfg).feats
    for wave, got in zip(waves, ours):
        ref = kaldi.reference(torch.from_numpy(wave), cfg)
        assert got is not None and got.shape == ref.shape
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize("options", [{"use_power": False}, {"use_log_fbank": False}])
def test_fbank_power_and_log_options(options):
    cfg = replace(FbankConfig(), **options)
    waves = synthetic_waves()[:7]
    for wave, got in zip(waves, kaldi.fbank(waves, cfg)):
        torch.testing.assert_close(got, kaldi.reference(torch.from_numpy(wave), cfg), rtol=2e-4, atol=2e-3)


def test_mfcc_without_lifter_or_energy_matches():
    cfg = MfccConfig(dither=0.0, cepstral_lifter=0.0, use_energy=False, htk_compat=True, num_ceps=20, num_mel_bins=40)
    waves = synthetic_waves()[:7]
    for wave, got in zip(waves, kaldi.mfcc(waves, cfg)):
        torch.testing.assert_close(got, kaldi.reference(torch.from_numpy(wave), cfg), rtol=1e-4, atol=2e-3)


def test_constant_frames_are_exactly_silent():
    """A DC-only signal has zero energy after DC removal: every bin is log(FLT_EPSILON)."""
    feats = kaldi.fbank([np.full(4000, 0.25, np.float32)])[0]
    assert torch.all(feats <= np.log(kaldi.EPSILON) + 0.5)


def test_an_utterance_does_not_depend_on_its_batch():
    waves = synthetic_waves()
    alone = [kaldi.compute([w], MfccConfig(dither=0.0)).feats[0] for w in waves]
    together = kaldi.compute(waves, MfccConfig(dither=0.0), group_frames=50, chunk_frames=7).feats
    for a, b in zip(alone, together):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


def test_too_short_and_min_duration_give_none():
    cfg = FbankConfig(min_duration=0.05)
    feats = kaldi.fbank([np.ones(399, np.float32), np.ones(700, np.float32), np.ones(900, np.float32)], cfg)
    assert feats[0] is None and feats[1] is None and feats[2].shape == (4, 80)
    assert kaldi.num_frames(399, cfg) == 0 and kaldi.num_frames(560, cfg) == 2
    assert kaldi.num_frames(399, replace(cfg, snip_edges=False)) == 2


def test_dither_is_seeded_per_utterance():
    wave = synthetic_waves()[4]
    cfg = FbankConfig(dither=1.0)
    a, b = kaldi.fbank([wave, wave], cfg, seeds=[7, 7])
    c = kaldi.fbank([wave], cfg, seeds=[8])[0]
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)
    assert (a - c).abs().mean() < 0.05  # one LSB of noise barely moves a loud signal's features


def knf_fbank(wave: np.ndarray, num_bins: int = 80) -> np.ndarray:
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = 16000
    opts.mel_opts.num_bins = num_bins
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(16000, wave * 32768)
    fb.input_finished()
    return np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])


def assert_close_to_knf(ours: list[torch.Tensor], ref: list[np.ndarray]) -> None:
    diffs = np.concatenate([np.abs(a.numpy() - b).ravel() for a, b in zip(ours, ref)])
    assert diffs.mean() <= 1e-4, diffs.mean()
    assert np.percentile(diffs, 99.9) <= 2e-3, np.percentile(diffs, 99.9)


def test_fbank_equals_kaldi_native_fbank_on_synthetic_speechlike_signals():
    waves = synthetic_waves()[:7]
    assert_close_to_knf(kaldi.fbank(waves), [knf_fbank(w) for w in waves])


def test_mfcc_equals_kaldi_native_fbank():
    waves = synthetic_waves()[:7]
    opts = knf.MfccOptions()
    opts.frame_opts.dither = 0.0
    ours = kaldi.mfcc(waves, MfccConfig(dither=0.0))
    for wave, got in zip(waves, ours):
        m = knf.OnlineMfcc(opts)
        m.accept_waveform(16000, wave * 32768)
        m.input_finished()
        ref = np.stack([m.get_frame(i) for i in range(m.num_frames_ready)])
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-3, atol=2e-3)


def test_fbank_equals_kaldi_native_fbank_on_fsdd(fsdd_dir):
    files = sorted((fsdd_dir / "recordings").glob("*.wav"))[::300]
    waves = [resample(sf.read(f, dtype="float32")[0], 8000, 16000) for f in files]
    assert_close_to_knf(kaldi.fbank(waves), [knf_fbank(w) for w in waves])
    cfg = FbankConfig()
    for wave, got in zip(waves[:3], kaldi.fbank(waves[:3])):
        torch.testing.assert_close(got, kaldi.reference(torch.from_numpy(wave), cfg), rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize("options", [{}, {"pad_mode": "reflect"}, {"win_length": 801, "hop_length": 160},
                                     {"preemphasis": 0.0}])
def test_tacotron_batch_equals_per_utterance(options):
    cfg = TacotronFeatsConfig(**options)
    waves = synthetic_waves()[:7] + [np.zeros(1, np.float32)]
    if cfg.pad_mode == "reflect":  # torch.stft cannot reflect-pad a signal shorter than n_fft / 2
        waves = [w for w in waves if len(w) > cfg.n_fft // 2]
    for linear, fn in ((False, tacotron.mel_spectrogram), (True, tacotron.linear_spectrogram)):
        feats, energy = tacotron_features(waves, cfg, linear=linear, chunk_frames=16)
        for wave, got, e in zip(waves, feats, energy):
            ref = fn(torch.from_numpy(wave), cfg)
            assert got.shape == ref.shape and e.shape == (ref.shape[0],)
            torch.testing.assert_close(got, ref, rtol=0, atol=1e-4)


def test_resample_equals_torchaudio_and_caches_the_kernel():
    wave = synthetic_waves()[5]
    ref = torchaudio.functional.resample(torch.from_numpy(wave), 16000, 8000).numpy()
    np.testing.assert_allclose(resample(wave, 16000, 8000), ref, atol=1e-6)
    from skiptool.audio.transforms import _resampler

    assert _resampler(16000, 8000) is _resampler(16000, 8000)
    assert resample(wave, 16000, 16000) is not None


def test_extractor_dims_and_vad():
    waves = synthetic_waves()[:3]
    for feat_type, cfg, dim in (("fbank", FbankConfig(use_energy=True), 81), ("mfcc", MfccConfig(), 13),
                                ("mel", TacotronFeatsConfig(), 80), ("linear", TacotronFeatsConfig(), 1025)):
        extractor = make_extractor(feat_type, cfg)
        assert extractor.dim == dim
        out = extractor(waves, seeds=[1, 2, 3])
        assert all(o.shape[1] == dim and o.dtype == np.float32 for o in out)


@pytest.mark.parametrize("bad, needle", [
    ({"frame_length": 0.05}, "frame_length"),
    ({"num_mel_bins": 3}, "num_mel_bins"),
    ({"high_freq": 9000.0}, "high_freq"),
    ({"preemphasis_coefficient": 1.5}, "preemphasis_coefficient"),
    ({"vad_threshold_db": 3.0}, "vad_threshold_db"),
    ({"window_type": "kaiser"}, "window_type"),
    ({"num_mel_bin": 40}, "num_mel_bin"),
])
def test_bad_config_values_are_user_errors(bad, needle):
    with pytest.raises(SkiptoolError, match=needle):
        load_feats_config("fbank", None, bad)


def test_mfcc_num_ceps_must_fit():
    with pytest.raises(SkiptoolError, match="num_ceps"):
        load_feats_config("mfcc", None, {"num_ceps": 30})


# ------------------------------------------------------------------ the pieces the batching uses

@pytest.mark.parametrize("bank", ["kaldi80", "kaldi23", "slaney80", "holes"])
def test_banded_projection_equals_the_dense_product(bank):
    from skiptool.audio.banded import BandedProjection
    from skiptool.audio.kaldi import _mel_projection

    matrix = {"kaldi80": lambda: _mel_projection(FbankConfig()),
              "kaldi23": lambda: _mel_projection(MfccConfig()),
              "slaney80": lambda: tacotron.mel_basis(TacotronFeatsConfig()),
              "holes": lambda: torch.zeros(50, 12).index_fill_(1, torch.tensor([3, 7]), 0.5)}[bank]()
    x = torch.rand(37, matrix.shape[0])
    out = torch.empty(matrix.shape[1], 37)
    torch.testing.assert_close(BandedProjection(matrix).project_t(x, out), (x @ matrix).T, rtol=1e-5, atol=1e-6)
    run = BandedProjection(matrix, group=3).bind(x, out)
    x.mul_(2.0)  # a bound projection reads the buffers' current contents
    torch.testing.assert_close(run(), (x @ matrix).T, rtol=1e-5, atol=1e-6)


def test_spectrum_kernels_equal_torch():
    from skiptool.audio import kernels

    spec = torch.fft.rfft(torch.randn(9, 64))
    parts = torch.view_as_real(spec).reshape(9, -1).numpy()
    power, magnitude = np.empty((9, 33), np.float32), np.empty((9, 33), np.float32)
    kernels.power_spectrum(parts, power)
    kernels.magnitude_spectrum(parts, magnitude)
    np.testing.assert_allclose(power, (spec.abs() ** 2).numpy(), rtol=1e-5)
    np.testing.assert_allclose(magnitude, spec.abs().numpy(), rtol=1e-6)


@pytest.mark.parametrize("dc, scale", [(0.0, 1000.0), (655.0, 1.0), (20000.0, 0.5), (0.0, 0.0)])
def test_frame_moments_survive_a_large_dc_offset(dc, scale):
    """Sums and energies after DC removal from block moments equal float64 framing, even when a
    DC offset dwarfs the signal (where sum(x^2) - n mean^2 in float32 would cancel to noise)."""
    from skiptool.audio.kaldi import Workspace, _frame_moments, _frame_sums

    rng = np.random.default_rng(0)
    rows, size, shift = 200, 400, 160
    x = np.zeros((rows + 4) * shift, np.float32)
    x[: rows * shift] = dc + scale * rng.standard_normal(rows * shift)
    x[1000:2200] = 0.0  # digital silence: frames inside it must have exactly zero energy
    signal = torch.from_numpy(x)
    sums, energy = _frame_moments(signal, rows, size, shift, Workspace())
    frames = signal.double().as_strided((rows, size), (shift, 1))
    ref = ((frames - frames.mean(1, keepdim=True)) ** 2).sum(1)
    torch.testing.assert_close(sums, frames.sum(1), rtol=1e-7, atol=1e-2)
    torch.testing.assert_close(energy, ref, rtol=1e-6, atol=1e-6 * float(ref.max()) + 1e-9)
    torch.testing.assert_close(_frame_sums(signal, rows, size, shift), frames.sum(1), rtol=1e-6, atol=1e-2)
    silent = [r for r in range(rows) if r * shift >= 1000 and r * shift + size <= 2200]
    assert silent and bool((energy[silent] == 0).all())
