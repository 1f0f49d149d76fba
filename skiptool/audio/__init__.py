"""Waveform I/O, features (Kaldi FBank/MFCC, Tacotron mel/linear), VAD, CMVN and Griffin-Lim.

Pure functions live in topic modules (`kaldi`, `tacotron`, `griffinlim`, `vad`, `cmvn`, `io`);
`transforms` wraps them in configured, stateful objects, as torchaudio separates
`functional` from `transforms`.
"""
