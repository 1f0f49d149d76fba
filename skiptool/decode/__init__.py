"""Decoding: what each trained model can generate, as plain functions registered by name.

    TASKS[model_name][task](DecodeRequest) -> None      (writes into request.out_dir)

Task names say what goes in and what comes out: `speech2image`, `image2speech`, `embed`
(latent vectors for clustering and retrieval), `grids` (style-transfer figures), `classify`
(a classifier's predicted utt2label). `skiptool decode` is the command over this table; a model
module adds its tasks here, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from skiptool.utils.errors import SkiptoolError


@dataclass(frozen=True)
class DecodeRequest:
    model: nn.Module  # trained, in eval mode, on `device`
    experiment: Any  # its ExperimentConfig (model name, model_conf, train)
    data: dict[str, Path]  # feature dirs by modality: {"speech": ..., "image": ...}
    out_dir: Path
    device: torch.device
    style: dict[str, Path] = field(default_factory=dict)  # style-reference feature dirs by modality
    seed: int = 0
    exp_dir: Path | None = None  # where the model came from (to find files its config names, e.g. a token list)
    num_frames: int | str | None = None  # PVAE image2speech: generated length (N, "mean", "settled", "stretched"; None: the reference's)
    draws: int = 1  # PVAE speech2image / image2speech: style draws per source (seeds seed .. seed + draws - 1)
    settle_threshold: float | None = None  # PVAE image2speech, num_frames "settled"/"stretched": its threshold (None: the default)

    def need(self, table: str, name: str, task: str) -> Path:
        """The dir given as `--{table} NAME=DIR`, or a user error saying what the task needs."""
        dirs = self.data if table == "data" else self.style
        if name not in dirs:
            raise SkiptoolError(f"--{table} {name}=DIR: missing; task '{task}' of model "
                                f"'{self.experiment.model}' reads {name} features from it")
        return dirs[name]


def _classify(req: DecodeRequest) -> None:
    from skiptool.decode.classify import classify

    modality = "image" if req.experiment.model == "image_classifier" else "speech"
    classify(req.model, req.experiment, req.need("data", modality, "classify"), req.out_dir, req.device)


def _pvae_embed(req: DecodeRequest) -> None:
    from skiptool.decode import pvae

    if not req.data:
        raise SkiptoolError("--data: missing; give speech=DIR and/or image=DIR to embed")
    pvae.embed(req.model, req.data.get("speech"), req.data.get("image"), req.out_dir, req.device)


def _pvae_speech2image(req: DecodeRequest) -> None:
    from skiptool.decode import pvae

    pvae.speech_to_image(req.model, req.need("data", "speech", "speech2image"), req.out_dir, req.device,
                         style_image_dir=req.style.get("image"), seed=req.seed, draws=req.draws)


def _pvae_image2speech(req: DecodeRequest) -> None:
    from skiptool.decode import pvae

    pvae.image_to_speech(req.model, req.need("data", "image", "image2speech"), req.out_dir, req.device,
                         style_speech_dir=req.style.get("speech"), seed=req.seed, num_frames=req.num_frames,
                         draws=req.draws, settle_threshold=req.settle_threshold)


def _pvae_grids(req: DecodeRequest) -> None:
    from skiptool.decode import pvae

    pvae.style_grids(req.model, req.need("data", "speech", "grids"), req.need("data", "image", "grids"),
                     req.out_dir, req.device, seed=req.seed)


def _ctc_transcribe(req: DecodeRequest) -> None:
    from skiptool.decode.ctc_asr import transcribe

    transcribe(req.model, req.experiment, req.need("data", "speech", "transcribe"), req.out_dir, req.device)


def _mib(task: str) -> Callable[[DecodeRequest], None]:
    def run(req: DecodeRequest) -> None:
        from skiptool.decode import mib

        mib.run_task(req.model, task, req.data, req.out_dir, req.device, req.seed, req.exp_dir)

    return run


MIB_TASKS = ("image2text", "speech2text", "text2speech", "image2speech", "text2image", "embed")


def _baseline(task: str) -> Callable[[DecodeRequest], None]:
    def run(req: DecodeRequest) -> None:
        from skiptool.decode import baselines

        baselines.run_task(req.model, req.experiment.model, task, req.data, req.out_dir, req.device, req.seed,
                           req.exp_dir)

    return run


# A plain dict, as MODELS: model name -> task name -> function.
TASKS: dict[str, dict[str, Callable[[DecodeRequest], None]]] = {
    "image_classifier": {"classify": _classify},
    "ctc_asr": {"transcribe": _ctc_transcribe},
    "speech_classifier": {"classify": _classify},
    "mib": {task: _mib(task) for task in MIB_TASKS},
    "piecewise": {task: _baseline(task) for task in ("image2text", "image2speech", "text2speech")},
    "cyclegan": {"image2speech": _baseline("image2speech")},
    "tts": {"text2speech": _baseline("text2speech")},
    "pvae": {"embed": _pvae_embed, "speech2image": _pvae_speech2image, "image2speech": _pvae_image2speech,
             "grids": _pvae_grids},
}


def check_task(model: str, task: str) -> None:
    """A user error listing the model's tasks when it has no `task`."""
    tasks = TASKS.get(model, {})
    if task not in tasks:
        have = ", ".join(sorted(tasks)) or "none yet"
        raise SkiptoolError(f"--task {task}: model '{model}' cannot do it; its tasks: {have}")


def decode(req: DecodeRequest, task: str) -> None:
    """Run `task` of the request's model."""
    check_task(req.experiment.model, task)
    TASKS[req.experiment.model][task](req)
