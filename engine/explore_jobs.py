"""The bounded DFS over every scenario, split across local processes.

A search from an empty start walks every scenario (2,520 of them) and, for each, every
schedule within the bound; scenarios share nothing, so they split cleanly. Job ``r`` of ``n``
takes every n-th scenario in the order the single-process search draws them and runs the same
passes: every schedule with 0 deviations of each of its scenarios, then every one with at most
1, and so on. The parent merges what the jobs stream back. A pass over bound K has ended when
every job has ended it, and only then is it reported, so the guarantee is the single-process
one: every schedule within K of every scenario ran. It is reported with the executions the
passes up to it took, summed over the jobs: the number one process reports.

The executions are the same as the single-process search's, in another order. What is not
deterministic is only the bookkeeping that depends on timing: which job reports a signature
first (``first_execution`` counts executions merged so far) and when a budget in seconds runs
out. A signature's recorded input is the one with the fewest preemptions (then steps, then
bytes), whichever job found it first.

Jobs are forked processes running the variant class the parent loaded; they send the parent
plain data only (counts, signatures, input bytes) and the parent never runs code it receives.
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue as queue_module
import time
from dataclasses import dataclass
from typing import Any, Callable

from .execute import execute, replay
from .explore import ExploreResult, FoundBug, record
from .kernel import Kernel
from .runtime.strategies import BoundedDFS
from .scenario import DIMENSIONS, Scenario

REPORT_EVERY = 0.5  # seconds between a job's progress messages
DEAD_GRACE = 2.0  # seconds a dead job's last messages get to arrive before it counts as crashed


def all_scenarios() -> list[Scenario]:
    """Every scenario, in the order the single-process DFS enumerates them (data choices in
    draw order, the first dimension outermost)."""
    names = [name for name, _ in DIMENSIONS]
    return [Scenario(**dict(zip(names, values))) for values in itertools.product(*(v for _, v in DIMENSIONS))]


@dataclass
class _Budget:
    deadline: float | None
    executions: int | None

    def spent(self, done: int) -> bool:
        if self.executions is not None and done >= self.executions:
            return True
        return self.deadline is not None and time.time() >= self.deadline


def _job(variant: type[Kernel], mine: list[Scenario], job: int, bound: int, budget: _Budget, out: Any) -> None:
    """One job: the DFS passes over its share of the scenarios, streamed to ``out``."""
    result = ExploreResult(variant.NAME, "dfs")
    sent = {"executions": 0, "inconclusive": 0, "errors": 0}
    next_report = time.monotonic() + REPORT_EVERY

    def report(kind: str, **extra: Any) -> None:
        findings = {sig: (f.invariant, f.title, f.known_bug, f.input, f.preemptions, f.steps, f.hits)
                    for sig, f in result.findings.items()}
        errors = [e.input for e in result.engine_errors[sent["errors"]:]]
        out.put((kind, job, {
            "executions": result.executions - sent["executions"],
            "inconclusive": result.inconclusive - sent["inconclusive"],
            "findings": findings,
            "errors": errors,
            **extra,
        }))
        sent.update(executions=result.executions, inconclusive=result.inconclusive, errors=len(result.engine_errors))

    try:
        for pass_bound in range(bound + 1):
            for scenario in mine:
                strategy = BoundedDFS(pass_bound, iterative=False)
                while strategy.begin():
                    if budget.spent(result.executions):
                        report("end", exhausted=False)
                        return
                    ex = execute(variant, strategy, scenario=scenario)
                    strategy.end(ex.run)
                    record(result, ex)
                    now = time.monotonic()
                    if now >= next_report:
                        report("tick")
                        next_report = now + REPORT_EVERY
            report("pass", bound=pass_bound, at=result.executions)
        report("end", exhausted=True)
    except KeyboardInterrupt:
        return
    except BaseException as exc:  # an engine bug outside one execution: the parent says so
        out.put(("crash", job, {"error": f"{type(exc).__name__}: {exc}"}))


class JobCrashed(RuntimeError):
    """A job died outside any single execution (an engine bug, or the process was killed)."""


def explore_dfs_jobs(
    variant: type[Kernel],
    *,
    jobs: int,
    preemptions: int = 2,
    seconds: float | None = None,
    executions: int | None = None,
    on_progress: Callable[[ExploreResult], None] | None = None,
    progress_every: float = 0.5,
    scenarios: list[Scenario] | None = None,
) -> ExploreResult:
    """The bounded DFS over every scenario (or over ``scenarios``, in that order), in ``jobs``
    processes; see the module docstring."""
    scenarios = all_scenarios() if scenarios is None else scenarios
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start = time.perf_counter()
    deadline = None if seconds is None else time.time() + seconds
    procs = []
    for job in range(jobs):
        share = None if executions is None else executions // jobs + (job < executions % jobs)
        proc = ctx.Process(target=_job, args=(variant, scenarios[job::jobs], job, preemptions, _Budget(deadline, share), out),
                           name=f"oomfuzz-dfs-{job}", daemon=True)
        proc.start()
        procs.append(proc)
    result = ExploreResult(variant.NAME, "dfs", jobs=jobs)
    merger = _Merger(variant, result, jobs)
    next_report = start + progress_every
    dead_since: dict[int, float] = {}
    try:
        while len(merger.ended) < jobs:
            try:
                kind, job, body = out.get(timeout=0.2)
            except queue_module.Empty:
                kind = None
            if kind == "crash":
                raise JobCrashed(f"DFS job {job} failed: {body['error']}")
            if kind is not None:
                merger.merge(kind, job, body)
            now = time.perf_counter()
            for i, proc in enumerate(procs):
                # A job's last messages may still be in the pipe when it is seen dead: a grace.
                if i not in merger.ended and not proc.is_alive():
                    if now - dead_since.setdefault(i, now) > DEAD_GRACE:
                        raise JobCrashed(f"DFS job {i} exited with code {proc.exitcode} before it finished")
            if on_progress is not None and now >= next_report:
                result.seconds = now - start
                on_progress(result)
                next_report = now + progress_every
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(timeout=5)
        out.close()
    result.exhausted = merger.exhausted == jobs
    result.seconds = time.perf_counter() - start
    return result


class _Merger:
    """Folds the jobs' messages into one ``ExploreResult``."""

    def __init__(self, variant: type[Kernel], result: ExploreResult, jobs: int) -> None:
        self.variant = variant
        self.result = result
        self.jobs = jobs
        self.hits: dict[str, dict[int, int]] = {}  # signature -> job -> hits so far
        self.pass_ends: dict[int, dict[int, int]] = {}  # bound -> job -> its executions when the pass ended
        self.ended: set[int] = set()
        self.exhausted = 0

    def merge(self, kind: str, job: int, body: dict[str, Any]) -> None:
        result = self.result
        result.executions += body["executions"]
        result.inconclusive += body["inconclusive"]
        for raw in body["errors"]:
            if len(result.engine_errors) < 10:
                result.engine_errors.append(replay(self.variant, raw))
        for sig, (invariant, title, known_bug, raw, preemptions, steps, hits) in body["findings"].items():
            entry = result.findings.get(sig)
            if entry is None:
                entry = result.findings[sig] = FoundBug(
                    sig, invariant, title, known_bug, result.variant, raw, preemptions, steps, hits=0,
                    first_execution=result.executions,
                )
            if (preemptions, steps, raw) < (entry.preemptions, entry.steps, entry.input):
                entry.input, entry.preemptions, entry.steps = raw, preemptions, steps
            per_job = self.hits.setdefault(sig, {})
            per_job[job] = hits
            entry.hits = sum(per_job.values())
        if kind == "pass":
            self.pass_ends.setdefault(body["bound"], {})[job] = body["at"]
            # Counted as one process would: the executions of every pass up to this one.
            while len(ends := self.pass_ends.get(len(result.passes), {})) == self.jobs:
                result.passes.append((len(result.passes), sum(ends.values())))
        elif kind == "end":
            self.ended.add(job)
            self.exhausted += bool(body["exhausted"])
