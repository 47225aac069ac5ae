"""Triage of stored findings: plain views, replay, the variant matrix, verify, re-minimise, stats.

Design
======

A finding row is the unit a kernel developer triages. Everything here takes a ``Finding``
(or a session for the listing and statistics) and returns plain dictionaries or small
dataclasses; the CLI renders them and owns exit codes.

"Exists on V" is decided by the finding's *signature* (invariant, detecting function, and
for stalls what the stuck threads wait on), not by the invariant alone: the same invariant
breaks for unrelated reasons (two different stalls are both ``oom_deadlock``), and the
signature is the dedup key the fuzzer already uses, so "the same finding" means the same
thing in ``list`` and in ``matrix``. Replaying the same bytes on another variant is not
enough either way: a patch adds or removes scheduling points, so the pinned preemptions land
elsewhere (BZ-04's random-walk reproducer on mmotm-2016-01 runs clean on seed-3of2, which has
the bug). The evidence for V is therefore gathered in three steps, cheapest first:

1. the stored reproducer replayed on V;
2. every stored raw hit's input replayed on V (a ``fuzz --variant all`` campaign keeps the
   first hits per variant, so a race the fuzzer met on V is proven by V's own input);
3. a bounded search: DFS with at most one preemption, ``search`` executions, on the
   reproducer's scenario.

The first input that shows the signature on V is kept as the witness. A variant with no
witness is "not found", which is evidence, not proof: the search budget and whether it was
exhausted are reported beside it. Introduction and fix points are read off the shipped
chain (each variant is its predecessor plus one patch): a change from absent to present is
where the race was introduced, present to absent where it was fixed. A user's variant file
is compared with its parent.
"""

from __future__ import annotations

import inspect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.models import Campaign, Finding, Hit
from ..db.store import history, list_findings, update_reproducer
from ..engine import invariants as inv
from ..engine.execute import Execution, replay, replay_command
from ..engine.explore import explore
from ..engine.report import running_preemptions, trace_rows
from ..engine.variants import VariantError, load_variant, variant_names
from .minimise import minimise
from .recorder import trace_json

DEFAULT_SEARCH = 1500  # DFS executions per variant without a witness: about a second each


class TriageError(Exception):
    """A triage request that cannot be answered (no such variant, stale reproducer); one line."""


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


# Views -------------------------------------------------------------------------------------------


def finding_summary(finding: Finding) -> dict[str, Any]:
    """The columns of ``triage list`` (also its JSON rows)."""
    return {
        "id": finding.id,
        "title": finding.title,
        "invariant": finding.invariant,
        "known_bug": finding.known_bug,
        "status": finding.status,
        "duplicate_of": finding.duplicate_of,
        "variants": [v.variant for v in finding.variants],
        "hits": finding.hits,
        "first_seen": _iso(finding.first_seen),
        "last_seen": _iso(finding.last_seen),
        "preemptions": finding.preemptions,
        "steps": finding.steps,
    }


def finding_detail(session: Session, finding: Finding) -> dict[str, Any]:
    """Everything ``show`` prints about a finding except the replay and the matrix."""
    return {
        **finding_summary(finding),
        "signature": finding.signature,
        "meaning": invariant_meaning(finding.invariant),
        "reproducer": finding.reproducer.hex(),
        "reproducer_variant": finding.reproducer_variant,
        "replay": replay_command(finding.reproducer_variant, finding.reproducer),
        "minimised": finding.minimised,
        "flaky": finding.flaky,
        "per_variant": [
            {"variant": v.variant, "hits": v.hits, "first_seen": _iso(v.first_seen), "last_seen": _iso(v.last_seen)}
            for v in finding.variants
        ],
        "history": [
            {"at": _iso(e.at), "actor": e.actor, "action": e.action, "old": e.old_value, "new": e.new_value,
             "note": e.note}
            for e in history(session, finding.id)
        ],
    }


def list_rows(session: Session, *, status: str | None = None, variant: str | None = None,
              invariant: str | None = None, sort: str = "hits") -> list[dict[str, Any]]:
    return [finding_summary(f) for f in list_findings(session, status, variant, invariant, sort)]


