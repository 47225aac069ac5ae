"""What the fuzzer, workers and triage CLI do to the findings: upserts, corpus sync, triage."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from oomfuzz.db.errors import DatabaseError
from oomfuzz.db.models import (
    CAMPAIGN_STATUSES,
    CORPUS_SOURCES,
    FINDING_STATUSES,
    Campaign,
    CorpusEntry,
    Finding,
    FindingEvent,
    FindingVariant,
    Hit,
)

FUZZER_ACTOR = "fuzzer"
DEFAULT_MAX_RAW_HITS = 20
_IN_BATCH = 500  # ids per IN list (SQLite caps bound parameters)
_REPRODUCER = ("reproducer", "reproducer_variant", "preemptions", "steps", "trace", "replay")
_SORTS = {
    "hits": (Finding.hits.desc(), Finding.id),
    "last_seen": (Finding.last_seen.desc(), Finding.id),
    "preemptions": (Finding.preemptions, Finding.steps, Finding.id),
}


@dataclass(frozen=True)
class HitRecord:
    """One invariant violation as the fuzzer saw it: plain data, no engine objects."""

    signature: str
    invariant: str
    title: str
    known_bug: str | None
    variant: str
    input: bytes
    preemptions: int
    steps: int
    trace: str
    replay: str


def _now() -> datetime:
    return datetime.now(UTC)


def _insert(session: Session, model: type) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise DatabaseError(f"unsupported database dialect {dialect!r}")


def _later(new: ColumnElement[datetime], old: ColumnElement[datetime]) -> ColumnElement[datetime]:
    return case((new > old, new), else_=old)


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise DatabaseError(f"unknown {what} {value!r}: expected one of {', '.join(allowed)}")


# Findings: the upsert ----------------------------------------------------------------------------


def record_hit(
    session: Session,
    hit: HitRecord,
    *,
    campaign_id: int | None = None,
    max_raw_hits: int = DEFAULT_MAX_RAW_HITS,
    count: int = 1,
) -> tuple[int, bool]:
    """Count ``count`` hits of `hit.signature` (a batch a fuzzer gathered; `hit` is the one kept as
    its raw hit and reproducer candidate); returns (finding id, whether the signature is new).

    Every write is a single atomic statement, so concurrent writers never create a second row or
    lose a count. The upsert leaves the finding row locked until commit, which serialises the
    raw-hit cap check per finding. Commit after each call: holding several findings' locks in one
    transaction invites deadlocks between workers.
    """
    now = _now()
    reopened = session.execute(
        update(Finding)
        .where(Finding.signature == hit.signature, Finding.status == "fixed")
        .values(status="new")
        .returning(Finding.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    finding_id, hits = session.execute(_upsert_finding(session, hit, now, count)).one()
    session.execute(_upsert_variant(session, finding_id, hit.variant, now, count))
    if reopened is not None:
        note = f"hit again on {hit.variant}" + (f", campaign {campaign_id}" if campaign_id else "")
        _log(session, finding_id, FUZZER_ACTOR, "reopen", "fixed", "new", note)
    raw_hits = session.scalar(select(func.count()).where(Hit.finding_id == finding_id)) or 0
    if raw_hits < max_raw_hits:
        session.add(
            Hit(
                finding_id=finding_id,
                campaign_id=campaign_id,
                variant=hit.variant,
                input=hit.input,
                preemptions=hit.preemptions,
                steps=hit.steps,
                seen_at=now,
            )
        )
    session.flush()
    return finding_id, hits == count  # an existing row had at least one hit already


def _upsert_finding(session: Session, hit: HitRecord, now: datetime, count: int = 1) -> Any:
    stmt = _insert(session, Finding).values(
        signature=hit.signature,
        invariant=hit.invariant,
        title=hit.title,
        known_bug=hit.known_bug,
        first_seen=now,
        last_seen=now,
        hits=count,
        status="new",
        reproducer=hit.input,
        reproducer_variant=hit.variant,
        preemptions=hit.preemptions,
        steps=hit.steps,
        trace=hit.trace,
        replay=hit.replay,
    )
    new = stmt.excluded
    # SET expressions all see the row as it was before this statement, so `smaller` is consistent.
    smaller = or_(
        new.preemptions < Finding.preemptions,
        and_(new.preemptions == Finding.preemptions, new.steps < Finding.steps),
    )
    old = Finding.__table__.c
    keep_smaller = {name: case((smaller, new[name]), else_=old[name]) for name in _REPRODUCER}
    return stmt.on_conflict_do_update(
        index_elements=[Finding.signature],
        set_={
            "hits": Finding.hits + count,
            "last_seen": _later(new.last_seen, Finding.last_seen),
            "known_bug": func.coalesce(new.known_bug, Finding.known_bug),
            "minimised": case((smaller, False), else_=Finding.minimised),
            **keep_smaller,
        },
    ).returning(Finding.id, Finding.hits)


def _upsert_variant(session: Session, finding_id: int, variant: str, now: datetime, count: int = 1) -> Any:
    stmt = _insert(session, FindingVariant).values(
        finding_id=finding_id, variant=variant, first_seen=now, last_seen=now, hits=count
    )
    return stmt.on_conflict_do_update(
        index_elements=[FindingVariant.finding_id, FindingVariant.variant],
        set_={
            "hits": FindingVariant.hits + count,
            "last_seen": _later(stmt.excluded.last_seen, FindingVariant.last_seen),
        },
    )


def update_reproducer(
    session: Session,
    finding_id: int,
    *,
    input: bytes,
    variant: str,
    preemptions: int,
    steps: int,
    trace: str,
    replay: str,
    actor: str,
    minimised: bool = True,
    flaky: bool | None = None,
    force: bool = False,
    note: str | None = None,
) -> bool:
    """Store a re-minimised reproducer unless it is larger than the stored one (or `force`)."""
    finding = _locked_finding(session, finding_id)
    if not force and (preemptions, steps) > (finding.preemptions, finding.steps):
        return False
    old, new = f"{finding.preemptions}p/{finding.steps}s", f"{preemptions}p/{steps}s"
    _log(session, finding.id, actor, "minimise", old, new, note)
    finding.reproducer, finding.reproducer_variant, finding.trace, finding.replay = (
        input, variant, trace, replay
    )
    finding.preemptions, finding.steps, finding.minimised = preemptions, steps, minimised
    if flaky is not None:
        finding.flaky = flaky
    session.flush()
    return True


# Reading findings --------------------------------------------------------------------------------


def get_finding(session: Session, finding_id: int) -> Finding | None:
    return session.get(Finding, finding_id)


def list_findings(
    session: Session,
    status: str | None = None,
    variant: str | None = None,
    invariant: str | None = None,
    sort: str = "hits",
    limit: int | None = None,
) -> list[Finding]:
    """Findings matching every given filter, most hit / most recent / smallest reproducer first."""
    _check(sort, tuple(_SORTS), "sort order")
    stmt = select(Finding).order_by(*_SORTS[sort]).limit(limit)
    if status is not None:
        stmt = stmt.where(Finding.status == status)
    if invariant is not None:
        stmt = stmt.where(Finding.invariant == invariant)
    if variant is not None:
        stmt = stmt.where(Finding.variants.any(FindingVariant.variant == variant))
    return list(session.scalars(stmt))


def history(session: Session, finding_id: int) -> list[FindingEvent]:
    """The finding's lifecycle events, oldest first."""
    if get_finding(session, finding_id) is None:
        raise DatabaseError(f"no finding #{finding_id}")
    stmt = (
        select(FindingEvent)
        .where(FindingEvent.finding_id == finding_id)
        .order_by(FindingEvent.at, FindingEvent.id)
    )
    return list(session.scalars(stmt))


