"""`skiptool vocode FEATS_SCP OUT_DIR --type {mel,linear,fbank}` on tiny feats.scp files made here (kaldiio, or
`skiptool feats --type fbank` for fbank)."""

from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch

from skiptool.audio.cmvn import invert_cmvn
from skiptool.audio.tacotron import TacotronSpecConfig, linear_spectrogram, mel_spectrogram
from tests.conftest import assert_user_error

CFG = TacotronSpecConfig()
FAST = ("--n-iter", "3")  # the algorithm is tested in tests/unit/test_griffinlim.py; here the plumbing


def tone(seconds: float, hz: float) -> torch.Tensor:
    t = torch.arange(int(seconds * CFG.sample_rate)) / CFG.sample_rate
    return 0.3 * torch.sin(2 * torch.pi * hz * t) * torch.hann_window(t.numel())


def write_feats(directory: Path, feats: dict[str, np.ndarray], name: str = "feats") -> Path:
    """feats.scp + ark with absolute paths, as kaldiio writes them."""
    directory.mkdir(parents=True, exist_ok=True)
    ark, scp = directory / f"{name}.ark", directory / f"{name}.scp"
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as writer:
        for key, matrix in feats.items():
            writer[key] = matrix.astype(np.float32)
    return scp


UTTS = {"utt_b": (0.30, 300.0), "utt_a": (0.20, 440.0), "utt_c": (0.12, 150.0)}


@pytest.fixture
def mel_scp(tmp_path):
    return write_feats(tmp_path / "dump", {k: mel_spectrogram(tone(*v), CFG).numpy() for k, v in UTTS.items()})


@pytest.fixture
def linear_scp(tmp_path):
    return write_feats(tmp_path / "dump_lin",
                       {k: linear_spectrogram(tone(*v), CFG).numpy() for k, v in UTTS.items()})


def read_wav_scp(path: Path) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in path.read_text().splitlines())


@pytest.mark.parametrize("feature_type", ["mel", "linear"])
def test_vocode_writes_wavs_and_wav_scp(cli, tmp_path, mel_scp, linear_scp, feature_type):
    scp = mel_scp if feature_type == "mel" else linear_scp
    out = tmp_path / "gl"
    r = cli("--quiet", "vocode", scp, out, "--type", feature_type, *FAST, "--batch-size", "2")
    assert r.code == 0, r.err
    assert "default Tacotron feature config" in r.err  # no conf.yaml beside feats.scp: a notice
    assert f"vocoded 3 utterances: {out / 'wav.scp'}" in r.out
    wav_scp = read_wav_scp(out / "wav.scp")
    assert list(wav_scp) == sorted(UTTS)
    for key, (seconds, _) in UTTS.items():
        info = sf.info(wav_scp[key])
        frames = CFG.num_frames(int(seconds * CFG.sample_rate))
        assert Path(wav_scp[key]) == (out / "wav" / f"{key}.wav").resolve()
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames == (frames - 1) * CFG.hop_length
        wav, _ = sf.read(wav_scp[key])
        assert 0.01 < np.abs(wav).max() <= 1.0
    assert (out / "vocode.yaml").is_file()


def test_same_output_whatever_the_batch_size(cli, tmp_path, mel_scp):
    for batch in ("1", "3"):
        assert cli("-q", "vocode", mel_scp, tmp_path / batch, "--type", "mel", *FAST, "--batch-size", batch).code == 0
    for key in UTTS:
        one, _ = sf.read(tmp_path / "1" / "wav" / f"{key}.wav", dtype="int16")
        three, _ = sf.read(tmp_path / "3" / "wav" / f"{key}.wav", dtype="int16")
        assert np.abs(one.astype(int) - three).max() <= 1  # 16-bit rounding of float-level differences


def test_conf_yaml_beside_feats_scp_is_used(cli, tmp_path):
    cfg = TacotronSpecConfig(num_mels=40, hop_length=160)
    scp = write_feats(tmp_path / "dump", {"u": mel_spectrogram(tone(0.2, 300.0), cfg).numpy()})
    r = cli("-q", "vocode", scp, tmp_path / "no_conf", "--type", "mel", *FAST)
    assert_user_error(r, "40-dim", "num_mels = 80")
    (scp.parent / "conf.yaml").write_text("num_mels: 40\nhop_length: 160\n")
    r = cli("-q", "vocode", scp, tmp_path / "gl", "--type", "mel", *FAST)
    assert r.code == 0, r.err
    assert f"feature config from {scp.parent / 'conf.yaml'}" in r.err
    frames = cfg.num_frames(int(0.2 * cfg.sample_rate))
    assert sf.info(tmp_path / "gl" / "wav" / "u.wav").frames == (frames - 1) * 160


