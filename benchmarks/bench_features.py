"""Features: skiptool's batched FBank / mel / MFCC against kaldi-native-fbank and librosa; memory of `skiptool feats`.

All on the 3,000 FSDD recordings resampled to 16 kHz (skiptool's numpy port of torchaudio's
resampler, once, outside the timings; the same float32 waveforms go to every implementation). In one process, with the repetitions of
ours and the reference interleaved, it reports:

* FBank (80 bins, Kaldi defaults, dither 0): `skiptool.audio.kaldi.fbank` over all utterances vs a
  loop of kaldi-native-fbank's OnlineFbank (C++) per utterance, plus the per-utterance
  torchaudio.compliance.kaldi.fbank loop for reference; throughput ratio (target >= 2x) and the
  absolute differences to kaldi-native-fbank (targets: mean <= 1e-4, 99.9th percentile <= 2e-3).
* Mel (Tacotron: n_fft 2048, win 800, hop 200, 80 Slaney mels, preemphasis 0.97, dB, [0, 1]):
  `skiptool.audio.transforms.tacotron_features` vs librosa.feature.melspectrogram per utterance
  with the same settings and the same dB/normalisation in numpy (target >= 10x), and the difference.
* MFCC (Kaldi: 23 bins, 13 cepstra, lifter 22): `skiptool.audio.kaldi.mfcc` vs
  librosa.feature.mfcc per utterance with the nearest settings (n_fft 512, win 400, hop 160, 23 HTK
  mels from 20 Hz, 13 coefficients, no centring) (target >= 10x). librosa has no Povey window, DC
  removal or Kaldi mel banks, so values are compared where the configs do match: the DCT of the
  same log-mel energies (Kaldi's log-FBank into librosa.feature.mfcc(S=..., lifter=0) vs ours
  with cepstral_lifter 0 and use_energy false).
* Peak memory of `skiptool feats` on all FSDD files (fbank, --nj 1 and --nj 2): the peak RSS of
  its largest process (getrusage RUSAGE_CHILDREN ru_maxrss) and the peak of the summed PSS of
  all its processes (/proc/PID/smaps_rollup, sampled at 20 Hz).

Ours (numpy, MKL's FFT through mkl_fft, or scipy.fft without it, and numba; no torch) runs with 1
and with 2 threads (`--threads`: groups of utterances computed in parallel); the references are single-threaded (the torchaudio loop, for
reference only, gets the same number of torch threads).
Times are the minimum and median of `--repeats` runs; ratios use the minima (least disturbed by
other load on the machine). Wall-clock time is the measure; the CPU time of the process
(time.process_time, all its threads) is printed beside it, since on a machine shared with other
jobs the wall clock also counts the time spent waiting for a core.

Usage: .venv/bin/python benchmarks/bench_features.py [--fsdd ../shared/data/fsdd] [--repeats 5]
           [--threads 1 2] [--skip-memory]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import kaldi_native_fbank as knf
import librosa
import numpy as np
import scipy
import soundfile as sf
import torch
import torchaudio.compliance.kaldi as ta_kaldi

from skiptool.audio import fft, kaldi, tacotron
from skiptool.audio.kaldi import FbankConfig, MfccConfig
from skiptool.audio.transforms import resample, tacotron_features
from skiptool.data.datadir import write_table

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FSDD = Path(os.environ.get("SKIPTOOL_SHARED_DATA", REPO.parent / "shared" / "data")) / "fsdd"
RATE = 16000


def load_fsdd(fsdd: Path) -> tuple[list[Path], list[np.ndarray]]:
    files = sorted((fsdd / "recordings").glob("*.wav"))
    if not files:
        sys.exit(f"bench_features: no wav files in {fsdd / 'recordings'}; pass --fsdd DIR (the folder holding recordings/)")
    waves = []
    for path in files:
        wav, sr = sf.read(path, dtype="float32")
        waves.append(resample(wav, sr, RATE))
    return files, waves


CPU_TIMES: dict[str, list[float]] = {}  # label -> process CPU seconds of each timed run


def interleave(runs: dict, repeats: int) -> tuple[dict[str, list[float]], dict[str, object]]:
    """Run every function `repeats` times, round-robin (after one untimed warm-up call for those
    marked so); returns the wall-clock times and the last outputs (CPU times go to CPU_TIMES)."""
    times: dict[str, list[float]] = {label: [] for label in runs}
    outputs = {}
    for label, (fn, warm) in runs.items():
        if warm:
            fn()
    for _ in range(repeats):
        for label, (fn, _) in runs.items():
            start, cpu = time.perf_counter(), time.process_time()
            outputs[label] = fn()
            times[label].append(time.perf_counter() - start)
            CPU_TIMES.setdefault(label, []).append(time.process_time() - cpu)
    return times, outputs


# ------------------------------------------------------------------------------------------ fbank

def knf_fbank(waves: list[np.ndarray]) -> list[np.ndarray]:
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0  # knf's default is 3e-5
    opts.frame_opts.samp_freq = RATE
    opts.mel_opts.num_bins = 80
    out = []
    for wave in waves:
        fb = knf.OnlineFbank(opts)
        fb.accept_waveform(RATE, wave * 32768)
        fb.input_finished()
        out.append(np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)]))
    return out


def torchaudio_fbank(waves: list[np.ndarray]) -> list[torch.Tensor]:
    kwargs = kaldi.torchaudio_kwargs(FbankConfig())
    return [ta_kaldi.fbank(torch.from_numpy(w)[None] * 32768, **kwargs) for w in waves]


# -------------------------------------------------------------------------------------------- mel

def librosa_mel(waves: list[np.ndarray], cfg: tacotron.TacotronSpecConfig) -> list[np.ndarray]:
    out = []
    for wave in waves:
        y = np.append(wave[:1], wave[1:] - cfg.preemphasis * wave[:-1])
        mel = librosa.feature.melspectrogram(y=y, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                             win_length=cfg.win_length, window="hann", center=True,
                                             pad_mode=cfg.pad_mode, power=1.0, n_mels=cfg.num_mels, fmin=cfg.fmin,
                                             fmax=cfg.fmax, htk=False, norm="slaney")
        db = 20.0 * np.log10(np.maximum(mel, 1e-5))
        out.append(np.clip((db - cfg.ref_level_db - cfg.min_level_db) / -cfg.min_level_db, 0.0, 1.0).T)
    return out


# ------------------------------------------------------------------------------------------- mfcc

def librosa_mfcc(waves: list[np.ndarray]) -> list[np.ndarray]:
    return [librosa.feature.mfcc(y=w, sr=RATE, n_mfcc=13, n_fft=512, win_length=400, hop_length=160, window="hann",
                                 center=False, n_mels=23, fmin=20.0, fmax=RATE / 2, htk=True, norm=None,
                                 lifter=22).T for w in waves]


def mfcc_dct_comparison(waves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Differences where librosa and Kaldi agree: the orthonormal DCT-II of the same log-mel energies.

    Returns per-frame relative differences max|d| / max|ref| and per-value ones |d| / |ref| for
    the values with |ref| >= 1 (a cepstral coefficient near zero has no meaningful relative error)."""
    cfg = MfccConfig(dither=0.0, cepstral_lifter=0.0, use_energy=False)
    ours = kaldi.mfcc(waves, cfg)
    log_mel = kaldi.fbank(waves, FbankConfig(num_mel_bins=23))
    per_frame, per_value = [], []
    for got, mel in zip(ours, log_mel):
        ref = librosa.feature.mfcc(S=mel.T, n_mfcc=13, dct_type=2, norm="ortho", lifter=0).T
        diff = np.abs(got - ref)
        per_frame.append(diff.max(1) / np.abs(ref).max(1))
        big = np.abs(ref) >= 1.0
        per_value.append(diff[big] / np.abs(ref[big]))
    return np.concatenate(per_frame), np.concatenate(per_value)


