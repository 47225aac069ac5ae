"""The farm's Celery tasks: thin, named, idempotent; they carry ids and seeds, never objects."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import redis
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from .merge import merge_corpus
from .shard import ShardSpec, db_engine, run_shard
from .state import ERROR, BrokerUnreachable, FarmState, connect
from .triage import minimise_finding

log = logging.getLogger(__name__)


def _cache_root() -> Path:
    return Path(os.environ.get("OOMFUZZ_FARM_DIR") or Path(tempfile.gettempdir()) / "oomfuzz-farm")


def _state(task: Any) -> FarmState:
    return FarmState(connect(task.app.conf.broker_url))


class ShardTask(Task):
    """Records a failed attempt of a shard, for the coordinator to re-queue or give up on.

    Celery calls ``on_failure`` in the pool process when the task raised (a soft time limit
    included) and in the worker's main process when the hard time limit killed the pool process,
    so both reach the shard's record. A lost worker is not a failure: its message goes back to
    the queue (``task_reject_on_worker_lost``) and the shard simply runs again.
    """

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        campaign_id, shard_id = args[0], args[1]
        try:
            _state(self).put_shard(campaign_id, shard_id, state=ERROR, error=describe(exc)[:500])
        except (BrokerUnreachable, redis.RedisError) as err:
            log.error("shard %s/%s failed (%r) and its record could not be written: %s", campaign_id, shard_id,
                      exc, err)


def describe(exc: BaseException) -> str:
    """One line for a shard's record: the exception's name and what it says."""
    name, text = type(exc).__name__, str(exc)
    if isinstance(exc, (SoftTimeLimitExceeded, TimeLimitExceeded)):
        return f"{name}: the shard ran past its time limit"
    return f"{name}: {text}" if text and not text.startswith(name) else name


@shared_task(name="fuzz.run_shard", bind=True, base=ShardTask)
def fuzz_run_shard(self: Any, campaign_id: int, shard_id: int, variant: str, seconds: float, seed: int) -> dict:
    state = _state(self)
    plan = state.plan(campaign_id) or {}
    spec = ShardSpec(campaign_id, shard_id, variant, seconds, seed, plan.get("engine", "atheris"),
                     plan.get("pull_corpus", True))
    return run_shard(spec, state, self.request.hostname or "worker", _cache_root())


@shared_task(name="triage.minimise")
def triage_minimise(finding_id: int) -> dict:
    return minimise_finding(db_engine(), finding_id)


@shared_task(name="corpus.merge")
def corpus_merge(campaign_id: int) -> dict:
    return merge_corpus(db_engine(), campaign_id)
