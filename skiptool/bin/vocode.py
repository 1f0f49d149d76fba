"""`skiptool vocode`: Tacotron mel or linear features (Kaldi feats.scp) -> wavs by fast Griffin-Lim."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
import yaml

from skiptool.audio.vocoder_config import GriffinLimConfig
from skiptool.utils.config import to_dict
from skiptool.utils.errors import SkiptoolError

_DEFAULT = GriffinLimConfig()


class FeatureType(str, Enum):
    mel = "mel"
    linear = "linear"
    fbank = "fbank"


class MelInversion(str, Enum):
    pinv = "pinv"
    nnls = "nnls"


class InitialPhase(str, Enum):
    random = "random"
    zeros = "zeros"


def vocode(
    feats_scp: Path = typer.Argument(..., help="Kaldi feats.scp of features as `skiptool feats --type "
                                               "mel|linear|fbank` writes them (or a model generates them)."),
    out_dir: Path = typer.Argument(..., help="Output directory: OUT_DIR/wav/<key>.wav and OUT_DIR/wav.scp."),
    feature_type: FeatureType = typer.Option(..., "--type", help="Kind of features in FEATS_SCP: mel or "
                                             "linear (Tacotron), fbank (Kaldi log-mel)."),
    conf: Optional[Path] = typer.Option(None, "--conf", help="Feature config the features were made with. Default: "
                                        "conf.yaml beside FEATS_SCP, else (mel, linear) built-in defaults."),
    cmvn: Optional[Path] = typer.Option(None, "--cmvn", help="fbank: CMVN stats to undo (Kaldi layout). Default: "
                                        "cmvn.ark beside FEATS_SCP, or the stats its conf.yaml names."),
    n_iter: int = typer.Option(_DEFAULT.n_iter, "--n-iter", min=0, help="Griffin-Lim iterations."),
    power: float = typer.Option(_DEFAULT.power, "--power", help="Raise magnitudes to this power before "
                                "Griffin-Lim (level kept); > 1 sharpens harmonics."),
    momentum: float = typer.Option(_DEFAULT.momentum, "--momentum", help="Fast Griffin-Lim momentum in [0, 1); "
                                   "0 = plain Griffin-Lim."),
    mel_inversion: MelInversion = typer.Option(_DEFAULT.mel_inversion, "--mel-inversion", help="Mel to linear: "
                                               "pseudo-inverse, or non-negative least squares (slower)."),
    nnls_iter: int = typer.Option(_DEFAULT.nnls_iter, "--nnls-iter", min=0, help="Iterations of the NNLS solver."),
    init: InitialPhase = typer.Option(_DEFAULT.init, "--init", help="Initial phase."),
    seed: int = typer.Option(_DEFAULT.seed, "--seed", help="Seed of the random initial phase (per utterance key)."),
    batch_size: int = typer.Option(_DEFAULT.batch_size, "--batch-size", min=1, help="Utterances per batch."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a finished or different run in OUT_DIR."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved configs and exit."),
) -> None:
    """Turn mel, linear or FBank features back into speech with fast Griffin-Lim.

    mel, linear: Tacotron features (skiptool feats --type mel|linear); normalisation and pre-emphasis are undone, mel goes to linear by pseudo-inverse or NNLS (--mel-inversion).

    fbank: Kaldi log-mel FBank (skiptool feats --type fbank, with or without VAD and CMVN); the CMVN is undone (cmvn.ark beside FEATS_SCP, or --cmvn), the mel energies mapped to a power spectrum by the pseudo-inverse of Kaldi's mel filterbank, and Griffin-Lim runs at the FBank geometry (n_fft 512, window 400, hop 160 at 16 kHz).

    Writes OUT_DIR/wav/<key>.wav (16-bit) and, last, OUT_DIR/wav.scp. Rerunning the same command after an interruption resumes it, skipping the wavs already written.

    Example: skiptool vocode dump/mel/test/feats.scp exp/griffinlim --type mel --n-iter 60

    Example: skiptool vocode dump/fbank/test/feats.scp exp/griffinlim --type fbank --n-iter 60
    """
    try:
        gl = GriffinLimConfig(n_iter=n_iter, power=power, momentum=momentum, init=init.value,
                              seed=seed, mel_inversion=mel_inversion.value, nnls_iter=nnls_iter,
                              batch_size=batch_size)
    except ValueError as e:
        raise SkiptoolError(f"vocode options: {e}") from None
    from skiptool.audio.griffinlim import resolve_spec_config, vocode_feats_scp  # torch: import on use

    if feature_type == FeatureType.fbank:
        from skiptool.audio.fbank_inverse import load_fbank_inversion

        spec, note = load_fbank_inversion(feats_scp, conf, cmvn)
    elif cmvn is not None:
        raise SkiptoolError("--cmvn is for --type fbank (Tacotron mel/linear features have no CMVN)")
    else:
        spec, note = resolve_spec_config(feats_scp, conf)
    if print_config:
        features = to_dict(spec.cfg) if feature_type == FeatureType.fbank else to_dict(spec)
        resolved = {"features": features, "griffinlim": to_dict(gl)}
        typer.echo(f"# {note}\n" + yaml.safe_dump(resolved, sort_keys=False, default_flow_style=False), nl=False)
        return
    print(f"skiptool vocode: {note}", file=sys.stderr)
    result = vocode_feats_scp(feats_scp, out_dir, feature_type.value, spec, gl, overwrite, cfg_source=note)
    extra = f", {result.resumed} kept from an interrupted run" if result.resumed else ""
    clipped = f"; {result.rescaled} scaled down to avoid clipping" if result.rescaled else ""
    typer.echo(f"vocoded {result.written} utterances{extra}{clipped}: {result.wav_scp}")
