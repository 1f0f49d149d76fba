"""`skiptool score`: score hypotheses against references and optionally log a RESULTS row.

One command, one `--metric`; the options each metric reads are listed in `--help`, and an
option given to a metric that does not read it is an error (it is almost always a mistake).
Files this command writes (--hyp-out, --alignment, --inertia-plot) are derived outputs and are
replaced on a rerun; --results is appended to.
"""

from __future__ import annotations

import enum
import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer

from skiptool.utils.errors import SkiptoolError


class Metric(str, enum.Enum):
    wer = "wer"
    cer = "cer"
    bleu = "bleu"
    psnr = "psnr"
    purity = "purity"
    accuracy = "accuracy"
    speaker_id = "speaker-id"
    recall = "recall@k"


TEXT_METRICS = {Metric.wer, Metric.cer, Metric.bleu}
# Which metrics read each optional parameter (anything else given with another metric is an error).
APPLIES_TO = {
    "ref": TEXT_METRICS | {Metric.psnr, Metric.accuracy, Metric.purity, Metric.speaker_id},
    "hyp": TEXT_METRICS | {Metric.psnr, Metric.accuracy},
    "hyp_wav": TEXT_METRICS, "recognizer": TEXT_METRICS, "lm_text": TEXT_METRICS, "asr_exp": TEXT_METRICS,
    "hyp_out": TEXT_METRICS, "normalize": TEXT_METRICS,
    "alignment": {Metric.wer, Metric.cer}, "tokenize": {Metric.bleu},
    "nearest": {Metric.psnr}, "data_range": {Metric.psnr},
    "classifier": {Metric.accuracy, Metric.speaker_id}, "enroll": {Metric.speaker_id}, "tsne_plot": {Metric.purity},
    "feats": {Metric.purity, Metric.accuracy, Metric.speaker_id}, "clusters": {Metric.purity}, "n_init": {Metric.purity},
    "seed": {Metric.purity}, "inertia_plot": {Metric.purity}, "max_k": {Metric.purity},
    "query": {Metric.recall}, "candidates": {Metric.recall}, "matches": {Metric.recall},
    "k": {Metric.recall}, "both_directions": {Metric.recall},
}


