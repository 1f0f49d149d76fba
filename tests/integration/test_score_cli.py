"""`skiptool score` end to end: every metric, --results rows that reproduce themselves, bad input."""

import shlex

import kaldiio
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from tests.conftest import assert_user_error, run_cli


def _write(path, text):
    path.write_text(text)
    return path


@pytest.fixture
def texts(tmp_path):
    ref = _write(tmp_path / "ref", "u1 the cat sat on the mat\nu2 hello world\nu3 one two three\n")
    hyp = _write(tmp_path / "hyp", "u1 the dog sat on mat\nu2 hello world\n")
    return ref, hyp


def _results_rows(path):
    return [line for line in path.read_text().splitlines() if line.startswith("| ") and "`skiptool" in line]


def test_wer_prints_summary_writes_alignment_and_a_reproducible_results_row(tmp_path, texts):
    ref, hyp = texts
    results, alignment = tmp_path / "RESULTS.md", tmp_path / "ali.txt"
    r = run_cli("score", "--metric", "wer", "--ref", ref, "--hyp", hyp, "--alignment", alignment,
                "--results", results)
    assert r.code == 0, r.err
    # u1: 1 sub + 1 del; u3 missing: 3 del -> 5 errors over 11 reference words
    assert "%WER 45.45 [ 5 / 11, 0 ins, 4 del, 1 sub ]" in r.out
    assert "1 of 3 reference keys have no hypothesis" in r.out
    assert "HYP:  the dog sat on *** mat" in alignment.read_text()
    [row] = _results_rows(results)
    assert row.startswith("| WER | 3 | 11 | 54.5 | 9.1 | 36.4 | 0.0 | 45.45 | 66.7 | `skiptool score --metric wer")
    # the logged command line reproduces the row
    command = row.rsplit("`", 2)[1]
    again = run_cli(*shlex.split(command)[1:])
    assert again.code == 0, again.err
    rows = _results_rows(results)
    assert len(rows) == 2 and rows[0] == rows[1]
    assert results.read_text().count("| metric |") == 1


def test_cer_with_normalisation(tmp_path):
    ref = _write(tmp_path / "ref", "a Hello, World!\n")
    hyp = _write(tmp_path / "hyp", "a hello world\n")
    r = run_cli("score", "--metric", "cer", "--ref", ref, "--hyp", hyp, "--normalize")
    assert r.code == 0, r.err
    assert "%CER 0.00 [ 0 / 11," in r.out
    r = run_cli("score", "--metric", "cer", "--ref", ref, "--hyp", hyp)
    assert "%CER 0.00" not in r.out


def test_bleu_with_several_references(tmp_path):
    ref1 = _write(tmp_path / "captions", "img1 a dog runs on the grass\nimg1 a brown dog is running\n"
                                         "img2 two people ride horses\n")
    ref2 = _write(tmp_path / "captions2", "img2 people riding horses on a beach\n")
    hyp = _write(tmp_path / "hyp", "img1 a dog runs on the grass\nimg2 two people ride horses\n")
    r = run_cli("score", "--metric", "bleu", "--ref", ref1, "--ref", ref2, "--hyp", hyp)
    assert r.code == 0, r.err
    line = next(l for l in r.out.splitlines() if l.startswith("BLEU "))
    assert line.split()[1:7] == ["2", "2", "100.00", "100.00", "100.00", "100.00"]
    assert "nrefs:2|" in line


def test_psnr_paired_and_nearest_on_png_folders(tmp_path):
    gen, ref = tmp_path / "gen", tmp_path / "ref"
    gen.mkdir(), ref.mkdir()
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(ref / "a.png")
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(ref / "b.png")
    Image.fromarray(np.full((8, 8), 190, np.uint8)).save(gen / "a.png")  # far from ref a, near ref b
    r = run_cli("score", "--metric", "psnr", "--ref", ref, "--hyp", gen)
    assert r.code == 0, r.err
    paired = 10 * np.log10(255 ** 2 / 90 ** 2)
    assert f"{paired:.2f}" in r.out and "1 of 2 reference images have no generated image" in r.out
    r = run_cli("score", "--metric", "psnr", "--ref", ref, "--hyp", gen, "--nearest")
    assert r.code == 0, r.err
    assert f"{10 * np.log10(255 ** 2 / 10 ** 2):.2f}" in r.out


