"""What a trained PVAE (or baseline) generates: latents, cross-modal digits in reference styles,
and the style-transfer grids of paper 004 (figs. 4 and 5).

Outputs are feature dirs in the layouts `skiptool feats` writes, so that the rest of the recipe
reads them like real data: generated images as `--type image` dirs (the image classifier scores
them), generated FBank as `--type fbank` dirs with the conf.yaml and CMVN stats of the reference
speech (`skiptool vocode --type fbank` undoes the CMVN and turns them into audio).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import kaldiio
import numpy as np
import torch
from torch import Tensor

from skiptool.data.corpora.fsdd import DIGIT_WORDS
from skiptool.data.datadir import read_table, write_table
from skiptool.data.datasets import FeatsDataset, ImageFeatsDataset, collate
from skiptool.models.pvae import PVAE
from skiptool.nn.augment import resample_time
from skiptool.utils.errors import SkiptoolError
from skiptool.utils.progress import track

BATCH = 128


def _batches(dataset, what: str):
    starts = range(0, len(dataset), BATCH)
    for start in track(starts, total=len(starts), description=what, unit="batch"):
        items = [dataset[i] for i in range(start, min(start + BATCH, len(dataset)))]
        yield [item["key"] for item in items], collate(items)


def _copy_labels(src: Path, dst: Path) -> None:
    if (src / "utt2label").is_file():
        shutil.copyfile(src / "utt2label", dst)


def _draw_keys(keys: list[str], draw: int, draws: int) -> list[str]:
    """Output keys of style draw `draw`: the source keys themselves for one draw, else <key>-draw<k>."""
    return list(keys) if draws == 1 else [f"{key}-draw{draw}" for key in keys]


def _draw_label(direction: str, draw: int, draws: int) -> str:
    """The progress bar's label of style draw `draw` (0-based) of `draws`."""
    return direction + (f", draw {draw + 1}/{draws}" if draws > 1 else "")


def _source_key(out_key: str, draws: int) -> str:
    return out_key if draws == 1 else out_key.rsplit("-draw", 1)[0]


def _check_draws(draws: int) -> None:
    if not isinstance(draws, int) or draws < 1:
        raise SkiptoolError(f"--draws {draws}: give a positive number of style draws per source")


def _require(model: PVAE, modality: str) -> None:
    if modality not in model.cfg.modalities:
        raise SkiptoolError(f"--data {modality}=DIR: variant '{model.cfg.variant}' has no {modality} encoder; "
                            f"give it {' and '.join(model.cfg.modalities)} data only")


@torch.no_grad()
def embed(model: PVAE, speech_dir: Path | None, image_dir: Path | None, out_dir: Path,
          device: torch.device) -> dict[str, Path]:
    """Posterior means of the unimodal encoders' latents, one vector per utterance or image:
    out_dir/<modality>_<latent>.scp (+ .ark), e.g. speech_z_s.scp, image_z_i.scp, speech_z.scp
    (single-latent variants), and out_dir/<modality>_utt2label. A modality the variant lacks
    (images for vae_sp) is skipped; none usable is a user error. Returns {name: scp path}."""
    given = {m: d for m, d in (("speech", speech_dir), ("image", image_dir)) if d is not None}
    usable = {m: d for m, d in given.items() if m in model.cfg.modalities}
    if not usable:
        modality = next(iter(given), "speech")
        _require(model, modality)  # a user error naming what the variant takes
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for modality, feats_dir in usable.items():
        dataset = FeatsDataset(feats_dir, labels=False) if modality == "speech" else ImageFeatsDataset(feats_dir, labels=False)
        vectors: dict[str, dict[str, np.ndarray]] = {name: {} for name in model.cfg.latents(modality)}
        for keys, batch in _batches(dataset, f"{modality} latents"):
            if modality == "speech":
                posterior = model.encode_speech(batch["speech"].to(device), batch["speech_lengths"].to(device))
            else:
                posterior = model.encode_image(batch["image"].to(device))
            for name, (mean, _) in posterior.items():
                vectors[name].update(zip(keys, mean.cpu().numpy()))
        for name, table in vectors.items():
            stem = out_dir / f"{modality}_{name}"
            with kaldiio.WriteHelper(f"ark,scp:{stem}.ark,{stem}.scp") as writer:
                for key in sorted(table):
                    writer(key, table[key].astype(np.float32))
            written[f"{modality}_{name}"] = stem.with_suffix(".scp")
        _copy_labels(feats_dir, out_dir / f"{modality}_utt2label")
    return written


