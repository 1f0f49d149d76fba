"""One-off generation from files or strings (`skiptool synth`): image, text or speech in, image
(PNG), text or speech (wav, by Griffin-Lim of the post-net's linear spectrogram) out, with a
trained MIB model, one of its baselines (piecewise: image -> text, text -> speech, image ->
speech; CycleGAN: image <-> speech) or a tts model (text -> speech), through the models' common
`generate(source, target, x, lengths)`.

    result = synthesize("image", "speech", ["cat.png"], Path("out.wav"), Path("exp/mib"))
    result = synthesize("text", "image", ["a red circle"], Path("circle.png"), None)   # the recipe's best model

Inputs are converted as the model's training features were (its config's image_features and
speech_features): any image PIL reads (RGBA composited, grayscale expanded to RGB, resized),
any audio file soundfile reads (downmixed, resampled). Text is one sentence given as words, files
of one sentence per line, or data dirs with a Kaldi `text` (outputs named by its keys);
characters outside the symbol table are dropped with a warning naming them.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import yaml

from skiptool.utils.errors import SkiptoolError

log = logging.getLogger(__name__)

MODALITIES = ("image", "text", "speech")
# The directions each model is trained for. MIB: cross-modal, and skip-modal image <-> speech; a
# modality to itself is never trained (no decoder learns to reconstruct its own encoder's input).
DIRECTIONS = {
    "mib": (("image", "text"), ("speech", "text"), ("text", "image"), ("text", "speech"), ("image", "speech"),
            ("speech", "image")),
    "piecewise": (("image", "text"), ("text", "speech"), ("image", "speech")),
    "cyclegan": (("image", "speech"), ("speech", "image")),
    "tts": (("text", "speech"),),
}
SYNTH_MODELS = tuple(DIRECTIONS)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
OUTPUT_SUFFIX = {"image": ".png", "speech": ".wav", "text": ".txt"}
HOW_TO_TRAIN = ("train one with egs/coco_emt4/run.sh, or pass a trained model with --model exp/<tag>")
REPO = Path(__file__).resolve().parents[2]


@dataclass
class SynthResult:
    model_dir: Path
    outputs: list[Path] = field(default_factory=list)  # files written
    texts: list[tuple[str, str]] = field(default_factory=list)  # (name, text) for --to text
    audio_seconds: float = 0.0  # total duration of generated speech


def find_default_model(roots: Sequence[Path] | None = None) -> Path | None:
    """The recipe's model: an MIB exp dir with checkpoints/best.pt under exp/ or exp/<setup>/ of
    egs/coco_emt4 (looked for from the current dir, as the recipe dir or the repo, and in this
    repo); one named `mib` (the full model, not an ablation) first, the most recently trained."""
    roots = [Path.cwd(), REPO] if roots is None else roots
    candidates = set()
    for root in roots:
        for pattern in ("exp/*", "exp/*/*", "egs/coco_emt4/exp/*", "egs/coco_emt4/exp/*/*"):
            for exp in root.glob(pattern):
                if (exp / "checkpoints" / "best.pt").is_file() and _model_name(exp) == "mib":
                    candidates.add(exp.resolve())
    return max(candidates, key=lambda d: (d.name == "mib", (d / "checkpoints" / "best.pt").stat().st_mtime),
               default=None)


def _model_name(exp_dir: Path) -> str | None:
    try:
        return (yaml.safe_load((exp_dir / "config.yaml").read_text()) or {}).get("model")
    except (OSError, yaml.YAMLError, AttributeError):
        return None


def check_modalities(src: str, tgt: str) -> None:
    for flag, value in (("--from", src), ("--to", tgt)):
        if value not in MODALITIES:
            raise SkiptoolError(f"{flag} {value}: unknown modality; use one of {', '.join(MODALITIES)}")


def check_direction(src: str, tgt: str, model_name: str = "mib") -> None:
    check_modalities(src, tgt)
    if (src, tgt) not in DIRECTIONS[model_name]:
        pairs = ", ".join(f"{a}->{b}" for a, b in DIRECTIONS[model_name])
        raise SkiptoolError(f"--from {src} --to {tgt}: not a direction {model_name} generates; it does {pairs}")


def resolve_model(model_dir: Path | None) -> tuple[Path, str]:
    """The exp dir and its model's name (one of SYNTH_MODELS)."""
    if model_dir is None:
        found = find_default_model()
        if found is None:
            raise SkiptoolError(f"no trained model found; {HOW_TO_TRAIN}")
        log.info(f"skiptool synth: using {found}")
        return found, "mib"
    if not (model_dir / "config.yaml").is_file():
        raise SkiptoolError(f"--model {model_dir}: not an exp dir of skiptool train (no config.yaml); {HOW_TO_TRAIN}")
    name = _model_name(model_dir)
    if name not in SYNTH_MODELS:
        raise SkiptoolError(f"--model {model_dir}: a '{name}' model, which cannot generate across image, text and "
                            f"speech; skiptool synth takes an MIB model or its baselines "
                            f"({', '.join(SYNTH_MODELS[1:])}) ({HOW_TO_TRAIN})")
    return model_dir, name


