"""What MIB's baselines (paper 000, Table 1) and the tts model generate, in MIB's output layouts:
the readers and writers of skiptool/decode/mib.py, so that the recipe vocodes, transcribes and
scores every model's outputs alike.

Tasks (`skiptool decode EXP OUT --task T --data image=DIR`, an image feature dir of the caption corpus):

    piecewise  image2text    OUT/text (greedy captions keyed by image), OUT/ref_captions
               image2speech  OUT/mel/, OUT/linear/ (the TTS of the greedy caption), OUT/captions (those
                             captions, keyed by image), OUT/ref_captions, OUT/images/alignment_<key>.png
               text2speech   --data text=DIR (a Kaldi text file): OUT/mel/, OUT/linear/ (the TTS alone),
                             OUT/text, OUT/images/alignment_<key>.png, as MIB's text2speech
    cyclegan   image2speech  OUT/mel/, OUT/linear/ (G's num_frames frames per image), OUT/ref_captions,
                             OUT/images/alignment_<key>.png
    tts        text2speech   as piecewise's

As MIB's: each image is decoded once (keys `<img>` of caption keys `<img>-cN`); the speech dirs
carry a conf.yaml of the model's training features (`skiptool vocode OUT/linear/feats.scp OUT/wav
--type linear`); the decoder's pre-net keeps its dropout (`prenet_dropout_at_inference`) and
`seed` makes the output repeatable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from skiptool.data.datadir import write_table
from skiptool.decode.mib import (
    BATCH,
    _batches,
    decoded_texts,
    generate_speech,
    pad_tokens,
    read_images,
    read_token_texts,
    write_ref_captions,
)
from skiptool.models.cyclegan import CycleGAN
from skiptool.models.mib import mib_tokenizer
from skiptool.models.piecewise import Piecewise, as_mib_config
from skiptool.models.tts import TextToSpeech
from skiptool.utils.errors import SkiptoolError


class _SpeechGenerator:
    """What decode.mib.generate_speech asks of a model, `cfg` and `decode_speech(x)`, with x a
    batch of images, or of (tokens, lengths) for text (MIB's x is u)."""

    def __init__(self, model: Piecewise | CycleGAN | TextToSpeech, source: str = "image"):
        self.cfg = model.cfg
        self.decode_speech = model.image_to_speech if source == "image" else lambda x: model.text_to_speech(*x)


@torch.no_grad()
def image_to_text(model: Piecewise, image_dir: Path, out_dir: Path, device: torch.device, tokenizer,
                  name: str = "text") -> None:
    """The piecewise captioner's greedy caption of every image: OUT/<name>, OUT/ref_captions."""
    keys, images = read_images(model, image_dir)
    texts = []
    for start in _batches(len(keys), "image -> text"):
        texts += decoded_texts(tokenizer, *model.image_to_text(images[start:start + BATCH].to(device)))
    write_table(out_dir / name, dict(zip(keys, texts)))
    write_ref_captions(image_dir, out_dir / "ref_captions")


@torch.no_grad()
def image_to_speech(model: Piecewise | CycleGAN, image_dir: Path, out_dir: Path, device: torch.device,
                    seed: int = 0) -> None:
    """Speech for every image: OUT/mel, OUT/linear, OUT/ref_captions and alignment PNGs."""
    keys, images = read_images(model, image_dir)
    generate_speech(_SpeechGenerator(model), keys, lambda a, b: images[a:b].to(device), out_dir, seed,
                    "image -> speech")
    write_ref_captions(image_dir, out_dir / "ref_captions")


@torch.no_grad()
def text_to_speech(model: Piecewise | TextToSpeech, text_dir: Path, out_dir: Path, device: torch.device,
                   tokenizer, seed: int = 0) -> None:
    """The piecewise (or tts) TTS of every sentence of text_dir/text: OUT/mel, OUT/linear, OUT/text."""
    keys, sentences, ids = read_token_texts(model, text_dir, tokenizer)

    def tokens_of(start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, lengths = pad_tokens(ids[start:stop], model.cfg.pad_id)
        return tokens.to(device), lengths.to(device)

    generate_speech(_SpeechGenerator(model, "text"), keys, tokens_of, out_dir, seed, "text -> speech")
    for where in (out_dir, out_dir / "mel", out_dir / "linear"):
        write_table(where / "text", dict(zip(keys, sentences)))


TASK_INPUTS = {"image2text": "image", "image2speech": "image", "text2speech": "text"}


def run_task(model: Any, model_name: str, task: str, dirs: dict[str, Path], out_dir: Path, device: torch.device,
             seed: int = 0, exp_dir: Path | None = None) -> None:
    """One task of the module doc on its `--data` dir (image=DIR, or text=DIR for text2speech)."""
    name = TASK_INPUTS[task]
    unknown = sorted(set(dirs) - {name})
    if name not in dirs or unknown:
        given = f"--data {name}=DIR: missing" if name not in dirs else f"--data {unknown[0]}=DIR: not read"
        what = "image features of the caption corpus" if name == "image" else "a dir with a Kaldi text file"
        raise SkiptoolError(f"{given}; task '{task}' of model '{model_name}' reads {name}=DIR ({what}) only")
    source = Path(dirs[name])
    tokenizer = None
    if model_name in ("piecewise", "tts"):  # load it first: a missing token list fails before any decoding
        tokenizer = mib_tokenizer(as_mib_config(model.cfg), exp_dir)
    if task == "text2speech":
        text_to_speech(model, source, out_dir, device, tokenizer, seed)
        return
    if task == "image2speech":
        image_to_speech(model, source, out_dir, device, seed)
    if tokenizer is not None:  # piecewise: its captions (image2text), or the captions it spoke (image2speech)
        image_to_text(model, source, out_dir, device, tokenizer, "text" if task == "image2text" else "captions")
