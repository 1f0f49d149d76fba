"""Feature extraction for a whole data dir (`skiptool feats`): parallel jobs, Kaldi ark/scp, CMVN, resume.

    extract_features("data/train", "dump/fbank/train", "fbank", nj=2, cmvn="global")

OUT_DIR becomes a complete data dir, like ESPnet's dump/ dirs:

    feats.scp            utt -> OUT_DIR/data/feats.JOB.ark:offset   (float32 matrices, kaldiio / Kaldi readable)
    utt2num_frames       frames per utterance (rows of the image matrix for --type image)
    conf.yaml            `type:` + the resolved feature config + `feat_dim` (+ `cmvn`, `cmvn_norm_vars`)
    text, utt2spk, spk2utt, utt2label, utt2emo, utt2dur, wav.scp / img.scp, segments
                         the source dir's tables, restricted to the utterances that got features
    cmvn.ark             global CMVN stats (Kaldi layout, one matrix), with --cmvn global
    cmvn.scp             per-speaker CMVN stats, with --cmvn speaker
    raw_feats.scp        the features before CMVN, when CMVN is on
    data/                per-job arks and scps, done markers and the run's state

Job JOB (1..N) reads its contiguous share of the sorted keys and writes data/feats.JOB.{ark,scp}
(data/raw_feats.JOB.* before CMVN), then a done marker; a rerun skips finished jobs. feats.scp is
written (atomically) last, after every job, and OUT_DIR/.done after it, so an interrupted run never
leaves a feats.scp that looks complete. Paths in the scp files are absolute.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import multiprocessing as mp
import os
import queue as queue_lib
import shutil
import signal
import sys
import traceback
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import kaldiio
import numpy as np
import yaml

from skiptool.audio import cmvn as cmvn_lib
from skiptool.audio.io import check_wav_entry, load_wav
from skiptool.audio.kaldi import FbankConfig, MfccConfig
from skiptool.audio.transforms import SPEECH_CONFIGS, TacotronFeatsConfig, make_extractor, resample
from skiptool.data.datadir import read_table, utt2spk_to_spk2utt, write_table
from skiptool.data.image import ImageFeatsConfig, image_to_matrix, load_image
from skiptool.utils.config import from_dict, read_yaml, to_dict
from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import atomic_write_text, clear_done, is_done, mark_done
from skiptool.utils.progress import track

FEAT_TYPES = ("fbank", "mfcc", "mel", "linear", "image")
CMVN_TYPES = ("none", "global", "speaker")
FeatType = Literal["fbank", "mfcc", "mel", "linear", "image"]

CONFIG_CLASSES: dict[str, type] = {**SPEECH_CONFIGS, "image": ImageFeatsConfig}

# Utterance-keyed tables copied into OUT_DIR (restricted to the keys with features); spk2utt is
# rebuilt from the restricted utt2spk, and wav.scp follows segments' recordings when present.
COPIED_TABLES = ("text", "utt2spk", "utt2label", "utt2emo", "utt2dur", "img.scp", "segments")

# conf.yaml keys that describe a finished dir rather than configure extraction; ignored in --conf
PROVENANCE_KEYS = ("type", "feat_dim", "cmvn", "cmvn_norm_vars", "cmvn_stats")

# What this module writes into OUT_DIR (and so may remove with --overwrite).
_OUTPUTS = ("feats.scp", "raw_feats.scp", "utt2num_frames", "conf.yaml", "cmvn.ark", "cmvn.scp", "spk2utt",
            "wav.scp") + COPIED_TABLES

UTTS_PER_BATCH = 128  # waveforms handed to an extractor at once
SAMPLES_PER_BATCH = 16000 * 120  # ... or this much audio, whichever comes first (bounds memory)


def default_notify(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------- configs

def load_feats_config(feat_type: str, conf: str | os.PathLike | None = None,
                      overrides: dict[str, Any] | None = None):
    """The validated config of a feature type: defaults, then the YAML file `conf`, then `overrides`.

    A `type:` key in the file (as in a feature dir's conf.yaml) must name `feat_type`; the other
    provenance keys of conf.yaml (feat_dim, cmvn, ...) are ignored, so a finished dir's conf.yaml
    can be reused as --conf.
    """
    if feat_type not in CONFIG_CLASSES:
        raise SkiptoolError(f"--type: unknown feature type '{feat_type}'; choose one of {', '.join(FEAT_TYPES)}")
    data = dict(read_yaml(conf)) if conf else {}
    source = str(conf) if conf else "config"
    named = data.pop("type", feat_type)
    if named != feat_type:
        raise SkiptoolError(f"{source}: config is for type '{named}' but --type is '{feat_type}'; "
                            f"pass a {feat_type} config (e.g. conf/feats/{feat_type}.yaml)")
    for key in PROVENANCE_KEYS:
        data.pop(key, None)
    known = {f.name for f in dataclasses.fields(CONFIG_CLASSES[feat_type])}
    for key in overrides or {}:
        if key not in known:
            raise SkiptoolError(f"--set {key}=...: unknown key '{key}' for --type {feat_type}; "
                                f"known keys: {', '.join(sorted(known))}")
    data.update(overrides or {})
    return from_dict(CONFIG_CLASSES[feat_type], data, source=source)


@dataclass
class FeatsInfo:
    """How a feature dir was made, from its conf.yaml."""

    type: str
    config: Any  # FbankConfig | MfccConfig | TacotronFeatsConfig | ImageFeatsConfig
    feat_dim: int
    cmvn: str = "none"
    cmvn_norm_vars: bool = True


def read_feats_conf(path: str | os.PathLike) -> FeatsInfo:
    """Read OUT_DIR/conf.yaml (or a path to it) into the type, the typed config and the CMVN settings."""
    path = Path(path)
    if path.is_dir():
        path = path / "conf.yaml"
    data = read_yaml(path)
    feat_type = data.get("type")
    if feat_type not in CONFIG_CLASSES:
        raise SkiptoolError(f"{path}: 'type' must be one of {', '.join(FEAT_TYPES)}, got {feat_type!r}; "
                            f"is this a feature dir made by skiptool feats?")
    cfg = load_feats_config(feat_type, path)
    return FeatsInfo(feat_type, cfg, int(data.get("feat_dim", 0)), str(data.get("cmvn", "none")),
                     bool(data.get("cmvn_norm_vars", True)))


def feature_dim(feat_type: str, cfg) -> int:
    if feat_type == "image":
        return cfg.width * cfg.channels
    return make_extractor(feat_type, cfg).dim


# ---------------------------------------------------------------------------------- the inputs

@dataclass(frozen=True)
class Source:
    """Where one utterance's input is: a file, or a segment (seconds; end -1 = to the end) of one."""

    path: str
    start: float = 0.0
    end: float | None = None


def _read_sorted_table(path: Path) -> dict[str, str]:
    """read_table, and an error naming the first key out of C-locale order (Kaldi data dirs are sorted)."""
    table = read_table(path)
    keys = list(table)
    for previous, key in zip(keys, keys[1:]):
        if key < previous:
            raise SkiptoolError(f"{path}: not sorted: '{key}' comes after '{previous}' (C-locale order); "
                                f"run `skiptool data fix {path.parent}`")
    return table


def read_sources(data_dir: Path, feat_type: str) -> dict[str, Source]:
    """utt -> Source from wav.scp (with segments when present) or img.scp; checked before any work starts."""
    table = "img.scp" if feat_type == "image" else "wav.scp"
    path = data_dir / table
    if not path.is_file():
        need = "an img.scp (<utt> <image path>)" if feat_type == "image" else "a wav.scp (<utt> <audio path>)"
        raise SkiptoolError(f"{path}: file not found; --type {feat_type} needs {need} in the data dir")
    entries = _read_sorted_table(path)
    if feat_type == "image":
        sources = {key: Source(value) for key, value in entries.items()}
    else:
        entries = {key: check_wav_entry(value, key, path) for key, value in entries.items()}
        segments_path = data_dir / "segments"
        if segments_path.is_file():
            sources = {}
            for utt, value in _read_sorted_table(segments_path).items():
                parts = value.split()
                try:
                    rec, start, end = parts[0], float(parts[1]), float(parts[2])
                except (IndexError, ValueError):
                    raise SkiptoolError(f"{segments_path}: line for '{utt}' must be '<utt> <recording> <start> <end>'") from None
                if rec not in entries:
                    raise SkiptoolError(f"{segments_path}: '{utt}' refers to recording '{rec}', which is not in "
                                        f"{path}; run `skiptool data fix {data_dir}`")
                sources[utt] = Source(entries[rec], start, None if end < 0 else end)
        else:
            sources = {key: Source(value) for key, value in entries.items()}
    if not sources:
        raise SkiptoolError(f"{path}: no entries; nothing to extract")
    for key, src in sources.items():
        if not Path(src.path).is_file():
            kind = "image" if feat_type == "image" else "audio"
            raise SkiptoolError(f"{key} ({src.path}): {kind} file not found; fix the path in {table} "
                                f"or drop the key (skiptool data fix {data_dir})")
    return sources


# ---------------------------------------------------------------------------------------- jobs

@dataclass
class Job:
    """One share of the keys, extracted into data/<name>.<index>.{ark,scp}."""

    index: int
    feat_type: str
    config: Any
    keys: list[str]
    sources: list[Source]
    data_dir: str  # OUT_DIR/data
    name: str  # "feats", or "raw_feats" before CMVN
    # One thread per job (BLAS; the FFTs and numba kernels use one anyway), as Kaldi runs one process
    # per job: on a shared machine more threads per process lose badly to contention (measured: 2
    # threads were up to 10x slower than 1 there); use --nj for parallelism.
    threads: int = 1

    @property
    def marker(self) -> str:
        return f"{self.name}.{self.index}"

    def path(self, suffix: str) -> Path:
        return Path(self.data_dir) / f"{self.name}.{self.index}.{suffix}"


def utterance_seed(key: str) -> int:
    """Dither seed of an utterance: the same for every --nj and every rerun."""
    return zlib.crc32(key.encode("utf-8"))


def run_job(job: Job) -> Iterator[tuple]:
    """Extract one job's features; yields ("progress", n_utts) and ("notice", key, text) events.

    The ark/scp are written directly and the done marker last, so a job that did not finish is
    simply redone by the next run.
    """
    from threadpoolctl import threadpool_limits  # comes with scikit-learn

    with threadpool_limits(limits=max(1, job.threads), user_api="blas"):
        yield from _run_job(job)


def _run_job(job: Job) -> Iterator[tuple]:
    ark_path, scp_path = job.path("ark"), job.path("scp")
    num_frames: dict[str, int] = {}
    skipped: dict[str, str] = {}
    with open(ark_path, "wb") as ark, open(scp_path, "w", encoding="utf-8") as scp:
        def write(key: str, mat: np.ndarray) -> None:
            kaldiio.save_ark(ark, {key: mat}, scp=scp)
            num_frames[key] = int(mat.shape[0])

        if job.feat_type == "image":
            for start in range(0, len(job.keys), UTTS_PER_BATCH):
                keys = job.keys[start: start + UTTS_PER_BATCH]
                for key, src in zip(keys, job.sources[start: start + UTTS_PER_BATCH]):
                    write(key, image_to_matrix(load_image(src.path, job.config, key)))
                yield ("progress", len(keys))
        else:
            yield from _run_speech_job(job, write, skipped)
    write_table(job.path("utt2num_frames"), num_frames)
    write_table(job.path("skipped"), skipped)
    mark_done(job.data_dir, job.marker)


def _run_speech_job(job: Job, write: Callable[[str, np.ndarray], None], skipped: dict[str, str]) -> Iterator[tuple]:
    cfg = job.config
    extractor = make_extractor(job.feat_type, cfg)
    rate = extractor.sample_rate
    announced: set[int] = set()
    cached: tuple[str, np.ndarray, int] | None = None  # the last whole recording read (segments)
    batch_keys: list[str] = []
    batch_wavs: list[np.ndarray] = []
    batch_samples = 0

    def flush():
        feats = extractor(batch_wavs, seeds=[utterance_seed(k) for k in batch_keys])
        for key, mat in zip(batch_keys, feats):
            if mat is None or mat.shape[0] == 0:
                skipped[key] = "too short for one frame (or below min_duration)"
            else:
                write(key, mat)
        return ("progress", len(batch_keys))

    for key, src in zip(job.keys, job.sources):
        if cached and cached[0] == src.path:
            wav, sr = cached[1], cached[2]
        else:
            wav, sr = load_wav(src.path, key, channel=cfg.channel, downmix=cfg.downmix)
            cached = (src.path, wav, sr)
        if src.start or src.end is not None:
            wav = wav[int(round(src.start * sr)): None if src.end is None else int(round(src.end * sr))]
            if len(wav) == 0:
                raise SkiptoolError(f"{key}: segment {src.start}-{src.end} s of {src.path} is empty; fix segments")
        if sr != rate:
            if not cfg.allow_resample:
                raise SkiptoolError(f"{key} ({src.path}): sample rate {sr} Hz, but the feature config's is {rate} Hz; "
                                    f"resample the data, or set allow_resample: true to resample on the fly")
            if sr not in announced:
                announced.add(sr)
                yield ("notice", f"resample {sr} {rate}", f"resampling {sr} Hz -> {rate} Hz (first: {key}); "
                                 f"set allow_resample: false to make a rate mismatch an error")
            wav = resample(wav, sr, rate)
        batch_keys.append(key)
        batch_wavs.append(wav)
        batch_samples += len(wav)
        if len(batch_keys) >= UTTS_PER_BATCH or batch_samples >= SAMPLES_PER_BATCH:
            yield flush()
            batch_keys, batch_wavs, batch_samples = [], [], 0
    if batch_keys:
        yield flush()


def _job_process(job: Job, events) -> None:
    """Entry point of a job's process: forward events to the parent, report errors as messages."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the jobs
    try:
        for event in run_job(job):
            events.put(event)
        events.put(("finished", job.index))
    except SkiptoolError as e:
        events.put(("error", str(e)))
    except BaseException:  # a bug: hand the traceback to the parent
        events.put(("crash", f"job {job.index}:\n{traceback.format_exc()}"))


class _JobProcesses:
    """Jobs running in parallel processes, started at once; `events()` yields what they report.

    Processes are forked where the platform allows (instant start: the parent has already imported
    numpy, scipy and the numba kernels); each uses one thread (Job.threads).
    """

    def __init__(self, jobs: list[Job]):
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        ctx = mp.get_context(method)
        self.queue = ctx.Queue()
        self.procs = {}
        for job in jobs:
            self.procs[job.index] = ctx.Process(target=_job_process, args=(job, self.queue), daemon=True)
        for proc in self.procs.values():
            proc.start()

    def events(self) -> Iterator[tuple]:
        running = set(self.procs)
        try:
            while running:
                try:
                    event = self.queue.get(timeout=1.0)
                except queue_lib.Empty:
                    dead = [i for i in running if not self.procs[i].is_alive()]
                    if dead:
                        raise RuntimeError(f"feature job {dead[0]} died (exit code {self.procs[dead[0]].exitcode}) "
                                           f"without a message; rerun the command to resume")
                    continue
                if event[0] == "finished":
                    running.discard(event[1])
                elif event[0] == "error":
                    raise SkiptoolError(event[1])
                elif event[0] == "crash":
                    raise RuntimeError(f"feature extraction failed in {event[1]}")
                else:
                    yield event
        finally:
            self.stop()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.is_alive():
                proc.terminate()
        for proc in self.procs.values():
            proc.join(timeout=10)


# --------------------------------------------------------------------------------------- driver

@dataclass
class FeatsResult:
    out_dir: Path
    feat_type: str
    num_utts: int
    num_frames: int
    feat_dim: int
    skipped: dict[str, str] = field(default_factory=dict)
    jobs_resumed: int = 0
    already_done: bool = False


def is_complete(out_dir: str | os.PathLike) -> bool:
    """True when OUT_DIR holds a finished feature dir."""
    return is_done(out_dir) and (Path(out_dir) / "feats.scp").is_file()


def extract_features(data_dir: str | os.PathLike, out_dir: str | os.PathLike, feat_type: str,
                     conf: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None, *,
                     nj: int = 1, cmvn: str = "none", cmvn_stats: str | os.PathLike | None = None,
                     cmvn_norm_vars: bool = True, overwrite: bool = False, quiet: bool | None = None,
                     notify: Callable[[str], None] = default_notify) -> FeatsResult:
    """Extract `feat_type` features of every utterance in DATA_DIR into OUT_DIR (see the module doc)."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    cfg = load_feats_config(feat_type, conf, overrides)
    if nj < 1:
        raise SkiptoolError(f"--nj must be >= 1, got {nj}")
    if cmvn not in CMVN_TYPES:
        raise SkiptoolError(f"--cmvn must be one of {', '.join(CMVN_TYPES)}, got '{cmvn}'")
    if cmvn != "none" and feat_type == "image":
        raise SkiptoolError("--cmvn applies to speech features; images are already scaled to [0, 1]")
    if cmvn_stats is not None and cmvn != "global":
        raise SkiptoolError("--cmvn-stats gives global statistics; use it with --cmvn global")
    if cmvn_stats is not None and not Path(cmvn_stats).is_file():
        raise SkiptoolError(f"{cmvn_stats}: CMVN stats file not found; give the cmvn.ark of a feature dir "
                            f"made with --cmvn global (e.g. the training set's)")
    if not data_dir.is_dir():
        raise SkiptoolError(f"{data_dir}: data dir not found")
    if out_dir.resolve() == data_dir.resolve():
        raise SkiptoolError(f"{out_dir}: OUT_DIR must differ from DATA_DIR (its tables would be overwritten)")

    if out_dir.exists() and not out_dir.is_dir():
        raise SkiptoolError(f"{out_dir}: exists and is not a directory; choose another OUT_DIR")

    sources = read_sources(data_dir, feat_type)
    keys = sorted(sources)
    utt2spk = None
    if cmvn == "speaker":
        if not (data_dir / "utt2spk").is_file():
            raise SkiptoolError(f"{data_dir / 'utt2spk'}: file not found; --cmvn speaker needs utt2spk")
        utt2spk = read_table(data_dir / "utt2spk")
        missing = [k for k in keys if k not in utt2spk]
        if missing:
            raise SkiptoolError(f"{data_dir / 'utt2spk'}: no speaker for '{missing[0]}' ({len(missing)} utterances); "
                                f"run `skiptool data fix {data_dir}`")

    nj = min(nj, len(keys))
    state = {
        "type": feat_type, "config": to_dict(cfg), "nj": nj, "cmvn": cmvn, "cmvn_norm_vars": cmvn_norm_vars,
        "cmvn_stats": str(Path(cmvn_stats).resolve()) if cmvn_stats else None,
        "data_dir": str(data_dir.resolve()),
        "inputs": hashlib.sha1("\n".join(f"{k} {sources[k]}" for k in keys).encode()).hexdigest(),
    }
    jobs_dir = out_dir / "data"
    if is_complete(out_dir) and not overwrite:
        different = _differences(_read_state(jobs_dir / "state.yaml"), state)
        if different:
            raise SkiptoolError(f"{out_dir}: holds finished features made with other {', '.join(different)}; "
                                f"pass --overwrite to replace them, or choose another OUT_DIR")
        n = len(read_table(out_dir / "feats.scp"))
        notify(f"{out_dir}: features already complete ({n} utterances); left as is (pass --overwrite to redo)")
        return FeatsResult(out_dir, feat_type, n, 0, feature_dim(feat_type, cfg), already_done=True)
    _prepare_out_dir(out_dir, jobs_dir, state, overwrite, notify)

    name = "raw_feats" if cmvn != "none" else "feats"
    jobs = [Job(i + 1, feat_type, cfg, list(part), [sources[k] for k in part], str(jobs_dir.resolve()), name)
            for i, part in enumerate(np.array_split(np.array(keys, dtype=object), nj))]
    pending = [job for job in jobs if not is_done(jobs_dir, job.marker)]
    resumed = len(jobs) - len(pending)
    if resumed and pending:
        notify(f"{out_dir}: resuming: {resumed} of {len(jobs)} jobs already done")
    if pending:
        _run_jobs(pending, feat_type, quiet, notify)

    skipped: dict[str, str] = {}
    for job in jobs:
        skipped.update(read_table(job.path("skipped")))
    if len(skipped) == len(keys):
        raise SkiptoolError(f"{data_dir}: every utterance is shorter than one frame; check the audio and "
                            f"frame_length / min_duration in the config")
    if skipped:
        first = ", ".join(sorted(skipped)[:5])
        notify(f"skipped {len(skipped)} utterance(s) too short for one frame: {first}"
               f"{' ...' if len(skipped) > 5 else ''}; they are left out of {out_dir}")

    dim = feature_dim(feat_type, cfg)
    if cmvn != "none":
        _run_cmvn(jobs, out_dir, jobs_dir, cmvn, cmvn_stats, cmvn_norm_vars, utt2spk, dim, quiet)
        final_scps = [Path(jobs_dir) / f"feats.{job.index}.scp" for job in jobs]
    else:
        final_scps = [job.path("scp") for job in jobs]

    num_utts, num_frames = _finish(out_dir, data_dir, jobs, final_scps,
                                   _conf_yaml(feat_type, cfg, dim, cmvn, cmvn_norm_vars, cmvn_stats), cmvn != "none")
    return FeatsResult(out_dir, feat_type, num_utts, num_frames, dim, skipped, resumed)


def _finish(out_dir: Path, data_dir: Path, jobs: list[Job], final_scps: list[Path], conf_text: str,
            with_raw: bool) -> tuple[int, int]:
    """Write OUT_DIR's tables and conf.yaml, then feats.scp, then the .done marker; (utterances, frames)."""
    feats_scp: dict[str, str] = {}
    for scp in final_scps:
        feats_scp.update(read_table(scp))
    utt2num_frames: dict[str, str] = {}
    for job in jobs:
        utt2num_frames.update(read_table(job.path("utt2num_frames")))
    _copy_tables(data_dir, out_dir, set(feats_scp))
    write_table(out_dir / "utt2num_frames", utt2num_frames)
    atomic_write_text(out_dir / "conf.yaml", conf_text)
    if with_raw:
        raw: dict[str, str] = {}
        for job in jobs:
            raw.update(read_table(job.path("scp")))
        write_table(out_dir / "raw_feats.scp", raw)
    write_table(out_dir / "feats.scp", feats_scp)  # last: its presence means the features are all there
    mark_done(out_dir)
    return len(feats_scp), sum(int(v) for v in utt2num_frames.values())


def _read_state(path: Path) -> dict | None:
    try:
        state = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return None
    return state if isinstance(state, dict) else None


_STATE_NAMES = {"type": "feature type", "config": "feature config", "cmvn": "CMVN", "cmvn_norm_vars": "CMVN",
                "cmvn_stats": "CMVN stats", "data_dir": "data dir", "inputs": "inputs (wav.scp/img.scp)"}


def _differences(previous: dict | None, state: dict) -> list[str]:
    """What differs between a finished run's state and this one (the job count does not matter)."""
    if previous is None:
        return ["(unknown) settings"]
    names = [_STATE_NAMES[k] for k in _STATE_NAMES if previous.get(k) != state.get(k)]
    return sorted(set(names), key=names.index)


def _prepare_out_dir(out_dir: Path, jobs_dir: Path, state: dict, overwrite: bool, notify) -> None:
    """Start fresh, or resume an unfinished run of the same command; never clobber what we did not make."""
    state_file = jobs_dir / "state.yaml"
    ours = state_file.is_file() or is_done(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not ours and not overwrite:
        raise SkiptoolError(f"{out_dir}: exists and was not made by skiptool feats; choose another OUT_DIR "
                            f"or pass --overwrite")
    if overwrite:
        _remove_outputs(out_dir)
    elif state_file.is_file():
        if _read_state(state_file) != state:
            notify(f"{out_dir}: an unfinished run used other inputs or options; starting over")
            _remove_outputs(out_dir)
    else:
        _remove_outputs(out_dir)  # a finished dir with a lost state: nothing to resume from
    clear_done(out_dir)
    jobs_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(state_file, yaml.safe_dump(state, sort_keys=True))


def _remove_outputs(out_dir: Path) -> None:
    clear_done(out_dir)
    for name in _OUTPUTS:
        with contextlib.suppress(FileNotFoundError):
            (out_dir / name).unlink()
    shutil.rmtree(out_dir / "data", ignore_errors=True)


def _run_jobs(jobs: list[Job], feat_type: str, quiet: bool | None, notify) -> None:
    """Run the jobs (in this process when there is one), with one progress bar over all utterances."""
    announced: set[str] = set()
    total = sum(len(job.keys) for job in jobs)
    processes = _JobProcesses(jobs) if len(jobs) > 1 else None  # started before the progress bar's thread

    def utterances() -> Iterator[None]:
        for event in (processes.events() if processes else run_job(jobs[0])):
            if event[0] == "progress":
                yield from (None for _ in range(event[1]))
            elif event[0] == "notice" and event[1] not in announced:  # ("notice", dedup key, text)
                announced.add(event[1])
                notify(event[2])

    try:
        for _ in track(utterances(), total=total, description=f"{feat_type} features", quiet=quiet, unit="utt"):
            pass
    finally:
        if processes:
            processes.stop()


def _run_cmvn(jobs: list[Job], out_dir: Path, jobs_dir: Path, cmvn: str, cmvn_stats, norm_vars: bool,
              utt2spk: dict[str, str] | None, dim: int, quiet: bool | None) -> None:
    """Compute (or read) the stats once, then write the normalised copy of every job's features."""
    raw_scps = [job.path("scp") for job in jobs]
    if not is_done(jobs_dir, "cmvn_stats"):
        if cmvn_stats is not None:
            stats = cmvn_lib.check_stats(_load_mat(cmvn_stats), dim, str(cmvn_stats))
            kaldiio.save_mat(str(out_dir / "cmvn.ark"), stats)
        else:
            def all_feats() -> Iterator[tuple[str, np.ndarray]]:
                for scp in raw_scps:
                    yield from kaldiio.load_scp(str(scp)).items()

            items = track(all_feats(), total=sum(len(j.keys) for j in jobs), description="CMVN stats",
                          quiet=quiet, unit="utt")
            if cmvn == "global":
                kaldiio.save_mat(str(out_dir / "cmvn.ark"), cmvn_lib.global_stats(mat for _, mat in items))
            else:
                per_speaker = cmvn_lib.speaker_stats(items, utt2spk)
                kaldiio.save_ark(str(jobs_dir / "cmvn_spk.ark"), {spk: per_speaker[spk] for spk in sorted(per_speaker)},
                                 scp=str(out_dir / "cmvn.scp"))
        mark_done(jobs_dir, "cmvn_stats")
    if cmvn == "global":
        stats_of = {None: cmvn_lib.check_stats(_load_mat(out_dir / "cmvn.ark"), dim, str(out_dir / "cmvn.ark"))}
    else:
        stats_of = {spk: np.asarray(mat) for spk, mat in kaldiio.load_scp(str(out_dir / "cmvn.scp")).items()}

    pending = [job for job in jobs if not is_done(jobs_dir, f"feats.{job.index}")]

    def normalise() -> Iterator[None]:
        for job in pending:
            ark_path, scp_path = jobs_dir / f"feats.{job.index}.ark", jobs_dir / f"feats.{job.index}.scp"
            with open(ark_path, "wb") as ark, open(scp_path, "w", encoding="utf-8") as scp:
                for key, mat in kaldiio.load_scp(str(job.path("scp"))).items():
                    stats = stats_of[None] if cmvn == "global" else stats_of[utt2spk[key]]
                    kaldiio.save_ark(ark, {key: cmvn_lib.apply_cmvn(mat, stats, norm_vars)}, scp=scp)
                    yield None
            mark_done(jobs_dir, f"feats.{job.index}")

    for _ in track(normalise(), total=sum(len(j.keys) for j in pending), description="apply CMVN",
                   quiet=quiet, unit="utt"):
        pass


def _load_mat(path) -> np.ndarray:
    try:
        return np.asarray(kaldiio.load_mat(str(path)))
    except Exception as e:  # kaldiio raises assorted errors for a file that is not a Kaldi matrix
        raise SkiptoolError(f"{path}: not a Kaldi matrix ({type(e).__name__}: {e}); "
                            f"give a cmvn.ark written by skiptool feats --cmvn global") from None


def _copy_tables(data_dir: Path, out_dir: Path, keys: set[str]) -> None:
    for name in COPIED_TABLES:
        if (data_dir / name).is_file():
            write_table(out_dir / name, {k: v for k, v in read_table(data_dir / name).items() if k in keys})
    if (data_dir / "wav.scp").is_file():
        wav_scp = read_table(data_dir / "wav.scp")
        if (data_dir / "segments").is_file():
            recordings = {v.split()[0] for k, v in read_table(data_dir / "segments").items() if k in keys}
        else:
            recordings = keys
        write_table(out_dir / "wav.scp", {k: v for k, v in wav_scp.items() if k in recordings})
    if (out_dir / "utt2spk").is_file():
        write_table(out_dir / "spk2utt", utt2spk_to_spk2utt(read_table(out_dir / "utt2spk")))


def _conf_yaml(feat_type: str, cfg, dim: int, cmvn: str, norm_vars: bool, cmvn_stats) -> str:
    data = {"type": feat_type, **to_dict(cfg), "feat_dim": dim, "cmvn": cmvn}
    if cmvn != "none":
        data["cmvn_norm_vars"] = norm_vars
    if cmvn_stats is not None:
        data["cmvn_stats"] = str(Path(cmvn_stats).resolve())
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def config_yaml(feat_type: str, cfg) -> str:
    """`type:` and the resolved config, one key per line (for --print-config)."""
    return yaml.safe_dump({"type": feat_type, **to_dict(cfg)}, sort_keys=False, default_flow_style=False)


__all__ = ["extract_features", "load_feats_config", "read_feats_conf", "FeatsInfo", "FeatsResult", "FEAT_TYPES",
           "CMVN_TYPES", "CONFIG_CLASSES", "config_yaml", "is_complete", "run_job", "Job", "Source", "read_sources",
           "FbankConfig", "MfccConfig", "TacotronFeatsConfig", "ImageFeatsConfig"]
