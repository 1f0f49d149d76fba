"""Char and sentencepiece tokenizers, the token-list stage, vocabulary overlap, `skiptool token`."""

from __future__ import annotations

import logging

import pytest
from typer.testing import CliRunner

from skiptool.bin import token as token_cli
from skiptool.text.tokenizer import (CharTokenizer, SentencePieceTokenizer, build_token_list, load_tokenizer,
                                     read_texts, read_token_list)
from skiptool.text.vocab import vocabulary, vocabulary_overlap, words
from skiptool.utils.errors import SkiptoolError

TEXTS = [f"utt{i:03d} {t}" for i, t in enumerate([
    "A small red circle above a large blue square.", "There is a tiny green star in the top left corner.",
    "Two shapes: a yellow heart and a black cross.", "A picture of an orange triangle on a dark background.",
    "The purple diamond is to the left of the white hexagon.", "Yesterday, my sister found a heavy red basket.",
    "Please put the yellow cup on the top shelf.", "Three plus four is seven.",
] * 6)]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "data" / "text"
    path.parent.mkdir()
    path.write_text("\n".join(TEXTS) + "\n")
    return path


def test_char_tokenizer_round_trip_and_warning(caplog):
    tok = CharTokenizer()
    ids = tok.encode("A Red circle, 2 of them!")
    assert tok.decode(ids) == "a red circle, two of them!" and len(tok) == 66
    assert tok.tokenize("a b") == ["a", "<space>", "b"]
    assert tok.decode([29, 30, 1, 31]) == "ab"  # stops at <eos>; pad and sos are skipped
    assert tok.decode([0, 2, 29]) == "a"
    with caplog.at_level(logging.WARNING):
        assert tok.decode(tok.encode("a_b #c")) == "ab c"
        tok.encode("x_y")  # the same character again: no second warning
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "'#' '_'" in warnings[0] and "66-symbol table" in warnings[0]
    assert CharTokenizer("none").encode("Ab") == [3, 30]  # upper case stays when the cleaner keeps it


def test_char_token_list(tmp_path, text_file, caplog):
    text_file.write_text(text_file.read_text() + "utt999 Under_score here\n")
    with caplog.at_level(logging.WARNING):
        tok = build_token_list([text_file.parent], tmp_path / "char")
    assert "'_'" in caplog.text
    listed = read_token_list(tmp_path / "char" / "tokens.txt")
    assert len(listed) == 66 and listed[:3] == ["<pad>", "<eos>", "<sos>"] and listed[-1] == "<space>"
    loaded = load_tokenizer(tmp_path / "char")
    assert isinstance(loaded, CharTokenizer) and loaded.encode("Hi there") == tok.encode("Hi there")
    with pytest.raises(SkiptoolError, match="token list already exists; pass --overwrite"):
        build_token_list([text_file], tmp_path / "char")


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_sentencepiece_token_list(tmp_path, text_file, model_type):
    tok = build_token_list([text_file], tmp_path / "bpe", token_type="bpe", nbpe=60, model_type=model_type)
    assert isinstance(tok, SentencePieceTokenizer) and len(tok) == 60
    listed = read_token_list(tmp_path / "bpe" / "tokens.txt")
    assert listed == list(tok.tokens) and listed[:4] == ["<pad>", "<eos>", "<sos>", "<unk>"]
    text = "A small red circle above the yellow cup."
    ids = tok.encode(text)
    assert min(ids) >= 3 and tok.decode(ids + [1, 7, 8]) == tok.clean(text)  # stops at <eos>
    assert "".join(tok.tokenize("red circle")).replace("\u2581", " ").strip() == "red circle"
    loaded = load_tokenizer(tmp_path / "bpe")
    assert loaded.encode(text) == ids
    again = build_token_list([text_file], tmp_path / "bpe2", token_type="bpe", nbpe=60, model_type=model_type)
    assert again.tokens == tok.tokens  # deterministic
    assert (tmp_path / "bpe" / "config.yaml").read_text() == (
        f"token_type: bpe\ncleaner: english\nnbpe: 60\nmodel_type: {model_type}\n")


def test_token_list_errors(tmp_path, text_file):
    with pytest.raises(SkiptoolError, match="--token-type word: choose one of char, bpe"):
        build_token_list([text_file], tmp_path / "x", token_type="word")
    with pytest.raises(SkiptoolError, match="cleaner 'fancy': unknown"):
        build_token_list([text_file], tmp_path / "x", cleaner="fancy")
    with pytest.raises(SkiptoolError, match=r"sentencepiece: --nbpe 5000: .*\(at most \d+\); use a smaller --nbpe"):
        build_token_list([text_file], tmp_path / "x", token_type="bpe", nbpe=5000)
    with pytest.raises(SkiptoolError, match="sentencepiece: --nbpe 9: fewer than the .*; use a larger --nbpe"):
        build_token_list([text_file], tmp_path / "x", token_type="bpe", nbpe=9)
    assert not (tmp_path / "x").exists()
    with pytest.raises(SkiptoolError, match="--nbpe 4: too small"):
        build_token_list([text_file], tmp_path / "x", token_type="bpe", nbpe=4)
    with pytest.raises(SkiptoolError, match="nowhere: file not found"):
        read_texts([tmp_path / "nowhere"])
    with pytest.raises(SkiptoolError, match="not a token-list dir"):
        load_tokenizer(tmp_path)
    build_token_list([text_file], tmp_path / "char")
    (tmp_path / "char" / "tokens.txt").write_text("<pad>\n")
    with pytest.raises(SkiptoolError, match="tokens.txt: does not match the char tokenizer"):
        load_tokenizer(tmp_path / "char")


def test_vocabulary_overlap():
    assert words("Two red stars, 3 blue boxes; it's 1st.") == ["two", "red", "stars", "three", "blue", "boxes", "it's", "first"]
    overlap = vocabulary_overlap(["a red star", "a blue star"], ["the red fox", "a fox"])
    assert (overlap.size_a, overlap.size_b, overlap.shared, overlap.union) == (4, 4, 2, 6)
    assert overlap.jaccard == pytest.approx(2 / 6) and overlap.a_in_b == 0.5
    assert "2 shared: 33.3% of all 6 words" in overlap.describe()
    paper = type(overlap)(15200, 17946, 6874)
    assert round(100 * paper.jaccard) == 26  # the paper's COCO / EMT-4 figure is shared over union
    assert vocabulary([]) == set()


def test_token_cli(tmp_path, text_file):
    runner = CliRunner()
    result = runner.invoke(token_cli.app, ["list", str(text_file), "-o", str(tmp_path / "bpe"), "--token-type", "bpe",
                                           "--nbpe", "50"])
    assert result.exit_code == 0 and "tokens.txt: 50 bpe tokens" in result.output, result.output
    result = runner.invoke(token_cli.app, ["encode", str(tmp_path / "bpe"), "Three red stars."])
    assert result.exit_code == 0 and result.output.splitlines()[0] == "three red stars."
    other = tmp_path / "other"
    other.write_text("a the red fox\nb a small fox\n")
    result = runner.invoke(token_cli.app, ["overlap", str(text_file), str(other)])
    assert result.exit_code == 0 and "shared" in result.output and "(the paper's measure)" in result.output
