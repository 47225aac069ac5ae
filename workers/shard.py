"""One farm shard: a fuzzer job in a subprocess, stats streamed to Redis, results committed once.

A shard is exactly a local ``oomfuzz fuzz`` job (``python -m oomfuzz.fuzzer.worker CONFIG``),
run without its own database writes (``record=False``). Its hits reach the database in one
transaction at the end, together with a ledger row (a ``campaign`` row whose ``worker`` names
the shard) and under a lock on the farm campaign's row, so a shard that is delivered twice
(its worker died, or the broker redelivered it) is counted once: the second commit sees the
ledger row and writes nothing. A killed shard loses nothing either: it is re-run from its
seed. Live progress (executions, exec/s, signatures so far) goes to Redis as it streams.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import Engine, func, select

from ..db.engine import make_engine, session_scope
from ..db.models import Campaign
from ..db.store import (
    HitRecord,
    add_corpus_entries,
    corpus_since,
    finish_campaign,
    merged_out_count,
    merged_out_digests,
    record_hit,
    start_campaign,
)
from ..db.url import resolve_url
from ..engine.execute import replay_command
from ..engine.variants import load_variant
from ..fuzzer.config import JobConfig
from ..fuzzer.corpus import digest, open_corpus_dir, write_input
from ..fuzzer.recorder import trace_json
from .app import die_with_parent
from .state import DONE, RUNNING, FarmState

PULL_BATCH = 500  # corpus entries per query (the hub's batch cap)
PULL_MAX = 5_000  # entries pulled per shard start at most; the rest come with later shards
STATS_EVERY = 1.0
_engines: dict[str, Engine] = {}


class ShardFailed(Exception):
    """The shard's fuzzing process ended without a final report."""


@dataclass(frozen=True)
class ShardSpec:
    campaign_id: int
    shard_id: int
    variant: str
    seconds: float
    seed: int
    engine: str = "atheris"
    pull_corpus: bool = True  # False: start from an empty corpus, as a fresh local job does

    @property
    def ledger(self) -> str:
        return f"farm-shard {self.campaign_id}/{self.shard_id}"


def db_engine() -> Engine:
    """This process's engine for ``$OOMFUZZ_DATABASE_URL`` (created lazily, never across fork)."""
    url = resolve_url(None).render_as_string(hide_password=False)
    if url not in _engines:
        _engines[url] = make_engine(url)
    return _engines[url]


def dispose_engines() -> None:
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()


class WorkerCorpus:
    """A worker's copy of one variant's corpus, with its cursor into ``corpus_entry.seq``."""

    def __init__(self, root: Path, variant: str) -> None:
        safe = variant.replace("/", "_")
        self.dir = root / safe
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cursor_file = root / f"{safe}.cursor"
        self.variant = variant

    def names(self) -> set[str]:
        return {p.name for p in self.dir.iterdir() if p.is_file()}

    def pull(self, db: Engine) -> int:
        """Delete what merges dropped, then fetch entries added since the cursor, at most ``PULL_MAX``."""
        cursor, merged_seen = self._read_cursor()
        with session_scope(db) as session:
            merged = merged_out_count(session, self.variant)
            stale = merged_seen is not None and merged != merged_seen
            dropped = merged_out_digests(session, self.variant) if stale else []
        for name in dropped:
            (self.dir / name).unlink(missing_ok=True)
        pulled = 0
        while pulled < PULL_MAX:
            with session_scope(db) as session:
                entries = corpus_since(session, cursor, PULL_BATCH, self.variant)
                for entry in entries:
                    write_input(self.dir, entry.data)
            if entries:
                cursor, pulled = entries[-1].seq, pulled + len(entries)
            if len(entries) < PULL_BATCH:
                break
        self.cursor_file.write_text(f"{cursor} {merged}")
        return pulled

    def _read_cursor(self) -> tuple[int, int | None]:
        """(seq cursor, merged-out count already applied here; None: nothing cached to delete)."""
        try:
            fields = [int(x) for x in self.cursor_file.read_text().split()]
        except (OSError, ValueError):
            return 0, None
        return fields[0], fields[1] if len(fields) > 1 else -1  # a bare seq: a cache from before merging

    def push(self, db: Engine, before: set[str], campaign_id: int) -> int:
        """Add what the shard kept to the database (by content hash: re-runs add nothing twice)."""
        fresh = []
        for name in sorted(self.names() - before):
            data = (self.dir / name).read_bytes()
            if name == digest(data):
                fresh.append(data)
        with session_scope(db) as session:
            return add_corpus_entries(session, self.variant, fresh, "fuzz", campaign_id=campaign_id)


def committed(db: Engine, spec: ShardSpec) -> bool:
    with session_scope(db) as session:
        return session.scalar(select(func.count()).where(Campaign.worker == spec.ledger)) > 0


