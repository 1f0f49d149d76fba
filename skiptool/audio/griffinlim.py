"""Griffin-Lim phase reconstruction (fast Griffin-Lim with momentum), batched, for Tacotron features.

From normalised [0, 1] features (`skiptool.audio.tacotron`) back to a waveform:

    features --denormalise--> magnitudes --(mel: pinv or NNLS)--> linear magnitudes
             --** power, level kept--> fast Griffin-Lim --> de-emphasis --> waveform

`griffinlim` is the generic batched algorithm on linear magnitudes; `mel_to_linear` inverts the mel
filterbank; `features_to_wavs` chains everything for a feature config.

Why not `torchaudio.functional.griffinlim`: it does batch and has momentum, but (a) it re-analyses
with reflect padding while skiptool's features (and librosa) pad with zeros, (b) its random start
draws real and imaginary parts from U[0, 1), so all initial phases lie in [0, pi/2], from the
global RNG, (c) a batch shares one length, so padded utterances are not reconstructed as they
would be alone, and (d) it was no faster than `librosa.griffinlim` here
(`benchmarks/bench_griffinlim.py --torchaudio`). The loop below is librosa's algorithm (equal to it
in float64, tests/unit/test_griffinlim.py) on a zero-padded batch: frames are cut and overlap-added
by hand over the `win_length` samples under the window, the inverse window envelope is computed
once per batch (torch.istft recomputes it on every call) with each utterance's own frames and
length, and the phase update runs on real views, where torch's complex abs, division and
broadcasting were the slowest kernels. Results: benchmarks/README.md, ## Griffin-Lim.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, Sequence

import kaldiio
import numpy as np
import torch
import torch.nn.functional as F
import yaml

from skiptool.audio.io import write_wav
from skiptool.audio.tacotron import TacotronSpecConfig, db_to_amp, deemphasis, features_to_magnitude, mel_basis
from skiptool.audio.vocoder_config import GriffinLimConfig  # noqa: F401 (re-exported)
from skiptool.data.datadir import read_table, write_table
from skiptool.utils.config import from_dict, read_yaml
from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import atomic_write_text
from skiptool.utils.progress import track

FeatureType = Literal["mel", "linear"]
FEATURE_TYPES: tuple[str, ...] = ("mel", "linear")


def key_seed(seed: int, key: str) -> int:
    """A seed for one utterance that does not depend on which batch or position it lands in."""
    return zlib.crc32(f"{seed}:{key}".encode("utf-8"))


def expected_dim(feature_type: str, cfg: TacotronSpecConfig) -> int:
    return cfg.num_mels if feature_type == "mel" else cfg.n_freqs


# ---------------------------------------------------------------------------------------------
# Griffin-Lim


def _initial_angles(frames: int, n_freqs: int, init: str, seed: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) of the initial phase, each (frames, n_freqs): zero, or uniform in [0, 2 pi).

    The random draw is librosa.griffinlim's with random_state=np.random.default_rng(seed), so the
    two can be compared from the same start (tests, benchmarks/bench_griffinlim.py).
    """
    if init == "zeros":
        return torch.ones(frames, n_freqs, dtype=dtype), torch.zeros(frames, n_freqs, dtype=dtype)
    phase = 2 * np.pi * np.random.default_rng(seed).random((n_freqs, frames))
    return tuple(torch.from_numpy(np.ascontiguousarray(f(phase).T)).to(dtype) for f in (np.cos, np.sin))


# Padded frames per batch of the inner loop: its buffers (frames x n_fft floats, about 4 MB at
# n_fft 2048) then stay near the CPU caches; 2 x 241 frames ran faster per utterance than 16 x 241
# (benchmarks/bench_griffinlim.py --chunk-frames).
CHUNK_FRAMES = 512


