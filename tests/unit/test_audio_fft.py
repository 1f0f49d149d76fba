"""The feature extractors' FFT (skiptool.audio.fft): MKL's where installed, scipy.fft otherwise, same values."""

import sys

import numpy as np
import pytest

from skiptool.audio import fft


@pytest.fixture
def scipy_backend(monkeypatch):
    """fft with mkl_fft made unimportable, as on platforms without it."""
    monkeypatch.setitem(sys.modules, "mkl_fft", None)  # `import mkl_fft` raises ImportError
    fft._backend.cache_clear()
    yield
    fft._backend.cache_clear()


@pytest.mark.parametrize("n", [512, 2048])
def test_rfft_rows_matches_numpy(n):
    frames = np.random.default_rng(0).standard_normal((37, n)).astype(np.float32)
    spec = fft.rfft_rows(frames)
    assert spec.shape == (37, n // 2 + 1) and spec.dtype == np.complex64
    np.testing.assert_allclose(spec, np.fft.rfft(frames.astype(np.float64), axis=1), rtol=0, atol=5e-4)


def test_rfft_rows_writes_out_or_returns(n=512):
    frames = np.random.default_rng(1).standard_normal((5, n)).astype(np.float32)
    out = np.empty((5, n // 2 + 1), np.complex64)
    spec = fft.rfft_rows(frames, out=out)
    np.testing.assert_allclose(spec, np.fft.rfft(frames, axis=1), atol=5e-4)


def test_scipy_fallback_gives_the_same_values(scipy_backend):
    frames = np.random.default_rng(2).standard_normal((9, 2048)).astype(np.float32)
    assert fft.backend_name() == "scipy.fft"
    np.testing.assert_allclose(fft.rfft_rows(frames), np.fft.rfft(frames, axis=1), atol=5e-4)


def test_features_are_equal_with_either_backend(monkeypatch):
    from skiptool.audio import kaldi
    from skiptool.audio.tacotron import TacotronSpecConfig
    from skiptool.audio.transforms import tacotron_features

    wav = np.random.default_rng(3).uniform(-0.5, 0.5, 16000).astype(np.float32)
    fbank_default = kaldi.fbank([wav], kaldi.FbankConfig())[0]
    mel_default = tacotron_features([wav], TacotronSpecConfig(), energy=False)[0][0]
    monkeypatch.setitem(sys.modules, "mkl_fft", None)
    fft._backend.cache_clear()
    try:
        assert fft.backend_name() == "scipy.fft"
        fbank_scipy = kaldi.fbank([wav], kaldi.FbankConfig())[0]
        mel_scipy = tacotron_features([wav], TacotronSpecConfig(), energy=False)[0][0]
    finally:
        fft._backend.cache_clear()
    # float32 FFTs of two libraries round differently, and the log of a low-energy bin magnifies
    # it: over 30 random signals like this one the largest difference was 1.0e-3 (median 1e-4),
    # in bins of log energy ~8.5 (the others ~15-27), so compare relatively there.
    np.testing.assert_allclose(fbank_default, fbank_scipy, rtol=3e-4, atol=1e-3)
    np.testing.assert_allclose(mel_default, mel_scipy, atol=1e-5)


def test_mkl_runs_one_thread():
    pytest.importorskip("mkl_fft", reason="mkl_fft is installed on x86-64 only")
    from threadpoolctl import threadpool_info

    fft._backend.cache_clear()
    assert fft.backend_name() == "mkl_fft"
    mkl = [info for info in threadpool_info() if info["internal_api"] == "mkl"]
    assert mkl and all(info["num_threads"] == 1 for info in mkl)
