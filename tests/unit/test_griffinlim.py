"""Griffin-Lim: against librosa, round trips through Tacotron features, mel inversion, batching.

The bounds below come from `.venv/bin/python tests/unit/test_griffinlim.py`, which prints the
measurements on the synthetic signal `harmonic_signal()` (0.5 s, 19 harmonics of a 120-160 Hz
glide, amplitude-modulated at 3 Hz): each bound sits 2-4 dB above the worst measured value and
far below what random phase (0 iterations) gives.
"""

import math

import librosa
import numpy as np
import pytest
import torch

from skiptool.audio.griffinlim import (
    GriffinLimConfig,
    amplitude_floor,
    features_to_wavs,
    griffinlim,
    key_seed,
    mel_to_linear,
    resolve_spec_config,
)
from skiptool.audio.tacotron import (
    TacotronSpecConfig,
    features_to_magnitude,
    linear_spectrogram,
    mel_basis,
    mel_spectrogram,
    preemphasis,
    stft_magnitude,
)
from skiptool.utils.errors import SkiptoolError

CFG = TacotronSpecConfig()
STFT = dict(n_fft=2048, hop_length=200, win_length=800)


def harmonic_signal(seconds=0.5, f0=120.0, glide=40.0, sr=16000) -> torch.Tensor:
    """A voiced-speech-like test signal: 19 harmonics of a gliding f0, amplitude-modulated."""
    t = np.arange(int(seconds * sr)) / sr
    pitch = f0 + glide * t / seconds
    x = sum(np.sin(2 * np.pi * np.cumsum(k * pitch) / sr) / k for k in range(1, 20))
    x = x * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return torch.from_numpy((0.3 * x / np.abs(x).max()).astype(np.float32))


def spectral_convergence_db(estimate: torch.Tensor, target: torch.Tensor) -> float:
    frames = min(estimate.shape[-1], target.shape[-1])
    estimate, target = estimate[..., :frames], target[..., :frames]
    return 20 * math.log10(float((estimate - target).norm() / target.norm()))


def test_equals_librosa():
    """From the same initial phase (zero, or the same seeded random draw) our loop is librosa.griffinlim's.

    In float64 they agree to 1e-11 of the peak (measured); in float32 rounding differences grow
    with the iterations under momentum 0.99 (about 3e-3 of the peak after 10), so compare in float64.
    """
    mag = np.abs(librosa.stft(harmonic_signal().numpy().astype(np.float64), **STFT))
    for n_iter, momentum, init in ((0, 0.99, None), (10, 0.99, None), (5, 0.0, None), (10, 0.99, "random")):
        ref = librosa.griffinlim(mag, n_iter=n_iter, momentum=momentum, init=init,
                                 random_state=np.random.default_rng(7), **STFT)
        ours = griffinlim([torch.from_numpy(mag.T.copy())], n_iter=n_iter, momentum=momentum,
                          init=init or "zeros", seeds=7, **STFT)[0]
        assert ours.dtype == torch.float64 and ours.shape == ref.shape
        assert np.abs(ours.numpy() - ref).max() <= 1e-9 * np.abs(ref).max(), (n_iter, momentum, init)
    # other STFT settings: odd window, hop not dividing it
    other = dict(n_fft=1024, hop_length=300, win_length=701)
    mag = np.abs(librosa.stft(harmonic_signal().numpy().astype(np.float64), **other))
    ref = librosa.griffinlim(mag, n_iter=5, momentum=0.5, random_state=np.random.default_rng(3), **other)
    ours = griffinlim([torch.from_numpy(mag.T.copy())], n_iter=5, momentum=0.5, seeds=3, **other)[0]
    assert np.abs(ours.numpy() - ref).max() <= 1e-9 * np.abs(ref).max()


def test_linear_round_trip_converges():
    x = harmonic_signal()
    feats = linear_spectrogram(x, CFG)
    target = stft_magnitude(x, CFG)
    y = features_to_wavs([feats], "linear", CFG, GriffinLimConfig(n_iter=30, power=1.0), seeds=1)[0]
    assert y.shape[0] == (feats.shape[0] - 1) * CFG.hop_length
    assert spectral_convergence_db(stft_magnitude(y, CFG), target) < -21.0
    # level kept (power 1): same RMS within 5 %
    assert abs(float(y.pow(2).mean().sqrt()) / float(x.pow(2).mean().sqrt()) - 1) < 0.05


