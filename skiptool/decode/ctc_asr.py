"""A trained CTC recogniser's transcripts of a feature dir (task `transcribe` of model ctc_asr)."""

from __future__ import annotations

from pathlib import Path

import torch

from skiptool.data.datadir import write_table
from skiptool.utils.errors import SkiptoolError


def transcribe(model, experiment, feats_dir: Path, out_dir: Path, device: torch.device) -> Path:
    """Write out_dir/text: the greedy transcript of every utterance of feats_dir, keyed as feats.scp."""
    from skiptool.data.datasets import FeatsDataset
    from skiptool.models.ctc_asr import transcribe_features
    from skiptool.utils.config import read_yaml

    cfg = experiment.model_conf
    conf_path = feats_dir / "conf.yaml"
    made_as = read_yaml(conf_path).get("type") if conf_path.is_file() else None
    trained_on = (cfg.feats or {}).get("type")
    if made_as and trained_on and made_as != trained_on:
        raise SkiptoolError(f"{conf_path}: {made_as} features, but the recogniser was trained on {trained_on}; "
                            f"make {trained_on} features of this data (conf: the recogniser's config.yaml, model_conf.feats)")
    dataset = FeatsDataset(feats_dir, labels=False)
    if dataset.dim != cfg.speech_dim:
        raise SkiptoolError(f"{feats_dir}: features have {dataset.dim} dims but the recogniser takes {cfg.speech_dim}")
    texts = transcribe_features(model, dataset.feats, device=device)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(out_dir / "text", dict(zip(dataset.keys, texts)))
    return out_dir / "text"
