"""Progress for long work: a rich bar with ETA and items/s on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

# Set by the CLI's --quiet; library callers may pass quiet= explicitly.
QUIET = False


def track(items: Iterable[T], total: int | None = None, description: str = "working",
          quiet: bool | None = None, unit: str = "it") -> Iterator[T]:
    """Iterate over `items`, reporting progress to stderr."""
    quiet = QUIET if quiet is None else quiet
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if quiet:
        yield from items
        return
    if sys.stderr.isatty():
        columns = (
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        )
        with Progress(*columns, transient=False) as bar:
            task = bar.add_task(description, total=total, rate="")
            for item in items:
                yield item
                speed = bar.tasks[0].speed
                bar.update(task, advance=1, rate=f"{speed:.1f} {unit}/s" if speed else "")
        return
    yield from _plain(items, total, description, unit)


def _plain(items: Iterable[T], total: int | None, description: str, unit: str) -> Iterator[T]:
    start = last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= 10 or (total and done == total):
            rate = done / max(now - start, 1e-9)
            eta = f", eta {(total - done) / rate:.0f}s" if total else ""
            of = f"/{total}" if total else ""
            print(f"{description}: {done}{of} {unit} ({rate:.1f} {unit}/s{eta})", file=sys.stderr, flush=True)
            last = now
