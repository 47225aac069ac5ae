"""The fuzz farm end to end: two real Celery workers, a coordinator, Redis and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from oomfuzz.db.engine import make_engine, session_scope, upgrade
from oomfuzz.db.models import Campaign, CorpusEntry, Finding
from oomfuzz.db.testing import scratch_postgres  # noqa: F401  (fixture)
from oomfuzz.workers.app import FarmSettings
from oomfuzz.workers.testing import LocalFarm, alive, children, with_redis_db

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
FARM_REDIS_DB = 14


@pytest.fixture
def farm_setup(redis_url: str, scratch_postgres, tmp_path: Path) -> Iterator[tuple[LocalFarm, object]]:  # noqa: F811
    db_url = scratch_postgres.create()
    engine = make_engine(db_url)
    upgrade(engine)
    settings = FarmSettings(visibility_timeout=30, restore_interval=1, shard_margin=15)
    farm = LocalFarm(with_redis_db(redis_url, FARM_REDIS_DB), db_url, tmp_path, settings)
    try:
        yield farm, engine
    finally:
        farm.stop()
        engine.dispose()


def _exact_counts(farm: LocalFarm, engine, campaign_id: int) -> None:
    """DB hits and executions equal the sums over the shards' single committed results."""
    shards = farm.state.shards(campaign_id)
    assert shards and all(s["state"] == "done" for s in shards.values()), shards
    with session_scope(engine) as session:
        ledgers = session.scalars(select(Campaign.worker).where(Campaign.worker.like(f"farm-shard {campaign_id}/%")))
        ledgers = list(ledgers)
        db_hits = session.scalar(select(func.sum(Finding.hits)))
        db_execs = session.scalar(select(Campaign.executions).where(Campaign.id == campaign_id))
    assert sorted(ledgers) == sorted(f"farm-shard {campaign_id}/{i}" for i in shards)  # one commit per shard
    assert db_hits == sum(f["hits"] for s in shards.values() for f in s["findings"])
    assert db_execs == sum(s["executions"] for s in shards.values())


def _one_finding_per_bug(engine, required: tuple[str, ...] = ("BZ-03",)) -> dict[str, int]:
    with session_scope(engine) as session:
        rows = session.execute(select(Finding.known_bug, func.count()).group_by(Finding.known_bug)).all()
    per_bug = {bug: n for bug, n in rows if bug}
    for bug in required:
        assert per_bug.get(bug) == 1, per_bug
    assert all(n == 1 for n in per_bug.values()), per_bug
    return per_bug


def test_farm_campaign_finds_bz03_and_bz04_once_each(farm_setup) -> None:
    farm, engine = farm_setup
    names = ["w1@farmtest", "w2@farmtest"]
    for name in names:
        farm.start_worker(name)
    farm.wait_for_workers(names)
    coordinator = farm.start_coordinator("--variant", "seed-3of2", "--seconds", "30", "--shards", "2",
                                         "--shard-seconds", "10", "--no-minimise")
    deadline, status = time.monotonic() + 40, {}
    while time.monotonic() < deadline:  # both workers busy, as `farm status` shows them
        status = json.loads(farm.cli("farm", "status", "--json").stdout)
        if status["shards"]["running"] + status["shards"]["done"] >= 2:
            break
        time.sleep(1)
    assert sorted(status["workers"]) == names
    assert status["shards"]["running"] + status["shards"]["done"] >= 2, status
    result = farm.finish_coordinator(coordinator, timeout=120)
    assert result["status"] == "finished" and result["executions"] > 0
    per_bug = _one_finding_per_bug(engine, ("BZ-03", "BZ-04"))
    print(f"known bugs found: {per_bug}")
    _exact_counts(farm, engine, result["campaign"])
    shards = farm.state.shards(result["campaign"])
    assert {s["worker"] for s in shards.values()} == set(names)
    assert any(s.get("corpus_pulled", 0) > 0 for s in shards.values())  # later shards start from the merged corpus
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(CorpusEntry)) > 0


def test_killed_worker_shard_is_redone_once(farm_setup) -> None:
    farm, engine = farm_setup
    victim, survivor = "w1@farmtest", "w2@farmtest"
    processes = {name: farm.start_worker(name) for name in (victim, survivor)}
    farm.wait_for_workers([victim, survivor])
    coordinator = farm.start_coordinator("--variant", "seed-3of2", "--seconds", "20", "--shards", "2",
                                         "--shard-seconds", "10", "--no-minimise")
    campaign_id, killed_shard = None, None
    deadline = time.monotonic() + 60
    while killed_shard is None and time.monotonic() < deadline:
        campaign_id = farm.state.current()
        for shard_id, s in (farm.state.shards(campaign_id) if campaign_id else {}).items():
            if s.get("state") == "running" and s.get("worker") == victim and s.get("executions", 0) > 0:
                killed_shard = shard_id
        time.sleep(0.2)
    assert killed_shard is not None, farm.log_tails()
    descendants = children(processes[victim].pid)
    assert descendants  # the pool process and the fuzzing process
    os.kill(processes[victim].pid, signal.SIGKILL)
    processes[victim].wait()
    time.sleep(2)
    assert [pid for pid in descendants if alive(pid)] == []  # nothing orphaned keeps fuzzing
    result = farm.finish_coordinator(coordinator, timeout=150)
    assert result["status"] == "finished", result
    redone = farm.state.shard(result["campaign"], killed_shard)
    assert redone["state"] == "done" and redone["worker"] == survivor and redone["attempts"] == 2, redone
    _one_finding_per_bug(engine)
    _exact_counts(farm, engine, result["campaign"])
