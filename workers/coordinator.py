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
from .state import DONE, FAILED, FINISHED_STATES, FarmState

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
            "shard_seconds": plan.shard_seconds, "engine": plan.engine, "started": time.time(), "status": "running",
        })
        return campaign_id

    def enqueue(self, campaign_id: int, plan: FarmPlan, shard_id: int, seconds: float) -> None:
        variant = plan.variants[shard_id % len(plan.variants)]
        seed = shard_seed(plan.seed, shard_id)
        self.state.put_shard(campaign_id, shard_id, state="queued", variant=variant, seed=seed, seconds=seconds,
                             attempts=0)
        self.app.send_task("fuzz.run_shard", args=[campaign_id, shard_id, variant, seconds, seed],
                           time_limit=int(seconds) + self.settings.shard_margin,
                           soft_time_limit=int(seconds) + self.settings.shard_margin - max(2, self.settings.shard_margin // 4))

    def run(self, plan: FarmPlan, on_tick: Callable[[int, dict[int, dict]], None] | None = None) -> dict[str, Any]:
        """Run a campaign to its end (or ``farm stop``); its totals."""
        campaign_id = self.open(plan)
        started = time.monotonic()
        deadline = started + plan.seconds
        next_id = 0
        while True:
            shards = self.state.shards(campaign_id)
            in_flight = [s for s in shards.values() if s.get("state") not in FINISHED_STATES]
            stopping = self.state.stopping(campaign_id)
            remaining = deadline - time.monotonic()
            while not stopping and len(in_flight) < plan.shards and remaining >= MIN_SHARD_SECONDS:
                self.enqueue(campaign_id, plan, next_id, round(min(plan.shard_seconds, remaining), 1))
                in_flight.append({})
                next_id += 1
            if on_tick is not None:
                on_tick(campaign_id, shards)
            if not in_flight and (stopping or remaining < MIN_SHARD_SECONDS):
                break
            if stopping and self._abandoned(shards):
                break
            if time.monotonic() > deadline + self.settings.visibility_timeout + plan.shard_seconds:
                break  # no worker came back for the stragglers: close the campaign as failed
            time.sleep(POLL_SECONDS)
        return self.close(campaign_id, plan, time.monotonic() - started)

    def _abandoned(self, shards: dict[int, dict]) -> bool:
        """After ``farm stop``, queued shards nobody picked up are not waited for."""
        return all(s.get("state") != "running" for s in shards.values())

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
                "failed_shards": failed, "findings": findings}


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
        if s.get("state") == "running" and s.get("worker"):
            per_worker[s["worker"]] = per_worker.get(s["worker"], 0.0) + s.get("exec_per_second", 0.0)
    counts = {name: sum(1 for s in shards.values() if s.get("state") == name)
              for name in ("queued", "running", DONE, FAILED)}
    result: dict[str, Any] = {
        "campaign": campaign_id, "plan": state.plan(campaign_id) if campaign_id else None,
        "workers": sorted(pings), "shards": counts,
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
