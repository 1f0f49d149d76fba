"""`skiptool train`: train a model from a config into exp/<tag>/."""

from __future__ import annotations

from pathlib import Path

import typer

from skiptool.models import MODELS
from skiptool.utils.errors import SkiptoolError


def train(
    model: str = typer.Option(..., "--model", help="Model name, e.g. pvae or mib."),
    config: Path = typer.Option(None, "--config", help="YAML config; unknown keys are errors."),
    train_data: Path = typer.Option(None, "--train-data", help="Data dir (with features) to train on."),
    dev_data: Path = typer.Option(None, "--dev-data", help="Data dir for the dev metric that picks best.pt."),
    exp_dir: Path = typer.Option(Path("exp/train"), "--exp-dir", help="Experiment dir: config, logs, checkpoints."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved config and exit."),
) -> None:
    """Train MODEL; a rerun resumes from EXP_DIR/checkpoints/latest.pt.

    Example: skiptool train --model pvae --config conf/train_pvae.yaml --train-data dump/train --exp-dir exp/pvae
    """
    if model not in MODELS:
        known = ", ".join(sorted(MODELS)) or "none yet"
        raise SkiptoolError(f"--model {model}: unknown model (registered: {known}); "
                            "models arrive with their recipes under egs/")
