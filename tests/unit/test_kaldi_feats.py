"""Batched Kaldi FBank/MFCC against torchaudio.compliance.kaldi and kaldi-native-fbank; Tacotron batching;
the numpy constants (windows, mel banks, DCT, resampling kernel) against torchaudio's; no torch import."""

from __future__ import annotations

import subprocess
import sys
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
        ref = kaldi.reference(wave, cfg)
        assert got is not None and got.shape == ref.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize("options", [{"use_power": False}, {"use_log_fbank": False}])
def test_fbank_power_and_log_options(options):
    cfg = replace(FbankConfig(), **options)
    waves = synthetic_waves()[:7]
    for wave, got in zip(waves, kaldi.fbank(waves, cfg)):
        np.testing.assert_allclose(got, kaldi.reference(wave, cfg), rtol=2e-4, atol=2e-3)


def test_mfcc_without_lifter_or_energy_matches():
    cfg = MfccConfig(dither=0.0, cepstral_lifter=0.0, use_energy=False, htk_compat=True, num_ceps=20, num_mel_bins=40)
    waves = synthetic_waves()[:7]
    for wave, got in zip(waves, kaldi.mfcc(waves, cfg)):
        np.testing.assert_allclose(got, kaldi.reference(wave, cfg), rtol=1e-4, atol=2e-3)


def test_constant_frames_are_exactly_silent():
    """A DC-only signal has zero energy after DC removal: every bin is log(FLT_EPSILON)."""
    feats = kaldi.fbank([np.full(4000, 0.25, np.float32)])[0]
    assert np.all(feats <= np.log(kaldi.EPSILON) + 0.5)


@pytest.mark.parametrize("threads", [1, 2])
def test_an_utterance_does_not_depend_on_its_batch(threads):
    waves = synthetic_waves()
    alone = [kaldi.compute([w], MfccConfig(dither=0.0)).feats[0] for w in waves]
    together = kaldi.compute(waves, MfccConfig(dither=0.0), group_frames=50, chunk_frames=7, threads=threads).feats
    for a, b in zip(alone, together):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
    mel = [tacotron_features([w], TacotronFeatsConfig())[0][0] for w in waves]
    mel_together = tacotron_features(waves, TacotronFeatsConfig(), group_frames=20, chunk_frames=5, threads=threads)[0]
    for a, b in zip(mel, mel_together):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


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
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.abs(a - c).mean() < 0.05  # one LSB of noise barely moves a loud signal's features


def knf_fbank(wave: np.ndarray, num_bins: int = 80) -> np.ndarray:
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = 16000
    opts.mel_opts.num_bins = num_bins
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(16000, wave * 32768)
    fb.input_finished()
    return np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])


def assert_close_to_knf(ours: list[np.ndarray], ref: list[np.ndarray]) -> None:
    diffs = np.concatenate([np.abs(a - b).ravel() for a, b in zip(ours, ref)])
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
        np.testing.assert_allclose(got, ref, rtol=1e-3, atol=2e-3)


def test_fbank_equals_kaldi_native_fbank_on_fsdd(fsdd_dir):
    files = sorted((fsdd_dir / "recordings").glob("*.wav"))[::300]
    waves = [resample(sf.read(f, dtype="float32")[0], 8000, 16000) for f in files]
    assert_close_to_knf(kaldi.fbank(waves), [knf_fbank(w) for w in waves])
    cfg = FbankConfig()
    for wave, got in zip(waves[:3], kaldi.fbank(waves[:3])):
        np.testing.assert_allclose(got, kaldi.reference(wave, cfg), rtol=1e-4, atol=2e-3)


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
            ref = fn(torch.from_numpy(wave), cfg).numpy()
            assert got.shape == ref.shape and e.shape == (ref.shape[0],) and got.dtype == np.float32
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)


@pytest.mark.parametrize("orig, new", [(16000, 8000), (8000, 16000), (44100, 16000), (22050, 16000)])
def test_resample_equals_torchaudio_and_caches_the_kernel(orig, new):
    wave = synthetic_waves()[5]
    ref = torchaudio.functional.resample(torch.from_numpy(wave), orig, new).numpy()
    got = resample(wave, orig, new)
    assert got.shape == ref.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-5)  # the same kernel; float32 sums over up to 475 taps in another order
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
              "slaney80": lambda: tacotron.mel_filterbank(TacotronFeatsConfig()),
              "holes": lambda: np.zeros((50, 12), np.float32) + np.isin(np.arange(12), [3, 7]) * np.float32(0.5)}[bank]()
    x = np.random.default_rng(0).random((37, matrix.shape[0]), dtype=np.float32)
    out = np.empty((matrix.shape[1], 37), np.float32)
    np.testing.assert_allclose(BandedProjection(matrix).project_t(x, out), (x @ matrix).T, rtol=1e-5, atol=1e-6)
    run = BandedProjection(matrix, group=3).bind(x, out)
    x *= 2.0  # a bound projection reads the buffers' current contents
    np.testing.assert_allclose(run(), (x @ matrix).T, rtol=1e-5, atol=1e-6)


