"""What MIB's baselines (paper 000, Table 1) generate, in MIB's output layouts: the readers and
writers of skiptool/decode/mib.py, so that the recipe vocodes, transcribes and scores the three
models' outputs alike.

Tasks (`skiptool decode EXP OUT --task T --data image=DIR`, an image feature dir of the caption corpus):

    piecewise  image2text    OUT/text (greedy captions keyed by image), OUT/ref_captions
               image2speech  OUT/mel/, OUT/linear/ (the TTS of the greedy caption), OUT/captions (those
                             captions, keyed by image), OUT/ref_captions, OUT/images/alignment_<key>.png
    cyclegan   image2speech  OUT/mel/, OUT/linear/ (G's num_frames frames per image), OUT/ref_captions,
                             OUT/images/alignment_<key>.png

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
    read_images,
    write_ref_captions,
)
from skiptool.models.cyclegan import CycleGAN
from skiptool.models.mib import mib_tokenizer
from skiptool.models.piecewise import Piecewise, as_mib_config
from skiptool.utils.errors import SkiptoolError


class _ImageToSpeech:
    """What decode.mib.generate_speech asks of a model, `cfg` and `decode_speech(x)`, with x a
    batch of images (MIB's x is u)."""

    def __init__(self, model: Piecewise | CycleGAN):
        self.cfg = model.cfg
        self.decode_speech = model.image_to_speech


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
    generate_speech(_ImageToSpeech(model), keys, lambda a, b: images[a:b].to(device), out_dir, seed,
                    "image -> speech")
    write_ref_captions(image_dir, out_dir / "ref_captions")


def run_task(model: Any, model_name: str, task: str, dirs: dict[str, Path], out_dir: Path, device: torch.device,
             seed: int = 0, exp_dir: Path | None = None) -> None:
    """One task of the module doc on the `--data image=DIR` dir."""
    unknown = sorted(set(dirs) - {"image"})
    if "image" not in dirs or unknown:
        given = "--data image=DIR: missing" if "image" not in dirs else f"--data {unknown[0]}=DIR: not read"
        raise SkiptoolError(f"{given}; task '{task}' of model '{model_name}' reads image=DIR (image features of "
                            f"the caption corpus) only")
    image_dir = Path(dirs["image"])
    tokenizer = None
    if model_name == "piecewise":  # load it first: a missing token list fails before any decoding
        tokenizer = mib_tokenizer(as_mib_config(model.cfg), exp_dir)
    if task == "image2speech":
        image_to_speech(model, image_dir, out_dir, device, seed)
    if tokenizer is not None:  # piecewise: its captions (image2text), or the captions it spoke (image2speech)
        image_to_text(model, image_dir, out_dir, device, tokenizer, "text" if task == "image2text" else "captions")
