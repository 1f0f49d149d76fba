"""`skiptool prep CORPUS ...`: turn a corpus (or a built-in one) into Kaldi data dirs, one command per
entry of `skiptool.data.corpora.PREPARERS`."""

from __future__ import annotations

import enum
import inspect
from pathlib import Path

import typer

from skiptool.data.corpora import PREPARERS
from skiptool.data.datadir import DataDir

app = typer.Typer(no_args_is_help=True,
                  help="Prepare a corpus as Kaldi-style data dirs (OUT_DIR/train, [OUT_DIR/dev,] OUT_DIR/test).")


def _command(name: str | None = None):
    """Register a command whose help is its docstring with each paragraph on one line: Typer's rich
    mode keeps single line breaks, which would otherwise show the source's wrapping in --help."""
    def register(function):
        paragraphs = inspect.cleandoc(function.__doc__ or "").split("\n\n")
        return app.command(name, help="\n\n".join(" ".join(p.split()) for p in paragraphs))(function)
    return register


def _report(out_dir: Path, parts: dict[str, DataDir]) -> None:
    for name, dd in parts.items():
        if "utt2spk" in dd:
            speakers = len(dd.speakers)
            typer.echo(f"wrote {out_dir / name}: {len(dd)} utterances, {speakers} speaker{'' if speakers == 1 else 's'}")
        else:
            typer.echo(f"wrote {out_dir / name}: {len(dd)} {'images' if 'img.scp' in dd else 'utterances'}")


class FsddSplit(str, enum.Enum):
    standard = "standard"
    speaker = "speaker"


