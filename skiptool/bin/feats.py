"""`skiptool feats`: features of a data dir (fbank, mfcc, mel, linear, image) into a Kaldi ark/scp dir."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from skiptool.utils.config import parse_overrides


class FeatType(str, Enum):
    fbank = "fbank"
    mfcc = "mfcc"
    mel = "mel"
    linear = "linear"
    image = "image"


class Cmvn(str, Enum):
    none = "none"
    global_ = "global"
    speaker = "speaker"


def feats(
    data_dir: Path = typer.Argument(..., help="Data dir with wav.scp (img.scp for --type image); its other tables "
                                              "are copied to OUT_DIR."),
    out_dir: Path = typer.Argument(..., help="Feature dir to write: feats.scp, utt2num_frames, conf.yaml, "
                                             "data/feats.JOB.ark and the data dir's tables."),
    feat_type: FeatType = typer.Option(..., "--type", help="fbank/mfcc: Kaldi's; mel/linear: Tacotron's "
                                       "(invertible by skiptool vocode); image: resized [0, 1] pixels."),
    conf: Optional[Path] = typer.Option(None, "--conf", help="YAML feature config; missing keys take the built-in "
                                        "defaults, which conf/feats/<type>.yaml lists. A feature dir's conf.yaml works too."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", metavar="KEY=VALUE", help="Override a config key, KEY=VALUE "
                                                  "(repeatable), e.g. --set vad=true."),
    nj: int = typer.Option(1, "--nj", min=1, help="Parallel jobs (processes)."),
    cmvn: Cmvn = typer.Option(Cmvn.none, "--cmvn", help="Mean and variance normalisation with stats over the "
                              "whole dir (global) or per speaker (utt2spk); stats go to OUT_DIR/cmvn.ark or cmvn.scp."),
    cmvn_stats: Optional[Path] = typer.Option(None, "--cmvn-stats", help="With --cmvn global: apply these stats "
                                              "(e.g. the training set's OUT_DIR/cmvn.ark) instead of computing them."),
    cmvn_norm_vars: bool = typer.Option(True, "--cmvn-norm-vars/--no-cmvn-norm-vars", help="Also divide by the "
                                        "standard deviation (off: means only, Kaldi apply-cmvn's default)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo a finished OUT_DIR (default: leave it as is, "
                                   "or stop if it was made with other options)."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved feature config and exit."),
) -> None:
    """Extract features of every utterance in DATA_DIR into OUT_DIR.

    N jobs write OUT_DIR/data/feats.JOB.ark; feats.scp appears only when all have finished, and a
    rerun of an interrupted command resumes from the jobs already done. Audio at another sample
    rate is resampled with a notice (allow_resample: false makes it an error); energy VAD is
    switched on with vad: true.

    Example: skiptool feats data/fsdd/train dump/fbank/train --type fbank --nj 2 --cmvn global
    """
    from skiptool.data.feats import config_yaml, extract_features, load_feats_config  # torch: import on use

    settings = parse_overrides(overrides)
    if print_config:
        cfg = load_feats_config(feat_type.value, conf, settings)
        typer.echo(config_yaml(feat_type.value, cfg), nl=False)
        return
    result = extract_features(data_dir, out_dir, feat_type.value, conf, settings, nj=nj, cmvn=cmvn.value,
                              cmvn_stats=cmvn_stats, cmvn_norm_vars=cmvn_norm_vars, overwrite=overwrite)
    if result.already_done:
        return
    resumed = f", {result.jobs_resumed} job(s) resumed" if result.jobs_resumed else ""
    typer.echo(f"{out_dir}/feats.scp: {result.num_utts} utterances, {result.num_frames} frames of "
               f"{result.feat_dim}-dim {result.feat_type}{resumed}")
