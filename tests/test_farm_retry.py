"""Failed shard attempts on real workers: re-queued a bounded number of times, then failed in status;
and a campaign whose shards start from an empty corpus."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from oomfuzz.db.engine import make_engine, session_scope, upgrade
from oomfuzz.db.models import Campaign, Finding
from oomfuzz.db.store import add_corpus_entries
from oomfuzz.db.testing import scratch_postgres  # noqa: F401  (fixture)
from oomfuzz.workers.app import FarmSettings
from oomfuzz.workers.coordinator import Coordinator, FarmPlan
from oomfuzz.workers.testing import LocalFarm, processes_matching, with_redis_db

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
RETRY_REDIS_DB = 13
WORKERS = ["r1@farmtest", "r2@farmtest"]
NOT_SHIPPED = "v0.0-not-shipped"  # as on a worker whose oomfuzz is older than the coordinator's


@contextmanager
def local_farm(redis_url: str, scratch_postgres, work: Path, redis_db: int, workers: list[str],  # noqa: F811
               margin: int, env: dict[str, str] | None = None) -> Iterator[tuple[LocalFarm, Engine]]:
    """Workers on real Redis and a scratch PostgreSQL database, stopped and disposed at the end."""
    db_url = scratch_postgres.create()
    engine = make_engine(db_url)
    upgrade(engine)
    broker = with_redis_db(redis_url, redis_db)
    settings = FarmSettings(broker_url=broker, visibility_timeout=60, restore_interval=1, shard_margin=margin)
    local = LocalFarm(broker, db_url, work, settings)
    local.env.update(env or {})
    try:
        for name in workers:
            local.start_worker(name)
        local.wait_for_workers(workers)
        yield local, engine
    finally:
        local.stop()
        engine.dispose()


@pytest.fixture(scope="module")
def farm(redis_url: str, scratch_postgres, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
         ) -> Iterator[tuple[LocalFarm, Engine]]:
    with local_farm(redis_url, scratch_postgres, tmp_path_factory.mktemp("retry"), RETRY_REDIS_DB, WORKERS,
                    margin=15) as pair:
        yield pair


def _ledgers(engine: Engine, campaign_id: int) -> list[str]:
    with session_scope(engine) as session:
        return sorted(session.scalars(select(Campaign.worker).where(Campaign.worker.like(f"farm-shard {campaign_id}/%"))))


def test_a_shard_that_keeps_failing_is_requeued_twice_then_failed(farm: tuple[LocalFarm, Engine]) -> None:
    local, engine = farm
    plan = FarmPlan(("seed-3of2", NOT_SHIPPED), "test", shards=2, seconds=4, shard_seconds=4, minimise=False)
    result = Coordinator(local.settings, local.state, engine).run(plan)
    shards = local.state.shards(result["campaign"])
    failed = {i for i, s in shards.items() if s["variant"] == NOT_SHIPPED}
    assert result["status"] == "failed" and set(result["failed_shards"]) == failed and failed, result
    for i in failed:
        s = shards[i]
        assert (s["state"], s["attempts"], s["requeues"], len(s["errors"])) == ("failed", 3, 2, 3), s
        assert all(NOT_SHIPPED in e for e in s["errors"]), s["errors"]
    done = {i for i, s in shards.items() if s["state"] == "done"}
    assert done == set(shards) - failed and done, shards
    assert _ledgers(engine, result["campaign"]) == sorted(f"farm-shard {result['campaign']}/{i}" for i in done)
    with session_scope(engine) as session:
        assert session.scalar(select(Campaign.executions).where(Campaign.id == result["campaign"])) == sum(
            shards[i]["executions"] for i in done)
        assert session.scalar(select(func.coalesce(func.sum(Finding.hits), 0))) == sum(
            f["hits"] for i in done for f in shards[i]["findings"])

    status = json.loads(local.cli("farm", "status", "--json", "--campaign", str(result["campaign"])).stdout)
    assert status["shards"]["failed"] == len(failed) and status["requeued"] == 2 * len(failed)
    assert {f["shard"] for f in status["failed"]} == failed
    text = " ".join(local.cli("farm", "status", "--campaign", str(result["campaign"])).stdout.split())
    assert f"{len(failed)} failed" in text and "failed after 3 attempts" in text and NOT_SHIPPED in text


def test_a_shard_over_its_time_limit_is_requeued_then_failed(farm: tuple[LocalFarm, Engine]) -> None:
    local, engine = farm
    impossible = replace(local.settings, shard_margin=1)  # soft limit one second under the shard's budget
    plan = FarmPlan(("seed-3of2",), "seed-3of2", shards=1, seconds=3, shard_seconds=3, minimise=False)
    result = Coordinator(impossible, local.state, engine).run(plan)
    assert result["status"] == "failed" and result["failed_shards"] == [0], (result, local.log_tails())
    record = local.state.shard(result["campaign"], 0)
    assert (record["state"], record["attempts"], record["requeues"]) == ("failed", 3, 2), record
    assert record["shard_seconds"] == 3  # every attempt had the planned budget
    assert all("TimeLimitExceeded" in e for e in record["errors"]), record["errors"]
    assert _ledgers(engine, result["campaign"]) == []  # nothing of a timed-out attempt is committed
    assert local.state.shards(result["campaign"]).keys() == {0}


def test_shards_of_an_empty_corpus_campaign_pull_nothing(farm: tuple[LocalFarm, Engine]) -> None:
    local, engine = farm
    with session_scope(engine) as session:
        add_corpus_entries(session, "seed-3of2", [bytes([6, n, 0, 0, 0, 0, 0]) for n in range(20)], "seed")
    plan = FarmPlan(("seed-3of2",), "seed-3of2", shards=1, seconds=3, shard_seconds=3, minimise=False,
                    pull_corpus=False)
    result = Coordinator(local.settings, local.state, engine).run(plan)
    assert result["status"] == "finished", (result, local.log_tails())
    assert local.state.shard(result["campaign"], 0)["corpus_pulled"] == 0


def test_farm_start_rejects_negative_retries(farm: tuple[LocalFarm, Engine]) -> None:
    local, _ = farm
    out = local.cli("farm", "start", "--variant", "seed-3of2", "--seconds", "5", "--retries", "-1")
    assert out.returncode == 2 and "--retries" in out.stderr


HARD_LIMIT_REDIS_DB = 12
# Loaded by every Python process of the workers below (PYTHONPATH): each pool process blocks
# SIGUSR1, the signal by which Celery's prefork pool raises SoftTimeLimitExceeded in it, so
# only the hard time limit can end an attempt that runs too long, as with a pool process stuck
# where the soft limit cannot reach it.
BLOCK_SOFT_LIMIT = '''
import signal

from celery.signals import worker_process_init


@worker_process_init.connect
def _block_soft_time_limit(**_):
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
'''


def test_a_shard_past_its_hard_time_limit_is_requeued_and_leaves_no_fuzzer(
        redis_url: str, scratch_postgres, tmp_path: Path) -> None:  # noqa: F811
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(BLOCK_SOFT_LIMIT)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))}
    # No margin: the hard limit equals the 3 s budget, which start-up alone takes it past.
    with local_farm(redis_url, scratch_postgres, tmp_path, HARD_LIMIT_REDIS_DB, ["hard@farmtest"], margin=0,
                    env=env) as (local, engine):
        plan = FarmPlan(("seed-3of2",), "seed-3of2", shards=1, seconds=3, shard_seconds=3, minimise=False)
        marker = ("oomfuzz.fuzzer.worker", str(tmp_path))  # this farm's fuzzing processes
        seen: set[int] = set()
        done = threading.Event()
        watcher = threading.Thread(target=_watch, args=(marker, seen, done))
        watcher.start()
        try:
            result = Coordinator(local.settings, local.state, engine).run(plan)
        finally:
            done.set()
            watcher.join()
        assert result["status"] == "failed" and result["failed_shards"] == [0], (result, local.log_tails())
        assert seen, "no fuzzing process of this farm was ever seen: the orphan check below would be vacuous"
        record = local.state.shard(result["campaign"], 0)
        assert (record["state"], record["attempts"], record["requeues"]) == ("failed", 3, 2), record
        # The worker's main process wrote each error after it killed the pool process.
        assert all(e.startswith("TimeLimitExceeded") for e in record["errors"]), record["errors"]
        assert _ledgers(engine, result["campaign"]) == []
        time.sleep(1)  # PR_SET_PDEATHSIG is delivered as the pool process exits
        fuzzers = processes_matching(*marker)
        assert fuzzers == [], f"fuzzing processes outlived their killed pool process: {fuzzers}"
        assert local.workers["hard@farmtest"].poll() is None, local.log_tails()  # the worker carries on


def _watch(marker: tuple[str, ...], seen: set[int], done: threading.Event) -> None:
    while not done.wait(0.2):
        seen.update(processes_matching(*marker))