def test_purity_and_inertia_plot(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 20)
    vectors = rng.normal(0, 10, (10, 4))[labels] + rng.normal(0, 0.3, (200, 4))
    keys = [f"utt{i:03d}" for i in range(200)]
    kaldiio.save_ark(str(tmp_path / "z.ark"), {k: v.astype(np.float32) for k, v in zip(keys, vectors)},
                     scp=str(tmp_path / "z.scp"))
    utt2label = _write(tmp_path / "utt2label", "".join(f"{k} {l}\n" for k, l in zip(keys, labels)))
    plot = tmp_path / "inertia.png"
    r = run_cli("score", "--metric", "purity", "--feats", tmp_path / "z.scp", "--ref", utt2label,
                "--n-init", "2", "--inertia-plot", plot, "--max-k", "12", "--results", tmp_path / "R.md")
    assert r.code == 0, r.err
    assert "purity  200     10       10  100.00" in r.out
    assert plot.read_bytes()[:4] == b"\x89PNG"
    [row] = _results_rows(tmp_path / "R.md")
    assert "| purity | 200 | 10 | 10 | 100.00 |" in row


def test_accuracy_prints_confusion(tmp_path):
    ref = _write(tmp_path / "utt2label", "a 1\nb 1\nc 2\nd 2\n")
    hyp = _write(tmp_path / "pred", "a 1\nb 2\nc 2\nd 2\n")
    r = run_cli("score", "--metric", "accuracy", "--ref", ref, "--hyp", hyp)
    assert r.code == 0, r.err
    assert "accuracy  4     3        75.00" in r.out
    assert "1          1  1  50.0" in r.out  # confusion row of class 1 with its accuracy


def test_recall_at_k_both_directions_and_matches(tmp_path):
    rng = np.random.default_rng(0)
    q = rng.normal(size=(30, 8))
    np.save(tmp_path / "q.npy", q)
    np.save(tmp_path / "c.npy", q + rng.normal(0, 0.01, q.shape))
    r = run_cli("score", "--metric", "recall@k", "--query", tmp_path / "q.npy", "--candidates",
                tmp_path / "c.npy", "--k", "1,5", "--both-directions")
    assert r.code == 0, r.err
    rows = [l.split() for l in r.out.splitlines() if l.startswith("recall@k ")]
    assert [row[-3:] for row in rows] == [["100.00", "100.00", "1"]] * 2
    matches = _write(tmp_path / "matches", "0 1\n")  # query 0's relevant item is candidate 1: not top-1
    r = run_cli("score", "--metric", "recall@k", "--query", tmp_path / "q.npy", "--candidates",
                tmp_path / "c.npy", "--k", "1", "--matches", matches)
    assert r.code == 0, r.err
    row = next(l for l in r.out.splitlines() if l.startswith("recall@k "))
    recall_1, median_rank = row.split()[-2:]
    assert recall_1 == "0.00" and int(median_rank) > 1  # candidate 0 (its near copy) is ranked first


def test_hyp_wav_is_transcribed_written_and_scored(tmp_path):
    noise = 0.02 * np.random.default_rng(0).standard_normal(8000).astype(np.float32)
    sf.write(tmp_path / "n.wav", noise, 8000)
    wav_scp = _write(tmp_path / "wav.scp", f"u1 {tmp_path / 'n.wav'}\n")
    ref = _write(tmp_path / "text", "u1 seven\n")
    lm = _write(tmp_path / "lm", "a zero\nb seven\nc nine\n")
    hyp_out = tmp_path / "out" / "text"
    r = run_cli("score", "--metric", "wer", "--ref", ref, "--hyp-wav", wav_scp, "--lm-text", lm,
                "--hyp-out", hyp_out)
    assert r.code == 0, r.err
    key, _, words = hyp_out.read_text().strip().partition(" ")
    assert key == "u1" and set(words.split()) <= {"zero", "seven", "nine"}
    assert "%WER" in r.out


def test_fsdd_digits_through_the_cli(tmp_path, fsdd_dir):
    files = sorted((fsdd_dir / "recordings").glob("*_george_0.wav"))
    words = "zero one two three four five six seven eight nine".split()
    wav_scp = _write(tmp_path / "wav.scp", "".join(f"{f.stem} {f}\n" for f in files))
    ref = _write(tmp_path / "text", "".join(f"{f.stem} {words[int(f.stem[0])]}\n" for f in files))
    r = run_cli("score", "--metric", "wer", "--ref", ref, "--hyp-wav", wav_scp, "--lm-text", ref,
                "--hyp-out", tmp_path / "hyp", "--results", tmp_path / "R.md")
    assert r.code == 0, r.err
    wer = float(r.out.split("%WER ")[1].split()[0])
    assert wer <= 40.0, r.out  # 20% measured on these 10 files (85% on 60 files, test_pocketsphinx)
    assert "--hyp-wav" in _results_rows(tmp_path / "R.md")[0]


