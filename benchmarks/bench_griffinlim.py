"""Griffin-Lim: skiptool's batched fast Griffin-Lim vs librosa.griffinlim (looped), speed and quality.

32 three-second clips (FSDD recordings resampled to 16 kHz and concatenated, when
../shared/data/fsdd exists; else synthetic harmonic signals), STFT n_fft 2048, hop 200, win 800,
Hann window, centred with zero padding, the same iterations, momentum and initial phases (the
same seeded uniform draw in [0, 2 pi) per clip) in both, float32 in both. Reports wall time, the speed ratio (target: ours
>= 3x faster) and the spectral convergence || |STFT(y)| - S ||_F / ||S||_F in dB, per clip and
averaged (target: ours within 0.5 dB of librosa's). Then the mel -> linear inversions on the
same clips: pinv, skiptool's batched NNLS, librosa.util.nnls and scipy.optimize.nnls per frame.

Usage: .venv/bin/python benchmarks/bench_griffinlim.py [--clips 32] [--seconds 3] [--n-iter 60]
           [--momentum 0.99] [--repeats 1] [--nnls-frames 300] [--skip-nnls] [--chunk-frames N ...] [--one-batch] [--torchaudio]
           [--synthetic]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import librosa
import numpy as np
import scipy.optimize
import soundfile as sf
import torch
import torchaudio.functional as AF

from skiptool.audio.griffinlim import CHUNK_FRAMES, _griffinlim_batch, griffinlim, mel_to_linear
from skiptool.audio.tacotron import TacotronSpecConfig, mel_basis

REPO = Path(__file__).resolve().parents[1]
FSDD = Path(os.environ.get("SKIPTOOL_SHARED_DATA", REPO.parent / "shared" / "data")) / "fsdd" / "recordings"
SR, N_FFT, HOP, WIN = 16000, 2048, 200, 800


def fsdd_clips(count: int, seconds: float, seed: int = 0) -> np.ndarray:
    """(count, samples) clips of real speech: FSDD files in a seeded order, resampled, concatenated."""
    files = sorted(FSDD.glob("*.wav"))
    order = np.random.default_rng(seed).permutation(len(files))
    need = int(seconds * SR)
    clips, pieces, have = [], [], 0
    for index in order:
        wav, sr = sf.read(files[index], dtype="float32")
        wav = AF.resample(torch.from_numpy(wav), sr, SR).numpy()
        pieces.append(wav)
        have += len(wav)
        if have >= need:
            clips.append(np.concatenate(pieces)[:need])
            pieces, have = [], 0
            if len(clips) == count:
                break
    return np.stack(clips)


def synthetic_clips(count: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Harmonic signals with gliding pitch and syllable-rate amplitude modulation."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    clips = []
    for _ in range(count):
        f0 = rng.uniform(90, 220) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.2, 1) * t))
        x = sum(np.sin(2 * np.pi * np.cumsum(k * f0) / SR) / k for k in range(1, 30) if k * f0.max() < SR / 2)
        x *= np.clip(np.sin(2 * np.pi * rng.uniform(2, 5) * t), 0, None)
        clips.append(0.3 * x / np.abs(x).max())
    return np.stack(clips).astype(np.float32)


def magnitude(wav: np.ndarray) -> np.ndarray:
    """(..., n_freqs, frames) |STFT|, librosa's defaults (centre, zero padding) as in skiptool's features."""
    return np.abs(librosa.stft(wav, n_fft=N_FFT, hop_length=HOP, win_length=WIN))


def spectral_convergence_db(wav: np.ndarray, target: np.ndarray) -> float:
    rebuilt = magnitude(wav)
    return float(20 * np.log10(np.linalg.norm(rebuilt - target) / np.linalg.norm(target)))


def run_ours(mags: np.ndarray, n_iter: int, momentum: float, chunk_frames: int = CHUNK_FRAMES
             ) -> tuple[float, list[np.ndarray]]:
    batch = [torch.from_numpy(np.ascontiguousarray(m.T)) for m in mags]  # time-major, as features
    start = time.perf_counter()
    wavs = griffinlim(batch, N_FFT, HOP, WIN, n_iter=n_iter, momentum=momentum, init="random",
                      seeds=list(range(len(batch))), chunk_frames=chunk_frames)
    return time.perf_counter() - start, [w.numpy() for w in wavs]


def run_one_batch(mags: np.ndarray, n_iter: int, momentum: float) -> tuple[float, list[np.ndarray]]:
    """The same loop on the whole batch at once over torch's intra-op threads (what griffinlim avoids)."""
    batch = [torch.from_numpy(np.ascontiguousarray(m.T)) for m in mags]
    start = time.perf_counter()
    wavs = _griffinlim_batch(batch, list(range(len(batch))), N_FFT, HOP, WIN, n_iter, momentum, "random")
    return time.perf_counter() - start, [w.numpy() for w in wavs]