# `--num-frames settled`: the speech decoder runs for SETTLE_MAX_FACTOR x the mean training length
# and each utterance ends where its frames stop changing (mean |frame-to-frame change| of the CMVN'd
# FBank above SETTLE_THRESHOLD for the last time). Fed the same latents at every step, the LSTM
# decoder says its digit at its own pace and then settles into a constant frame. 0.04 is the best of
# 0.005-0.08 on the dev split (egs/tidigit_mnist/RESULTS.md; 95.1-96.7% there, a broad plateau).
# `--num-frames stretched` then resamples each settled utterance along time to its style reference's
# length, so that the reference sets the duration without cutting the digit.
SETTLE_THRESHOLD = 0.04
SETTLE_MAX_FACTOR = 4


def settled_length(frames: np.ndarray, threshold: float = SETTLE_THRESHOLD) -> int:
    """Frames of a generated (T, dim) FBank up to the last step whose mean absolute change from
    the previous frame exceeds `threshold` (all T when it never settles; 1 when it never moves)."""
    change = np.abs(np.diff(frames, axis=0)).mean(axis=1)
    moving = np.flatnonzero(change > threshold)
    return int(moving[-1]) + 2 if len(moving) else 1


def _style_draw(num_sources: int, num_refs: int, seed: int) -> np.ndarray:
    """A seeded reference index per source."""
    return np.random.default_rng(seed).integers(num_refs, size=num_sources)


def _write_labels(src: Path, out_dir: Path, out_keys: list[str], draws: int) -> dict[str, str] | None:
    """out_dir/utt2label: each output with the label of its source (None when the sources have none)."""
    if not (src / "utt2label").is_file():
        return None
    labels = read_table(src / "utt2label")
    out = {key: labels[_source_key(key, draws)] for key in sorted(out_keys)}
    write_table(out_dir / "utt2label", out)
    return out


def _write_style_tables(style_dir: Path, out_dir: Path, used: dict[str, str]) -> None:
    """Each output with its style reference's speaker (out_dir/utt2spk: the voice it should have)
    and its reference's class (out_dir/style_utt2label: what it should not say; how often it does
    measures how much of the class leaks through the style latent), where the references have them."""
    for table, out in (("utt2spk", "utt2spk"), ("utt2label", "style_utt2label")):
        if (style_dir / table).is_file():
            values = read_table(style_dir / table)
            write_table(out_dir / out, {key: values[ref] for key, ref in sorted(used.items()) if ref in values})