def score(
    ctx: typer.Context,
    metric: Metric = typer.Option(..., "--metric", "-m", help="What to compute.", show_default=False),
    ref: Optional[List[Path]] = typer.Option(
        None, "--ref", metavar="PATH", help="Reference: Kaldi text (wer, cer, bleu: repeat --ref, or repeat a key in the "
                            "file, for several BLEU references per key), utt2label (accuracy, purity), utt2spk "
                            "(speaker-id: the speaker each utterance of --feats should have), "
                            "images (psnr: folder of PNGs, img.scp, feats.scp/.ark or .npz)."),
    hyp: Optional[Path] = typer.Option(
        None, "--hyp", help="Hypothesis: Kaldi text (wer, cer, bleu), predicted utt2label (accuracy), "
                            "generated images (psnr, same forms as --ref)."),
    hyp_wav: Optional[Path] = typer.Option(
        None, "--hyp-wav", help="wav.scp of audio hypotheses: transcribe with --recognizer, then score the text."),
    recognizer: str = typer.Option("pocketsphinx", "--recognizer",
                                   help="Recogniser for --hyp-wav: pocketsphinx, or ctc (a trained ctc_asr, --asr-exp)."),
    asr_exp: Optional[Path] = typer.Option(
        None, "--asr-exp", help="--recognizer ctc: exp dir of the ctc_asr model (its features are computed from "
                                "the wavs with the config it was trained on)."),
    lm_text: Optional[Path] = typer.Option(
        None, "--lm-text", help="In-domain Kaldi text (or word list) restricting the recogniser's vocabulary: "
                                "pocketsphinx: a one-word grammar if every line is one word, else a trigram "
                                "LM; ctc: a beam search spelling only its words."),
    hyp_out: Optional[Path] = typer.Option(None, "--hyp-out", help="Write the recognised text here (Kaldi text)."),
    alignment: Optional[Path] = typer.Option(
        None, "--alignment", help="Write per-utterance REF/HYP alignments (sclite pra layout) here."),
    normalize: bool = typer.Option(False, "--normalize", help="Lowercase and strip punctuation before scoring."),
    tokenize: str = typer.Option("13a", "--tokenize", help="sacrebleu tokenizer for bleu (13a, intl, char, none...)."),
    nearest: bool = typer.Option(
        False, "--nearest", help="psnr: each generated image against its nearest reference (paper 001), "
                                 "not the reference with its key."),
    data_range: Optional[float] = typer.Option(
        None, "--data-range", help="psnr: maximum value of float images (default: 1; integer images use "
                                   "their type's maximum, 255 for 8-bit)."),
    feats: Optional[Path] = typer.Option(
        None, "--feats", help="purity: one latent vector per key (feats.scp/.ark, .npz, or .npy with rows "
                              "in --ref's key order); accuracy, speaker-id: the feature dir --classifier reads."),
    classifier: Optional[Path] = typer.Option(
        None, "--classifier", help="accuracy: exp dir of a trained image_classifier or speech_classifier; "
                                   "it predicts the labels of --feats (instead of --hyp). speaker-id: a "
                                   "speech_classifier (best: trained on speakers) whose hidden layer embeds voices."),
    enroll: Optional[Path] = typer.Option(
        None, "--enroll", help="speaker-id: feature dir of real speech with its utt2spk; each speaker is the mean "
                               "embedding of its utterances (an utterance of --feats that is also here is left "
                               "out of its own speaker's mean)."),
    tsne_plot: Optional[Path] = typer.Option(
        None, "--tsne-plot", help="purity: also plot a 2-D t-SNE of the vectors, coloured by label, to this PNG."),
    clusters: int = typer.Option(10, "--clusters", help="purity: number of k-means clusters."),
    n_init: int = typer.Option(10, "--n-init", help="purity: k-means initialisations (best kept)."),
    seed: int = typer.Option(0, "--seed", help="purity: k-means random seed."),
    inertia_plot: Optional[Path] = typer.Option(
        None, "--inertia-plot", help="purity: also plot k-means inertia for k = 1..--max-k to this PNG."),
    max_k: int = typer.Option(20, "--max-k", help="purity: largest k of the inertia curve."),
    query: Optional[Path] = typer.Option(None, "--query", help="recall@k: query vectors (same forms as --feats)."),
    candidates: Optional[Path] = typer.Option(None, "--candidates", help="recall@k: candidate vectors."),
    matches: Optional[Path] = typer.Option(
        None, "--matches", help="recall@k: lines '<query> <relevant candidate> ...' (default: same key matches)."),
    k: str = typer.Option("1,5,10", "--k", help="recall@k: comma-separated cut-offs."),
    both_directions: bool = typer.Option(
        False, "--both-directions", help="recall@k: also retrieve queries from candidates."),
    system: Optional[str] = typer.Option(
        None, "--system", help="Name of what is scored (model, direction...): a first column of the row."),
    results: Optional[Path] = typer.Option(
        None, "--results", help="Append a Markdown table row (with this command line) to this file."),
) -> None:
    """Score hypotheses: wer, cer, bleu (text or --hyp-wav audio), psnr, purity, accuracy, speaker-id, recall@k.

    Prints a table (rich on a terminal, plain text otherwise); --results appends it to a Markdown file.

    Example: skiptool score --metric wer --ref data/test/text --hyp exp/decode_test/text --results RESULTS.md
    """
    _check_options(ctx, metric)
    if metric in TEXT_METRICS:
        rows, notes = _score_text(metric, ref, hyp, hyp_wav, recognizer, lm_text, asr_exp, hyp_out, alignment,
                                  normalize, tokenize)
    elif metric == Metric.psnr:
        rows, notes = _score_psnr(_single(ref, metric), hyp, nearest, data_range)
    elif metric == Metric.accuracy:
        rows, notes = _score_accuracy(_single(ref, metric), hyp, classifier, feats)
    elif metric == Metric.speaker_id:
        rows, notes = _score_speaker_id(_single(ref, metric), classifier, feats, enroll)
    elif metric == Metric.purity:
        rows, notes = _score_purity(_single(ref, metric), feats, clusters, n_init, seed, inertia_plot, max_k,
                                     tsne_plot)
    else:
        rows, notes = _score_retrieval(query, candidates, matches, k, both_directions)
    if system is not None:
        rows = [{"system": system, **row} for row in rows]
    _print_table(metric.value, rows)
    for note in notes:
        typer.echo(note)
    if results:
        from skiptool.metrics.results import append_result_row

        command = _command_line(ctx)
        for row in rows:
            append_result_row(results, row, command)
        typer.echo(f"appended {len(rows)} row(s) to {results}")


