"""Kaldi-style data directories: two-column text tables keyed by utterance (or speaker) id.

Files (DESIGN.md): wav.scp, text, utt2spk, spk2utt, segments, feats.scp, utt2num_frames,
utt2dur, spk2gender (m/f, as Kaldi), and skiptool's img.scp, utt2label, utt2emo. Every table is sorted by key in the C
locale (byte order; for UTF-8 text the same as Python's code-point order) with unique keys.

    dd = DataDir.load("data/fsdd/train")      # strict: any table-level problem is a SkiptoolError
    dd.utts, dd.speakers, dd.wav_paths(), dd.durations()
    dd.subset(dd.utts[:10]).write("data/fsdd/train10")

`validate_data_dir`, `fix_data_dir`, `data_info`, `subset_data_dir`, `split_data_dir` and
`combine_data_dirs` are the library side of `skiptool data ...` and behave like Kaldi's
utils/validate_data_dir.sh, fix_data_dir.sh, subset_data_dir.sh, split_data.sh, combine_data.sh.
As in Kaldi, when `segments` exists, wav.scp is keyed by recording id and every other table by
utterance id; relative paths in wav.scp/img.scp/feats.scp are relative to the working directory.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import atomic_write, check_writable
from skiptool.utils.progress import track

# Tables keyed by utterance id, in the order `data validate` reports them.
UTT_TABLES = ("wav.scp", "text", "utt2spk", "segments", "feats.scp", "utt2num_frames",
              "utt2dur", "img.scp", "utt2label", "utt2emo")
SPK_TABLES = ("spk2utt", "spk2gender")
KNOWN_TABLES = UTT_TABLES + SPK_TABLES

_WHITESPACE = re.compile(r"\s+")


# ----------------------------------------------------------------------------------------------
# Plain tables


def _split_row(text: str) -> tuple[str, str]:
    """'key value with spaces' -> ('key', 'value with spaces'); Kaldi splits on any whitespace."""
    parts = _WHITESPACE.split(text.strip(), maxsplit=1)
    return parts[0], (parts[1].strip() if len(parts) > 1 else "")


def read_table_lines(path: str | os.PathLike) -> list[tuple[int, str, str]]:
    """All (line number, key, value) rows of a table, duplicates and order kept as in the file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SkiptoolError(f"{path}: file not found") from None
    except OSError as e:
        raise SkiptoolError(f"{path}: cannot read ({e.strerror})") from None
    rows, bad_lines = _parse_table_bytes(raw)
    if bad_lines:
        raise SkiptoolError(f"{path}: line {bad_lines[0]} is not valid UTF-8; re-encode the file as UTF-8")
    return rows


def _parse_table_bytes(raw: bytes) -> tuple[list[tuple[int, str, str]], list[int]]:
    """Rows of the lines that decode, and the numbers of the lines that are not UTF-8."""
    rows, bad_lines = [], []
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark would glue itself to the first key
        raw = raw[3:]
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            bad_lines.append(lineno)
            continue
        if text.strip():
            rows.append((lineno, *_split_row(text)))
    return rows, bad_lines


def read_table(path: str | os.PathLike) -> dict[str, str]:
    """Read a table into {key: value}; a duplicate key is an error naming the file and key."""
    table: dict[str, str] = {}
    for lineno, key, value in read_table_lines(path):
        if key in table:
            raise SkiptoolError(f"{path}: duplicate key '{key}' (line {lineno}); run `skiptool data fix`")
        table[key] = value
    return table


def write_table(path: str | os.PathLike, table: Mapping[str, object]) -> None:
    """Atomically write {key: value} sorted by key in C-locale order."""
    with atomic_write(path) as f:
        for key in sorted(table):
            value = table[key]
            if isinstance(value, (list, tuple)):
                value = " ".join(map(str, value))
            f.write(f"{key} {value}\n" if value != "" else f"{key}\n")


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return spk2utt


def keys_sorted(keys: Iterable[str]) -> bool:
    keys = list(keys)
    return all(a < b for a, b in zip(keys, keys[1:]))


def is_pipe(value: str) -> bool:
    """A Kaldi rxfilename that is a shell command (`sox x.flac -t wav - |`)."""
    return value.rstrip().endswith("|")


def _pipe_message(table: str, key: str) -> str:
    return (f"{table}: '{key}' is a pipe command; skiptool does not run shell pipes: convert the audio "
            "to files (e.g. with sox or ffmpeg) and list their paths")