def griffinlim(
    magnitudes: Sequence[torch.Tensor],
    n_fft: int,
    hop_length: int,
    win_length: int,
    n_iter: int = 60,
    momentum: float = 0.99,
    init: Literal["random", "zeros"] = "random",
    seeds: int | Sequence[int] = 0,
    chunk_frames: int = CHUNK_FRAMES,
    center: bool = True,
) -> list[torch.Tensor]:
    """Waveforms whose STFT magnitudes approach the given ones, by fast Griffin-Lim.

    magnitudes: linear STFT magnitudes, each (frames, n_fft // 2 + 1), time-major, of any length;
    they are processed in zero-padded batches of similar lengths (at most `chunk_frames` padded
    frames each, unless one utterance is longer), in parallel over torch's threads.
    The STFT is torch.stft's with a Hann window,
    center=True and zero padding. Each output has (frames - 1) * hop_length samples. With
    center=False, frame t covers samples [t * hop_length, t * hop_length + win_length) instead, as
    Kaldi's frames with snip_edges, and each output has (frames - 1) * hop_length + win_length
    samples (the FBank inversion uses this, so that re-extracted frames line up). An utterance
    gives the same waveform (up to float rounding) alone or in any batch, given the same seed.
    Runs in float64 if the first magnitude is float64, else in float32.
    """
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if init not in ("random", "zeros"):
        raise ValueError(f"init must be 'random' or 'zeros', got {init!r}")
    n_freqs = n_fft // 2 + 1
    for m in magnitudes:
        if m.ndim != 2 or m.shape[1] != n_freqs or m.shape[0] < 1:
            raise ValueError(f"each magnitude must be (frames >= 1, {n_freqs}), got {tuple(m.shape)}")
    seeds = [seeds] * len(magnitudes) if isinstance(seeds, int) else list(seeds)
    if len(seeds) != len(magnitudes):
        raise ValueError(f"{len(seeds)} seeds for {len(magnitudes)} magnitudes")
    if not magnitudes:
        return []
    settings = dict(n_fft=n_fft, hop_length=hop_length, win_length=win_length, n_iter=n_iter,
                    momentum=momentum, init=init, center=center)
    chunks = _chunks_by_length([m.shape[0] for m in magnitudes], chunk_frames)
    wavs: list[torch.Tensor | None] = [None] * len(magnitudes)

    def run(chunk: list[int]) -> None:
        for i, wav in zip(chunk, _griffinlim_batch([magnitudes[i] for i in chunk], [seeds[i] for i in chunk],
                                                  **settings)):
            wavs[i] = wav

    workers = min(torch.get_num_threads(), len(chunks))
    if workers <= 1:
        for chunk in chunks:
            run(chunk)
        return wavs
    # Chunks run single-threaded, one per torch thread at a time, in Python threads (torch releases
    # the GIL in its kernels). On the shared 2-core machine this was clearly faster than batches over
    # torch's intra-op threads, whose every kernel waits for all of them to be scheduled
    # (benchmarks/bench_griffinlim.py --one-batch; benchmarks/README.md, ## Griffin-Lim).
    threads = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            list(pool.map(run, chunks))
    finally:
        # torch keeps the last set_num_threads() as the default for threads started later: put ours back
        torch.set_num_threads(threads)
    return wavs


def _chunks_by_length(frames: list[int], budget: int) -> list[list[int]]:
    """Indices grouped by similar length (little padding), each group padded to at most `budget` frames.

    Longest first, so that the biggest pieces of work start first when chunks run in parallel.
    """
    chunks: list[list[int]] = []
    for i in sorted(range(len(frames)), key=lambda i: -frames[i]):
        # sorted longest first: the chunk's first item is its longest, and sets its padded length
        if chunks and (len(chunks[-1]) + 1) * frames[chunks[-1][0]] <= budget:
            chunks[-1].append(i)
        else:
            chunks.append([i])
    return chunks


