"""What a trained MIB generates (paper 000), in the layouts the later stages read.

Tasks (`skiptool decode EXP OUT --task T --data NAME=DIR`):

    image2text    --data image=DIR (image features of a caption corpus)   OUT/text keyed by image
    speech2text   --data speech=DIR (mel features)                          OUT/text keyed by utterance
    text2speech   --data text=DIR (a dir with a Kaldi `text`)               OUT/mel/, OUT/linear/, OUT/text
    image2speech  --data image=DIR (skip-modal)                             OUT/mel/, OUT/linear/
    text2image    --data text=DIR                                           OUT/feats.scp, OUT/png/, OUT/text
    embed         --data image=, speech=, text= (any of them)               OUT/<name>.scp vectors u

Keys: a caption feature dir holds one image per caption key `<img>-cN`; image tasks decode each
image once, keyed `<img>`, and write OUT/ref_captions (`<img> <caption>`, one line per caption),
so that `skiptool score --metric bleu --ref OUT/ref_captions --hyp OUT/text` scores image2text and
the transcripts of image2speech. speech2text writes OUT/ref_text (the transcripts of its input).

Speech outputs are Tacotron feature dirs (feats.scp + ark, utt2num_frames, and a conf.yaml of
the model's training features), `mel/` from the decoder and `linear/` from the post-net, so
`skiptool vocode OUT/linear/feats.scp OUT/wav --type linear` speaks them. The attention alignments
of the first ALIGNMENT_PLOTS items go to OUT/images/alignment_<key>.png. Speech generation keeps
the pre-net dropout on (Tacotron; `prenet_dropout_at_inference`); `seed` makes it repeatable.

embed writes u (the memory-fusion output, the representation every decoder reads) as Kaldi
vectors for `skiptool score --metric recall@k`:
    image.scp (by image) and image_text.scp (by caption key) of an image dir, with
    image2text.matches (`<img> <img>-c1 ... <img>-c5`) as the ground truth;
    speech.scp and speech_text.scp (both by utterance: the default same-key ground truth);
    text.scp of a text dir.
e.g. skiptool score --metric recall@k --query OUT/image.scp --candidates OUT/image_text.scp
     --matches OUT/image2text.matches --both-directions
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import kaldiio
import numpy as np
import torch
import yaml
from torch import Tensor

from skiptool.data.datadir import read_table, read_table_lines, write_table
from skiptool.data.datasets import FeatsDataset
from skiptool.data.two_corpora import feats_conf, image_key
from skiptool.models.mib import MIB, SpeechOutput, mib_tokenizer, plot_alignment, recorded_features
from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import atomic_write_text
from skiptool.utils.progress import track

BATCH = 16
ALIGNMENT_PLOTS = 3


# ------------------------------------------------------------------------------------- inputs


def _check_conf(recorded: dict, conf: dict, where: Path, name: str) -> None:
    """Input features must be made as the model's training features were (model_conf.<name>)."""
    if recorded and conf:
        recorded_features(recorded, conf, list(recorded), where, name)


def read_images(model: MIB, image_dir: Path) -> tuple[list[str], Tensor]:
    """Each image of an image feature dir once: keys (`<img>` for caption keys `<img>-cN`) and
    (N, C, S, S) in [0, 1], checked against the model."""
    conf = feats_conf(image_dir)
    if conf.get("type") not in (None, "image"):
        raise SkiptoolError(f"{image_dir}/conf.yaml: holds {conf['type']} features; give image features as image=DIR")
    cfg = model.cfg
    _check_conf(cfg.image_features, conf, image_dir, "image_features")
    shape = (cfg.image_size, cfg.image_size * cfg.image_channels)
    images: dict[str, np.ndarray] = {}
    for key, mat in kaldiio.load_scp_sequential(str(image_dir / "feats.scp")):
        if image_key(key) in images:
            continue
        if mat.shape != shape:
            raise SkiptoolError(f"{image_dir}/feats.scp: '{key}' is {mat.shape}, the model takes images of {shape} "
                                f"({cfg.image_size}x{cfg.image_size}x{cfg.image_channels}); make image features "
                                f"with the model's image_features config")
        images[image_key(key)] = np.asarray(mat, dtype=np.float32)
    if not images:
        raise SkiptoolError(f"{image_dir}/feats.scp: no images; re-run `skiptool feats`")
    keys = sorted(images)
    pixels = np.stack([images[k].reshape(cfg.image_size, cfg.image_size, cfg.image_channels) for k in keys])
    return keys, torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()


def write_ref_captions(image_dir: Path, out_path: Path) -> None:
    """The captions of a caption feature dir's `text`, keyed by image (several lines per image)."""
    if not (image_dir / "text").is_file():
        return
    lines = sorted((image_key(key), key, value) for _, key, value in read_table_lines(image_dir / "text"))
    atomic_write_text(out_path, "".join(f"{img} {value}\n" for img, _, value in lines))


