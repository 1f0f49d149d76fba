"""MS COCO captions from a local copy, official or Karpathy split; and the caption data-dir layout
shared with the built-in *shapes* corpus.

    prepare_coco("/corpora/coco", "data/coco")                      # Karpathy if dataset_coco.json is there
    prepare_coco("/corpora/coco", "data/coco", split="official", dev_size=5000)

Corpus layouts read (`corpus_dir`)::

    official:  annotations/captions_train2014.json, annotations/captions_val2014.json (2017 too;
               the json files may also sit in corpus_dir itself), images in train2014/ and val2014/
               (or images/train2014/ ...): the folder named after the json's split and year.
               train json -> train; the val images sorted by id: the first `dev_size` -> dev, the
               rest -> test (COCO's own test images have no captions).
    karpathy:  dataset_coco.json (Karpathy's split, as in image-captioning papers) beside the
               folders its `filepath` fields name (train2014/, val2014/): split train and restval ->
               train, val -> dev, test -> test; captions are the `raw` sentences.

Caption data dirs (written by `write_caption_dirs`, also used by `prepare_shapes`): one
utterance per image-caption pair, keyed `<image>-c<k>` (k = 1..`captions_per_image`, in
annotation order), with `img.scp` (the image's absolute path, repeated for each of its captions)
and `text` (the caption, whitespace collapsed; case and punctuation kept, the token cleaners
normalise). Beside them, `captions` lists the same captions keyed by image, one line per caption
(`<image> <caption>`, repeated keys): the multi-reference file for BLEU
(`skiptool score --metric bleu --ref DIR/captions --hyp HYP`, where HYP is keyed by image).
`caption_images(data_dir)` gives the image of every key; images are not copied or resized.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Mapping, Sequence

from skiptool.data.datadir import DataDir, make_temp_dir, read_table_lines, replace_dir, write_table
from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import check_writable

SPLITS = ("train", "dev", "test")
COCO_SPLITS = ("auto", "official", "karpathy")
OFFICIAL_LAYOUT = ("annotations/captions_{train,val}<year>.json with images in {train,val}<year>/")
KARPATHY_LAYOUT = "dataset_coco.json beside the image folders its filepath fields name (train2014/, val2014/)"
_CAPTION_KEY = re.compile(r"^(.+)-c(\d)$")
_OFFICIAL_JSON = re.compile(r"^captions_(train|val)(\d{4})\.json$")

# (image key, image path, captions) per image
CaptionedImage = tuple[str, Path, Sequence[str]]


def clean_caption(caption: str) -> str:
    return " ".join(str(caption).split())


def write_caption_dirs(out_dir: str | os.PathLike, splits: Mapping[str, Sequence[CaptionedImage]],
                       captions_per_image: int = 5, overwrite: bool = False) -> dict[str, DataDir]:
    """Write one caption data dir per split (see the module docstring); images with fewer captions
    keep the ones they have; returns {split: DataDir}. Nothing is written unless all checks pass."""
    out_dir = Path(out_dir)
    for split in splits:
        check_writable(out_dir / split, overwrite, "data dir")
    parts: dict[str, tuple[DataDir, dict[str, list[str]]]] = {}
    for split, images in splits.items():
        img_scp, text, refs = {}, {}, {}
        for key, path, captions in images:
            kept = [c for c in map(clean_caption, captions) if c][:captions_per_image]
            if not kept:
                continue
            refs[key] = kept
            for k, caption in enumerate(kept, start=1):
                img_scp[f"{key}-c{k}"] = str(Path(path).resolve())
                text[f"{key}-c{k}"] = caption
        if not text:
            raise SkiptoolError(f"{out_dir / split}: no captioned images in this split; check the corpus "
                                "(or the split sizes)")
        parts[split] = (DataDir({"img.scp": img_scp, "text": text}), refs)
    result = {}
    for split, (dd, refs) in parts.items():
        dest = out_dir / split
        tmp = make_temp_dir(dest)
        try:
            for name, table in dd.tables.items():
                write_table(tmp / name, table)
            with open(tmp / "captions", "w", encoding="utf-8") as f:
                for key in sorted(refs):
                    f.writelines(f"{key} {caption}\n" for caption in refs[key])
            replace_dir(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        dd.path = dest
        result[split] = dd
    return result


def caption_images(dd: DataDir) -> dict[str, str]:
    """{pair key: image key} of a caption data dir (`img0001-c3` -> `img0001`)."""
    out = {}
    for utt in dd.utts:
        match = _CAPTION_KEY.match(utt)
        if not match:
            raise SkiptoolError(f"{dd.path or 'data dir'}: key '{utt}' is not <image>-c<k>; "
                                "not a caption data dir (prepare it with `skiptool prep coco|shapes`)")
        out[utt] = match.group(1)
    return out


def read_captions(path: str | os.PathLike) -> dict[str, list[str]]:
    """A `captions` file (or the caption data dir holding one) as {image key: [captions]}."""
    path = Path(path)
    if path.is_dir():
        path = path / "captions"
    refs: dict[str, list[str]] = {}
    for _, key, value in read_table_lines(path):
        refs.setdefault(key, []).append(value)
    return refs


# ----------------------------------------------------------------------------------------------
# COCO


def _load_json(path: Path, layout: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SkiptoolError(f"{path}: cannot read as JSON ({str(e).splitlines()[0]}); expected {layout}") from None
    if not isinstance(data, dict):
        raise SkiptoolError(f"{path}: not a COCO caption file (a JSON object); expected {layout}")
    return data


def _image_file(corpus_dir: Path, folder: str, name: str, source: Path, layout: str) -> Path:
    for candidate in (corpus_dir / folder / name, corpus_dir / "images" / folder / name):
        if candidate.is_file():
            return candidate.resolve()
    raise SkiptoolError(f"{corpus_dir / folder / name}: image listed in {source.name} not found; expected {layout}")


def _official_json(corpus_dir: Path) -> dict[str, Path]:
    """{'train': path, 'val': path} of one year's captions_*.json."""
    found: dict[str, dict[str, Path]] = {}
    for folder in (corpus_dir / "annotations", corpus_dir):
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                match = _OFFICIAL_JSON.match(path.name)
                if match and path.is_file():
                    found.setdefault(match.group(2), {}).setdefault(match.group(1), path)
    complete = sorted(year for year, parts in found.items() if set(parts) == {"train", "val"})
    if not complete:
        raise SkiptoolError(f"{corpus_dir}: no captions_train<year>.json and captions_val<year>.json; "
                            f"a COCO dir holds {OFFICIAL_LAYOUT} (or {KARPATHY_LAYOUT})")
    return found[complete[-1]]