def test_spectrum_kernels_equal_numpy():
    from skiptool.audio import kernels

    spec = np.fft.rfft(np.random.default_rng(0).standard_normal((9, 64))).astype(np.complex64)
    parts = spec.view(np.float32)
    power, magnitude = np.empty((9, 33), np.float32), np.empty((9, 33), np.float32)
    kernels.power_spectrum(parts, power)
    kernels.magnitude_spectrum(parts, magnitude)
    np.testing.assert_allclose(power, np.abs(spec) ** 2, rtol=1e-5)
    np.testing.assert_allclose(magnitude, np.abs(spec), rtol=1e-6)


@pytest.mark.parametrize("dc, scale", [(0.0, 1000.0), (655.0, 1.0), (20000.0, 0.5), (0.0, 0.0)])
@pytest.mark.parametrize("remove_dc", [True, False])
def test_kaldi_frames_kernel_equals_float64_framing(dc, scale, remove_dc):
    """The framing kernel (DC removal, raw energy, pre-emphasis, window) against float64 numpy, also
    when a DC offset dwarfs the signal; frames of digital silence have exactly zero energy."""
    from skiptool.audio import kernels

    rng = np.random.default_rng(0)
    rows, size, shift, coef = 200, 400, 160, 0.97
    x = np.zeros((rows + 4) * shift, np.float32)
    x[: rows * shift] = dc + scale * rng.standard_normal(rows * shift)
    x[1000:2200] = 0.0  # digital silence
    starts = np.arange(rows) * shift
    window = kaldi.window_function("hamming", size)
    frames, energy = np.zeros((rows, 512), np.float32), np.empty(rows, np.float32)
    kernels.kaldi_frames(x, starts, window, np.float32(coef), remove_dc, kernels.ENERGY_RAW, frames, energy)
    ref = x.astype(np.float64)[starts[:, None] + np.arange(size)]
    if remove_dc:
        ref -= ref.mean(1, keepdims=True)
    ref_energy = (ref ** 2).sum(1)
    ref = (ref - coef * np.concatenate((ref[:, :1], ref[:, :-1]), axis=1)) * window
    assert not frames[:, size:].any()
    peak = float(np.abs(ref).max()) + 1e-30
    np.testing.assert_allclose(frames[:, :size], ref, rtol=1e-4, atol=1e-5 * peak if remove_dc else 1e-6 * peak)
    np.testing.assert_allclose(energy, ref_energy, rtol=2e-5, atol=1e-6 * float(ref_energy.max()) + 1e-9)
    silent = [r for r in range(rows) if r * shift >= 1000 and r * shift + size <= 2200]
    assert silent and bool((energy[silent] == 0).all())
    windowed = np.empty(rows, np.float32)
    kernels.kaldi_frames(x, starts, window, np.float32(coef), remove_dc, kernels.ENERGY_WINDOWED, frames, windowed)
    np.testing.assert_allclose(windowed, (ref ** 2).sum(1), rtol=2e-5, atol=1e-6 * float((ref ** 2).sum(1).max()) + 1e-9)


# ------------------------------------------------------- the constants torchaudio used to provide

@pytest.mark.parametrize("window_type", ["hanning", "hamming", "povey", "rectangular", "blackman"])
def test_windows_equal_torchaudio(window_type):
    import torchaudio.compliance.kaldi as ta_kaldi

    for size in (2, 400, 551):
        ref = ta_kaldi._feature_window_function(window_type, size, 0.35, torch.device("cpu"), torch.float32)
        np.testing.assert_allclose(kaldi.window_function(window_type, size, 0.35), ref.numpy(), atol=3e-7)


@pytest.mark.parametrize("args", [(80, 512, 16000.0, 20.0, 0.0, 100.0, -500.0, 1.0),
                                  (23, 512, 16000.0, 20.0, 0.0, 100.0, -500.0, 0.9),
                                  (40, 1024, 22050.0, 64.0, -400.0, 200.0, -800.0, 1.1),
                                  (30, 400, 8000.0, 0.0, 3800.0, 100.0, -500.0, 1.0)])
def test_mel_banks_equal_torchaudio(args):
    import torchaudio.compliance.kaldi as ta_kaldi

    ref = ta_kaldi.get_mel_banks(*args)[0].numpy()  # computed in float32 there
    np.testing.assert_allclose(kaldi.mel_banks(*args), ref, atol=3e-5)


