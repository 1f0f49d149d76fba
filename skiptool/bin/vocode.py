"""`skiptool vocode`: placeholder until its module lands."""

import typer


def vocode(args: list[str] = typer.Argument(None)) -> None:
    """Not written yet."""
    raise typer.Exit(2)
