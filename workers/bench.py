"""`oomfuzz bench farm`: farm exec/s with one and two workers, against a local job on the same budget."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from typing import Any

from ..db.engine import make_engine, upgrade
from ..fuzzer.campaign import run_jobs
from ..fuzzer.config import CampaignConfig
from .app import FarmSettings, make_app
from .coordinator import Coordinator, FarmPlan
from .state import FarmState, connect

VARIANT = "seed-3of2"


def _start_workers(n: int, settings: FarmSettings, db_url: str, work: str) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "OOMFUZZ_BROKER_URL": settings.broker_url, "OOMFUZZ_DATABASE_URL": db_url,
           "OOMFUZZ_FARM_DIR": work}
    procs = [subprocess.Popen(["oomfuzz", "farm", "worker", "--name", f"bench{i}-{os.getpid()}@localhost",
                               "--loglevel", "WARNING"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for i in range(n)]
    app, deadline = make_app(settings), time.monotonic() + 60
    while len(app.control.inspect(timeout=1.0).ping() or {}) < n and time.monotonic() < deadline:
        time.sleep(0.5)
    return procs


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=60)


def farm_rate(workers: int, seconds: float, settings: FarmSettings, db_url: str) -> dict[str, Any]:
    """Total exec/s of a campaign with ``workers`` workers, one shard each, from an empty worker cache."""
    with tempfile.TemporaryDirectory(prefix="oomfuzz-benchfarm-") as work:
        procs = _start_workers(workers, settings, db_url, work)
        try:
            coordinator = Coordinator(settings, FarmState(connect(settings.broker_url)), make_engine(db_url))
            result = coordinator.run(FarmPlan((VARIANT,), VARIANT, workers, seconds, seconds, minimise=False))
        finally:
            _stop(procs)
    return {"workers": workers, "executions": result["executions"], "seconds": result["seconds"],
            "exec_per_second": result["exec_per_second"]}


def local_rate(seconds: float) -> dict[str, Any]:
    progress = run_jobs(CampaignConfig(variants=(VARIANT,), seconds=seconds, jobs=1))
    return {"executions": progress.executions, "seconds": round(progress.elapsed, 1),
            "exec_per_second": round(progress.exec_per_second, 1)}


def bench_farm(seconds: float, broker_url: str | None, db_url: str) -> dict[str, Any]:
    settings = FarmSettings.from_env(broker_url)
    upgrade(make_engine(db_url))
    local = local_rate(seconds)
    one = farm_rate(1, seconds, settings, db_url)
    two = farm_rate(2, seconds, settings, db_url)
    return {
        "variant": VARIANT, "budget": seconds, "local": local, "farm_1": one, "farm_2": two,
        "scaling": round(two["exec_per_second"] / one["exec_per_second"], 2) if one["exec_per_second"] else None,
        "overhead": round(1 - one["exec_per_second"] / local["exec_per_second"], 3) if local["exec_per_second"] else None,
        "load_average": os.getloadavg(),
    }
