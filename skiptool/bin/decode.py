"""`skiptool decode`: generate one modality from another with a trained model."""

from __future__ import annotations

from pathlib import Path

import typer

from skiptool.utils.errors import SkiptoolError

MODALITIES = ("image", "text", "speech")


def decode(
    exp_dir: Path = typer.Argument(..., help="Experiment dir written by `skiptool train`."),
    data_dir: Path = typer.Argument(..., help="Data dir (with features) holding the inputs."),
    out_dir: Path = typer.Argument(..., help="Where generated features/text/images and their scp go."),
    src: str = typer.Option(..., "--from", help="Input modality: image, text or speech."),
    tgt: str = typer.Option(..., "--to", help="Output modality: image, text or speech."),
    checkpoint: str = typer.Option("best", "--checkpoint", help="best, latest or a checkpoint file."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing OUT_DIR."),
) -> None:
    """Decode DATA_DIR from --from to --to with the model in EXP_DIR.

    Example: skiptool decode exp/pvae dump/test exp/pvae/decode_test --from speech --to image
    """
    for flag, value in (("--from", src), ("--to", tgt)):
        if value not in MODALITIES:
            raise SkiptoolError(f"{flag} {value}: unknown modality; use one of {', '.join(MODALITIES)}")
    if not (exp_dir / "config.yaml").is_file():
        raise SkiptoolError(f"{exp_dir}/config.yaml: no trained model here; run `skiptool train` first")
    raise SkiptoolError(f"{exp_dir}: decoding arrives with the model recipes; no model can decode yet")
