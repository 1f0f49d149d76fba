"""Text: the paper's 66-symbol character table, cleaners, char and sentencepiece tokenizers, the
token-list stage and vocabulary statistics."""

from skiptool.text.cleaners import CLEANERS, english_cleaners
from skiptool.text.symbols import EOS_ID, PAD_ID, SOS_ID, SYMBOLS
from skiptool.text.tokenizer import (CharTokenizer, SentencePieceTokenizer, build_token_list, load_tokenizer,
                                     read_texts, read_token_list)
from skiptool.text.vocab import vocabulary, vocabulary_overlap

__all__ = ["CLEANERS", "english_cleaners", "SYMBOLS", "PAD_ID", "EOS_ID", "SOS_ID", "CharTokenizer",
           "SentencePieceTokenizer", "build_token_list", "load_tokenizer", "read_texts", "read_token_list",
           "vocabulary", "vocabulary_overlap"]