# ----------------------------------------------------------------------------- per metric


def _score_text(metric, refs, hyp, hyp_wav, recognizer, lm_text, asr_exp, hyp_out, alignment, normalize, tokenize):
    from skiptool.metrics.inputs import read_multi_text, read_text

    if not refs:
        raise SkiptoolError(f"--metric {metric.value} needs --ref (a Kaldi text file)")
    if (hyp is None) == (hyp_wav is None):
        raise SkiptoolError(f"--metric {metric.value} needs exactly one of --hyp (text) or --hyp-wav (wav.scp)")
    if hyp_wav is None and (lm_text or hyp_out or asr_exp):
        raise SkiptoolError("--lm-text, --asr-exp and --hyp-out go with --hyp-wav (they concern the recogniser)")
    _check_outputs([hyp_out, alignment], [*refs, hyp, hyp_wav, lm_text])
    if metric == Metric.bleu:
        references = read_multi_text(refs)
    else:
        if len(refs) > 1:
            raise SkiptoolError(f"--metric {metric.value} takes one --ref; several references are for bleu")
        references = read_text(refs[0], "reference text")
    if hyp_wav is not None:
        hyps, hyp_name = _recognise(hyp_wav, recognizer, lm_text, asr_exp, hyp_out, references), str(hyp_wav)
    else:
        hyps, hyp_name = read_text(hyp, "hypothesis text"), str(hyp)
    notes = []
    if metric == Metric.bleu:
        from skiptool.metrics.bleu import bleu

        result = bleu(references, hyps, normalize=normalize, tokenize=tokenize, ref_name=str(refs[0]),
                      hyp_name=hyp_name)
        if result.missing:
            notes.append(f"note: {len(result.missing)} of {result.num_hyps} reference keys have no hypothesis; "
                         f"scored as empty hypotheses")
        return [result.summary()], notes
    from skiptool.metrics.wer import error_rate, format_alignment
    from skiptool.utils.fileio import atomic_write_text

    result = error_rate(references, hyps, "word" if metric == Metric.wer else "char", normalize,
                        ref_name=str(refs[0]), hyp_name=hyp_name)
    notes.append(result.kaldi_line())
    if result.missing:
        notes.append(f"note: {len(result.missing)} of {result.counts.sentences} reference keys have no "
                     f"hypothesis; scored as deletions of all their words (first: {result.missing[0]})")
    if alignment:
        atomic_write_text(alignment, format_alignment(result))
        notes.append(f"alignments written to {alignment}")
    return [result.summary()], notes


def _recognise(wav_scp, name, lm_text, asr_exp, hyp_out, references):
    from skiptool.data.datadir import write_table
    from skiptool.metrics.inputs import check_hyp_keys
    from skiptool.metrics.recognizers import make_recognizer, read_wav_scp

    wavs = read_wav_scp(wav_scp)
    check_hyp_keys(references, wavs, str(wav_scp), "reference text")  # fail before the slow part
    hyps = make_recognizer(name, lm_text, asr_exp).transcribe(wavs)
    if hyp_out:
        write_table(hyp_out, hyps)
    return hyps


def _score_psnr(ref, hyp, nearest, data_range):
    from skiptool.metrics.image import psnr_nearest, psnr_paired
    from skiptool.metrics.inputs import load_images

    if hyp is None:
        raise SkiptoolError("--metric psnr needs --hyp (generated images) and --ref (reference images)")
    if data_range is not None and data_range <= 0:
        raise SkiptoolError(f"--data-range must be positive, got {data_range}")
    refs, hyps = load_images(ref, data_range), load_images(hyp, data_range)
    result = psnr_nearest(refs, hyps) if nearest else psnr_paired(refs, hyps, str(ref), str(hyp))
    notes = []
    if result.missing:
        notes.append(f"note: {len(result.missing)} of {len(refs)} reference images have no generated image "
                     f"and were not scored")
    if result.identical:
        notes.append(f"note: {result.identical} image(s) equal their reference exactly (PSNR inf)")
    return [result.summary()], notes


