"""Text -> speech alone: the piecewise baseline's TTS (`piecewise.TTS`: MIB's text encoder -> FC ->
attention speech decoder -> CBHG post-net) trained on a text-speech corpus by itself.

Every text -> speech and image -> speech output of MIB and its baselines goes through the same
speech decoder, conditioned on one vector. This model trains that path with nothing else in the
way (no captioner, no image, no bottleneck), so a recipe can ask what the decoder reaches on its
own: how many sentences and updates it needs to speak unseen text (egs/coco_emt4/RESULTS.md), an
upper bound for MIB's text -> speech. It is not in paper 000.

    skiptool train --config conf/train/tts.yaml --exp-dir exp/tts \\
        --data speech=dump/mel/train --data linear=dump/linear/train \\
        --dev-data speech=dump/mel/dev --dev-data linear=dump/linear/dev
    skiptool decode exp/tts OUT --task text2speech --data text=data/speech/test
    skiptool synth --from text --to speech "a red circle." -o out.wav --model exp/tts

Transcripts come from the `text` file copied into the mel dir; batches follow MIB's contract
(`collate_mib`, text-speech items only); the loss is MIB's speech loss (mel_l1 + linear_l1 +
stop_bce, + guided_attn when `guided_attention_weight` is set).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from skiptool.models.mib import SpeechOutput, TextFields, mib_tokenizer, text_speech_corpus
from skiptool.models.piecewise import TTS, alignment_plot, as_mib_config
from skiptool.utils.errors import SkiptoolError

DATA_NAMES = ("speech", "linear")  # what `--data NAME=DIR` gives the TTS


@dataclass
class TTSConfig(TextFields):
    """The fields of MIB's text encoder, speech decoder and post-net, with MIB's names and
    defaults (the paper's, appendix 6). The image and text-decoder fields that TextFields
    carries for MIB are accepted and unused."""

    def __post_init__(self) -> None:
        as_mib_config(self)  # MIB's checks of the shared fields (ValueError)


class TextToSpeech(nn.Module):
    def __init__(self, cfg: TTSConfig):
        super().__init__()
        self.cfg = cfg
        self.tts = TTS(as_mib_config(cfg))
        self.last_alignment: Tensor | None = None  # (steps, slots) of the first item of the last forward

    def forward(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        if "speech" not in batch:
            raise SkiptoolError("batch: no speech; tts trains on speech + linear + speech_text (MIB's batch contract)")
        terms, self.last_alignment = self.tts.train_step(batch, "tts")
        loss = sum(terms.values())
        return loss, {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}}

    def on_epoch_end(self, exp_dir: str | Path, epoch: int) -> Path | None:
        """Trainer hook: the decoder's attention alignment of the epoch's last batch as a PNG."""
        return alignment_plot(self.last_alignment, exp_dir, epoch)

    @torch.no_grad()
    def text_to_speech(self, tokens: Tensor, lengths: Tensor | None = None) -> SpeechOutput:
        return self.tts.speak(tokens, lengths)

    @torch.no_grad()
    def generate(self, source: str, target: str, x: Tensor, lengths: Tensor | None = None) -> Any:
        """As MIB.generate, for text -> speech only. Call `model.eval()` first."""
        if (source, target) != ("text", "speech"):
            raise SkiptoolError(f"--from {source} --to {target}: the tts model generates text -> speech only")
        return self.text_to_speech(x, lengths)


def build_tts(cfg: TTSConfig) -> TextToSpeech:
    """Registry builder (`ModelEntry.build`)."""
    return TextToSpeech(cfg)


def tts_dataset(cfg: TTSConfig, data_dirs: Mapping[str, Path], train: bool, seed: int):
    """Registry dataset (`ModelEntry.dataset`): `--data speech=` a mel and `linear=` a linear
    feature dir of one text-speech corpus (same keys, MIB's checks: `text_speech_corpus`)."""
    from skiptool.data.datasets import data_dir

    flag = "--data" if train else "--dev-data"
    unknown = sorted(set(data_dirs) - set(DATA_NAMES))
    if unknown:
        raise SkiptoolError(f"{flag} {unknown[0]}=...: model 'tts' reads speech=DIR (mel) and linear=DIR only")
    dirs = {name: data_dir(data_dirs, name, train, "tts") for name in DATA_NAMES}
    return text_speech_corpus(cfg, dirs["speech"], dirs["linear"], mib_tokenizer(as_mib_config(cfg)).encode)
