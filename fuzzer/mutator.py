"""The structure-aware mutator: fresh schedules, and local edits of an input's structure.

libFuzzer's byte mutations know nothing of the input format (``engine.runtime.choices``): a
flipped byte in the length prefix reshuffles every scenario choice and every pair at once.
This mutator makes most mutants itself (shares below), all of them decodable (decoding is
total), at most ``max_size`` bytes, and with all randomness from the ``seed`` libFuzzer
passes, so a mutation replays:

* ``generate`` (``GENERATE_SHARE``): a fresh input. Most are PCT schedules in the priority
  form (random thread and timer priorities, 0-2 change points): races that need one thread
  held back for a long stretch (BZ-04: the reaper must not clear its slot until a second OOM
  kill has come and gone) cost dozens of pairs as single deviations, but only one low
  priority. The rest (``WALK_SHARE``) are random walks in the deviation form (a random choice
  at nearly every decision, as the random baseline makes), which reach races made of several
  short, independent preemptions sooner. The scenario comes from the campaign's scenario
  scheduler (``fuzzer/scenarios.py``) when there is one.
* ``reschedule`` (``RESCHEDULE_SHARE``): the parent's scenario (half the time with one
  dimension changed) under a fresh priority schedule.
* the rest, half and half: ``atheris.Mutate`` (libFuzzer's own mutations), or one local edit
  of whichever form the parent is in: insert, drop or move one preemption, change one gap or
  one target, set one scenario dimension; or, in the priority form, one thread's or the
  timer's priority, one change point.

Coverage feedback keeps the schedules that reached new interleavings, and the local edits
refine them. No mutant is executed here: libFuzzer's run is the only one.
"""

from __future__ import annotations

import random
from typing import Callable

from ..engine.runtime.choices import (
    MAX_CHANGE_POINTS, PriorityInput, input_data, is_priority_form, join_input, split_input,
)
from .scenarios import DIM_SIZES, ScenarioScheduler, random_scenario

Pairs = list[tuple[int, int]]
MAX_PAIRS = 16


def _small_gap(rng: random.Random) -> int:
    """Gaps are mostly short: most races need a preemption a few decisions later."""
    return min(int(rng.expovariate(1 / 8)), 254)


def insert_pair(data: bytearray, pairs: Pairs, rng: random.Random) -> None:
    if len(pairs) < MAX_PAIRS:
        pairs.insert(rng.randrange(len(pairs) + 1), (_small_gap(rng), rng.randrange(256)))


def drop_pair(data: bytearray, pairs: Pairs, rng: random.Random) -> None:
    if pairs:
        i = rng.randrange(len(pairs))
        gap, _ = pairs.pop(i)
        if i < len(pairs):  # keep the later preemptions at the same decision points
            later_gap, target = pairs[i]
            pairs[i] = (later_gap + gap + 1, target)


def move_pair(data: bytearray, pairs: Pairs, rng: random.Random) -> None:
    """Shift one preemption by a few decisions, leaving the later ones where they were."""
    if not pairs:
        return
    i = rng.randrange(len(pairs))
    gap, target = pairs[i]
    delta = rng.choice((-3, -2, -1, 1, 2, 3))
    delta = max(delta, -gap)
    if i + 1 < len(pairs):
        next_gap, next_target = pairs[i + 1]
        delta = min(delta, next_gap)
        pairs[i + 1] = (next_gap - delta, next_target)
    pairs[i] = (gap + delta, target)


def change_gap(data: bytearray, pairs: Pairs, rng: random.Random) -> None:
    if pairs:
        i = rng.randrange(len(pairs))
        pairs[i] = (_small_gap(rng), pairs[i][1])


def change_target(data: bytearray, pairs: Pairs, rng: random.Random) -> None:
    if pairs:
        i = rng.randrange(len(pairs))
        pairs[i] = (pairs[i][0], rng.randrange(256))


def change_scenario(data: bytearray, pairs: Pairs, rng: random.Random) -> None:
    """Set one scenario dimension to another of its values (data bytes beyond are run-time)."""
    i = rng.randrange(len(DIM_SIZES) + 1)
    if i < len(DIM_SIZES):
        while len(data) <= i:
            data.append(0)
        data[i] = rng.randrange(DIM_SIZES[i])
    elif data:  # a run-time data choice past the scenario
        j = rng.randrange(len(data))
        data[j] = rng.randrange(256)


MUTATIONS: tuple[Callable[[bytearray, Pairs, random.Random], None], ...] = (
    insert_pair, insert_pair, drop_pair, move_pair, move_pair, change_gap, change_target, change_scenario,
)


def mutate_structure(raw: bytes, max_size: int, rng: random.Random, rounds: int = 1) -> bytes:
    """Apply ``rounds`` structural mutations; the result fits in ``max_size`` bytes."""
    data, pairs = split_input(raw)
    data_b = bytearray(data)
    pairs = list(pairs)
    for _ in range(rounds):
        rng.choice(MUTATIONS)(data_b, pairs, rng)
    return _fit(bytes(data_b), pairs, max_size)