@_command("fsdd")
def fsdd(
    corpus_dir: Path = typer.Argument(..., help="FSDD root: the folder holding recordings/{digit}_{speaker}_{index}.wav."),
    out_dir: Path = typer.Argument(..., help="Where to write the train/ and test/ data dirs."),
    split: FsddSplit = typer.Option(FsddSplit.standard, "--split",
                                    help="standard: takes 0-4 of every speaker and digit are test, 5-49 train; "
                                         "speaker: --test-speaker is held out entirely."),
    test_speaker: str = typer.Option("theo", "--test-speaker", help="Held-out speaker for --split speaker."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing OUT_DIR/train and OUT_DIR/test."),
) -> None:
    """Free Spoken Digit Dataset -> OUT_DIR/train and OUT_DIR/test data dirs.

    Writes wav.scp, text (the digit as a word), utt2spk, spk2utt, utt2label (the digit) and
    utt2dur; utterance ids are SPEAKER_DIGIT_TAKE.

    Example: skiptool prep fsdd ../shared/data/fsdd data/fsdd
    """
    parts = PREPARERS["fsdd"](corpus_dir, out_dir, split=split.value, test_speaker=test_speaker, overwrite=overwrite)
    _report(out_dir, parts)


@_command("espeak-digits")
def espeak_digits(
    out_dir: Path = typer.Argument(..., help="Where to write wav/, train/, test/ and spk2voice."),
    num_speakers: int = typer.Option(30, "--num-speakers", help="Synthetic speakers (voice, variant and prosody)."),
    takes: int = typer.Option(10, "--takes", help="Takes of every digit per speaker."),
    sample_rate: int = typer.Option(16000, "--sample-rate", help="Sample rate of the written wavs (Hz)."),
    test_fraction: float = typer.Option(0.2, "--test-fraction", help="Share of speakers held out as the test set."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same corpus."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT_DIR if it is not empty."),
) -> None:
    """Built-in spoken digits synthesised by espeak-ng -> OUT_DIR/train and OUT_DIR/test.

    Each speaker is an English voice and variant with its own pitch, range, rate and amplitude,
    jittered per take; zero..nine are written as 16-bit wavs under OUT_DIR/wav/. Test speakers
    never appear in train, and the same seed gives the same corpus.

    Example: skiptool prep espeak-digits data/espeak --num-speakers 30 --takes 10 --seed 0
    """
    parts = PREPARERS["espeak-digits"](out_dir, num_speakers=num_speakers, takes=takes, sample_rate=sample_rate,
                                       seed=seed, test_fraction=test_fraction, overwrite=overwrite)
    _report(out_dir, parts)


@_command("tidigits")
def tidigits(
    corpus_dir: Path = typer.Argument(..., help="TIDIGITS root: {train,test}/{man,woman,boy,girl}/<speaker>/<digits><a|b>.wav."),
    out_dir: Path = typer.Argument(..., help="Where to write the train/, dev/ and test/ data dirs."),
    groups: str = typer.Option("man,woman", "--groups", help="Comma-separated speaker groups to use."),
    dev_fraction: float = typer.Option(0.1, "--dev-fraction", help="Share of training speakers held out as dev."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the dev speaker draw."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing data dirs."),
) -> None:
    """TIDIGITS isolated digits (LDC layout, NIST SPHERE) -> OUT_DIR/train, dev, test data dirs.

    Speaker and gender come from the path (spk2gender is written); dev speakers are held out of train.

    Example: skiptool prep tidigits /corpora/tidigits data/tidigits --groups man,woman
    """
    parts = PREPARERS["tidigits"](corpus_dir, out_dir, groups=[g.strip() for g in groups.split(",") if g.strip()],
                                  dev_fraction=dev_fraction, seed=seed, overwrite=overwrite)
    _report(out_dir, parts)


@_command("audiomnist")
def audiomnist(
    corpus_dir: Path = typer.Argument(..., help="AudioMNIST root: data/<01..60>/{digit}_{speaker}_{index}.wav."),
    out_dir: Path = typer.Argument(..., help="Where to write the train/, dev/ and test/ data dirs."),
    dev_fraction: float = typer.Option(0.1, "--dev-fraction", help="Share of speakers in dev."),
    test_fraction: float = typer.Option(0.2, "--test-fraction", help="Share of speakers in test."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the speaker split."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing data dirs."),
) -> None:
    """AudioMNIST -> speaker-disjoint OUT_DIR/train, dev, test data dirs.

    Example: skiptool prep audiomnist /corpora/AudioMNIST data/audiomnist
    """
    parts = PREPARERS["audiomnist"](corpus_dir, out_dir, dev_fraction=dev_fraction, test_fraction=test_fraction,
                                    seed=seed, overwrite=overwrite)
    _report(out_dir, parts)


@_command("speech-commands")
def speech_commands(
    corpus_dir: Path = typer.Argument(..., help="Speech Commands root: zero/ ... nine/, validation_list.txt, testing_list.txt."),
    out_dir: Path = typer.Argument(..., help="Where to write the train/, dev/ and test/ data dirs."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing data dirs."),
) -> None:
    """The digit words of Google Speech Commands -> OUT_DIR/train, dev, test data dirs (its own lists).

    Example: skiptool prep speech-commands /corpora/speech_commands_v0.02 data/speech_commands
    """
    _report(out_dir, PREPARERS["speech-commands"](corpus_dir, out_dir, overwrite=overwrite))


@_command("mnist")
def mnist(
    corpus_dir: Path = typer.Argument(..., help="Folder with t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] (train-* optional)."),
    out_dir: Path = typer.Argument(..., help="Where to write images/ and the train/, dev/, test/ data dirs."),
    dev_size: int = typer.Option(1000, "--dev-size", help="Images in dev."),
    test_size: int = typer.Option(1000, "--test-size", help="Images in test when only the t10k files exist."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the stratified split."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
) -> None:
    """MNIST IDX files -> 28x28 PNGs and image data dirs (img.scp, utt2label) OUT_DIR/train, dev, test.

    Example: skiptool prep mnist ../shared/data/mnist data/mnist
    """
    parts = PREPARERS["mnist"](corpus_dir, out_dir, dev_size=dev_size, test_size=test_size, seed=seed,
                               overwrite=overwrite)
    _report(out_dir, parts)


@_command("sklearn-digits")
def sklearn_digits(
    out_dir: Path = typer.Argument(..., help="Where to write images/ and the train/, dev/, test/ data dirs."),
    dev_fraction: float = typer.Option(0.1, "--dev-fraction", help="Share of images in dev."),
    test_fraction: float = typer.Option(0.1, "--test-fraction", help="Share of images in test."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the stratified split."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
) -> None:
    """Built-in written digits: scikit-learn's 8x8 digits upscaled to 28x28 -> image data dirs.

    Example: skiptool prep sklearn-digits data/sklearn_digits
    """
    parts = PREPARERS["sklearn-digits"](out_dir, dev_fraction=dev_fraction, test_fraction=test_fraction, seed=seed,
                                        overwrite=overwrite)
    _report(out_dir, parts)


def _report_captions(out_dir: Path, parts: dict[str, DataDir]) -> None:
    for name, dd in parts.items():
        images = len(set(dd.tables["img.scp"].values()))
        typer.echo(f"wrote {out_dir / name}: {images} images, {len(dd)} captions")


class CocoSplit(str, enum.Enum):
    auto = "auto"
    official = "official"
    karpathy = "karpathy"


@_command("coco")
def coco(
    corpus_dir: Path = typer.Argument(..., help="COCO root: annotations/captions_{train,val}<year>.json and "
                                                "{train,val}<year>/ image folders, or dataset_coco.json (Karpathy)."),
    out_dir: Path = typer.Argument(..., help="Where to write the train/, dev/ and test/ caption data dirs."),
    split: CocoSplit = typer.Option(CocoSplit.auto, "--split",
                                    help="karpathy: dataset_coco.json's train+restval/val/test; official: train json "
                                         "-> train, val json -> dev (first --dev-size images) and test; auto: "
                                         "karpathy when dataset_coco.json exists."),
    dev_size: int = typer.Option(5000, "--dev-size", help="Official split: val images (by id) that go to dev."),
    captions_per_image: int = typer.Option(5, "--captions-per-image", help="Captions kept per image (1-9)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing data dirs."),
) -> None:
    """MS COCO captions -> caption data dirs OUT_DIR/train, dev, test.

    One utterance per image-caption pair, keyed IMAGE-cK, with img.scp (the original image) and
    text; DIR/captions holds the captions keyed by image (repeated keys), the BLEU references.

    Example: skiptool prep coco /corpora/coco data/coco --split karpathy
    """
    parts = PREPARERS["coco"](corpus_dir, out_dir, split=split.value, dev_size=dev_size,
                              captions_per_image=captions_per_image, overwrite=overwrite)
    _report_captions(out_dir, parts)


@_command("shapes")
def shapes(
    out_dir: Path = typer.Argument(..., help="Where to write images/ and the train/, dev/, test/ caption data dirs."),
    num_train: int = typer.Option(1000, "--num-train", help="Images in train."),
    num_dev: int = typer.Option(100, "--num-dev", help="Images in dev."),
    num_test: int = typer.Option(100, "--num-test", help="Images in test."),
    image_size: int = typer.Option(64, "--image-size", help="Image side in pixels (the paper uses 128)."),
    captions_per_image: int = typer.Option(5, "--captions-per-image", help="Differently worded captions per image (1-7)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same corpus."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
) -> None:
    """Built-in image-caption corpus: drawn RGB scenes of 1-3 shapes with five captions each -> caption data dirs.

    Shapes (circle, square, triangle, star, diamond, hexagon, cross, heart) in ten colours, three
    sizes and nine positions on light or dark, plain or gradient, noisy backgrounds; captions name
    them, their positions and their relations with synonyms. Layout as `skiptool prep coco`.

    Example: skiptool prep shapes data/shapes --num-train 1000 --image-size 64
    """
    parts = PREPARERS["shapes"](out_dir, num_train=num_train, num_dev=num_dev, num_test=num_test,
                                image_size=image_size, captions_per_image=captions_per_image, seed=seed,
                                overwrite=overwrite)
    _report_captions(out_dir, parts)


@_command("ljspeech")
def ljspeech(
    corpus_dir: Path = typer.Argument(..., help="LJSpeech root: metadata.csv (id|text|normalized text) and wavs/."),
    out_dir: Path = typer.Argument(..., help="Where to write the train/, dev/ and test/ data dirs."),
    dev_size: int = typer.Option(250, "--dev-size", help="Utterances in dev (taken from the end, before test)."),
    test_size: int = typer.Option(250, "--test-size", help="Utterances in test (the last ones by id)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing data dirs."),
) -> None:
    """LJSpeech -> OUT_DIR/train, dev, test data dirs (the normalized text, speaker LJ, utt2emo neutral).

    Example: skiptool prep ljspeech /corpora/LJSpeech-1.1 data/ljspeech
    """
    _report(out_dir, PREPARERS["ljspeech"](corpus_dir, out_dir, dev_size=dev_size, test_size=test_size,
                                           overwrite=overwrite))


@_command("emt4")
def emt4(
    corpus: Path = typer.Argument(..., help="A list of 'wav<TAB>text<TAB>emotion' lines, or a folder holding "
                                            "train.tsv, dev.tsv and test.tsv."),
    out_dir: Path = typer.Argument(..., help="Where to write the train/, dev/ and test/ data dirs."),
    dev_size: int = typer.Option(250, "--dev-size", help="One list: utterances drawn for dev."),
    test_size: int = typer.Option(250, "--test-size", help="One list: utterances drawn for test."),
    speaker: str = typer.Option("emt4", "--speaker", help="The speaker id (and utterance id prefix)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the dev/test draw."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing data dirs."),
) -> None:
    """An EMT-4-style emotional TTS list -> OUT_DIR/train, dev, test data dirs with utt2emo.

    Emotions are neutral, happy, sad or angry; wav paths are relative to the list's folder; an
    optional header line 'wav<TAB>text<TAB>emotion' and '#' comment lines are skipped.

    Example: skiptool prep emt4 /corpora/emt4/emt4.tsv data/emt4
    """
    _report(out_dir, PREPARERS["emt4"](corpus, out_dir, dev_size=dev_size, test_size=test_size, speaker=speaker,
                                       seed=seed, overwrite=overwrite))


@_command("espeak-sentences")
def espeak_sentences(
    out_dir: Path = typer.Argument(..., help="Where to write wav/ and the train/, dev/, test/ data dirs."),
    num_train: int = typer.Option(1000, "--num-train", help="Utterances in train."),
    num_dev: int = typer.Option(100, "--num-dev", help="Utterances in dev."),
    num_test: int = typer.Option(100, "--num-test", help="Utterances in test."),
    voice: str = typer.Option("en-us", "--voice", help="espeak-ng language voice."),
    variant: str = typer.Option("f2", "--variant", help="espeak-ng voice variant (f2: female)."),
    sample_rate: int = typer.Option(16000, "--sample-rate", help="Sample rate of the written wavs (Hz)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same corpus."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT_DIR if it is not empty."),
) -> None:
    """Built-in text-speech corpus: everyday sentences spoken by one espeak-ng voice in four emotion styles.

    Each sentence is spoken once, as neutral, happy, sad or angry (equal shares, by pitch, pitch
    range, rate and amplitude); writes wav.scp, text, utt2spk, spk2utt, utt2emo, utt2dur. Its
    sentences are not captions and share about 26% of their words with the shapes captions.

    Example: skiptool prep espeak-sentences data/espeak_sentences --num-train 1000
    """
    parts = PREPARERS["espeak-sentences"](out_dir, num_train=num_train, num_dev=num_dev, num_test=num_test,
                                          voice=voice, variant=variant, sample_rate=sample_rate, seed=seed,
                                          overwrite=overwrite)
    _report(out_dir, parts)
