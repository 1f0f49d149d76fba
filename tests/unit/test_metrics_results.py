"""Markdown RESULTS rows: header creation, appending, a new table when the columns change."""

from skiptool.metrics.results import append_result_row


def test_header_is_written_once_and_rows_append(tmp_path):
    path = tmp_path / "RESULTS.md"
    append_result_row(path, {"metric": "WER", "Err": "10.00"}, "skiptool score --metric wer")
    append_result_row(path, {"metric": "WER", "Err": "5.00"}, "skiptool score --metric wer --normalize")
    assert path.read_text().splitlines() == [
        "| metric | Err | command |",
        "| --- | --- | --- |",
        "| WER | 10.00 | `skiptool score --metric wer` |",
        "| WER | 5.00 | `skiptool score --metric wer --normalize` |",
    ]


def test_other_columns_start_a_new_table_after_existing_text(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text("# Results\n\nSome prose.\n")
    append_result_row(path, {"metric": "WER", "Err": "1"}, "a")
    append_result_row(path, {"metric": "BLEU", "BLEU-1": "50", "signature": "nrefs:1|tok:13a"}, "b")
    append_result_row(path, {"metric": "BLEU", "BLEU-1": "60", "signature": "nrefs:1|tok:13a"}, "c")
    text = path.read_text()
    assert text.startswith("# Results\n\nSome prose.\n\n| metric | Err | command |")
    assert "| WER | 1 | `a` |\n\n| metric | BLEU-1 | signature | command |\n| --- | --- | --- | --- |\n" in text
    assert text.endswith("| BLEU | 60 | nrefs:1\\|tok:13a | `c` |\n")
    assert text.count("| metric | BLEU-1") == 1
