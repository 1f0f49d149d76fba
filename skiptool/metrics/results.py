"""Appending scores to a Markdown RESULTS file, one table row per scoring command.

A row goes under the table that ends the file when that table has the same columns; otherwise
(new file, or the last table is for another metric) a new header is written first. The whole
file is rewritten atomically, so a killed run never leaves half a row.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import atomic_write_text


def _cells(values) -> str:
    # A literal | would split the cell; Markdown renders \| as |.
    return "| " + " | ".join(str(v).replace("|", "\\|").replace("\n", " ") for v in values) + " |"


def _split_row(line: str) -> list[str]:
    inner = line.strip()[1:-1] if line.strip().endswith("|") else line.strip()[1:]
    cells, cell, escaped = [], "", False
    for ch in inner:
        if ch == "|" and not escaped:
            cells.append(cell.strip())
            cell = ""
        else:
            cell += ch
        escaped = ch == "\\" and not escaped
    cells.append(cell.strip())
    return [c.replace("\\|", "|") for c in cells]


def append_result_row(path: str | os.PathLike, row: Mapping[str, str], command: str) -> None:
    """Append `row` plus a `command` column (the command line that produced it) to `path`."""
    path = Path(path)
    header = [*row.keys(), "command"]
    values = [*row.values(), f"`{command}`"]
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as e:
        raise SkiptoolError(f"{path}: cannot read the results file ({e}); fix or move it") from None
    lines = text.rstrip("\n").splitlines() if text.strip() else []
    if _last_table_header(lines) != header:
        if lines:
            lines.append("")
        lines += [_cells(header), _cells(["---"] * len(header))]
    lines.append(_cells(values))
    atomic_write_text(path, "\n".join(lines) + "\n")


def _last_table_header(lines: list[str]) -> list[str] | None:
    """Header cells of the table the file ends with, or None if it does not end with a table."""
    i = len(lines)
    while i > 0 and lines[i - 1].lstrip().startswith("|"):
        i -= 1
    table = lines[i:]
    if len(table) < 2:
        return None
    return _split_row(table[0])