# ----------------------------------------------------------------------------------------------
# Problems found by validation


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a data dir: the table, the key (None for the whole file) and what."""

    file: str
    key: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}" if self.key is not None else f"{self.file}: {self.message}"


def _scan(path: Path, name: str) -> tuple[list[tuple[int, str, str]], list[Problem]]:
    """Read one table leniently: the rows that parse, and a Problem for each bad line."""
    try:
        raw = (path / name).read_bytes()
    except OSError as e:
        return [], [Problem(name, None, f"cannot read ({e.strerror})")]
    rows, bad_lines = _parse_table_bytes(raw)
    problems = [Problem(name, f"line {n}", "not valid UTF-8; re-encode the file as UTF-8") for n in bad_lines]
    if raw.startswith(b"\xef\xbb\xbf"):
        problems.append(Problem(name, None, "starts with a UTF-8 byte-order mark; remove it"))
    return rows, problems


def _check_rows(name: str, rows: list[tuple[int, str, str]]) -> tuple[dict[str, str], list[Problem]]:
    """Duplicates, sort order and values of one table; returns {key: first value} and the problems."""
    problems: list[Problem] = []
    table: dict[str, str] = {}
    first_line: dict[str, int] = {}
    previous = None
    for lineno, key, value in rows:
        if key in table:
            problems.append(Problem(name, key, f"duplicate key (lines {first_line[key]} and {lineno})"))
            continue
        if previous is not None and key < previous:
            problems.append(Problem(name, key, f"not sorted: line {lineno} comes after '{previous}' "
                                               "(C-locale order; run `skiptool data fix`)"))
        previous = key
        table[key] = value
        first_line[key] = lineno
        problems.extend(_check_value(name, key, value))
    return table, problems


def _check_value(name: str, key: str, value: str) -> list[Problem]:
    """What is wrong with one row's value, by table (spk2utt is checked against utt2spk instead)."""
    if name == "text":
        return [Problem(name, key, "empty transcription")] if not value else []
    if not value:
        return [Problem(name, key, "no value after the key")]
    if name in ("wav.scp", "feats.scp", "img.scp") and is_pipe(value):
        return [Problem(name, key, "is a pipe command; skiptool does not run shell pipes: convert the "
                                   "audio to files and list their paths")]
    if name == "segments":
        fields = value.split()
        try:
            start, end = float(fields[1]), float(fields[2])
        except (IndexError, ValueError):
            return [Problem(name, key, f"'{value}' is not '<recording> <start> <end>' in seconds")]
        if len(fields) != 3 or not (0 <= start < end):
            return [Problem(name, key, f"'{value}': need 0 <= start < end")]
    elif name == "utt2dur":
        try:
            ok = float(value) > 0 and math.isfinite(float(value))
        except ValueError:
            ok = False
        if not ok:
            return [Problem(name, key, f"duration '{value}' is not a positive number of seconds")]
    elif name == "utt2num_frames":
        if not value.isdigit() or int(value) <= 0:
            return [Problem(name, key, f"'{value}' is not a positive frame count")]
    elif name == "spk2gender" and value not in ("m", "f"):
        return [Problem(name, key, f"gender '{value}' must be m or f (as in Kaldi)")]
    elif name in ("utt2spk", "utt2label", "utt2emo") and len(value.split()) != 1:
        return [Problem(name, key, f"'{value}' has more than one field")]
    return []


def utterance_tables(present: Iterable[str]) -> list[str]:
    """The tables keyed by utterance id: wav.scp is keyed by recording when segments exist."""
    present = set(present)
    return [t for t in UTT_TABLES if t in present and not (t == "wav.scp" and "segments" in present)]


def _check_tables(tables: Mapping[str, Mapping[str, str]]) -> list[Problem]:
    """Cross-table checks on parsed tables: key sets, speakers, segments (no file opening)."""
    problems: list[Problem] = []
    utt_names = utterance_tables(tables)
    if not utt_names:
        names = ", ".join(n for n in UTT_TABLES if n != "segments")
        return [Problem("-", None, f"no utterance table found (expected at least one of {names})")]
    all_utts = set().union(*(tables[n].keys() for n in utt_names))
    for name in utt_names:
        missing = sorted(all_utts - tables[name].keys())
        for utt in missing:
            holders = [n for n in utt_names if utt in tables[n]]
            problems.append(Problem(name, utt, f"missing (present in {', '.join(holders)})"))

    if "segments" in tables and "wav.scp" in tables:
        for utt, value in tables["segments"].items():
            rec = value.split()[0] if value else ""
            if rec and rec not in tables["wav.scp"]:
                problems.append(Problem("segments", utt, f"recording '{rec}' is not in wav.scp"))

    utt2spk, spk2utt = tables.get("utt2spk"), tables.get("spk2utt")
    if utt2spk is not None and spk2utt is None:
        problems.append(Problem("spk2utt", None, "missing while utt2spk exists; run `skiptool data fix`"))
    if spk2utt is not None and utt2spk is None:
        problems.append(Problem("utt2spk", None, "missing while spk2utt exists; run `skiptool data fix`"))
    if utt2spk is not None and spk2utt is not None:
        problems.extend(_check_speakers(utt2spk, spk2utt))
    if utt2spk is not None:
        problems.extend(_check_speaker_prefixes(utt2spk))
    if "spk2gender" in tables:
        if utt2spk is None:
            problems.append(Problem("utt2spk", None, "missing while spk2gender exists"))
        else:
            speakers = set(utt2spk.values())
            for spk in sorted(speakers - tables["spk2gender"].keys()):
                problems.append(Problem("spk2gender", spk, "speaker in utt2spk has no gender"))
            for spk in sorted(tables["spk2gender"].keys() - speakers):
                problems.append(Problem("spk2gender", spk, "not a speaker in utt2spk"))
    return problems