# ------------------------------------------------------------------------------------- inputs


def collect_inputs(src: str, args: Sequence[str]) -> list[tuple[str, object]]:
    """(name, source) pairs: image/audio file paths (directories expanded, sorted), or sentences."""
    if not args:
        raise SkiptoolError("no input; give files, a directory or (with --from text) the sentence")
    if src == "text":
        if not " ".join(args).strip():  # before the path checks: Path("") is the current dir
            raise SkiptoolError("empty text; give the sentence to generate from, e.g. \"a red circle\"")
        if all(Path(a).is_dir() for a in args):  # data dirs: their Kaldi text files, keyed
            from skiptool.data.datadir import read_table

            missing = [a for a in args if not (Path(a) / "text").is_file()]
            if missing:
                raise SkiptoolError(f"{missing[0]}: no text file in this directory; give a data dir with a Kaldi "
                                    f"text file, a file of sentences, or the sentence itself")
            keyed = [(k, v.strip()) for a in args for k, v in sorted(read_table(Path(a) / "text").items())]
            empty = [k for k, v in keyed if not v]
            if empty or not keyed:
                raise SkiptoolError(f"{args[0]}/text: empty text" + (f" for '{empty[0]}'" if empty else ""))
            return keyed
        if all(Path(a).is_file() for a in args):
            sentences = [line.strip() for a in args for line in Path(a).read_text(encoding="utf-8").splitlines()]
            sentences = [s for s in sentences if s]
            if not sentences:
                raise SkiptoolError(f"{args[0]}: empty text; give a file with one sentence per line")
            if len(sentences) == 1:
                return [(Path(args[0]).stem, sentences[0])]
            return [(f"line{i:04d}", s) for i, s in enumerate(sentences, start=1)]
        sentence = " ".join(args).strip()
        if not sentence:
            raise SkiptoolError("empty text; give the sentence to generate from, e.g. \"a red circle\"")
        return [("text", sentence)]
    suffixes = IMAGE_SUFFIXES if src == "image" else AUDIO_SUFFIXES
    files: list[Path] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes and p.is_file())
            if not found:
                raise SkiptoolError(f"{path}: no {src} files ({', '.join(suffixes)}) in this directory")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise SkiptoolError(f"{path}: no such file or directory")
    names: dict[str, int] = {}
    out = []
    for path in files:
        names[path.stem] = names.get(path.stem, 0) + 1
        out.append((path.stem if names[path.stem] == 1 else f"{path.stem}_{names[path.stem]}", path))
    return out


def output_paths(names: Sequence[str], tgt: str, output: Path | None, overwrite: bool) -> list[Path] | None:
    """One output file per input: -o itself for one input, -o/<name><suffix> for several (or
    when -o is a dir); None for text printed only. Existing files need `overwrite`."""
    if output is None:
        if tgt == "text":
            return None
        raise SkiptoolError(f"-o: missing; name the {OUTPUT_SUFFIX[tgt]} file to write (a directory for several inputs)")
    if tgt == "text":  # one file: the sentence, or a Kaldi text table of every input
        paths = [output / "text" if output.is_dir() else output]
    elif len(names) == 1 and not output.is_dir():
        paths = [output]
    else:
        if output.exists() and not output.is_dir():
            raise SkiptoolError(f"-o {output}: {len(names)} inputs need a directory for their outputs, not a file")
        paths = [output / f"{name}{OUTPUT_SUFFIX[tgt]}" for name in names]
    for path in paths:
        if path.exists() and not overwrite:
            raise SkiptoolError(f"{path}: already exists; pass --overwrite to replace it")
    return paths


# ----------------------------------------------------------------------------------- generate