def read_token_texts(model: MIB, text_dir: Path, tokenizer) -> tuple[list[str], list[str], list[Tensor]]:
    """Keys, transcripts and token ids of text_dir/text; a transcript with no symbol is an error."""
    path = text_dir / "text" if text_dir.is_dir() else text_dir
    if not path.is_file():
        raise SkiptoolError(f"{path}: not found; give --data text=DIR with a Kaldi text file (<key> <sentence>)")
    table = read_table(path)
    if not table:
        raise SkiptoolError(f"{path}: no sentences")
    keys = sorted(table)
    ids = []
    for key in keys:
        tokens = tokenizer.encode(table[key])
        if not tokens:
            raise SkiptoolError(f"{path}: '{key}' has no symbol of the model's token list ({table[key]!r}); "
                                f"fix or drop it")
        ids.append(torch.tensor(tokens, dtype=torch.long))
    return keys, [table[k] for k in keys], ids


def pad_tokens(ids: Sequence[Tensor], pad_id: int) -> tuple[Tensor, Tensor]:
    lengths = torch.tensor([len(t) for t in ids], dtype=torch.long)
    return torch.nn.utils.rnn.pad_sequence(list(ids), batch_first=True, padding_value=pad_id), lengths


def read_speech(model: MIB, speech_dir: Path) -> FeatsDataset:
    conf = feats_conf(speech_dir)
    if conf.get("type") not in (None, "mel"):
        raise SkiptoolError(f"{speech_dir}/conf.yaml: holds {conf['type']} features; MIB reads mel features "
                            f"(`skiptool feats DATA DIR --type mel`)")
    _check_conf(model.cfg.speech_features, conf, speech_dir, "speech_features")
    speech = FeatsDataset(speech_dir, labels=False)
    if speech.dim != model.cfg.mel_dim:
        raise SkiptoolError(f"{speech_dir}: {speech.dim}-bin features, the model takes {model.cfg.mel_dim} mel bins")
    return speech


def _batches(n: int, what: str):
    starts = range(0, n, BATCH)
    return track(starts, total=len(starts), description=what, unit="batch")


# ------------------------------------------------------------------------------------ outputs


def speech_conf(model: MIB, kind: str) -> dict:
    """conf.yaml of a generated mel or linear dir: the model's training feature config."""
    cfg = model.cfg
    if not cfg.speech_features:
        raise SkiptoolError("model_conf.speech_features is empty: the model does not say which features it was "
                            "trained on, so its speech cannot be vocoded; retrain it with skiptool train")
    return {"type": kind, **cfg.speech_features, "feat_dim": cfg.mel_dim if kind == "mel" else cfg.linear_dim,
            "cmvn": "none"}


