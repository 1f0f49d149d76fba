"""espeak-ng through ctypes, and the built-in spoken-digit corpus made with it."""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import pytest
import soundfile as sf

from skiptool.data.corpora.espeak_digits import draw_speakers, prepare_espeak_digits
from skiptool.data.datadir import DataDir, validate_data_dir
from skiptool.data.espeak import Voice, engine_sample_rate, english_voices, synthesize, synthesize_fresh, variants
from skiptool.utils.errors import SkiptoolError


def f0(wav: np.ndarray, sr: int) -> float:
    """Median pitch (Hz) of the voiced 40 ms frames, by autocorrelation. Hand-written: librosa.yin
    does this too, but importing librosa costs 3-9 s on the shared test machine."""
    frame, pitches = int(0.04 * sr), []
    lags = np.arange(sr // 600, sr // 50)
    for start in range(0, len(wav) - frame, frame // 2):
        x = wav[start:start + frame] - wav[start:start + frame].mean()
        ac = np.correlate(x, x, "full")[frame - 1:]
        if ac[0] > 0 and ac[lags].max() > 0.5 * ac[0]:  # clearly periodic: voiced
            pitches.append(sr / lags[np.argmax(ac[lags])])
    return float(np.median(pitches))


def test_shipped_voices_and_variants():
    assert {"en", "en-us", "en-gb-x-rp", "en-gb-scotland"} <= set(english_voices())
    assert {"m1", "m7", "f1", "f5", "klatt"} <= set(variants())
    assert engine_sample_rate() == 22050


def test_synthesize_speaks_a_digit():
    wav = synthesize("seven")
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert 0.2 < len(wav) / 22050 < 1.5
    assert 0.05 < np.abs(wav).max() <= 1.0
    wav16 = synthesize("seven", sample_rate=16000)
    assert abs(len(wav16) - len(wav) * 16000 / 22050) < 50  # resampled, not re-synthesised at a new length


def test_prosody_controls_do_what_they_say():
    low, high = synthesize("nine", Voice("en-us", "m3", pitch=10)), synthesize("nine", Voice("en-us", "m3", pitch=90))
    assert f0(high, 22050) > 1.5 * f0(low, 22050)
    female = synthesize("nine", Voice("en-us", "f2"))
    assert f0(female, 22050) > 1.4 * f0(synthesize("nine", Voice("en-us", "m3")), 22050)
    assert len(synthesize("seven", Voice(rate=100))) > 2 * len(synthesize("seven", Voice(rate=300)))
    quiet, loud = synthesize("seven", Voice(amplitude=40)), synthesize("seven", Voice(amplitude=160))
    assert np.sqrt(np.mean(loud ** 2)) > 3 * np.sqrt(np.mean(quiet ** 2))


def test_bad_voice_and_parameters_are_user_errors():
    with pytest.raises(SkiptoolError, match="espeak voice 'en-xx': not found"):
        synthesize("one", Voice("en-xx"))
    with pytest.raises(SkiptoolError, match="espeak voice 'en-us\\+nope': variant not found"):
        synthesize("one", Voice("en-us", "nope"))
    with pytest.raises(SkiptoolError, match="pitch=120 is outside 0-100"):
        synthesize("one", Voice(pitch=120))
    assert len(synthesize("two")) > 0  # the engine still works after a failed voice change


def test_threads_share_the_engine_safely():
    results: dict[int, np.ndarray] = {}

    def speak(i):
        results[i] = synthesize(["one", "seven"][i % 2], Voice("en-us", ["m1", "f3"][i % 2]))

    threads = [threading.Thread(target=speak, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lengths = [len(results[i]) for i in range(6)]
    # Each thread got its own whole utterance: same word and voice, lengths within the flutter's few ms.
    assert max(lengths[0::2]) - min(lengths[0::2]) < 400 and max(lengths[1::2]) - min(lengths[1::2]) < 400
    assert abs(np.mean(lengths[0::2]) - np.mean(lengths[1::2])) > 400


def test_synthesize_fresh_is_reproducible():
    requests = [("three", Voice("en-gb-x-rp", "m2", pitch=60), 1), ("eight", Voice("en-us", "f4"), 2)]
    synthesize("warm up the in-process engine", Voice("en-us", "m5"))  # must not change what a fresh one says
    first = list(synthesize_fresh(requests, 16000))
    second = list(synthesize_fresh(requests, 16000))
    assert len(first) == 2 and all(np.array_equal(a, b) for a, b in zip(first, second))
    assert first[0].dtype == np.float32 and 0.2 < len(first[0]) / 16000 < 1.5
    # An error inside the worker comes back as the worker's own one-line message.
    with pytest.raises(SkiptoolError, match="espeak voice 'en-zz': not found"):
        list(synthesize_fresh([("one", Voice("en-us"), 0), ("two", Voice("en-zz"), 0)]))


def test_speakers_are_distinct_and_seeded():
    speakers = draw_speakers(40, seed=3)
    assert speakers == draw_speakers(40, seed=3) and speakers != draw_speakers(40, seed=4)
    assert len({(s.voice.name, s.voice.variant) for s in speakers}) == 40
    assert all(s.voice.name in english_voices() and s.voice.variant in variants() for s in speakers)


def _digest(directory) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        h.update(path.relative_to(directory).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


def test_prepare_espeak_digits(tmp_path):
    parts = prepare_espeak_digits(tmp_path / "a", num_speakers=3, takes=1, seed=7, quiet=True)
    assert (len(parts["train"]), len(parts["test"])) == (20, 10)
    assert not set(parts["train"].speakers) & set(parts["test"].speakers)
    for part in ("train", "test"):
        assert validate_data_dir(tmp_path / "a" / part, quiet=True) == []
        assert sorted(p.name for p in (tmp_path / "a" / part).iterdir()) == [
            "spk2utt", "text", "utt2dur", "utt2label", "utt2spk", "wav.scp"]
    test = DataDir.load(tmp_path / "a" / "test")
    utt = test.utts[7]
    assert test.tables["text"][utt] == "seven" and test.tables["utt2label"][utt] == "7"
    info = sf.info(str(test.wav_paths()[utt]))
    assert info.samplerate == 16000 and info.subtype == "PCM_16"
    assert abs(info.frames / 16000 - float(test.tables["utt2dur"][utt])) < 1e-3
    assert len((tmp_path / "a" / "spk2voice").read_text().splitlines()) == 3

    prepare_espeak_digits(tmp_path / "b", num_speakers=3, takes=1, seed=7, quiet=True)
    wavs_a, wavs_b = tmp_path / "a" / "wav", tmp_path / "b" / "wav"
    assert _digest(wavs_a) == _digest(wavs_b)  # the same seed gives byte-identical audio
    with pytest.raises(SkiptoolError, match="already exists; pass --overwrite"):
        prepare_espeak_digits(tmp_path / "a", num_speakers=3, takes=1, seed=7)
    prepare_espeak_digits(tmp_path / "a", num_speakers=3, takes=1, seed=8, overwrite=True, quiet=True)
    assert _digest(tmp_path / "a" / "wav") != _digest(wavs_b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no temporary dirs left


def test_prepare_espeak_digits_rejects_bad_arguments(tmp_path):
    with pytest.raises(SkiptoolError, match="--num-speakers 1: need at least 2"):
        prepare_espeak_digits(tmp_path / "x", num_speakers=1)
    with pytest.raises(SkiptoolError, match="--takes 0"):
        prepare_espeak_digits(tmp_path / "x", takes=0)