def test_power_keeps_the_level():
    x = harmonic_signal()
    y = features_to_wavs([linear_spectrogram(x, CFG)], "linear", CFG, GriffinLimConfig(n_iter=10, power=1.5))[0]
    ratio = float(y.pow(2).mean().sqrt()) / float(x.pow(2).mean().sqrt())
    assert 0.8 < ratio < 1.25


def test_mel_round_trip_converges_in_mel_domain():
    x = harmonic_signal()
    feats = mel_spectrogram(x, CFG)
    target = features_to_magnitude(feats, CFG)
    results = {}
    for inversion in ("pinv", "nnls"):
        gl = GriffinLimConfig(n_iter=30, power=1.0, mel_inversion=inversion)
        y = features_to_wavs([feats], "mel", CFG, gl, seeds=0)[0]
        results[inversion] = spectral_convergence_db(features_to_magnitude(mel_spectrogram(y, CFG), CFG).T, target.T)
    assert results["pinv"] < -15.0, results
    assert results["nnls"] < -19.0, results


def test_deemphasis_is_applied():
    """The spectral tilt (energy below 600 Hz over 1.5-2.8 kHz) of the output matches the input's.

    Measured, seeds 0-3: within 0.07 dB; without de-emphasis the output would be the pre-emphasised
    signal, whose tilt differs by 18.3 dB.
    """
    x = harmonic_signal()
    y = features_to_wavs([linear_spectrogram(x, CFG)], "linear", CFG, GriffinLimConfig(n_iter=30, power=1.0))[0]

    def tilt_db(wav):
        power = torch.stft(wav, 2048, 200, 800, torch.hann_window(800), return_complex=True).abs().pow(2).sum(-1)
        hz = torch.arange(power.shape[0]) * CFG.sample_rate / 2048
        return 10 * math.log10(float(power[hz < 600].sum() / power[(hz > 1500) & (hz < 2800)].sum()))

    assert abs(tilt_db(y) - tilt_db(x)) < 0.5
    assert abs(tilt_db(preemphasis(y, CFG.preemphasis)) - tilt_db(x)) > 10  # what the check guards against


def test_mel_inversion_non_negative_and_close():
    x = harmonic_signal()
    linear = stft_magnitude(x, CFG).T.clamp(min=amplitude_floor(CFG))  # (frames, n_freqs)
    basis = mel_basis(CFG)
    mel = linear @ basis
    fits = {}
    for method, iters in (("pinv", 0), ("nnls", 50)):
        estimate = mel_to_linear(mel, CFG, method, iters)
        assert estimate.shape == linear.shape
        assert float(estimate.min()) >= amplitude_floor(CFG) > 0
        fits[method] = spectral_convergence_db((estimate @ basis).T, mel.T)
        # the mel projection drops information: the linear estimate is only roughly the original
        assert spectral_convergence_db(estimate.T, linear.T) < -4.0
    assert fits["pinv"] < -20.0, fits
    assert fits["nnls"] < fits["pinv"] - 10, fits  # NNLS fits the mel values far better than clamped pinv


def test_batch_equals_one_by_one():
    signals = [harmonic_signal(s, f0=f) for s, f in ((0.5, 120.0), (0.23, 200.0), (0.31, 90.0))]
    mags = [stft_magnitude(s, CFG).T for s in signals]
    seeds = [key_seed(0, k) for k in ("a", "b", "c")]
    threads = torch.get_num_threads()
    batched = griffinlim(mags, n_iter=8, seeds=seeds, **STFT)
    for mag, seed, together in zip(mags, seeds, batched):
        alone = griffinlim([mag], n_iter=8, seeds=seed, **STFT)[0]
        assert alone.shape == together.shape == ((mag.shape[0] - 1) * 200,)
        assert torch.allclose(alone, together, atol=1e-5 * float(alone.abs().max()))
    reordered = griffinlim(mags[::-1], n_iter=8, seeds=seeds[::-1], **STFT)[::-1]
    # chunk_frames=45: each utterance in its own chunk, the chunks in parallel threads
    chunked = griffinlim(mags, n_iter=8, seeds=seeds, chunk_frames=45, **STFT)
    for a, b, c in zip(batched, reordered, chunked):
        assert torch.allclose(a, b, atol=1e-5 * float(a.abs().max()))
        assert torch.allclose(a, c, atol=1e-5 * float(a.abs().max()))
    assert torch.get_num_threads() == threads  # the worker threads' setting did not leak


