"""The corpus directory: sha256-named inputs, garbage warned about and skipped, never fatal."""

from __future__ import annotations

from pathlib import Path

import pytest

from oomfuzz.fuzzer.corpus import MAX_INPUT_LEN, CorpusError, digest, open_corpus_dir, scan_corpus, write_input


def test_inputs_are_stored_once_by_content_hash(tmp_path: Path) -> None:
    corpus = open_corpus_dir(tmp_path / "c")
    assert write_input(corpus, b"\5\1\0\0\0\0\21\1")
    assert not write_input(corpus, b"\5\1\0\0\0\0\21\1")
    assert [p.name for p in corpus.iterdir()] == [digest(b"\5\1\0\0\0\0\21\1")]
    assert scan_corpus(corpus).inputs == [b"\5\1\0\0\0\0\21\1"]


def test_each_garbage_entry_gets_one_warning_and_is_skipped(tmp_path: Path) -> None:
    corpus = open_corpus_dir(tmp_path)
    write_input(corpus, b"good")
    (corpus / "README").write_text("not an input")
    (corpus / ("0" * 64)).write_bytes(b"bytes that do not hash to zeros")
    (corpus / "subdir").mkdir()
    big = b"x" * (MAX_INPUT_LEN + 1)
    (corpus / digest(big)).write_bytes(big)
    scan = scan_corpus(corpus)
    assert scan.inputs == [b"good"]
    assert len(scan.warnings) == 4
    assert all("\n" not in w and w.startswith("corpus: skipping ") for w in scan.warnings)


def test_a_file_where_the_directory_should_be_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(CorpusError, match="not a directory"):
        open_corpus_dir(tmp_path / "file")
