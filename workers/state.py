"""The farm's live state in Redis: campaigns, shard records keyed by shard id, the stop flag."""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

PREFIX = "oomfuzz:farm"
QUEUED, RUNNING, DONE = "queued", "running", "done"
ERROR = "error"  # an attempt failed; the coordinator re-queues the shard or records it as failed
FAILED = "failed"  # every attempt the plan allows failed
SHARD_STATES = (QUEUED, RUNNING, ERROR, DONE, FAILED)
FINISHED_STATES = (DONE, FAILED)
ENDED_TTL = 3600  # seconds the coordinator's wake-up list outlives a coordinator that went away


class BrokerUnreachable(Exception):
    """Redis did not answer: one line for the user."""


def connect(url: str) -> redis.Redis:
    """A Redis client that answered a PING, or ``BrokerUnreachable``.

    The first PING fails fast (a wrong URL is one clear line); the client returned then rides
    out a broker restart, retrying with backoff for about a minute before giving up.
    """
    probe = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10, decode_responses=True)
    try:
        probe.ping()
    except (redis.RedisError, OSError) as exc:
        shown = url.split("@")[-1]
        raise BrokerUnreachable(f"cannot reach the broker (Redis) at {shown}: {exc}") from None
    finally:
        probe.close()
    return redis.Redis.from_url(
        url, socket_connect_timeout=3, socket_timeout=10, decode_responses=True,
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), 40),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )


class FarmState:
    """One Redis hash per campaign for shards (field = shard id), plus small campaign keys."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def _key(self, campaign_id: int, what: str) -> str:
        return f"{PREFIX}:{campaign_id}:{what}"

    def open_campaign(self, campaign_id: int, plan: dict[str, Any]) -> None:
        self.r.set(self._key(campaign_id, "plan"), json.dumps(plan))
        self.r.delete(self._key(campaign_id, "stop"))
        self.r.set(f"{PREFIX}:current", campaign_id)

    def current(self) -> int | None:
        value = self.r.get(f"{PREFIX}:current")
        return int(value) if value else None

    def plan(self, campaign_id: int) -> dict[str, Any] | None:
        text = self.r.get(self._key(campaign_id, "plan"))
        return json.loads(text) if text else None

    def update_plan(self, campaign_id: int, **values: Any) -> None:
        plan = self.plan(campaign_id) or {}
        self.r.set(self._key(campaign_id, "plan"), json.dumps({**plan, **values}))

    def request_stop(self, campaign_id: int) -> None:
        self.r.set(self._key(campaign_id, "stop"), 1)

    def stopping(self, campaign_id: int) -> bool:
        return bool(self.r.exists(self._key(campaign_id, "stop")))

    def shard(self, campaign_id: int, shard_id: int) -> dict[str, Any] | None:
        text = self.r.hget(self._key(campaign_id, "shards"), str(shard_id))
        return json.loads(text) if text else None

    def shards(self, campaign_id: int) -> dict[int, dict[str, Any]]:
        raw = self.r.hgetall(self._key(campaign_id, "shards"))
        return {int(k): json.loads(v) for k, v in sorted(raw.items(), key=lambda kv: int(kv[0]))}

    def poll(self, campaign_id: int, shard_ids: list[int]) -> tuple[dict[int, dict[str, Any]], bool]:
        """The records of ``shard_ids`` that exist, and whether a stop was requested: one round trip."""
        with self.r.pipeline(transaction=False) as pipe:
            if shard_ids:
                pipe.hmget(self._key(campaign_id, "shards"), [str(i) for i in shard_ids])
            pipe.exists(self._key(campaign_id, "stop"))
            replies = pipe.execute()
        texts = replies[0] if shard_ids else []
        return {i: json.loads(t) for i, t in zip(shard_ids, texts) if t}, bool(replies[-1])

    def put_shard(self, campaign_id: int, shard_id: int, **values: Any) -> dict[str, Any]:
        """Merge ``values`` into a shard's record (one writer per shard at a time).

        A shard that ends (done, or an attempt failed) also wakes the coordinator.
        """
        record = {**(self.shard(campaign_id, shard_id) or {}), **values, "updated": time.time()}
        with self.r.pipeline(transaction=False) as pipe:
            pipe.hset(self._key(campaign_id, "shards"), str(shard_id), json.dumps(record))
            if values.get("state") in (DONE, ERROR):
                pipe.rpush(self._key(campaign_id, "ended"), shard_id)
                pipe.expire(self._key(campaign_id, "ended"), ENDED_TTL)
            pipe.execute()
        return record

    def wait_for_shard_end(self, campaign_id: int, timeout: float) -> None:
        """Return when a shard has ended since the last call, or after ``timeout`` seconds."""
        key = self._key(campaign_id, "ended")
        if self.r.blpop([key], timeout=timeout):
            self.r.delete(key)