def _griffinlim_batch(magnitudes: list[torch.Tensor], seeds: list[int], n_fft: int, hop_length: int,
                      win_length: int, n_iter: int, momentum: float, init: str, center: bool = True
                      ) -> list[torch.Tensor]:
    """The Griffin-Lim loop on one zero-padded batch, in the calling thread."""
    batch = len(magnitudes)
    if batch == 0:
        return []
    n_freqs = n_fft // 2 + 1
    frames = [m.shape[0] for m in magnitudes]
    max_frames = max(frames)
    lengths = [(t - 1) * hop_length + (0 if center else win_length) for t in frames]

    dtype = torch.float64 if magnitudes[0].dtype == torch.float64 else torch.float32
    mags = torch.zeros(batch, max_frames, n_freqs, dtype=dtype)
    spec = torch.zeros(batch, max_frames, n_freqs, dtype=dtype.to_complex())
    spec_re = torch.view_as_real(spec)
    for b, (m, seed) in enumerate(zip(magnitudes, seeds)):
        mags[b, : frames[b]] = m
        cos, sin = _initial_angles(frames[b], n_freqs, init, seed, dtype)
        torch.mul(mags[b, : frames[b]], cos, out=spec_re[b, : frames[b], :, 0])
        torch.mul(mags[b, : frames[b]], sin, out=spec_re[b, : frames[b], :, 1])

    window = torch.hann_window(win_length, dtype=dtype)
    # torch.stft centres the window inside the n_fft frame; frame t's window then covers signal
    # samples [t * hop - lead, t * hop - lead + win_length). `signal` below holds the waveform
    # shifted by `lead`, so frame t is signal[t * hop : t * hop + win_length].
    offset = (n_fft - win_length) // 2
    lead = n_fft // 2 - offset if center else 0  # center=False: the output is `signal` itself
    padded_len = (max_frames - 1) * hop_length + win_length
    # center=False keeps the first and last samples, which only the edge of one window covers: their
    # envelope (sum of squared windows) is near 0, and dividing by it would blow them up into clicks.
    # A floor at 10% of the steady-state envelope tapers them instead.
    floor = 0.0 if center else 0.1 * float(window.square().sum()) / hop_length
    inv_envelope = _inverse_envelope(frames, lengths, window, hop_length, lead, padded_len, floor)

    # Buffers reused by every iteration: fresh tensors of this size cost page faults each time.
    fft_in = torch.zeros(batch, max_frames, n_fft, dtype=dtype)  # only [offset, offset + win) is ever non-zero
    fft_out = torch.empty(batch, max_frames, n_fft, dtype=dtype)
    scale = torch.empty(batch, max_frames, n_freqs, dtype=dtype)
    momentum_coef = momentum / (1 + momentum)  # as librosa and torchaudio
    previous = None
    for _ in range(n_iter):
        signal = _overlap_add(spec, fft_out, window, offset, hop_length).mul_(inv_envelope)
        torch.mul(signal.unfold(-1, win_length, hop_length), window, out=fft_in[..., offset: offset + win_length])
        rebuilt = torch.fft.rfft(fft_in)
        if momentum_coef and previous is not None:  # spec = rebuilt - c * previous, in previous' memory
            spec = previous
            torch.view_as_real(spec).mul_(-momentum_coef).add_(torch.view_as_real(rebuilt))
        else:  # `rebuilt` must survive unchanged as `previous` only when there is momentum
            spec = rebuilt.clone() if momentum_coef else rebuilt
        previous = rebuilt
        # spec *= mags / |spec|, as librosa's spec / (|spec| + 1e-16) but with rsqrt(|spec|^2 + 1e-32)
        # on the real and imaginary parts: torch's complex abs, division and broadcasting
        # multiplication were the slowest kernels of the loop when profiled (torch.profiler).
        spec_re = torch.view_as_real(spec)
        real, imag = spec_re[..., 0], spec_re[..., 1]
        torch.mul(real, real, out=scale).addcmul_(imag, imag).add_(1e-32).rsqrt_().mul_(mags)
        real.mul_(scale)
        imag.mul_(scale)
    signal = _overlap_add(spec, fft_out, window, offset, hop_length).mul_(inv_envelope)
    return [signal[b, lead: lead + lengths[b]].clone() for b in range(batch)]


def _overlap_add(spec: torch.Tensor, fft_out: torch.Tensor, window: torch.Tensor, offset: int,
                 hop: int) -> torch.Tensor:
    """(B, frames, n_freqs) complex -> (B, (frames - 1) * hop + win_length) windowed overlap-add, unnormalised.

    fft_out: a (B, frames, n_fft) buffer for the inverse FFT.
    """
    batch, frames, win_length = spec.shape[0], spec.shape[1], window.shape[0]
    torch.fft.irfft(spec, n=fft_out.shape[-1], out=fft_out)
    chunks = fft_out[..., offset: offset + win_length].mul_(window)
    if win_length % hop:
        return F.fold(chunks.transpose(1, 2), (1, (frames - 1) * hop + win_length), (1, win_length),
                      stride=(1, hop)).reshape(batch, -1)
    # The usual case (800 = 4 x 200): add each hop-long piece of every frame onto its place;
    # cheaper than F.fold, which first copies the frames into a transposed layout.
    per_frame = win_length // hop
    pieces = chunks.unflatten(-1, (per_frame, hop))
    out = fft_out.new_zeros(batch, frames + per_frame - 1, hop)
    for j in range(per_frame):
        out[:, j: j + frames].add_(pieces[:, :, j])
    return out.view(batch, -1)


