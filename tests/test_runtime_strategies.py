"""Strategies: DFS enumerates every bounded schedule; PCT meets its probability bound."""

import itertools
import math

import pytest

from oomfuzz.engine.execute import execute, replay
from oomfuzz.engine.runtime.choices import PriorityInput
from oomfuzz.engine.runtime.machine import Machine
from oomfuzz.engine.runtime.primitives import preempt_point
from oomfuzz.engine.runtime.strategies import PCT, TIMER_SLOT, BoundedDFS, Replay
from oomfuzz.engine.scenario import Scenario
from oomfuzz.engine.variants import load_variant


def tiny(m, log, steps=(2, 2, 1)):
    def body(name, n):
        for i in range(n):
            yield from preempt_point(m, f"{name}{i}")
            log.append(f"{name}{i}")

    for i, n in enumerate(steps):
        m.spawn(f"t{i}", body(f"t{i}", n))


def all_interleavings(steps):
    """Every order of the threads' events (each thread's own order kept)."""
    labels = [[f"t{i}{j}" for j in range(n)] for i, n in enumerate(steps)]
    total = sum(steps)
    out = set()
    for assignment in itertools.product(range(len(steps)), repeat=total):
        if all(assignment.count(i) == n for i, n in enumerate(steps)):
            pos = [0] * len(steps)
            seq = []
            for t in assignment:
                seq.append(labels[t][pos[t]])
                pos[t] += 1
            out.add(tuple(seq))
    return out


def test_dfs_enumerates_every_schedule_of_a_tiny_program():
    steps = (2, 2, 1)
    dfs = BoundedDFS(max_preemptions=20, iterative=False)
    seen, schedules = set(), []
    while dfs.begin():
        m = Machine(dfs)
        log = []
        tiny(m, log, steps)
        result = m.run()
        dfs.end(result)
        seen.add(tuple(log))
        schedules.append(result.recording.to_bytes())
    assert seen == all_interleavings(steps)
    assert len(schedules) == len(set(schedules))  # no schedule explored twice


def test_dfs_inputs_replay_exactly():
    dfs = BoundedDFS(max_preemptions=2)
    while dfs.begin():
        m = Machine(dfs)
        log = []
        tiny(m, log)
        result = m.run()
        dfs.end(result)
        again = []
        m2 = Machine(Replay(result.recording.to_bytes()))
        tiny(m2, again)
        m2.run()
        assert again == log


def test_dfs_passes_end_where_each_bound_is_exhausted():
    """explore's record of finished passes: pass K ends after exactly the schedules with at most
    0, 1, ..., K deviations (iterative deepening runs each bound's schedules again), counted here
    by exhausting each bound alone."""
    from oomfuzz.engine.explore import explore

    variant, scenario = load_variant("seed-3of2"), Scenario(shape="run,run")
    alone = [_dfs_alone(variant, [scenario], bound)[0] for bound in range(3)]
    result = explore(variant, "dfs", preemptions=2, scenario=scenario)
    assert result.exhausted and result.complete_bound == 2
    assert result.passes == [(0, alone[0]), (1, alone[0] + alone[1]), (2, sum(alone))]
    assert result.executions == sum(alone) and alone[0] == 1 < alone[1] < alone[2]
    cut = explore(variant, "dfs", preemptions=2, scenario=scenario, executions=alone[0] + alone[1] + 5)
    assert not cut.exhausted and cut.complete_bound == 1 and cut.as_dict()["dfs"]["complete_bound"] == 1
    assert explore(variant, "pct", executions=3).complete_bound is None


def test_pct_finds_a_depth_two_bug_at_its_bound():
    """Bug: thread b's write must come between a's check and a's use (needs one priority change)."""
    n_threads, k = 2, 6
    bound = 1 / (n_threads * k ** (2 - 1))
    found = 0
    trials = 2000
    pct = PCT(seed=7, depth=2, steps_estimate=k)
    for _ in range(trials):
        pct.begin()
        m = Machine(pct)
        state = {"x": 0, "bug": False}

        def a():
            yield from preempt_point(m, "a.check")
            seen = state["x"]
            yield from preempt_point(m, "a.use")
            state["bug"] |= seen != state["x"]

        def b():
            yield from preempt_point(m, "b.write")
            state["x"] = 1

        m.spawn("a", a())
        m.spawn("b", b())
        result = m.run()
        pct.end(result)
        found += state["bug"]
    rate = found / trials
    assert rate >= bound * 0.8, (rate, bound)
    assert not math.isclose(rate, 0.0)


