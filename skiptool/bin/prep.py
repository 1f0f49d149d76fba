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
