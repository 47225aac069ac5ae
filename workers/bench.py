"""`oomfuzz bench farm`: farm exec/s with one and two workers, against local jobs on the same budget.

The farm's scaling is only meaningful next to the machine's: two local fuzzing processes on the
same budget (``local_2``) say how much a second core gives when nothing but fuzzing runs, and
every run reports ``other_cpu``, the cores that processes outside the benchmark used meanwhile
(busy time in ``/proc/stat`` minus the benchmark's own processes'), so a run that shared the
machine with someone else's work says so. Redis and PostgreSQL count as others.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any

from ..db.engine import make_engine, upgrade
from ..fuzzer.campaign import run_jobs
from ..fuzzer.config import CampaignConfig
from .app import FarmSettings, make_app
from .coordinator import Coordinator, FarmPlan
from .state import FarmState, connect

VARIANT = "seed-3of2"


def _busy_seconds() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine since boot, or None without /proc/stat."""
    try:
        fields = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def _own_seconds() -> float:
    """CPU seconds of this process and of every child it has waited for (theirs included)."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def measured(run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``run()``'s result with ``other_cpu`` and ``steal_cpu``: cores used by others meanwhile."""
    busy0, own0, t0 = _busy_seconds(), _own_seconds(), time.monotonic()
    result = run()
    busy1, own1, wall = _busy_seconds(), _own_seconds(), time.monotonic() - t0
    if busy0 is not None and busy1 is not None and wall > 0:
        result["other_cpu"] = round(max(0.0, busy1[0] - busy0[0] - (own1 - own0)) / wall, 2)
        result["steal_cpu"] = round((busy1[1] - busy0[1]) / wall, 2)
    return result


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
    """Total exec/s of a campaign with ``workers`` workers, one shard each, from an empty corpus.

    Like the local runs, and unlike a real campaign, shards do not pull the shared corpus: what
    earlier runs of the benchmark left in it would make later runs fuzz deeper, slower inputs.
    """
    def run() -> dict[str, Any]:  # workers are reaped inside, so their CPU is the benchmark's own
        with tempfile.TemporaryDirectory(prefix="oomfuzz-benchfarm-") as work:
            procs = _start_workers(workers, settings, db_url, work)
            try:
                coordinator = Coordinator(settings, FarmState(connect(settings.broker_url)), make_engine(db_url))
                return coordinator.run(FarmPlan((VARIANT,), VARIANT, workers, seconds, seconds, minimise=False,
                                                pull_corpus=False))
            finally:
                _stop(procs)

    result = measured(run)
    return {"workers": workers, "executions": result["executions"], "seconds": result["seconds"],
            "exec_per_second": result["exec_per_second"], "other_cpu": result.get("other_cpu"),
            "steal_cpu": result.get("steal_cpu")}


def local_rate(seconds: float, jobs: int = 1) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        progress = run_jobs(CampaignConfig(variants=(VARIANT,), seconds=seconds, jobs=jobs))
        return {"jobs": jobs, "executions": progress.executions, "seconds": round(progress.elapsed, 1),
                "exec_per_second": round(progress.exec_per_second, 1)}

    return measured(run)


def _ratio(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    return round(a["exec_per_second"] / b["exec_per_second"], 2) if b["exec_per_second"] else None


def bench_farm(seconds: float, broker_url: str | None, db_url: str) -> dict[str, Any]:
    settings = FarmSettings.from_env(broker_url)
    upgrade(make_engine(db_url))
    local = local_rate(seconds)
    local_2 = local_rate(seconds, jobs=2)
    one = farm_rate(1, seconds, settings, db_url)
    two = farm_rate(2, seconds, settings, db_url)
    overhead = _ratio(one, local)
    return {
        "variant": VARIANT, "budget": seconds, "local": local, "local_2": local_2, "farm_1": one, "farm_2": two,
        "scaling": _ratio(two, one), "local_scaling": _ratio(local_2, local),
        "overhead": round(1 - overhead, 3) if overhead is not None else None,
        "load_average": os.getloadavg(),
    }
