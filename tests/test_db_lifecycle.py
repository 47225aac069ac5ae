"""Triage lifecycle: status, duplicates, re-minimisation and their history, on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from oomfuzz.db.errors import DatabaseError
from oomfuzz.db.models import Finding
from oomfuzz.db.store import (
    HitRecord,
    get_finding,
    history,
    mark_duplicate,
    record_hit,
    set_status,
    unmark_duplicate,
    update_reproducer,
)
from oomfuzz.db.testing import migrated_engine, scratch_postgres, session  # noqa: F401  (fixtures)

ACTOR = "alice@triage-host"


def new_finding(session: Session, signature: str) -> int:
    hit = HitRecord(signature, "inv", f"title {signature}", None, "v4.6", b"in", 2, 20, "[]", "r")
    return record_hit(session, hit)[0]


def events(session: Session, finding_id: int) -> list[tuple[str | None, ...]]:
    return [
        (e.actor, e.action, e.old_value, e.new_value, e.note) for e in history(session, finding_id)
    ]


def state(session: Session, finding_id: int) -> tuple[str, int | None]:
    session.expire_all()
    finding = session.get(Finding, finding_id)
    assert finding is not None
    return finding.status, finding.duplicate_of


def test_status_changes_are_logged_in_order(session: Session) -> None:
    a = new_finding(session, "a")
    assert set_status(session, a, "confirmed", ACTOR, "replays on v4.6") is not None
    assert set_status(session, a, "confirmed", ACTOR) is None
    set_status(session, a, "fixed", "bob@host")
    assert state(session, a) == ("fixed", None)
    assert events(session, a) == [
        (ACTOR, "status", "new", "confirmed", "replays on v4.6"),
        ("bob@host", "status", "confirmed", "fixed", None),
    ]
    history_times = [e.at for e in history(session, a)]
    assert history_times == sorted(history_times)


def test_bad_status_requests_are_refused(session: Session) -> None:
    a = new_finding(session, "a")
    with pytest.raises(DatabaseError, match="unknown finding status 'closed'"):
        set_status(session, a, "closed", ACTOR)
    with pytest.raises(DatabaseError, match="use mark_duplicate"):
        set_status(session, a, "duplicate", ACTOR)
    with pytest.raises(DatabaseError, match="no finding #987654"):
        set_status(session, 987654, "fixed", ACTOR)
    with pytest.raises(DatabaseError, match="no finding #987654"):
        history(session, 987654)
    assert events(session, a) == []


def test_duplicates_always_point_at_a_canonical_finding(session: Session) -> None:
    a, b, c, d = (new_finding(session, name) for name in "abcd")
    mark_duplicate(session, a, b, ACTOR, "same root cause")
    mark_duplicate(session, c, a, ACTOR)  # a is a duplicate of b, so c becomes one of b
    assert state(session, a) == ("duplicate", b) and state(session, c) == ("duplicate", b)
    mark_duplicate(session, b, d, ACTOR)  # b's duplicates follow it to d
    assert [state(session, x) for x in (a, b, c)] == [("duplicate", d)] * 3
    assert state(session, d) == ("new", None)
    assert events(session, a) == [
        (ACTOR, "dup", "new", str(b), "same root cause"),
        (ACTOR, "dup", "duplicate", str(d), f"re-pointed: #{b} became a duplicate of #{d}"),
    ]


def test_self_and_cyclic_duplicates_are_refused(session: Session) -> None:
    a, b = new_finding(session, "a"), new_finding(session, "b")
    with pytest.raises(DatabaseError, match="cannot be a duplicate"):
        mark_duplicate(session, a, a, ACTOR)
    mark_duplicate(session, a, b, ACTOR)
    with pytest.raises(DatabaseError, match="cannot be a duplicate"):
        mark_duplicate(session, b, a, ACTOR)
    assert state(session, b) == ("new", None)


def test_unmark_duplicate_restores_a_finding(session: Session) -> None:
    a, b = new_finding(session, "a"), new_finding(session, "b")
    with pytest.raises(DatabaseError, match="is not marked as a duplicate"):
        unmark_duplicate(session, a, ACTOR)
    mark_duplicate(session, a, b, ACTOR)
    with pytest.raises(DatabaseError, match="unmark it first"):
        set_status(session, a, "fixed", ACTOR)
    unmark_duplicate(session, a, ACTOR, "different stack", status="confirmed")
    assert state(session, a) == ("confirmed", None)
    assert [e[1:] for e in events(session, a)] == [
        ("dup", "new", str(b), None),
        ("undup", str(b), "confirmed", "different stack"),
    ]


def test_reminimised_reproducer_replaces_only_when_not_larger(session: Session) -> None:
    a = new_finding(session, "a")  # stored at 2 preemptions, 20 steps
    repro = dict(input=b"small", variant="v4.7", trace='["t"]', replay="oomfuzz replay small")
    assert not update_reproducer(session, a, preemptions=3, steps=1, actor=ACTOR, **repro)
    assert update_reproducer(session, a, preemptions=2, steps=15, actor=ACTOR, flaky=False, **repro)
    assert update_reproducer(
        session, a, preemptions=9, steps=99, actor=ACTOR, force=True, minimised=False, **repro
    )
    session.expire_all()
    finding = get_finding(session, a)
    assert finding is not None
    assert (finding.preemptions, finding.steps, finding.minimised) == (9, 99, False)
    assert (finding.reproducer, finding.reproducer_variant, finding.replay) == (
        b"small", "v4.7", "oomfuzz replay small"
    )
    assert [e[1:4] for e in events(session, a)] == [
        ("minimise", "2p/20s", "2p/15s"),
        ("minimise", "2p/15s", "9p/99s"),
    ]
