"""`skiptool average`: the mean weights of a trained model's N best epochs (ESPnet's
`average_nbest_models`), written as EXP_DIR/checkpoints/ave_<N>best.pt for decode --checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from skiptool.utils.errors import SkiptoolError


def average(
    exp_dir: Path = typer.Argument(..., help="Experiment dir written by skiptool train."),
    nbest: int = typer.Option(..., "--nbest", min=1, help="How many of the best epochs (by the config's "
                                                          "train.best_metric) to average."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing ave_<N>best.pt."),
) -> None:
    """Average the models of the NBEST best epochs of EXP_DIR into checkpoints/ave_<NBEST>best.pt.

    The epochs are ranked by train.best_metric and train.best_mode of EXP_DIR/config.yaml, from the
    history in checkpoints/latest.pt; their {N}epoch.pt files must still be there (train with
    train.keep_nbest >= NBEST). Decode with --checkpoint ave_<NBEST>best.

    Example: skiptool average exp/pvae --nbest 10 && skiptool decode exp/pvae out --checkpoint ave_10best ...
    """
    from skiptool.train import checkpoint as ckpt
    from skiptool.train import load_experiment

    train_cfg = load_experiment(exp_dir).train
    out = ckpt.checkpoint_path(exp_dir, ckpt.average_name(nbest))
    if out.exists() and not overwrite:
        raise SkiptoolError(f"{out}: exists; pass --overwrite to average again")
    path, epochs = ckpt.write_average(exp_dir, nbest, train_cfg.best_metric, train_cfg.best_mode)
    typer.echo(f"{path}: mean of epochs {' '.join(map(str, epochs))} "
               f"(the {len(epochs)} best by {train_cfg.best_metric})")