def run_librosa(mags: np.ndarray, n_iter: int, momentum: float, length: int) -> tuple[float, list[np.ndarray]]:
    start = time.perf_counter()
    # random_state=default_rng(i) draws the same initial phases as skiptool's seed i
    wavs = [librosa.griffinlim(m, n_iter=n_iter, hop_length=HOP, win_length=WIN, n_fft=N_FFT, momentum=momentum,
                               init="random", random_state=np.random.default_rng(i), length=length)
            for i, m in enumerate(mags)]
    return time.perf_counter() - start, wavs


def run_torchaudio(mags: np.ndarray, n_iter: int, momentum: float, length: int) -> tuple[float, list[np.ndarray]]:
    """torchaudio.functional.griffinlim on the whole batch (its own random start, reflect re-analysis)."""
    torch.manual_seed(0)
    start = time.perf_counter()
    wavs = AF.griffinlim(torch.from_numpy(mags), torch.hann_window(WIN), N_FFT, HOP, WIN, power=1.0, n_iter=n_iter,
                         momentum=momentum, length=length, rand_init=True)
    return time.perf_counter() - start, list(wavs.numpy())


def db(x: float) -> float:
    return float(20 * np.log10(x))


def bench_mel_inversion(mags: np.ndarray, scipy_frames: int) -> None:
    cfg = TacotronSpecConfig()  # n_fft 2048, 80 Slaney mels, as the mel features
    basis = mel_basis(cfg)
    linear = torch.from_numpy(np.ascontiguousarray(mags.transpose(0, 2, 1))).clamp(min=1e-4)  # (clips, frames, F)
    mel = linear @ basis
    frames = linear.shape[0] * linear.shape[1]

    def report(name: str, seconds: float, estimate: torch.Tensor, note: str = "") -> None:
        lin_err = db(float((estimate - linear_ref).norm() / linear_ref.norm()))
        mel_err = db(float((estimate @ basis - mel_ref).norm() / mel_ref.norm()))
        print(f"| {name} | {seconds:.2f}{note} | {mel_err:.1f} | {lin_err:.1f} | {float(estimate.min()) >= 0} |")

    print(f"\nmel -> linear on the same clips ({frames} frames, 80 mels -> 1025 bins):\n")
    print("| method | seconds | mel fit (dB) | linear error (dB) | non-negative |")
    print("|---|---:|---:|---:|---:|")
    linear_ref, mel_ref = linear, mel
    for name, method, iters in (("pinv, clamped", "pinv", 0), ("skiptool NNLS, 10 it", "nnls", 10),
                                ("skiptool NNLS, 50 it", "nnls", 50)):
        start = time.perf_counter()
        estimate = mel_to_linear(mel, cfg, method, iters)
        report(name, time.perf_counter() - start, estimate)
    basis_np = basis.T.double().numpy()  # (mels, F)
    mel_np = mel.reshape(-1, mel.shape[-1]).double().numpy()
    start = time.perf_counter()
    estimate = librosa.util.nnls(basis_np, mel_np.T).T
    report("librosa.util.nnls", time.perf_counter() - start,
           torch.from_numpy(estimate).float().reshape(linear.shape))
    # scipy's exact active-set NNLS, one frame at a time: timed on a subset and scaled to all frames
    subset = np.random.default_rng(0).choice(mel_np.shape[0], size=min(scipy_frames, mel_np.shape[0]), replace=False)
    start = time.perf_counter()
    estimate = np.stack([scipy.optimize.nnls(basis_np, mel_np[i])[0] for i in subset])
    per_frame = (time.perf_counter() - start) / len(subset)
    linear_ref = linear.reshape(-1, linear.shape[-1])[subset]
    mel_ref = mel.reshape(-1, mel.shape[-1])[subset]
    report(f"scipy.optimize.nnls per frame ({len(subset)} frames)", per_frame * frames,
           torch.from_numpy(estimate).float(), " (scaled)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--n-iter", type=int, default=60)
    parser.add_argument("--momentum", type=float, default=0.99, help="librosa.griffinlim's default")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of each, alternating; medians reported")
    parser.add_argument("--nnls-frames", type=int, default=300, help="frames timed for scipy's per-frame NNLS")
    parser.add_argument("--skip-nnls", action="store_true", help="only Griffin-Lim")
    parser.add_argument("--chunk-frames", type=int, nargs="*", default=[],
                        help="also time skiptool with these chunk_frames values (once each)")
    parser.add_argument("--one-batch", action="store_true",
                        help="also time skiptool's loop as one batch over torch's intra-op threads (once)")
    parser.add_argument("--torchaudio", action="store_true",
                        help="also time torchaudio.functional.griffinlim on the batch (once)")
    parser.add_argument("--synthetic", action="store_true", help="synthetic clips even when FSDD is there")
    args = parser.parse_args(argv)

    print("command: .venv/bin/python benchmarks/bench_griffinlim.py " + shlex.join(sys.argv[1:] if argv is None else argv))
    use_fsdd = FSDD.is_dir() and not args.synthetic
    clips = (fsdd_clips if use_fsdd else synthetic_clips)(args.clips, args.seconds)
    source = f"FSDD ({FSDD}) resampled to 16 kHz" if use_fsdd else "synthetic harmonic signals"
    mags = magnitude(clips)  # (clips, n_freqs, frames), float32
    print(f"data: {args.clips} clips x {args.seconds:g} s of {source}; STFT n_fft {N_FFT}, hop {HOP}, win {WIN}, "
          f"{mags.shape[-1]} frames each; {args.n_iter} iterations, momentum {args.momentum}, random initial phase")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__} with {torch.get_num_threads()} threads, librosa {librosa.__version__}, "
          f"load average at start {os.getloadavg()[0]:.2f} (other users' jobs share the CPUs)")

    run_ours(mags[:2], 1, args.momentum)  # warm-up, untimed: FFT plans, thread pool, lazy imports
    run_librosa(mags[:2], 1, args.momentum, clips.shape[-1])
    ours_times, librosa_times = [], []
    for _ in range(args.repeats):
        seconds, ours = run_ours(mags, args.n_iter, args.momentum)
        ours_times.append(seconds)
        seconds, theirs = run_librosa(mags, args.n_iter, args.momentum, clips.shape[-1])
        librosa_times.append(seconds)
    ours_sc = [spectral_convergence_db(w, m) for w, m in zip(ours, mags)]
    librosa_sc = [spectral_convergence_db(w, m) for w, m in zip(theirs, mags)]
    ours_s, librosa_s = statistics.median(ours_times), statistics.median(librosa_times)
    rows = [(f"skiptool griffinlim (one call, chunk_frames={CHUNK_FRAMES})", ours_s, ours_sc), ("librosa.griffinlim (loop)", librosa_s, librosa_sc)]
    for chunk_frames in args.chunk_frames:
        seconds, wavs = run_ours(mags, args.n_iter, args.momentum, chunk_frames)
        rows.append((f"skiptool griffinlim, chunk_frames={chunk_frames}", seconds,
                     [spectral_convergence_db(w, m) for w, m in zip(wavs, mags)]))
    if args.one_batch:
        seconds, wavs = run_one_batch(mags, args.n_iter, args.momentum)
        rows.append((f"skiptool loop as one batch, {torch.get_num_threads()} intra-op threads", seconds,
                     [spectral_convergence_db(w, m) for w, m in zip(wavs, mags)]))
    if args.torchaudio:
        seconds, wavs = run_torchaudio(mags, args.n_iter, args.momentum, clips.shape[-1])
        rows.append(("torchaudio.functional.griffinlim (one batch)", seconds,
                     [spectral_convergence_db(w, m) for w, m in zip(wavs, mags)]))
    print(f"load average at end {os.getloadavg()[0]:.2f}\n")
    print("| implementation | wall time (s) | clips/s | spectral convergence, mean over clips (dB) | min / max (dB) |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds, sc in rows:
        print(f"| {name} | {seconds:.2f} | {len(mags) / seconds:.2f} | {np.mean(sc):.2f} | "
              f"{min(sc):.2f} / {max(sc):.2f} |")
    speedup = librosa_s / ours_s
    sc_gap = float(np.mean(ours_sc) - np.mean(librosa_sc))
    print(f"\nspeed: skiptool is {speedup:.2f}x librosa (target >= 3x): {'PASS' if speedup >= 3 else 'FAIL'}")
    print(f"spectral convergence: skiptool - librosa = {sc_gap:+.2f} dB (target <= +0.5 dB): "
          f"{'PASS' if sc_gap <= 0.5 else 'FAIL'}")
    if args.repeats > 1:
        print(f"all runs (s): skiptool {[round(t, 2) for t in ours_times]}, librosa {[round(t, 2) for t in librosa_times]}")
    if not args.skip_nnls:
        bench_mel_inversion(mags, args.nnls_frames)


if __name__ == "__main__":
    main()
