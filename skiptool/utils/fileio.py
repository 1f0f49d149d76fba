"""Atomic writes and stage markers, so that an interrupted run never leaves output that looks complete."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

from skiptool.utils.errors import SkiptoolError


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path) as f:
        f.write(text)


def check_writable(path: str | os.PathLike, overwrite: bool, what: str = "output") -> None:
    """Refuse to replace something a user made unless they asked for it."""
    if Path(path).exists() and not overwrite:
        raise SkiptoolError(f"{path}: {what} already exists; pass --overwrite to replace it")


def done_marker(directory: str | os.PathLike, name: str = "") -> Path:
    return Path(directory) / (f".{name}.done" if name else ".done")


def is_done(directory: str | os.PathLike, name: str = "") -> bool:
    return done_marker(directory, name).exists()


def mark_done(directory: str | os.PathLike, name: str = "") -> None:
    atomic_write_text(done_marker(directory, name), "")


def clear_done(directory: str | os.PathLike, name: str = "") -> None:
    with contextlib.suppress(FileNotFoundError):
        done_marker(directory, name).unlink()
