"""Four real processes writing the same findings into PostgreSQL and a SQLite file at once."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from sqlalchemy import func, select

from oomfuzz.db.engine import make_engine, session_scope, upgrade
from oomfuzz.db.models import CorpusEntry, Finding, FindingEvent, FindingVariant, Hit
from oomfuzz.db.testing import (  # noqa: F401  (fixture)
    SHARED_SIGNATURES,
    ScratchPostgres,
    hammer,
    scratch_postgres,
    writer_hit,
    writer_signatures,
)

WRITERS, ROUNDS, MAX_RAW_HITS = 4, 50, 20


def expected_findings() -> dict[str, tuple[int, tuple[int, int]]]:
    """signature -> (hits, smallest (preemptions, steps) any writer recorded)."""
    expected: dict[str, tuple[int, tuple[int, int]]] = {}
    for writer in range(WRITERS):
        for signature in writer_signatures(writer):
            sizes = [writer_hit(writer, r, signature) for r in range(ROUNDS)]
            smallest = min((h.preemptions, h.steps) for h in sizes)
            hits, best = expected.get(signature, (0, smallest))
            expected[signature] = (hits + ROUNDS, min(best, smallest))
    return expected


def test_concurrent_writers_keep_one_row_and_exact_counts(
    scratch_postgres: ScratchPostgres, tmp_path: Path  # noqa: F811
) -> None:
    urls = [
        f"sqlite:///{tmp_path / 'findings.db'}",
        scratch_postgres.create().render_as_string(hide_password=False),
    ]
    for url in urls:
        upgrade(url)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(WRITERS), context.Queue()
    writers = [
        context.Process(target=hammer, args=(urls, w, ROUNDS, barrier, results))
        for w in range(WRITERS)
    ]
    for process in writers:
        process.start()
    deadline = time.monotonic() + 300
    for process in writers:  # reports are a few hundred bytes: they never block a writer's exit
        process.join(timeout=max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
    assert [p.exitcode for p in writers] == [0] * WRITERS
    reports = [results.get(timeout=10) for _ in writers]

    seen_new = sorted(item for _, items in reports for item in items)
    expected = expected_findings()
    assert seen_new == sorted((i, s) for i in range(len(urls)) for s in expected)
    for url in urls:
        check_database(url, expected)


def check_database(url: str, expected: dict[str, tuple[int, tuple[int, int]]]) -> None:
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            findings = {f.signature: f for f in session.scalars(select(Finding))}
            assert sorted(findings) == sorted(expected)
            for signature, (hits, smallest) in expected.items():
                finding = findings[signature]
                assert finding.hits == hits == (200 if signature in SHARED_SIGNATURES else 50)
                assert (finding.preemptions, finding.steps) == smallest, signature
                writer, round_ = map(int, finding.reproducer.decode().split(":")[:2])
                stored = writer_hit(writer, round_, signature)
                assert (stored.preemptions, stored.steps) == smallest
                per_variant = {v.variant: v.hits for v in finding.variants}
                assert per_variant == {"v0": hits // 2, "v1": hits // 2}
                raw = session.scalar(select(func.count()).where(Hit.finding_id == finding.id))
                assert raw == MAX_RAW_HITS
            variants = session.scalar(select(func.count()).select_from(FindingVariant))
            assert variants == 2 * len(expected)
            assert session.scalar(select(func.count()).select_from(FindingEvent)) == 0
            seqs = list(session.scalars(select(CorpusEntry.seq).order_by(CorpusEntry.seq)))
            assert seqs == list(range(1, ROUNDS + WRITERS * ROUNDS + 1))
    finally:
        engine.dispose()
