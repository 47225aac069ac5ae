"""The bounded DFS over every scenario, split across local processes.

A search from an empty start walks every scenario (3,150 of them) and, for each, every
schedule within the bound; scenarios share nothing, so they split cleanly. The work is the
single-process search's own sequence of items: the pass over bound 0 of each scenario in the
order one process draws them, then the pass over ≤ 1 of each, and so on. Jobs take the next
item from a shared counter as they become free, so a job that drew cheap scenarios does not sit
idle while another works through expensive ones (scenario costs differ by 30×, and a fixed
split by index lines up with the dimensions: with two jobs, one would get every
``oom_kill_allocating_task`` scenario). The parent merges what the jobs stream back. A pass
over bound K has ended when every scenario's item of it, and of every lower pass, has ended;
only then is it reported, so the guarantee is the single-process one: every schedule within K
of every scenario ran. It is reported with the executions of those passes: the number one
process reports.

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


@dataclass(frozen=True)
class _Budget:
    """The campaign's budget, shared by its jobs: a wall-clock deadline (``time.time()``) and
    a number of executions, counted in ``taken`` (a shared counter) as the jobs start them."""

    deadline: float | None
    executions: int | None
    taken: Any

    def take(self) -> bool:
        """May one more execution start? (It is counted if so.)"""
        if self.deadline is not None and time.time() >= self.deadline:
            return False
        if self.executions is None:
            return True
        with self.taken.get_lock():
            if self.taken.value >= self.executions:
                return False
            self.taken.value += 1
            return True


def _job(variant: type[Kernel], scenarios: list[Scenario], job: int, bound: int, budget: _Budget,
         counter: Any, out: Any) -> None:
    """One job: takes items (pass, scenario) from ``counter`` until none are left, streaming
    its progress to ``out``."""
    result = ExploreResult(variant.NAME, "dfs")
    sent = {"executions": 0, "inconclusive": 0, "errors": 0}
    next_report = time.monotonic() + REPORT_EVERY
    items = (bound + 1) * len(scenarios)

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
        while True:
            with counter.get_lock():
                item = counter.value
                counter.value += 1
            if item >= items:
                break
            pass_bound, scenario = divmod(item, len(scenarios))
            strategy, before = BoundedDFS(pass_bound, iterative=False), result.executions
            while strategy.begin():
                if not budget.take():
                    report("end", exhausted=False)
                    return
                ex = execute(variant, strategy, scenario=scenarios[scenario])
                strategy.end(ex.run)
                record(result, ex)
                now = time.monotonic()
                if now >= next_report:
                    report("tick")
                    next_report = now + REPORT_EVERY
            report("item", bound=pass_bound, executions_of_item=result.executions - before)
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
    counter = ctx.Value("q", 0)  # the next item to take: pass * len(scenarios) + scenario
    start = time.perf_counter()
    deadline = None if seconds is None else time.time() + seconds
    budget = _Budget(deadline, executions, ctx.Value("q", 0))
    procs = []
    for job in range(jobs):
        proc = ctx.Process(target=_job, name=f"oomfuzz-dfs-{job}", daemon=True,
                           args=(variant, scenarios, job, preemptions, budget, counter, out))
        proc.start()
        procs.append(proc)
    result = ExploreResult(variant.NAME, "dfs", jobs=jobs)
    merger = _Merger(variant, result, jobs, len(scenarios))
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
    if result.exhausted:
        result.pass_scenarios = None
    result.seconds = time.perf_counter() - start
    return result


class _Merger:
    """Folds the jobs' messages into one ``ExploreResult``."""

    def __init__(self, variant: type[Kernel], result: ExploreResult, jobs: int, scenarios: int) -> None:
        self.variant = variant
        self.result = result
        self.jobs = jobs
        self.scenarios = scenarios
        self.hits: dict[str, dict[int, int]] = {}  # signature -> job -> hits so far
        self.items_done: dict[int, int] = {}  # bound -> scenarios whose pass over it ended
        self.pass_executions: dict[int, int] = {}  # bound -> executions those took
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
        if kind == "item":
            bound = body["bound"]
            self.items_done[bound] = self.items_done.get(bound, 0) + 1
            self.pass_executions[bound] = self.pass_executions.get(bound, 0) + body["executions_of_item"]
            # Counted as one process would: the executions of every pass up to this one.
            while self.items_done.get(done := len(result.passes), 0) == self.scenarios:
                total = sum(self.pass_executions[b] for b in range(done + 1))
                result.passes.append((done, total))
            result.pass_scenarios = (self.items_done.get(len(result.passes), 0), self.scenarios)
        elif kind == "end":
            self.ended.add(job)
            self.exhausted += bool(body["exhausted"])
