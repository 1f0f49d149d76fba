"""Google Speech Commands (v0.01 / v0.02): the ten digit words, 16 kHz, about 1 s each.

Layout read (the released archive)::

    <corpus>/{zero,one,...,nine}/<speaker-hash>_nohash_<n>.wav
    <corpus>/validation_list.txt   <corpus>/testing_list.txt   (lines like zero/0a7c2a8d_nohash_0.wav)

The official lists are used: files in ``validation_list.txt`` form dev, those in
``testing_list.txt`` test, all other digit files train. The lists were made by hashing the
speaker, so the three splits are speaker-disjoint; the preparer checks this. Other words and
``_background_noise_`` are ignored. Ids: speaker ``speechcommands_0a7c2a8d``, utterance
``speechcommands_0a7c2a8d_zero_0``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from skiptool.data.corpora.fsdd import DIGIT_WORDS
from skiptool.data.corpora.tidigits import (SPLITS, SpokenDigit, check_outputs_writable, spoken_digit_data_dir,
                                            write_data_dirs)
from skiptool.data.datadir import DataDir
from skiptool.utils.errors import SkiptoolError

SPEECH_COMMANDS_LAYOUT = ("{zero,...,nine}/<speaker-hash>_nohash_<n>.wav with validation_list.txt "
                          "and testing_list.txt beside them")
LISTS = {"dev": "validation_list.txt", "test": "testing_list.txt"}
_FILE_NAME = re.compile(r"^([0-9a-f]+)_nohash_([0-9]+)\.wav$")


def prepare_speech_commands(corpus_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                            overwrite: bool = False, quiet: bool | None = None) -> dict[str, DataDir]:
    """Write data dirs out_dir/{train,dev,test} of the Speech Commands digit words; returns them."""
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    check_outputs_writable(out_dir, SPLITS, overwrite)
    if not corpus_dir.is_dir():
        raise SkiptoolError(f"{corpus_dir}: Speech Commands directory not found; expected {SPEECH_COMMANDS_LAYOUT}")
    missing = [w for w in DIGIT_WORDS if not (corpus_dir / w).is_dir()] + \
              [name for name in LISTS.values() if not (corpus_dir / name).is_file()]
    if missing:
        raise SkiptoolError(f"{corpus_dir}: not a Speech Commands directory, missing {', '.join(missing)}; "
                            f"expected {SPEECH_COMMANDS_LAYOUT}")

    split_of = {}  # "zero/0a7c2a8d_nohash_0.wav" -> dev/test
    for split, name in LISTS.items():
        for entry in (corpus_dir / name).read_text(encoding="utf-8").split():
            word = entry.split("/", 1)[0]
            if word not in DIGIT_WORDS:
                continue
            if not (corpus_dir / entry).is_file():
                raise SkiptoolError(f"{corpus_dir / name}: lists {entry}, which is missing; "
                                    "restore the file or use the list of your copy of the corpus")
            split_of[entry] = split

    splits: dict[str, list[SpokenDigit]] = {name: [] for name in SPLITS}
    for label, word in enumerate(DIGIT_WORDS):
        for wav in sorted((corpus_dir / word).glob("*.wav")):
            match = _FILE_NAME.match(wav.name)
            if not match:
                raise SkiptoolError(f"{wav}: name does not fit the Speech Commands layout "
                                    "<speaker-hash>_nohash_<n>.wav; remove or rename it")
            speaker = f"speechcommands_{match.group(1)}"
            record = SpokenDigit(f"{speaker}_{word}_{match.group(2)}", speaker, wav, word, label)
            splits[split_of.get(f"{word}/{wav.name}", "train")].append(record)

    _check_speaker_disjoint(corpus_dir, splits)
    return write_data_dirs(out_dir, {name: spoken_digit_data_dir(records, None, f"Speech Commands {name}", quiet)
                                     for name, records in splits.items()}, overwrite)


def _check_speaker_disjoint(corpus_dir: Path, splits: dict[str, list[SpokenDigit]]) -> None:
    speakers = {name: {r.speaker for r in records} for name, records in splits.items()}
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        shared = sorted(speakers[a] & speakers[b])
        if shared:
            raise SkiptoolError(f"{corpus_dir}: speaker(s) {', '.join(shared[:3])} in both {a} and {b}; "
                                f"the official {', '.join(LISTS.values())} are speaker-disjoint, "
                                "restore them from the release")
