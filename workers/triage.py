"""Farm triage: minimising one stored finding's reproducer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from ..db.engine import session_scope
from ..db.models import Finding
from ..db.store import FUZZER_ACTOR, update_reproducer
from ..engine.execute import replay_command
from ..engine.variants import load_variant
from ..fuzzer.minimise import minimise
from ..fuzzer.recorder import trace_json

MINIMISE_SECONDS = 10.0
CONFIRM_RUNS = 5


def minimise_finding(db: Engine, finding_id: int) -> dict[str, Any]:
    """Shrink a finding's stored reproducer and store it (idempotent: a minimised one is left)."""
    with session_scope(db) as session:
        finding = session.get(Finding, finding_id)
        if finding is None:
            return {"finding": finding_id, "status": "missing"}
        if finding.minimised or finding.reproducer is None:
            return {"finding": finding_id, "status": "already minimised"}
        raw, variant_name, signature = finding.reproducer, finding.reproducer_variant, finding.signature
    variant = load_variant(variant_name)
    mini = minimise(variant, raw, signature, seconds=MINIMISE_SECONDS, confirm_runs=CONFIRM_RUNS)
    with session_scope(db) as session:
        stored = update_reproducer(
            session, finding_id, input=mini.input, variant=variant_name, preemptions=mini.preemptions,
            steps=mini.steps, trace=trace_json(variant, mini.input), replay=replay_command(variant_name, mini.input),
            actor=FUZZER_ACTOR, minimised=True, flaky=not mini.deterministic, note="minimised by the fuzz farm",
        )
    return {"finding": finding_id, "status": "stored" if stored else "kept smaller", "preemptions": mini.preemptions,
            "deterministic": mini.deterministic}

