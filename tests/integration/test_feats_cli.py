"""`skiptool feats` end to end on small data dirs made in tmp_path: outputs, jobs, resume, CMVN, bad input."""

from __future__ import annotations

import os
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import yaml
from PIL import Image

from skiptool.audio import kaldi
from skiptool.audio.kaldi import FbankConfig
from skiptool.data.datadir import read_table, utt2spk_to_spk2utt, write_table
from skiptool.data.feats import read_feats_conf
from skiptool.data.image import load_image_feats
from tests.conftest import assert_user_error, run_cli

RATE = 16000


def tone(seconds: float, freq: float, seed: int, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).standard_normal(len(t))
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * noise).astype(np.float32)


def make_data_dir(root: Path, n: int = 4, rate: int = RATE) -> Path:
    """n sine+noise utterances of two speakers, with text, utt2spk, spk2utt, utt2label."""
    data = root / "data"
    (root / "wav").mkdir(parents=True, exist_ok=True)
    wav_scp, utt2spk, text, labels = {}, {}, {}, {}
    for i in range(n):
        key = f"spk{i % 2}-utt{i}"
        path = root / "wav" / f"{key}.wav"
        sf.write(path, tone(0.25 + 0.05 * i, 200 + 40 * i, i, rate), rate)
        wav_scp[key], utt2spk[key], text[key], labels[key] = str(path), f"spk{i % 2}", f"word {i}", str(i % 10)
    write_table(data / "wav.scp", wav_scp)
    write_table(data / "utt2spk", utt2spk)
    write_table(data / "spk2utt", utt2spk_to_spk2utt(utt2spk))
    write_table(data / "text", text)
    write_table(data / "utt2label", labels)
    return data


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return make_data_dir(tmp_path)


def load_feats(out: Path) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in kaldiio.load_scp(str(out / "feats.scp")).items()}


def test_fbank_with_two_jobs_writes_a_complete_data_dir(data_dir, tmp_path):
    out = tmp_path / "dump"
    result = run_cli("feats", data_dir, out, "--type", "fbank", "--nj", "2")
    assert result.code == 0, result.err
    assert "4 utterances" in result.out and "80-dim fbank" in result.out
    feats = load_feats(out)
    wav_scp = read_table(data_dir / "wav.scp")
    assert sorted(feats) == sorted(wav_scp)
    for key, mat in feats.items():
        ref = kaldi.fbank([sf.read(wav_scp[key], dtype="float32")[0]], FbankConfig())[0]
        np.testing.assert_allclose(mat, ref, atol=1e-5)
    assert {k: int(v) for k, v in read_table(out / "utt2num_frames").items()} == {k: m.shape[0] for k, m in feats.items()}
    assert sorted(p.name for p in (out / "data").glob("feats.*.ark")) == ["feats.1.ark", "feats.2.ark"]
    conf = yaml.safe_load((out / "conf.yaml").read_text())
    assert conf["type"] == "fbank" and conf["num_mel_bins"] == 80 and conf["feat_dim"] == 80
    assert read_feats_conf(out).config == FbankConfig()
    for table in ("text", "utt2spk", "spk2utt", "utt2label", "wav.scp"):
        assert (out / table).read_text() == (data_dir / table).read_text(), table
    assert (out / ".done").exists()


def test_complete_dir_is_left_alone_unless_overwrite(data_dir, tmp_path):
    out = tmp_path / "dump"
    assert run_cli("feats", data_dir, out, "--type", "mfcc").code == 0
    stamp = (out / "feats.scp").stat().st_mtime_ns
    again = run_cli("feats", data_dir, out, "--type", "mfcc", "--nj", "2")  # the job count does not matter
    assert again.code == 0 and "already complete" in again.err and "--overwrite" in again.err
    assert (out / "feats.scp").stat().st_mtime_ns == stamp
    other = run_cli("feats", data_dir, out, "--type", "mfcc", "--set", "num_ceps=20")
    assert_user_error(other, str(out), "other feature config", "--overwrite")
    assert (out / "feats.scp").stat().st_mtime_ns == stamp
    redo = run_cli("feats", data_dir, out, "--type", "mfcc", "--overwrite", "--set", "num_ceps=20")
    assert redo.code == 0, redo.err
    assert next(iter(load_feats(out).values())).shape[1] == 20


