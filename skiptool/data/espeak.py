"""Speech synthesis with espeak-ng through ctypes (the shared library shipped by `espeakng-loader`).

    from skiptool.data.espeak import Voice, synthesize
    wav = synthesize("seven", Voice("en-us", variant="m3", pitch=40, rate=150), sample_rate=16000)

No Python binding of espeak-ng exposes raw synthesis with per-call voice parameters (phonemizer
wraps it only for text -> phonemes), so this module binds the handful of C functions it needs.
The C library keeps one global state, so it is initialised once and every call holds a lock.

That state also carries over between utterances (the phase of espeak-ng's pitch "flutter" is a
static that nothing resets), so `synthesize` in one process gives the same text very slightly
different samples from call to call. `synthesize_fresh` runs a batch in a new worker process,
whose output depends only on its arguments: corpora are made with it.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from skiptool.utils.errors import SkiptoolError

# From espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EE_OK = 0
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE, _PARAM_WORDGAP = 1, 2, 3, 4, 7

# int callback(short *wav, int num_samples, espeak_EVENT *events); return 0 to continue.
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

ENGINE_SAMPLE_RATE = 22050  # what espeak-ng produces; the rate espeak_Initialize returns is used


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice and its prosody. Ranges are espeak-ng's own."""

    name: str = "en-us"         # language voice, e.g. en-us, en, en-gb-x-rp, en-gb-scotland
    variant: str | None = None  # voice variant from espeak-ng-data/voices/!v, e.g. m3, f2, klatt
    pitch: int = 50             # base pitch, 0-100
    range: int = 50             # pitch range (intonation), 0-100
    rate: int = 175             # speaking rate, words per minute, 80-450
    amplitude: int = 100        # volume, 0-200
    word_gap: int = 0           # extra pause between words, units of 10 ms

    @property
    def spec(self) -> str:
        """The name espeak_SetVoiceByName takes: 'language+variant'."""
        return f"{self.name}+{self.variant}" if self.variant else self.name

    def check(self) -> None:
        for field, low, high in (("pitch", 0, 100), ("range", 0, 100), ("rate", 80, 450),
                                 ("amplitude", 0, 200), ("word_gap", 0, 1000)):
            value = getattr(self, field)
            if not low <= value <= high:
                raise SkiptoolError(f"espeak voice {self.spec}: {field}={value} is outside {low}-{high}")
        # espeak-ng silently ignores an unknown variant, so check it against the shipped ones.
        if self.variant is not None and self.variant not in variants():
            raise SkiptoolError(f"espeak voice '{self.spec}': variant not found in espeak-ng-data; "
                                f"choose one of {', '.join(variants())}")