def _inverse_envelope(frames: list[int], lengths: list[int], window: torch.Tensor, hop: int, lead: int,
                      padded_len: int, floor: float = 0.0) -> torch.Tensor:
    """(B, padded_len): 1 / sum of squared windows over each utterance's own frames, 0 outside it.

    Zero beyond an utterance's end keeps its re-analysis equal to that of the utterance alone
    (zero padding), so a batch gives the same result as one utterance at a time.
    """
    batch, max_frames, win_length = len(frames), max(frames), window.shape[0]
    frame_mask = (torch.arange(max_frames)[None, :] < torch.tensor(frames)[:, None]).to(window.dtype)
    squares = frame_mask[:, :, None] * window.square()
    envelope = F.fold(squares.transpose(1, 2), (1, padded_len), (1, win_length), stride=(1, hop)).reshape(
        batch, padded_len)
    position = torch.arange(padded_len)[None, :] - lead
    inside = (position >= 0) & (position < torch.tensor(lengths)[:, None]) & (envelope > 1e-8)
    return torch.where(inside, 1.0 / envelope.clamp(min=max(floor, 1e-8)), torch.zeros((), dtype=window.dtype))


# ---------------------------------------------------------------------------------------------
# mel -> linear


@lru_cache(maxsize=8)
def _pinv_basis(cfg: TacotronSpecConfig) -> torch.Tensor:
    """(num_mels, n_freqs) pseudo-inverse of the mel filterbank, computed in float64."""
    return torch.linalg.pinv(mel_basis(cfg).double()).float()


def mel_to_linear(mel: torch.Tensor, cfg: TacotronSpecConfig, method: Literal["pinv", "nnls"] = "pinv",
                  nnls_iter: int = 50) -> torch.Tensor:
    """Mel amplitudes (..., frames, num_mels) -> non-negative linear amplitudes (..., frames, n_freqs).

    pinv: least-norm solution `mel @ pinv(basis)`, clamped at the amplitude floor of the features.
    nnls: starts from that and runs `nnls_iter` accelerated projected-gradient (FISTA) steps on
    min ||x @ basis - mel||^2 subject to x >= floor, all frames at once. Written by hand because
    scipy.optimize.nnls and librosa.util.nnls solve one frame (or one matrix) at a time on the CPU
    in float64 and were slower here (benchmarks/README.md).
    """
    basis = mel_basis(cfg)
    floor = amplitude_floor(cfg)
    x = (mel @ _pinv_basis(cfg)).clamp_(min=floor)
    if method == "pinv" or nnls_iter == 0:
        return x
    if method != "nnls":
        raise ValueError(f"method must be 'pinv' or 'nnls', got {method!r}")
    # 1 / Lipschitz constant of the gradient, ||basis||_2^2
    step = 1.0 / torch.linalg.matrix_norm(basis.double(), ord=2).item() ** 2
    target_t = mel @ basis.T  # mel @ basis^T, the constant part of the gradient
    y, t = x, 1.0
    for _ in range(nnls_iter):
        gradient = (y @ basis) @ basis.T - target_t
        x_next = (y - step * gradient).clamp_(min=floor)
        t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
        y = x_next + ((t - 1) / t_next) * (x_next - x)
        x, t = x_next, t_next
    return x


def amplitude_floor(cfg: TacotronSpecConfig) -> float:
    """The smallest amplitude the normalised features can express (feature value 0)."""
    return float(db_to_amp(torch.tensor(cfg.min_level_db + cfg.ref_level_db)))


# ---------------------------------------------------------------------------------------------
# features -> waveform


def features_to_linear_magnitude(feats: torch.Tensor, feature_type: str, cfg: TacotronSpecConfig,
                                 gl: GriffinLimConfig = GriffinLimConfig()) -> torch.Tensor:
    """Normalised features (frames, dims) -> linear STFT magnitudes (frames, n_freqs) of the pre-emphasised signal."""
    if feature_type not in FEATURE_TYPES:
        raise ValueError(f"feature_type must be one of {FEATURE_TYPES}, got {feature_type!r}")
    dim = expected_dim(feature_type, cfg)
    if feats.ndim != 2 or feats.shape[1] != dim:
        raise ValueError(f"{feature_type} features must be (frames, {dim}), got {tuple(feats.shape)}")
    amplitude = features_to_magnitude(feats.float(), cfg)
    if feature_type == "mel":
        amplitude = mel_to_linear(amplitude, cfg, gl.mel_inversion, gl.nnls_iter)
    return amplitude