def _score_accuracy(ref, hyp, classifier, feats):
    from skiptool.metrics.classify import accuracy
    from skiptool.metrics.inputs import read_labels

    if (hyp is None) == (classifier is None):
        raise SkiptoolError("--metric accuracy needs --ref (true utt2label) and either --hyp (predicted "
                            "utt2label) or --classifier EXP_DIR with --feats FEATS_DIR")
    if classifier is not None:
        if feats is None:
            raise SkiptoolError("--classifier needs --feats: the feature dir whose labels it predicts")
        from skiptool.decode.classify import predict
        from skiptool.train.trainer import load_trained_model

        model, experiment = load_trained_model(classifier, "best")
        predicted = {key: str(label) for key, label in predict(model, experiment, feats).items()}
        hyp_name = f"{classifier} on {feats}"
    else:
        predicted, hyp_name = read_labels(hyp, "predicted labels"), str(hyp)
    result = accuracy(read_labels(ref, "reference labels"), predicted, str(ref), hyp_name)
    confusion = [{"ref \\ hyp": label, **{h: str(n) for h, n in zip(result.labels, counts)},
                  "acc (%)": f"{100 * result.per_class[label]:.1f}"}
                 for label, counts in zip(result.labels, result.confusion) if label in result.per_class]
    _print_table("confusion matrix (rows: reference, columns: predicted) and per-class accuracy", confusion)
    notes = []
    if result.missing:
        notes.append(f"note: {len(result.missing)} of {result.num_utts} reference keys have no prediction; "
                     f"counted as wrong")
    return [result.summary()], notes


def _score_speaker_id(ref, classifier, feats, enroll):
    from skiptool.data.datadir import read_table
    from skiptool.data.datasets import FeatsDataset
    from skiptool.metrics.inputs import read_labels
    from skiptool.metrics.speaker import speaker_identification
    from skiptool.models.classifier import embed_utterances
    from skiptool.train.trainer import load_trained_model

    if classifier is None or feats is None or enroll is None:
        raise SkiptoolError("--metric speaker-id needs --ref (utt2spk of --feats), --feats FEATS_DIR, "
                            "--enroll FEATS_DIR (real speech with utt2spk) and --classifier EXP_DIR")
    if not (enroll / "utt2spk").is_file():
        raise SkiptoolError(f"{enroll}/utt2spk: not found; --enroll needs the speaker of each utterance")
    model, experiment = load_trained_model(classifier, "best")
    if experiment.model != "speech_classifier":
        raise SkiptoolError(f"{classifier}: model '{experiment.model}' does not embed speech; give a speech_classifier")
    embeddings = {}
    for name, path in (("feats", feats), ("enroll", enroll)):
        dataset = FeatsDataset(path, labels=False)
        if dataset.dim != experiment.model_conf.speech_dim:
            raise SkiptoolError(f"{path}: features have {dataset.dim} dims but the classifier takes "
                                f"{experiment.model_conf.speech_dim}")
        embeddings[name] = embed_utterances(model, dataset)
    enroll_speakers = {key: spk for key, spk in read_table(enroll / "utt2spk").items() if key in embeddings["enroll"]}
    result = speaker_identification(embeddings["feats"], read_labels(ref, "speakers"), embeddings["enroll"],
                                    enroll_speakers, str(ref), str(feats))
    return [result.summary()], [f"chance: {100 / result.num_speakers:.2f}% ({result.num_speakers} enrolled speakers)"]


def _score_purity(ref, feats, clusters, n_init, seed, inertia_plot, max_k, tsne_plot):
    from skiptool.metrics.clustering import inertia_curve, kmeans_purity, plot_inertia
    from skiptool.metrics.inputs import check_hyp_keys, load_vectors, read_labels, stack

    if feats is None:
        raise SkiptoolError("--metric purity needs --feats (latent vectors) and --ref (utt2label)")
    _check_outputs([inertia_plot, tsne_plot], [ref, feats])
    labels = read_labels(ref, "labels")
    vectors = load_vectors(feats, row_keys=list(labels))
    unlabelled = check_hyp_keys(labels, vectors, str(feats), str(ref))
    keys = [key for key in labels if key in vectors]
    matrix = stack(vectors, keys)
    result = kmeans_purity(matrix, [labels[key] for key in keys], clusters, n_init, seed)
    notes = []
    if unlabelled:
        notes.append(f"note: {len(unlabelled)} labelled keys have no vector and were left out")
    if inertia_plot:
        curve = inertia_curve(matrix, max_k, n_init, seed)
        plot_inertia(curve, inertia_plot, f"{feats}: k-means inertia")
        _print_table("k-means inertia", [{"k": str(kk), "inertia": f"{v:.6g}"} for kk, v in curve])
        notes.append(f"inertia curve plotted to {inertia_plot}")
    if tsne_plot:
        from skiptool.metrics.clustering import plot_tsne

        plot_tsne(matrix, [labels[key] for key in keys], tsne_plot, f"{feats}: t-SNE", seed)
        notes.append(f"t-SNE plotted to {tsne_plot}")
    return [result.summary()], notes


