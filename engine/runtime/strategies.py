"""Scheduling strategies behind one small protocol: replay, random, PCT and bounded DFS.

Every strategy answers the machine's two questions (``pick`` at a decision point, ``choose``
for a data choice) and is told when an execution begins and ends. None of them knows the
kernel model, and the machine knows none of them. Whatever a strategy decides is recorded by
the machine, so any execution, however it was found, replays from the canonical input that
``RunResult.recording.to_bytes()`` gives.

* ``Replay``: decodes an input (``choices.ChoiceInput``); this is also how the fuzzer drives
  the engine.
* ``RandomWalk``: uniform choices from a seeded generator (the classic random scheduler).
* ``PCT``: probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010): random thread
  priorities and d-1 priority change points; finds a bug of depth d with probability at least
  1/(n k^(d-1)) per execution for n threads and k steps.
* ``BoundedDFS``: systematic exploration of every execution with at most K preemptions
  (deviations from the default schedule), with iterative bounding (all executions with 0
  preemptions, then 1, ...), as in CHESS. Data choices (the scenario) branch freely.
"""

from __future__ import annotations

import random
from typing import Any, Protocol

from .choices import ChoiceInput, PriorityInput, is_priority_form
from .machine import RUNNABLE, Machine


class ExplorationStrategy(Protocol):
    """A strategy that can drive many executions."""

    def begin(self) -> bool:
        """Prepare the next execution; False when there is none left."""

    def pick(self, m: Machine, decision: int, n_alt: int) -> int: ...

    def choose(self, n: int) -> int: ...

    def end(self, result: Any) -> None: ...


class Replay:
    """Decode one input; ``begin`` restarts it, so replaying twice is two executions.

    An input in the priority form (``choices.is_priority_form``) is run by a
    ``PrioritySchedule``; then ``choice_input`` is None and the machine asks at every decision.
    """

    def __init__(self, raw: bytes) -> None:
        self.raw = bytes(raw)
        self.begin()

    def begin(self) -> bool:
        if is_priority_form(self.raw):
            self.choice_input = None
            self._schedule: PrioritySchedule | None = PrioritySchedule(PriorityInput.decode(self.raw))
        else:
            self.choice_input = ChoiceInput(self.raw)
            self._schedule = None
        return True

    def pick(self, m: Machine, decision: int, n_alt: int) -> int:
        if self._schedule is not None:
            return self._schedule.pick(m, decision, n_alt)
        return self.choice_input.pick(decision, n_alt)

    def choose(self, n: int) -> int:
        if self._schedule is not None:
            return self._schedule.choose(n)
        return self.choice_input.choose(n)

    def end(self, result: Any) -> None:
        pass


