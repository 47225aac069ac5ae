"""Recording from a fuzzing process: first hits at once, batched hits exact, on both backends."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import URL

from oomfuzz.db.engine import make_engine, session_scope, upgrade
from oomfuzz.db.models import CorpusEntry, Finding, FindingVariant
from oomfuzz.db.testing import empty_db, scratch_postgres  # noqa: F401  (fixtures)
from oomfuzz.engine.execute import replay
from oomfuzz.engine.runtime.choices import join_input, split_input
from oomfuzz.engine.variants import load_variant
from oomfuzz.fuzzer.recorder import Recorder

BZ03 = bytes.fromhex("0501000000001101")


def _finding(engine, signature: str) -> Finding | None:
    with session_scope(engine) as session:
        return session.scalar(select(Finding).where(Finding.signature == signature))


def test_first_hit_is_durable_at_once_and_batches_count_exactly(empty_db: URL) -> None:
    engine = make_engine(empty_db)
    upgrade(engine)
    variant = load_variant("seed-3of2")
    data, [(gap, target)] = split_input(BZ03)
    bigger = replay(variant, join_input(data, [(2, 5), (gap - 3, target), (3, 7)]))
    smallest = replay(variant, BZ03)
    assert bigger.finding.signature == smallest.finding.signature
    recorder = Recorder(engine, None, variant, flush_every=3600)
    recorder.hit(bigger)
    stored = _finding(engine, bigger.finding.signature)  # written before any flush
    assert stored is not None and stored.hits == 1 and stored.preemptions == bigger.preemptions
    assert stored.trace.startswith("[")
    for _ in range(4):
        recorder.hit(bigger)
    recorder.hit(smallest)
    assert _finding(engine, bigger.finding.signature).hits == 1
    recorder.flush()
    stored = _finding(engine, bigger.finding.signature)
    assert stored.hits == 6 and stored.preemptions == 1 and stored.reproducer == smallest.input
    with session_scope(engine) as session:
        per_variant = session.scalar(select(FindingVariant.hits).where(FindingVariant.finding_id == stored.id))
    assert per_variant == 6
    recorder.corpus([b"\1\2", b"\1\2", b"\3"])
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(CorpusEntry)) == 2
    engine.dispose()


def test_record_hit_counts_a_batch_in_one_upsert(empty_db: URL) -> None:
    from oomfuzz.db.models import Hit
    from oomfuzz.db.store import HitRecord, record_hit

    engine = make_engine(empty_db)
    upgrade(engine)
    hit = HitRecord("sig|x", "inv", "title", None, "seed-3of2", b"\x00", 1, 10, "", "replay")
    with session_scope(engine) as session:
        finding_id, new = record_hit(session, hit, count=5)
    assert new
    with session_scope(engine) as session:
        _, new = record_hit(session, hit, count=3)
    assert not new
    with session_scope(engine) as session:
        assert session.get(Finding, finding_id).hits == 8
        assert session.scalar(select(FindingVariant.hits).where(FindingVariant.finding_id == finding_id)) == 8
        assert session.scalar(select(func.count()).select_from(Hit).where(Hit.finding_id == finding_id)) == 2
        import pytest

        with pytest.raises(ValueError):
            record_hit(session, hit, count=0)
