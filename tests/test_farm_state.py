"""The farm's Redis state: one-round-trip polling of open shards, and the coordinator's wake-up."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from oomfuzz.workers.state import DONE, ERROR, RUNNING, FarmState, connect
from oomfuzz.workers.testing import with_redis_db

pytestmark = [pytest.mark.redis]
STATE_REDIS_DB = 11


@pytest.fixture
def state(redis_url: str) -> Iterator[FarmState]:
    farm_state = FarmState(connect(with_redis_db(redis_url, STATE_REDIS_DB)))
    farm_state.r.flushdb()
    yield farm_state
    farm_state.r.flushdb()


def _waited(state: FarmState, timeout: float) -> float:
    started = time.monotonic()
    state.wait_for_shard_end(7, timeout)
    return time.monotonic() - started


def test_poll_reads_only_the_shards_asked_for_and_the_stop_flag(state: FarmState) -> None:
    for shard_id in range(3):
        state.put_shard(7, shard_id, state=RUNNING, executions=shard_id)
    assert state.poll(7, []) == ({}, False)
    records, stopping = state.poll(7, [2, 0, 9])
    assert sorted(records) == [0, 2] and records[2]["executions"] == 2 and not stopping
    state.request_stop(7)
    assert state.poll(7, [1])[1]


def test_a_shard_that_ends_wakes_the_coordinator_and_progress_does_not(state: FarmState) -> None:
    state.put_shard(7, 0, state=RUNNING)
    state.put_shard(7, 0, executions=10)
    assert _waited(state, 0.3) >= 0.25  # nothing ended: the full timeout
    state.put_shard(7, 0, state=DONE)
    state.put_shard(7, 1, state=ERROR, error="x")
    assert _waited(state, 5.0) < 1.0  # one wake-up for both ...
    assert _waited(state, 0.3) >= 0.25  # ... and the list is drained
