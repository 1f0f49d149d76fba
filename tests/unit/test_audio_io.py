"""load_wav / write_wav: formats accepted and scaled, bad files rejected with one clear message."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from skiptool.audio.io import check_wav_entry, load_wav, write_wav
from skiptool.utils.errors import SkiptoolError

SIGNAL = (0.5 * np.sin(np.arange(1600) / 5)).astype(np.float32)


@pytest.mark.parametrize("subtype, tolerance", [("PCM_U8", 1 / 128), ("PCM_16", 1 / 32768), ("PCM_24", 1e-6),
                                                ("PCM_32", 1e-8), ("FLOAT", 0), ("DOUBLE", 0)])
def test_every_pcm_width_and_float_is_scaled_to_unit_range(tmp_path, subtype, tolerance):
    path = tmp_path / f"{subtype}.wav"
    sf.write(path, SIGNAL, 16000, subtype=subtype)
    wav, sr = load_wav(path, "utt")
    assert sr == 16000 and wav.dtype == np.float32 and wav.shape == SIGNAL.shape
    assert np.abs(wav - SIGNAL).max() <= tolerance


def test_flac_reads_too(tmp_path):
    sf.write(tmp_path / "a.flac", SIGNAL, 8000)
    wav, sr = load_wav(tmp_path / "a.flac")
    assert sr == 8000 and np.abs(wav - SIGNAL).max() < 1e-4


def test_stereo_is_an_error_unless_a_channel_or_downmix_is_chosen(tmp_path):
    path = tmp_path / "st.wav"
    sf.write(path, np.stack([SIGNAL, -SIGNAL / 2], axis=1), 16000, subtype="FLOAT")
    with pytest.raises(SkiptoolError, match=r"utt7 \(.*st.wav\): has 2 channels, expected mono; set 'downmix: true'"):
        load_wav(path, "utt7")
    np.testing.assert_allclose(load_wav(path, channel=1)[0], -SIGNAL / 2)
    np.testing.assert_allclose(load_wav(path, downmix=True)[0], SIGNAL / 4, atol=1e-7)
    with pytest.raises(SkiptoolError, match="channel 2"):
        load_wav(path, channel=2)


def test_bad_files(tmp_path):
    (tmp_path / "garbage.wav").write_bytes(b"RIFF1234WAVEjunk" * 4)
    (tmp_path / "empty.wav").write_bytes(b"")
    sf.write(tmp_path / "zero.wav", np.zeros(0, np.float32), 16000)
    nan = SIGNAL.copy()
    nan[3], nan[9] = np.nan, np.inf
    sf.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    cases = {"missing.wav": "audio file not found", "garbage.wav": "cannot read audio",
             "empty.wav": "cannot read audio", "zero.wav": "empty audio (0 samples)", "nan.wav": "2 sample(s) are NaN or Inf"}
    for name, needle in cases.items():
        with pytest.raises(SkiptoolError) as err:
            load_wav(tmp_path / name, "k1")
        message = str(err.value)
        assert needle in message and f"k1 ({tmp_path / name})" in message and "\n" not in message


def test_pipe_entries_are_rejected():
    assert check_wav_entry(" /a/b.wav ", "u1") == "/a/b.wav"
    with pytest.raises(SkiptoolError, match="entry 'u1' is a pipe command.*write the audio to files"):
        check_wav_entry("sox a.wav -t wav - |", "u1", "data/wav.scp")
    with pytest.raises(SkiptoolError, match="pipe command"):
        load_wav("flac -dc a.flac |", "u1")


def test_write_wav_is_16_bit_and_clipped(tmp_path):
    path = tmp_path / "out" / "x.wav"
    write_wav(path, np.array([0.0, 0.5, 2.0, -3.0], np.float32), 8000)
    assert sf.info(path).subtype == "PCM_16"
    wav, sr = load_wav(path)
    assert sr == 8000 and np.allclose(wav, [0, 0.5, 32767 / 32768, -1], atol=1e-4)
    assert not list(path.parent.glob(".*.tmp"))
