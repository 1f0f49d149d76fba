"""Kaldi-style data dirs, corpus preparers (one module per corpus), synthetic corpora, datasets."""
