"""add_corpus_entries: a batch of inputs in one statement, with add_corpus_entry's semantics."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from oomfuzz.db.errors import DatabaseError
from oomfuzz.db.store import add_corpus_entries, add_corpus_entry, corpus_since
from oomfuzz.db.testing import migrated_engine, scratch_postgres, session  # noqa: F401  (fixtures)


def test_a_batch_adds_each_new_input_once_after_the_current_seq(session: Session) -> None:
    assert add_corpus_entry(session, "v4.6", b"old", "seed")
    batch = [b"a", b"old", b"b", b"a", b"c"]
    assert add_corpus_entries(session, "v4.6", batch, "fuzz", campaign_id=None) == 3
    assert add_corpus_entries(session, "v4.6", batch, "fuzz") == 0
    assert add_corpus_entries(session, "v4.7", [b"a"], "fuzz") == 1  # per variant, as one at a time
    assert add_corpus_entries(session, "v4.6", [], "fuzz") == 0
    entries = corpus_since(session, 0, 10)
    assert [(e.variant, e.data) for e in entries] == [
        ("v4.6", b"old"), ("v4.6", b"a"), ("v4.6", b"b"), ("v4.6", b"c"), ("v4.7", b"a")
    ]
    seqs = [e.seq for e in entries]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert add_corpus_entry(session, "v4.6", b"after", "fuzz")
    assert corpus_since(session, seqs[-1], 10)[0].data == b"after"
    with pytest.raises(DatabaseError, match="unknown corpus source"):
        add_corpus_entries(session, "v4.6", [b"x"], "magic")


def test_a_batch_larger_than_one_statement(session: Session) -> None:
    datas = [n.to_bytes(2, "big") for n in range(1_234)]
    assert add_corpus_entries(session, "v4.6", datas, "fuzz") == 1_234
    assert [e.data for e in corpus_since(session, 0, 2_000, "v4.6")] == datas
