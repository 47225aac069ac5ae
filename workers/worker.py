"""Starting a farm worker: the one Celery command line that compose, the tests and users run."""

from __future__ import annotations

import socket

from .app import QUEUE, FarmSettings, make_app


def worker_argv(name: str | None, concurrency: int, loglevel: str) -> list[str]:
    """Celery worker arguments: one shard per process, prefork so the main process stays responsive."""
    node = name or f"farm@{socket.gethostname()}"
    return ["worker", f"--hostname={node}", f"--queues={QUEUE}", "--pool=prefork", f"--concurrency={concurrency}",
            f"--loglevel={loglevel}", "--without-gossip", "--without-mingle", "--task-events"]


def run_worker(settings: FarmSettings, name: str | None = None, concurrency: int = 1, loglevel: str = "INFO") -> None:
    make_app(settings).worker_main(worker_argv(name, concurrency, loglevel))
