"""A trained digit classifier's predictions for a feature dir (real or generated features)."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch import nn

from skiptool.data.datadir import write_table
from skiptool.utils.errors import SkiptoolError


def predict(model: nn.Module, experiment, feats_dir: Path, device: torch.device | str = "cpu") -> dict[str, int | str]:
    """{key: predicted class} for every entry of feats_dir's feats.scp: its id, or its name for a
    classifier trained on a table of names (model_conf.class_names)."""
    from skiptool.data.datasets import FeatsDataset, ImageFeatsDataset
    from skiptool.models.classifier import predict_labels

    cfg = experiment.model_conf
    if experiment.model == "image_classifier":
        dataset = ImageFeatsDataset(feats_dir, labels=False)
        expected = (cfg.image_channels, cfg.image_size, cfg.image_size)
        if dataset.shape != expected:
            raise SkiptoolError(f"{feats_dir}: images are {dataset.shape} (C, H, W) but the classifier "
                                f"takes {expected}")
    elif experiment.model == "speech_classifier":
        dataset = FeatsDataset(feats_dir, labels=False)
        if dataset.dim != cfg.speech_dim:
            raise SkiptoolError(f"{feats_dir}: features have {dataset.dim} dims but the classifier takes "
                                f"{cfg.speech_dim}")
    else:
        raise SkiptoolError(f"model '{experiment.model}' is not a classifier; train image_classifier or "
                            f"speech_classifier")
    predictions = predict_labels(model, dataset, device=device)
    names = getattr(cfg, "class_names", None)
    return {key: names[c] for key, c in predictions.items()} if names else predictions


def classify(model: nn.Module, experiment, feats_dir: Path, out_dir: Path, device: torch.device) -> Path:
    """Write out_dir/<table> (predicted class per key; utt2label, or the classifier's table of names
    such as utt2spk) and, when feats_dir has that table, out_dir/ref_<table>."""
    predictions = predict(model, experiment, feats_dir, device)
    table = getattr(experiment.model_conf, "labels", "utt2label")
    out_dir.mkdir(parents=True, exist_ok=True)
    if (feats_dir / table).is_file():
        shutil.copyfile(feats_dir / table, out_dir / f"ref_{table}")
    write_table(out_dir / table, predictions)
    return out_dir / table