@pytest.mark.parametrize("num_ceps, num_mel_bins, lifter", [(13, 23, 22.0), (20, 40, 0.0), (23, 23, 10.0)])
def test_dct_and_lifter_equal_torchaudio(num_ceps, num_mel_bins, lifter):
    import torchaudio.compliance.kaldi as ta_kaldi

    ref = ta_kaldi._get_dct_matrix(num_ceps, num_mel_bins)
    if lifter:
        ref = ref * ta_kaldi._get_lifter_coeffs(num_ceps, lifter)[None]
    np.testing.assert_allclose(kaldi.dct_matrix(num_ceps, num_mel_bins, lifter), ref.numpy(), atol=1e-5)


@pytest.mark.parametrize("cfg", [TacotronFeatsConfig(), TacotronFeatsConfig(sample_rate=22050, n_fft=1024, num_mels=64,
                                                                            fmin=55.0, fmax=7600.0)])
def test_slaney_mel_filterbank_equals_torchaudio_and_librosa(cfg):
    import librosa
    import torchaudio.functional as AF

    ours = tacotron.mel_filterbank(cfg)
    ref = AF.melscale_fbanks(cfg.n_freqs, cfg.fmin, cfg.fmax or cfg.sample_rate / 2, cfg.num_mels, cfg.sample_rate,
                             norm="slaney", mel_scale="slaney").numpy()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5 * ref.max())
    lib = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.num_mels, fmin=cfg.fmin, fmax=cfg.fmax,
                              htk=False, norm="slaney").T
    np.testing.assert_allclose(ours, lib, rtol=0, atol=1e-6 * lib.max())
    np.testing.assert_allclose(tacotron.hann_window(800), torch.hann_window(800).numpy(), atol=3e-7)


NO_TORCH = """
import sys
from pathlib import Path
import numpy as np
import soundfile as sf
from skiptool.bin.main import app, main  # the CLI's start-up imports
assert not [m for m in sys.modules if m.startswith("torch")], "the CLI imports torch at start-up"
root = Path(sys.argv[1])
(root / "data").mkdir()
wavs = []
for i in range(2):
    sf.write(root / f"u{i}.wav", (0.1 * np.sin(np.arange(8000 + 999 * i) / (5.0 + i))).astype(np.float32), 8000)
    wavs.append(f"u{i} {root / f'u{i}.wav'}\\n")
(root / "data" / "wav.scp").write_text("".join(wavs))
(root / "data" / "utt2spk").write_text("u0 s\\nu1 s\\n")
(root / "data" / "spk2utt").write_text("s u0 u1\\n")
for feat_type in ("fbank", "mfcc", "mel", "linear"):
    for args in (["--set", "vad=true"], ["--cmvn", "global"]):
        try:
            main(["--quiet", "feats", str(root / "data"), str(root / feat_type), "--type", feat_type, "--overwrite", *args])
        except SystemExit as e:
            assert not e.code, e.code
from PIL import Image
(root / "img").mkdir()
Image.fromarray(np.zeros((40, 30, 3), np.uint8)).save(root / "img" / "a.png")
(root / "img" / "img.scp").write_text(f"a {root / 'img' / 'a.png'}\\n")
try:
    main(["--quiet", "feats", str(root / "img"), str(root / "image"), "--type", "image"])
except SystemExit as e:
    assert not e.code, e.code
try:
    main(["data", "validate", str(root / "data")])
except SystemExit as e:
    assert not e.code, e.code
loaded = sorted(m for m in sys.modules if m.startswith("torch"))
print("torch modules:", loaded)
sys.exit(1 if loaded else 0)
"""


def test_feature_extraction_never_imports_torch(tmp_path):
    """`skiptool feats` (every type, resampling, VAD, CMVN) and `skiptool data` never import torch:
    `import torch` alone is 884 MiB of resident memory with the CUDA build, `skiptool feats` must stay under 1 GiB."""
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_stft_frames_kernel_equals_numpy():
    """Pre-emphasis, the zeros past each frame's stop and the window, against numpy."""
    from skiptool.audio import kernels

    rng = np.random.default_rng(0)
    hop, win, rows = 50, 120, 30
    signal = rng.standard_normal(rows * hop + win).astype(np.float32)
    stops = rng.integers(0, len(signal), rows)
    stops[:3] = len(signal)
    window = tacotron.hann_window(win)
    coef = np.float32(0.97)
    frames = np.full((rows, 256), 7.0, np.float32)
    kernels.stft_frames(signal, hop, 0, stops, coef, window, frames)
    emphasized = signal - coef * np.concatenate(([0.0], signal[:-1])).astype(np.float32)
    for i in range(rows):
        t = i * hop + np.arange(win)
        np.testing.assert_allclose(frames[i, :win], np.where(t < stops[i], emphasized[t], 0.0) * window, rtol=1e-6,
                                   atol=1e-6)
    assert (frames[:, win:] == 7.0).all()  # the FFT's zero padding is left alone
