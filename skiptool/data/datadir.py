"""Kaldi-style data directories: two-column text tables keyed by utterance (or speaker) id.

Files (DESIGN.md): wav.scp, text, utt2spk, spk2utt, segments, feats.scp, utt2num_frames,
utt2dur, and skiptool's img.scp, utt2label, utt2emo. Every table is sorted by key in the C
locale (byte order; for UTF-8 text the same as Python's code-point order) with unique keys.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import atomic_write

# Tables keyed by utterance id, in the order `data validate` reports them.
UTT_TABLES = ("wav.scp", "text", "utt2spk", "segments", "feats.scp", "utt2num_frames",
              "utt2dur", "img.scp", "utt2label", "utt2emo")
SPK_TABLES = ("spk2utt",)
KNOWN_TABLES = UTT_TABLES + SPK_TABLES


def read_table_lines(path: str | os.PathLike) -> list[tuple[int, str, str]]:
    """All (line number, key, value) rows of a table, duplicates and order kept as in the file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SkiptoolError(f"{path}: file not found") from None
    except OSError as e:
        raise SkiptoolError(f"{path}: cannot read ({e.strerror})") from None
    rows = []
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise SkiptoolError(f"{path}: line {lineno} is not valid UTF-8; re-encode the file as UTF-8") from None
        text = text.rstrip("\r")
        if not text.strip():
            continue
        key, _, value = text.strip().partition(" ")
        rows.append((lineno, key, value.strip()))
    return rows


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
