"""An EMT-4-style emotional TTS corpus from a list file (paper 000's in-house EMT-4 is not public).

    prepare_emt4("/corpora/emt4/emt4.tsv", "data/emt4")                 # seeded dev/test split
    prepare_emt4("/corpora/emt4", "data/emt4")                          # its own train/dev/test.tsv

The list format (UTF-8, tab-separated, one utterance per line)::

    wav<TAB>text<TAB>emotion                      <- optional header line
    wavs/0001.wav<TAB>Three men sitting on a bench.<TAB>neutral
    # a comment line

`wav` is a path, relative to the list file's folder unless absolute; `text` the transcription
(no tabs); `emotion` one of neutral, happy, sad, angry. `corpus` is either one list file, split
seeded into train/dev/test (`dev_size`, `test_size` utterances), or a folder holding train.tsv,
dev.tsv and test.tsv (its own split). One speaker, as in EMT-4 (`speaker`, default `emt4`);
keys are `<speaker>-<wav file stem>`. Data dirs out_dir/{train,dev,test}: wav.scp, text,
utt2spk, spk2utt, utt2emo, utt2dur.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from skiptool.data.datadir import DataDir
from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import check_writable
from skiptool.utils.progress import track

EMOTIONS = ("neutral", "happy", "sad", "angry")
SPLITS = ("train", "dev", "test")
LAYOUT = ("a UTF-8 list of 'wav<TAB>text<TAB>emotion' lines (emotion: neutral, happy, sad or angry), "
          "or a folder of train.tsv, dev.tsv and test.tsv in that format")
HEADER = ["wav", "text", "emotion"]

Row = tuple[str, Path, str, str]  # (stem, wav, text, emotion)


def read_emt4_list(path: str | os.PathLike) -> list[Row]:
    """The rows of one list file, with wav paths resolved; a bad line is a SkiptoolError naming it."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise SkiptoolError(f"{path}: not found; expected {LAYOUT}") from None
    except UnicodeDecodeError as e:
        raise SkiptoolError(f"{path}: not UTF-8 ({e.reason} at byte {e.start}); expected {LAYOUT}") from None
    except OSError as e:
        raise SkiptoolError(f"{path}: cannot read ({e.strerror}); expected {LAYOUT}") from None
    rows: list[Row] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")]
        if lineno == 1 and [f.lower() for f in fields] == HEADER:
            continue
        if len(fields) != 3:
            raise SkiptoolError(f"{path}: line {lineno} has {len(fields)} tab-separated fields; expected "
                                "wav<TAB>text<TAB>emotion")
        wav, text, emotion = fields
        if emotion not in EMOTIONS:
            raise SkiptoolError(f"{path}: line {lineno}: emotion '{emotion}' must be one of {', '.join(EMOTIONS)}")
        if not text:
            raise SkiptoolError(f"{path}: line {lineno}: empty text; give the transcription of {wav}")
        wav_path = Path(wav) if Path(wav).is_absolute() else path.parent / wav
        rows.append((Path(wav).stem, wav_path, " ".join(text.split()), emotion))
    if not rows:
        raise SkiptoolError(f"{path}: no utterances; expected {LAYOUT}")
    return rows


def prepare_emt4(corpus: str | os.PathLike, out_dir: str | os.PathLike, dev_size: int = 250, test_size: int = 250,
                 speaker: str = "emt4", seed: int = 0, overwrite: bool = False,
                 quiet: bool | None = None) -> dict[str, DataDir]:
    """Write out_dir/{train,dev,test} from an EMT-4-style list (see the module docstring)."""
    corpus, out_dir = Path(corpus), Path(out_dir)
    for part in SPLITS:
        check_writable(out_dir / part, overwrite, "data dir")
    if not speaker or any(c.isspace() for c in speaker):
        raise SkiptoolError(f"--speaker {speaker!r}: must be one word")
    if corpus.is_dir():
        missing = [f"{s}.tsv" for s in SPLITS if not (corpus / f"{s}.tsv").is_file()]
        if missing:
            raise SkiptoolError(f"{corpus}: no {', '.join(missing)}; expected {LAYOUT}")
        parts = {s: read_emt4_list(corpus / f"{s}.tsv") for s in SPLITS}
    elif corpus.is_file():
        rows = read_emt4_list(corpus)
        if dev_size < 1 or test_size < 1 or dev_size + test_size >= len(rows):
            raise SkiptoolError(f"--dev-size {dev_size} --test-size {test_size}: {corpus} has {len(rows)} "
                                "utterances; both need at least 1 and leave some for train")
        order = np.random.default_rng(seed).permutation(len(rows))
        parts = {"dev": [rows[i] for i in order[:dev_size]],
                 "test": [rows[i] for i in order[dev_size:dev_size + test_size]],
                 "train": [rows[i] for i in order[dev_size + test_size:]]}
    else:
        raise SkiptoolError(f"{corpus}: not found; expected {LAYOUT}")

    seen: dict[str, Path] = {}
    tables = {part: {n: {} for n in ("wav.scp", "text", "utt2spk", "utt2emo", "utt2dur")} for part in SPLITS}
    todo = [(part, row) for part in SPLITS for row in parts[part]]
    for part, (stem, wav, text, emotion) in track(todo, description="EMT-4 list", quiet=quiet, unit="file"):
        key = f"{speaker}-{stem}"
        if key in seen:
            raise SkiptoolError(f"{wav}: file name {stem} also used by {seen[key]}; "
                                "wav file names must be unique (they make the utterance ids)")
        seen[key] = wav
        try:
            info = sf.info(str(wav))
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            problem = "not found" if not wav.is_file() else f"cannot open as audio ({e})"
            raise SkiptoolError(f"{wav}: {problem}; fix the list (paths are relative to its folder)") from None
        if info.frames == 0:
            raise SkiptoolError(f"{wav}: empty recording (0 samples); replace it or remove it from the list")
        t = tables[part]
        t["wav.scp"][key] = str(wav.resolve())
        t["text"][key] = text
        t["utt2spk"][key] = speaker
        t["utt2emo"][key] = emotion
        t["utt2dur"][key] = f"{info.frames / info.samplerate:.4f}"
    for part in SPLITS:
        if not tables[part]["wav.scp"]:
            raise SkiptoolError(f"{corpus}: {part} is empty; give it some utterances")
    result = {part: DataDir(t) for part, t in tables.items()}
    for part, dd in result.items():
        dd.write(out_dir / part, overwrite=overwrite)
    return result