class _Engine:
    """The process-wide espeak-ng library: loaded and initialised on first use."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._lib: ctypes.CDLL | None = None
        self._chunks: list[np.ndarray] = []
        self._callback = _SynthCallback(self._collect)  # kept referenced: C holds the pointer
        self.sample_rate = ENGINE_SAMPLE_RATE

    def _collect(self, samples, num_samples, events) -> int:
        if num_samples > 0 and samples:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(num_samples,)).copy())
        return 0

    def library(self) -> ctypes.CDLL:
        """Load and initialise libespeak-ng once; call with the lock held."""
        if self._lib is not None:
            return self._lib
        try:
            import espeakng_loader
        except ImportError:
            raise SkiptoolError("espeakng-loader is not installed; run `make install` "
                                "(or pip install espeakng-loader)") from None
        try:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as e:
            raise SkiptoolError(f"{espeakng_loader.get_library_path()}: cannot load espeak-ng ({e}); "
                                "reinstall espeakng-loader") from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        data_path = espeakng_loader.get_data_path()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_path).encode(), _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise SkiptoolError(f"{data_path}: espeak-ng failed to initialise (status {rate}); "
                                "reinstall espeakng-loader")
        lib.espeak_SetSynthCallback(self._callback)
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.sample_rate = rate
        self._lib = lib
        return lib

    def synthesize(self, text: str, voice: Voice, seed: int) -> np.ndarray:
        """int16 samples at `self.sample_rate` for `text` spoken by `voice`."""
        voice.check()
        with self.lock:
            lib = self.library()
            if lib.espeak_SetVoiceByName(voice.spec.encode()) != _EE_OK:
                raise SkiptoolError(f"espeak voice '{voice.spec}': not found in espeak-ng-data; "
                                    f"English voices: {', '.join(english_voices())}")
            # Set after the voice: selecting a voice resets prosody to its defaults.
            for param, value in ((_PARAM_RATE, voice.rate), (_PARAM_VOLUME, voice.amplitude),
                                 (_PARAM_PITCH, voice.pitch), (_PARAM_RANGE, voice.range),
                                 (_PARAM_WORDGAP, voice.word_gap)):
                lib.espeak_SetParameter(param, value, 0)
            encoded = text.encode("utf-8") + b"\0"
            # Breathy and rough variants add noise from espeak-ng's generator (and klatt from libc's
            # rand): seed both so that the same call gives the same samples.
            lib.espeak_ng_SetRandSeed(seed)
            _libc_srand(seed)
            self._chunks = []
            status = lib.espeak_Synth(encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if status != _EE_OK:
            raise SkiptoolError(f"espeak-ng could not synthesise {text!r} with voice {voice.spec} (status {status})")
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


_ENGINE = _Engine()


def _libc_srand(seed: int) -> None:
    srand = _libc_srand_function()
    if srand is not None:
        srand(ctypes.c_uint(seed & 0xFFFFFFFF))


@lru_cache(maxsize=1)
def _libc_srand_function():
    try:
        return ctypes.CDLL(None).srand
    except (OSError, AttributeError):  # not a POSIX C library: klatt's noise stays unseeded
        return None


def synthesize(text: str, voice: Voice = Voice(), sample_rate: int | None = None, seed: int = 0) -> np.ndarray:
    """Speak `text` with `voice`; float32 mono in [-1, 1] at `sample_rate` (default: the engine's 22050 Hz).

    `seed` drives the noise of breathy/rough variants. Within one process the pitch flutter carries
    over between calls (see the module docstring); use `synthesize_fresh` for reproducible batches.
    """
    return _to_float(_ENGINE.synthesize(text, voice, seed), _ENGINE.sample_rate, sample_rate)


def _to_float(samples: np.ndarray, rate: int, sample_rate: int | None) -> np.ndarray:
    wav = samples.astype(np.float32) / 32768.0
    if sample_rate is None or sample_rate == rate or wav.size == 0:
        return wav
    import torch

    # One utterance is too small to share between threads: on a busy machine two threads made each
    # call ~30x slower (70 ms vs 2 ms for 0.5 s of audio), so resample on one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            return _resampler(rate, sample_rate)(torch.from_numpy(wav)).numpy().astype(np.float32, copy=False)
    finally:
        torch.set_num_threads(threads)


@lru_cache(maxsize=8)
def _resampler(orig: int, new: int):
    """torchaudio's resampler (same as torchaudio.functional.resample), keeping its sinc kernel."""
    import torchaudio

    return torchaudio.transforms.Resample(orig, new)


def synthesize_fresh(requests: Sequence[tuple[str, Voice, int]], sample_rate: int | None = None) -> Iterator[np.ndarray]:
    """Speak each (text, voice, seed) in order in a new worker process; yields float32 waveforms at
    `sample_rate` (default 22050 Hz) as they arrive. The same requests always give the same samples."""
    for _, voice, _ in requests:
        voice.check()
    payload = json.dumps([{"text": t, "voice": dataclasses.asdict(v), "seed": int(s)} for t, v, s in requests])
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    errors = tempfile.TemporaryFile()  # a file, not a pipe: a chatty worker can never block on it
    worker = subprocess.Popen([sys.executable, "-m", "skiptool.data.espeak", "--worker"], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors)
    try:
        worker.stdin.write(payload.encode())  # the worker reads all of it before it writes anything
        worker.stdin.close()
        rate_bytes = worker.stdout.read(4)
        for _ in requests:
            header = worker.stdout.read(8)
            if len(header) < 8:
                break
            (count,) = struct.unpack("<q", header)
            raw = worker.stdout.read(2 * count)
            if len(raw) < 2 * count:
                break
            yield _to_float(np.frombuffer(raw, dtype="<i2"), struct.unpack("<i", rate_bytes)[0], sample_rate)
        else:
            worker.wait()
            return
        worker.wait()
        errors.seek(0)
        message = errors.read().decode(errors="replace").strip().splitlines()
        raise SkiptoolError(message[-1] if message else f"espeak-ng worker failed (exit {worker.returncode})")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        worker.stdout.close()
        errors.close()


def engine_sample_rate() -> int:
    """The rate espeak-ng synthesises at (initialises the library if needed)."""
    with _ENGINE.lock:
        _ENGINE.library()
    return _ENGINE.sample_rate


def _data_path() -> Path:
    import espeakng_loader

    return Path(espeakng_loader.get_data_path())


@lru_cache(maxsize=None)
def variants() -> tuple[str, ...]:
    """Voice variant names shipped in espeak-ng-data/voices/!v (m1..m8, f1..f5, klatt, ...)."""
    folder = _data_path() / "voices" / "!v"
    return tuple(sorted(p.name for p in folder.iterdir() if p.is_file())) if folder.is_dir() else ()


@lru_cache(maxsize=None)
def english_voices() -> tuple[str, ...]:
    """English language voices shipped in espeak-ng-data/lang (en, en-us, en-gb-x-rp, ...), lower-cased."""
    folder = _data_path() / "lang" / "gmw"
    names = (p.name.lower() for p in folder.iterdir() if p.is_file()) if folder.is_dir() else ()
    # en-shaw reads Shavian script, not Latin text.
    return tuple(sorted(n for n in names if (n == "en" or n.startswith("en-")) and n != "en-shaw"))


def _worker_main() -> None:
    """`python -m skiptool.data.espeak --worker`: JSON requests on stdin; on stdout the engine rate
    (int32) then, per request, the sample count (int64) and the int16 samples, little-endian."""
    requests = json.loads(sys.stdin.buffer.read())
    out = sys.stdout.buffer
    try:
        out.write(struct.pack("<i", engine_sample_rate()))
        for request in requests:
            samples = _ENGINE.synthesize(request["text"], Voice(**request["voice"]), request["seed"])
            out.write(struct.pack("<q", samples.size))
            out.write(samples.astype("<i2").tobytes())
        out.flush()
    except SkiptoolError as e:
        print(str(e), file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__" and sys.argv[1:] == ["--worker"]:
    _worker_main()
