"""The farm survives a broker restart: workers and the coordinator reconnect and carry on."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from oomfuzz.db.engine import make_engine, upgrade
from oomfuzz.db.testing import scratch_postgres  # noqa: F401  (fixture)
from oomfuzz.workers.app import FarmSettings
from oomfuzz.workers.testing import LocalFarm

pytestmark = [pytest.mark.postgres]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis(port: int, data: Path) -> subprocess.Popen[bytes]:
    """A private Redis with an append-only file, so a restart keeps the queue, as in production."""
    try:
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(data)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        pytest.skip("redis-server is not installed: the restart test needs a private Redis")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.1)
    process.kill()
    raise AssertionError("private redis-server did not start")


def test_workers_carry_on_after_redis_restart(scratch_postgres, tmp_path: Path) -> None:  # noqa: F811
    port, data = _free_port(), tmp_path / "redis"
    data.mkdir()
    redis = _redis(port, data)
    db_url = scratch_postgres.create()
    engine = make_engine(db_url)
    upgrade(engine)
    settings = FarmSettings(visibility_timeout=30, restore_interval=1, shard_margin=15)
    farm = LocalFarm(f"redis://127.0.0.1:{port}/0", db_url, tmp_path, settings)
    try:
        names = ["w1@restart", "w2@restart"]
        for name in names:
            farm.start_worker(name)
        farm.wait_for_workers(names)
        coordinator = farm.start_coordinator("--variant", "seed-3of2", "--seconds", "24", "--shards", "2",
                                             "--shard-seconds", "8", "--no-minimise")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # under load: shards running
            campaign = farm.state.current()
            if campaign and any(s.get("state") == "running" for s in farm.state.shards(campaign).values()):
                break
            time.sleep(0.3)
        redis.terminate()
        redis.wait(timeout=20)
        time.sleep(3)  # the broker is away for a while
        redis = _redis(port, data)
        result = farm.finish_coordinator(coordinator, timeout=180)
        assert result["status"] == "finished" and result["executions"] > 0, result
        shards = farm.state.shards(result["campaign"])
        assert shards and all(s["state"] == "done" for s in shards.values()), shards
        for name, process in farm.workers.items():
            assert process.poll() is None, f"{name} died with the broker: {farm.log_tails()}"
    finally:
        farm.stop()
        engine.dispose()
        redis.terminate()
        redis.wait(timeout=20)