def _as_priority_input(pct: PCT, data: bytes) -> bytes:
    """The priority-form input that spells out the draws of ``pct`` (after ``begin``)."""
    slots = list(range(TIMER_SLOT)) + [TIMER_SLOT]
    ranked = sorted(slots, key=lambda slot: pct._order[slot])  # lowest PCT priority first
    byte = {slot: rank * 255 // len(slots) for rank, slot in enumerate(ranked)}  # order kept, distinct
    threads = bytes(byte[tid] for tid in range(12))
    return PriorityInput(data, sorted(pct.change_points), byte[TIMER_SLOT], threads).to_bytes()


def test_a_priority_schedule_runs_exactly_what_pct_drew(seed):
    """PrioritySchedule is PCT with its draws written down: same draws, same execution."""
    variant = load_variant("seed-3of2")
    pct = PCT(seed, depth=3, steps_estimate=200)
    for _ in range(40):
        pct.begin()
        data = bytes(Scenario(shape="fault", other="indep_big", drivers="alloc,alloc", mm="aio").choices())
        raw = _as_priority_input(pct, data)
        by_pct = execute(variant, _PCTWithData(pct, data))
        by_bytes = replay(variant, raw)
        assert by_bytes.input == by_pct.input  # the same deviations, so the same execution
        assert replay(variant, by_bytes.input).run.sites == by_bytes.run.sites


class _PCTWithData:
    """A PCT whose data choices come from fixed bytes (the scenario), as the priority form's do."""

    def __init__(self, pct: PCT, data: bytes) -> None:
        self.pct, self.data, self.pos = pct, data, 0

    def pick(self, m, decision, n_alt):
        return self.pct.pick(m, decision, n_alt)

    def choose(self, n):
        value = self.data[self.pos] % n
        self.pos += 1
        return value


def _dfs_alone(variant, scenarios, bound):
    """Each scenario's DFS run to exhaustion in this process: executions and hits per signature."""
    executions, hits = 0, {}
    for scenario in scenarios:
        dfs = BoundedDFS(bound, iterative=False)
        while dfs.begin():
            ex = execute(variant, dfs, scenario=scenario)
            dfs.end(ex.run)
            executions += 1
            if ex.finding is not None:
                hits[ex.finding.signature] = hits.get(ex.finding.signature, 0) + 1
    return executions, hits


def test_dfs_split_across_jobs_runs_the_same_executions():
    """--jobs: the scenarios split across processes, the same executions run, the passes end
    where one process's would, and every signature keeps its fewest-preemption input."""
    from oomfuzz.engine.explore_jobs import all_scenarios, explore_dfs_jobs

    variant = load_variant("seed-3of2")
    scenarios = [s for s in all_scenarios() if s.other in ("none", "indep") and s.mm == "anon"
                 and s.sysctl == "default" and s.shape in ("run", "run,run")][:5]
    alone = [_dfs_alone(variant, scenarios, bound) for bound in range(3)]
    result = explore_dfs_jobs(variant, jobs=3, preemptions=2, scenarios=scenarios)
    assert result.exhausted and result.complete_bound == 2
    assert result.passes == [(0, alone[0][0]), (1, alone[0][0] + alone[1][0]), (2, sum(n for n, _ in alone))]
    assert result.executions == sum(n for n, _ in alone)
    expected = {}
    for _, hits in alone:
        for sig, n in hits.items():
            expected[sig] = expected.get(sig, 0) + n
    assert {sig: f.hits for sig, f in result.findings.items()} == expected
    assert "memdie_unpaired_exit|exit_oom_victim" in expected  # BZ-03: the split search is not vacuous
    for f in result.findings.values():
        again = replay(variant, f.input)
        assert again.finding.signature == f.signature and again.preemptions == f.preemptions

    budget = explore_dfs_jobs(variant, jobs=2, preemptions=2, scenarios=scenarios, executions=301)
    assert budget.executions == 301 and not budget.exhausted


def test_dfs_jobs_that_die_are_reported_not_waited_for(monkeypatch):
    import os

    from oomfuzz.engine import explore_jobs

    variant = load_variant("v4.5")
    real = explore_jobs.execute

    def dies_on_fault(v, strategy, *, scenario):
        if scenario.shape == "fault":
            os._exit(7)
        return real(v, strategy, scenario=scenario)

    monkeypatch.setattr(explore_jobs, "execute", dies_on_fault)
    with pytest.raises(explore_jobs.JobCrashed, match="exited with code 7"):
        explore_jobs.explore_dfs_jobs(variant, jobs=2, preemptions=0)

    def raises_on_fault(v, strategy, *, scenario):
        if scenario.shape == "fault":
            raise RuntimeError("boot failed")
        return real(v, strategy, scenario=scenario)

    monkeypatch.setattr(explore_jobs, "execute", raises_on_fault)
    with pytest.raises(explore_jobs.JobCrashed, match="RuntimeError: boot failed"):
        explore_jobs.explore_dfs_jobs(variant, jobs=2, preemptions=0)
