"""LJSpeech 1.1 from a local copy: the open stand-in for EMT-4 (one female speaker, about 24 h).

    prepare_ljspeech("/corpora/LJSpeech-1.1", "data/ljspeech")     # dev 250, test 250, as ESPnet

Layout read: `metadata.csv` (UTF-8, `id|transcription|normalized transcription` per line, no
quoting) and `wavs/<id>.wav` (22050 Hz mono). `text` is the normalized transcription (numbers
and abbreviations spelt out), the raw one when that column is empty. As ESPnet's ljspeech recipe,
the last `dev_size + test_size` utterances (by id) are held out: the first `dev_size` of them
dev, the rest test. Data dirs out_dir/{train,dev,test}: wav.scp, text, utt2spk and spk2utt
(speaker `LJ`), utt2dur, and utt2emo (`neutral`: read speech, so that it stands in for EMT-4).
"""

from __future__ import annotations

import os
from pathlib import Path

import soundfile as sf

from skiptool.data.datadir import DataDir
from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import check_writable
from skiptool.utils.progress import track

LAYOUT = "metadata.csv (id|text|normalized text) and wavs/<id>.wav"
SPEAKER = "LJ"
SPLITS = ("train", "dev", "test")


def read_metadata(corpus_dir: Path) -> list[tuple[str, str]]:
    """(id, text) of every line of metadata.csv, sorted by id."""
    metadata = corpus_dir / "metadata.csv"
    if not corpus_dir.is_dir():
        raise SkiptoolError(f"{corpus_dir}: LJSpeech dir not found; give the folder holding {LAYOUT}")
    if not metadata.is_file():
        raise SkiptoolError(f"{metadata}: not found; an LJSpeech dir holds {LAYOUT}")
    rows, seen = [], set()
    try:
        lines = metadata.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise SkiptoolError(f"{metadata}: not UTF-8 ({e.reason} at byte {e.start}); expected {LAYOUT}") from None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != 3 or not fields[0].strip():
            raise SkiptoolError(f"{metadata}: line {lineno} has {len(fields)} '|'-separated fields; "
                                "each line must be id|text|normalized text")
        utt = fields[0].strip()
        text = " ".join((fields[2] or fields[1]).split())
        if not text:
            raise SkiptoolError(f"{metadata}: line {lineno} ({utt}) has no text; give its transcription")
        if utt in seen:
            raise SkiptoolError(f"{metadata}: line {lineno}: id {utt} appears twice; ids must be unique")
        seen.add(utt)
        rows.append((utt, text))
    if not rows:
        raise SkiptoolError(f"{metadata}: empty; an LJSpeech dir holds {LAYOUT}")
    return sorted(rows)


def prepare_ljspeech(corpus_dir: str | os.PathLike, out_dir: str | os.PathLike, dev_size: int = 250,
                     test_size: int = 250, overwrite: bool = False, quiet: bool | None = None) -> dict[str, DataDir]:
    """Write out_dir/{train,dev,test} (see the module docstring); returns the data dirs."""
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    for part in SPLITS:
        check_writable(out_dir / part, overwrite, "data dir")
    rows = read_metadata(corpus_dir)
    if dev_size < 1 or test_size < 1 or dev_size + test_size >= len(rows):
        raise SkiptoolError(f"--dev-size {dev_size} --test-size {test_size}: {corpus_dir / 'metadata.csv'} has "
                            f"{len(rows)} utterances; both need at least 1 and leave some for train")
    held = len(rows) - dev_size - test_size
    tables = {part: {n: {} for n in ("wav.scp", "text", "utt2spk", "utt2dur", "utt2emo")} for part in SPLITS}
    for i, (utt, text) in enumerate(track(rows, description="LJSpeech", quiet=quiet, unit="file")):
        wav = corpus_dir / "wavs" / f"{utt}.wav"
        try:
            info = sf.info(str(wav))
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            problem = "not found" if not wav.is_file() else f"cannot open as audio ({e})"
            raise SkiptoolError(f"{wav}: {problem}; an LJSpeech dir holds {LAYOUT}") from None
        part = tables["train" if i < held else "dev" if i < held + dev_size else "test"]
        key = utt if utt.startswith(SPEAKER) else f"{SPEAKER}-{utt}"  # speaker id is a prefix, as Kaldi wants
        part["wav.scp"][key] = str(wav.resolve())
        part["text"][key] = text
        part["utt2spk"][key] = SPEAKER
        part["utt2dur"][key] = f"{info.frames / info.samplerate:.4f}"
        part["utt2emo"][key] = "neutral"
    result = {part: DataDir(t) for part, t in tables.items()}
    for part, dd in result.items():
        dd.write(out_dir / part, overwrite=overwrite)
    return result