def invariant_meaning(invariant: str) -> str:
    """The docstring of the check that raises ``invariant``: the property and its kernel reason."""
    for name, func in inspect.getmembers(inv, inspect.isfunction):
        if func.__module__ != inv.__name__ or name == "fail":
            continue
        try:
            source = inspect.getsource(func)
        except (OSError, TypeError):
            continue
        if f'"{invariant}"' in source:
            doc = inspect.getdoc(func) or ""
            return " ".join(doc.split()) if doc else inv.TITLES.get(invariant, invariant)
    return inv.TITLES.get(invariant, "no description of this invariant")


# Replay ------------------------------------------------------------------------------------------


def variant_or_error(name: str) -> Any:
    try:
        return load_variant(name)
    except VariantError as exc:
        raise TriageError(str(exc)) from None


def replay_finding(finding: Finding, variant_name: str | None = None) -> tuple[Execution, bool]:
    """Replay the stored reproducer (traced); whether it showed the finding's signature."""
    ex = replay(variant_or_error(variant_name or finding.reproducer_variant), finding.reproducer, tracing=True)
    return ex, ex.finding is not None and ex.finding.signature == finding.signature


def execution_summary(ex: Execution) -> dict[str, Any]:
    return {
        "variant": ex.variant,
        "scenario": ex.scenario.as_dict(),
        "status": ex.status,
        "outcome": ex.run.outcome.name.lower(),
        "signature": ex.finding.signature if ex.finding else None,
        "preemptions": ex.preemptions,
        "running_preemptions": running_preemptions(ex),
        "steps": ex.steps,
        "input": ex.input.hex(),
        "replay": replay_command(ex.variant, ex.input),
        "error": ex.run.error,
    }


# The variant matrix ------------------------------------------------------------------------------


@dataclass
class Cell:
    """Whether the finding exists on one variant, and the evidence."""

    variant: str
    exists: bool
    evidence: str  # reproducer, hit, search, or none
    witness: bytes | None = None
    reproducer_result: str = "ok"  # what the stored reproducer did here: a signature, ok, engine_error
    searched: int = 0
    exhausted: bool = False
    parent: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "exists": self.exists,
            "evidence": self.evidence,
            "witness": None if self.witness is None else self.witness.hex(),
            "replay": None if self.witness is None else replay_command(self.variant, self.witness),
            "reproducer_result": self.reproducer_result,
            "searched": self.searched,
            "search_exhausted": self.exhausted,
            "parent": self.parent,
        }


@dataclass
class Matrix:
    finding_id: int
    signature: str
    search: int
    cells: list[Cell] = field(default_factory=list)
    introduced: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)

    @property
    def exists_on(self) -> list[str]:
        return [c.variant for c in self.cells if c.exists]

    def as_dict(self) -> dict[str, Any]:
        return {
            "finding": self.finding_id,
            "signature": self.signature,
            "decided_by": "signature",
            "search_executions": self.search,
            "exists_on": self.exists_on,
            "introduced_in": self.introduced,
            "fixed_in": self.fixed,
            "variants": [c.as_dict() for c in self.cells],
        }


def _candidates(session: Session, finding: Finding) -> list[tuple[str, bytes]]:
    """The reproducer, then every distinct stored raw-hit input (oldest first)."""
    seen = {finding.reproducer}
    out = [("reproducer", finding.reproducer)]
    hits = session.scalars(select(Hit.input).where(Hit.finding_id == finding.id).order_by(Hit.id))
    for raw in hits:
        if raw not in seen:
            seen.add(raw)
            out.append(("hit", raw))
    return out


def _result(ex: Execution) -> str:
    if ex.status in ("engine_error", "inconclusive"):
        return ex.status
    return ex.finding.signature if ex.finding else "ok"


def presence(variant: Any, finding: Finding, candidates: list[tuple[str, bytes]], search: int,
             name: str | None = None) -> Cell:
    """Does ``finding`` exist on ``variant`` (loaded as ``name``)? Replays, then a bounded search."""
    cell = Cell(name or variant.NAME, False, "none", parent=variant.PARENT)
    scenario = None
    for kind, raw in candidates:
        ex = replay(variant, raw)
        if kind == "reproducer":
            cell.reproducer_result, scenario = _result(ex), ex.scenario
        if ex.finding is not None and ex.finding.signature == finding.signature:
            cell.exists, cell.evidence, cell.witness = True, kind, ex.input
            return cell
    if search > 0:
        result = explore(variant, "dfs", preemptions=1, executions=search, scenario=scenario)
        cell.searched, cell.exhausted = result.executions, result.exhausted
        found = result.findings.get(finding.signature)
        if found is not None:
            cell.exists, cell.evidence, cell.witness = True, "search", found.input
    return cell


