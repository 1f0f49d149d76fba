"""`skiptool feats`: placeholder until its module lands."""

import typer


def feats(args: list[str] = typer.Argument(None)) -> None:
    """Not written yet."""
    raise typer.Exit(2)
