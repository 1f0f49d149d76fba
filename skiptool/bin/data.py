"""`skiptool data`: validate, fix, inspect, subset, split and combine Kaldi-style data dirs."""

from __future__ import annotations

import enum
import inspect
import sys
from pathlib import Path
from typing import List, Optional

import typer

from skiptool.data import datadir
from skiptool.utils.errors import SkiptoolError

app = typer.Typer(no_args_is_help=True,
                  help="Kaldi-style data dirs (wav.scp, text, utt2spk, spk2utt, segments, feats.scp, "
                       "utt2num_frames, utt2dur, img.scp, utt2label, utt2emo).")


def _command(name: str | None = None):
    """Register a command whose help is its docstring with each paragraph on one line: Typer's rich
    mode keeps single line breaks, which would otherwise show the source's wrapping in --help."""
    def register(function):
        paragraphs = inspect.cleandoc(function.__doc__ or "").split("\n\n")
        return app.command(name, help="\n\n".join(" ".join(p.split()) for p in paragraphs))(function)
    return register


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _on_terminal() -> bool:
    return sys.stdout.isatty()


def _print_rows(title: str, header: tuple[str, ...] | None, rows: list[tuple[str, ...]]) -> None:
    """A rich table on a terminal, plain lines ('a: b: c') otherwise (logs, pipes, tests)."""
    if _on_terminal():
        from rich.console import Console
        from rich.table import Table

        table = Table(*(header or ("", "")), title=title, show_header=header is not None)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
    else:
        for row in rows:
            typer.echo(": ".join(cell for cell in row if cell))


@_command()
def validate(
    data_dir: Path = typer.Argument(..., help="Data dir to check."),
    no_check_files: bool = typer.Option(False, "--no-check-files",
                                        help="Only check the tables; do not open the wav, image and feature files."),
) -> None:
    """Check a data dir as Kaldi's validate_data_dir.sh does, and open every file it lists.

    Checks sorted unique keys (C locale) in every table, valid UTF-8, the same utterances in every
    table, spk2utt agreeing with utt2spk, non-empty text, segments inside known recordings; and that
    every wav, image and feature ark listed exists and opens. Lists every offending key with its
    file and exits 1 if there is any.

    Example: skiptool data validate data/fsdd/train
    """
    problems = datadir.validate_data_dir(data_dir, check_files=not no_check_files)
    if problems:
        _print_rows(f"problems in {data_dir}", ("file", "key", "problem"),
                    [(p.file, p.key if p.key is not None else "-", p.message) for p in problems])
        files = sorted({p.file for p in problems})
        raise SkiptoolError(f"{data_dir}: {len(problems)} problem{'s' if len(problems) > 1 else ''} in "
                            f"{', '.join(files)} (listed above); fix them, or run `skiptool data fix {data_dir}` "
                            "for sorting, duplicate and missing keys")
    dd = datadir.DataDir.load(data_dir)
    speakers = f", {_count(len(dd.speakers), 'speaker')}" if "utt2spk" in dd else ""
    checked = "tables only" if no_check_files else "tables and files"
    typer.echo(f"{data_dir}: OK ({len(dd)} utterances{speakers}; {checked} checked)")


@_command()
def fix(data_dir: Path = typer.Argument(..., help="Data dir to repair in place.")) -> None:
    """Repair a data dir in place, as Kaldi's fix_data_dir.sh does; prints `kept N of M`.

    Sorts every table, drops duplicate keys (keeping the first), keeps only the utterances present
    in every utterance table (with non-empty values) and regenerates spk2utt from utt2spk. The
    original tables are first copied to DATA_DIR/.backup/<time>/ (earlier backups are kept).

    Example: skiptool data fix data/fsdd/train
    """
    report = datadir.fix_data_dir(data_dir)
    for note in report.notes:
        typer.echo(note)
    typer.echo(f"backed up the original tables to {report.backup}")
    typer.echo(f"kept {report.kept} of {report.total} utterances")


@_command()
def info(data_dir: Path = typer.Argument(..., help="Data dir to describe.")) -> None:
    """Describe a data dir: counts, duration, speakers, labels, emotions, feature dims.

    The duration comes from utt2dur, else segments, else the wav headers.

    Example: skiptool data info data/fsdd/train
    """
    rows = datadir.data_info(data_dir).lines()
    if _on_terminal():
        _print_rows(str(data_dir), None, rows)
    else:
        for name, value in rows:
            typer.echo(f"{name}: {value}")


def _read_list(path: Optional[Path], what: str) -> Optional[list[str]]:
    if path is None:
        return None
    keys = datadir.read_key_list(path)
    if not keys:
        raise SkiptoolError(f"{path}: the {what} list is empty; put one {what} per line")
    return keys


