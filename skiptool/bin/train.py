"""`skiptool train`: train a model from a config into an exp dir (see skiptool/train/trainer.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from skiptool.utils import progress
from skiptool.utils.config import parse_overrides, to_yaml
from skiptool.utils.errors import SkiptoolError

DATA_HELP = ("Feature dir as NAME=DIR, NAME being what the model reads (speech, image); repeat for a "
             "model that reads several, e.g. --data speech=dump/fbank/train --data image=dump/image/train.")


def parse_data_args(values: list[str] | None, flag: str) -> dict[str, Path]:
    """['speech=dump/a', 'image=dump/b'] -> {'speech': Path('dump/a'), 'image': Path('dump/b')}."""
    dirs: dict[str, Path] = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise SkiptoolError(f"{flag} {value}: give NAME=DIR, e.g. {flag} speech=dump/fbank/train")
        if name in dirs:
            raise SkiptoolError(f"{flag} {name}=...: given twice; give each name once")
        dirs[name] = Path(path)
    return dirs


def _check_dirs(dirs: dict[str, Path], flag: str) -> None:
    for name, path in dirs.items():
        if not (path / "feats.scp").is_file():
            raise SkiptoolError(f"{flag} {name}={path}: no feats.scp there; give a feature dir made by "
                                f"`skiptool feats`")


def train(
    config: Path = typer.Option(..., "--config", help="Training YAML: model, model_conf, train. Unknown keys are errors."),
    data: list[str] = typer.Option(None, "--data", help=DATA_HELP, metavar="NAME=DIR"),
    dev_data: list[str] = typer.Option(None, "--dev-data", metavar="NAME=DIR",
                                       help="Dev feature dirs, same names as --data; the dev stat "
                                            "train.best_metric picks best.pt. Without it, train stats do."),
    exp_dir: Path = typer.Option(None, "--exp-dir", help="Experiment dir: config.yaml, train.log, checkpoints/, "
                                                        "images/. A rerun resumes from checkpoints/latest.pt."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if available), cpu or cuda."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Data-parallel processes, launched with torchrun "
                                                        "(gloo on CPU, nccl on GPU: one per GPU)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start afresh in an exp dir that holds a run "
                                                              "(its checkpoints, log and curves are deleted)."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the full resolved config and exit."),
    overrides: list[str] = typer.Argument(None, metavar="KEY=VALUE",
                                          help="Config overrides, e.g. train.max_epochs=5 train.optim.lr=0.01."),
) -> None:
    """Train the model named in CONFIG on feature dirs; rerunning the same command resumes.

    Writes EXP_DIR/config.yaml (resolved), train.log (a stats line per epoch),
    checkpoints/{N}epoch.pt, checkpoints/latest.pt, checkpoints/best.pt and images/<stat>.png.
    Several processes: --nproc 2, or the same command as
    `torchrun --nproc-per-node 2 -m skiptool.bin.main train ...`.

    Example: skiptool train --config conf/train/pvae.yaml --data speech=dump/fbank/train --data image=dump/image/train --dev-data speech=dump/fbank/dev --dev-data image=dump/image/dev --exp-dir exp/pvae train.max_epochs=100
    """
    import torch  # here, not at the top: `skiptool --help` should not wait for torch

    from skiptool.train import load_experiment_config, train_experiment
    from skiptool.train.distributed import context_from_env, launch_torchrun, launched_by_torchrun, resolve_device

    experiment = load_experiment_config(config, parse_overrides(overrides))
    if print_config:
        typer.echo(to_yaml(experiment), nl=False)
        return
    if exp_dir is None:
        raise SkiptoolError("--exp-dir: missing; name the dir to write the experiment into, e.g. --exp-dir exp/pvae")
    data_dirs = parse_data_args(data, "--data")
    dev_dirs = parse_data_args(dev_data, "--dev-data")
    if not data_dirs:
        raise SkiptoolError("--data: missing; give the training feature dir(s) as NAME=DIR, "
                            "e.g. --data speech=dump/fbank/train")
    if dev_dirs and set(dev_dirs) != set(data_dirs):
        raise SkiptoolError(f"--dev-data: names {sorted(dev_dirs)} differ from --data names {sorted(data_dirs)}; "
                            f"give a dev dir for each")
    _check_dirs(data_dirs, "--data")
    _check_dirs(dev_dirs, "--dev-data")

    if nproc > 1 and not launched_by_torchrun():
        if resolve_device(device).type == "cuda" and nproc > torch.cuda.device_count():
            raise SkiptoolError(f"--nproc {nproc}: only {torch.cuda.device_count()} GPU(s) visible; use one "
                                f"process per GPU, or --device cpu")
        args = ["--quiet"] if progress.QUIET else []
        args += ["train", "--config", str(config), "--exp-dir", str(exp_dir), "--device", device]
        args += [a for name, path in data_dirs.items() for a in ("--data", f"{name}={path}")]
        args += [a for name, path in dev_dirs.items() for a in ("--dev-data", f"{name}={path}")]
        args += (["--overwrite"] if overwrite else []) + list(overrides or [])
        code = launch_torchrun(nproc, args)
        if code:
            raise SkiptoolError(f"training on {nproc} processes failed (exit status {code}); see the "
                                f"messages above and {exp_dir}/train.log, then rerun to resume")
        return

    result = train_experiment(experiment, data_dirs, dev_dirs or None, exp_dir, device=device, overwrite=overwrite)
    if context_from_env().is_main:
        typer.echo(f"{exp_dir}: best {experiment.train.best_metric}={result.best_value:.6g} at epoch "
                   f"{result.best_epoch} of {result.epochs} ({exp_dir}/checkpoints/best.pt)")
