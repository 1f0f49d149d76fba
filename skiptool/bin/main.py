"""`skiptool`: the single entry point over the library.

    skiptool prep fsdd ../shared/data/fsdd data/fsdd
    skiptool data validate data/fsdd/train
    skiptool feats data/fsdd/train dump/fbank/train --type fbank --nj 2
    skiptool average exp/pvae --nbest 10
    skiptool vocode dump/mel/test/feats.scp exp/gl --type mel
    skiptool score --metric wer --ref data/test/text --hyp exp/decode/text
"""

from __future__ import annotations

import logging
import sys

import typer

from skiptool import __version__
from skiptool.bin import average, data, decode, feats, prep, score, synth, token, train, vocode
from skiptool.utils import progress
from skiptool.utils.errors import SkiptoolError

app = typer.Typer(
    name="skiptool",
    help="Generate image, text and speech from one another (skip-modal included): "
         "data dirs, features, training, decoding, vocoding and scoring.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"skiptool {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.",
                                 callback=_print_version, is_eager=True),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or progress lines."),
) -> None:
    progress.QUIET = quiet


app.add_typer(prep.app, name="prep")
app.add_typer(data.app, name="data")
app.add_typer(token.app, name="token")
app.command("feats", no_args_is_help=True)(feats.feats)
app.command("train", no_args_is_help=True)(train.train)
app.command("average", no_args_is_help=True)(average.average)
app.command("decode", no_args_is_help=True)(decode.decode)
app.command("vocode", no_args_is_help=True)(vocode.vocode)
app.command("score", no_args_is_help=True)(score.score)
app.command("synth", no_args_is_help=True)(synth.synth)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a user-caused error becomes one line on stderr and exit status 1."""
    logging.basicConfig(format="%(message)s", level=logging.INFO, stream=sys.stderr)
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="skiptool", standalone_mode=True)
    except SkiptoolError as e:
        print(f"skiptool: error: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        print("skiptool: interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
