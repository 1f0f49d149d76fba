"""`skiptool synth`: one-off generation, e.g. speech from an image file."""

from __future__ import annotations

from pathlib import Path

import typer

from skiptool.utils.errors import SkiptoolError

MODALITIES = ("image", "text", "speech")


def synth(
    inputs: list[str] = typer.Argument(..., help="Input files, a directory, or (with --from text) the text itself."),
    src: str = typer.Option(..., "--from", help="Input modality: image, text or speech."),
    tgt: str = typer.Option(..., "--to", help="Output modality: image, text or speech."),
    output: Path = typer.Option(None, "-o", "--output", help="Output file (or dir for several inputs)."),
    model: Path = typer.Option(None, "--model", help="Experiment dir of a trained model (exp/<tag>)."),
) -> None:
    """Generate --to from --from with a trained model.

    Example: skiptool synth --from image --to speech in.jpg -o out.wav --model egs/coco_emt4/exp/mib
    """
    for flag, value in (("--from", src), ("--to", tgt)):
        if value not in MODALITIES:
            raise SkiptoolError(f"{flag} {value}: unknown modality; use one of {', '.join(MODALITIES)}")
    if model is None or not (model / "config.yaml").is_file():
        raise SkiptoolError("no trained model found; train one with egs/coco_emt4/run.sh "
                            "(or pass --model exp/<tag>)")
    raise SkiptoolError(f"{model}: synthesis arrives with the MIB recipe; this model cannot synthesise yet")