class RandomWalk:
    """Uniform random decisions from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def begin(self) -> bool:
        return True

    def pick(self, m: Machine, decision: int, n_alt: int) -> int:
        return self.rng.randrange(n_alt + 1)

    def choose(self, n: int) -> int:
        return self.rng.randrange(n)

    def end(self, result: Any) -> None:
        pass


TIMER_SLOT = 64  # PCT's initial-priority slot for the timer; thread ids use slots 0..63


class PCT:
    """Probabilistic concurrency testing with depth ``depth``.

    Priorities: each thread gets a distinct random priority >= depth when first seen; at the
    i-th of the d-1 change points the running thread's priority drops to i (below every initial
    one). The highest-priority candidate always runs. Time is a candidate too: the timer has a
    random priority of its own, so while sleepers are pending, threads ranked below it wait
    until the earliest timer has fired (a kernel thread delayed past a tick, as under load)
    and threads above it run first; when nothing else can run the timer fires anyway.
    ``k`` (the step estimate the change points are drawn from) adapts to the longest execution
    seen so far.
    """

    def __init__(self, seed: int, depth: int = 3, steps_estimate: int = 64) -> None:
        self.rng = random.Random(seed)
        self.depth = max(1, depth)
        self.k = max(1, steps_estimate)
        self.priority: dict[int, int] = {}
        self.change_points: dict[int, int] = {}
        self._order: list[int] = []
        self._timer_prio = 0

    def begin(self) -> bool:
        self.priority = {}
        self._order = self.rng.sample(range(1000), TIMER_SLOT + 1)  # distinct initial priorities: tids, then the timer
        self._timer_prio = self.depth + self._order[TIMER_SLOT]
        points = self.rng.sample(range(self.k), min(self.k, self.depth - 1)) if self.depth > 1 else []
        self.change_points = {point: i + 1 for i, point in enumerate(sorted(points))}
        return True

    def _prio(self, tid: int) -> int:
        prio = self.priority.get(tid)
        if prio is None:
            prio = self.depth + self._order[tid % TIMER_SLOT]
            self.priority[tid] = prio
        return prio

    def pick(self, m: Machine, decision: int, n_alt: int) -> int:
        cur = m.current
        cur_runnable = cur is not None and cur.state == RUNNABLE
        if decision in self.change_points and cur is not None:
            self.priority[cur.tid] = self.change_points[decision]
        # After a cond_resched (``m._yielder is cur``) the machine's choice i is the run queue's
        # i-th, the yielder at its tail, while this ranks the yielder as choice 0 and the queue
        # one place up: the yield is honoured and priorities land one place down the queue.
        # Known and kept on purpose for now: ranking strictly there lets a high-priority
        # spinner starve the thread it waits for (measured on six bug scenarios: runs with no
        # verdict went from 11% to 40%, BZ-04 hits from 225 to 135 in 2,000).
        if cur_runnable:
            best, best_prio = 0, self._prio(cur.tid)
            queue = m.runq
        else:
            best, best_prio = 0, self._prio(m.runq[0].tid)
            queue = m.runq[1:]
        for i, thread in enumerate(queue, start=1):
            prio = self._prio(thread.tid)
            if prio > best_prio:
                best, best_prio = i, prio
        if m.sleepers and self._timer_prio > best_prio:
            return n_alt  # the last alternative: fire the earliest timer
        return best

    def choose(self, n: int) -> int:
        return self.rng.randrange(n)

    def end(self, result: Any) -> None:
        decisions = getattr(result, "decisions", 0)
        if decisions > self.k:
            self.k = decisions


class PrioritySchedule(PCT):
    """PCT with its random draws read from a priority-form input instead of a generator.

    Thread ``tid`` ranks by its priority byte (ties: the lower tid first), the timer by its own
    byte, and at the i-th change point (in decision order) the running thread drops to i,
    below every initial priority. Data choices come from the input's data bytes like
    ``ChoiceInput`` reads them (0 once they run out). Nothing random is left: the same input
    gives the same schedule.
    """

    def __init__(self, schedule: PriorityInput) -> None:
        points = sorted(set(schedule.change_points))
        self.depth = len(points) + 1
        self.k = 1
        self.change_points = {point: i + 1 for i, point in enumerate(points)}
        self.priority = {}
        self._threads = schedule.threads
        self._timer_prio = self._rank(schedule.timer, TIMER_SLOT)
        self._data = ChoiceInput(bytes([len(schedule.data)]) + schedule.data)  # its data bytes alone

    def _rank(self, byte: int, slot: int) -> int:
        return self.depth + byte * (TIMER_SLOT + 1) + TIMER_SLOT - slot

    def begin(self) -> bool:
        return True

    def _prio(self, tid: int) -> int:
        prio = self.priority.get(tid)
        if prio is None:
            byte = self._threads[tid] if tid < len(self._threads) else 0
            prio = self.priority[tid] = self._rank(byte, min(tid, TIMER_SLOT - 1))
        return prio

    def choose(self, n: int) -> int:
        return self._data.choose(n)

    def end(self, result: Any) -> None:
        pass


class NondeterminismError(RuntimeError):
    """Replaying a prefix met a different decision: the model is not deterministic."""


class BoundedDFS:
    """Every execution with at most ``max_preemptions`` deviations, fewest deviations first.

    The search tree's nodes are the decisions of one execution, in order. A scheduling
    decision met once the execution has used up the bound can only take the default, so it
    is not a node at all: it is neither recorded nor revisited (most decisions of a pass are
    such tails). Data choices are nodes at any depth.
    """

    def __init__(self, max_preemptions: int = 2, iterative: bool = True) -> None:
        self.max_preemptions = max(0, max_preemptions)
        self.bound = 0 if iterative else self.max_preemptions
        self.path: list[list[int]] = []  # [value, n, is_scheduling]
        self.pos = 0
        self.used = 0  # deviations the current execution has taken so far
        self._started = False
        self.completed: list[int] = []  # bounds whose pass has ended: every schedule within them ran

    def begin(self) -> bool:
        self.pos = 0
        self.used = 0
        if not self._started:
            self._started = True
            return True
        if self._advance():
            return True
        self.completed.append(self.bound)
        if self.bound < self.max_preemptions:
            self.bound += 1
            self.path = []
            return True
        return False

    def _advance(self) -> bool:
        path = self.path
        used = sum(1 for value, _, sched in path if sched and value)
        while path:
            node = path[-1]
            value, n, sched = node
            if sched and value:
                used -= 1
            if value + 1 < n and not (sched and used + 1 > self.bound):
                node[0] = value + 1
                return True
            path.pop()
        return False

    def _next(self, n: int, sched: bool) -> int:
        path, pos = self.path, self.pos
        self.pos = pos + 1
        if pos < len(path):
            node = path[pos]
            if node[1] != n or node[2] != sched:
                raise NondeterminismError(
                    f"decision {pos}: replayed prefix expected {node[1]} options, found {n}"
                )
            return node[0]
        path.append([0, n, sched])
        return 0

    def pick(self, m: Machine, decision: int, n_alt: int) -> int:
        if self.used >= self.bound:
            return 0  # the bound is spent: only the default is left, so this is no node
        value = self._next(n_alt + 1, True)
        if value:
            self.used += 1
        return value

    def choose(self, n: int) -> int:
        return self._next(n, False)

    def end(self, result: Any) -> None:
        # Decisions never reached this time (the run ended earlier) must not be revisited.
        del self.path[self.pos :]
