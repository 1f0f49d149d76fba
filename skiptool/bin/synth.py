"""`skiptool synth`: one-off generation with a trained MIB model (or a baseline), e.g. speech from an
image file (the library side is skiptool/decode/synth.py)."""

from __future__ import annotations

from pathlib import Path

import typer


def synth(
    inputs: list[str] = typer.Argument(..., help="Input files or directories; with --from text, the sentence "
                                                 "itself or files of one sentence per line."),
    src: str = typer.Option(..., "--from", help="Input modality: image, text or speech."),
    tgt: str = typer.Option(..., "--to", help="Output modality: image (PNG), text (printed) or speech (wav)."),
    output: Path = typer.Option(None, "-o", "--output", help="Output file; a directory for several inputs. "
                                                            "--to text: optional file of the texts."),
    model: Path = typer.Option(None, "--model", help="Exp dir of a trained MIB, piecewise, cyclegan or tts model "
                                                     "(exp/<tag>). Default: the most recent MIB of egs/coco_emt4."),
    seed: int = typer.Option(0, "--seed", help="Seed of the decoder's pre-net dropout and Griffin-Lim's phase."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """Generate --to from --from with a trained MIB model: image <-> text <-> speech, and image <-> speech
    (skip-modal); or with a baseline (piecewise: image -> text, text -> speech, image -> speech;
    cyclegan: image <-> speech); or with a tts model (text -> speech). Speech is written as 16-bit
    wav by Griffin-Lim of the model's linear spectrogram.

    Example: skiptool synth --from image --to speech in.jpg -o out.wav --model egs/coco_emt4/exp/mib

    Example: skiptool synth --from text --to image "a small red circle" -o circle.png
    """
    from skiptool.decode.synth import synthesize

    result = synthesize(src, tgt, inputs, output, model, overwrite=overwrite, seed=seed)
    for name, text in result.texts:
        typer.echo(text if len(result.texts) == 1 else f"{name} {text}")
    for path in result.outputs:
        typer.echo(f"wrote {path}", err=True)
