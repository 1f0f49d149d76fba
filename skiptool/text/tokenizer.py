"""Tokenizers and the token-list stage (ESPnet's `token_list`): characters or sentencepiece pieces.

    build_token_list(["data/shapes/train/text"], "data/token_list/char", token_type="char")
    build_token_list(texts, "data/token_list/bpe100", token_type="bpe", nbpe=100)   # or model_type="unigram"
    tok = load_tokenizer("data/token_list/bpe100")
    ids = tok.encode("A red circle.")      # cleaned, then ids; no <sos>/<eos> added
    tok.decode(ids)                        # "a red circle."

A token-list dir holds `tokens.txt` (one token per line, line number = id), `config.yaml`
(token_type, cleaner, and for bpe nbpe and model_type) and for bpe `bpe.model`. Both token types
begin with `<pad>` (0, also the CTC blank), `<eos>` (1) and `<sos>` (2); char then continues with
the paper's 66-symbol table (skiptool.text.symbols), bpe with `<unk>` (3) and the pieces, whose
word-initial marker is sentencepiece's `▁`. Characters outside the char table are dropped with one
warning per new set of such characters naming them; sentencepiece maps unknown ones to `<unk>`.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from skiptool.text.cleaners import CLEANERS
from skiptool.text.symbols import EOS, PAD, SOS, SPACE, SYMBOL_TO_ID, SYMBOLS, token_name
from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import atomic_write_text, check_writable

log = logging.getLogger(__name__)

TOKEN_TYPES = ("char", "bpe")
BPE_MODEL_TYPES = ("bpe", "unigram")
UNK = "<unk>"


def _cleaner(name: str):
    if name not in CLEANERS:
        raise SkiptoolError(f"cleaner '{name}': unknown; choose one of {', '.join(CLEANERS)}")
    return CLEANERS[name]


class CharTokenizer:
    """Text -> ids of the 66-symbol table, after the cleaner."""

    token_type = "char"

    def __init__(self, cleaner: str = "english") -> None:
        self.cleaner = cleaner
        self._clean = _cleaner(cleaner)
        self.tokens: tuple[str, ...] = tuple(token_name(s) for s in SYMBOLS)
        self._dropped: set[str] = set()

    def __len__(self) -> int:
        return len(self.tokens)

    def clean(self, text: str) -> str:
        return self._clean(text)

    def encode(self, text: str) -> list[int]:
        cleaned = self._clean(text)
        ids = [SYMBOL_TO_ID.get(c, -1) for c in cleaned]
        if -1 in ids:
            unknown = sorted({c for c, i in zip(cleaned, ids) if i == -1})
            new = [c for c in unknown if c not in self._dropped]
            if new:
                self._dropped.update(new)
                log.warning("characters outside the 66-symbol table dropped: "
                            + " ".join(repr(c) for c in new) + f" (in {text[:60]!r})")
            ids = [i for i in ids if i != -1]
        return ids

    def tokenize(self, text: str) -> list[str]:
        return [self.tokens[i] for i in self.encode(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Characters of the ids, stopping at <eos>; <pad> and <sos> are skipped."""
        out = []
        for i in ids:
            i = int(i)
            if i == SYMBOL_TO_ID[EOS]:
                break
            if 0 <= i < len(SYMBOLS) and SYMBOLS[i] not in (PAD, SOS):
                out.append(SYMBOLS[i])
        return "".join(out)