def _score_retrieval(query, candidates, matches, k, both_directions):
    from skiptool.metrics.inputs import load_vectors, read_matches
    from skiptool.metrics.retrieval import identity_matches, invert_matches, recall_at_k

    if query is None or candidates is None:
        raise SkiptoolError("--metric recall@k needs --query and --candidates (vector files)")
    try:
        ks = [int(part) for part in k.split(",") if part.strip()]
    except ValueError:
        raise SkiptoolError(f"--k must be comma-separated integers like 1,5,10, got '{k}'") from None
    if not ks:
        raise SkiptoolError("--k needs at least one cut-off, e.g. 1,5,10")
    queries, cands = load_vectors(query), load_vectors(candidates)
    truth = read_matches(matches) if matches else identity_matches(queries, cands)
    rows = [recall_at_k(queries, cands, truth, ks, f"{query.name} -> {candidates.name}").summary()]
    if both_directions:
        rows.append(recall_at_k(cands, queries, invert_matches(truth), ks,
                                f"{candidates.name} -> {query.name}").summary())
    return rows, []


# ----------------------------------------------------------------------------- helpers


def _single(ref: list[Path] | None, metric: Metric) -> Path:
    if not ref:
        raise SkiptoolError(f"--metric {metric.value} needs --ref")
    if len(ref) > 1:
        raise SkiptoolError(f"--metric {metric.value} takes one --ref, got {len(ref)}")
    return ref[0]


def _check_options(ctx: typer.Context, metric: Metric) -> None:
    """Reject options the chosen metric does not read."""
    for param in ctx.command.params:
        allowed = APPLIES_TO.get(param.name)
        if allowed is not None and metric not in allowed and _given(ctx, param.name):
            raise SkiptoolError(f"{param.opts[0]} does not apply to --metric {metric.value}; "
                                f"it is for {', '.join(sorted(m.value for m in allowed))}")


def _given(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)  # an enum of typer's vendored click
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _check_outputs(outputs: list[Path | None], inputs: list[Path | None]) -> None:
    """An output must never replace one of this command's inputs."""
    existing = {p.resolve(): p for p in inputs if p is not None and p.exists()}
    for out in outputs:
        if out is not None and out.exists() and out.resolve() in existing:
            raise SkiptoolError(f"{out}: is also an input of this command; write the output elsewhere")
        if out is not None and out.is_dir():
            raise SkiptoolError(f"{out}: is a folder; give a file name")


def _command_line(ctx: typer.Context) -> str:
    """The command line, rebuilt from the options the user gave (in the command's option order).

    Rebuilt rather than taken from sys.argv so that it is right however skiptool was started
    (console script, `python -m`, in-process from tests); running it reproduces the row.
    """
    words = ["skiptool", "score"]
    for param in ctx.command.params:
        if not _given(ctx, param.name):
            continue
        value, flag = ctx.params[param.name], param.opts[0]
        if getattr(param, "is_flag", False):
            words.append(flag if value else (param.secondary_opts or [flag])[0])
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            words += [flag, str(item.value if isinstance(item, enum.Enum) else item)]
    return shlex.join(words)


def _print_table(title: str, rows: list[dict[str, str]]) -> None:
    """A rich table on a terminal; aligned plain text otherwise (logs, pipes, tests)."""
    if not rows:
        return
    header = list(rows[0])
    cells = [[row.get(col, "") for col in header] for row in rows]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*header, title=title)
        for line in cells:
            table.add_row(*line)
        Console().print(table)
        return
    widths = [max(len(col), *(len(line[i]) for line in cells)) for i, col in enumerate(header)]
    typer.echo(f"# {title}")
    for line in [header, *cells]:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