def features_to_wavs(feats: Sequence[torch.Tensor], feature_type: str, cfg: TacotronSpecConfig,
                     gl: GriffinLimConfig = GriffinLimConfig(), seeds: int | Sequence[int] = 0) -> list[torch.Tensor]:
    """Normalised Tacotron features, each (frames, dims), -> waveforms in one Griffin-Lim batch.

    Magnitudes are raised to `gl.power` and rescaled to their original energy, so that the output
    keeps the level of the analysed speech whatever the power; pre-emphasis is undone last.
    """
    targets = []
    for f in feats:
        magnitude = features_to_linear_magnitude(f, feature_type, cfg, gl)
        sharpened = magnitude.pow(gl.power)
        targets.append(sharpened * (magnitude.norm() / sharpened.norm().clamp(min=1e-12)))
    wavs = griffinlim(targets, cfg.n_fft, cfg.hop_length, cfg.win_length, gl.n_iter, gl.momentum, gl.init, seeds)
    return [deemphasis(w, cfg.preemphasis) for w in wavs]


# ---------------------------------------------------------------------------------------------
# feats.scp -> OUT_DIR/wav/<key>.wav + OUT_DIR/wav.scp

STATE_FILE = "vocode.yaml"  # the settings of a run, so that a rerun resumes only the same work


@dataclass
class VocodeResult:
    wav_scp: Path
    written: int  # wavs made by this run
    resumed: int  # wavs found from an interrupted run with the same settings
    rescaled: int  # utterances scaled down because they would have clipped


def resolve_spec_config(feats_scp: str | os.PathLike, conf: str | os.PathLike | None) -> tuple[TacotronSpecConfig, str]:
    """The feature config: `conf`, else the conf.yaml `skiptool feats` wrote beside feats.scp, else defaults.

    Returns the config and a one-line note saying where it came from. A config file may hold the
    other keys of `skiptool feats` (input and VAD options, conf.yaml's provenance), which the
    vocoder does not need; any other key is an error naming it (a misspelt key), and so is the
    conf.yaml of another feature type.
    """
    path = Path(conf) if conf is not None else Path(feats_scp).parent / "conf.yaml"
    if conf is None and not path.is_file():
        return TacotronSpecConfig(), f"no --conf and no {path}: default Tacotron feature config"
    data = read_yaml(path)
    from skiptool.audio.transforms import TacotronFeatsConfig
    from skiptool.data.feats import PROVENANCE_KEYS

    named = data.get("type")
    if named not in (None, "mel", "linear"):
        raise SkiptoolError(f"{path}: a config of {named} features; vocode them with --type {named}"
                            if named == "fbank" else f"{path}: a config of {named} features; skiptool vocode "
                            f"inverts mel, linear and fbank features only")
    spec_keys = {f.name for f in dataclasses.fields(TacotronSpecConfig)}
    feats_keys = {f.name for f in dataclasses.fields(TacotronFeatsConfig)} | set(PROVENANCE_KEYS)
    unknown = sorted(k for k in data if k not in feats_keys)
    if unknown:
        raise SkiptoolError(f"{path}: unknown key '{unknown[0]}'; a mel/linear feature config has the keys of "
                            f"conf/feats/mel.yaml ({', '.join(sorted(spec_keys))}, and the input and VAD options)")
    cfg = from_dict(TacotronSpecConfig, {k: v for k, v in data.items() if k in spec_keys}, source=str(path))
    return cfg, f"feature config from {path}"


def _state_text(feats_scp: Path, feature_type: str, spec, gl: GriffinLimConfig) -> str:
    gl_settings = {k: v for k, v in dataclasses.asdict(gl).items() if k != "batch_size"}  # does not change a wav
    if feature_type == "fbank":  # an FbankInversion: its config and the CMVN it undoes
        features = {**dataclasses.asdict(spec.cfg), "norm_vars": spec.norm_vars,
                    "cmvn_stats": None if spec.cmvn_stats is None else np.round(spec.cmvn_stats, 6).tolist()}
    else:
        features = dataclasses.asdict(spec)
    return yaml.safe_dump({"feats_scp": str(feats_scp.resolve()), "type": feature_type,
                           "griffinlim": gl_settings, "features": features}, sort_keys=False)


