"""Free Spoken Digit Dataset (FSDD): `recordings/{digit}_{speaker}_{index}.wav`, 8 kHz mono.

    prepare_fsdd("../shared/data/fsdd", "data/fsdd")                 # standard split
    prepare_fsdd(corpus, "data/fsdd_spk", split="speaker", test_speaker="theo")

Utterance ids are `{speaker}_{digit}_{index}` (speaker first, so that sorting by utterance
groups speakers, as Kaldi wants). The standard split puts takes 0-4 of every speaker and digit in
test and 5-49 in train; the speaker split holds one speaker out entirely.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import soundfile as sf

from skiptool.data.datadir import DataDir
from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import check_writable
from skiptool.utils.progress import track

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
LAYOUT = "recordings/{digit}_{speaker}_{index}.wav"
STANDARD_TEST_TAKES = range(0, 5)  # FSDD's own convention (its README): takes 0-4 are the test set
_NAME = re.compile(r"^(\d)_([A-Za-z0-9-]+)_(\d+)\.wav$")
SPLITS = ("standard", "speaker")


def scan_fsdd(corpus_dir: str | os.PathLike) -> list[tuple[str, int, int, Path]]:
    """(speaker, digit, take, path) for every recording, sorted; wrong layout is a SkiptoolError."""
    corpus_dir = Path(corpus_dir)
    recordings = corpus_dir / "recordings"
    if not corpus_dir.is_dir():
        raise SkiptoolError(f"{corpus_dir}: FSDD corpus dir not found; give the folder holding {LAYOUT}")
    if not recordings.is_dir():
        raise SkiptoolError(f"{corpus_dir}: no recordings/ folder; an FSDD corpus dir holds {LAYOUT}")
    found = []
    for path in recordings.iterdir():
        match = _NAME.match(path.name)
        if match and path.is_file():
            digit, speaker, take = match.groups()
            found.append((speaker, int(digit), int(take), path.resolve()))
    if not found:
        raise SkiptoolError(f"{recordings}: no files named like {LAYOUT.split('/')[1]}; "
                            f"an FSDD corpus dir holds {LAYOUT}")
    return sorted(found)


def prepare_fsdd(corpus_dir: str | os.PathLike, out_dir: str | os.PathLike, split: str = "standard",
                 test_speaker: str = "theo", overwrite: bool = False,
                 quiet: bool | None = None) -> dict[str, DataDir]:
    """Write `out_dir/train` and `out_dir/test` (wav.scp, text, utt2spk, spk2utt, utt2label, utt2dur)."""
    if split not in SPLITS:
        raise SkiptoolError(f"--split {split}: must be one of {', '.join(SPLITS)}")
    out_dir = Path(out_dir)
    for part in ("train", "test"):
        check_writable(out_dir / part, overwrite, "data dir")
    recordings = scan_fsdd(corpus_dir)
    speakers = sorted({r[0] for r in recordings})
    if split == "speaker" and test_speaker not in speakers:
        raise SkiptoolError(f"--test-speaker {test_speaker}: not an FSDD speaker here; "
                            f"choose one of {', '.join(speakers)}")

    tables = {part: {name: {} for name in ("wav.scp", "text", "utt2spk", "utt2label", "utt2dur")}
              for part in ("train", "test")}
    for speaker, digit, take, path in track(recordings, description="FSDD", quiet=quiet, unit="file"):
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            raise SkiptoolError(f"{path}: cannot open as audio ({e}); replace or remove the file") from None
        if info.frames == 0:
            raise SkiptoolError(f"{path}: empty recording (0 samples); replace or remove the file")
        in_test = take in STANDARD_TEST_TAKES if split == "standard" else speaker == test_speaker
        part = tables["test" if in_test else "train"]
        utt = f"{speaker}_{digit}_{take}"
        part["wav.scp"][utt] = str(path)
        part["text"][utt] = DIGIT_WORDS[digit]
        part["utt2spk"][utt] = speaker
        part["utt2label"][utt] = str(digit)
        part["utt2dur"][utt] = f"{info.frames / info.samplerate:.4f}"
    result = {}
    for part, part_tables in tables.items():
        if not part_tables["wav.scp"]:
            raise SkiptoolError(f"{corpus_dir}: the {split} split leaves {part} empty; check the recordings "
                                f"({LAYOUT}, takes 0-49)")
        result[part] = DataDir(part_tables)
    for part, dd in result.items():
        dd.write(out_dir / part, overwrite=overwrite)
    return result