# Triage lifecycle --------------------------------------------------------------------------------


def _locked_finding(session: Session, finding_id: int) -> Finding:
    finding = session.get(Finding, finding_id, with_for_update=True)
    if finding is None:
        raise DatabaseError(f"no finding #{finding_id}")
    return finding


def _log(
    session: Session,
    finding_id: int,
    actor: str,
    action: str,
    old: str | None,
    new: str | None,
    note: str | None,
) -> FindingEvent:
    event = FindingEvent(
        finding_id=finding_id,
        at=_now(),
        actor=actor,
        action=action,
        old_value=old,
        new_value=new,
        note=note,
    )
    session.add(event)
    return event


def set_status(
    session: Session, finding_id: int, status: str, actor: str, note: str | None = None
) -> FindingEvent | None:
    """Move a finding to `status` and log it; None when it already had that status."""
    _check(status, FINDING_STATUSES, "finding status")
    if status == "duplicate":
        raise DatabaseError("use mark_duplicate to mark a finding as a duplicate of another")
    finding = _locked_finding(session, finding_id)
    if finding.status == "duplicate":
        raise DatabaseError(
            f"finding #{finding_id} is a duplicate of #{finding.duplicate_of}: unmark it first"
        )
    if finding.status == status:
        return None
    event = _log(session, finding_id, actor, "status", finding.status, status, note)
    finding.status = status
    session.flush()
    return event