def test_initial_phase_is_seeded():
    mag = stft_magnitude(harmonic_signal(0.2), CFG).T
    one = griffinlim([mag], n_iter=3, seeds=1, **STFT)[0]
    assert torch.equal(one, griffinlim([mag], n_iter=3, seeds=1, **STFT)[0])
    assert not torch.allclose(one, griffinlim([mag], n_iter=3, seeds=2, **STFT)[0])
    zeros = griffinlim([mag], n_iter=3, init="zeros", seeds=1, **STFT)[0]
    assert torch.equal(zeros, griffinlim([mag], n_iter=3, init="zeros", seeds=2, **STFT)[0])
    assert key_seed(0, "utt1") == key_seed(0, "utt1") != key_seed(0, "utt2")


def test_bad_arguments():
    with pytest.raises(ValueError, match="momentum"):
        GriffinLimConfig(momentum=1.0)
    with pytest.raises(ValueError, match="power"):
        GriffinLimConfig(power=0)
    with pytest.raises(ValueError, match=r"\(frames, 1025\)"):
        features_to_wavs([torch.zeros(10, 80)], "linear", CFG)
    with pytest.raises(ValueError, match="feature_type"):
        features_to_wavs([torch.zeros(10, 80)], "fbank", CFG)
    assert griffinlim([], **STFT) == []


def test_resolve_spec_config(tmp_path):
    scp = tmp_path / "feats.scp"
    cfg, note = resolve_spec_config(scp, None)
    assert cfg == TacotronSpecConfig() and "default" in note
    (tmp_path / "conf.yaml").write_text("num_mels: 40\nhop_length: 160\nvad: false\n")
    cfg, note = resolve_spec_config(scp, None)
    assert (cfg.num_mels, cfg.hop_length) == (40, 160)
    assert "conf.yaml" in note  # skiptool feats' other keys (vad: false) are accepted
    misspelt = tmp_path / "misspelt.yaml"
    misspelt.write_text("num_mels: 40\nhop_lenght: 160\n")
    with pytest.raises(SkiptoolError, match="unknown key 'hop_lenght'"):  # not ignored silently
        resolve_spec_config(scp, misspelt)
    fbank_conf = tmp_path / "fbank.yaml"
    fbank_conf.write_text("type: fbank\nnum_mel_bins: 80\n")
    with pytest.raises(SkiptoolError, match="--type fbank"):
        resolve_spec_config(scp, fbank_conf)
    other = tmp_path / "other.yaml"
    other.write_text("num_mels: forty\n")
    with pytest.raises(SkiptoolError, match="num_mels"):
        resolve_spec_config(scp, other)
    with pytest.raises(SkiptoolError, match="not found"):
        resolve_spec_config(scp, tmp_path / "missing.yaml")


def measure() -> None:
    """Print the numbers the bounds above were set from."""
    x = harmonic_signal()
    target = stft_magnitude(x, CFG)
    linear, mel = linear_spectrogram(x, CFG), mel_spectrogram(x, CFG)
    mel_target = features_to_magnitude(mel, CFG).T
    for n_iter in (0, 10, 30, 60):
        lin = [spectral_convergence_db(stft_magnitude(features_to_wavs(
            [linear], "linear", CFG, GriffinLimConfig(n_iter=n_iter, power=1.0), seeds=s)[0], CFG), target)
            for s in range(3)]
        print(f"linear round trip, {n_iter:2d} it, seeds 0-2: " + ", ".join(f"{v:.2f}" for v in lin) + " dB")
    for inversion in ("pinv", "nnls"):
        for n_iter in (0, 30):
            gl = GriffinLimConfig(n_iter=n_iter, power=1.0, mel_inversion=inversion)
            y = features_to_wavs([mel], "mel", CFG, gl, seeds=0)[0]
            sc = spectral_convergence_db(features_to_magnitude(mel_spectrogram(y, CFG), CFG).T, mel_target)
            print(f"mel round trip in the mel domain, {inversion}, {n_iter:2d} it, seed 0: {sc:.2f} dB")
    floor = amplitude_floor(CFG)
    lin_true = target.T.clamp(min=floor)
    for method, iters in (("pinv", 0), ("nnls", 50)):
        estimate = mel_to_linear(lin_true @ mel_basis(CFG), CFG, method, iters)
        print(f"mel inversion {method}: mel fit {spectral_convergence_db((estimate @ mel_basis(CFG)).T, (lin_true @ mel_basis(CFG)).T):.1f} dB, "
              f"linear error {spectral_convergence_db(estimate.T, lin_true.T):.1f} dB")


if __name__ == "__main__":
    measure()