def write_matrices(out_dir: Path, mats: dict[str, np.ndarray], conf: dict) -> None:
    """A feature dir as `skiptool feats` writes it: feats.ark/scp (absolute paths), utt2num_frames, conf.yaml."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ark, scp = (out_dir / "feats.ark").resolve(), (out_dir / "feats.scp").resolve()
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as writer:
        for key in sorted(mats):
            writer(key, np.ascontiguousarray(mats[key], dtype=np.float32))
    write_table(out_dir / "utt2num_frames", {k: len(v) for k, v in mats.items()})
    atomic_write_text(out_dir / "conf.yaml", yaml.safe_dump(conf, sort_keys=False))


def write_speech(model: MIB, out_dir: Path, outputs: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """OUT/mel and OUT/linear feature dirs of {key: (mel, linear)}."""
    for index, kind in enumerate(("mel", "linear")):
        write_matrices(out_dir / kind, {k: v[index] for k, v in outputs.items()}, speech_conf(model, kind))


def split_speech(model: MIB, keys: Sequence[str], out: SpeechOutput) -> dict[str, tuple[np.ndarray, np.ndarray, Tensor]]:
    """{key: (mel, linear, alignment)} cut to each item's length."""
    r = model.cfg.reduction_factor
    result = {}
    for i, key in enumerate(keys):
        frames = int(out.lengths[i])
        result[key] = (out.mel[i, :frames].cpu().numpy(), out.linear[i, :frames].cpu().numpy(),
                       out.alignments[i, : frames // r].cpu())
    return result


def generate_speech(model: MIB, keys: Sequence[str], u_of_batch, out_dir: Path, seed: int, what: str) -> None:
    """Speech for every key (u_of_batch(start, stop) -> u), written as OUT/mel, OUT/linear and alignment PNGs."""
    torch.manual_seed(seed)
    outputs = {}
    for start in _batches(len(keys), what):
        stop = min(start + BATCH, len(keys))
        for key, (mel, linear, alignment) in split_speech(model, keys[start:stop],
                                                          model.decode_speech(u_of_batch(start, stop))).items():
            outputs[key] = (mel, linear)
            if len(outputs) <= ALIGNMENT_PLOTS:
                plot_alignment(alignment, out_dir / "images" / f"alignment_{key}.png", title=f"{what}: {key}")
    empty = [k for k, (mel, _) in outputs.items() if len(mel) == 0]
    if empty:
        raise SkiptoolError(f"'{empty[0]}': the model generated no frames")
    write_speech(model, out_dir, outputs)


def write_images(model: MIB, out_dir: Path, keys: Sequence[str], images: Tensor) -> None:
    """(N, C, S, S) in [0, 1] -> an image feature dir (as `skiptool feats --type image`) + png/<key>.png."""
    from PIL import Image

    cfg = model.cfg
    arrays = images.permute(0, 2, 3, 1).cpu().numpy()  # (N, H, W, C)
    (out_dir / "png").mkdir(parents=True, exist_ok=True)
    for key, array in zip(keys, arrays):
        pixels = (array * 255).round().astype(np.uint8)
        Image.fromarray(pixels[..., 0] if cfg.image_channels == 1 else pixels).save(out_dir / "png" / f"{key}.png")
    conf = {"type": "image", **(cfg.image_features or {"height": cfg.image_size, "width": cfg.image_size,
                                                        "channels": cfg.image_channels}),
            "feat_dim": cfg.image_size * cfg.image_channels, "cmvn": "none"}
    write_matrices(out_dir, {k: a.reshape(a.shape[0], -1) for k, a in zip(keys, arrays)}, conf)


def decoded_texts(tokenizer, tokens: Tensor, lengths: Tensor) -> list[str]:
    return [tokenizer.decode(tokens[i, : int(lengths[i])].tolist()) for i in range(tokens.size(0))]


# -------------------------------------------------------------------------------------- tasks


@torch.no_grad()
def image_to_text(model: MIB, image_dir: Path, out_dir: Path, device: torch.device, tokenizer) -> None:
    keys, images = read_images(model, image_dir)
    texts = []
    for start in _batches(len(keys), "image -> text"):
        u = model.embed("image", images[start:start + BATCH].to(device))
        texts += decoded_texts(tokenizer, *model.decode_text(u))
    write_table(out_dir / "text", dict(zip(keys, texts)))
    write_ref_captions(image_dir, out_dir / "ref_captions")


@torch.no_grad()
def speech_to_text(model: MIB, speech_dir: Path, out_dir: Path, device: torch.device, tokenizer) -> None:
    from skiptool.data.datasets import collate

    speech = read_speech(model, speech_dir)
    texts = {}
    for start in _batches(len(speech), "speech -> text"):
        items = [speech[i] for i in range(start, min(start + BATCH, len(speech)))]
        batch = collate(items)
        u = model.embed("speech", batch["speech"].to(device), batch["speech_lengths"].to(device))
        texts.update(zip([it["key"] for it in items], decoded_texts(tokenizer, *model.decode_text(u))))
    write_table(out_dir / "text", texts)
    if (speech_dir / "text").is_file():
        write_table(out_dir / "ref_text", {k: v for k, v in read_table(speech_dir / "text").items() if k in texts})


@torch.no_grad()
def text_to_speech(model: MIB, text_dir: Path, out_dir: Path, device: torch.device, tokenizer, seed: int = 0) -> None:
    keys, sentences, ids = read_token_texts(model, text_dir, tokenizer)

    def u_of(start: int, stop: int) -> Tensor:
        tokens, lengths = pad_tokens(ids[start:stop], model.cfg.pad_id)
        return model.embed("text", tokens.to(device), lengths.to(device))

    generate_speech(model, keys, u_of, out_dir, seed, "text -> speech")
    for where in (out_dir, out_dir / "mel", out_dir / "linear"):
        write_table(where / "text", dict(zip(keys, sentences)))


@torch.no_grad()
def image_to_speech(model: MIB, image_dir: Path, out_dir: Path, device: torch.device, seed: int = 0) -> None:
    keys, images = read_images(model, image_dir)
    generate_speech(model, keys, lambda a, b: model.embed("image", images[a:b].to(device)), out_dir, seed,
                    "image -> speech")
    write_ref_captions(image_dir, out_dir / "ref_captions")


@torch.no_grad()
def text_to_image(model: MIB, text_dir: Path, out_dir: Path, device: torch.device, tokenizer) -> None:
    keys, sentences, ids = read_token_texts(model, text_dir, tokenizer)
    images = []
    for start in _batches(len(keys), "text -> image"):
        tokens, lengths = pad_tokens(ids[start:start + BATCH], model.cfg.pad_id)
        images.append(model.decode_image(model.embed("text", tokens.to(device), lengths.to(device))).cpu())
    write_images(model, out_dir, keys, torch.cat(images))
    write_table(out_dir / "text", dict(zip(keys, sentences)))


def write_vectors(path: Path, vectors: dict[str, np.ndarray]) -> Path:
    ark, scp = path.with_suffix(".ark").resolve(), path.with_suffix(".scp").resolve()
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as writer:
        for key in sorted(vectors):
            writer(key, vectors[key].astype(np.float32))
    return scp


@torch.no_grad()
def embed(model: MIB, dirs: dict[str, Path], out_dir: Path, device: torch.device, tokenizer) -> dict[str, Path]:
    """u of every input (module doc); returns {name: scp path}."""
    unknown = sorted(set(dirs) - {"image", "speech", "text"})
    if unknown or not dirs:
        raise SkiptoolError(f"--data {unknown[0] if unknown else 'NAME'}=DIR: embed reads image=, speech= and/or text= dirs")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}

    def text_vectors(keys: list[str], ids: list[Tensor]) -> dict[str, np.ndarray]:
        vectors = {}
        for start in range(0, len(keys), BATCH):
            tokens, lengths = pad_tokens(ids[start:start + BATCH], model.cfg.pad_id)
            u = model.embed("text", tokens.to(device), lengths.to(device)).cpu().numpy()
            vectors.update(zip(keys[start:start + BATCH], u))
        return vectors

    if "image" in dirs:
        keys, images = read_images(model, dirs["image"])
        vectors = {}
        for start in _batches(len(keys), "image u"):
            vectors.update(zip(keys[start:start + BATCH],
                               model.embed("image", images[start:start + BATCH].to(device)).cpu().numpy()))
        written["image"] = write_vectors(out_dir / "image", vectors)
        if (dirs["image"] / "text").is_file():
            text_keys, _, ids = read_token_texts(model, dirs["image"], tokenizer)
            written["image_text"] = write_vectors(out_dir / "image_text", text_vectors(text_keys, ids))
            matches: dict[str, list[str]] = {}
            for key in text_keys:
                matches.setdefault(image_key(key), []).append(key)
            write_table(out_dir / "image2text.matches", matches)
    if "speech" in dirs:
        speech = read_speech(model, dirs["speech"])
        from skiptool.data.datasets import collate

        vectors = {}
        for start in _batches(len(speech), "speech u"):
            items = [speech[i] for i in range(start, min(start + BATCH, len(speech)))]
            batch = collate(items)
            u = model.embed("speech", batch["speech"].to(device), batch["speech_lengths"].to(device))
            vectors.update(zip([it["key"] for it in items], u.cpu().numpy()))
        written["speech"] = write_vectors(out_dir / "speech", vectors)
        if (dirs["speech"] / "text").is_file():
            text_keys, _, ids = read_token_texts(model, dirs["speech"], tokenizer)
            written["speech_text"] = write_vectors(out_dir / "speech_text", text_vectors(text_keys, ids))
    if "text" in dirs:
        text_keys, _, ids = read_token_texts(model, dirs["text"], tokenizer)
        written["text"] = write_vectors(out_dir / "text", text_vectors(text_keys, ids))
    return written


TASK_INPUTS = {"image2text": "image", "speech2text": "speech", "text2speech": "text", "image2speech": "image",
               "text2image": "text"}


def run_task(model: MIB, task: str, dirs: dict[str, Path], out_dir: Path, device: torch.device, seed: int = 0,
             exp_dir: Path | None = None) -> None:
    """One task of the module doc on the `--data` dirs."""
    tokenizer = mib_tokenizer(model.cfg, exp_dir)
    if task == "embed":
        embed(model, dirs, out_dir, device, tokenizer)
        return
    name = TASK_INPUTS[task]
    if name not in dirs:
        raise SkiptoolError(f"--data {name}=DIR: missing; task '{task}' of model 'mib' reads it"
                            + (" (a dir with a Kaldi text file)" if name == "text" else ""))
    source = Path(dirs[name])
    if task == "image2text":
        image_to_text(model, source, out_dir, device, tokenizer)
    elif task == "speech2text":
        speech_to_text(model, source, out_dir, device, tokenizer)
    elif task == "text2speech":
        text_to_speech(model, source, out_dir, device, tokenizer, seed)
    elif task == "image2speech":
        image_to_speech(model, source, out_dir, device, seed)
    else:
        text_to_image(model, source, out_dir, device, tokenizer)


__all__ = ["run_task", "embed", "image_to_text", "speech_to_text", "text_to_speech", "image_to_speech", "text_to_image",
           "read_images", "write_speech"]
