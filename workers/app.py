"""The Celery app of the fuzz farm: Redis broker, JSON only, late acks, settings from the environment."""

from __future__ import annotations

import ctypes
import os
import signal
from dataclasses import dataclass

from celery import Celery
from celery.signals import worker_process_init

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
QUEUE = "oomfuzz"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class FarmSettings:
    """What a worker and the coordinator must agree on; read from ``OOMFUZZ_*`` variables."""

    broker_url: str = DEFAULT_BROKER_URL
    visibility_timeout: int = 3600  # seconds: a shard (plus start-up) must always be shorter
    restore_interval: int = 10  # seconds between sweeps that hand a dead worker's shard to another
    shard_margin: int = 120  # seconds a shard may run past its budget before its time limit kills it

    @classmethod
    def from_env(cls, broker_url: str | None = None) -> "FarmSettings":
        env = os.environ
        return cls(
            broker_url=broker_url or env.get("OOMFUZZ_BROKER_URL") or DEFAULT_BROKER_URL,
            visibility_timeout=int(env.get("OOMFUZZ_FARM_VISIBILITY_TIMEOUT", cls.visibility_timeout)),
            restore_interval=int(env.get("OOMFUZZ_FARM_RESTORE_INTERVAL", cls.restore_interval)),
            shard_margin=int(env.get("OOMFUZZ_FARM_SHARD_MARGIN", cls.shard_margin)),
        )

    @property
    def longest_shard(self) -> int:
        """The longest shard budget whose message cannot become visible again while it runs."""
        return self.visibility_timeout - self.shard_margin


def make_app(settings: FarmSettings) -> Celery:
    app = Celery("oomfuzz", broker=settings.broker_url, include=["oomfuzz.workers.tasks"])
    app.conf.update(
        accept_content=["json"],
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        task_time_limit=settings.visibility_timeout,
        task_soft_time_limit=settings.visibility_timeout - 10,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": settings.restore_interval,
            "unacked_restore_throttle": 1,
            "socket_timeout": 10,
            "socket_connect_timeout": 5,
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=True,
    )
    app.farm_settings = settings  # type: ignore[attr-defined]
    return app


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies, so no orphan keeps fuzzing."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


@worker_process_init.connect
def _fresh_pool_process(**_: object) -> None:
    """A forked pool process must not reuse the parent's database connections."""
    from . import shard

    shard.dispose_engines()
    die_with_parent()


app = make_app(FarmSettings.from_env())