def matrix_variants(finding: Finding) -> list[str]:
    """Every shipped variant, oldest first, then any user variant files the finding was seen on."""
    names = list(variant_names())
    seen_on = [finding.reproducer_variant] + [v.variant for v in finding.variants]
    for name in seen_on:
        if name not in names and name.endswith(".py"):
            names.append(name)
    return names


def variant_matrix(session: Session, finding: Finding, *, search: int = DEFAULT_SEARCH) -> Matrix:
    """Where the finding exists among the variants, and where it was introduced and fixed."""
    candidates = _candidates(session, finding)
    matrix = Matrix(finding.id, finding.signature, search)
    for name in matrix_variants(finding):
        try:
            variant = load_variant(name)
        except VariantError:
            continue  # a user file that is gone: nothing to say about it
        matrix.cells.append(presence(variant, finding, candidates, search, name))
    _transitions(matrix)
    return matrix


def _transitions(matrix: Matrix) -> None:
    shipped = set(variant_names())
    chain = [c for c in matrix.cells if c.variant in shipped]
    before = False
    for cell in chain:
        if cell.exists and not before:
            matrix.introduced.append(cell.variant)
        if before and not cell.exists:
            matrix.fixed.append(cell.variant)
        before = cell.exists
    by_name = {c.variant: c for c in matrix.cells}
    for cell in matrix.cells:
        if cell.variant in shipped or cell.parent not in by_name:
            continue
        parent = by_name[cell.parent].exists
        if parent and not cell.exists:
            matrix.fixed.append(cell.variant)
        elif cell.exists and not parent:
            matrix.introduced.append(cell.variant)


def verify(session: Session, finding: Finding, variant_name: str, *, search: int = DEFAULT_SEARCH) -> Cell:
    """Does ``variant_name`` still have the finding? (``exists`` False means it looks fixed.)"""
    return presence(variant_or_error(variant_name), finding, _candidates(session, finding), search, variant_name)


# Re-minimisation ---------------------------------------------------------------------------------


def reminimise(session: Session, finding: Finding, *, actor: str, seconds: float = 5.0) -> dict[str, Any]:
    """Shrink the stored reproducer again and store it if smaller; raises if it no longer replays."""
    variant = variant_or_error(finding.reproducer_variant)
    before = (finding.preemptions, finding.steps)
    mini = minimise(variant, finding.reproducer, finding.signature, seconds=seconds)
    if not mini.reproduced:
        raise TriageError(
            f"finding #{finding.id} no longer reproduces on {finding.reproducer_variant} "
            f"(got {mini.signature or 'no finding'}): a bug in oomfuzz, not in the kernel")
    stored = False
    if mini.deterministic:
        stored = update_reproducer(
            session, finding.id, input=mini.input, variant=finding.reproducer_variant,
            preemptions=mini.preemptions, steps=mini.steps, trace=trace_json(variant, mini.input),
            replay=replay_command(finding.reproducer_variant, mini.input), actor=actor, minimised=True,
            flaky=False, note="oomfuzz triage minimise",
        )
    return {
        "finding": finding.id,
        "before": {"preemptions": before[0], "steps": before[1]},
        "after": {"preemptions": mini.preemptions, "steps": mini.steps},
        "input": mini.input.hex(),
        "replay": replay_command(finding.reproducer_variant, mini.input),
        "deterministic": mini.deterministic,
        "stored": stored,
        "replays": mini.replays,
    }


# Export ------------------------------------------------------------------------------------------


def export_json(session: Session, finding: Finding) -> dict[str, Any]:
    """The finding with its schedule: the traced replay of the reproducer, step by step."""
    ex, reproduced = replay_finding(finding)
    return {
        "format": "oomfuzz-finding/1",
        "finding": finding_detail(session, finding),
        "reproduced": reproduced,
        "execution": execution_summary(ex),
        "schedule": trace_rows(ex),
    }