def _check_speakers(utt2spk: Mapping[str, str], spk2utt: Mapping[str, str]) -> list[Problem]:
    """spk2utt must list exactly utt2spk's utterances under their speakers, in sorted order."""
    problems = []
    listed: dict[str, str] = {}
    for spk, value in spk2utt.items():
        utts = value.split()
        if utts != sorted(utts):
            problems.append(Problem("spk2utt", spk, "utterance list is not sorted"))
        for utt in utts:
            if utt in listed:
                problems.append(Problem("spk2utt", spk, f"'{utt}' is also listed under speaker '{listed[utt]}'"))
                continue
            listed[utt] = spk
            if utt not in utt2spk:
                problems.append(Problem("spk2utt", spk, f"lists '{utt}', which is not in utt2spk"))
            elif utt2spk[utt] != spk:
                problems.append(Problem("spk2utt", spk, f"lists '{utt}', but utt2spk gives its speaker as "
                                                        f"'{utt2spk[utt]}'"))
    for utt, spk in utt2spk.items():
        if utt not in listed:
            problems.append(Problem("utt2spk", utt, f"speaker '{spk}' does not list it in spk2utt"))
    return problems


def _check_speaker_prefixes(utt2spk: Mapping[str, str]) -> list[Problem]:
    """Kaldi needs utt2spk sorted by utterance to also be sorted by speaker (speaker-id prefixes)."""
    problems = []
    seen: set[str] = set()
    previous = None
    for utt in sorted(utt2spk):
        spk = utt2spk[utt]
        if spk != previous and spk in seen:
            problems.append(Problem("utt2spk", utt, f"speaker '{spk}''s utterances are not contiguous when "
                                                    "sorted by utterance id; make speaker ids prefixes of "
                                                    "utterance ids"))
        seen.add(spk)
        previous = spk
    return problems


def _resolve(value: str) -> Path:
    return Path(value).expanduser()


def _check_files(tables: Mapping[str, Mapping[str, str]], quiet: bool | None = None) -> list[Problem]:
    """Open every referenced file: wavs with soundfile, images with PIL, features with kaldiio."""
    import soundfile as sf

    problems: list[Problem] = []
    for key, value in track(sorted(tables.get("wav.scp", {}).items()), description="checking wav.scp",
                            quiet=quiet, unit="file"):
        if not value or is_pipe(value):
            continue
        path = _resolve(value)
        if not path.is_file():
            problems.append(Problem("wav.scp", key, f"file not found: {value}"))
            continue
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            problems.append(Problem("wav.scp", key, f"cannot open as audio ({_short(e)}): {value}"))
            continue
        if info.frames == 0:
            problems.append(Problem("wav.scp", key, f"empty audio (0 samples): {value}"))

    if "img.scp" in tables:
        from PIL import Image, UnidentifiedImageError

        for key, value in track(sorted(tables["img.scp"].items()), description="checking img.scp",
                                quiet=quiet, unit="file"):
            if not value or is_pipe(value):
                continue
            path = _resolve(value)
            if not path.is_file():
                problems.append(Problem("img.scp", key, f"file not found: {value}"))
                continue
            try:
                with Image.open(path) as image:
                    image.verify()
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
                problems.append(Problem("img.scp", key, f"cannot open as an image ({_short(e)}): {value}"))

    if "feats.scp" in tables:
        problems.extend(_check_feats(tables, quiet))
    return problems


def _check_feats(tables: Mapping[str, Mapping[str, str]], quiet: bool | None) -> list[Problem]:
    import kaldiio

    problems: list[Problem] = []
    num_frames = tables.get("utt2num_frames", {})
    dims: Counter[int] = Counter()
    dim_of: dict[str, int] = {}
    open_files: dict = {}
    try:
        for key, value in track(sorted(tables["feats.scp"].items()), description="checking feats.scp",
                                quiet=quiet, unit="matrix"):
            if not value or is_pipe(value):
                continue
            ark = value.rsplit(":", 1)[0] if re.search(r":\d+(\[.*\])?$", value) else value
            if not _resolve(ark).is_file():
                problems.append(Problem("feats.scp", key, f"file not found: {ark}"))
                continue
            try:
                mat = np.asarray(kaldiio.load_mat(value, fd_dict=open_files))
            except Exception as e:  # kaldiio raises many types on a corrupt ark: report, do not crash
                problems.append(Problem("feats.scp", key, f"cannot read the matrix ({_short(e)}): {value}"))
                continue
            if mat.ndim == 2:
                dims[mat.shape[1]] += 1
                dim_of[key] = mat.shape[1]
            expected = num_frames.get(key)
            if expected and expected.isdigit() and int(expected) != len(mat):
                problems.append(Problem("utt2num_frames", key, f"says {expected} frames, feats.scp has {len(mat)}"))
    finally:
        for f in open_files.values():
            f.close()
    if len(dims) > 1:
        common = dims.most_common(1)[0][0]
        for key, dim in sorted(dim_of.items()):
            if dim != common:
                problems.append(Problem("feats.scp", key, f"dimension {dim}, most matrices have {common}"))
    return problems


