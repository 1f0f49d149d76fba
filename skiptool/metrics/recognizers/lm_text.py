"""The in-domain text (`skiptool score --lm-text`) that restricts a recogniser's vocabulary."""

from __future__ import annotations

import os
from pathlib import Path

from skiptool.data.datadir import read_table_lines
from skiptool.utils.errors import SkiptoolError


def read_lm_text(path: str | os.PathLike) -> list[list[str]]:
    """Sentences (lists of words) of a Kaldi `text` file, or of a one-word-per-line list."""
    path = Path(path)
    if not path.is_file():
        raise SkiptoolError(f"{path}: --lm-text file not found; give a Kaldi text file of in-domain sentences")
    rows = read_table_lines(path)
    if not rows:
        raise SkiptoolError(f"{path}: --lm-text file is empty")
    if all(not value for _, _, value in rows):  # a word list: the "key" is the word
        return [[key] for _, key, _ in rows]
    return [value.split() for _, _, value in rows if value]