def test_rerun_skips_finished_jobs(data_dir, tmp_path):
    out = tmp_path / "dump"
    assert run_cli("feats", data_dir, out, "--type", "fbank", "--nj", "2").code == 0
    # make it look interrupted after job 1 finished: no feats.scp, no .done, job 2 unfinished
    for name in ("feats.scp", ".done", "data/.feats.2.done", "data/feats.2.ark"):
        (out / name).unlink()
    job1 = out / "data" / "feats.1.ark"
    os.utime(job1, ns=(1, 1))
    result = run_cli("feats", data_dir, out, "--type", "fbank", "--nj", "2")
    assert result.code == 0, result.err
    assert "resuming: 1 of 2 jobs already done" in result.err
    assert job1.stat().st_mtime_ns == 1  # not redone
    assert len(load_feats(out)) == 4 and (out / ".done").exists()


def test_changed_options_start_an_unfinished_run_over(data_dir, tmp_path):
    out = tmp_path / "dump"
    assert run_cli("feats", data_dir, out, "--type", "fbank", "--nj", "2").code == 0
    (out / "feats.scp").unlink()
    (out / ".done").unlink()
    result = run_cli("feats", data_dir, out, "--type", "fbank", "--nj", "2", "--set", "num_mel_bins=40")
    assert result.code == 0 and "starting over" in result.err
    assert all(m.shape[1] == 40 for m in load_feats(out).values())


def test_failed_job_leaves_no_feats_scp_and_resumes_after_the_fix(data_dir, tmp_path):
    out = tmp_path / "dump"
    wav_scp = read_table(data_dir / "wav.scp")
    broken = sorted(wav_scp)[-1]
    good = Path(wav_scp[broken]).read_bytes()
    Path(wav_scp[broken]).write_bytes(b"not audio at all")
    result = run_cli("feats", data_dir, out, "--type", "fbank", "--nj", "2")
    assert_user_error(result, broken, "cannot read audio")
    assert not (out / "feats.scp").exists() and not (out / ".done").exists()
    Path(wav_scp[broken]).write_bytes(good)
    result = run_cli("feats", data_dir, out, "--type", "fbank", "--nj", "2")
    assert result.code == 0, result.err
    assert len(load_feats(out)) == 4


@pytest.mark.parametrize("feat_type, dim", [("mfcc", 13), ("mel", 80), ("linear", 1025)])
def test_other_speech_types(data_dir, tmp_path, feat_type, dim):
    out = tmp_path / feat_type
    result = run_cli("feats", data_dir, out, "--type", feat_type)
    assert result.code == 0, result.err
    feats = load_feats(out)
    assert len(feats) == 4 and all(m.shape[1] == dim and m.dtype == np.float32 for m in feats.values())
    if feat_type in ("mel", "linear"):
        assert all(0.0 <= m.min() and m.max() <= 1.0 for m in feats.values())
        assert yaml.safe_load((out / "conf.yaml").read_text())["n_fft"] == 2048