@_command()
def subset(
    src: Path = typer.Argument(..., help="Source data dir."),
    dst: Path = typer.Argument(..., help="Data dir to write."),
    keys: Optional[Path] = typer.Option(None, "--keys", help="File whose first column lists the utterances to keep."),
    first: Optional[int] = typer.Option(None, "--first", help="Keep the first N utterances (sorted order)."),
    random: Optional[int] = typer.Option(None, "--random", help="Keep N utterances drawn at random (see --seed)."),
    seed: int = typer.Option(0, "--seed", help="Random seed for --random."),
    speakers: Optional[Path] = typer.Option(None, "--speakers",
                                            help="File whose first column lists the speakers to keep."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace DST if it exists."),
) -> None:
    """Write part of a data dir: --keys, --first, --random or --speakers (one of them).

    Like Kaldi's subset_data_dir.sh; DST is written whole or not at all.

    Example: skiptool data subset data/fsdd/test data/fsdd/test20 --random 20 --seed 0
    """
    result = datadir.subset_data_dir(src, dst, keys=_read_list(keys, "key"), first=first, random=random,
                                     seed=seed, speakers=_read_list(speakers, "speaker"), overwrite=overwrite)
    typer.echo(f"wrote {dst}: {_count(len(result), 'utterance')}"
               + (f", {_count(len(result.speakers), 'speaker')}" if "utt2spk" in result else ""))


class SplitBy(str, enum.Enum):
    speaker = "speaker"
    key = "key"


def _parse_ratios(text: Optional[str]) -> Optional[list[float]]:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise SkiptoolError(f"--ratios {text}: give comma-separated numbers, e.g. 0.8,0.1,0.1") from None


@_command()
def split(
    src: Path = typer.Argument(..., help="Source data dir."),
    dst_prefix: str = typer.Argument(..., help="Output prefix: parts are written to DST_PREFIX1, DST_PREFIX2, ..."),
    parts: Optional[int] = typer.Option(None, "--parts", help="Split into N parts of about equal size."),
    ratios: Optional[str] = typer.Option(None, "--ratios", help="Split by these utterance ratios, e.g. 0.8,0.1,0.1."),
    by: SplitBy = typer.Option(SplitBy.speaker, "--by",
                               help="Keep speakers whole (speaker-disjoint parts) or split utterances freely."),
    seed: int = typer.Option(0, "--seed", help="Random seed for the shuffle of speakers or utterances."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing parts."),
) -> None:
    """Split a data dir into DST_PREFIX1, DST_PREFIX2, ... (seeded).

    With --by speaker no speaker is in two parts, and sizes follow the ratios as closely as whole
    speakers allow; with --by key utterances are shuffled freely.

    Example: skiptool data split data/fsdd/train data/fsdd/part --ratios 0.9,0.1 --by speaker
    """
    results = datadir.split_data_dir(src, dst_prefix, parts=parts, ratios=_parse_ratios(ratios), by=by.value,
                                     seed=seed, overwrite=overwrite)
    for i, part in enumerate(results, start=1):
        speakers = f", {_count(len(part.speakers), 'speaker')}" if "utt2spk" in part else ""
        typer.echo(f"wrote {dst_prefix}{i}: {_count(len(part), 'utterance')}{speakers}")


@_command()
def combine(
    dst: Path = typer.Argument(..., help="Data dir to write."),
    srcs: List[Path] = typer.Argument(..., help="Data dirs to combine."),
    prefix: Optional[str] = typer.Option(None, "--prefix",
                                         help="Comma-separated names, one per SRC, prepended to its utterance, "
                                              "speaker and recording ids as NAME-ID (to keep keys apart)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace DST if it exists."),
) -> None:
    """Combine data dirs into one, as Kaldi's combine_data.sh does.

    Keys must not collide unless --prefix is given; tables missing from some source are left out.

    Example: skiptool data combine data/all data/fsdd/train data/espeak/train --prefix fsdd,espeak
    """
    prefixes = [p.strip() for p in prefix.split(",")] if prefix is not None else None
    if prefixes is not None and not all(prefixes):
        raise SkiptoolError(f"--prefix {prefix}: empty name; give one non-empty name per source")
    result, dropped = datadir.combine_data_dirs(dst, srcs, prefixes=prefixes, overwrite=overwrite)
    if dropped:
        typer.echo(f"left out (not in every source): {', '.join(dropped)}")
    typer.echo(f"wrote {dst}: {len(result)} utterances from {len(srcs)} data dirs")