def fixed_variants(finding: Finding) -> list[str]:
    """Shipped variants after the finding's own on which the pinned reproducer does not show it."""
    names = list(variant_names())
    start = names.index(finding.reproducer_variant) + 1 if finding.reproducer_variant in names else 0
    out = []
    for name in names[start:]:
        ex = replay(load_variant(name), finding.reproducer)
        if ex.finding is None or ex.finding.signature != finding.signature:
            out.append(name)
    return out


PYTEST_TEMPLATE = '''\
"""Regression test for oomfuzz finding #{id}: {title}.

Exported by `oomfuzz triage export {id} --format pytest`. The pinned input shows the race
on {affected!r}; the test passes on a variant where it is fixed and fails where it is not.
Choose variants with OOMFUZZ_VARIANT=name[,name...] (a shipped name or a path/to/patch.py).
"""

import os

import pytest

from oomfuzz.engine.execute import replay
from oomfuzz.engine.variants import load_variant

SIGNATURE = {signature!r}
INPUT = bytes.fromhex({input!r})
AFFECTED = {affected!r}
FIXED = {fixed!r}
VARIANTS = [v for v in os.environ.get("OOMFUZZ_VARIANT", "").split(",") if v] or FIXED or [AFFECTED]


def test_input_still_shows_the_race_on_{slug}():
    """Guards the regression test itself: the pinned input must still race where it was found."""
    ex = replay(load_variant(AFFECTED), INPUT)
    assert ex.finding is not None and ex.finding.signature == SIGNATURE, ex.status


@pytest.mark.parametrize("variant", VARIANTS)
def test_{slug}_is_fixed(variant):
    ex = replay(load_variant(variant), INPUT)
    assert ex.status != "engine_error", ex.run.error
    got = ex.finding.signature if ex.finding else None
    assert got != SIGNATURE, (
        f"{{variant}} still has {{SIGNATURE}}: oomfuzz replay --variant {{variant}} hex:{{INPUT.hex()}}"
    )
'''


def export_pytest(finding: Finding, fixed: list[str] | None = None) -> str:
    """A standalone pytest file: fails on a variant that has the race, passes on a fixed one."""
    slug = "".join(ch if ch.isalnum() else "_" for ch in finding.invariant).strip("_") or "finding"
    return PYTEST_TEMPLATE.format(
        id=finding.id, title=finding.title.replace('"', "'"), signature=finding.signature,
        input=finding.reproducer.hex(), affected=finding.reproducer_variant,
        fixed=fixed_variants(finding) if fixed is None else fixed, slug=slug,
    )


# Statistics --------------------------------------------------------------------------------------


def stats(session: Session) -> dict[str, Any]:
    """Campaigns with their throughput and coverage, and findings over time (new per day)."""
    campaigns = list(session.scalars(select(Campaign).order_by(Campaign.started_at, Campaign.id)))
    findings = list(session.scalars(select(Finding).order_by(Finding.first_seen, Finding.id)))
    per_day = Counter(f.first_seen.date().isoformat() for f in findings)
    total, timeline = 0, []
    for day in sorted(per_day):
        total += per_day[day]
        timeline.append({"day": day, "new": per_day[day], "total": total})
    rows = []
    for c in campaigns:
        seconds = (c.ended_at - c.started_at).total_seconds() if c.ended_at else None
        rows.append({
            "id": c.id, "variant": c.variant, "engine": c.engine, "status": c.status, "jobs": c.jobs,
            "started_at": _iso(c.started_at), "seconds": None if seconds is None else round(seconds, 1),
            "executions": c.executions, "exec_per_second": round(c.exec_per_second, 1), "coverage": c.coverage,
        })
    return {
        "campaigns": len(campaigns),
        "executions": sum(c.executions for c in campaigns),
        "exec_per_second": round(sum(c.exec_per_second for c in campaigns) / len(campaigns), 1) if campaigns else 0.0,
        "max_coverage": max((c.coverage for c in campaigns), default=0),
        "findings": len(findings),
        "by_status": dict(sorted(Counter(f.status for f in findings).items())),
        "known_bugs": sorted({f.known_bug for f in findings if f.known_bug}),
        "findings_over_time": timeline,
        "campaign_rows": rows,
    }
