"""The recipe's own CTC recogniser (model `ctc_asr`, skiptool/models/ctc_asr.py) as a scoring backend.

    CTCRecognizer("exp/espeak/ctc_asr").transcribe({"utt1": "a.wav"})   # {"utt1": "a red circle."}

Each waveform gets the features the recogniser was trained on, computed with the feature config
recorded in the exp dir (model_conf.feats: the training features' conf.yaml), resampled to its
rate first. Decoding is greedy, or with `lm_text` (`skiptool score --lm-text`, as for
pocketsphinx) a beam search restricted to the words of that text (`ctc_asr.LexiconDecoder`): give
it the recogniser's own training transcripts. Transcripts are in the model's cleaned spelling
(lower case, numbers spelt out), so score them with --normalize.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from skiptool.metrics.recognizers.lm_text import read_lm_text
from skiptool.utils.errors import SkiptoolError
from skiptool.utils.progress import track


class CTCRecognizer:
    def __init__(self, exp_dir: str | os.PathLike, checkpoint: str = "best", device: str = "cpu",
                 batch_size: int = 32, lm_text: str | os.PathLike | None = None):
        from skiptool.models.ctc_asr import LexiconDecoder, extraction_config
        from skiptool.text.tokenizer import CharTokenizer
        from skiptool.train.trainer import load_experiment, load_trained_model

        if load_experiment(exp_dir).model != "ctc_asr":
            raise SkiptoolError(f"--asr-exp {exp_dir}: holds a '{load_experiment(exp_dir).model}' model, not a "
                                f"ctc_asr recogniser; train one with conf/train/ctc_asr.yaml")
        self.model, experiment = load_trained_model(exp_dir, checkpoint, device)
        self.device, self.batch_size = device, batch_size
        self.feat_type, self.feats_config = extraction_config(experiment.model_conf)
        self.lexicon = None
        if lm_text:
            clean = CharTokenizer(self.model.cfg.cleaner).clean
            words = {w for sentence in read_lm_text(lm_text) for w in clean(" ".join(sentence)).split()}
            self.lexicon = LexiconDecoder(sorted(words))

    def features(self, wavs: Mapping[str, str | os.PathLike]):
        """{key: (frames, dim) float32 features}, as `skiptool feats` makes them for training."""
        from skiptool.audio.io import load_wav
        from skiptool.audio.transforms import make_extractor, resample
        from skiptool.data.feats import utterance_seed

        cfg = self.feats_config
        extractor = make_extractor(self.feat_type, cfg)
        feats = {}
        for key, path in track(wavs.items(), total=len(wavs), description="ctc features", unit="utt"):
            wav, rate = load_wav(path, key, channel=cfg.channel, downmix=cfg.downmix)
            if rate != extractor.sample_rate:
                wav = resample(wav, rate, extractor.sample_rate)
            feats[key] = extractor([wav], seeds=[utterance_seed(key)])[0]
        return feats

    def transcribe(self, wavs: Mapping[str, str | os.PathLike]) -> dict[str, str]:
        import torch

        from skiptool.models.ctc_asr import transcribe_features

        feats = self.features(wavs)
        usable = [k for k, f in feats.items() if f is not None and f.shape[0] > 0]  # too short: no frames
        texts = transcribe_features(self.model, [torch.from_numpy(feats[k]) for k in usable],
                                    self.batch_size, self.device, self.lexicon)
        out = dict.fromkeys(wavs, "")
        out.update(zip(usable, texts))
        return out


def ctc_recognizer(lm_text: str | os.PathLike | None = None, asr_exp: str | os.PathLike | None = None):
    """RECOGNIZERS factory: the ctc_asr model of exp dir `asr_exp`; greedy, or restricted to the
    words of `lm_text` when given."""
    if not asr_exp:
        raise SkiptoolError("--recognizer ctc needs --asr-exp EXP_DIR: a ctc_asr model trained with "
                            "conf/train/ctc_asr.yaml")
    if not (Path(asr_exp) / "config.yaml").is_file():
        raise SkiptoolError(f"--asr-exp {asr_exp}: no config.yaml there; give the exp dir of a trained ctc_asr model")
    return CTCRecognizer(asr_exp, lm_text=lm_text)
