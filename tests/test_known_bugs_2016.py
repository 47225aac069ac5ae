"""Hand-written schedules for the 2016 bugs of v4.5, mmotm-2016-01 and seed-3of2.

Each input is pinned as a literal: scenario choices, then the few preemptions that make the
race happen (see engine/runtime/choices.py). Each test replays it on every variant listed for
the bug and checks the same scenario is clean on the variant that fixed it. The inputs were
found with `oomfuzz explore --strategy dfs` on the scenario named beside them and can be
regenerated the same way when the model changes.
"""

import sys
from pathlib import Path

import pytest

from oomfuzz.engine.execute import execute, replay
from oomfuzz.engine.explore import explore
from oomfuzz.engine.runtime.strategies import RandomWalk
from oomfuzz.engine.scenario import Scenario
from oomfuzz.engine.variants import load_variant

sys.path.insert(0, str(Path(__file__).parent))
from pinned_inputs import (  # noqa: E402
    BZ01, BZ02, BZ03_A, BZ03_B, BZ04_MMOTM, BZ04_MMOTM_TWO, BZ04_SEED, BZ04_SEED_SHORT, BZ04_SEED_TWO,
    BZ04_TWO_SCENARIO,
)


def finding(variant, raw):
    ex = replay(load_variant(variant), raw)
    assert ex.status != "engine_error", ex.run.error
    return ex.finding


def never_seen(variant, scenario, *invariants, runs=300, seed=0):
    """None of the invariants breaks in ``runs`` random schedules of the scenario."""
    v = load_variant(variant)
    walk = RandomWalk(seed)
    for _ in range(runs):
        ex = execute(v, walk, scenario=scenario)
        assert not (ex.finding and ex.finding.invariant in invariants), ex.input.hex()


def test_bz01_victim_stuck_behind_mmap_sem_writer_on_v45():
    f = finding("v4.5", BZ01)
    assert (f.invariant, f.known_bug) == ("oom_livelock_victim_stuck", "BZ-01")
    assert f.roles == ("victim",)


def test_bz02_memdie_stuck_after_reap_on_mmotm_fixed_by_seed():
    f = finding("mmotm-2016-01", BZ02)
    assert (f.invariant, f.known_bug) == ("memdie_stuck_after_reap", "BZ-02")
    assert finding("seed-3of2", BZ02) is None
    never_seen("seed-3of2", Scenario(drivers="alloc,alloc", mm="aio"), "memdie_stuck_after_reap")


@pytest.mark.parametrize("raw, roles", [(BZ03_A, ("victim", "victim")), (BZ03_B, ("victim", "reaper"))])
def test_bz03_both_forms_on_seed(raw, roles):
    f = finding("seed-3of2", raw)
    assert (f.invariant, f.known_bug, f.roles) == ("memdie_unpaired_exit", "BZ-03", roles)
    assert f.signature == "memdie_unpaired_exit|exit_oom_victim"  # one bug, one signature


@pytest.mark.parametrize("fixed", ["v4.6-rc1", "examples/seed_test_and_clear.py"])
def test_bz03_fixed_by_test_and_clear(fixed):
    for raw in (BZ03_A, BZ03_B):
        f = finding(fixed, raw)
        assert f is None or f.invariant not in ("memdie_unpaired_exit", "oom_victims_underflow")
    never_seen(fixed, Scenario(shape="run,run"), "memdie_unpaired_exit")


def test_bz03_schedule_is_minimal():
    ex = replay(load_variant("seed-3of2"), BZ03_A)
    assert ex.preemptions == 1 and ex.input == BZ03_A


BZ04_INPUTS = [
    ("mmotm-2016-01", BZ04_MMOTM), ("seed-3of2", BZ04_SEED), ("seed-3of2", BZ04_SEED_SHORT),
    ("seed-3of2", BZ04_SEED_TWO), ("mmotm-2016-01", BZ04_MMOTM_TWO),
]
BZ04_TWO = Scenario(**dict(zip(("shape", "other", "drivers", "mm"), BZ04_TWO_SCENARIO)))


@pytest.mark.parametrize("variant, raw", BZ04_INPUTS)
def test_bz04_second_victim_dropped_by_the_busy_slot(variant, raw):
    f = finding(variant, raw)
    assert (f.invariant, f.known_bug) == ("reap_request_dropped", "BZ-04")


NEVER_REAPED = ("reap_request_dropped", "victim_never_reaped")


def test_bz04_fixed_by_the_reaper_queue():
    scenario = Scenario(shape="lockwait", other="indep_big", drivers="alloc,alloc")
    for _, raw in BZ04_INPUTS:
        f = finding("v4.6-rc1", raw)
        assert f is None or f.invariant not in NEVER_REAPED
    never_seen("v4.6-rc1", scenario, *NEVER_REAPED, runs=400)


def test_a_victim_never_queued_is_not_bz04():
    """mmotm-2016-01's posted sharer loop: a kernel thread inside use_mm at kill time forbids
    the reap, so the victim is never queued; when the kthread has left, the victim (in exit_aio
    with TIF_MEMDIE) still waits. A real race of the posting, but no request was dropped."""
    f = finding("mmotm-2016-01", bytes.fromhex("0500000303000c00"))
    assert (f.invariant, f.known_bug) == ("victim_never_reaped", None)


def test_bz04_two_preemption_form_by_bounded_dfs_and_none_on_v4_6_rc1():
    """Every schedule of the scenario with at most 2 preemptions: BZ-04 on seed-3of2 in exactly
    2 (none with fewer), and no victim_never_reaped at all once the queue replaced the slot."""
    found = explore(load_variant("seed-3of2"), "dfs", preemptions=2, scenario=BZ04_TWO)
    assert found.exhausted
    assert [f.preemptions for f in found.findings.values() if f.known_bug == "BZ-04"] == [2]
    fixed = explore(load_variant("v4.6-rc1"), "dfs", preemptions=2, scenario=BZ04_TWO)
    assert fixed.exhausted and fixed.executions > 10_000
    assert not any(f.invariant in NEVER_REAPED for f in fixed.findings.values())
