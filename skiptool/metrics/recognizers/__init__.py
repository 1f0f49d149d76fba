"""Speech recognisers used for scoring audio hypotheses (`skiptool score --hyp-wav`).

A recogniser turns {key: wav path} into {key: transcript}. `RECOGNIZERS` maps a name to a
factory called as `RECOGNIZERS[name](lm_text=PATH_OR_NONE)`, plus `asr_exp=EXP_DIR` for the
trained ones in TRAINED (`ctc`: the recipes' CTC model, skiptool/models/ctc_asr.py, loaded from
its exp dir); `pocketsphinx` ships its model (plain dict, DESIGN.md: no dynamic imports).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping, Protocol

from skiptool.audio.io import check_wav_entry
from skiptool.data.datadir import read_table_lines
from skiptool.metrics.recognizers.ctc import ctc_recognizer
from skiptool.metrics.recognizers.pocketsphinx import PocketSphinxRecognizer
from skiptool.utils.errors import SkiptoolError


class Recognizer(Protocol):
    def transcribe(self, wavs: Mapping[str, str | os.PathLike]) -> dict[str, str]:
        """{key: wav path} -> {key: recognised words}, every key present (empty if nothing)."""
        ...


RECOGNIZERS: dict[str, Callable[..., Recognizer]] = {
    "pocketsphinx": PocketSphinxRecognizer,
    "ctc": ctc_recognizer,
}
TRAINED = {"ctc"}  # recognisers loaded from an exp dir (--asr-exp); they also take asr_exp=


def make_recognizer(name: str, lm_text: str | os.PathLike | None = None,
                    asr_exp: str | os.PathLike | None = None) -> Recognizer:
    if name not in RECOGNIZERS:
        raise SkiptoolError(f"unknown recognizer '{name}'; choose one of: {', '.join(sorted(RECOGNIZERS))}")
    if asr_exp and name not in TRAINED:
        raise SkiptoolError(f"--asr-exp is for a trained recognizer ({', '.join(sorted(TRAINED))}); "
                            f"{name} uses its own model")
    options = {"asr_exp": asr_exp} if name in TRAINED else {}
    return RECOGNIZERS[name](lm_text=lm_text, **options)


def read_wav_scp(path: str | os.PathLike) -> dict[str, Path]:
    """wav.scp as {key: path}; pipe commands (`... |`) are not supported here."""
    path = Path(path)
    if not path.is_file():
        raise SkiptoolError(f"{path}: wav.scp not found; check the path given to --hyp-wav")
    wavs: dict[str, Path] = {}
    for lineno, key, value in read_table_lines(path):
        if key in wavs:
            raise SkiptoolError(f"{path}: duplicate key '{key}' (line {lineno}); run `skiptool data fix`")
        wavs[key] = Path(check_wav_entry(value, key, path))  # rejects pipe commands and empty paths
    if not wavs:
        raise SkiptoolError(f"{path}: no utterances listed")
    return wavs
