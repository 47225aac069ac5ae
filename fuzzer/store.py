"""The campaign's side of the database: its row, its totals, and the minimised reproducers."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from ..db.engine import make_engine, session_scope, upgrade
from ..db.models import Finding
from ..db.store import FUZZER_ACTOR, finish_campaign, start_campaign, update_campaign_stats, update_reproducer
from ..engine.execute import replay_command
from ..engine.variants import load_variant
from .config import CampaignConfig
from .minimise import minimise
from .recorder import trace_json
from .results import FindingSummary, MergedFinding, Progress


@dataclass
class CampaignStore:
    """The database of a campaign, or nothing at all (``engine`` None: benchmarks)."""

    engine: Any
    campaign_id: int | None

    @classmethod
    def open(cls, config: CampaignConfig) -> "CampaignStore":
        if config.db_url is None:
            return cls(None, None)
        engine = make_engine(config.db_url)
        upgrade(engine)
        with session_scope(engine) as session:
            campaign_id = start_campaign(
                session, variant=config.variant_label or ",".join(config.variants), engine=config.engine,
                seed=config.seed, jobs=config.jobs, corpus_dir=config.corpus_dir, host=socket.gethostname(),
            )
        return cls(engine, campaign_id)

    def update(self, progress: Progress) -> None:
        if self.engine is None:
            return
        with session_scope(self.engine) as session:
            update_campaign_stats(session, self.campaign_id, executions=progress.executions,
                                  exec_per_second=round(progress.exec_per_second, 1), coverage=progress.coverage)

    def finish(self, progress: Progress, status: str) -> None:
        if self.engine is None:
            return
        with session_scope(self.engine) as session:
            finish_campaign(session, self.campaign_id, status=status, executions=progress.executions,
                            exec_per_second=round(progress.exec_per_second, 1), coverage=progress.coverage)

    def finish_interrupted(self) -> None:
        """Close the campaign as interrupted (Ctrl-C): its findings are already stored."""
        if self.engine is None:
            return
        with session_scope(self.engine) as session:
            finish_campaign(session, self.campaign_id, status="interrupted")

    def minimise_all(self, findings: list[MergedFinding], config: CampaignConfig) -> list[FindingSummary]:
        return [self._minimise(m, config) for m in findings]

    def _minimise(self, m: MergedFinding, config: CampaignConfig) -> FindingSummary:
        """Shrink one finding, confirm it replays, store it unless the database has a smaller one."""
        variant = load_variant(m.variant)
        mini = minimise(variant, m.input, m.signature, seconds=config.minimise_seconds, confirm_runs=config.confirm_runs)
        summary = FindingSummary(
            m.signature, m.invariant, m.title, m.known_bug, m.variants, m.hits, mini.preemptions, mini.steps,
            mini.input, replay_command(m.variant, mini.input), mini.deterministic, m.first_seconds,
        )
        if self.engine is not None:
            self._store(summary, m.variant, variant)
        return summary

    def _store(self, summary: FindingSummary, variant_name: str, variant: Any) -> None:
        with session_scope(self.engine) as session:
            finding_id = session.scalar(select(Finding.id).where(Finding.signature == summary.signature))
            if finding_id is None:
                return
            if not summary.deterministic:
                session.execute(update(Finding).where(Finding.id == finding_id).values(flaky=True))
                return
            stored = update_reproducer(
                session, finding_id, input=summary.input, variant=variant_name, preemptions=summary.preemptions,
                steps=summary.steps, trace=trace_json(variant, summary.input), replay=summary.replay,
                actor=FUZZER_ACTOR, minimised=True, flaky=False, note="minimised by oomfuzz fuzz",
            )
            if not stored:  # an earlier campaign stored a smaller one: show that
                finding = session.get(Finding, finding_id)
                summary.input, summary.preemptions, summary.steps = finding.reproducer, finding.preemptions, finding.steps
                summary.replay = finding.replay
