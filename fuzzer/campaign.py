"""A campaign: N fuzzing processes, their live totals, and the deduplicated, minimised findings.

The parent never fuzzes. It records the campaign, spreads the variants over ``jobs`` slots
(each slot runs its variants in turn, one child process per variant, splitting the slot's
time), reads every child's JSON stats lines from a pipe, and hands a ``Progress`` to the
caller's callback. Children write findings to the database themselves; the parent only keeps
their reports, so the findings table shows what *this* campaign saw. When every child is done
it minimises each signature once (on the variant its smallest input came from), confirms the
result replays deterministically, stores it with ``update_reproducer`` (``flaky`` when it does
not), and closes the campaign row with its totals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .config import CampaignConfig, JobConfig
from .corpus import open_corpus_dir, scan_corpus
from .results import CampaignResult, FindingSummary, Progress, merge_findings

POLL_SECONDS = 0.25
STATS_EVERY = 5.0


@dataclass
class _Run:
    """One child process: a job slot fuzzing one variant."""

    slot: int
    variant: str
    latest: dict[str, Any] = field(default_factory=dict)
    final: bool = False
    error: str | None = None
    process: subprocess.Popen[bytes] | None = None


def plan_slots(variants: tuple[str, ...], jobs: int) -> list[list[str]]:
    """Variants per job slot: round-robin, so ``--variant all --jobs 2`` splits the list."""
    if len(variants) >= jobs:
        return [list(variants[i::jobs]) for i in range(jobs)]
    return [[variants[i % len(variants)]] for i in range(jobs)]


class Campaign:
    """The running campaign: child processes and what they reported."""

    def __init__(self, config: CampaignConfig, campaign_id: int | None, work: Path) -> None:
        self.config, self.campaign_id, self.work = config, campaign_id, work
        self.runs: list[_Run] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.started = time.monotonic()

    def run_slot(self, slot: int, variants: list[str]) -> None:
        """Run a slot's variants one after the other (a thread per slot)."""
        share = self.config.seconds / len(variants)
        for i, variant in enumerate(variants):
            if self.stopping.is_set():
                return
            run = self.start_run(slot, variant)
            seed = self.config.seed * 1000 + slot * 37 + i
            self.run_child(run, JobConfig(
                job=slot, variant=variant, engine=self.config.engine, seconds=share, seed=seed,
                work_dir=str(self.work_dir(slot, variant)), record=self.config.db_url is not None,
                campaign_id=self.campaign_id, corpus_dir=self.config.corpus_dir,
                rss_limit_mb=self.config.rss_limit_mb,
            ))

    def start_run(self, slot: int, variant: str) -> _Run:
        run = _Run(slot, variant)
        with self.lock:
            self.runs.append(run)
        return run

    def work_dir(self, slot: int, variant: str) -> Path:
        path = self.work / f"job{slot}-{variant.replace('/', '_')}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def run_child(self, run: _Run, job: JobConfig) -> None:
        """Start one child process and follow its stats pipe until it exits."""
        read_fd, write_fd = os.pipe()
        job = JobConfig(**{**job.__dict__, "stats_fd": write_fd})
        log_path = self.work / f"job{run.slot}-{run.variant.replace('/', '_')}.log"
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        if self.config.db_url is not None:
            env["OOMFUZZ_DATABASE_URL"] = self.config.db_url  # not in argv, where ps shows passwords
        with open(log_path, "wb") as log:
            run.process = subprocess.Popen(
                [sys.executable, "-m", "oomfuzz.fuzzer.worker", job.to_json()],
                pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
            )
        os.close(write_fd)
        with os.fdopen(read_fd, encoding="utf-8", errors="replace") as pipe:
            for line in pipe:
                self._message(run, line)
        code = run.process.wait()
        if not run.final and run.error is None and not self.stopping.is_set():
            run.error = f"job {run.slot} ({run.variant}) exited with status {code}: {_tail(log_path)}"

    def _message(self, run: _Run, line: str) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            return
        with self.lock:
            if msg.get("type") == "error":
                run.error = f"job {run.slot} ({run.variant}): {msg.get('message')}"
            elif msg.get("type") in ("stats", "final"):
                run.latest = msg
                run.final = msg["type"] == "final"

    def progress(self) -> Progress:
        with self.lock:
            snapshots = [r.latest for r in self.runs if r.latest]
            errors = [r.error for r in self.runs if r.error]
        return Progress.from_snapshots(time.monotonic() - self.started, self.config.seconds, snapshots, errors)

    def stop(self) -> None:
        """Stop every child this campaign started (SIGTERM to each, by its pid)."""
        self.stopping.set()
        with self.lock:
            processes = [r.process for r in self.runs if r.process is not None]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)


def _tail(path: Path) -> str:
    """The last meaningful line of a job's log, for a one-line error."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    interesting = [ln for ln in lines if not ln.startswith(("#", "INFO:"))]
    return (interesting or lines or ["no output"])[-1][:300] + f" (log: {path})"


def run_jobs(
    config: CampaignConfig,
    *,
    campaign_id: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    stop_when: Callable[[Progress], bool] | None = None,
) -> Progress:
    """Run the campaign's child processes to the end (or until ``stop_when``); their totals."""
    with tempfile.TemporaryDirectory(prefix="oomfuzz-") as tmp:
        campaign = Campaign(config, campaign_id, Path(tmp))
        try:
            _supervise(campaign, config, on_progress, stop_when)
        except BaseException:
            campaign.stop()
            raise
        return campaign.progress()


def run_campaign(
    config: CampaignConfig,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> CampaignResult:
    """Record a campaign, run it, minimise and store its findings, and return them."""
    from .store import CampaignStore

    warnings: list[str] = []
    if config.corpus_dir:
        warnings = scan_corpus(open_corpus_dir(config.corpus_dir)).warnings
        for warning in warnings:
            (on_warning or (lambda w: None))(warning)
    store = CampaignStore.open(config)
    next_stats = [time.monotonic() + STATS_EVERY]

    def progress_and_stats(progress: Progress) -> None:
        if on_progress is not None:
            on_progress(progress)
        if time.monotonic() >= next_stats[0]:
            store.update(progress)
            next_stats[0] = time.monotonic() + STATS_EVERY

    try:
        progress = run_jobs(config, campaign_id=store.campaign_id, on_progress=progress_and_stats)
    except KeyboardInterrupt:
        store.finish_interrupted()
        raise
    summaries = store.minimise_all(merge_findings(progress.snapshots), config)
    store.finish(progress, "failed" if progress.errors else "finished")
    return CampaignResult.build(config, store.campaign_id, progress, summaries, warnings)


def _supervise(campaign: Campaign, config: CampaignConfig, on_progress: Callable[[Progress], None] | None,
               stop_when: Callable[[Progress], bool] | None) -> None:
    threads = [
        threading.Thread(target=campaign.run_slot, args=(slot, variants), daemon=True)
        for slot, variants in enumerate(plan_slots(config.variants, config.jobs))
    ]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        time.sleep(POLL_SECONDS)
        progress = campaign.progress()
        if on_progress is not None:
            on_progress(progress)
        if stop_when is not None and stop_when(progress):
            campaign.stop()
    for thread in threads:
        thread.join()


__all__ = ["run_campaign", "run_jobs", "plan_slots", "CampaignResult", "FindingSummary", "Progress"]