def mark_duplicate(
    session: Session, finding_id: int, of_id: int, actor: str, note: str | None = None
) -> FindingEvent:
    """Mark `finding_id` a duplicate of `of_id`, or of the finding that `of_id` duplicates.

    Invariant: duplicate_of always names a finding that is not itself a duplicate, so chains are
    one hop and cycles cannot form; duplicates of `finding_id` are re-pointed to keep it true.
    """
    locked = {id_: _locked_finding(session, id_) for id_ in sorted({finding_id, of_id})}
    finding, target = locked[finding_id], locked[of_id]
    if target.status == "duplicate" and target.duplicate_of is not None:
        target = _locked_finding(session, target.duplicate_of)
    if target.id == finding.id:
        via = "" if of_id == finding_id else f", which is a duplicate of #{finding_id}"
        raise DatabaseError(f"finding #{finding_id} cannot be a duplicate of #{of_id}{via}")
    event = _log(session, finding.id, actor, "dup", finding.status, str(target.id), note)
    finding.status, finding.duplicate_of = "duplicate", target.id
    children = select(Finding).where(Finding.duplicate_of == finding.id).with_for_update()
    for child in session.scalars(children):
        repointed = f"re-pointed: #{finding.id} became a duplicate of #{target.id}"
        _log(session, child.id, actor, "dup", "duplicate", str(target.id), repointed)
        child.duplicate_of = target.id
    session.flush()
    return event


def unmark_duplicate(
    session: Session, finding_id: int, actor: str, note: str | None = None, status: str = "new"
) -> FindingEvent:
    """Make a duplicate a finding of its own again, with `status`."""
    _check(status, FINDING_STATUSES, "finding status")
    finding = _locked_finding(session, finding_id)
    if finding.status != "duplicate" or status == "duplicate":
        raise DatabaseError(f"finding #{finding_id} is not marked as a duplicate")
    event = _log(session, finding.id, actor, "undup", str(finding.duplicate_of), status, note)
    finding.status, finding.duplicate_of = status, None
    session.flush()
    return event


# Campaigns ---------------------------------------------------------------------------------------


def start_campaign(
    session: Session,
    *,
    variant: str,
    engine: str,
    seed: int,
    jobs: int = 1,
    corpus_dir: str | None = None,
    host: str | None = None,
    worker: str | None = None,
) -> int:
    """Record a running campaign and return its id."""
    campaign = Campaign(
        variant=variant,
        engine=engine,
        seed=seed,
        jobs=jobs,
        corpus_dir=corpus_dir,
        host=host,
        worker=worker,
        started_at=_now(),
        status="running",
    )
    session.add(campaign)
    session.flush()
    return campaign.id


def update_campaign_stats(
    session: Session, campaign_id: int, *, executions: int, exec_per_second: float, coverage: int
) -> None:
    """Overwrite a campaign's running totals (workers report cumulative numbers)."""
    _update_campaign(
        session,
        campaign_id,
        executions=executions,
        exec_per_second=exec_per_second,
        coverage=coverage,
    )


def finish_campaign(
    session: Session,
    campaign_id: int,
    *,
    status: str = "finished",
    executions: int | None = None,
    exec_per_second: float | None = None,
    coverage: int | None = None,
) -> None:
    """Close a campaign with its final status and, if given, its final totals."""
    _check(status, CAMPAIGN_STATUSES[1:], "final campaign status")
    totals = {"executions": executions, "exec_per_second": exec_per_second, "coverage": coverage}
    given = {name: value for name, value in totals.items() if value is not None}
    _update_campaign(session, campaign_id, status=status, ended_at=_now(), **given)


def _update_campaign(session: Session, campaign_id: int, **values: Any) -> None:
    stmt = update(Campaign).where(Campaign.id == campaign_id).values(**values)
    if session.execute(stmt.returning(Campaign.id)).first() is None:
        raise DatabaseError(f"no campaign #{campaign_id}")


# Corpus ------------------------------------------------------------------------------------------


def add_corpus_entry(
    session: Session,
    variant: str,
    data: bytes,
    source: str,
    source_detail: str | None = None,
    campaign_id: int | None = None,
) -> bool:
    """Store `data` for `variant` unless the same bytes are already there; True if stored.

    `seq` must grow in commit order, or a reader could move its cursor past a row that commits
    later. SQLite already runs one write transaction at a time; on PostgreSQL the EXCLUSIVE lock
    (which still admits readers) does the same for writers of this table until commit.
    """
    _check(source, CORPUS_SOURCES, "corpus source")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE corpus_entry IN EXCLUSIVE MODE"))
    last = session.scalar(select(func.coalesce(func.max(CorpusEntry.seq), 0)))
    stmt = (
        _insert(session, CorpusEntry)
        .values(
            seq=(last or 0) + 1,
            sha256=hashlib.sha256(data).hexdigest(),
            variant=variant,
            source=source,
            source_detail=source_detail,
            data=data,
            added_at=_now(),
            campaign_id=campaign_id,
        )
        .on_conflict_do_nothing(index_elements=[CorpusEntry.sha256, CorpusEntry.variant])
        .returning(CorpusEntry.id)
    )
    return session.execute(stmt).first() is not None


