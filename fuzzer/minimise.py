"""Minimisation: shrink a finding's input to the fewest preemptions, then the fewest steps.

Design
======

Inputs are ordered shortlex-style by (preemptions, steps, length, bytes); a candidate is
accepted when its replay keeps the finding's signature and is smaller in that order. Every
accepted candidate is re-canonicalised through ``replay(...).input``, so unused pairs and data
bytes disappear and what we store is exactly what replays.

First (and again whenever a pass has moved the input to a simpler scenario) a bounded
search: every schedule of the finding's scenario with fewer preemptions than the input has
(at most ``SEARCH_BOUND``), fewest first, then the same on each scenario that differs in one
dimension (at most ``NEIGHBOUR_BOUND``), with part of the time budget (``SEARCH_SHARE``).
A fuzzer's hit often carries dozens of incidental deviations (a PCT schedule written out as
pairs), and greedy removal can stall at a local minimum where every single pair matters; the
search finds the true minimum when it is small. Then passes,
repeated until none makes progress or the time budget is spent:

1. drop preemption pairs: halves first, then one at a time, each both plainly and keeping the
   later pairs at their decision points (the dropped gap merged into the next);
2. lower each pair: target to 0, gap to 0 / half / minus one (earlier preemptions run fewer
   steps before the race);
3. scenario bytes toward 0 (the simplest scenario that still shows the bug).

Then the result is replayed ``confirm_runs`` times. The engine is deterministic by design, so
a finding whose replays disagree (a different signature, or a different canonical input) is a
bug in oomfuzz, reported as ``flaky`` and never silently stored as confirmed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Iterator

from ..engine.execute import execute, replay
from ..engine.runtime.choices import join_input, split_input
from ..engine.runtime.strategies import BoundedDFS
from ..engine.scenario import DIMENSIONS, Scenario

Pairs = list[tuple[int, int]]


@dataclass
class Minimised:
    """A minimised reproducer and whether it replays deterministically."""

    input: bytes
    signature: str | None
    preemptions: int
    steps: int
    original_preemptions: int
    original_steps: int
    deterministic: bool
    reproduced: bool  # the original input replayed to the expected signature at all
    replays: int  # executions spent


def _key(ex: Any) -> tuple[int, int, int, bytes]:
    return (ex.preemptions, ex.steps, len(ex.input), ex.input)


def _drop_candidates(data: bytes, pairs: Pairs) -> Iterator[bytes]:
    n = len(pairs)
    chunk = n // 2
    while chunk >= 2:
        for start in range(0, n, chunk):
            yield join_input(data, pairs[:start] + pairs[start + chunk:])
        chunk //= 2
    for i in reversed(range(n)):
        yield join_input(data, pairs[:i] + pairs[i + 1:])
        if i + 1 < n:
            merged = (pairs[i + 1][0] + pairs[i][0] + 1, pairs[i + 1][1])
            yield join_input(data, pairs[:i] + [merged] + pairs[i + 2:])


def _lower_candidates(data: bytes, pairs: Pairs) -> Iterator[bytes]:
    for i, (gap, target) in enumerate(pairs):
        if target:
            yield join_input(data, pairs[:i] + [(gap, 0)] + pairs[i + 1:])
        for lower in sorted({0, gap // 2, gap - 1}):
            if 0 <= lower < gap:
                yield join_input(data, pairs[:i] + [(lower, target)] + pairs[i + 1:])


def _scenario_candidates(data: bytes, pairs: Pairs) -> Iterator[bytes]:
    for i, value in enumerate(data):
        for lower in sorted({0, value // 2, value - 1}):
            if 0 <= lower < value:
                yield join_input(data[:i] + bytes([lower]) + data[i + 1:], pairs)
    if data and data[-1] == 0:
        yield join_input(data.rstrip(b"\0"), pairs)


PASSES = (_drop_candidates, _lower_candidates, _scenario_candidates)
SEARCH_BOUND = 2
NEIGHBOUR_BOUND = 1
SEARCH_SHARE = 0.4


class _Shrinker:
    """The search state: the best execution so far and the replay budget."""

    def __init__(self, variant: Any, signature: str, best: Any, deadline: float) -> None:
        self.variant, self.signature, self.best, self.deadline = variant, signature, best, deadline
        self.replays = 0
        self.searched: set[tuple[Any, int]] = set()  # (scenario, bound) already searched

    def consider(self, candidate: bytes) -> bool:
        self.replays += 1
        ex = replay(self.variant, candidate)
        if ex.finding is None or ex.finding.signature != self.signature:
            return False
        if _key(ex) < _key(self.best):
            self.best = ex
            return True
        return False

    def search(self, seconds: float) -> None:
        """Bounded DFS for a schedule with fewer preemptions: on the best input's scenario (at
        most ``SEARCH_BOUND``), then on each scenario that differs in one dimension (at most
        ``NEIGHBOUR_BOUND``, which keeps that part cheap; simpler values first).

        Iterative bounding explores every schedule with at most b preemptions before any with
        b + 1, so the first hit on a scenario is one with the fewest preemptions there."""
        deadline = min(self.deadline, time.monotonic() + seconds)
        scenario = self.best.scenario
        if self._search_one(scenario, SEARCH_BOUND, deadline):
            return
        for name, values in DIMENSIONS:
            for value in values:  # simplest first
                if value != getattr(scenario, name):
                    if self._search_one(replace(scenario, **{name: value}), NEIGHBOUR_BOUND, deadline):
                        return

    def _search_one(self, scenario: Scenario, max_bound: int, deadline: float) -> bool:
        bound = min(max_bound, self.best.preemptions - 1)
        key = (scenario, bound)
        if bound < 0 or key in self.searched or time.monotonic() >= deadline:
            return False
        self.searched.add(key)
        dfs = BoundedDFS(bound)
        while time.monotonic() < deadline and dfs.begin():
            ex = execute(self.variant, dfs, scenario=scenario)
            dfs.end(ex.run)
            self.replays += 1
            if ex.finding is not None and ex.finding.signature == self.signature:
                return self.consider(ex.input)
        return False

    def run_pass(self, make: Any) -> bool:
        """One pass; restart it after every accepted candidate, since the pairs moved."""
        progressed = False
        improved = True
        while improved and time.monotonic() < self.deadline:
            improved = False
            data, pairs = split_input(self.best.input)
            for candidate in make(data, pairs):
                if time.monotonic() >= self.deadline:
                    break
                if self.consider(candidate):
                    improved = progressed = True
                    break
        return progressed


def confirm(variant: Any, raw: bytes, signature: str, runs: int) -> bool:
    """Replay ``raw`` ``runs`` times: the same signature and canonical input every time?"""
    seen = set()
    for _ in range(runs):
        ex = replay(variant, raw)
        seen.add((ex.finding.signature if ex.finding else None, ex.input, ex.steps))
    return len(seen) == 1 and next(iter(seen))[0] == signature


def minimise(variant: Any, raw: bytes, signature: str, *, seconds: float = 5.0, confirm_runs: int = 5) -> Minimised:
    """Shrink ``raw`` keeping ``signature`` on ``variant``; then confirm it replays every time."""
    first, again = replay(variant, raw), replay(variant, raw)
    sigs = {ex.finding.signature if ex.finding else None for ex in (first, again)}
    if sigs != {signature} or first.input != again.input:
        return Minimised(bytes(raw), next(iter(sigs)) if len(sigs) == 1 else None, first.preemptions,
                         first.steps, first.preemptions, first.steps, False, signature in sigs, 2)
    shrinker = _Shrinker(variant, signature, first, time.monotonic() + seconds)
    progressed = True
    while progressed and time.monotonic() < shrinker.deadline:
        shrinker.search(seconds * SEARCH_SHARE)  # again whenever a pass moved to a new scenario
        progressed = False
        for make in PASSES:
            progressed |= shrinker.run_pass(make)
    best = shrinker.best
    deterministic = confirm(variant, best.input, signature, confirm_runs)
    return Minimised(best.input, signature, best.preemptions, best.steps, first.preemptions, first.steps,
                     deterministic, True, 2 + shrinker.replays + confirm_runs)
