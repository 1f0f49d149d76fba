"""`skiptool token`: the token-list stage (characters of the paper's 66-symbol table, or
sentencepiece BPE/unigram pieces) and vocabulary statistics of text files."""

from __future__ import annotations

import enum
import inspect
from pathlib import Path
from typing import List

import typer

app = typer.Typer(no_args_is_help=True,
                  help="Token lists (char: the paper's 66 symbols; bpe: sentencepiece), encoding and vocabulary overlap.")


def _command(name: str | None = None):
    """Register a command whose help is its docstring with each paragraph on one line."""
    def register(function):
        paragraphs = inspect.cleandoc(function.__doc__ or "").split("\n\n")
        return app.command(name, help="\n\n".join(" ".join(p.split()) for p in paragraphs))(function)
    return register


class TokenType(str, enum.Enum):
    char = "char"
    bpe = "bpe"


class BpeModelType(str, enum.Enum):
    unigram = "unigram"
    bpe = "bpe"


class Cleaner(str, enum.Enum):
    english = "english"
    basic = "basic"
    none = "none"


@_command("list")
def token_list(
    texts: List[Path] = typer.Argument(..., help="Kaldi text files (or data dirs holding one) to build from."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Token-list dir to write (tokens.txt, config.yaml, bpe.model)."),
    token_type: TokenType = typer.Option(TokenType.char, "--token-type", help="char: the 66-symbol table; bpe: sentencepiece pieces."),
    nbpe: int = typer.Option(100, "--nbpe", help="bpe: vocabulary size, the 4 special tokens included."),
    bpe_model_type: BpeModelType = typer.Option(BpeModelType.unigram, "--bpe-model-type", help="bpe: sentencepiece model type."),
    cleaner: Cleaner = typer.Option(Cleaner.english, "--cleaner", help="Text cleaner run before tokenising."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing token list."),
) -> None:
    """Build a token list from transcripts, as ESPnet's token-list stage: OUT/tokens.txt (line = id).

    Ids 0-2 are <pad> (CTC blank), <eos>, <sos>; char continues with the paper's 66-symbol table
    (characters outside it are reported and will be dropped), bpe with <unk> and the pieces of a
    sentencepiece model trained on the cleaned texts (OUT/bpe.model).

    Example: skiptool token list data/shapes/train data/espeak_sentences/train -o data/token_list/bpe100 --token-type bpe --nbpe 100
    """
    from skiptool.text.tokenizer import build_token_list

    tok = build_token_list(texts, out_dir, token_type=token_type.value, nbpe=nbpe, model_type=bpe_model_type.value,
                           cleaner=cleaner.value, overwrite=overwrite)
    typer.echo(f"wrote {out_dir / 'tokens.txt'}: {len(tok)} {token_type.value} tokens")


@_command("encode")
def encode(
    token_dir: Path = typer.Argument(..., help="Token-list dir written by `skiptool token list`."),
    text: str = typer.Argument(..., help="Text to encode."),
) -> None:
    """Print the cleaned text, its tokens and ids.

    Example: skiptool token encode data/token_list/char "A red circle."
    """
    from skiptool.text.tokenizer import load_tokenizer

    tok = load_tokenizer(token_dir)
    ids = tok.encode(text)
    typer.echo(tok.clean(text))
    typer.echo(" ".join(tok.tokens[i] for i in ids))
    typer.echo(" ".join(map(str, ids)))


@_command("overlap")
def overlap(
    text_a: Path = typer.Argument(..., help="Kaldi text file (or data dir, or caption data dir) A."),
    text_b: Path = typer.Argument(..., help="Kaldi text file (or data dir) B."),
) -> None:
    """Word vocabularies of two texts and their overlap (shared words over all words, as paper 000's 26%).

    Example: skiptool token overlap data/shapes/train data/espeak_sentences/train
    """
    from skiptool.text.tokenizer import read_texts
    from skiptool.text.vocab import vocabulary_overlap

    result = vocabulary_overlap(read_texts([text_a]), read_texts([text_b]))
    typer.echo(result.describe(str(text_a), str(text_b)))
