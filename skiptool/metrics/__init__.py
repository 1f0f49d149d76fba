"""Scoring: one function per metric, each returning a typed result with a `summary()` row.

    error_rate / wer / cer   jiwer, sclite-style counts and alignments     (wer.py)
    bleu                     sacrebleu corpus BLEU-1..4, several refs/key    (bleu.py)
    psnr_paired/psnr_nearest PSNR, paper 001's nearest-reference variant     (image.py)
    kmeans_purity            weighted k-means purity and inertia curve (004) (clustering.py)
    accuracy                 per-class accuracy and confusion matrix         (classify.py)
    recall_at_k              cosine-similarity retrieval                     (retrieval.py)

Recognisers that turn audio hypotheses into text live in `skiptool.metrics.recognizers`.
"""

from skiptool.metrics.bleu import BleuResult, bleu
from skiptool.metrics.classify import AccuracyResult, accuracy
from skiptool.metrics.clustering import PurityResult, inertia_curve, kmeans_purity, plot_inertia, weighted_purity
from skiptool.metrics.image import PsnrResult, psnr, psnr_nearest, psnr_paired
from skiptool.metrics.results import append_result_row
from skiptool.metrics.retrieval import RetrievalResult, recall_at_k
from skiptool.metrics.wer import ErrorRateResult, cer, error_rate, format_alignment, wer

__all__ = [
    "AccuracyResult", "BleuResult", "ErrorRateResult", "PsnrResult", "PurityResult", "RetrievalResult",
    "accuracy", "append_result_row", "bleu", "cer", "error_rate", "format_alignment", "inertia_curve",
    "kmeans_purity", "plot_inertia", "psnr", "psnr_nearest", "psnr_paired", "recall_at_k", "wer",
    "weighted_purity",
]