# --------------------------------------------------------------------------- bad input


def test_missing_reference_file(tmp_path, texts):
    _, hyp = texts
    assert_user_error(run_cli("score", "--metric", "wer", "--ref", tmp_path / "nope", "--hyp", hyp),
                      "nope", "not found")


def test_hyp_keys_not_in_ref_are_named(tmp_path, texts):
    ref, _ = texts
    hyp = _write(tmp_path / "hyp2", "u1 the cat\nzz9 stray words\n")
    assert_user_error(run_cli("score", "--metric", "wer", "--ref", ref, "--hyp", hyp), "zz9", "not in the reference")


def test_malformed_and_duplicate_lines(tmp_path):
    ref = _write(tmp_path / "utt2label", "a 1\nb\n")
    hyp = _write(tmp_path / "pred", "a 1\n")
    assert_user_error(run_cli("score", "--metric", "accuracy", "--ref", ref, "--hyp", hyp), "line 2", "no label")
    dup = _write(tmp_path / "dup", "u1 a\nu1 b\n")
    assert_user_error(run_cli("score", "--metric", "wer", "--ref", dup, "--hyp", dup), "duplicate key 'u1'")
    bad = tmp_path / "latin1"
    bad.write_bytes("u1 caf\xe9\n".encode("latin-1"))
    assert_user_error(run_cli("score", "--metric", "wer", "--ref", bad, "--hyp", hyp), "not valid UTF-8")


def test_corrupt_vectors_and_images(tmp_path):
    (tmp_path / "v.npy").write_bytes(b"garbage")
    _write(tmp_path / "utt2label", "a 1\n")
    assert_user_error(run_cli("score", "--metric", "purity", "--feats", tmp_path / "v.npy", "--ref",
                              tmp_path / "utt2label"), "v.npy", "numpy")
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(b"not an image")
    assert_user_error(run_cli("score", "--metric", "psnr", "--ref", tmp_path / "imgs", "--hyp", tmp_path / "imgs"),
                      "a.png", "cannot read image")


def test_option_combinations_are_checked(tmp_path, texts):
    ref, hyp = texts
    assert_user_error(run_cli("score", "--metric", "wer", "--ref", ref, "--hyp", hyp, "--nearest"),
                      "--nearest does not apply to --metric wer")
    assert_user_error(run_cli("score", "--metric", "wer", "--ref", ref), "--hyp")
    assert_user_error(run_cli("score", "--metric", "wer", "--ref", ref, "--hyp", hyp, "--hyp-wav", hyp),
                      "exactly one of --hyp")
    assert_user_error(run_cli("score", "--metric", "wer", "--ref", ref, "--hyp", hyp, "--alignment", ref),
                      "also an input")
    np.save(tmp_path / "q.npy", np.eye(3))
    assert_user_error(run_cli("score", "--metric", "recall@k", "--query", tmp_path / "q.npy", "--candidates",
                              tmp_path / "q.npy", "--k", "1,x"), "--k")
    assert_user_error(run_cli("score", "--metric", "wer", "--ref", ref, "--hyp-wav", tmp_path / "none.scp"),
                      "none.scp", "not found")
    r = run_cli("score", "--metric", "nonsense")
    assert r.code == 2 and "Traceback" not in r.err


def test_help_lists_metrics_defaults_and_an_example():
    r = run_cli("score", "--help")
    assert r.code == 0
    for needle in ("recall@k", "--results", "Example:", "1,5,10", "pocketsphinx"):
        assert needle in r.out, needle


def test_unusable_audio_hypotheses_name_the_key(tmp_path):
    sf.write(tmp_path / "stereo.wav", np.zeros((1600, 2), np.float32), 16000)
    ref = _write(tmp_path / "text", "s1 one\np1 two\n")
    wav_scp = _write(tmp_path / "wav.scp", f"s1 {tmp_path / 'stereo.wav'}\n")
    assert_user_error(run_cli("score", "--metric", "wer", "--ref", ref, "--hyp-wav", wav_scp, "--lm-text", ref), "s1")
    wav_scp = _write(tmp_path / "wav.scp", "p1 sox in.wav -t wav - |\n")
    assert_user_error(run_cli("score", "--metric", "wer", "--ref", ref, "--hyp-wav", wav_scp), "p1", "pipe")