# ----------------------------------------------------------------------------------------- memory

def tree_pss_bytes(root: int) -> int:
    """Summed PSS of `root` and its descendants, from /proc (PSS splits shared pages between the
    processes that map them, so forked jobs sharing libraries are not counted twice)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total += next(int(line.split()[1]) * 1024 for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration, ValueError):
            pass
        stack.extend(children.get(pid, []))
    return total


MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - start
if proc.returncode:
    sys.exit(proc.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, wall)
"""


def feats_memory(files: list[Path], nj: int, workdir: Path) -> tuple[float, float, float, str]:
    """(largest process's peak RSS MiB, process tree's peak PSS MiB, wall s, command) of `skiptool feats` on FSDD."""
    data = workdir / "data"
    if not (data / "wav.scp").exists():
        keys = {p.stem.replace("_", "-"): p for p in files}  # {digit}-{speaker}-{take}
        write_table(data / "wav.scp", {k: str(p.resolve()) for k, p in keys.items()})
        write_table(data / "utt2spk", {k: k.split("-")[1] for k in keys})
    out = workdir / f"fbank_nj{nj}"
    skiptool = str(Path(sys.executable).parent / "skiptool")
    cmd = [skiptool, "--quiet", "feats", str(data), str(out), "--type", "fbank", "--nj", str(nj), "--overwrite"]
    proc = subprocess.Popen([sys.executable, "-c", MEASURE, *cmd], stdout=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def poll():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_pss_bytes(proc.pid))
            time.sleep(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    stdout, _ = proc.communicate()
    done.set()
    poller.join()
    if proc.returncode:
        sys.exit(f"bench_features: {' '.join(cmd)} failed")
    maxrss_kib, wall = stdout.split()
    shown = f"skiptool --quiet feats DATA OUT --type fbank --nj {nj}"
    return int(maxrss_kib) / 1024, peak / 2**20, float(wall), shown


# ------------------------------------------------------------------------------------------- main

def stats(values: list[float]) -> tuple[float, float]:
    return min(values), statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fsdd", type=Path, default=DEFAULT_FSDD, help="FSDD folder (holding recordings/)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each implementation")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="threads for ours")
    parser.add_argument("--skip-memory", action="store_true", help="skip the skiptool feats memory runs")
    args = parser.parse_args()

    command = "$ .venv/bin/python benchmarks/bench_features.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    files, waves = load_fsdd(args.fsdd)
    seconds = sum(len(w) for w in waves) / RATE
    print(command.rstrip())
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, "
          f"scipy {scipy.__version__}, torch {torch.__version__} (torchaudio reference only), "
          f"librosa {librosa.__version__}, kaldi-native-fbank {getattr(knf, '__version__', '?')}; "
          f"our FFT: {fft.backend_name()} (librosa's: numpy.fft)")
    print(f"data: {len(waves)} FSDD files resampled to 16 kHz, {seconds:.0f} s of audio; "
          f"{args.repeats} timed runs each, interleaved; load average at start {os.getloadavg()[0]:.2f}\n")

    fcfg, mcfg, tcfg = FbankConfig(), MfccConfig(dither=0.0), tacotron.TacotronSpecConfig()
    rows = []
    for threads in args.threads:
        runs = {
            "fbank ours": (lambda: kaldi.fbank(waves, fcfg, threads=threads), True),
            "fbank kaldi-native-fbank": (lambda: knf_fbank(waves), True),
            "mfcc ours": (lambda: kaldi.mfcc(waves, mcfg, threads=threads), True),
            "mfcc librosa": (lambda: librosa_mfcc(waves), False),
            # as skiptool feats runs it (vad: false)
            "mel ours": (lambda: tacotron_features(waves, tcfg, energy=False, threads=threads)[0], True),
        }
        times, outputs = interleave(runs, args.repeats)
        mel_runs = {"mel librosa": (lambda: librosa_mel(waves, tcfg), False)}
        mel_times, mel_out = interleave(mel_runs, max(1, min(args.repeats, 2)))
        times.update(mel_times)
        outputs.update(mel_out)
        for name, ref in (("fbank", "kaldi-native-fbank"), ("mfcc", "librosa"), ("mel", "librosa")):
            ours_min, ours_med = stats(times[f"{name} ours"])
            ref_min, ref_med = stats(times[f"{name} {ref}"])
            ours_cpu, ref_cpu = min(CPU_TIMES.pop(f"{name} ours")), min(CPU_TIMES.pop(f"{name} {ref}"))
            rows.append((name, threads, ref, ours_min, ours_med, ref_min, ref_med, ref_min / ours_min,
                         ours_cpu, ref_cpu))
        if threads == args.threads[0]:
            fbank_out, knf_out = outputs["fbank ours"], outputs["fbank kaldi-native-fbank"]
            mel_ours, mel_ref = outputs["mel ours"], outputs["mel librosa"]

    torch.set_num_threads(1)
    ta_times, _ = interleave({"torchaudio": (lambda: torchaudio_fbank(waves), False)}, 1)
    torch.set_num_threads(2)
    ta2_times, ta_out = interleave({"torchaudio": (lambda: torchaudio_fbank(waves), False)}, 1)

    print(f"load average: {os.getloadavg()[0]:.2f} at the end (other users' jobs share the CPUs)\n")
    print("| features | threads (ours) | reference | ours min / median (s) | reference min / median (s) "
          "| speed-up (min / min) | CPU s, ours / reference (min) | speed-up in CPU time |")
    print("|---|---|---|---|---|---|---|---|")
    for name, threads, ref, omin, omed, rmin, rmed, ratio, ocpu, rcpu in rows:
        target = 2 if name == "fbank" else 10
        print(f"| {name} | {threads} | {ref} | {omin:.3f} / {omed:.3f} | {rmin:.3f} / {rmed:.3f} | "
              f"{ratio:.1f}x ({'PASS' if ratio >= target else 'FAIL'}: >= {target}x) | {ocpu:.3f} / {rcpu:.3f} | "
              f"{rcpu / ocpu:.1f}x |")
    knf_min = min(r[5] for r in rows if r[0] == "fbank")
    print(f"\nper-utterance torchaudio.compliance.kaldi.fbank loop: {ta_times['torchaudio'][0]:.3f} s with 1 thread, "
          f"{ta2_times['torchaudio'][0]:.3f} s with 2 ({knf_min / ta_times['torchaudio'][0]:.2f}x and "
          f"{knf_min / ta2_times['torchaudio'][0]:.2f}x kaldi-native-fbank's best)")

    diff = np.concatenate([np.abs(a - b).ravel() for a, b in zip(fbank_out, knf_out)])
    ta_diff = np.concatenate([np.abs(a - b.numpy()).ravel() for a, b in zip(fbank_out, ta_out["torchaudio"])])
    mean_ok, p999_ok = diff.mean() <= 1e-4, np.percentile(diff, 99.9) <= 2e-3
    print(f"\nfbank values, ours - kaldi-native-fbank over {diff.size} values ({len(knf_out)} utterances): "
          f"mean |d| {diff.mean():.2e}, 99.9th percentile {np.percentile(diff, 99.9):.2e}, max {diff.max():.2e} "
          f"(targets: mean <= 1e-4, 99.9th <= 2e-3: {'PASS' if mean_ok and p999_ok else 'FAIL'})")
    print(f"fbank values, ours - torchaudio.compliance.kaldi.fbank: mean |d| {ta_diff.mean():.2e}, "
          f"99.9th percentile {np.percentile(ta_diff, 99.9):.2e}, max {ta_diff.max():.2e}")
    mel_diff = np.concatenate([np.abs(a - b).ravel() for a, b in zip(mel_ours, mel_ref)])
    print(f"mel values (normalised to [0, 1], so absolute = relative to the range), ours - librosa: "
          f"mean |d| {mel_diff.mean():.2e}, 99.9th percentile {np.percentile(mel_diff, 99.9):.2e}, max {mel_diff.max():.2e} "
          f"(target: within 1e-4: {'PASS' if mel_diff.max() <= 1e-4 else 'FAIL'})")
    per_frame, per_value = mfcc_dct_comparison(waves)
    print(f"mfcc values where the configs match (DCT of the same log-mel), ours vs librosa: per frame "
          f"max|d| / max|librosa| mean {per_frame.mean():.2e}, max {per_frame.max():.2e}; per value |d| / |librosa| "
          f"(|librosa| >= 1) mean {per_value.mean():.2e}, 99.9th percentile {np.percentile(per_value, 99.9):.2e}, "
          f"max {per_value.max():.2e} (target: within 1e-4 relative: "
          f"{'PASS' if max(per_frame.max(), per_value.max()) <= 1e-4 else 'FAIL'})")

    if not args.skip_memory:
        print("\n| command | peak RSS of the largest process (MiB) | peak PSS of all its processes (MiB) | wall (s) "
              "| under 1 GiB |")
        print("|---|---|---|---|---|")
        with tempfile.TemporaryDirectory(prefix="bench_feats_") as tmp:
            for nj in (1, 2):
                largest, tree, wall, shown = feats_memory(files, nj, Path(tmp))
                print(f"| `{shown}` ({len(files)} FSDD files, 8 kHz -> 16 kHz) | {largest:.0f} | {tree:.0f} | {wall:.1f} "
                      f"| {'PASS' if max(largest, tree) < 1024 else 'FAIL'} |")


if __name__ == "__main__":
    main()
