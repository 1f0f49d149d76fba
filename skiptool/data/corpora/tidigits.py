"""TIDIGITS (LDC93S10): isolated spoken digits with the official, speaker-disjoint train/test split.

Layout read (the LDC release; names may be upper case, as on some copies of the discs)::

    <corpus>/{train,test}/{man,woman,boy,girl}/<speaker>/<digits><a|b>.wav
    (also accepted under <corpus>/tidigits/ or <corpus>/data/{adults,children}/)

The ``.wav`` files are NIST SPHERE (20 kHz, 16-bit PCM), which libsndfile reads directly, so
``wav.scp`` lists the files themselves and no ``sph2pipe`` is needed. Only isolated-digit
utterances are kept: file names with one digit character (``1a.wav``, ``zb.wav``). The digit
characters are ``1``-``9``, ``z`` (zero) and ``o`` ("oh"): an "oh" keeps ``oh`` as its text but
has label 0, because it is the spoken form of the written digit 0.

Speakers come from the path (speaker ``tidigits_man_ae``, utterance ``tidigits_man_ae_1a``), gender from the group (man/boy -> m,
woman/girl -> f, written to ``spk2gender`` as Kaldi does). ``dev`` is a seeded, group-stratified
share of the training speakers, so train, dev and test are speaker-disjoint. Paper 004 used the
225 adult speakers, hence ``groups=("man", "woman")`` by default.

The helpers shared by the spoken-digit preparers (`SpokenDigit`, `split_speakers`,
`spoken_digit_data_dir`, `write_data_dirs`) live here too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import soundfile as sf

from skiptool.data.corpora.fsdd import DIGIT_WORDS
from skiptool.data.datadir import DataDir
from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import check_writable
from skiptool.utils.progress import track

SPLITS = ("train", "dev", "test")

GROUP_GENDER = {"man": "m", "woman": "f", "boy": "m", "girl": "f"}
ADULTS = ("man", "woman")

# TIDIGITS file-name digit characters -> (text, label); "oh" is the spoken form of 0.
TIDIGITS_DIGITS = {"z": ("zero", 0), "o": ("oh", 0),
                   **{str(d): (DIGIT_WORDS[d], d) for d in range(1, 10)}}

TIDIGITS_LAYOUT = ("{train,test}/{man,woman,boy,girl}/<speaker>/<digits><a|b>.wav "
                   "(LDC93S10; optionally under tidigits/ or data/{adults,children}/)")


@dataclass(frozen=True)
class SpokenDigit:
    """One utterance of a spoken-digit corpus; `utt` starts with `speaker` (Kaldi convention)."""

    utt: str
    speaker: str
    path: Path
    text: str
    label: int


def split_speakers(speakers: Iterable[str], held_out: Mapping[str, float], seed: int,
                   strata: Mapping[str, str] | None = None, corpus: str = "corpus") -> dict[str, str]:
    """Assign every speaker to "train" or one of the `held_out` splits ({name: fraction}).

    Seeded and stratified by `strata` (speaker -> gender/group) when given; each held-out split
    gets at least one speaker. Written by hand because scikit-learn's stratified splitters
    refuse strata with a single member and held-out sets smaller than the number of strata,
    which tiny or unbalanced corpora have.
    """
    for name, fraction in held_out.items():
        if not 0 < fraction < 1:
            raise SkiptoolError(f"{name} fraction {fraction}: must be between 0 and 1 (a share of the speakers)")
    if sum(held_out.values()) >= 1:
        raise SkiptoolError(f"held-out fractions {dict(held_out)} leave no training speakers; lower them")
    speakers = sorted(set(speakers))
    if len(speakers) < len(held_out) + 1:
        raise SkiptoolError(f"{corpus}: only {len(speakers)} speaker(s); a speaker-disjoint split into "
                            f"train/{'/'.join(held_out)} needs at least {len(held_out) + 1}")
    rng = np.random.default_rng(seed)
    by_stratum: dict[str, list[str]] = {}
    for spk in speakers:
        by_stratum.setdefault(strata.get(spk, "") if strata else "", []).append(spk)
    # Shuffle each stratum and give its k-th speaker the position (k + 0.5) / n_stratum (the
    # Sainte-Lague apportionment order): any prefix of the merged order then holds every stratum
    # in proportion to its size, rounded. Ties between strata are broken at random.
    position = {}
    for members in by_stratum.values():
        tie_break = rng.random()
        for k, spk in enumerate(rng.permutation(members)):
            position[str(spk)] = ((k + 0.5) / len(members), tie_break)
    order = sorted(speakers, key=lambda s: position[s])
    assignment, start = {}, 0
    for name, fraction in held_out.items():
        count = max(1, round(fraction * len(speakers)))
        count = min(count, len(speakers) - start - 1)  # always leave training speakers
        if count < 1:
            raise SkiptoolError(f"{corpus}: too few speakers ({len(speakers)}) for the held-out "
                                f"fractions {dict(held_out)}; lower them")
        for spk in order[start:start + count]:
            assignment[spk] = name
        start += count
    for spk in order[start:]:
        assignment[spk] = "train"
    return assignment


def spoken_digit_data_dir(records: Sequence[SpokenDigit], spk2gender: Mapping[str, str] | None = None,
                          description: str = "reading headers", quiet: bool | None = None) -> DataDir:
    """A data dir (not yet written) of `records`: wav.scp (absolute paths), text, utt2spk, utt2label,
    utt2dur (from the file headers, which also proves every file readable), spk2gender when known."""
    if not records:
        raise SkiptoolError(f"{description}: no utterances; check the corpus layout")
    seen: dict[str, Path] = {}
    for rec in records:
        if rec.utt in seen:
            raise SkiptoolError(f"{rec.path}: utterance id '{rec.utt}' also made from {seen[rec.utt]}; "
                                "remove the duplicate file")
        seen[rec.utt] = rec.path
    tables = {
        "wav.scp": {r.utt: str(Path(r.path).resolve()) for r in records},
        "text": {r.utt: r.text for r in records},
        "utt2spk": {r.utt: r.speaker for r in records},
        "utt2label": {r.utt: str(r.label) for r in records},
        "utt2dur": {r.utt: f"{_duration(r.path, r.utt):.4f}"
                    for r in track(records, description=description, quiet=quiet, unit="file")},
    }
    if spk2gender:
        speakers = set(tables["utt2spk"].values())
        tables["spk2gender"] = {spk: gender for spk, gender in spk2gender.items() if spk in speakers}
    return DataDir(tables)


def write_data_dirs(out_dir: Path, parts: Mapping[str, DataDir], overwrite: bool) -> dict[str, DataDir]:
    """Write each part as out_dir/<name> (each appears whole, see `DataDir.write`); returns `parts`."""
    for name, data_dir in parts.items():
        data_dir.write(out_dir / name, overwrite=overwrite)
    return dict(parts)


def check_outputs_writable(out_dir: Path, names: Iterable[str], overwrite: bool) -> None:
    """Fail before any work when an output data dir exists and --overwrite was not given."""
    for name in names:
        check_writable(out_dir / name, overwrite, "data dir")


def _duration(path: Path, utt: str) -> float:
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise SkiptoolError(f"{path}: cannot read audio header of {utt} ({e}); "
                            "replace or remove the file") from None
    if info.frames == 0:
        raise SkiptoolError(f"{path}: empty recording (0 samples) for {utt}; replace or remove the file")
    return info.frames / info.samplerate


def _child(directory: Path, name: str) -> Path | None:
    """`directory/name`, matching the name case-insensitively (some TIDIGITS copies are upper case)."""
    exact = directory / name
    if exact.is_dir():
        return exact
    for entry in directory.iterdir() if directory.is_dir() else ():
        if entry.is_dir() and entry.name.lower() == name:
            return entry
    return None


def _split_roots(corpus_dir: Path, split: str) -> list[Path]:
    """The folders holding <group>/<speaker>/ for one official split, in any accepted layout."""
    for base in (corpus_dir, _child(corpus_dir, "tidigits")):
        if base is not None and (root := _child(base, split)) is not None:
            return [root]
    data = _child(corpus_dir, "data")
    if data is not None:  # the later LDC layout: data/adults/<split>/, data/children/<split>/
        return [root for age in ("adults", "children")
                if (base := _child(data, age)) is not None and (root := _child(base, split)) is not None]
    return []


def prepare_tidigits(corpus_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                     groups: Sequence[str] = ADULTS, dev_fraction: float = 0.1, seed: int = 0,
                     overwrite: bool = False, quiet: bool | None = None) -> dict[str, DataDir]:
    """Write data dirs out_dir/{train,dev,test} of the isolated digits of TIDIGITS; returns them.

    `groups` picks speaker groups among man, woman, boy, girl. `dev_fraction` of the training
    speakers (seeded, stratified by group) form dev.
    """
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    check_outputs_writable(out_dir, SPLITS, overwrite)
    unknown = sorted(set(groups) - set(GROUP_GENDER))
    if unknown or not groups:
        raise SkiptoolError(f"tidigits groups: {unknown or 'none'} given; choose from {', '.join(GROUP_GENDER)}")
    if not corpus_dir.is_dir():
        raise SkiptoolError(f"{corpus_dir}: TIDIGITS directory not found; expected {TIDIGITS_LAYOUT}")

    official: dict[str, list[SpokenDigit]] = {}
    speaker_group: dict[str, str] = {}
    for split in ("train", "test"):
        roots = _split_roots(corpus_dir, split)
        if not roots:
            raise SkiptoolError(f"{corpus_dir}: no '{split}' folder; expected {TIDIGITS_LAYOUT}")
        official[split] = [rec for root in roots for rec in _isolated_digits(root, groups, speaker_group)]
        if not official[split]:
            raise SkiptoolError(f"{corpus_dir}: no isolated-digit files of groups {', '.join(groups)} "
                                f"under {', '.join(map(str, roots))}; expected {TIDIGITS_LAYOUT}")

    train_speakers = {r.speaker for r in official["train"]}
    both = sorted(train_speakers & {r.speaker for r in official["test"]})
    if both:
        raise SkiptoolError(f"{corpus_dir}: speaker(s) {', '.join(both[:5])} found in both train and test; "
                            "the official TIDIGITS split is speaker-disjoint, check the copy of the corpus")
    assignment = split_speakers(train_speakers, {"dev": dev_fraction}, seed,
                                strata=speaker_group, corpus=f"{corpus_dir} (TIDIGITS train)")
    splits = {
        "train": [r for r in official["train"] if assignment[r.speaker] == "train"],
        "dev": [r for r in official["train"] if assignment[r.speaker] == "dev"],
        "test": official["test"],
    }
    spk2gender = {spk: GROUP_GENDER[group] for spk, group in speaker_group.items()}
    return write_data_dirs(out_dir, {name: spoken_digit_data_dir(records, spk2gender, f"TIDIGITS {name}", quiet)
                                     for name, records in splits.items()}, overwrite)


def _isolated_digits(root: Path, groups: Sequence[str], speaker_group: dict[str, str]) -> list[SpokenDigit]:
    """Isolated-digit utterances under root/<group>/<speaker>/; records each speaker's group."""
    records = []
    for group_dir in sorted(root.iterdir()):
        group = group_dir.name.lower()
        if not group_dir.is_dir() or group not in groups:
            continue
        for speaker_dir in sorted(p for p in group_dir.iterdir() if p.is_dir()):
            speaker = f"tidigits_{group}_{speaker_dir.name.lower()}"
            for wav in sorted(speaker_dir.iterdir()):
                stem, suffix = wav.stem.lower(), wav.suffix.lower()
                # <digit><take>.wav with take a or b: one digit character means an isolated digit
                if suffix != ".wav" or len(stem) != 2 or stem[0] not in TIDIGITS_DIGITS or stem[1] not in "ab":
                    continue
                text, label = TIDIGITS_DIGITS[stem[0]]
                records.append(SpokenDigit(f"{speaker}_{stem}", speaker, wav, text, label))
                speaker_group[speaker] = group
    return records