def _fit(data: bytes, pairs: Pairs, max_size: int) -> bytes:
    """``join_input(data, pairs)``, trailing pairs dropped until it is at most ``max_size`` bytes."""
    out = join_input(data, pairs)
    while len(out) > max_size and pairs:
        pairs.pop()
        out = join_input(data, pairs)
    return out[:max_size]


THREAD_SLOTS = 12  # priority bytes written: more than any scenario's threads


def random_schedule(data: bytes, rng: random.Random) -> bytes:
    """A PCT schedule in the priority form over ``data``: random thread and timer priorities
    and 0-2 change points among the first 40-400 decisions (PCT's depth 1-3)."""
    horizon = rng.randint(40, 400)
    points = sorted(rng.randrange(horizon) for _ in range(rng.randint(0, 2)))
    threads = bytes(rng.randrange(256) for _ in range(THREAD_SLOTS))
    return PriorityInput(bytes(data), points, rng.randrange(256), threads).to_bytes()


WALK_PAIRS = 200  # covers about 300 decisions, longer than all but the longest executions
WALK_DEFAULT = 1 / 3  # the chance a walk keeps the default at a decision (as random does with 2 alternatives)


def random_walk(data: bytes, max_size: int, rng: random.Random) -> bytes:
    """A random walk in the deviation form: at nearly every decision a random alternative."""
    pairs = []
    for _ in range(WALK_PAIRS):
        gap = 0
        while rng.random() < WALK_DEFAULT and gap < 254:
            gap += 1
        pairs.append((gap, rng.randrange(256)))
    return _fit(data, pairs, max_size)


def generate(max_size: int, rng: random.Random, scenarios: ScenarioScheduler | None = None) -> bytes:
    """A fresh input: a scenario (uniform, or drawn by ``scenarios`` by its coverage yield) under
    a random PCT schedule (priority form), or a random walk (``WALK_SHARE`` of the time)."""
    data = scenarios.draw(rng) if scenarios is not None else random_scenario(rng)
    if rng.random() < WALK_SHARE:
        return random_walk(data, max_size, rng)
    return random_schedule(data, rng)[:max_size]


def reschedule(raw: bytes, max_size: int, rng: random.Random) -> bytes:
    """The input's scenario (half the time with one dimension changed) under a new PCT schedule."""
    data = bytearray(input_data(raw))
    if rng.random() < 0.5:
        change_scenario(data, [], rng)
    return random_schedule(bytes(data), rng)[:max_size]


def mutate_priorities(raw: bytes, max_size: int, rng: random.Random) -> bytes:
    """One local edit of a priority schedule: one thread's or the timer's priority, one change
    point moved, added or dropped, or one scenario dimension."""
    schedule = PriorityInput.decode(raw)
    threads = bytearray(schedule.threads.ljust(THREAD_SLOTS, b"\0"))
    points = list(schedule.change_points)
    what = rng.randrange(6)
    if what == 0:
        threads[rng.randrange(len(threads))] = rng.randrange(256)
    elif what == 1:
        schedule.timer = rng.randrange(256)
    elif what == 2 and points:
        i = rng.randrange(len(points))
        points[i] = max(0, points[i] + rng.choice((-8, -3, -2, -1, 1, 2, 3, 8)))
    elif what == 3 and len(points) < MAX_CHANGE_POINTS:
        points.append(rng.randrange(max(points, default=0) + 64))
    elif what == 4 and points:
        points.pop(rng.randrange(len(points)))
    else:
        data = bytearray(schedule.data)
        change_scenario(data, [], rng)
        schedule.data = bytes(data)
    schedule.threads, schedule.change_points = bytes(threads), sorted(points)
    return schedule.to_bytes()[:max_size]


GENERATE_SHARE = 0.6  # fresh inputs (syzkaller's generate-vs-mutate split)
WALK_SHARE = 0.25  # of the fresh inputs: random walks rather than priority schedules
RESCHEDULE_SHARE = 0.2  # the parent's scenario under a new PCT schedule


def make_custom_mutator(scenarios: ScenarioScheduler | None = None, schedules: bool = True) -> Callable[[bytes, int, int], bytes]:
    """The ``atheris.Setup(custom_mutator=...)`` hook. With ``schedules``: a share of fresh PCT
    inputs (``generate``, on scenarios drawn by ``scenarios`` when given) and of whole-schedule
    redraws (``reschedule``); the rest half libFuzzer's own mutations, half structural ones (of
    whichever form the parent is in)."""

    def custom_mutator(raw: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        draw = rng.random()
        if schedules:
            if draw < GENERATE_SHARE:
                return generate(max_size, rng, scenarios)
            if draw < GENERATE_SHARE + RESCHEDULE_SHARE:
                return reschedule(raw, max_size, rng)
            draw = rng.random()
        if draw < 0.5:
            import atheris

            return atheris.Mutate(raw, max_size)
        if is_priority_form(raw):
            return mutate_priorities(raw, max_size, rng)
        return mutate_structure(raw, max_size, rng, rounds=1 + int(rng.random() < 0.3))

    return custom_mutator
