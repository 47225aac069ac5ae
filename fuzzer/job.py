"""One fuzzing job inside its process: the Atheris or baseline loop, reporting and syncing.

All engines share one loop body (``Job.observe`` then ``Job.tick``): the harness routes the
execution, the recorder writes findings, and every ``report_every`` seconds one JSON line of
totals goes to the parent over the stats pipe. Atheris calls the loop body from libFuzzer's
``TestOneInput``; the baselines call it after each execution they drive. The job ends itself at
its deadline (flushing hits, syncing the corpus, sending the final report) rather than
letting libFuzzer exit the process under it; ``-max_total_time`` is only a backstop.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..db.engine import make_engine, session_scope
from ..db.errors import DatabaseError
from ..db.store import corpus_since
from ..db.url import resolve_url
from ..engine.bench import REFERENCE
from ..engine.execute import execute
from ..engine.explore import make_strategy
from ..engine.variants import VariantError, load_variant
from .config import JobConfig
from .corpus import MAX_INPUT_LEN, CorpusError, digest, open_corpus_dir, scan_corpus, scenario_seeds, write_input
from .coverage import CounterMap
from .harness import Harness
from .recorder import Recorder
from .scenarios import ScenarioScheduler

SYNC_EVERY = 2.0
DB_CORPUS_LIMIT = 10_000


class Job:
    """State of one job: harness, recorder, stats pipe, corpus directories."""

    def __init__(self, config: JobConfig, variant: Any, db: Any, counters: CounterMap) -> None:
        self.config = config
        self.variant = variant
        self.recorder = Recorder(db, config.campaign_id, variant)
        fixed = bytes(REFERENCE.choices()) if config.reference_scenario else None
        self.scenarios = ScenarioScheduler() if config.engine == "atheris" else None
        self.harness = Harness(variant, self.recorder, counters, fixed_data=fixed, scenarios=self.scenarios)
        self.out = os.fdopen(config.stats_fd, "w", buffering=1) if config.stats_fd is not None else None
        self.work = Path(config.work_dir)
        self.user_corpus = open_corpus_dir(config.corpus_dir) if config.corpus_dir else None
        self.synced: set[str] = set()
        self.deadline = time.monotonic() + config.seconds
        now = time.monotonic()
        self._next_report, self._next_sync = now + config.report_every, now + SYNC_EVERY
        self.finished = False

    def send(self, kind: str, **payload: Any) -> None:
        if self.out is not None:
            self.out.write(json.dumps({"type": kind, "job": self.config.job, **payload}) + "\n")

    def observe(self, ex: Any) -> None:
        self.harness.observe(ex)
        self.tick()

    def tick(self) -> bool:
        """Periodic work; True once the deadline has passed."""
        now = time.monotonic()
        if now >= self._next_report:
            self.send("stats", corpus=len(self.synced), **self.harness.snapshot())
            self._next_report = now + self.config.report_every
        self.recorder.tick(now)
        if now >= self._next_sync and self.config.engine == "atheris":
            self.sync_corpus()
            self._next_sync = now + SYNC_EVERY
        return now >= self.deadline

    def seed_corpus(self, db: Any) -> int:
        """Fill the private libFuzzer directory: scenario seeds, the user's corpus, the DB's."""
        inputs = list(scenario_seeds())
        if self.user_corpus is not None:
            inputs += scan_corpus(self.user_corpus).inputs  # the parent already warned about garbage
        if db is not None:
            with session_scope(db) as session:
                inputs += [e.data for e in corpus_since(session, 0, DB_CORPUS_LIMIT, self.variant.NAME)]
        for data in inputs:
            if len(data) <= MAX_INPUT_LEN:
                write_input(self.work, data)
                self.synced.add(digest(data))
        return len(self.synced)

    def sync_corpus(self) -> None:
        """Copy inputs libFuzzer kept since the last sync to the corpus directory and the DB."""
        fresh = []
        for entry in os.scandir(self.work):
            if entry.name in self.synced or entry.name.startswith("."):
                continue
            data = Path(entry.path).read_bytes()
            name = digest(data)
            self.synced.add(entry.name)
            if name in self.synced:
                continue
            self.synced.add(name)
            if self.user_corpus is not None:
                write_input(self.user_corpus, data)
            fresh.append(data)
        self.recorder.corpus(fresh)

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.recorder.flush()
        if self.config.engine == "atheris":
            self.sync_corpus()
        self.send("final", corpus=len(self.synced), **self.harness.snapshot())
        if self.out is not None:
            self.out.flush()


def run_strategy(job: Job) -> None:
    """The random / PCT baseline: the strategy drives executions in the same loop."""
    strategy = make_strategy(job.config.engine, seed=job.config.seed, preemptions=0)
    while True:
        strategy.begin()
        ex = execute(job.variant, strategy)
        strategy.end(ex.run)
        job.harness.observe(ex)
        if job.tick():
            break


def run_atheris(job: Job) -> None:
    """libFuzzer drives; the job ends the process itself at its deadline."""
    import atheris

    from .mutator import make_custom_mutator

    def test_one_input(data: bytes) -> None:
        try:
            job.harness.run_input(data)
            if job.tick():
                job.finish()
                os._exit(0)
        except (DatabaseError, CorpusError) as exc:  # libFuzzer would call it a crash of the target
            job.send("error", message=str(exc))
            os._exit(3)

    args = [
        sys.argv[0], f"-max_total_time={int(job.config.seconds) + 30}", f"-seed={job.config.seed % 2**31 or 1}",
        f"-rss_limit_mb={job.config.rss_limit_mb}", f"-max_len={MAX_INPUT_LEN}", "-timeout=60",
        "-print_final_stats=0", f"-artifact_prefix={job.work}{os.sep}", str(job.work),
    ]
    # The reference measurement fixes the scenario and measures the harness with the structural
    # and libFuzzer mutations alone, in the deviation form the engine benchmark uses.
    mutator = make_custom_mutator(job.scenarios, schedules=not job.config.reference_scenario)
    atheris.Setup(args, test_one_input, custom_mutator=mutator)
    atheris.Fuzz()


def run_job(config: JobConfig) -> int:
    """Run one job to its deadline; 0 on success, 3 when the database or corpus failed."""
    counters = CounterMap.reserve() if config.engine == "atheris" else CounterMap.disabled()
    job = None
    try:
        variant = load_variant(config.variant)
        db = make_engine(resolve_url(None)) if config.record else None
        job = Job(config, variant, db, counters)
        if config.engine == "atheris":
            job.seed_corpus(db)
            run_atheris(job)
        else:
            run_strategy(job)
        job.finish()
        return 0
    except (DatabaseError, CorpusError, VariantError) as exc:
        message = str(exc)
    if job is not None:
        job.send("error", message=message)
    else:
        fd = config.stats_fd
        if fd is not None:
            os.write(fd, (json.dumps({"type": "error", "job": config.job, "message": message}) + "\n").encode())
    return 3
