"""The coordinator: keeps a campaign's shards queued, closes the campaign, and reports farm status."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Callable

from sqlalchemy import Engine, func, select

from ..db.engine import session_scope
from ..db.models import Campaign, CorpusEntry, Finding
from ..db.store import finish_campaign, start_campaign
from .app import FarmSettings, make_app
from .state import DONE, ERROR, FAILED, FINISHED_STATES, QUEUED, RUNNING, SHARD_STATES, FarmState

POLL_SECONDS = 0.5
MIN_SHARD_SECONDS = 2.0


@dataclass(frozen=True)
class FarmPlan:
    """One farm campaign: which variants, how many shards at once, how long, each shard how long."""

    variants: tuple[str, ...]
    label: str
    shards: int
    seconds: float
    shard_seconds: float = 600.0
    engine: str = "atheris"
    seed: int = 0
    minimise: bool = True
    retries: int = 2  # times a shard whose attempt failed is queued again before it counts as failed
    merge_every: float = 3600.0  # seconds between corpus.merge tasks while the campaign runs
    pull_corpus: bool = True  # False: shards start from an empty corpus (what they keep is still added)


def shard_seed(campaign_seed: int, shard_id: int) -> int:
    return (campaign_seed * 1_000_003 + shard_id * 7919 + 1) % 2**31


class Coordinator:
    """Fills the queue for one campaign until its budget is spent, then waits for the stragglers."""

    def __init__(self, settings: FarmSettings, state: FarmState, db: Engine) -> None:
        self.settings, self.state, self.db = settings, state, db
        self.app = make_app(settings)

    def open(self, plan: FarmPlan) -> int:
        with session_scope(self.db) as session:
            campaign_id = start_campaign(session, variant=plan.label, engine=plan.engine, seed=plan.seed,
                                         jobs=plan.shards, host=socket.gethostname(), worker="farm")
        self.state.open_campaign(campaign_id, {
            "variants": list(plan.variants), "label": plan.label, "shards": plan.shards, "seconds": plan.seconds,
            "shard_seconds": plan.shard_seconds, "engine": plan.engine, "pull_corpus": plan.pull_corpus,
            "started": time.time(), "status": "running",
        })
        return campaign_id

    def enqueue(self, campaign_id: int, plan: FarmPlan, shard_id: int, seconds: float) -> dict[str, Any]:
        variant = plan.variants[shard_id % len(plan.variants)]
        seed = shard_seed(plan.seed, shard_id)
        record = self.state.put_shard(campaign_id, shard_id, state=QUEUED, variant=variant, seed=seed,
                                      shard_seconds=seconds, attempts=0, requeues=0, errors=[])
        self._send(campaign_id, shard_id, variant, seconds, seed)
        return record

    def _send(self, campaign_id: int, shard_id: int, variant: str, seconds: float, seed: int) -> None:
        margin = self.settings.shard_margin
        self.app.send_task("fuzz.run_shard", args=[campaign_id, shard_id, variant, seconds, seed],
                           time_limit=int(seconds) + margin, soft_time_limit=int(seconds) + margin - max(2, margin // 4))

    def settle_failed_attempt(self, campaign_id: int, plan: FarmPlan, shard_id: int, record: dict[str, Any],
                              stopping: bool) -> dict[str, Any]:
        """Queue a shard whose attempt failed again (same id and seed), or record it as failed."""
        errors = [*record.get("errors", []), record.get("error", "unknown error")]
        if stopping or record.get("requeues", 0) >= plan.retries:
            return self.state.put_shard(campaign_id, shard_id, state=FAILED, errors=errors, error=None)
        record = self.state.put_shard(campaign_id, shard_id, state=QUEUED, errors=errors, error=None,
                                      requeues=record.get("requeues", 0) + 1)
        self._send(campaign_id, shard_id, record["variant"], record["shard_seconds"], record["seed"])
        return record

    def run(self, plan: FarmPlan, on_tick: Callable[[int, dict[int, dict]], None] | None = None) -> dict[str, Any]:
        """Run a campaign to its end (or ``farm stop``); its totals."""
        campaign_id = self.open(plan)
        started = time.monotonic()
        deadline = started + plan.seconds
        give_up = deadline + self.settings.visibility_timeout + (1 + plan.retries) * plan.shard_seconds
        next_id, next_merge = 0, started + plan.merge_every
        shards: dict[int, dict[str, Any]] = {}  # finished records are final: only open ones are polled
        while True:
            open_ids = [i for i, s in shards.items() if s.get("state") not in FINISHED_STATES]
            fresh, stopping = self.state.poll(campaign_id, open_ids)
            shards.update(fresh)
            for shard_id in open_ids:
                if shards[shard_id].get("state") == ERROR:
                    shards[shard_id] = self.settle_failed_attempt(campaign_id, plan, shard_id, shards[shard_id],
                                                                  stopping)
            in_flight = sum(1 for s in shards.values() if s.get("state") not in FINISHED_STATES)
            remaining = deadline - time.monotonic()
            while not stopping and in_flight < plan.shards and remaining >= MIN_SHARD_SECONDS:
                shards[next_id] = self.enqueue(campaign_id, plan, next_id, round(min(plan.shard_seconds, remaining), 1))
                in_flight += 1
                next_id += 1
            if on_tick is not None:
                on_tick(campaign_id, shards)
            if not in_flight and (stopping or remaining < MIN_SHARD_SECONDS):
                break
            if stopping and self._abandoned(shards):
                break
            if time.monotonic() > give_up:
                break  # no worker came back for the stragglers: close the campaign as failed
            if time.monotonic() >= next_merge:
                self.app.send_task("corpus.merge", args=[campaign_id])
                next_merge += plan.merge_every
            self.state.wait_for_shard_end(campaign_id, POLL_SECONDS)
        return self.close(campaign_id, plan, time.monotonic() - started)

    def _abandoned(self, shards: dict[int, dict]) -> bool:
        """After ``farm stop``, queued shards nobody picked up are not waited for."""
        return all(s.get("state") != RUNNING for s in shards.values())

    def close(self, campaign_id: int, plan: FarmPlan, wall: float) -> dict[str, Any]:
        shards = self.state.shards(campaign_id)
        failed = [i for i, s in shards.items() if s.get("state") != DONE]
        status = "interrupted" if self.state.stopping(campaign_id) else ("failed" if failed else "finished")
        with session_scope(self.db) as session:
            executions = int(session.scalar(select(func.coalesce(func.sum(Campaign.executions), 0))
                                            .where(Campaign.worker.like(f"farm-shard {campaign_id}/%"))))
            finish_campaign(session, campaign_id, status=status, executions=int(executions),
                            exec_per_second=round(executions / wall, 1) if wall else 0.0)
        self.state.update_plan(campaign_id, status=status, wall=wall, executions=int(executions))
        self.app.send_task("corpus.merge", args=[campaign_id])
        findings = campaign_findings(self.db, campaign_id)
        if plan.minimise:
            for f in findings:
                if not f["minimised"]:
                    self.app.send_task("triage.minimise", args=[f["id"]])
        return {"campaign": campaign_id, "status": status, "executions": int(executions), "seconds": round(wall, 1),
                "exec_per_second": round(executions / wall, 1) if wall else 0.0, "shards": len(shards),
                "failed_shards": failed, "shard_errors": {i: shards[i].get("errors", []) for i in failed},
                "findings": findings}


def campaign_findings(db: Engine, campaign_id: int) -> list[dict[str, Any]]:
    """Findings hit during the campaign, with when each was first seen (relative to its start)."""
    with session_scope(db) as session:
        started = session.scalar(select(Campaign.started_at).where(Campaign.id == campaign_id))
        if started is None:
            return []
        rows = session.scalars(select(Finding).where(Finding.last_seen >= started).order_by(Finding.first_seen))
        return [{"id": f.id, "title": f.title, "known_bug": f.known_bug, "hits": f.hits,
                 "first_seen_s": round(max(0.0, (f.first_seen - started).total_seconds()), 1),
                 "preemptions": f.preemptions, "minimised": f.minimised, "replay": f.replay} for f in rows]


def status(settings: FarmSettings, state: FarmState, db: Engine | None, campaign_id: int | None) -> dict[str, Any]:
    """Workers alive, shards by state, exec/s per worker and in total, corpus size, findings."""
    app = make_app(settings)
    pings = app.control.inspect(timeout=1.0).ping() or {}
    campaign_id = campaign_id or state.current()
    shards = state.shards(campaign_id) if campaign_id else {}
    per_worker: dict[str, float] = {name: 0.0 for name in pings}
    for s in shards.values():
        if s.get("state") == RUNNING and s.get("worker"):
            per_worker[s["worker"]] = per_worker.get(s["worker"], 0.0) + s.get("exec_per_second", 0.0)
    counts = {name: sum(1 for s in shards.values() if s.get("state") == name) for name in SHARD_STATES}
    result: dict[str, Any] = {
        "campaign": campaign_id, "plan": state.plan(campaign_id) if campaign_id else None,
        "workers": sorted(pings), "shards": counts,
        "requeued": sum(s.get("requeues", 0) for s in shards.values()),
        "failed": [{"shard": i, "variant": s.get("variant"), "attempts": s.get("attempts", 0),
                    "errors": s.get("errors", [])} for i, s in shards.items() if s.get("state") == FAILED],
        "exec_per_second": {"total": round(sum(per_worker.values()), 1),
                            "per_worker": {k: round(v, 1) for k, v in sorted(per_worker.items())}},
        "executions_done": sum(s.get("executions", 0) for s in shards.values() if s.get("state") == DONE),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if db is not None:
        with session_scope(db) as session:
            result["corpus"] = session.scalar(select(func.count()).where(CorpusEntry.merged_out_at.is_(None)))
        result["findings"] = campaign_findings(db, campaign_id) if campaign_id else []
    return result


def stop(state: FarmState, campaign_id: int | None) -> int | None:
    """Ask the running campaign's coordinator and shards to stop; the campaign id, or None."""
    campaign_id = campaign_id or state.current()
    if campaign_id is not None:
        state.request_stop(campaign_id)
    return campaign_id