class SentencePieceTokenizer:
    """Text -> sentencepiece ids (the model's ids are the tokens.txt ids), after the cleaner."""

    token_type = "bpe"

    def __init__(self, model: str | os.PathLike, cleaner: str = "english") -> None:
        import sentencepiece as spm

        self.cleaner = cleaner
        self._clean = _cleaner(cleaner)
        self.model_path = Path(model)
        try:
            self._sp = spm.SentencePieceProcessor(model_file=str(model))
        except (OSError, RuntimeError) as e:
            raise SkiptoolError(f"{model}: cannot load the sentencepiece model ({e}); rebuild the token list") from None
        self.tokens = tuple(self._sp.id_to_piece(i) for i in range(self._sp.get_piece_size()))

    def __len__(self) -> int:
        return len(self.tokens)

    def clean(self, text: str) -> str:
        return self._clean(text)

    def encode(self, text: str) -> list[int]:
        return list(self._sp.encode(self._clean(text)))

    def tokenize(self, text: str) -> list[str]:
        return list(self._sp.encode(self._clean(text), out_type=str))

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the ids, stopping at <eos>; special ids are skipped."""
        kept = []
        for i in ids:
            i = int(i)
            if i == 1:
                break
            if 3 <= i < len(self.tokens):
                kept.append(i)
        return self._sp.decode(kept)


Tokenizer = CharTokenizer | SentencePieceTokenizer


@dataclass(frozen=True)
class TokenListConfig:
    token_type: str = "char"
    cleaner: str = "english"
    nbpe: int | None = None
    model_type: str | None = None


def read_texts(paths: Sequence[str | os.PathLike]) -> list[str]:
    """The transcripts (second field onwards) of Kaldi `text` files, in file order."""
    from skiptool.data.datadir import read_table_lines

    texts = []
    for path in paths:
        if Path(path).is_dir():
            path = Path(path) / "text"
        texts += [value for _, _, value in read_table_lines(path) if value]
    if not texts:
        raise SkiptoolError(f"{paths[0] if paths else 'text'}: no transcripts to build a token list from; "
                            "give a Kaldi text file (or a data dir holding one)")
    return texts


def train_sentencepiece(texts: Sequence[str], model_prefix: str | os.PathLike, nbpe: int,
                        model_type: str = "bpe", character_coverage: float = 1.0) -> Path:
    """Train a sentencepiece model on `texts` (already cleaned); writes PREFIX.model.

    Ids 0-3 are <pad>, <eos>, <sos>, <unk>; `nbpe` is the whole vocabulary size including them.
    """
    import io

    import sentencepiece as spm

    if model_type not in BPE_MODEL_TYPES:
        raise SkiptoolError(f"--bpe-model-type {model_type}: choose one of {', '.join(BPE_MODEL_TYPES)}")
    if nbpe < 8:
        raise SkiptoolError(f"--nbpe {nbpe}: too small; need at least 8 (4 special tokens and some pieces)")
    model = io.BytesIO()
    spm.set_random_generator_seed(0)  # input sampling is seeded: the same texts give the same model
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=model, vocab_size=nbpe, model_type=model_type,
            character_coverage=character_coverage, pad_id=0, eos_id=1, bos_id=2, unk_id=3,
            pad_piece=PAD, eos_piece=EOS, bos_piece=SOS, unk_piece=UNK, input_sentence_size=1_000_000,
            shuffle_input_sentence=True, seed_sentencepiece_size=100_000, num_threads=1,
            minloglevel=2)
    except RuntimeError as e:
        message = str(e).strip().splitlines()[-1] if str(e).strip() else "training failed"
        too_high = re.search(r"Vocabulary size too high \(\d+\)\. Please set it to a value <= (\d+)", message)
        too_low = re.search(r"smaller than required_chars\. \d+ vs (\d+)", message)
        if too_high:
            message = (f"--nbpe {nbpe}: more pieces than these texts allow (at most {too_high.group(1)}); "
                       "use a smaller --nbpe")
        elif too_low:
            message = (f"--nbpe {nbpe}: fewer than the {too_low.group(1)} characters and special tokens of these "
                       "texts; use a larger --nbpe")
        raise SkiptoolError(f"sentencepiece: {message}") from None
    path = Path(f"{model_prefix}.model")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.getvalue())
    return path


def build_token_list(texts: Sequence[str | os.PathLike], out_dir: str | os.PathLike, token_type: str = "char",
                     nbpe: int = 100, model_type: str = "unigram", cleaner: str = "english",
                     overwrite: bool = False) -> Tokenizer:
    """Write the token-list dir `out_dir` (tokens.txt, config.yaml, bpe.model for bpe) from Kaldi
    `text` files (or data dirs), and return its tokenizer. For char the list is the fixed 66-symbol
    table, and characters of the texts outside it are reported once (they will be dropped)."""
    import yaml

    if token_type not in TOKEN_TYPES:
        raise SkiptoolError(f"--token-type {token_type}: choose one of {', '.join(TOKEN_TYPES)}")
    _cleaner(cleaner)
    out_dir = Path(out_dir)
    check_writable(out_dir / "tokens.txt", overwrite, "token list")
    clean = CLEANERS[cleaner]
    cleaned = [clean(t) for t in read_texts(list(texts))]
    if token_type == "char":
        tokenizer: Tokenizer = CharTokenizer(cleaner)
        outside = sorted({c for t in cleaned for c in t if c not in SYMBOL_TO_ID})
        if outside:
            log.warning(f"{texts[0]}: characters outside the 66-symbol table will be dropped: "
                        + " ".join(repr(c) for c in outside))
        config = TokenListConfig("char", cleaner)
    else:
        train_sentencepiece(cleaned, out_dir / "bpe", nbpe, model_type)
        tokenizer = SentencePieceTokenizer(out_dir / "bpe.model", cleaner)
        config = TokenListConfig("bpe", cleaner, nbpe, model_type)
    atomic_write_text(out_dir / "tokens.txt", "".join(t + "\n" for t in tokenizer.tokens))
    atomic_write_text(out_dir / "config.yaml", yaml.safe_dump(
        {k: v for k, v in config.__dict__.items() if v is not None}, sort_keys=False))
    return tokenizer


def load_tokenizer(token_dir: str | os.PathLike) -> Tokenizer:
    """The tokenizer of a token-list dir written by `build_token_list` (checks tokens.txt agrees)."""
    import yaml

    token_dir = Path(token_dir)
    config_path = token_dir / "config.yaml"
    if not config_path.is_file() or not (token_dir / "tokens.txt").is_file():
        raise SkiptoolError(f"{token_dir}: not a token-list dir (needs tokens.txt and config.yaml); "
                            "make one with `skiptool token list`")
    try:
        raw = yaml.safe_load(config_path.read_text()) or {}
        config = TokenListConfig(**raw)
    except (yaml.YAMLError, TypeError) as e:
        raise SkiptoolError(f"{config_path}: not a token-list config ({str(e).splitlines()[0]}); "
                            "rebuild the token list") from None
    if config.token_type == "char":
        tokenizer: Tokenizer = CharTokenizer(config.cleaner)
    elif config.token_type == "bpe":
        tokenizer = SentencePieceTokenizer(token_dir / "bpe.model", config.cleaner)
    else:
        raise SkiptoolError(f"{config_path}: token_type '{config.token_type}' must be one of {', '.join(TOKEN_TYPES)}")
    listed = tuple(token_dir.joinpath("tokens.txt").read_text(encoding="utf-8").splitlines())
    if listed != tokenizer.tokens:
        raise SkiptoolError(f"{token_dir / 'tokens.txt'}: does not match the {config.token_type} tokenizer "
                            f"({len(listed)} tokens listed, {len(tokenizer.tokens)} expected); rebuild the token list")
    return tokenizer


def read_token_list(path: str | os.PathLike) -> list[str]:
    """tokens.txt as a list (id = index); `<space>` stands for the space character."""
    path = Path(path)
    if not path.is_file():
        raise SkiptoolError(f"{path}: token list not found; make one with `skiptool token list`")
    return path.read_text(encoding="utf-8").splitlines()


__all__ = ["CharTokenizer", "SentencePieceTokenizer", "Tokenizer", "build_token_list", "load_tokenizer",
           "read_texts", "read_token_list", "train_sentencepiece", "SPACE", "UNK"]