def _read_official(path: Path, corpus_dir: Path) -> list[tuple[int, Path, list[str]]]:
    """(image id, image path, captions) of one official captions json, sorted by id."""
    data = _load_json(path, OFFICIAL_LAYOUT)
    try:
        images = {int(im["id"]): str(im["file_name"]) for im in data["images"]}
        captions: dict[int, list[tuple[int, str]]] = {}
        for ann in data["annotations"]:
            captions.setdefault(int(ann["image_id"]), []).append((int(ann["id"]), str(ann["caption"])))
    except (KeyError, TypeError, ValueError) as e:
        raise SkiptoolError(f"{path}: not a COCO caption file (bad or missing field {e}); expected 'images' "
                            "with id/file_name and 'annotations' with image_id/id/caption") from None
    folder = _OFFICIAL_JSON.match(path.name)
    folder_name = f"{folder.group(1)}{folder.group(2)}"
    out = []
    for image_id in sorted(images):
        if image_id in captions:
            file = _image_file(corpus_dir, folder_name, images[image_id], path, OFFICIAL_LAYOUT)
            out.append((image_id, file, [c for _, c in sorted(captions[image_id])]))
    return out


def _read_karpathy(path: Path, corpus_dir: Path) -> dict[str, list[tuple[int, Path, list[str]]]]:
    data = _load_json(path, KARPATHY_LAYOUT)
    splits: dict[str, list[tuple[int, Path, list[str]]]] = {s: [] for s in SPLITS}
    names = {"train": "train", "restval": "train", "val": "dev", "test": "test"}
    try:
        for im in data["images"]:
            split = names.get(im["split"])
            if split is None:
                raise SkiptoolError(f"{path}: image {im.get('cocoid')} has split '{im['split']}'; "
                                    "Karpathy splits are train, restval, val, test")
            file = _image_file(corpus_dir, im.get("filepath", ""), im["filename"], path, KARPATHY_LAYOUT)
            splits[split].append((int(im["cocoid"]), file, [s["raw"] for s in im["sentences"]]))
    except (KeyError, TypeError, ValueError) as e:
        raise SkiptoolError(f"{path}: not Karpathy's dataset_coco.json (bad or missing field {e}); expected "
                            "'images' with cocoid/filepath/filename/split/sentences[raw]") from None
    return {s: sorted(v) for s, v in splits.items()}


def prepare_coco(corpus_dir: str | os.PathLike, out_dir: str | os.PathLike, split: str = "auto",
                 dev_size: int = 5000, captions_per_image: int = 5, overwrite: bool = False,
                 quiet: bool | None = None) -> dict[str, DataDir]:
    """Write caption data dirs out_dir/{train,dev,test} of a local COCO (see the module docstring).
    `split`: auto (karpathy when dataset_coco.json exists, else official), official or karpathy."""
    if split not in COCO_SPLITS:
        raise SkiptoolError(f"--split {split}: choose one of {', '.join(COCO_SPLITS)}")
    if not 1 <= captions_per_image <= 9:
        raise SkiptoolError(f"--captions-per-image {captions_per_image}: must be 1 to 9")
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    if not corpus_dir.is_dir():
        raise SkiptoolError(f"{corpus_dir}: COCO dir not found; give the folder holding {OFFICIAL_LAYOUT} "
                            f"(or {KARPATHY_LAYOUT})")
    for part in SPLITS:
        check_writable(out_dir / part, overwrite, "data dir")
    karpathy = corpus_dir / "dataset_coco.json"
    if split == "karpathy" or (split == "auto" and karpathy.is_file()):
        if not karpathy.is_file():
            raise SkiptoolError(f"{karpathy}: not found; --split karpathy needs {KARPATHY_LAYOUT}")
        parts = _read_karpathy(karpathy, corpus_dir)
    else:
        files = _official_json(corpus_dir)
        val = _read_official(files["val"], corpus_dir)
        if not 0 < dev_size < len(val):
            raise SkiptoolError(f"--dev-size {dev_size}: {files['val'].name} has {len(val)} captioned images; "
                                f"choose 1 to {len(val) - 1} (the rest are test)")
        parts = {"train": _read_official(files["train"], corpus_dir), "dev": val[:dev_size], "test": val[dev_size:]}
    return write_caption_dirs(out_dir, {s: [(f"coco{i:012d}", p, c) for i, p, c in parts[s]] for s in SPLITS},
                              captions_per_image, overwrite)
