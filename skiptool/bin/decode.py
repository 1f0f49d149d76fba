"""`skiptool decode`: generate with a trained model (skiptool/decode holds what each model can do)."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from skiptool.utils.errors import SkiptoolError

DONE = "decode"
LENGTH_RULES = ("mean", "settled", "stretched")  # --num-frames values other than a number


def decode(
    exp_dir: Path = typer.Argument(..., help="Experiment dir written by `skiptool train`."),
    out_dir: Path = typer.Argument(..., help="Where the outputs go (feats.scp, utt2label, png/, ...)."),
    task: str = typer.Option(..., "--task", help="What to generate: speech2image, image2speech, embed, grids "
                                                 "(PVAE); image2text, speech2text, text2speech, image2speech, "
                                                 "text2image, embed (MIB); image2text, image2speech, text2speech "
                                                 "(piecewise); image2speech (cyclegan); text2speech (tts); "
                                                 "classify (classifiers); transcribe (ctc_asr: OUT/text); the "
                                                 "model's list is in the error when a task does not fit."),
    data: list[str] = typer.Option(None, "--data", metavar="NAME=DIR",
                                   help="Input feature dir by modality, e.g. --data speech=dump/fbank/test; "
                                        "repeat for several."),
    style: list[str] = typer.Option(None, "--style", metavar="NAME=DIR",
                                    help="Style references by modality (a random one, seeded, per output); "
                                         "without it, style is drawn from the prior."),
    checkpoint: str = typer.Option("best", "--checkpoint", help="best, latest, an epoch number or "
                                                                "ave_<N>best (skiptool average)."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if available), cpu or cuda."),
    seed: int = typer.Option(0, "--seed", help="Seed of style draws and prior samples."),
    num_frames: str = typer.Option(None, "--num-frames", metavar="N|mean|settled|stretched",
                                   help="PVAE image2speech: frames per generated utterance, 'mean' (the "
                                        "model's mean training length), 'settled' (until the decoder's "
                                        "output stops changing) or 'stretched' (the settled output resampled "
                                        "in time to the style reference's length); default: the style "
                                        "reference's length, or the mean without --style."),
    settle_threshold: float = typer.Option(None, "--settle-threshold", metavar="X",
                                           help="With --num-frames settled or stretched: the mean absolute "
                                                "change per frame (CMVN'd FBank) below which the decoder has "
                                                "settled [default: 0.04]."),
    draws: int = typer.Option(1, "--draws", metavar="K",
                              help="PVAE speech2image / image2speech: generate each source K times, in the "
                                   "styles of K seeded reference draws (seeds SEED..SEED+K-1), keyed "
                                   "<key>-draw<k>; scoring the dir pools the K draws."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo a finished OUT_DIR."),
) -> None:
    """Run TASK of the model in EXP_DIR on feature dirs, writing OUT_DIR; a finished OUT_DIR is kept.

    Example: skiptool decode exp/pvae exp/pvae/decode_test/speech2image --task speech2image --data speech=dump/fbank/test --style image=dump/image/test
    """
    from skiptool.bin.train import parse_data_args
    from skiptool.decode import DecodeRequest, check_task, decode as run_task
    from skiptool.train.distributed import resolve_device
    from skiptool.train.trainer import load_experiment, load_trained_model
    from skiptool.utils.fileio import is_done, mark_done

    model_name = load_experiment(exp_dir).model
    check_task(model_name, task)  # before any slow work
    if num_frames is not None:
        if (model_name, task) != ("pvae", "image2speech"):
            raise SkiptoolError(f"--num-frames is for --task image2speech of a pvae model, not {task} of "
                                f"{model_name}; remove it")
        if num_frames not in LENGTH_RULES and not (num_frames.isdigit() and int(num_frames) > 0):
            raise SkiptoolError(f"--num-frames {num_frames}: give a positive number of frames, 'mean', "
                                f"'settled' or 'stretched'")
    if settle_threshold is not None and num_frames not in ("settled", "stretched"):
        raise SkiptoolError("--settle-threshold is for --num-frames settled or stretched; remove it or add one")
    if draws != 1:
        if model_name != "pvae" or task not in ("speech2image", "image2speech"):
            raise SkiptoolError(f"--draws is for --task speech2image or image2speech of a pvae model, not "
                                f"{task} of {model_name}; remove it")
        if draws < 1:
            raise SkiptoolError(f"--draws {draws}: give a positive number of style draws per source")
    data_dirs, style_dirs = parse_data_args(data, "--data"), parse_data_args(style, "--style")
    for flag, dirs in (("--data", data_dirs), ("--style", style_dirs)):
        for name, path in dirs.items():
            if name == "text" and flag == "--data":  # sentences to generate from: a data dir with a Kaldi text
                if not (path / "text").is_file():
                    raise SkiptoolError(f"--data text={path}: no text file there; give a dir with a Kaldi "
                                        f"text file (<key> <sentence> per line)")
            elif not (path / "feats.scp").is_file():
                raise SkiptoolError(f"{flag} {name}={path}: no feats.scp there; give a feature dir made by "
                                    f"`skiptool feats`")
    if is_done(out_dir, DONE) and not overwrite:
        typer.echo(f"{out_dir}: already decoded; pass --overwrite to redo it")
        return
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / ".decoding").exists() and not overwrite:
        raise SkiptoolError(f"{out_dir}: exists and holds files skiptool decode did not write; "
                            f"choose another OUT_DIR or pass --overwrite")
    torch_device = resolve_device(device)
    model, experiment = load_trained_model(exp_dir, checkpoint, torch_device)
    if out_dir.exists():  # a killed or overwritten decode: start it afresh
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    (out_dir / ".decoding").touch()
    run_task(DecodeRequest(model, experiment, data_dirs, out_dir, torch_device, style_dirs, seed, exp_dir,
                           num_frames if num_frames is None or num_frames in LENGTH_RULES else int(num_frames), draws,
                           settle_threshold), task)
    (out_dir / ".decoding").unlink()
    mark_done(out_dir, DONE)
    typer.echo(f"{out_dir}: {task} done with {exp_dir} ({checkpoint} checkpoint)")