def _write_images(out_dir: Path, keys: list[str], images: Tensor) -> None:
    """(N, C, S, S) in [0, 1] -> an image feature dir (as `skiptool feats --type image`) + png/."""
    from PIL import Image

    n, channels, height, width = images.shape
    arrays = images.permute(0, 2, 3, 1).reshape(n, height, width * channels).cpu().numpy()
    order = sorted(range(n), key=lambda i: keys[i])
    (out_dir / "png").mkdir(parents=True, exist_ok=True)
    with kaldiio.WriteHelper(f"ark,scp:{out_dir / 'feats.ark'},{out_dir / 'feats.scp'}") as writer:
        for i in order:
            writer(keys[i], arrays[i].astype(np.float32))
            pixels = (images[i].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
            Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(out_dir / "png" / f"{keys[i]}.png")
    write_table(out_dir / "utt2num_frames", {keys[i]: height for i in order})
    # conf.yaml as `skiptool feats --type image` writes it: type, the full ImageFeatsConfig, provenance
    import dataclasses

    import yaml

    from skiptool.data.image import ImageFeatsConfig

    conf = {"type": "image", **dataclasses.asdict(ImageFeatsConfig(height=height, width=width, channels=channels)),
            "feat_dim": width * channels, "cmvn": "none"}
    (out_dir / "conf.yaml").write_text(yaml.safe_dump(conf, sort_keys=False))


@torch.no_grad()
def speech_to_image(model: PVAE, speech_dir: Path, out_dir: Path, device: torch.device,
                    style_image_dir: Path | None = None, seed: int = 0, draws: int = 1) -> None:
    """A written digit per utterance of speech_dir: z_s from the speech, the writing style z_i of a
    (seeded) random image of style_image_dir or, without one, of the prior (JMVAE-kl: its z only). Writes an image
    feature dir (feats.scp, conf.yaml, utt2label of the source) and png/<key>.png. With `draws` K > 1,
    each utterance is generated K times (draw k as one draw of seed + k) under keys <key>-draw<k>."""
    _check_draws(draws)
    speech = FeatsDataset(speech_dir, labels=False)
    has_style = model.cfg.variant in ("pvae", "pvae_nocm")  # JMVAE-kl's single z has no style part
    styles = ImageFeatsDataset(style_image_dir, labels=False) if style_image_dir and has_style else None
    keys, images, used = [], [], {}
    for k in range(draws):
        draw = _style_draw(len(speech), len(styles), seed + k) if styles else None
        generator = torch.Generator().manual_seed(seed + k)
        done = 0
        for batch_keys, batch in _batches(speech, _draw_label("speech -> image", k, draws)):
            style = None
            if styles is not None:
                style = torch.stack([styles[int(j)]["image"] for j in draw[done:done + len(batch_keys)]]).to(device)
            images.append(model.speech_to_image(batch["speech"].to(device), batch["speech_lengths"].to(device),
                                                style, generator).cpu())
            keys += _draw_keys(batch_keys, k, draws)
            done += len(batch_keys)
        if styles is not None:
            used.update(zip(_draw_keys(speech.keys, k, draws), (styles.keys[int(j)] for j in draw)))
    _write_images(out_dir, keys, torch.cat(images))
    _write_labels(speech_dir, out_dir, keys, draws)
    if used:
        write_table(out_dir / "utt2style", dict(sorted(used.items())))


@torch.no_grad()
def image_to_speech(model: PVAE, image_dir: Path, out_dir: Path, device: torch.device,
                    style_speech_dir: Path | None = None, seed: int = 0, num_frames: int | str | None = None,
                    draws: int = 1, settle_threshold: float | None = None) -> None:
    """A spoken digit (FBank) per image of image_dir: z_s from the image, the speaking style z_a
    of a (seeded) random utterance of style_speech_dir or, without one, of the prior. Its length:
    `num_frames` frames when given ("mean": the mean length of the model's training utterances;
    "settled": until the decoder's output stops changing, `settled_length` at `settle_threshold`,
    by default SETTLE_THRESHOLD; "stretched": the settled output resampled along time to the
    reference's length), else the reference's length, or the mean training length without a
    reference. With `draws` K > 1, each image is generated K times (draw k as one draw
    of seed + k) under keys <key>-draw<k>. Writes feats.scp, utt2num_frames, utt2label and text
    (digit words), utt2style (the reference per output) and utt2spk (its speaker, when the
    references have one), and copies conf.yaml / cmvn.ark of the reference speech so the features
    can be vocoded."""
    _check_draws(draws)
    images = ImageFeatsDataset(image_dir, labels=False)
    styles = FeatsDataset(style_speech_dir, labels=False) if style_speech_dir else None
    settle, stretch = num_frames in ("settled", "stretched"), num_frames == "stretched"
    if stretch and styles is None:
        raise SkiptoolError("--num-frames stretched: resamples to each style reference's length; give "
                            "--style speech=DIR")
    if num_frames in ("mean", "settled", "stretched") or (styles is None and num_frames is None):
        num_frames = model.mean_speech_frames
        if num_frames is None:
            raise SkiptoolError("image2speech: the model has no record of its training lengths (an old "
                                "checkpoint); give a style reference or --num-frames N")
        if settle:
            num_frames *= SETTLE_MAX_FACTOR
    if num_frames is not None and (not isinstance(num_frames, int) or num_frames < 1):
        raise SkiptoolError(f"--num-frames {num_frames}: give a positive number of frames, 'mean', 'settled' "
                            f"or 'stretched'")
    settle_threshold = SETTLE_THRESHOLD if settle_threshold is None else settle_threshold
    if not settle_threshold > 0:
        raise SkiptoolError(f"--settle-threshold {settle_threshold}: give a positive change per frame")
    generated: dict[str, np.ndarray] = {}
    used: dict[str, str] = {}
    for k in range(draws):
        draw = _style_draw(len(images), len(styles), seed + k) if styles else None
        generator = torch.Generator().manual_seed(seed + k)
        done = 0
        for batch_keys, batch in _batches(images, _draw_label("image -> speech", k, draws)):
            image = batch["image"].to(device)
            if styles is None:
                frames = model.image_to_speech(image, num_frames, generator=generator)
                lengths = ref_lengths = [num_frames] * len(batch_keys)
            else:
                refs = collate([styles[int(j)] for j in draw[done:done + len(batch_keys)]])
                ref_lengths = refs["speech_lengths"].tolist()
                lengths = ref_lengths if num_frames is None else [num_frames] * len(batch_keys)
                style = refs["speech"].to(device) if model.cfg.variant != "jmvae_kl" else None
                frames = model.image_to_speech(image, max(lengths), style,
                                               refs["speech_lengths"].to(device) if style is not None else None,
                                               generator, torch.tensor(lengths, device=device))
            for key, mat, length, ref_length in zip(_draw_keys(batch_keys, k, draws), frames.cpu(), lengths,
                                                    ref_lengths):
                if settle:
                    mat = mat[:settled_length(mat.numpy(), settle_threshold)]
                generated[key] = (resample_time(mat, ref_length) if stretch else mat[:length]).numpy()
            done += len(batch_keys)
        if styles is not None:
            used.update(zip(_draw_keys(images.keys, k, draws), (styles.keys[int(j)] for j in draw)))
    out_dir.mkdir(parents=True, exist_ok=True)
    with kaldiio.WriteHelper(f"ark,scp:{out_dir / 'feats.ark'},{out_dir / 'feats.scp'}") as writer:
        for key in sorted(generated):
            writer(key, generated[key].astype(np.float32))
    write_table(out_dir / "utt2num_frames", {k: len(v) for k, v in sorted(generated.items())})
    labels = _write_labels(image_dir, out_dir, list(generated), draws)
    if labels is not None:
        write_table(out_dir / "text", {k: DIGIT_WORDS[int(v)] for k, v in labels.items() if int(v) < 10})
    if used:
        write_table(out_dir / "utt2style", dict(sorted(used.items())))
        _write_style_tables(style_speech_dir, out_dir, used)
    if style_speech_dir is not None:
        for name in ("conf.yaml", "cmvn.ark"):
            if (style_speech_dir / name).is_file():
                shutil.copyfile(style_speech_dir / name, out_dir / name)


@torch.no_grad()
def style_grids(model: PVAE, speech_dir: Path, image_dir: Path, out_dir: Path, device: torch.device,
                n: int = 8, seed: int = 0) -> list[Path]:
    """Paper 004's figs. 4-5 as PNGs in out_dir: rows are style references, columns semantic
    references (one digit class each), for every direction the variant can generate:
    image_from_image, image_from_speech (written digits), speech_from_speech, speech_from_image
    (spectrograms). Returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = model.cfg
    rng = np.random.default_rng(seed)
    speech = FeatsDataset(speech_dir, labels=True) if "speech" in cfg.modalities else None
    images = ImageFeatsDataset(image_dir, labels=True) if "image" in cfg.modalities else None

    def pick(dataset, count: int, one_per_class: bool) -> dict:
        labels = np.asarray(dataset.labels)
        if one_per_class:
            classes = np.unique(labels)[:count]
            chosen = [int(rng.choice(np.flatnonzero(labels == c))) for c in classes]
        else:
            chosen = rng.choice(len(dataset), size=min(count, len(dataset)), replace=False).tolist()
        return collate([dataset[i] for i in chosen])

    def semantic(modality: str, batch: dict) -> Tensor:
        if modality == "speech":
            post = model.encode_speech(batch["speech"].to(device), batch["speech_lengths"].to(device))
        else:
            post = model.encode_image(batch["image"].to(device))
        return post["z_s" if "z_s" in post else "z"][0]

    def style(modality: str, batch: dict) -> Tensor | None:
        if cfg.variant not in ("pvae", "pvae_nocm"):
            return None
        if modality == "speech":
            return model.encode_speech(batch["speech"].to(device), batch["speech_lengths"].to(device))["z_a"][0]
        return model.encode_image(batch["image"].to(device))["z_i"][0]

    written = []
    sources = {"speech": speech, "image": images}
    for target in ("image", "speech"):
        if sources[target] is None:
            continue
        style_refs = pick(sources[target], n if cfg.variant in ("pvae", "pvae_nocm") else 1, False)
        z_style = style(target, style_refs)
        for source in ("image", "speech"):
            if sources[source] is None or (source != target and cfg.variant not in ("pvae", "pvae_nocm", "jmvae_kl")):
                continue
            z_s = semantic(source, pick(sources[source], 10, True))
            rows = []
            for r in range(1 if z_style is None else z_style.size(0)):
                zs_row = z_style[r:r + 1].expand(z_s.size(0), -1) if z_style is not None else None
                if target == "image":
                    rows.append(model.decode_image(z_s, zs_row).cpu()[:, 0])
                else:
                    frames = int(style_refs["speech_lengths"][r]) if z_style is not None else 50
                    rows.append(model.decode_speech(z_s, zs_row, frames).cpu().transpose(1, 2))
            path = out_dir / f"{target}_from_{source}.png"
            out_dir.mkdir(parents=True, exist_ok=True)
            fig, axes = plt.subplots(len(rows), z_s.size(0), squeeze=False,
                                     figsize=(z_s.size(0) * 0.9, len(rows) * 0.9 + 0.4), dpi=100)
            for r, row in enumerate(rows):
                for c in range(row.size(0)):
                    axes[r][c].imshow(row[c].numpy(), cmap="gray" if target == "image" else "magma",
                                      origin="upper" if target == "image" else "lower", aspect="auto")
                    axes[r][c].axis("off")
            fig.suptitle(f"{target} from {source}: rows = {target} style references, columns = digits "
                         f"from {source}", fontsize=8)
            fig.savefig(path)
            plt.close(fig)
            written.append(path)
    return written
