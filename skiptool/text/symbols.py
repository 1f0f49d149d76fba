"""The 66-symbol character table of paper 000 (its text encoder's `LookupTable(66, 128)`).

The paper gives the size of its table, not its symbols. The table here is the character set of
the Tacotron implementation the paper builds on (keithito/tacotron `text/symbols.py`: 52 letters,
10 punctuation marks and space), preceded by pad, end and start of sequence, as Mozilla TTS's
`make_symbols` does; that is 3 + 52 + 11 = 66 symbols, in this order (id = position):

    id 0       <pad>   padding, also the CTC blank
    id 1       <eos>   end of sequence
    id 2       <sos>   start of sequence (decoder input at step 0)
    id 3-28    A-Z
    id 29-54   a-z
    id 55-65   ! ' ( ) , - . : ; ? and space

Upper-case letters stay in the table, as in Tacotron, though the default cleaners lower-case.
Digits are not symbols: the cleaners spell numbers out. In a token list (`tokens.txt`) the special
symbols are written as above and the space as `<space>`, ESPnet's spelling.
"""

from __future__ import annotations

import string

PAD, EOS, SOS = "<pad>", "<eos>", "<sos>"
SPACE = "<space>"  # how the space character is written in tokens.txt
SPECIALS = (PAD, EOS, SOS)
PUNCTUATION = "!'(),-.:;? "
CHARACTERS = string.ascii_uppercase + string.ascii_lowercase + PUNCTUATION
SYMBOLS: tuple[str, ...] = SPECIALS + tuple(CHARACTERS)
SYMBOL_TO_ID = {s: i for i, s in enumerate(SYMBOLS)}
PAD_ID, EOS_ID, SOS_ID = (SYMBOL_TO_ID[s] for s in SPECIALS)

assert len(SYMBOLS) == 66 and len(set(SYMBOLS)) == 66


def token_name(symbol: str) -> str:
    """How a symbol is written in tokens.txt (space -> <space>)."""
    return SPACE if symbol == " " else symbol
