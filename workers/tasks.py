"""The farm's Celery tasks: thin, named, idempotent; they carry ids and seeds, never objects."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from celery import shared_task

from .shard import ShardSpec, db_engine, run_shard
from .state import FAILED, FarmState, connect
from .merge import merge_corpus
from .triage import minimise_finding


def _cache_root() -> Path:
    return Path(os.environ.get("OOMFUZZ_FARM_DIR") or Path(tempfile.gettempdir()) / "oomfuzz-farm")


def _state(task: Any) -> FarmState:
    return FarmState(connect(task.app.conf.broker_url))


@shared_task(name="fuzz.run_shard", bind=True)
def fuzz_run_shard(self: Any, campaign_id: int, shard_id: int, variant: str, seconds: float, seed: int) -> dict:
    state = _state(self)
    plan = state.plan(campaign_id) or {}
    spec = ShardSpec(campaign_id, shard_id, variant, seconds, seed, plan.get("engine", "atheris"))
    try:
        return run_shard(spec, state, self.request.hostname or "worker", _cache_root())
    except Exception as exc:
        state.put_shard(campaign_id, shard_id, state=FAILED, error=f"{type(exc).__name__}: {exc}"[:500])
        raise


@shared_task(name="triage.minimise")
def triage_minimise(finding_id: int) -> dict:
    return minimise_finding(db_engine(), finding_id)


@shared_task(name="corpus.merge")
def corpus_merge(campaign_id: int) -> dict:
    return merge_corpus(db_engine(), campaign_id)