def add_corpus_entries(
    session: Session,
    variant: str,
    datas: list[bytes],
    source: str,
    source_detail: str | None = None,
    campaign_id: int | None = None,
) -> int:
    """Store each of `datas` not already there for `variant`; how many were new.

    `add_corpus_entry` for a batch, in one lock and one INSERT per 500 inputs instead of three
    statements each (a shard ends by adding hundreds). Seqs follow the current maximum in
    order; an input already stored leaves a gap, which cursors do not mind.
    """
    _check(source, CORPUS_SOURCES, "corpus source")
    unique = list(dict.fromkeys(datas))
    if not unique:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE corpus_entry IN EXCLUSIVE MODE"))
    last = session.scalar(select(func.coalesce(func.max(CorpusEntry.seq), 0))) or 0
    now, added = _now(), 0
    for start in range(0, len(unique), _IN_BATCH):
        rows = [
            {
                "seq": last + start + i + 1,
                "sha256": hashlib.sha256(data).hexdigest(),
                "variant": variant,
                "source": source,
                "source_detail": source_detail,
                "data": data,
                "added_at": now,
                "campaign_id": campaign_id,
            }
            for i, data in enumerate(unique[start : start + _IN_BATCH])
        ]
        stmt = (
            _insert(session, CorpusEntry)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[CorpusEntry.sha256, CorpusEntry.variant])
            .returning(CorpusEntry.id)
        )
        added += len(session.execute(stmt).all())
    return added


def corpus_since(
    session: Session, cursor: int, limit: int, variant: str | None = None
) -> list[CorpusEntry]:
    """Live entries after `cursor` (0 for all), oldest first, at most `limit`; the last one's
    seq is the next cursor. Entries a merge found redundant are skipped."""
    stmt = select(CorpusEntry).where(CorpusEntry.seq > cursor, CorpusEntry.merged_out_at.is_(None))
    stmt = stmt.order_by(CorpusEntry.seq).limit(limit)
    if variant is not None:
        stmt = stmt.where(CorpusEntry.variant == variant)
    return list(session.scalars(stmt))


def live_corpus(session: Session, variant: str) -> list[CorpusEntry]:
    """Every live entry of `variant`, oldest first (what a merge replays)."""
    stmt = select(CorpusEntry).where(
        CorpusEntry.variant == variant, CorpusEntry.merged_out_at.is_(None)
    )
    return list(session.scalars(stmt.order_by(CorpusEntry.seq)))


def merge_out_corpus_entries(
    session: Session, variant: str, upto_seq: int, replayed: set[int], redundant: set[int]
) -> bool:
    """Mark `redundant` entries merged out, if the live entries up to `upto_seq` are still
    exactly the `replayed` ids; False (nothing written) when another merge got there first.

    Takes the lock `add_corpus_entry` takes, so merges of one table run one at a time; entries
    added after the merge read its snapshot have a larger seq and are never touched.
    """
    if not redundant <= replayed:
        raise DatabaseError("a merge may only merge out entries it replayed")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE corpus_entry IN EXCLUSIVE MODE"))
    live = session.scalars(
        select(CorpusEntry.id).where(
            CorpusEntry.variant == variant,
            CorpusEntry.seq <= upto_seq,
            CorpusEntry.merged_out_at.is_(None),
        )
    )
    if set(live) != replayed:
        return False
    now, ids = _now(), sorted(redundant)
    for start in range(0, len(ids), _IN_BATCH):
        session.execute(
            update(CorpusEntry)
            .where(CorpusEntry.id.in_(ids[start : start + _IN_BATCH]))
            .values(merged_out_at=now)
            .execution_options(synchronize_session=False)
        )
    return True


def merged_out_digests(session: Session, variant: str) -> list[str]:
    """The sha256 of every merged-out entry of `variant` (what worker caches delete)."""
    stmt = select(CorpusEntry.sha256).where(
        CorpusEntry.variant == variant, CorpusEntry.merged_out_at.is_not(None)
    )
    return list(session.scalars(stmt.order_by(CorpusEntry.seq)))


def merged_out_count(session: Session, variant: str) -> int:
    stmt = select(func.count()).where(
        CorpusEntry.variant == variant, CorpusEntry.merged_out_at.is_not(None)
    )
    return session.scalar(stmt) or 0
