"""Exploration campaigns in one process: drive a strategy over many executions, dedup findings.

``explore`` runs executions of one variant until a budget (seconds, executions, or the
strategy's exhaustion for bounded DFS) is spent, and keeps one entry per finding signature:
the first input, the fewest-preemption input seen, and the hit count. Nothing here knows about
databases or the CLI; callers render or store the ``ExploreResult``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .execute import Execution, execute, replay, replay_command
from .kernel import Kernel
from .runtime.strategies import PCT, BoundedDFS, RandomWalk
from .scenario import DIMENSIONS, Scenario

STRATEGIES = ("random", "pct", "dfs")


@dataclass
class FoundBug:
    """One deduplicated finding of a campaign."""

    signature: str
    invariant: str
    title: str
    known_bug: str | None
    variant: str
    input: bytes
    preemptions: int
    steps: int
    hits: int = 1
    first_execution: int = 0

    @property
    def replay(self) -> str:
        return replay_command(self.variant, self.input)

    def as_dict(self) -> dict[str, Any]:
        return {
            "invariant": self.invariant,
            "title": self.title,
            "signature": self.signature,
            "known_bug": self.known_bug,
            "preemptions": self.preemptions,
            "steps": self.steps,
            "hits": self.hits,
            "first_execution": self.first_execution,
            "input": self.input.hex(),
            "replay": self.replay,
        }


@dataclass
class ExploreResult:
    variant: str
    strategy: str
    executions: int = 0
    seconds: float = 0.0
    exhausted: bool = False
    findings: dict[str, FoundBug] = field(default_factory=dict)
    engine_errors: list[Execution] = field(default_factory=list)
    inconclusive: int = 0
    # DFS only: each finished pass, as (bound, executions when it ended). A pass over bound K
    # ran every schedule with at most K preemptions (of the fixed scenario, or of every one).
    passes: list[tuple[int, int]] = field(default_factory=list)
    jobs: int = 1  # processes the DFS's scenarios were split across
    # DFS over every scenario, while a pass is unfinished: (scenarios whose part of it ended, all).
    pass_scenarios: tuple[int, int] | None = None

    @property
    def complete_bound(self) -> int | None:
        """The highest bound whose every schedule ran; None when no pass has ended."""
        return self.passes[-1][0] if self.passes else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "strategy": self.strategy,
            "executions": self.executions,
            "seconds": round(self.seconds, 3),
            "exec_per_second": round(self.executions / self.seconds, 1) if self.seconds else 0.0,
            "exhausted": self.exhausted,
            "inconclusive": self.inconclusive,
            **({"dfs": {
                "complete_bound": self.complete_bound,
                "passes": [{"bound": b, "executions": n} for b, n in self.passes],
                "jobs": self.jobs,
                "current_pass": None if self.pass_scenarios is None else {
                    "bound": len(self.passes), "scenarios_done": self.pass_scenarios[0],
                    "scenarios": self.pass_scenarios[1],
                },
            }} if self.strategy == "dfs" else {}),
            "engine_errors": [
                {"input": e.input.hex(), "replay": replay_command(e.variant, e.input), "error": e.run.error}
                for e in self.engine_errors
            ],
            "findings": [f.as_dict() for f in sorted(self.findings.values(), key=lambda f: f.first_execution)],
        }


def make_strategy(name: str, *, seed: int, preemptions: int, depth: int = 3) -> Any:
    if name == "random":
        return RandomWalk(seed)
    if name == "pct":
        return PCT(seed, depth=depth)
    if name == "dfs":
        return BoundedDFS(preemptions)
    raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def record(result: ExploreResult, ex: Execution) -> FoundBug | None:
    """Count one execution into the campaign; return the entry if it was a new signature."""
    result.executions += 1
    if ex.status == "engine_error":
        if len(result.engine_errors) < 10:
            result.engine_errors.append(ex)
        return None
    if ex.status == "inconclusive":
        result.inconclusive += 1
        return None
    f = ex.finding
    if f is None:
        return None
    entry = result.findings.get(f.signature)
    if entry is None:
        entry = FoundBug(
            f.signature, f.invariant, f.title, f.known_bug, ex.variant, ex.input, ex.preemptions, ex.steps,
            first_execution=result.executions,
        )
        result.findings[f.signature] = entry
        return entry
    entry.hits += 1
    if (ex.preemptions, ex.steps) < (entry.preemptions, entry.steps):
        entry.input, entry.preemptions, entry.steps = ex.input, ex.preemptions, ex.steps
    return None


def check_jobs(strategy_name: str, fixed_scenario: bool, jobs: int) -> None:
    """Raise ValueError if ``jobs`` processes cannot split this campaign (only a DFS over every
    scenario splits; random and PCT campaigns run in parallel as ``oomfuzz fuzz --jobs``)."""
    if jobs > 1 and strategy_name != "dfs":
        raise ValueError("--jobs splits the DFS's scenarios; run random or pct campaigns in parallel "
                         "with `oomfuzz fuzz --jobs`")
    if jobs > 1 and fixed_scenario:
        raise ValueError("--jobs splits the DFS's scenarios across processes; --scenario fixes one")


def explore(
    variant: type[Kernel],
    strategy_name: str,
    *,
    seconds: float | None = None,
    executions: int | None = None,
    preemptions: int = 2,
    seed: int = 0,
    scenario: Scenario | None = None,
    on_progress: Callable[[ExploreResult], None] | None = None,
    progress_every: float = 0.5,
    jobs: int = 1,
) -> ExploreResult:
    """Run a campaign of ``variant`` under one strategy until the budget is spent.

    ``jobs`` > 1 splits a DFS over every scenario across that many processes
    (``explore_jobs``); the other strategies run in parallel as ``oomfuzz fuzz --jobs``."""
    if jobs > 1:
        check_jobs(strategy_name, scenario is not None, jobs)
        from .explore_jobs import explore_dfs_jobs

        return explore_dfs_jobs(variant, jobs=jobs, preemptions=preemptions, seconds=seconds, executions=executions,
                                on_progress=on_progress, progress_every=progress_every)
    strategy = make_strategy(strategy_name, seed=seed, preemptions=preemptions)
    result = ExploreResult(variant.NAME, strategy_name)
    start = time.perf_counter()
    deadline = None if seconds is None else start + seconds
    next_report = start + progress_every
    while True:
        if executions is not None and result.executions >= executions:
            break
        now = time.perf_counter()
        if deadline is not None and now >= deadline:
            break
        more = strategy.begin()
        completed = getattr(strategy, "completed", ())
        while len(result.passes) < len(completed):
            result.passes.append((completed[len(result.passes)], result.executions))
        if not more:
            result.exhausted = True
            break
        ex = execute(variant, strategy, scenario=scenario)
        strategy.end(ex.run)
        record(result, ex)
        if on_progress is not None and now >= next_report:
            result.seconds = now - start
            result.pass_scenarios = _pass_scenarios(strategy, scenario)
            on_progress(result)
            next_report = now + progress_every
    result.seconds = time.perf_counter() - start
    if not result.exhausted:
        result.pass_scenarios = _pass_scenarios(strategy, scenario)
    return result


def _pass_scenarios(strategy: Any, scenario: Scenario | None) -> tuple[int, int] | None:
    """How far a DFS over every scenario is into its current pass: it walks the scenarios in
    the order of their data choices (the first nodes of its path), so the index of the one it
    is in is the number whose part of the pass has ended."""
    if not isinstance(strategy, BoundedDFS) or scenario is not None:
        return None
    index, total = 0, 1
    for (_, options), node in zip(DIMENSIONS, strategy.path + [[0]] * len(DIMENSIONS)):
        index = index * len(options) + node[0]
        total *= len(options)
    return index, total


def confirm(variant: type[Kernel], bug: FoundBug) -> bool:
    """Does the stored input replay to the same signature, twice? (Flaky means an engine bug.)"""
    sigs = []
    for _ in range(2):
        ex = replay(variant, bug.input)
        sigs.append(ex.finding.signature if ex.finding else None)
    return sigs[0] == sigs[1] == bug.signature
