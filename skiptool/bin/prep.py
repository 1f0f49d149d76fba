"""`skiptool prep`: placeholder until its module lands."""

import typer

app = typer.Typer(no_args_is_help=True)