def _feature_dim(feature_type: str, spec) -> tuple[int, str]:
    """The feature dimension `spec` expects, and how to say it."""
    if feature_type == "fbank":
        return spec.dim, f"num_mel_bins = {spec.dim}"
    dim = expected_dim(feature_type, spec)
    return dim, (f"num_mels = {dim}" if feature_type == "mel" else f"n_fft/2+1 = {dim}")


def _prepare_out_dir(out_dir: Path, state: str, overwrite: bool) -> None:
    """Refuse to touch finished or foreign output; clear ours on --overwrite; allow resuming the same run.

    Resuming: an interrupted run leaves its wavs (each written atomically, so each is whole), its
    settings in vocode.yaml and no wav.scp; the same command again skips those wavs.
    """
    wav_scp, state_file, wav_dir = out_dir / "wav.scp", out_dir / STATE_FILE, out_dir / "wav"
    if out_dir.exists() and not out_dir.is_dir():
        raise SkiptoolError(f"{out_dir}: exists and is not a directory; choose another OUT_DIR")
    if overwrite:
        for path in (wav_scp, state_file):
            path.unlink(missing_ok=True)
        if wav_dir.is_dir():
            shutil.rmtree(wav_dir)
    elif wav_scp.exists():
        raise SkiptoolError(f"{out_dir}: holds a finished vocode run (wav.scp); pass --overwrite to replace it")
    elif state_file.is_file():
        if state_file.read_text(encoding="utf-8") != state:
            raise SkiptoolError(f"{out_dir}: an interrupted vocode run with other settings or input is there "
                                f"({state_file}); pass --overwrite to start again")
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise SkiptoolError(f"{out_dir}: already exists and is not a vocode output; pass --overwrite or "
                            f"choose another OUT_DIR")
    wav_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(state_file, state)


def _read_feats_scp(feats_scp: Path) -> dict[str, str]:
    """{key: ark specifier}, with the problems a user can cause named before any work starts."""
    if not feats_scp.is_file():
        raise SkiptoolError(f"{feats_scp}: feats.scp not found; run `skiptool feats` first or check the path")
    table = read_table(feats_scp)
    if not table:
        raise SkiptoolError(f"{feats_scp}: no utterances in it; check that `skiptool feats` finished")
    for key, value in table.items():
        if not value:
            raise SkiptoolError(f"{feats_scp}: utterance '{key}' has no ark location; regenerate feats.scp")
        if value.endswith("|"):
            raise SkiptoolError(f"{feats_scp}: utterance '{key}' is a pipe command; write the features to an ark file")
        if "/" in key or "\\" in key or key in (".", ".."):
            raise SkiptoolError(f"{feats_scp}: utterance key '{key}' cannot be a file name; rename it")
        ark = re.sub(r"(:\d+)?(\[[^\]]*\])?$", "", value)  # ark path without ":offset" or "[slice]"
        if not Path(ark).is_file():
            raise SkiptoolError(f"{feats_scp}: ark file '{ark}' of utterance '{key}' not found; "
                                f"paths in feats.scp are relative to the current directory, as in Kaldi; fix the path or run from there")
    return table


def _frame_counts(feats_scp: Path, keys: Sequence[str]) -> dict[str, int]:
    """utt2num_frames beside feats.scp when it is there and readable: it lets batches group similar lengths."""
    try:
        counts = {k: int(v) for k, v in read_table(feats_scp.parent / "utt2num_frames").items()}
    except (SkiptoolError, ValueError):
        return {}
    return counts if all(k in counts for k in keys) else {}


