"""FBank -> audio (skiptool.audio.fbank_inverse): the FBank of the vocoded audio is close to the
FBank it came from, with and without CMVN, and config/stats problems are one-line errors."""

from __future__ import annotations

import math

import kaldiio
import numpy as np
import pytest
import torch

from skiptool.audio import cmvn
from skiptool.audio.fbank_inverse import FbankInversion, fbank_to_magnitude, load_fbank_inversion
from skiptool.audio.griffinlim import GriffinLimConfig
from skiptool.audio.kaldi import FbankConfig, fbank
from skiptool.utils.errors import SkiptoolError

CFG = FbankConfig(num_mel_bins=40, dither=0.0)


def vowel(seconds: float = 0.6, f0: float = 140.0, sr: int = 16000) -> torch.Tensor:
    """A harmonic, vowel-like test signal with a slow pitch glide."""
    t = torch.arange(int(seconds * sr)) / sr
    phase = 2 * math.pi * (f0 * t + 20 * t * t)
    wav = sum(torch.sin(k * phase) / k * math.exp(-((k * f0 - 700) / 900) ** 2) for k in range(1, 30))
    return 0.3 * wav / wav.abs().max()


def log_mel_error(original: torch.Tensor, vocoded: torch.Tensor) -> float:
    """Mean absolute log-mel difference (nats) over the bands within 10 nats of the loudest: the
    near-silent bands above the signal's harmonics only hold leakage at the float floor."""
    a, b = (torch.from_numpy(f) for f in (fbank([original], CFG)[0], fbank([vocoded], CFG)[0]))
    frames = min(len(a), len(b))
    a, b = a[2:frames - 2], b[2:frames - 2]
    bands = a.mean(0) > a.mean(0).max() - 10
    return float((a[:, bands] - b[:, bands]).abs().mean())


@pytest.mark.parametrize("with_cmvn", [False, True])
def test_round_trip_keeps_the_log_mel_spectrum(with_cmvn):
    wav = vowel()
    feats = fbank([wav], CFG)[0]
    stats = cmvn.global_stats([feats]) if with_cmvn else None
    if with_cmvn:
        feats = cmvn.apply_cmvn(feats, stats)
    inversion = FbankInversion(CFG, stats)
    out = inversion.to_wavs([torch.from_numpy(feats)], GriffinLimConfig(n_iter=40))[0]
    assert abs(len(out) - len(wav)) <= 400 + 160  # snip_edges frames cover the signal to a window
    error = log_mel_error(wav, out)
    noise = log_mel_error(wav, 0.3 * torch.randn(len(wav)) / 3)
    assert error < 1.5 and error < noise / 2, (error, noise)  # nats per band; white noise: ~3.2


def mel_spectral_convergence_db(original: torch.Tensor, vocoded: torch.Tensor, cfg: FbankConfig) -> float:
    """20 log10(||M' - M|| / ||M||) over the mel magnitudes sqrt(exp(fbank)) of the two signals."""
    a, b = (torch.from_numpy(f) for f in (fbank([original], cfg)[0], fbank([vocoded], cfg)[0]))
    frames = min(len(a), len(b))
    a, b = a[:frames].exp().sqrt(), b[:frames].exp().sqrt()
    return 20 * math.log10(float((a - b).norm() / a.norm()))


@pytest.mark.parametrize("with_cmvn", [False, True])
def test_round_trip_spectral_convergence(with_cmvn):
    """80-dim FBank as `skiptool feats --type fbank --cmvn global` writes it -> audio -> FBank again:
    Griffin-Lim brings the mel spectral convergence from about -5 dB (initial random phase) to
    about -16 dB; measured here with the default 60 iterations."""
    cfg = FbankConfig(num_mel_bins=80, dither=0.0)
    wav = vowel()
    feats = fbank([wav], cfg)[0]
    stats = cmvn.global_stats([feats]) if with_cmvn else None
    if with_cmvn:
        feats = cmvn.apply_cmvn(feats, stats)
    inversion = FbankInversion(cfg, stats)
    start, end = (inversion.to_wavs([torch.from_numpy(feats)], GriffinLimConfig(n_iter=n))[0] for n in (0, 60))
    sc_start, sc_end = (mel_spectral_convergence_db(wav, out, cfg) for out in (start, end))
    assert sc_end < -12 and sc_end < sc_start - 6, (sc_start, sc_end)


def test_magnitude_is_in_waveform_units():
    wav = vowel()
    magnitude = fbank_to_magnitude(fbank([wav], CFG)[0], CFG)
    assert magnitude.shape[1] == 257 and (magnitude >= 0).all()
    frame_energy = magnitude.pow(2).sum(1).mean()
    assert 0.1 < float(frame_energy) < 1e4  # [-1, 1] units, not int16 units (which would be ~1e9 larger)


def test_load_from_a_feature_dir(tmp_path):
    (tmp_path / "conf.yaml").write_text("type: fbank\nnum_mel_bins: 40\ncmvn: global\ncmvn_norm_vars: true\n")
    scp = tmp_path / "feats.scp"
    with pytest.raises(SkiptoolError, match="cmvn.ark: CMVN stats not found"):
        load_fbank_inversion(scp)
    kaldiio.save_mat(str(tmp_path / "cmvn.ark"), np.ones((2, 41)))
    inversion, note = load_fbank_inversion(scp)
    assert inversion.dim == 40 and inversion.cmvn_stats.shape == (2, 41) and "undoing CMVN" in note
    kaldiio.save_mat(str(tmp_path / "cmvn.ark"), np.ones((2, 81)))
    with pytest.raises(SkiptoolError, match="do not fit 40-dim"):
        load_fbank_inversion(scp)
    with pytest.raises(SkiptoolError, match="needs the FBank config"):
        load_fbank_inversion(tmp_path / "elsewhere" / "feats.scp")