def test_explicit_conf_and_print_config(cli, tmp_path, mel_scp):
    conf = tmp_path / "feats.yaml"
    conf.write_text("preemphasis: 0.9\n")
    r = cli("vocode", mel_scp, tmp_path / "gl", "--type", "mel", "--conf", conf, "--n-iter", "7", "--print-config")
    assert r.code == 0, r.err
    assert "preemphasis: 0.9" in r.out and "n_iter: 7" in r.out and "power: 1.5" in r.out
    assert not (tmp_path / "gl").exists()


def test_help_shows_defaults_and_example(cli):
    r = cli("vocode", "--help")
    assert r.code == 0
    text = " ".join(r.out.split())
    assert "Example: skiptool vocode" in text and "[default: 60]" in text and "[default: 1.5]" in text


def test_interrupted_run_resumes(cli, tmp_path, mel_scp):
    """A failure mid-run leaves no wav.scp; the same command then keeps the wavs already written."""
    feats = {k: mel_spectrogram(tone(*v), CFG).numpy() for k, v in UTTS.items()}
    bad = dict(feats, utt_d=np.full((5, 80), np.nan))  # sorts last: fails after utt_a..c are written
    scp = write_feats(tmp_path / "dump2", bad)
    out = tmp_path / "gl"
    r = cli("-q", "vocode", scp, out, "--type", "mel", *FAST, "--batch-size", "1")
    assert_user_error(r, "utt_d", "NaN")
    assert not (out / "wav.scp").exists()
    assert sorted(p.name for p in (out / "wav").iterdir()) == ["utt_a.wav", "utt_b.wav", "utt_c.wav"]
    stamp = (out / "wav" / "utt_a.wav").stat().st_mtime_ns
    write_feats(tmp_path / "dump2", feats)  # the same feats.scp path, the bad utterance dropped
    (out / "wav" / "utt_c.wav").unlink()
    r = cli("-q", "vocode", scp, out, "--type", "mel", *FAST, "--batch-size", "1")
    assert r.code == 0, r.err
    assert "vocoded 1 utterances, 2 kept from an interrupted run" in r.out
    assert (out / "wav" / "utt_a.wav").stat().st_mtime_ns == stamp
    assert list(read_wav_scp(out / "wav.scp")) == sorted(UTTS)
    # other settings on the same unfinished output are refused
    (out / "wav.scp").unlink()
    assert_user_error(cli("-q", "vocode", scp, out, "--type", "mel", "--n-iter", "4"), str(out), "--overwrite")


def test_finished_output_needs_overwrite(cli, tmp_path, mel_scp):
    out = tmp_path / "gl"
    assert cli("-q", "vocode", mel_scp, out, "--type", "mel", *FAST).code == 0
    (out / "wav" / "stale.wav").write_bytes(b"")
    r = cli("-q", "vocode", mel_scp, out, "--type", "mel", *FAST)
    assert_user_error(r, str(out), "--overwrite")
    r = cli("-q", "vocode", mel_scp, out, "--type", "mel", *FAST, "--overwrite")
    assert r.code == 0, r.err
    assert not (out / "wav" / "stale.wav").exists()
    assert "vocoded 3 utterances" in r.out


