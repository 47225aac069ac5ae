"""Findings and corpus entries of one fuzzing process, written to the database as they come.

The first hit of a signature this process has not written yet is recorded and committed at
once (with its rendered trace), so a killed campaign loses no finding. Later hits of the same
signature are counted in memory and written per signature every ``flush_every`` seconds, one
transaction per signature (``record_hit`` leaves the finding row locked until commit; holding
two would invite deadlocks between jobs): one ``record_hit(..., count=n)`` with the smallest
input of the batch, whose upsert adds ``n`` atomically, so counts stay exact under any number
of writers without a ``record_hit`` call (about 10 ms on SQLite) per hit.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from ..db.engine import session_scope
from ..db.store import HitRecord, add_corpus_entry, record_hit
from ..engine.execute import replay, replay_command
from ..engine.report import trace_rows


@dataclass
class _Pending:
    input: bytes
    preemptions: int
    steps: int
    count: int = 0


def trace_json(variant: Any, raw: bytes) -> str:
    """The rendered trace of an input, as stored with a finding's reproducer."""
    return json.dumps(trace_rows(replay(variant, raw, tracing=True)))


class Recorder:
    """Writes one process's hits and corpus entries; ``engine=None`` records nothing."""

    def __init__(self, engine: Any, campaign_id: int | None, variant: Any, flush_every: float = 2.0) -> None:
        self.engine, self.campaign_id, self.variant = engine, campaign_id, variant
        self.flush_every = flush_every
        self.written: dict[str, tuple[int, int]] = {}  # signature -> smallest (preemptions, steps) written
        self.pending: dict[str, _Pending] = {}
        self.meta: dict[str, tuple[str, str, str | None]] = {}  # signature -> invariant, title, known bug
        self._next_flush = time.monotonic() + flush_every

    def hit(self, ex: Any) -> None:
        """Count one execution that ended with a finding."""
        if self.engine is None:
            return
        f = ex.finding
        sig = f.signature
        if sig not in self.written:
            self.meta[sig] = (f.invariant, f.title, f.known_bug)
            self._write(sig, ex.input, ex.preemptions, ex.steps, 1)
            return
        pending = self.pending.get(sig)
        if pending is None:
            pending = self.pending[sig] = _Pending(ex.input, ex.preemptions, ex.steps)
        elif (ex.preemptions, ex.steps) < (pending.preemptions, pending.steps):
            pending.input, pending.preemptions, pending.steps = ex.input, ex.preemptions, ex.steps
        pending.count += 1

    def tick(self, now: float) -> None:
        if now >= self._next_flush:
            self.flush()
            self._next_flush = now + self.flush_every

    def flush(self) -> None:
        """Write every batched hit, one transaction per signature."""
        pending, self.pending = self.pending, {}
        for sig, batch in pending.items():
            self._write(sig, batch.input, batch.preemptions, batch.steps, batch.count)

    def _write(self, sig: str, raw: bytes, preemptions: int, steps: int, count: int) -> None:
        invariant, title, known_bug = self.meta[sig]
        smaller = sig not in self.written or (preemptions, steps) < self.written[sig]
        trace = trace_json(self.variant, raw) if smaller else ""  # not stored unless smaller
        hit = HitRecord(sig, invariant, title, known_bug, self.variant.NAME, raw, preemptions, steps, trace,
                        replay_command(self.variant.NAME, raw))
        with session_scope(self.engine) as session:
            record_hit(session, hit, campaign_id=self.campaign_id, count=count)
        if smaller:
            self.written[sig] = (preemptions, steps)

    def corpus(self, inputs: list[bytes]) -> None:
        """Add inputs libFuzzer kept, in one transaction (one commit per sync, not per input)."""
        if self.engine is None or not inputs:
            return
        with session_scope(self.engine) as session:
            for data in inputs:
                add_corpus_entry(session, self.variant.NAME, data, "fuzz", campaign_id=self.campaign_id)