def commit_shard(db: Engine, spec: ShardSpec, result: dict[str, Any], worker: str) -> bool:
    """Write the shard's hits and its ledger row in one transaction; False if already written."""
    variant = load_variant(spec.variant)
    with session_scope(db) as session:
        session.execute(select(Campaign.id).where(Campaign.id == spec.campaign_id).with_for_update())
        if session.scalar(select(func.count()).where(Campaign.worker == spec.ledger)):
            return False
        for f in sorted(result.get("findings", []), key=lambda f: f["signature"]):
            raw = bytes.fromhex(f["input"])
            hit = HitRecord(f["signature"], f["invariant"], f["title"], f["known_bug"], spec.variant, raw,
                            f["preemptions"], f["steps"], trace_json(variant, raw), replay_command(spec.variant, raw))
            record_hit(session, hit, campaign_id=spec.campaign_id, count=max(1, f["hits"]))
        ledger = start_campaign(session, variant=spec.variant, engine=spec.engine, seed=spec.seed, jobs=1,
                                host=socket.gethostname(), worker=spec.ledger)
        finish_campaign(session, ledger, executions=result.get("executions", 0),
                        exec_per_second=round(exec_rate(result), 1), coverage=result.get("coverage", 0))
    return True


def exec_rate(snapshot: dict[str, Any]) -> float:
    seconds = snapshot.get("seconds", 0.0)
    return snapshot.get("executions", 0) / seconds if seconds > 0 else 0.0


def summary(snapshot: dict[str, Any]) -> dict[str, Any]:
    """What a shard record in Redis keeps of a job snapshot."""
    return {
        "executions": snapshot.get("executions", 0), "seconds": snapshot.get("seconds", 0.0),
        "exec_per_second": round(exec_rate(snapshot), 1), "coverage": snapshot.get("coverage", 0),
        "findings": [{"signature": f["signature"], "known_bug": f["known_bug"], "hits": f["hits"]}
                     for f in snapshot.get("findings", [])],
    }


def run_job_process(spec: ShardSpec, corpus_dir: Path, work: Path,
                    on_stats: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Run the fuzzer job; ``on_stats`` returning False stops it. The last snapshot it sent."""
    read_fd, write_fd = os.pipe()
    config = JobConfig(job=spec.shard_id, variant=spec.variant, engine=spec.engine, seconds=spec.seconds,
                       seed=spec.seed, work_dir=str(work / "job"), corpus_dir=str(corpus_dir), stats_fd=write_fd,
                       report_every=STATS_EVERY)
    (work / "job").mkdir()
    log_path = work / "job.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "oomfuzz.fuzzer.worker", config.to_json()], pass_fds=(write_fd,),
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env={**os.environ, "PYTHONHASHSEED": "0"},
            preexec_fn=die_with_parent,
        )
    os.close(write_fd)
    latest: dict[str, Any] = {}
    final, error, stopped = False, None, False
    try:
        with os.fdopen(read_fd, encoding="utf-8", errors="replace") as pipe:
            for line in pipe:
                msg = _parse(line)
                if msg.get("type") == "error":
                    error = msg.get("message")
                elif msg.get("type") in ("stats", "final"):
                    latest, final = msg, msg["type"] == "final"
                    if not final and not stopped and not on_stats(msg):
                        stopped = True
                        process.send_signal(signal.SIGTERM)
    finally:
        if process.poll() is None and not final:
            process.send_signal(signal.SIGTERM)
        code = process.wait()
    if final or stopped:
        return latest
    raise ShardFailed(error or f"fuzzing process exited with status {code}: {_tail(log_path)}")


def _parse(line: str) -> dict[str, Any]:
    try:
        msg = json.loads(line)
    except ValueError:
        return {}
    return msg if isinstance(msg, dict) else {}


def _tail(path: Path) -> str:
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


def run_shard(spec: ShardSpec, state: FarmState, worker: str, cache_root: Path) -> dict[str, Any]:
    """Run one shard to its end and commit it, or do nothing if it was already committed."""
    db = db_engine()
    key = (spec.campaign_id, spec.shard_id)
    if committed(db, spec):
        return state.put_shard(*key, state=DONE)
    attempts = (state.shard(*key) or {}).get("attempts", 0) + 1
    state.put_shard(*key, state=RUNNING, worker=worker, attempts=attempts, variant=spec.variant,
                    seed=spec.seed, started=time.time(), executions=0, exec_per_second=0.0, findings=[])

    def on_stats(snapshot: dict[str, Any]) -> bool:
        state.put_shard(*key, **summary(snapshot))
        return not state.stopping(spec.campaign_id)

    with tempfile.TemporaryDirectory(prefix=f"oomfuzz-shard{spec.shard_id}-") as tmp:
        corpus = WorkerCorpus(cache_root / _safe(worker) if spec.pull_corpus else Path(tmp) / "empty", spec.variant)
        pulled = corpus.pull(db) if spec.pull_corpus else 0
        before = corpus.names()
        open_corpus_dir(str(corpus.dir))
        result = run_job_process(spec, corpus.dir, Path(tmp), on_stats)
        pushed = corpus.push(db, before, spec.campaign_id)
    if not commit_shard(db, spec, result, worker):  # another attempt committed first: its totals stand
        return state.put_shard(*key, state=DONE, duplicate_attempt=True)
    return state.put_shard(*key, state=DONE, corpus_pulled=pulled, corpus_pushed=pushed, finished=time.time(),
                           **summary(result))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name)
