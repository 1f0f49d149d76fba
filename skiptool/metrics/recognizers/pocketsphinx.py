"""PocketSphinx 5 recogniser: its shipped US-English model, optionally restricted to in-domain text.

Without `lm_text` the decoder uses the model's own language model (en-us.lm.bin) and CMUdict.
With `lm_text` (a Kaldi `text` file, or a plain word list with one word per line) the
vocabulary is limited to the words in it:

* every line one word (isolated digits, commands): a JSGF grammar accepting exactly one of them;
* otherwise: a trigram ARPA model of the sentences, built by pocketsphinx's own `ArpaBoLM`.

Words missing from CMUdict have no pronunciation and are left out with a warning naming them.
Hypotheses are spelt as in `lm_text` (CMUdict is lower case).

Audio is read with soundfile, resampled to the model's 16 kHz with torchaudio, and padded with
0.3 s of very quiet noise (-70 dBFS) on each side: the model expects silence around speech, and
digital zeros break its log-energy features. On the 300 FSDD test takes (8 kHz) with the digit
grammar, isolated-digit accuracy was 71% unpadded and 82-83% padded (`skiptool score --metric wer
--ref text --hyp-wav wav.scp --lm-text text` over them: %WER 17.33, on a busy 2-core machine at
about 8 utterances/s); tests/unit/test_pocketsphinx.py checks 60 of them.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Mapping

import numpy as np
import pocketsphinx
import torch
import torchaudio.functional as AF
from pocketsphinx.lm import ArpaBoLM

from skiptool.audio.io import load_wav
from skiptool.metrics.recognizers.lm_text import read_lm_text
from skiptool.utils.errors import SkiptoolError
from skiptool.utils.progress import track

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
# Characters JSGF gives a meaning to; a word containing one cannot be a grammar token.
_JSGF_SPECIAL = re.compile(r"[;=|*+<>()\[\]{}/\"\\#!]")


class PocketSphinxRecognizer:
    """`transcribe({key: wav}) -> {key: text}` with pocketsphinx's en-us model."""

    def __init__(self, lm_text: str | os.PathLike | None = None, pad_seconds: float = 0.3,
                 noise_level: float = 3e-4, seed: int = 0):
        self.pad_seconds, self.noise_level, self.seed = pad_seconds, noise_level, seed
        model = Path(pocketsphinx.get_model_path()) / "en-us"
        self.spelling: dict[str, str] = {}  # CMUdict word -> spelling in lm_text
        if not lm_text:
            self.decoder = pocketsphinx.Decoder(hmm=str(model / "en-us"), dict=str(model / "cmudict-en-us.dict"),
                                                lm=str(model / "en-us.lm.bin"), loglevel="FATAL")
            return
        sentences = read_lm_text(lm_text)
        pronunciations = self._vocabulary(sentences, model / "cmudict-en-us.dict", Path(lm_text))
        # The decoder gets a dictionary of the vocabulary only: with all of CMUdict (134k words)
        # pocketsphinx spends ~20 s setting up an n-gram search, with this a few ms.
        with tempfile.TemporaryDirectory(prefix="skiptool-ps-") as tmp:
            dictionary = Path(tmp) / "vocabulary.dict"
            dictionary.write_text("".join(pronunciations), encoding="utf-8")
            if all(len(s) == 1 for s in sentences):
                search = {"jsgf": str(Path(tmp) / "words.gram")}
                words = " | ".join(sorted(self.spelling))
                Path(search["jsgf"]).write_text(
                    f"#JSGF V1.0;\ngrammar words;\npublic <utterance> = ( {words} );\n", encoding="utf-8")
            else:
                search = {"lm": str(Path(tmp) / "in_domain.arpa")}
                kept = [" ".join(w.lower() for w in s if w.lower() in self.spelling) for s in sentences]
                arpa = ArpaBoLM(text="\n".join(k for k in kept if k) + "\n", add_start=True)
                arpa.compute()
                arpa.write_file(search["lm"])
            self.decoder = pocketsphinx.Decoder(hmm=str(model / "en-us"), dict=str(dictionary),
                                                loglevel="FATAL", **search)

    def _vocabulary(self, sentences: list[list[str]], cmudict: Path, source: Path) -> list[str]:
        """CMUdict lines of the words in `sentences`; fills `self.spelling`, warns about the rest."""
        wanted: dict[str, str] = {}
        for word in dict.fromkeys(w for s in sentences for w in s):
            wanted.setdefault(word.lower(), word)
        lines = []
        with open(cmudict, encoding="utf-8") as f:
            for line in f:
                head = line.split(" ", 1)[0]
                base = head.split("(", 1)[0]  # alternates are spelt word(2), word(3)
                if base in wanted and not _JSGF_SPECIAL.search(base):
                    lines.append(line if line.endswith("\n") else line + "\n")
                    self.spelling[base] = wanted[base]
        unknown = [word for lower, word in wanted.items() if lower not in self.spelling]
        if unknown:
            shown = ", ".join(unknown[:20]) + (f", ... ({len(unknown)} in all)" if len(unknown) > 20 else "")
            log.warning(f"{source}: not in the pocketsphinx dictionary, left out of the vocabulary: {shown}")
        if not self.spelling:
            raise SkiptoolError(f"{source}: none of its words is in the pocketsphinx dictionary; "
                                f"give English text for --lm-text")
        return lines

    def pcm(self, wav: np.ndarray, sample_rate: int) -> bytes:
        """16 kHz 16-bit mono PCM bytes, padded with quiet noise (see the module docstring)."""
        audio = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
        if sample_rate != SAMPLE_RATE:
            audio = AF.resample(audio, sample_rate, SAMPLE_RATE)
        pad = np.zeros(int(self.pad_seconds * SAMPLE_RATE), dtype=np.float32)
        padded = np.concatenate([pad, audio.numpy(), pad])
        padded += self.noise_level * np.random.default_rng(self.seed).standard_normal(len(padded)).astype(np.float32)
        return (np.clip(padded, -1.0, 1.0) * 32767).astype("<i2").tobytes()

    def transcribe_one(self, wav: np.ndarray, sample_rate: int) -> str:
        self.decoder.start_utt()
        self.decoder.process_raw(self.pcm(wav, sample_rate), full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        words = hyp.hypstr.split() if hyp is not None else []
        # fillers (<sil>, [NOISE], <s>) are not words of the transcript
        return " ".join(self.spelling.get(w, w) for w in words if not w.startswith(("<", "[", "+")))

    def transcribe(self, wavs: Mapping[str, str | os.PathLike]) -> dict[str, str]:
        out = {}
        for key, path in track(wavs.items(), total=len(wavs), description="pocketsphinx", unit="utt"):
            wav, sample_rate = load_wav(path, key)  # rejects missing, empty, stereo, NaN audio
            out[key] = self.transcribe_one(wav, sample_rate)
        return out
