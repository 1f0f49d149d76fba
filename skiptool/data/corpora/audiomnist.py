"""AudioMNIST (Becker et al.): 60 speakers x 10 digits x 50 takes, 48 kHz wav.

Layout read (the GitHub release; `corpus_dir` may be the release root or its ``data/``)::

    <corpus>/data/<01..60>/<digit>_<speaker>_<take>.wav
    <corpus>/data/audioMNIST_meta.txt      (optional JSON: {"01": {"gender": "male", ...}, ...})

The corpus has no official split: speakers are split seeded into train/dev/test (by default
10% and 20% of the speakers, i.e. 6 and 12 of 60), stratified by gender when the meta file is
present (it then also gives ``spk2gender``). Ids: speaker ``audiomnist_07``, utterance
``audiomnist_07_3_12`` (digit 3, take 12).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from skiptool.data.corpora.fsdd import DIGIT_WORDS
from skiptool.data.corpora.tidigits import (SPLITS, SpokenDigit, check_outputs_writable, split_speakers,
                                            spoken_digit_data_dir, write_data_dirs)
from skiptool.data.datadir import DataDir
from skiptool.utils.errors import SkiptoolError

AUDIOMNIST_LAYOUT = "data/<01..60>/<digit>_<speaker>_<take>.wav (data/audioMNIST_meta.txt optional)"
META_NAME = "audioMNIST_meta.txt"
_FILE_NAME = re.compile(r"^([0-9])_([0-9]+)_([0-9]+)\.wav$")
_GENDER = {"male": "m", "female": "f"}


def prepare_audiomnist(corpus_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                       dev_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                       overwrite: bool = False, quiet: bool | None = None) -> dict[str, DataDir]:
    """Write speaker-disjoint data dirs out_dir/{train,dev,test} of AudioMNIST; returns them."""
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    check_outputs_writable(out_dir, SPLITS, overwrite)
    data_dir = corpus_dir / "data" if (corpus_dir / "data").is_dir() else corpus_dir
    speaker_dirs = sorted(p for p in data_dir.iterdir() if p.is_dir() and p.name.isdigit()) \
        if data_dir.is_dir() else []
    if not speaker_dirs:
        raise SkiptoolError(f"{corpus_dir}: not an AudioMNIST directory (no speaker folders); "
                            f"expected {AUDIOMNIST_LAYOUT}")

    records = []
    for speaker_dir in speaker_dirs:
        speaker = f"audiomnist_{speaker_dir.name}"
        for wav in sorted(speaker_dir.glob("*.wav")):
            match = _FILE_NAME.match(wav.name)
            if not match or match.group(2) != speaker_dir.name:
                raise SkiptoolError(f"{wav}: name does not fit the AudioMNIST layout "
                                    f"{AUDIOMNIST_LAYOUT} (speaker must match the folder)")
            digit, _, take = match.groups()
            records.append(SpokenDigit(f"{speaker}_{digit}_{int(take):02d}", speaker, wav,
                                       DIGIT_WORDS[int(digit)], int(digit)))
    if not records:
        raise SkiptoolError(f"{data_dir}: speaker folders hold no wav files; expected {AUDIOMNIST_LAYOUT}")

    speakers = {r.speaker for r in records}
    spk2gender = _read_genders(data_dir, corpus_dir, speakers)
    assignment = split_speakers(speakers, {"dev": dev_fraction, "test": test_fraction}, seed,
                                strata=spk2gender, corpus=f"{corpus_dir} (AudioMNIST)")
    parts = {name: spoken_digit_data_dir([r for r in records if assignment[r.speaker] == name], spk2gender,
                                         f"AudioMNIST {name}", quiet)
             for name in SPLITS}
    return write_data_dirs(out_dir, parts, overwrite)


def _read_genders(data_dir: Path, corpus_dir: Path, speakers: set[str]) -> dict[str, str]:
    """speaker -> m/f from audioMNIST_meta.txt, or {} when the file is absent."""
    meta_path = next((p for p in (data_dir / META_NAME, corpus_dir / META_NAME) if p.is_file()), None)
    if meta_path is None:
        return {}
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        genders = {f"audiomnist_{spk}": _GENDER[str(info["gender"]).strip().lower()]
                   for spk, info in meta.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise SkiptoolError(f"{meta_path}: not a valid AudioMNIST meta file ({type(e).__name__}: {e}); "
                            'expected JSON {"01": {"gender": "male", ...}, ...}, or remove it') from None
    missing = sorted(speakers - genders.keys())
    if missing:
        raise SkiptoolError(f"{meta_path}: no entry for speaker(s) {', '.join(missing[:5])}; "
                            "add them or remove the meta file")
    return {spk: gender for spk, gender in genders.items() if spk in speakers}
