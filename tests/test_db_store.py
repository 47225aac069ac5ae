"""Upsert semantics of record_hit, campaigns and corpus sync, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from oomfuzz.db.engine import make_engine, session_scope, upgrade
from oomfuzz.db.errors import DatabaseError
from oomfuzz.db.models import Campaign, Finding, FindingEvent, Hit
from oomfuzz.db.store import (
    HitRecord,
    add_corpus_entry,
    corpus_since,
    finish_campaign,
    get_finding,
    history,
    list_findings,
    mark_duplicate,
    record_hit,
    set_status,
    start_campaign,
    update_campaign_stats,
    update_reproducer,
)
from oomfuzz.db.testing import (  # noqa: F401  (fixtures)
    empty_db,
    migrated_engine,
    scratch_postgres,
    session,
)


def hit(signature: str = "sig", **changes: object) -> HitRecord:
    base = HitRecord(
        signature=signature,
        invariant="oom_victims_balanced",
        title="oom_victims underflow in exit_oom_victim",
        known_bug=None,
        variant="v4.6",
        input=b"input",
        preemptions=3,
        steps=40,
        trace='[{"task": "victim"}]',
        replay="oomfuzz replay v4.6 AAAA",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def raw_hits(session: Session, finding_id: int) -> int:
    return session.scalar(select(func.count()).where(Hit.finding_id == finding_id)) or 0


def test_first_hit_creates_one_finding(session: Session) -> None:
    finding_id, is_new = record_hit(session, hit())
    finding = get_finding(session, finding_id)
    assert is_new and finding is not None
    assert (finding.hits, finding.status, finding.duplicate_of) == (1, "new", None)
    assert finding.first_seen == finding.last_seen and finding.first_seen.tzinfo is not None
    assert (finding.reproducer, finding.reproducer_variant) == (b"input", "v4.6")
    assert (finding.preemptions, finding.steps) == (3, 40)
    assert not finding.flaky and not finding.minimised
    assert (finding.trace, finding.replay) == ('[{"task": "victim"}]', "oomfuzz replay v4.6 AAAA")
    assert [(v.variant, v.hits) for v in finding.variants] == [("v4.6", 1)]
    assert raw_hits(session, finding_id) == 1


def test_repeated_hits_count_on_the_same_row(session: Session) -> None:
    first_id, _ = record_hit(session, hit())
    first_seen = get_finding(session, first_id).first_seen  # type: ignore[union-attr]
    results = [record_hit(session, hit()) for _ in range(4)]
    assert results == [(first_id, False)] * 4
    session.expire_all()
    finding = get_finding(session, first_id)
    assert finding is not None and finding.hits == 5
    assert finding.first_seen == first_seen < finding.last_seen
    assert session.scalar(select(func.count()).select_from(Finding)) == 1


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=8))
def test_reproducer_is_the_first_smallest(session: Session, sizes: list[tuple[int, int]]) -> None:
    signature = uuid.uuid4().hex
    for n, (preemptions, steps) in enumerate(sizes):
        finding_id, _ = record_hit(
            session,
            hit(signature, input=bytes([n]), preemptions=preemptions, steps=steps, replay=f"r{n}"),
        )
    best = min(range(len(sizes)), key=lambda n: (sizes[n], n))
    session.expire_all()
    finding = get_finding(session, finding_id)
    assert finding is not None
    assert (finding.preemptions, finding.steps) == sizes[best]
    assert (finding.reproducer, finding.replay) == (bytes([best]), f"r{best}")


def test_smaller_hit_clears_minimised_and_larger_keeps_it(session: Session) -> None:
    finding_id, _ = record_hit(session, hit(preemptions=3, steps=40))
    assert update_reproducer(
        session, finding_id, input=b"min", variant="v4.6", preemptions=2, steps=30,
        trace="[]", replay="r", actor="shrinker@host",
    )
    record_hit(session, hit(preemptions=2, steps=31))
    session.expire_all()
    assert get_finding(session, finding_id).minimised  # type: ignore[union-attr]
    record_hit(session, hit(input=b"smaller", preemptions=1, steps=99))
    session.expire_all()
    finding = get_finding(session, finding_id)
    assert finding is not None and not finding.minimised and finding.reproducer == b"smaller"


def test_known_bug_is_filled_in_but_never_erased(session: Session) -> None:
    finding_id, _ = record_hit(session, hit())
    record_hit(session, hit(known_bug="BZ-03"))
    record_hit(session, hit(known_bug=None))
    session.expire_all()
    assert get_finding(session, finding_id).known_bug == "BZ-03"  # type: ignore[union-attr]


def test_variants_are_counted_separately(session: Session) -> None:
    for variant in ["v4.6", "v4.7", "v4.6", "v4.9", "v4.6"]:
        finding_id, _ = record_hit(session, hit(variant=variant))
    session.expire_all()
    finding = get_finding(session, finding_id)
    assert finding is not None and finding.hits == 5
    per_variant = [(v.variant, v.hits) for v in finding.variants]
    assert per_variant == [("v4.6", 3), ("v4.7", 1), ("v4.9", 1)]
    assert all(v.first_seen <= v.last_seen for v in finding.variants)


def test_raw_hits_are_capped(session: Session) -> None:
    for n in range(7):
        capped_id, _ = record_hit(session, hit("capped", input=bytes([n])), max_raw_hits=3)
    for _ in range(25):
        default_id, _ = record_hit(session, hit("default"))
    assert raw_hits(session, capped_id) == 3
    assert raw_hits(session, default_id) == 20
    kept = session.scalars(select(Hit.input).where(Hit.finding_id == capped_id).order_by(Hit.id))
    assert list(kept) == [b"\x00", b"\x01", b"\x02"]


def test_fixed_finding_hit_again_is_reopened_once(session: Session) -> None:
    finding_id, _ = record_hit(session, hit())
    set_status(session, finding_id, "fixed", "dev@host")
    session.commit()
    assert record_hit(session, hit(variant="v4.7")) == (finding_id, False)
    record_hit(session, hit())
    session.commit()
    session.expire_all()
    assert get_finding(session, finding_id).status == "new"  # type: ignore[union-attr]
    events = [(e.action, e.old_value, e.new_value) for e in history(session, finding_id)]
    assert events == [("status", "new", "fixed"), ("reopen", "fixed", "new")]
    assert session.scalar(select(func.count()).select_from(Finding)) == 1


@pytest.mark.parametrize("status", ["invalid", "wontfix", "confirmed", "duplicate"])
def test_only_fixed_findings_reopen(session: Session, status: str) -> None:
    finding_id, _ = record_hit(session, hit())
    if status == "duplicate":
        other_id, _ = record_hit(session, hit("other"))
        mark_duplicate(session, finding_id, other_id, "dev@host")
    else:
        set_status(session, finding_id, status, "dev@host")
    record_hit(session, hit())
    session.expire_all()
    assert get_finding(session, finding_id).status == status  # type: ignore[union-attr]
    assert session.scalar(select(func.count()).where(FindingEvent.action == "reopen")) == 0


def test_first_hit_is_visible_to_others_once_committed(empty_db: URL) -> None:
    upgrade(empty_db)
    writer, reader = make_engine(empty_db), make_engine(empty_db)
    try:
        with session_scope(writer) as session:
            finding_id, is_new = record_hit(session, hit("durable"))
        with session_scope(reader) as session:
            finding = get_finding(session, finding_id)
            assert is_new and finding is not None and finding.signature == "durable"
    finally:
        writer.dispose()
        reader.dispose()


def test_campaign_lifecycle_and_hits_link_to_it(session: Session) -> None:
    campaign_id = start_campaign(
        session, variant="all", engine="pct", seed=2**40, jobs=4, corpus_dir="/c", host="h1"
    )
    update_campaign_stats(session, campaign_id, executions=1000, exec_per_second=250.5, coverage=77)
    finding_id, _ = record_hit(session, hit(), campaign_id=campaign_id)
    finish_campaign(session, campaign_id, status="interrupted", executions=1200)
    session.expire_all()
    campaign = session.get(Campaign, campaign_id)
    assert campaign is not None
    assert (campaign.status, campaign.executions, campaign.exec_per_second, campaign.coverage) == (
        "interrupted", 1200, 250.5, 77
    )
    assert campaign.ended_at is not None and campaign.ended_at >= campaign.started_at
    linked = session.scalar(select(Hit.campaign_id).where(Hit.finding_id == finding_id))
    assert linked == campaign_id
    with pytest.raises(DatabaseError, match="no campaign #999999"):
        finish_campaign(session, 999999)
    with pytest.raises(DatabaseError, match="unknown final campaign status 'running'"):
        finish_campaign(session, campaign_id, status="running")


def test_corpus_dedups_by_content_and_variant(session: Session) -> None:
    assert add_corpus_entry(session, "v4.6", b"aa", "fuzz", "episode 3")
    assert not add_corpus_entry(session, "v4.6", b"aa", "seed")
    assert add_corpus_entry(session, "v4.7", b"aa", "trace", "bz03.trace:2")
    assert add_corpus_entry(session, "v4.6", b"bb", "seed")
    entries = corpus_since(session, 0, 10)
    assert [(e.variant, e.data, e.source) for e in entries] == [
        ("v4.6", b"aa", "fuzz"), ("v4.7", b"aa", "trace"), ("v4.6", b"bb", "seed")
    ]
    assert entries[0].sha256 == "961b6dd3ede3cb8ecbaacbd68de040cd78eb2ed5889130cceb4c49268ea4d506"
    with pytest.raises(DatabaseError, match="unknown corpus source"):
        add_corpus_entry(session, "v4.6", b"cc", "magic")


def test_corpus_cursor_pages_in_order(session: Session) -> None:
    for n in range(7):
        add_corpus_entry(session, f"v{n % 2}", bytes([n]), "fuzz")
    cursor, pages = 0, []
    while page := corpus_since(session, cursor, 3):
        pages.append([e.data[0] for e in page])
        cursor = page[-1].seq
    assert pages == [[0, 1, 2], [3, 4, 5], [6]]
    assert [e.data[0] for e in corpus_since(session, 0, 10, variant="v1")] == [1, 3, 5]
    assert corpus_since(session, cursor, 3) == []


def test_list_findings_filters_and_sorts(session: Session) -> None:
    a, _ = record_hit(session, hit("a", invariant="inv1", preemptions=5, steps=1))
    b, _ = record_hit(session, hit("b", invariant="inv2", variant="v4.7", preemptions=1, steps=9))
    record_hit(session, hit("b", invariant="inv2"))
    c, _ = record_hit(session, hit("c", invariant="inv1", preemptions=1, steps=2))
    set_status(session, c, "confirmed", "dev@host")
    ids = lambda findings: [f.id for f in findings]  # noqa: E731
    assert ids(list_findings(session)) == [b, a, c]
    assert ids(list_findings(session, sort="last_seen")) == [c, b, a]
    assert ids(list_findings(session, sort="preemptions")) == [c, b, a]
    assert ids(list_findings(session, invariant="inv1")) == [a, c]
    assert ids(list_findings(session, variant="v4.7")) == [b]
    assert ids(list_findings(session, status="confirmed")) == [c]
    assert ids(list_findings(session, status="new", variant="v4.6", invariant="inv2")) == [b]
    with pytest.raises(DatabaseError, match="unknown sort order 'size'"):
        list_findings(session, sort="size")
