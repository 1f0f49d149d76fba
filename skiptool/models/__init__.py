"""One module per model (mib, pvae, cva, cem, m3d, baselines and tts), registered by name in MODELS.

A registry entry says everything `skiptool train` needs to know about a model:

    entry = MODELS["image_classifier"]
    cfg = entry.config_cls(**model_conf)                       # its hyper-parameters (a dataclass)
    model = entry.build(cfg)                                   # nn.Module: forward(batch) -> (loss, stats)
    train_set = entry.dataset(cfg, {"image": Path("dump/image/train")}, True, seed)
    loader = DataLoader(train_set, collate_fn=entry.collate, ...)

`data_dirs` maps the names given on the command line (`--data image=DIR`) to feature dirs; an
entry takes the names it needs (speech, image, ...) and raises a SkiptoolError naming the missing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from torch import Tensor, nn
from torch.utils.data import Dataset

from skiptool.data.datasets import collate
from skiptool.models import classifier, ctc_asr, cyclegan, mib, piecewise, pvae, tts


@dataclass(frozen=True)
class ModelEntry:
    config_cls: type  # dataclass of the model's hyper-parameters (`model_conf:` in a config)
    build: Callable[[Any], nn.Module]  # config -> model
    dataset: Callable[[Any, dict[str, Path], bool, int], Dataset]  # (config, data_dirs, train, seed)
    collate: Callable[[list[dict]], dict[str, Tensor]]


# A plain dict: no dynamic imports, no getattr on strings.
MODELS: dict[str, ModelEntry] = {
    "image_classifier": ModelEntry(classifier.ImageClassifierConfig, classifier.build_image_classifier,
                                   classifier.image_classifier_dataset, collate),
    "speech_classifier": ModelEntry(classifier.SpeechClassifierConfig, classifier.build_speech_classifier,
                                    classifier.speech_classifier_dataset, collate),
    # PVAE and its baselines (model_conf.variant: pvae, pvae_nocm, jmvae_kl, vae_sp, vae_im)
    "pvae": ModelEntry(pvae.PVAEConfig, pvae.build_pvae, pvae.pvae_dataset, collate),
    # MIB (paper 000) and its ablations (model_conf.fusion, use_transformer, use_adversarial)
    "mib": ModelEntry(mib.MIBConfig, mib.build_mib, mib.mib_dataset, mib.collate_mib),
    # MIB's baselines (paper 000, Table 1), on MIB's data and batches
    "piecewise": ModelEntry(piecewise.PiecewiseConfig, piecewise.build_piecewise, piecewise.baseline_dataset,
                            mib.collate_mib),
    "cyclegan": ModelEntry(cyclegan.CycleGANConfig, cyclegan.build_cyclegan, cyclegan.cyclegan_dataset,
                           mib.collate_mib),
    # MIB's text -> speech path alone (the piecewise baseline's TTS), on a text-speech corpus
    "tts": ModelEntry(tts.TTSConfig, tts.build_tts, tts.tts_dataset, mib.collate_mib),
    # CTC recogniser that scores generated speech (independent of the generative models)
    "ctc_asr": ModelEntry(ctc_asr.CTCASRConfig, ctc_asr.build_ctc_asr, ctc_asr.ctc_asr_dataset,
                          ctc_asr.collate_ctc),
}