def _load_features(loader, key: str, feats_scp: Path, feature_type: str, cfg: TacotronSpecConfig,
                   cfg_source: str) -> torch.Tensor:
    try:
        with warnings.catch_warnings():  # kaldiio warns before raising; the error below says it all
            warnings.simplefilter("ignore")
            matrix = loader[key]
    except Exception as e:  # kaldiio raises many kinds (OSError, ValueError, struct.error, ...) for a bad ark
        raise SkiptoolError(f"{feats_scp}: cannot read features of utterance '{key}' ({type(e).__name__}: {e}); "
                            f"check or regenerate its ark file") from None
    matrix = np.asarray(matrix)
    if matrix.ndim != 2:
        raise SkiptoolError(f"{feats_scp}: utterance '{key}' is not a (frames, dims) matrix (shape "
                            f"{matrix.shape}); vocode reads the matrices `skiptool feats` writes")
    dim, what = _feature_dim(feature_type, cfg)
    if matrix.shape[1] != dim:
        raise SkiptoolError(f"{feats_scp}: utterance '{key}' has {matrix.shape[1]}-dim features but --type "
                            f"{feature_type} expects {what} ({cfg_source}); check --type and --conf")
    if matrix.shape[0] < 2:
        raise SkiptoolError(f"{feats_scp}: utterance '{key}' has {matrix.shape[0]} frame(s); Griffin-Lim needs "
                            f"at least 2; drop it from feats.scp")
    if not np.isfinite(matrix).all():
        raise SkiptoolError(f"{feats_scp}: utterance '{key}' has NaN or Inf feature values; regenerate or "
                            f"drop it")
    return torch.from_numpy(np.array(matrix, dtype=np.float32))  # a copy: kaldiio's arrays may be read-only


def vocode_feats_scp(feats_scp: str | os.PathLike, out_dir: str | os.PathLike, feature_type: str,
                     spec: TacotronSpecConfig, gl: GriffinLimConfig = GriffinLimConfig(),
                     overwrite: bool = False, cfg_source: str = "feature config",
                     quiet: bool | None = None) -> VocodeResult:
    """Vocode every utterance of a Kaldi feats.scp into OUT_DIR/wav/<key>.wav, then write OUT_DIR/wav.scp.

    Utterances run in batches of `gl.batch_size`, grouped by length when utt2num_frames is beside
    feats.scp. wav.scp is written last and atomically, so an interrupted run never looks finished;
    rerunning the same command resumes it (see `_prepare_out_dir`). Every wav keeps the level of the
    analysed speech unless that would clip; such utterances are scaled to a peak of 0.99.
    """
    feats_scp, out_dir = Path(feats_scp), Path(out_dir)
    if feature_type not in (*FEATURE_TYPES, "fbank"):
        raise SkiptoolError(f"--type must be one of {', '.join(FEATURE_TYPES)}, fbank; got '{feature_type}'")
    table = _read_feats_scp(feats_scp)
    loader = kaldiio.load_scp(str(feats_scp))
    first = next(iter(table))
    _load_features(loader, first, feats_scp, feature_type, spec, cfg_source)  # a wrong --type fails before any output
    _prepare_out_dir(out_dir, _state_text(feats_scp, feature_type, spec, gl), overwrite)

    wav_dir = out_dir / "wav"
    wav_paths = {key: (wav_dir / f"{key}.wav").resolve() for key in table}
    todo = [key for key in table if not wav_paths[key].is_file()]
    lengths = _frame_counts(feats_scp, todo)
    if lengths:
        todo.sort(key=lambda k: lengths[k])
    rescaled = 0

    def vocoded_keys():
        nonlocal rescaled
        for start in range(0, len(todo), gl.batch_size):
            keys = todo[start: start + gl.batch_size]
            feats = [_load_features(loader, k, feats_scp, feature_type, spec, cfg_source) for k in keys]
            seeds = [key_seed(gl.seed, k) for k in keys]
            if feature_type == "fbank":  # spec is an FbankInversion (skiptool.audio.fbank_inverse)
                wavs = spec.to_wavs(feats, gl, seeds)
            else:
                wavs = features_to_wavs(feats, feature_type, spec, gl, seeds)
            for key, wav in zip(keys, wavs):
                peak = float(wav.abs().max()) if wav.numel() else 0.0
                if peak > 1.0:
                    wav, rescaled = wav * (0.99 / peak), rescaled + 1
                write_wav(wav_paths[key], wav.numpy(), spec.sample_rate)
                yield key

    for _ in track(vocoded_keys(), total=len(todo), description="vocode", quiet=quiet, unit="utt"):
        pass
    write_table(out_dir / "wav.scp", {key: str(path) for key, path in wav_paths.items()})
    return VocodeResult(out_dir / "wav.scp", written=len(todo), resumed=len(table) - len(todo), rescaled=rescaled)