def _image_batch(model, sources: Sequence[Path]) -> torch.Tensor:
    from skiptool.data.image import ImageFeatsConfig, image_to_array, open_image

    cfg = model.cfg
    conf = ImageFeatsConfig(**cfg.image_features) if cfg.image_features else \
        ImageFeatsConfig(height=cfg.image_size, width=cfg.image_size, channels=cfg.image_channels)
    arrays = [image_to_array(open_image(path), conf) for path in sources]  # RGBA / gray converted here
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _text_batch(model, tokenizer, sentences: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    from skiptool.decode.mib import pad_tokens

    ids = []
    for sentence in sentences:
        tokens = tokenizer.encode(sentence)  # warns, naming them, about characters outside the table
        if not tokens:
            raise SkiptoolError(f"text {sentence[:60]!r}: no character of the model's symbol table; "
                                f"write it in letters and punctuation")
        ids.append(torch.tensor(tokens, dtype=torch.long))
    return pad_tokens(ids, model.cfg.pad_id)


def _speech_batch(model, sources: Sequence[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    from skiptool.audio.io import load_wav
    from skiptool.audio.transforms import TacotronFeatsConfig, make_extractor, resample

    conf = TacotronFeatsConfig(**_speech_features(model))
    extract = make_extractor("mel", conf)
    mels = []
    for path in sources:
        wav, rate = load_wav(path, downmix=True)
        if rate != conf.sample_rate:
            wav = resample(wav, rate, conf.sample_rate)
        mel = extract([wav])[0]
        if mel is None or len(mel) == 0:
            raise SkiptoolError(f"{path}: too short to make a single frame of speech features")
        mels.append(torch.from_numpy(mel))
    lengths = torch.tensor([len(m) for m in mels], dtype=torch.long)
    return torch.nn.utils.rnn.pad_sequence(mels, batch_first=True), lengths


def _speech_features(model) -> dict:
    if not model.cfg.speech_features:
        raise SkiptoolError("the model's config has no speech_features (the features it was trained on); "
                            "retrain it with skiptool train")
    return model.cfg.speech_features


@contextlib.contextmanager
def one_thread():
    """Run the autoregressive decoder on one intra-op thread: its per-step tensors are far too small
    to split, and on busy cores waiting for a second thread made each step ~100x slower (measured
    in benchmarks/bench_mib.py: 6.4 s instead of 0.02 s for 48 steps)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def synthesize(src: str, tgt: str, args: Sequence[str], output: Path | None, model_dir: Path | None,
               overwrite: bool = False, seed: int = 0, batch_size: int = 8, fixed_steps: int | None = None,
               ) -> SynthResult:
    """Generate `tgt` from each input of `args`; see the module doc. `fixed_steps` makes MIB's speech
    a fixed number of decoder steps (ignoring the stop token), for timing."""
    from skiptool.audio.io import write_wav
    from skiptool.audio.tacotron import TacotronSpecConfig
    from skiptool.audio.vocoder_config import GriffinLimConfig
    from skiptool.models.mib import mib_tokenizer
    from skiptool.models.piecewise import as_mib_config
    from skiptool.train.trainer import load_trained_model

    check_modalities(src, tgt)
    model_dir, model_name = resolve_model(model_dir)
    check_direction(src, tgt, model_name)
    inputs = collect_inputs(src, args)
    paths = output_paths([name for name, _ in inputs], tgt, output, overwrite)
    model, _ = load_trained_model(model_dir, "best", "cpu")
    tokenizer = None
    if "text" in (src, tgt):  # MIB, piecewise or tts: the token list they were trained with
        tokenizer = mib_tokenizer(model.cfg if model_name == "mib" else as_mib_config(model.cfg), model_dir)
    result = SynthResult(model_dir)
    torch.manual_seed(seed)
    for start in range(0, len(inputs), batch_size):
        names, sources = zip(*inputs[start:start + batch_size])
        if src == "image":
            x, lengths = _image_batch(model, sources), None
        elif src == "text":
            x, lengths = _text_batch(model, tokenizer, sources)
        else:
            x, lengths = _speech_batch(model, sources)
        targets = paths[start:start + batch_size] if paths is not None else [None] * len(names)
        if tgt == "text":
            tokens, lengths = model.generate(src, "text", x, lengths)
            result.texts += [(name, tokenizer.decode(tokens[i, : int(lengths[i])].tolist()))
                             for i, name in enumerate(names)]
        elif tgt == "image":
            from PIL import Image

            for path, image in zip(targets, model.generate(src, "image", x, lengths)):
                pixels = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(path, format="PNG")
                result.outputs.append(path)
        else:
            from skiptool.audio.griffinlim import features_to_wavs

            with one_thread():
                if fixed_steps is not None and model_name == "mib":
                    speech = model.decode_speech(model.embed(src, x, lengths), fixed_steps=fixed_steps)
                else:
                    speech = model.generate(src, "speech", x, lengths)
            spec = TacotronSpecConfig(**{k: v for k, v in _speech_features(model).items()
                                         if k in TacotronSpecConfig.__dataclass_fields__})
            linear = [speech.linear[i, : max(1, int(speech.lengths[i]))] for i in range(len(names))]
            wavs = features_to_wavs(linear, "linear", spec, GriffinLimConfig(), seeds=seed)
            for path, wav in zip(targets, wavs):
                write_wav(path, wav.numpy(), spec.sample_rate)
                result.outputs.append(path)
                result.audio_seconds += len(wav) / spec.sample_rate
    if tgt == "text" and paths is not None:
        from skiptool.utils.fileio import atomic_write_text

        lines = [text if len(result.texts) == 1 else f"{name} {text}" for name, text in result.texts]
        atomic_write_text(paths[0], "".join(line + "\n" for line in lines))
        result.outputs.append(paths[0])
    return result