def test_foreign_out_dir_refused(cli, tmp_path, mel_scp):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert_user_error(cli("-q", "vocode", mel_scp, out, "--type", "mel", *FAST), str(out), "--overwrite")
    (tmp_path / "file").write_text("")
    assert_user_error(cli("-q", "vocode", mel_scp, tmp_path / "file", "--type", "mel", *FAST), "not a directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("-q", "vocode", mel_scp, empty, "--type", "mel", *FAST).code == 0


# ------------------------------------------------------------------------------ bad input


def test_missing_feats_scp(cli, tmp_path):
    assert_user_error(cli("vocode", tmp_path / "nope.scp", tmp_path / "gl", "--type", "mel"),
                      "nope.scp", "not found")
    assert not (tmp_path / "gl").exists()


def test_missing_ark(cli, tmp_path, mel_scp):
    (mel_scp.parent / "feats.ark").unlink()
    assert_user_error(cli("vocode", mel_scp, tmp_path / "gl", "--type", "mel"), "feats.ark", "not found")
    assert not (tmp_path / "gl").exists()


def test_corrupt_ark(cli, tmp_path, mel_scp):
    ark = mel_scp.parent / "feats.ark"
    ark.write_bytes(ark.read_bytes()[:-2000])  # the last utterance is cut short
    r = cli("-q", "vocode", mel_scp, tmp_path / "gl", "--type", "mel", *FAST)
    assert_user_error(r, "cannot read features", "utt_c")
    assert "Warning" not in r.err and not (tmp_path / "gl" / "wav.scp").exists()


def test_unreadable_feats_scp(cli, tmp_path):
    scp = tmp_path / "feats.scp"
    scp.write_bytes(b"utt1 \xff\xfe.ark:3\n")
    assert_user_error(cli("vocode", scp, tmp_path / "gl", "--type", "mel"), "feats.scp", "UTF-8")
    scp.write_text("")
    assert_user_error(cli("vocode", scp, tmp_path / "gl", "--type", "mel"), "no utterances")
    scp.write_text("utt1 gunzip -c feats.ark.gz |\n")
    assert_user_error(cli("vocode", scp, tmp_path / "gl", "--type", "mel"), "utt1", "pipe")
    scp.write_text("a/b feats.ark:3\n")
    (tmp_path / "feats.ark").write_bytes(b"")
    assert_user_error(cli("vocode", scp, tmp_path / "gl", "--type", "mel"), "a/b", "file name")


def test_wrong_dimension_for_type(cli, tmp_path, mel_scp, linear_scp):
    r = cli("vocode", mel_scp, tmp_path / "gl", "--type", "linear")
    assert_user_error(r, "80-dim", "n_fft/2+1 = 1025", "--type")
    r = cli("vocode", linear_scp, tmp_path / "gl", "--type", "mel")
    assert_user_error(r, "1025-dim", "num_mels = 80")
    assert not (tmp_path / "gl").exists()


def test_nan_and_too_short_features(cli, tmp_path):
    feats = {"good": mel_spectrogram(tone(0.1, 300.0), CFG).numpy()}
    nan = dict(feats, bad=np.where(np.arange(80) == 3, np.nan, 0.5) * np.ones((6, 1)))
    assert_user_error(cli("-q", "vocode", write_feats(tmp_path / "n", nan), tmp_path / "gl", "--type", "mel"),
                      "'bad'", "NaN")
    short = dict(feats, one=np.full((1, 80), 0.5))
    assert_user_error(cli("-q", "vocode", write_feats(tmp_path / "s", short), tmp_path / "gl2", "--type", "mel"),
                      "'one'", "1 frame")


def test_bad_options_and_config(cli, tmp_path, mel_scp):
    out = tmp_path / "gl"
    assert_user_error(cli("vocode", mel_scp, out, "--type", "mel", "--momentum", "1.2"), "momentum")
    assert_user_error(cli("vocode", mel_scp, out, "--type", "mel", "--power", "0"), "power")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("n_fft: [1\n")
    assert_user_error(cli("vocode", mel_scp, out, "--type", "mel", "--conf", bad_yaml), "bad.yaml", "malformed YAML")
    bad_value = tmp_path / "value.yaml"
    bad_value.write_text("win_length: 4096\n")
    assert_user_error(cli("vocode", mel_scp, out, "--type", "mel", "--conf", bad_value), "value.yaml", "win_length")
    assert_user_error(cli("vocode", mel_scp, out, "--type", "mel", "--conf", tmp_path / "none.yaml"), "none.yaml")
    misspelt = tmp_path / "misspelt.yaml"
    misspelt.write_text("n_fft: 2048\nhop_lenght: 100\n")  # a typo must not be ignored silently
    assert_user_error(cli("vocode", mel_scp, out, "--type", "mel", "--conf", misspelt), "misspelt.yaml",
                      "unknown key 'hop_lenght'")
    r = cli("vocode", mel_scp, out, "--type", "cepstrum")
    assert r.code == 2 and "cepstrum" in r.err and "Traceback" not in r.err  # typer's usage error
    assert_user_error(cli("vocode", mel_scp, out, "--type", "fbank"), "needs the FBank config")
    assert_user_error(cli("vocode", mel_scp, out, "--type", "mel", "--cmvn", bad_yaml), "--cmvn is for --type fbank")
    assert not out.exists()


def vowel(seconds: float, f0: float, sr: int = 16000) -> np.ndarray:
    """A harmonic, vowel-like signal between two short silences (for the VAD to trim)."""
    t = np.arange(int(seconds * sr)) / sr
    wav = sum(np.sin(2 * np.pi * k * f0 * t) / k * np.exp(-((k * f0 - 700) / 900) ** 2) for k in range(1, 30))
    silence = np.zeros(int(0.1 * sr))
    return np.concatenate([silence, 0.3 * wav / np.abs(wav).max(), silence]).astype(np.float32)


@pytest.fixture
def fbank_dir(tmp_path, cli):
    """80-dim FBank with VAD and global CMVN, as egs/tidigit_mnist stage 2 makes it."""
    data = tmp_path / "data"
    (data / "wav").mkdir(parents=True)
    lines = []
    for key, (seconds, f0) in sorted({"a": (0.4, 120.0), "b": (0.3, 210.0)}.items()):
        sf.write(data / "wav" / f"{key}.wav", vowel(seconds, f0), 16000, subtype="PCM_16")
        lines.append(f"{key} {data / 'wav' / f'{key}.wav'}\n")
    (data / "wav.scp").write_text("".join(lines))
    r = cli("-q", "feats", data, tmp_path / "fbank", "--type", "fbank", "--set", "vad=true", "--cmvn", "global")
    assert r.code == 0, r.err
    return tmp_path / "fbank"


def test_vocode_fbank_undoes_cmvn_and_writes_16k_wavs(cli, tmp_path, fbank_dir):
    scp = fbank_dir / "feats.scp"
    out = tmp_path / "gl"
    r = cli("-q", "vocode", scp, out, "--type", "fbank", "--n-iter", "20")
    assert r.code == 0, r.err
    assert "undoing CMVN with" in r.err and str(fbank_dir / "cmvn.ark") in r.err
    wav_scp = read_wav_scp(out / "wav.scp")
    frames = {k: len(v) for k, v in kaldiio.load_scp(str(scp)).items()}
    assert list(wav_scp) == ["a", "b"]
    for key, path in wav_scp.items():
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames == (frames[key] - 1) * 160 + 400  # on Kaldi's frame grid (snip_edges): same frames again
        wav, _ = sf.read(path)
        assert 0.01 < np.abs(wav).max() <= 1.0

    # The vocoded audio has nearly the FBank it was made from (before CMVN): re-extract and compare.
    again = tmp_path / "again"
    (again / "data").mkdir(parents=True)
    (again / "data" / "wav.scp").write_text((out / "wav.scp").read_text())
    r = cli("-q", "feats", again / "data", again / "fbank", "--type", "fbank")
    assert r.code == 0, r.err
    stats = kaldiio.load_mat(str(fbank_dir / "cmvn.ark"))
    revocoded = kaldiio.load_scp(str(again / "fbank" / "feats.scp"))
    for key, matrix in kaldiio.load_scp(str(scp)).items():
        original, vocoded = invert_cmvn(np.asarray(matrix), stats, True), np.asarray(revocoded[key])
        assert original.shape == vocoded.shape
        voiced = original.mean(1) > original.mean(1).max() - 8  # not the VAD's silent context frames
        loud = original.mean(0) > original.mean(0).max() - 8  # bands with signal in them
        error = np.abs(original[voiced][:, loud] - vocoded[voiced][:, loud]).mean()
        assert error < 1.2, (key, error)  # nats per band; white noise: ~3


def test_vocode_fbank_with_stats_given_and_print_config(cli, tmp_path, fbank_dir):
    stats = tmp_path / "train_cmvn.ark"
    (fbank_dir / "cmvn.ark").rename(stats)
    out = tmp_path / "gl"
    assert_user_error(cli("-q", "vocode", fbank_dir / "feats.scp", out, "--type", "fbank"), "cmvn.ark", "--cmvn")
    assert not (out / "wav.scp").exists()
    r = cli("vocode", fbank_dir / "feats.scp", out, "--type", "fbank", "--cmvn", stats, "--print-config")
    assert r.code == 0, r.err
    assert "num_mel_bins: 80" in r.out and "n_iter: 60" in r.out and str(stats) in r.out
    r = cli("-q", "vocode", fbank_dir / "feats.scp", out, "--type", "fbank", "--cmvn", stats, "--n-iter", "2")
    assert r.code == 0, r.err
    assert sorted(read_wav_scp(out / "wav.scp")) == ["a", "b"]