def test_cmvn_global_speaker_and_given_stats(data_dir, tmp_path):
    out = tmp_path / "global"
    assert run_cli("feats", data_dir, out, "--type", "fbank", "--cmvn", "global", "--nj", "2").code == 0
    frames = np.concatenate(list(load_feats(out).values()))
    np.testing.assert_allclose(frames.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(frames.std(0), 1, atol=1e-3)
    stats = kaldiio.load_mat(str(out / "cmvn.ark"))
    assert stats.shape == (2, 81) and stats[0, -1] == len(frames)
    raw = np.concatenate([np.asarray(m) for m in kaldiio.load_scp(str(out / "raw_feats.scp")).values()])
    np.testing.assert_allclose(stats[0, :-1] / stats[0, -1], raw.mean(0), rtol=1e-5)
    assert yaml.safe_load((out / "conf.yaml").read_text())["cmvn"] == "global"

    other = make_data_dir(tmp_path / "other", n=2)
    given = tmp_path / "given"
    result = run_cli("feats", other, given, "--type", "fbank", "--cmvn", "global", "--cmvn-stats", out / "cmvn.ark")
    assert result.code == 0, result.err
    raw_other = next(iter(kaldiio.load_scp(str(given / "raw_feats.scp")).values()))
    mean, std = stats[0, :-1] / stats[0, -1], np.sqrt(stats[1, :-1] / stats[0, -1] - (stats[0, :-1] / stats[0, -1]) ** 2)
    np.testing.assert_allclose(next(iter(load_feats(given).values())), (raw_other - mean) / std, rtol=1e-4, atol=1e-4)

    spk = tmp_path / "speaker"
    assert run_cli("feats", data_dir, spk, "--type", "mfcc", "--cmvn", "speaker", "--no-cmvn-norm-vars").code == 0
    assert sorted(kaldiio.load_scp(str(spk / "cmvn.scp"))) == ["spk0", "spk1"]
    feats, utt2spk = load_feats(spk), read_table(spk / "utt2spk")
    for speaker in ("spk0", "spk1"):
        mats = np.concatenate([m for k, m in feats.items() if utt2spk[k] == speaker])
        np.testing.assert_allclose(mats.mean(0), 0, atol=1e-4)


def test_vad_resampling_notice_and_print_config(tmp_path):
    data = make_data_dir(tmp_path, n=2, rate=8000)
    key = sorted(read_table(data / "wav.scp"))[0]
    path = Path(read_table(data / "wav.scp")[key])
    silence = 1e-4 * np.random.default_rng(0).standard_normal(4000)
    sf.write(path, np.concatenate([silence, sf.read(path)[0], silence]).astype(np.float32), 8000)

    plain, vad = tmp_path / "plain", tmp_path / "vad"
    first = run_cli("feats", data, plain, "--type", "fbank", "--nj", "2")
    assert first.code == 0 and first.err.count("resampling 8000 Hz -> 16000 Hz") == 1
    assert run_cli("feats", data, vad, "--type", "fbank", "--set", "vad=true", "--set", "vad_context=0").code == 0
    n_plain, n_vad = (int(read_table(d / "utt2num_frames")[key]) for d in (plain, vad))
    assert n_plain - n_vad >= 90  # 2 x 0.5 s of silence is 100 frames

    strict = run_cli("feats", data, tmp_path / "strict", "--type", "fbank", "--set", "allow_resample=false")
    assert_user_error(strict, key, "sample rate 8000 Hz", "allow_resample")

    shown = run_cli("feats", data, tmp_path / "x", "--type", "mel", "--print-config", "--set", "num_mels=40")
    assert shown.code == 0 and "type: mel\n" in shown.out and "num_mels: 40\n" in shown.out
    assert not (tmp_path / "x").exists()


def make_image_dir(root: Path) -> Path:
    data = root / "imgdata"
    (root / "img").mkdir(parents=True)
    arrays = {
        "a-gray": Image.fromarray((np.arange(28 * 28).reshape(28, 28) % 256).astype(np.uint8)),
        "b-rgba": Image.fromarray(np.full((40, 30, 4), 255, np.uint8), "RGBA"),
        "c-palette": Image.fromarray(np.full((56, 56, 3), 128, np.uint8)).convert("P"),
    }
    img_scp = {}
    for key, img in arrays.items():
        img.save(root / "img" / f"{key}.png")
        img_scp[key] = str(root / "img" / f"{key}.png")
    write_table(data / "img.scp", img_scp)
    write_table(data / "utt2label", {k: "3" for k in img_scp})
    return data


@pytest.mark.parametrize("channels", [1, 3])
def test_images(tmp_path, channels):
    data = make_image_dir(tmp_path)
    out = tmp_path / "dump"
    result = run_cli("feats", data, out, "--type", "image", "--set", f"channels={channels}", "--nj", str(channels))
    assert result.code == 0, result.err
    conf = yaml.safe_load((out / "conf.yaml").read_text())
    assert (conf["type"], conf["height"], conf["width"], conf["channels"]) == ("image", 28, 28, channels)
    feats = load_feats(out)
    assert sorted(feats) == ["a-gray", "b-rgba", "c-palette"]
    for mat in feats.values():
        assert mat.shape == (28, 28 * channels) and 0 <= mat.min() and mat.max() <= 1
    gray = load_image_feats(feats["a-gray"], 28, 28, channels)
    np.testing.assert_allclose(gray[0], (np.arange(28 * 28).reshape(28, 28) % 256) / 255, atol=1e-6)
    np.testing.assert_allclose(feats["b-rgba"], 1.0, atol=1e-5)
    assert read_table(out / "utt2num_frames")["a-gray"] == "28"
    assert (out / "img.scp").read_text() == (data / "img.scp").read_text()


def test_segments_cut_utterances_out_of_recordings(tmp_path):
    (tmp_path / "wav").mkdir()
    sf.write(tmp_path / "wav" / "rec.wav", tone(1.0, 300, 0), RATE)
    long = sf.read(tmp_path / "wav" / "rec.wav", dtype="float32")[0]  # as stored: 16-bit
    data = tmp_path / "data"
    write_table(data / "wav.scp", {"rec": str(tmp_path / "wav" / "rec.wav")})
    write_table(data / "segments", {"rec-a": "rec 0.0 0.4", "rec-b": "rec 0.5 -1"})
    write_table(data / "utt2spk", {"rec-a": "s", "rec-b": "s"})
    out = tmp_path / "dump"
    result = run_cli("feats", data, out, "--type", "fbank")
    assert result.code == 0, result.err
    feats = load_feats(out)
    for key, piece in (("rec-a", long[:6400]), ("rec-b", long[8000:])):
        np.testing.assert_allclose(feats[key], kaldi.fbank([piece])[0], atol=1e-5)
    assert (out / "segments").read_text() == (data / "segments").read_text()
    assert read_table(out / "wav.scp") == {"rec": str(tmp_path / "wav" / "rec.wav")}


# ---------------------------------------------------------------------------------- bad input

def replace_wav(data: Path, writer) -> str:
    """Rewrite the first utterance's file with `writer(path)`; returns its key."""
    key, path = sorted(read_table(data / "wav.scp").items())[0]
    writer(Path(path))
    return key


def assert_failed_cleanly(result, out: Path, *needles: str) -> None:
    assert_user_error(result, *needles)
    assert not (out / "feats.scp").exists() and not (out / ".done").exists()


@pytest.mark.parametrize("case, needles", [
    ("missing", ["audio file not found"]),
    ("garbage", ["cannot read audio"]),
    ("zero_length", ["empty audio"]),
    ("stereo", ["2 channels", "downmix"]),
    ("nan", ["NaN or Inf"]),
    ("inf", ["NaN or Inf"]),
])
def test_bad_audio(data_dir, tmp_path, case, needles):
    writers = {
        "missing": lambda p: p.unlink(),
        "garbage": lambda p: p.write_bytes(b"\x00\x01garbage" * 50),
        "zero_length": lambda p: sf.write(p, np.zeros(0, np.float32), RATE),
        "stereo": lambda p: sf.write(p, np.zeros((800, 2), np.float32), RATE),
        "nan": lambda p: sf.write(p, np.full(800, np.nan, np.float32), RATE, subtype="FLOAT"),
        "inf": lambda p: sf.write(p, np.r_[np.zeros(799), np.inf].astype(np.float32), RATE, subtype="FLOAT"),
    }
    key = replace_wav(data_dir, writers[case])
    out = tmp_path / "dump"
    assert_failed_cleanly(run_cli("feats", data_dir, out, "--type", "fbank"), out, key, *needles)


@pytest.mark.parametrize("case, file, needles", [
    ("duplicate", "wav.scp", ["duplicate key 'spk0-utt0'", "skiptool data fix"]),
    ("unsorted", "wav.scp", ["not sorted", "'spk0-utt0' comes after 'spk1-utt3'", "skiptool data fix"]),
    ("unsorted_segments", "segments", ["not sorted", "skiptool data fix"]),
    ("non_utf8_wav_scp", "wav.scp", ["line 2 is not valid UTF-8"]),
    ("non_utf8_text", "text", ["line 2 is not valid UTF-8"]),
])
def test_bad_tables(data_dir, tmp_path, case, file, needles):
    """Kaldi table problems stop feats before any work, naming the file (and key or line)."""
    lines = (data_dir / "wav.scp").read_bytes().splitlines(keepends=True)
    if case == "duplicate":
        (data_dir / "wav.scp").write_bytes(lines[0] + b"".join(lines))
    elif case == "unsorted":
        (data_dir / "wav.scp").write_bytes(b"".join(lines[1:] + lines[:1]))
    elif case == "unsorted_segments":
        keys = sorted(read_table(data_dir / "wav.scp"))
        (data_dir / "segments").write_text(f"{keys[1]}-seg {keys[1]} 0 0.1\n{keys[0]}-seg {keys[0]} 0 0.1\n")
    elif case == "non_utf8_wav_scp":
        (data_dir / "wav.scp").write_bytes(lines[0] + b"caf\xe9" + lines[1])
    else:
        (data_dir / "text").write_bytes(b"spk0-utt0 one\nspk1-utt1 caf\xe9\n")
    out = tmp_path / "dump"
    assert_failed_cleanly(run_cli("feats", data_dir, out, "--type", "fbank"), out, str(data_dir / file), *needles)


def test_stereo_with_downmix_and_other_sample_formats_are_accepted(data_dir, tmp_path):
    keys = sorted(read_table(data_dir / "wav.scp"))
    paths = read_table(data_dir / "wav.scp")
    reference = {k: sf.read(paths[k], dtype="float32")[0] for k in keys}
    sf.write(paths[keys[0]], np.stack([reference[keys[0]]] * 2, axis=1), RATE, subtype="PCM_16")
    for key, subtype in zip(keys[1:], ("PCM_U8", "PCM_24", "FLOAT")):
        sf.write(paths[key], reference[key], RATE, subtype=subtype)
    out = tmp_path / "dump"
    result = run_cli("feats", data_dir, out, "--type", "fbank", "--set", "downmix=true")
    assert result.code == 0, result.err
    feats = load_feats(out)
    for key in keys:
        ref = kaldi.fbank([reference[key]])[0]
        tolerance = 0.5 if key == keys[1] else 0.02  # 8-bit quantisation noise is loud
        assert np.abs(feats[key] - ref).mean() < tolerance, key


def test_pipe_commands_in_wav_scp_are_rejected(data_dir, tmp_path):
    table = read_table(data_dir / "wav.scp")
    key = sorted(table)[1]
    table[key] = f"sox {table[key]} -t wav - |"
    write_table(data_dir / "wav.scp", table)
    out = tmp_path / "dump"
    assert_failed_cleanly(run_cli("feats", data_dir, out, "--type", "fbank"), out, key, "pipe command")
    assert not out.exists()


@pytest.mark.parametrize("content, needles", [
    ("num_mel_bins: 40\nnum_mel_binz: 3\n", ["unknown key 'num_mel_binz'"]),
    ("num_mel_bins: [40\n", ["malformed YAML"]),
    ("frame_shift: fast\n", ["frame_shift"]),
    ("type: mel\n", ["config is for type 'mel'"]),
])
def test_bad_configs(data_dir, tmp_path, content, needles):
    conf = tmp_path / "fbank.yaml"
    conf.write_text(content)
    out = tmp_path / "dump"
    assert_failed_cleanly(run_cli("feats", data_dir, out, "--type", "fbank", "--conf", conf), out,
                          str(conf), *needles)
    assert not out.exists()


def test_unknown_override_key(data_dir, tmp_path):
    out = tmp_path / "dump"
    assert_failed_cleanly(run_cli("feats", data_dir, out, "--type", "fbank", "--set", "num_mel_binz=40"), out,
                          "--set num_mel_binz", "unknown key 'num_mel_binz'", "num_mel_bins")
    assert not out.exists()


def test_bad_image_configs(tmp_path):
    data = make_image_dir(tmp_path)
    out = tmp_path / "dump"
    for content, needles in (("height: 28\nhieght: 32\n", ["unknown key 'hieght'"]),
                             ("height: [28\n", ["malformed YAML"]),
                             ("channels: 2\n", ["channels"])):
        conf = tmp_path / "image.yaml"
        conf.write_text(content)
        assert_failed_cleanly(run_cli("feats", data, out, "--type", "image", "--conf", conf), out, str(conf), *needles)
    assert not out.exists()


def test_bad_images(tmp_path):
    data = make_image_dir(tmp_path)
    img_scp = read_table(data / "img.scp")
    Path(img_scp["b-rgba"]).write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    out = tmp_path / "dump"
    assert_failed_cleanly(run_cli("feats", data, out, "--type", "image"), out, "b-rgba", "cannot read image")
    Path(img_scp["c-palette"]).unlink()
    assert_failed_cleanly(run_cli("feats", data, out, "--type", "image"), out, "c-palette", "image file not found")


def test_missing_tables_and_bad_dirs(data_dir, tmp_path):
    out = tmp_path / "dump"
    assert_failed_cleanly(run_cli("feats", data_dir, out, "--type", "image"), out, "img.scp", "file not found")
    assert_user_error(run_cli("feats", data_dir, data_dir, "--type", "fbank"), "must differ from DATA_DIR")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert_user_error(run_cli("feats", data_dir, foreign, "--type", "fbank"), "not made by skiptool feats")
    (data_dir / "utt2spk").unlink()
    assert_failed_cleanly(run_cli("feats", data_dir, out, "--type", "fbank", "--cmvn", "speaker"), out, "utt2spk")
    assert_user_error(run_cli("feats", data_dir, out, "--type", "image", "--cmvn", "global"), "speech features")