def _short(e: BaseException) -> str:
    return str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__


def _describe(path: Path, problem: Problem) -> str:
    """A problem as one line naming the file's full path."""
    where = path if problem.file == "-" else path / problem.file
    return f"{where}: {problem.key}: {problem.message}" if problem.key is not None else f"{where}: {problem.message}"


def _check_dir(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise SkiptoolError(f"{path}: data dir not found; give a directory holding wav.scp, text, utt2spk, ...")
    return path


def _read_and_check(path: Path) -> tuple[dict[str, dict[str, str]], list[Problem]]:
    """Every known table present in `path`, and all table-level problems (no file opening)."""
    tables: dict[str, dict[str, str]] = {}
    problems: list[Problem] = []
    for name in KNOWN_TABLES:
        if (path / name).is_file():
            rows, read_problems = _scan(path, name)
            tables[name], row_problems = _check_rows(name, rows)
            problems += read_problems + row_problems
    return tables, problems + _check_tables(tables)


def validate_data_dir(path: str | os.PathLike, check_files: bool = True,
                      quiet: bool | None = None) -> list[Problem]:
    """Every problem in a data dir, as Kaldi's validate_data_dir.sh checks, plus opening referenced files."""
    tables, problems = _read_and_check(_check_dir(path))
    if check_files:
        problems += _check_files(tables, quiet)
    order = {name: i for i, name in enumerate(("-",) + KNOWN_TABLES)}
    return sorted(problems, key=lambda p: order.get(p.file, len(order)))  # stable: keys keep file order


# ----------------------------------------------------------------------------------------------
# The typed data dir


@dataclass
class DataDir:
    """A Kaldi-style data dir in memory: {table file name: {key: value}}; spk2utt is derived from utt2spk."""

    tables: dict[str, dict[str, str]] = field(default_factory=dict)
    path: Path | None = None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "DataDir":
        """Read every known table present. Strict: any table-level problem (duplicate or unsorted
        keys, key sets that differ, spk2utt disagreeing with utt2spk, a pipe in wav.scp, empty text,
        bad UTF-8) is a SkiptoolError naming the file and key. Files are not opened here."""
        path = _check_dir(path)
        tables, problems = _read_and_check(path)
        if problems:
            more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
            raise SkiptoolError(f"{_describe(path, problems[0])}{more}; "
                                f"run `skiptool data validate {path}` for the full list")
        tables.pop("spk2utt", None)
        return cls(tables, path)

    # -- contents

    def __contains__(self, name: str) -> bool:
        return name in self.tables

    def table(self, name: str) -> dict[str, str]:
        if name == "spk2utt":
            return {spk: " ".join(utts) for spk, utts in self.spk2utt().items()}
        if name not in self.tables:
            where = self.path if self.path else "data dir"
            raise SkiptoolError(f"{where}: has no {name}; prepare it first (see `skiptool prep --help`)")
        return self.tables[name]

    @property
    def utts(self) -> list[str]:
        """Utterance ids, sorted (C locale)."""
        names = utterance_tables(self.tables)
        return sorted(self.tables[names[0]]) if names else []

    def __len__(self) -> int:
        return len(self.utts)

    @property
    def speakers(self) -> list[str]:
        return sorted(set(self.tables.get("utt2spk", {}).values()))

    def genders(self) -> dict[str, str]:
        """{speaker: 'm' or 'f'} from spk2gender (empty when the dir has none)."""
        return dict(self.tables.get("spk2gender", {}))

    def spk2utt(self) -> dict[str, list[str]]:
        return utt2spk_to_spk2utt(self.tables.get("utt2spk", {}))

    def wav_paths(self) -> dict[str, Path]:
        """{wav.scp key: path}; keys are recording ids when `segments` exists. Pipes are an error."""
        paths = {}
        for key, value in self.table("wav.scp").items():
            if is_pipe(value):
                raise SkiptoolError(_pipe_message(f"{self.path / 'wav.scp' if self.path else 'wav.scp'}", key))
            paths[key] = _resolve(value)
        return paths

    def image_paths(self) -> dict[str, Path]:
        return {key: _resolve(value) for key, value in self.table("img.scp").items()}

    def labels(self) -> dict[str, str]:
        return dict(self.tables.get("utt2label", {}))

    def durations(self) -> dict[str, float]:
        """Seconds per utterance: utt2dur, else segments, else the wav headers."""
        if "utt2dur" in self.tables:
            return {k: float(v) for k, v in self.tables["utt2dur"].items()}
        if "segments" in self.tables:
            return {k: float(v.split()[2]) - float(v.split()[1]) for k, v in self.tables["segments"].items()}
        import soundfile as sf

        durations = {}
        for key, path in self.wav_paths().items():
            try:
                info = sf.info(str(path))
            except (sf.LibsndfileError, RuntimeError, OSError) as e:
                raise SkiptoolError(f"wav.scp: {key}: cannot open {path} ({_short(e)}); "
                                    "run `skiptool data validate`") from None
            durations[key] = info.frames / info.samplerate
        return durations

    # -- derived data dirs

    def subset(self, utts: Iterable[str]) -> "DataDir":
        """The data dir restricted to `utts` (ids not present are ignored)."""
        keep = set(utts)
        tables = {}
        for name, table in self.tables.items():
            if (name == "wav.scp" and "segments" in self.tables) or name in SPK_TABLES:
                continue
            tables[name] = {k: v for k, v in table.items() if k in keep}
        speakers = set(tables.get("utt2spk", {}).values())
        for name in SPK_TABLES:
            if name in self.tables:
                tables[name] = {k: v for k, v in self.tables[name].items() if k in speakers}
        if "segments" in self.tables and "wav.scp" in self.tables:
            recordings = {v.split()[0] for v in tables["segments"].values()}
            tables["wav.scp"] = {k: v for k, v in self.tables["wav.scp"].items() if k in recordings}
        return DataDir(tables)

    def write(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write every table (and spk2utt) into `path`, all at once: the dir appears only when complete."""
        path = Path(path)
        check_writable(path, overwrite, "data dir")
        tmp = make_temp_dir(path)
        try:
            for name, table in self.tables.items():
                write_table(tmp / name, table)
            if "utt2spk" in self.tables:
                write_table(tmp / "spk2utt", self.spk2utt())
            replace_dir(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.path = path
        return path


def make_temp_dir(dest: str | os.PathLike) -> Path:
    """A new empty dir beside `dest` (same file system, so `replace_dir` can rename it into place).
    Made with mkdir rather than tempfile.mkdtemp, whose 0700 mode would hide the result from others."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    return tmp


def replace_dir(new: Path, dest: Path) -> None:
    """Move the finished dir `new` to `dest`, replacing what was there (renames, so never half-written)."""
    if dest.exists() or dest.is_symlink():
        old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(dest, old)
        os.replace(new, dest)
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
    else:
        os.replace(new, dest)


# ----------------------------------------------------------------------------------------------
# fix


@dataclass
class FixReport:
    kept: int
    total: int
    backup: Path
    notes: list[str]


def fix_data_dir(path: str | os.PathLike) -> FixReport:
    """Like Kaldi's fix_data_dir.sh: sort, drop duplicate keys (keeping the first), keep only the
    utterances present in every utterance table (and with non-empty text), regenerate spk2utt.
    The original tables are copied to DATA_DIR/.backup/<time>/ first."""
    path = _check_dir(path)
    raw: dict[str, list[tuple[int, str, str]]] = {}
    for name in KNOWN_TABLES:
        if (path / name).is_file():
            rows, problems = _scan(path, name)
            bad = [p for p in problems if p.key is not None]
            if bad:
                raise SkiptoolError(f"{path / name}: {bad[0].key} is not valid UTF-8; "
                                    "fix cannot guess the text: re-encode the file as UTF-8")
            raw[name] = rows
    if not utterance_tables(raw) and "spk2utt" not in raw:
        raise SkiptoolError(f"{path}: no data-dir tables to fix (wav.scp, text, utt2spk, ...)")

    notes: list[str] = []
    tables: dict[str, dict[str, str]] = {}
    for name, rows in raw.items():
        table: dict[str, str] = {}
        for lineno, key, value in rows:
            if key in table:
                notes.append(f"{name}: dropped duplicate key '{key}' (line {lineno})")
            else:
                table[key] = value
        tables[name] = table

    if "spk2utt" in tables and "utt2spk" not in tables:
        tables["utt2spk"] = {utt: spk for spk, v in tables["spk2utt"].items() for utt in v.split()}
        notes.append("utt2spk: created from spk2utt")
    tables.pop("spk2utt", None)

    utt_names = utterance_tables(tables)
    all_utts = set().union(*(tables[n].keys() for n in utt_names))
    keep = set(all_utts)
    for name in utt_names:
        keep &= tables[name].keys()
        # Drop unusable values (empty text, malformed segments, ...), but keep pipes: dropping them
        # could empty a Kaldi dir; validate keeps reporting them.
        keep -= {k for k, v in tables[name].items() if not is_pipe(v) and _check_value(name, k, v)}
    if "segments" in tables:
        recordings = tables.get("wav.scp", {})
        keep = {u for u in keep if tables["segments"][u].split()[0] in recordings or "wav.scp" not in tables}
    for name in utt_names:
        dropped = sorted(tables[name].keys() - keep)
        if dropped:
            shown = ", ".join(dropped[:10]) + (f", ... ({len(dropped) - 10} more)" if len(dropped) > 10 else "")
            notes.append(f"{name}: dropped {len(dropped)} (not in every table, or an empty/invalid value): {shown}")

    if "spk2gender" in tables:
        bad = sorted(k for k, v in tables["spk2gender"].items() if _check_value("spk2gender", k, v))
        if bad:
            notes.append(f"spk2gender: dropped {len(bad)} with a gender other than m/f: {', '.join(bad[:10])}")
            tables["spk2gender"] = {k: v for k, v in tables["spk2gender"].items() if k not in bad}
    fixed = DataDir(tables).subset(keep)
    backup = _backup(path, raw)
    for name, table in fixed.tables.items():
        write_table(path / name, table)
    if "utt2spk" in fixed.tables:
        write_table(path / "spk2utt", fixed.spk2utt())
    unsorted = _check_speaker_prefixes(fixed.tables.get("utt2spk", {}))
    if unsorted:
        notes.append(f"utt2spk: {len(unsorted)} utterances break speaker order (e.g. {unsorted[0].key}); "
                     "fix cannot rename them: make speaker ids prefixes of utterance ids")
    return FixReport(kept=len(keep), total=len(all_utts), backup=backup, notes=notes)


def _backup(path: Path, tables: Iterable[str]) -> Path:
    """Copy the tables into a new DATA_DIR/.backup/<YYYYmmdd-HHMMSS>[-N]/ (never over an older backup)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root = path / ".backup"
    root.mkdir(exist_ok=True)
    for n in range(1000):
        dest = root / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            dest.mkdir()
            break
        except FileExistsError:
            continue
    else:
        raise SkiptoolError(f"{root}: cannot create a new backup folder; tidy it up and rerun")
    for name in tables:
        shutil.copy2(path / name, dest / name)
    return dest


# ----------------------------------------------------------------------------------------------
# info


@dataclass
class DataInfo:
    """What `skiptool data info` prints."""

    path: Path
    tables: list[str]
    num_utts: int
    num_speakers: int | None = None
    utts_per_speaker: dict[str, int] = field(default_factory=dict)
    durations: list[float] | None = None  # seconds, None when the dir has no audio
    duration_source: str = ""
    sample_rates: dict[int, int] = field(default_factory=dict)  # rate -> count, when headers were read
    genders: dict[str, int] = field(default_factory=dict)  # speakers per gender
    labels: dict[str, int] = field(default_factory=dict)
    emotions: dict[str, int] = field(default_factory=dict)
    feat_dims: dict[int, int] = field(default_factory=dict)
    feat_frames: int | None = None
    num_images: int | None = None

    def lines(self) -> list[tuple[str, str]]:
        rows = [("data dir", str(self.path)), ("tables", ", ".join(self.tables)),
                ("utterances", str(self.num_utts))]
        if self.num_speakers is not None:
            counts = sorted(self.utts_per_speaker.values())
            rows.append(("speakers", f"{self.num_speakers} ({counts[0]}-{counts[-1]} utterances each)"
                         if counts else "0"))
        if self.genders:
            rows.append(("genders", ", ".join(f"{g} {n}" for g, n in sorted(self.genders.items()))))
        if self.durations:
            d = np.asarray(self.durations)
            total = float(d.sum())
            rows.append(("duration", f"{total:.1f} s total ({_hms(total)}); per utterance min {d.min():.2f} s, "
                                     f"mean {d.mean():.2f} s, max {d.max():.2f} s ({self.duration_source})"))
        if self.sample_rates:
            rows.append(("sample rates", ", ".join(f"{r} Hz ({n})" for r, n in sorted(self.sample_rates.items()))))
        if self.labels:
            rows.append(("labels", _distribution(self.labels)))
        if self.emotions:
            rows.append(("emotions", _distribution(self.emotions)))
        if self.feat_dims:
            dims = ", ".join(f"{d} ({n})" for d, n in sorted(self.feat_dims.items()))
            frames = f"; {self.feat_frames} frames in all" if self.feat_frames is not None else ""
            rows.append(("features", f"dim {dims}{frames}"))
        if self.num_images is not None:
            rows.append(("images", str(self.num_images)))
        return rows


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _distribution(counts: Mapping[str, int]) -> str:
    def order(label: str):
        return (0, int(label), "") if label.lstrip("-").isdigit() else (1, 0, label)

    return f"{len(counts)} classes: " + ", ".join(f"{k} {counts[k]}" for k in sorted(counts, key=order))


def data_info(path: str | os.PathLike, quiet: bool | None = None) -> DataInfo:
    """Counts, durations, speakers, labels, emotions and feature dims of a (valid) data dir."""
    dd = DataDir.load(path)
    info = DataInfo(path=Path(path), tables=sorted(set(dd.tables) | ({"spk2utt"} if "utt2spk" in dd else set())),
                    num_utts=len(dd))
    if "utt2spk" in dd:
        info.utts_per_speaker = {spk: len(u) for spk, u in dd.spk2utt().items()}
        info.num_speakers = len(info.utts_per_speaker)
    if "utt2dur" in dd or "segments" in dd:
        info.durations = list(dd.durations().values())
        info.duration_source = "utt2dur" if "utt2dur" in dd else "segments"
    elif "wav.scp" in dd:
        import soundfile as sf

        durations = []
        for key, wav in track(sorted(dd.wav_paths().items()), description="reading wav headers",
                              quiet=quiet, unit="file"):
            try:
                header = sf.info(str(wav))
            except (sf.LibsndfileError, RuntimeError, OSError) as e:
                raise SkiptoolError(f"{dd.path / 'wav.scp'}: {key}: cannot open {wav} ({_short(e)}); "
                                    "run `skiptool data validate`") from None
            durations.append(header.frames / header.samplerate)
            info.sample_rates[header.samplerate] = info.sample_rates.get(header.samplerate, 0) + 1
        info.durations, info.duration_source = durations, "wav headers"
    info.genders = dict(Counter(dd.genders().values()))
    info.labels = dict(Counter(dd.tables.get("utt2label", {}).values()))
    info.emotions = dict(Counter(dd.tables.get("utt2emo", {}).values()))
    if "utt2num_frames" in dd:
        info.feat_frames = sum(int(v) for v in dd.tables["utt2num_frames"].values())
    if "feats.scp" in dd:
        info.feat_dims = _feat_dims(dd)
    if "img.scp" in dd:
        info.num_images = len(dd.tables["img.scp"])
    return info


def _feat_dims(dd: DataDir) -> dict[int, int]:
    """Feature dimension of every matrix (kaldiio reads only what it must)."""
    import kaldiio

    dims: Counter[int] = Counter()
    open_files: dict = {}
    try:
        for key, value in dd.tables["feats.scp"].items():
            if is_pipe(value):
                raise SkiptoolError(_pipe_message("feats.scp", key))
            try:
                mat = kaldiio.load_mat(value, fd_dict=open_files)
            except Exception as e:  # corrupt or missing ark: one line, not a traceback
                raise SkiptoolError(f"{dd.path / 'feats.scp'}: {key}: cannot read {value} ({_short(e)}); "
                                    "run `skiptool data validate`") from None
            dims[int(np.shape(mat)[-1])] += 1
    finally:
        for f in open_files.values():
            f.close()
    return dict(dims)


# ----------------------------------------------------------------------------------------------
# subset, split, combine


def read_key_list(path: str | os.PathLike) -> list[str]:
    """The first field of every non-empty line (a key list, or any table)."""
    return [key for _, key, _ in read_table_lines(path)]


def subset_data_dir(src: str | os.PathLike, dst: str | os.PathLike, *, keys: Sequence[str] | None = None,
                    first: int | None = None, random: int | None = None, seed: int = 0,
                    speakers: Sequence[str] | None = None, overwrite: bool = False) -> DataDir:
    """Write the part of `src` chosen by exactly one of: keys, the first N utterances, N random
    utterances (seeded), or the utterances of the given speakers."""
    chosen = [name for name, v in (("keys", keys), ("first", first), ("random", random),
                                   ("speakers", speakers)) if v is not None]
    if len(chosen) != 1:
        raise SkiptoolError("choose exactly one of --keys, --first, --random, --speakers "
                            f"(got {', '.join('--' + c for c in chosen) or 'none'})")
    check_writable(dst, overwrite, "data dir")
    dd = DataDir.load(src)
    utts = dd.utts
    for name, n in (("--first", first), ("--random", random)):
        if n is not None and not 0 < n <= len(utts):
            raise SkiptoolError(f"{name} {n}: {src} has {len(utts)} utterances; ask for 1 to {len(utts)}")
    if keys is not None:
        selected = set(keys) & set(utts)
        if not selected:
            raise SkiptoolError(f"{src}: none of the {len(keys)} keys given is an utterance there; check the key list")
    elif first is not None:
        selected = set(utts[:first])
    elif random is not None:
        rng = np.random.default_rng(seed)
        selected = {utts[i] for i in rng.choice(len(utts), size=random, replace=False)}
    else:
        if "utt2spk" not in dd:
            raise SkiptoolError(f"{src}: has no utt2spk, so it cannot be subset by speaker; use --keys")
        wanted = set(speakers)
        unknown = sorted(wanted - set(dd.speakers))
        if unknown:
            raise SkiptoolError(f"speaker '{unknown[0]}' is not in {src}/utt2spk; check the speaker list")
        selected = {u for u, s in dd.tables["utt2spk"].items() if s in wanted}
    sub = dd.subset(selected)
    sub.write(dst, overwrite=overwrite)
    return sub


def split_data_dir(src: str | os.PathLike, dst_prefix: str, *, parts: int | None = None,
                   ratios: Sequence[float] | None = None, by: str = "speaker", seed: int = 0,
                   overwrite: bool = False) -> list[DataDir]:
    """Split `src` into `dst_prefix`1, 2, ... by ratios of utterances (or into equal parts), shuffling
    speakers (speaker-disjoint parts) or utterances with `seed`."""
    if (parts is None) == (ratios is None):
        raise SkiptoolError("give exactly one of --parts N or --ratios (e.g. 0.8,0.1,0.1)")
    if parts is not None:
        if parts < 2:
            raise SkiptoolError(f"--parts {parts}: need at least 2 parts")
        ratios = [1.0] * parts
    if len(ratios) < 2 or any(not (r > 0) for r in ratios):
        raise SkiptoolError(f"--ratios {','.join(map(str, ratios))}: need two or more positive numbers")
    if by not in ("speaker", "key"):
        raise SkiptoolError(f"--by {by}: must be 'speaker' or 'key'")
    outputs = [Path(f"{dst_prefix}{i}") for i in range(1, len(ratios) + 1)]
    for out in outputs:
        check_writable(out, overwrite, "data dir")
    dd = DataDir.load(src)
    rng = np.random.default_rng(seed)
    fractions = np.cumsum(ratios) / np.sum(ratios)
    if by == "speaker":
        if "utt2spk" not in dd:
            raise SkiptoolError(f"{src}: has no utt2spk, so it cannot be split by speaker; use --by key")
        spk2utt = dd.spk2utt()
        if len(spk2utt) < len(ratios):
            raise SkiptoolError(f"{src}: {len(spk2utt)} speakers cannot fill {len(ratios)} speaker-disjoint "
                                "parts; use fewer parts or --by key")
        order = [dd.speakers[i] for i in rng.permutation(len(spk2utt))]
        groups = _cut_groups([spk2utt[s] for s in order], fractions)
    else:
        utts = dd.utts
        if len(utts) < len(ratios):
            raise SkiptoolError(f"{src}: {len(utts)} utterances cannot fill {len(ratios)} parts")
        groups = _cut_groups([[utts[i]] for i in rng.permutation(len(utts))], fractions)
    results = []
    for out, group in zip(outputs, groups):
        results.append(dd.subset(group))
    for out, sub in zip(outputs, results):
        sub.write(out, overwrite=overwrite)
    return results


def _cut_groups(groups: list[list[str]], fractions: np.ndarray) -> list[list[str]]:
    """Deal the groups out in order, closing part i once it holds fractions[i] of all utterances;
    every part gets at least one group (as long as there are enough groups)."""
    total = sum(len(g) for g in groups)
    parts: list[list[str]] = [[] for _ in fractions]
    done = 0
    part = 0
    for index, group in enumerate(groups):
        remaining_groups = len(groups) - index
        remaining_parts = len(fractions) - part - 1
        must_move = parts[part] and remaining_groups <= remaining_parts
        if part < len(fractions) - 1 and parts[part] and (done >= fractions[part] * total - 1e-9 or must_move):
            part += 1
        parts[part].extend(group)
        done += len(group)
    return parts


def combine_data_dirs(dst: str | os.PathLike, srcs: Sequence[str | os.PathLike],
                      prefixes: Sequence[str] | None = None, overwrite: bool = False) -> tuple[DataDir, list[str]]:
    """Union of data dirs, like Kaldi's combine_data.sh: tables missing from some source are left out.
    Keys must not collide, unless `prefixes` (one per source) are prepended to utterance, speaker and
    recording ids as '<prefix>-<id>'. Returns the combined dir and the tables left out."""
    if len(srcs) < 1:
        raise SkiptoolError("give at least one source data dir to combine")
    if prefixes is not None and len(prefixes) != len(srcs):
        raise SkiptoolError(f"--prefix has {len(prefixes)} names for {len(srcs)} source dirs; give one per source")
    check_writable(dst, overwrite, "data dir")
    dirs = [DataDir.load(s) for s in srcs]
    common = [n for n in KNOWN_TABLES if n != "spk2utt" and all(n in d.tables for d in dirs)]
    dropped = sorted({n for d in dirs for n in d.tables} - set(common))
    combined: dict[str, dict[str, str]] = {n: {} for n in common}
    owner: dict[tuple[str, str], str] = {}
    for src, dd, prefix in zip(srcs, dirs, prefixes or [None] * len(srcs)):
        renamed = _prefixed(dd, prefix) if prefix else dd
        for name in common:
            for key, value in renamed.tables[name].items():
                if name in SPK_TABLES and combined[name].get(key) == value:
                    continue  # the same speaker in two sources (e.g. parts of one corpus), as Kaldi's sort -u
                if key in combined[name]:
                    raise SkiptoolError(f"{src}/{name}: key '{key}' is also in {owner[name, key]}; "
                                        "give --prefix with one name per source to keep keys apart")
                combined[name][key] = value
                owner[name, key] = str(src)
    result = DataDir(combined)
    result.write(dst, overwrite=overwrite)
    return result, dropped


def _prefixed(dd: DataDir, prefix: str) -> DataDir:
    """Rename utterance, speaker and recording ids to '<prefix>-<id>' (keeps speaker-prefix order)."""
    def p(x: str) -> str:
        return f"{prefix}-{x}"

    tables = {}
    for name, table in dd.tables.items():
        if name == "utt2spk":
            tables[name] = {p(k): p(v) for k, v in table.items()}
        elif name in SPK_TABLES:
            tables[name] = {p(k): v for k, v in table.items()}
        elif name == "segments":
            tables[name] = {p(k): " ".join([p(v.split()[0]), *v.split()[1:]]) for k, v in table.items()}
        else:
            tables[name] = {p(k): v for k, v in table.items()}
    return DataDir(tables)
