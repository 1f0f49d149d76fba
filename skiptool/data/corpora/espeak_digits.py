"""Built-in spoken digits: the words zero..nine synthesised by espeak-ng over many "speakers".

    prepare_espeak_digits("data/espeak", num_speakers=30, takes=10, seed=0)

A speaker is a distinct pair of an English espeak-ng voice (en-us, en-gb-x-rp, en-gb-scotland,
...) and a voice variant (m1..m8, f1..f5, klatt.., and named human-like variants), with its own
base pitch, pitch range, speaking rate and amplitude; every take jitters these a little. The
output mirrors FSDD's: `out_dir/train` and `out_dir/test` with wav.scp, text, utt2spk, spk2utt,
utt2label, utt2dur; wavs (16-bit, `sample_rate`) under `out_dir/wav/<speaker>/`, and
`out_dir/spk2voice` describing each speaker. Test speakers never appear in train. The same
arguments give byte-identical output (synthesis runs in a fresh espeak-ng process).
"""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from skiptool.data.corpora.fsdd import DIGIT_WORDS
from skiptool.data.datadir import DataDir, make_temp_dir, replace_dir, write_table
from skiptool.data.espeak import Voice, english_voices, synthesize_fresh, variants
from skiptool.utils.errors import SkiptoolError
from skiptool.utils.progress import track

# Variants that sound like a person (the shipped set also has robots, whispers and croaks).
HUMAN_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
                  "klatt", "klatt2", "klatt3", "klatt4", "klatt6", "Andy", "Annie", "adam", "anika",
                  "belinda", "benjamin", "david", "ed", "grandma", "grandpa", "linda", "max", "paul",
                  "robert", "steph", "travis", "victor")

# Per-speaker prosody ranges (espeak-ng units) and the per-take jitter around a speaker's values.
PITCH, RANGE, RATE, AMPLITUDE = (30, 70), (30, 80), (140, 210), (80, 120)
JITTER_PITCH, JITTER_RANGE, JITTER_RATE, JITTER_AMPLITUDE = 4, 8, 0.06, 8


@dataclass(frozen=True)
class Speaker:
    id: str
    voice: Voice  # the speaker's own values; takes jitter around them

    def describe(self) -> str:
        v = self.voice
        return f"{v.spec} pitch={v.pitch} range={v.range} rate={v.rate} amplitude={v.amplitude}"


def draw_speakers(num_speakers: int, seed: int = 0) -> list[Speaker]:
    """`num_speakers` speakers, each a different voice/variant pair while pairs last, seeded."""
    languages = english_voices()
    shipped = set(variants())
    usable = [v for v in HUMAN_VARIANTS if v in shipped]
    if not languages or not usable:
        raise SkiptoolError("espeak-ng-data has no English voices or variants; reinstall espeakng-loader")
    rng = np.random.default_rng([seed, 0])
    pairs = [(lang, var) for lang in languages for var in usable]
    order = rng.permutation(len(pairs))
    speakers = []
    for i in range(num_speakers):
        lang, variant = pairs[order[i % len(pairs)]]
        voice = Voice(lang, variant, pitch=int(rng.integers(*PITCH, endpoint=True)),
                      range=int(rng.integers(*RANGE, endpoint=True)), rate=int(rng.integers(*RATE, endpoint=True)),
                      amplitude=int(rng.integers(*AMPLITUDE, endpoint=True)))
        speakers.append(Speaker(f"spk{i:03d}", voice))
    return speakers


def _take_voice(voice: Voice, rng: np.random.Generator) -> Voice:
    def jitter(value: int, spread: float, low: int, high: int) -> int:
        return int(np.clip(round(value + rng.uniform(-spread, spread)), low, high))

    return Voice(voice.name, voice.variant,
                 pitch=jitter(voice.pitch, JITTER_PITCH, 0, 100),
                 range=jitter(voice.range, JITTER_RANGE, 0, 100),
                 rate=jitter(voice.rate, voice.rate * JITTER_RATE, 80, 450),
                 amplitude=jitter(voice.amplitude, JITTER_AMPLITUDE, 0, 200))


def prepare_espeak_digits(out_dir: str | os.PathLike, num_speakers: int = 30, takes: int = 10,
                          sample_rate: int = 16000, seed: int = 0, test_fraction: float = 0.2,
                          overwrite: bool = False, quiet: bool | None = None) -> dict[str, DataDir]:
    """Synthesise `num_speakers` x 10 digits x `takes` utterances into `out_dir` (see the module doc).
    round(test_fraction * num_speakers) speakers (at least one) form the test set."""
    if num_speakers < 2:
        raise SkiptoolError(f"--num-speakers {num_speakers}: need at least 2 (train and test speakers differ)")
    if takes < 1:
        raise SkiptoolError(f"--takes {takes}: need at least 1")
    if not 0 < test_fraction < 1:
        raise SkiptoolError(f"test_fraction {test_fraction}: must be between 0 and 1")
    if not 1000 <= sample_rate <= 192000:
        raise SkiptoolError(f"--sample-rate {sample_rate}: not a plausible audio rate")
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not overwrite:
        raise SkiptoolError(f"{out_dir}: output already exists; pass --overwrite to replace it")

    speakers = draw_speakers(num_speakers, seed)
    num_test = min(num_speakers - 1, max(1, round(test_fraction * num_speakers)))
    test_ids = {s.id for s in speakers[-num_test:]}
    rng = np.random.default_rng([seed, 1])
    jobs = []  # (speaker, digit, take, voice, noise seed), in a fixed order
    for speaker in speakers:
        for digit in range(10):
            for take in range(takes):
                jobs.append((speaker, digit, take, _take_voice(speaker.voice, rng), int(rng.integers(2**31))))

    tmp = make_temp_dir(out_dir)
    final = out_dir.resolve()
    try:
        tables = {part: {n: {} for n in ("wav.scp", "text", "utt2spk", "utt2label", "utt2dur")}
                  for part in ("train", "test")}
        requests = [(DIGIT_WORDS[digit], voice, noise) for _, digit, _, voice, noise in jobs]
        waves = synthesize_fresh(requests, sample_rate)
        for (speaker, digit, take, _, _), wav in track(zip(jobs, waves), total=len(jobs),
                                                      description="espeak-ng digits", quiet=quiet, unit="utt"):
            utt = f"{speaker.id}_{digit}_{take:02d}"
            rel = Path("wav") / speaker.id / f"{utt}.wav"
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            # Encoded in memory and written plainly: libsndfile fsyncs every file it closes (6 ms
            # each here), and the out_dir appears by one rename only once everything is written.
            encoded = io.BytesIO()
            sf.write(encoded, np.clip(wav, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
            (tmp / rel).write_bytes(encoded.getvalue())
            part = tables["test" if speaker.id in test_ids else "train"]
            part["wav.scp"][utt] = str(final / rel)
            part["text"][utt] = DIGIT_WORDS[digit]
            part["utt2spk"][utt] = speaker.id
            part["utt2label"][utt] = str(digit)
            part["utt2dur"][utt] = f"{len(wav) / sample_rate:.4f}"
        result = {}
        for part, part_tables in tables.items():
            result[part] = DataDir(part_tables)
            result[part].write(tmp / part)
        write_table(tmp / "spk2voice", {s.id: s.describe() for s in speakers})
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for part, dd in result.items():
        dd.path = out_dir / part
    return result
