"""Kaldi log-mel FBank back to audio: undo CMVN, exp, least-squares mel -> power spectrum, then
the batched fast Griffin-Lim of skiptool.audio.griffinlim at the FBank's own frame geometry.

Generated FBank (e.g. PVAE's image -> speech) has no phase and only 80 mel bands, so the result
is rougher than Griffin-Lim from Tacotron spectrograms, but intelligible enough to listen to and
to recognise (egs/tidigit_mnist stage 5). Written by hand: no maintained library inverts Kaldi
FBank (librosa.feature.inverse.mel_to_stft assumes librosa's own mel filters and scaling).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import kaldiio
import numpy as np
import torch

from skiptool.audio.cmvn import check_stats, invert_cmvn
from skiptool.audio.griffinlim import GriffinLimConfig, griffinlim
from skiptool.audio.kaldi import FbankConfig, _geometry, _mel_projection
from skiptool.audio.tacotron import deemphasis
from skiptool.utils.errors import SkiptoolError


@dataclass(frozen=True)
class FbankInversion:
    """What is needed to turn a feature dir's FBank matrices back into audio."""

    cfg: FbankConfig
    cmvn_stats: np.ndarray | None = None  # Kaldi-layout (2, dim + 1) stats that were applied, if any
    norm_vars: bool = True

    @property
    def dim(self) -> int:
        return self.cfg.num_mel_bins

    @property
    def sample_rate(self) -> int:
        return int(self.cfg.sample_frequency)

    def to_wavs(self, feats: Sequence[torch.Tensor], gl: GriffinLimConfig,
                seeds: int | Sequence[int] = 0) -> list[torch.Tensor]:
        """(frames, num_mel_bins) FBank matrices -> waveforms in [-1, 1] (one Griffin-Lim batch)."""
        g = _geometry(self.cfg)
        targets = []
        for f in feats:
            magnitude = fbank_to_magnitude(f, self.cfg, self.cmvn_stats, self.norm_vars)
            sharpened = magnitude.pow(gl.power)
            targets.append(sharpened * (magnitude.norm() / sharpened.norm().clamp(min=1e-12)))
        # snip_edges frames cover [t * shift, t * shift + window): Griffin-Lim on the same grid makes the
        # output (frames - 1) * shift + window samples long, so that its FBank has the same frames again.
        wavs = griffinlim(targets, g.padded_window_size, g.window_shift, g.window_size, gl.n_iter,
                          gl.momentum, gl.init, seeds, center=not self.cfg.snip_edges)
        return [deemphasis(w, self.cfg.preemphasis_coefficient) for w in wavs]


@lru_cache(maxsize=8)
def _pinv_mel(cfg: FbankConfig) -> torch.Tensor:
    """(mel bins, FFT bins) pseudo-inverse of the Kaldi mel projection, computed in float64."""
    return torch.linalg.pinv(torch.from_numpy(_mel_projection(cfg)).double()).float()


def fbank_to_magnitude(feats: torch.Tensor, cfg: FbankConfig, cmvn_stats: np.ndarray | None = None,
                       norm_vars: bool = True) -> torch.Tensor:
    """FBank (frames, mel bins) -> linear STFT magnitudes (frames, n_fft/2 + 1) of the
    pre-emphasised signal in [-1, 1] units."""
    if not (cfg.use_log_fbank and not cfg.use_energy and not cfg.htk_compat):
        raise SkiptoolError("fbank vocoding needs use_log_fbank: true, use_energy: false and htk_compat: false "
                            "(the FBank skiptool feats writes by default)")
    array = feats.numpy() if isinstance(feats, torch.Tensor) else np.asarray(feats)
    if cmvn_stats is not None:
        array = invert_cmvn(array, cmvn_stats, norm_vars)
    energies = torch.from_numpy(np.exp(np.asarray(array, dtype=np.float64))).float()
    floor = float(torch.finfo(torch.float32).eps)
    spectrum = (energies @ _pinv_mel(cfg)).clamp_(min=floor)  # power (use_power) or magnitude
    magnitude = spectrum.sqrt() if cfg.use_power else spectrum
    return magnitude / cfg.waveform_scale


def load_fbank_inversion(feats_scp: Path, conf: Path | None = None, cmvn: Path | None = None
                         ) -> tuple[FbankInversion, str]:
    """The FBank config and CMVN stats of a feature dir: `conf` or conf.yaml beside FEATS_SCP;
    `cmvn` or the stats conf.yaml names (cmvn.ark beside FEATS_SCP first). Returns a one-line note."""
    from skiptool.data.feats import load_feats_config
    from skiptool.utils.config import read_yaml

    conf_path = conf or feats_scp.parent / "conf.yaml"
    if not conf_path.is_file():
        raise SkiptoolError(f"{conf_path}: not found; --type fbank needs the FBank config the features were made "
                            f"with (conf.yaml of the feature dir, or --conf)")
    cfg = load_feats_config("fbank", conf_path)
    provenance = read_yaml(conf_path)
    applied = provenance.get("cmvn", "none")
    if cmvn is None and applied == "none":
        return FbankInversion(cfg), f"FBank config from {conf_path}; no CMVN to undo"
    if applied == "speaker" and cmvn is None:
        raise SkiptoolError(f"{conf_path}: features have per-speaker CMVN; give the stats to undo with --cmvn FILE")
    candidates = [cmvn] if cmvn else [feats_scp.parent / "cmvn.ark", Path(str(provenance.get("cmvn_stats") or ""))]
    stats_path = next((p for p in candidates if p and p.is_file()), None)
    if stats_path is None:
        raise SkiptoolError(f"{candidates[0]}: CMVN stats not found; --type fbank undoes the CMVN of the features "
                            f"and needs them (pass --cmvn FILE)")
    try:
        stats = np.asarray(kaldiio.load_mat(str(stats_path)), dtype=np.float64)
    except Exception as e:  # kaldiio raises many kinds for a bad file
        raise SkiptoolError(f"{stats_path}: cannot read CMVN stats ({type(e).__name__}); recompute them") from None
    stats = check_stats(stats, cfg.num_mel_bins, str(stats_path))
    norm_vars = bool(provenance.get("cmvn_norm_vars", True))
    return FbankInversion(cfg, stats, norm_vars), f"FBank config from {conf_path}; undoing CMVN with {stats_path}"
