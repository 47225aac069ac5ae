"""Hand-written schedules for v4.6-rc1 and v4.6: BZ-07 (queue self-loop) and its fix
af8e15cc85a2, BZ-05 (oom_killer_disable returns early) on both, BZ-10's first form (the reaper
blocked in a synchronous __mmput) on both and its fix in v4.7, and the reaper's retry loop.

Each input below was found by a guided schedule (a priority order of roles per phase of the
race) or by BoundedDFS on the named scenario, and is pinned here as bytes: the data choices of
the scenario, then the preemptions.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from oomfuzz.engine.execute import MAX_STEPS, classify, known_bug_of, replay
from oomfuzz.engine.linux.sched import PF_KTHREAD
from oomfuzz.engine.explore import explore
from oomfuzz.engine.runtime.machine import Machine, Outcome
from oomfuzz.engine.runtime.strategies import Replay
from oomfuzz.engine.scenario import Scenario, draw_scenario
from oomfuzz.engine.variants import load_variant
from oomfuzz.engine.workload import boot

sys.path.insert(0, str(Path(__file__).parent))
from model_lookup import mm, task  # noqa: E402

# BZ-07 needs oom_kill_allocating_task to sacrifice the same child twice. No shipped scenario
# gives the allocator a child with its own mm, so the test boots "other=indep" and makes that
# process the allocator's child before the run (see the report: a workload dimension is due).
BZ07_SCENARIO = Scenario(shape="run", other="indep", drivers="alloc", sysctl="kill_allocating_task")
# The allocator runs alone until its second oom_kill_process(other): other is still the only
# element of the queue (NULL link) when it is pushed again.
BZ07_INPUT_RC1 = bytes.fromhex("050001000001000201020f02")
# The same plan on v4.6 (one more scheduling point: the head read): the second wake reads
# oom_reaper_list == other and returns.
BZ07_INPUT_V46 = bytes.fromhex("050001000001000201021002")

# BZ-05: the victim freezes; the allocator kills it (the thaw leaves PF_FROZEN set until the
# victim runs); the reaper unmaps; the allocator allocates and freezes; the freezer's last
# poll sees nobody to freeze and disables the OOM killer; the victim leaves the refrigerator
# and starts exiting; the reaper's exit_oom_victim drops oom_victims to 0 and the freezer
# returns with the victim still before exit_mm.
BZ05_SCENARIO = Scenario(shape="run", other="none", drivers="alloc,freezer", mm="anon")
BZ05_INPUT = {
    "v4.6-rc1": bytes.fromhex("0500000200000002000001000100100001000400060100010101020101000200"),
    "v4.6": bytes.fromhex("0500000200000002000001000100100001000500060100010101020101000200"),
}

# BZ-12 (4.6 form): a writer stuck with mmap_sem held; the reaper's ten trylocks fail.
BZ12_INPUT = bytes.fromhex(
    "0503000000000201000000000200000001000100010000000900020006000600010002000000050000000000"
    "01000100000000000400000003000200010000000200020000000100020002000100040002000000040001000100"
    "000003000000040001000200"
)


# BZ-10, first form (sync mmput in the reaper): other=indep_aio is bigger than the lockwait
# victim, so the allocator (holding i_mutex, which the victim waits for) kills it first. The
# reaper pins other_mm's mm_users and reaps nothing (all mlocked); other's own mmput is then not
# the last; the reaper's is, and its __mmput waits in exit_aio for memory. The allocator's next
# OOM kills the victim, queued behind the blocked reaper and stuck on i_mutex: nobody frees
# memory again. Three preemptions (BoundedDFS(3) on BZ10_SCENARIO; none with two): the victim
# loses i_mutex to the allocator, the reaper pins before other's exit_mm drops its reference,
# other's mmput comes before the reaper's.
BZ10_SCENARIO = Scenario(shape="lockwait", other="indep_aio")
BZ10_INPUT = {
    "v4.6-rc1": bytes.fromhex("05060800000003000d000800"),
    "v4.6": bytes.fromhex("05060800000003000e000800"),  # one more scheduling point: the head read
}
# The same plan on v4.7 (decision indices differ, so it is its own input: BoundedDFS(3) on
# BZ10_SCENARIO, first run where the allocator holds i_mutex when the victim is killed and a
# kworker runs other_mm's __mmput): mmput_async hands the teardown to the kworker, which waits
# in exit_aio instead of the reaper; the reaper reaps the victim and the allocator gets memory.
BZ10_PLAN_V47 = bytes.fromhex("05060800000004010f010b00")


def run_with_child(variant_name: str, raw: bytes) -> tuple:
    """execute() for BZ07_SCENARIO, with the "other" process made a child of the allocator."""
    m = Machine(Replay(raw), max_steps=MAX_STEPS, tracing=False)
    k = load_variant(variant_name)(m)
    scenario = draw_scenario(m.choose)
    assert scenario == BZ07_SCENARIO
    boot(k, scenario)
    allocator = next(t for t in k.tasks if t.role == "allocator")
    other = next(t for t in k.tasks if t.role == "other")
    other.parent = allocator
    allocator.children.append(other)
    run = m.run()
    violation, where = classify(k, run)
    return k, run, violation, where


def allocator_sites(k, run, site: str) -> int:
    tid = next(t.tid for t in k.m.threads if t.role == "allocator")
    return sum(1 for t, s in run.sites if t == tid and s == site)


def test_bz07_scenario_bytes_match_the_scenario():
    assert list(BZ07_INPUT_RC1[1:6]) == BZ07_SCENARIO.choices()
    assert list(BZ05_INPUT["v4.6"][1:6]) == BZ05_SCENARIO.choices()


def test_bz07_self_loop_on_v4_6_rc1():
    k, run, violation, where = run_with_child("v4.6-rc1", BZ07_INPUT_RC1)
    assert run.outcome == Outcome.VIOLATION
    assert violation.invariant == "oom_reaper_queue_corrupt"
    assert where == "wake_oom_reaper"
    assert known_bug_of(load_variant("v4.6-rc1"), violation.invariant) == "BZ-07"
    other = next(t for t in k.tasks if t.role == "other")
    assert k.oom_reaper_list is other and other.oom_reaper_list is other
    assert other.usage == 5  # alive, final schedule, oom_kill_process's own, one per push
    assert run.recording.to_bytes() == BZ07_INPUT_RC1


def test_bz07_replays_identically():
    first = run_with_child("v4.6-rc1", BZ07_INPUT_RC1)[1]
    second = run_with_child("v4.6-rc1", BZ07_INPUT_RC1)[1]
    assert first.sites == second.sites


def test_bz07_head_is_refused_on_v4_6():
    k, run, violation, where = run_with_child("v4.6", BZ07_INPUT_V46)
    assert run.outcome == Outcome.OK
    assert violation is None
    # Three wakes read the head (other, other again, allocator); only two pass and push.
    assert allocator_sites(k, run, "oom_reaper_list") == 3
    assert allocator_sites(k, run, "lock(oom_reaper_lock)") == 2
    assert all(t.usage == 0 for t in k.all_tasks if t.role in ("other", "allocator"))


def test_bz07_rc1_schedule_on_v4_6_does_not_corrupt_the_queue():
    """The rc1 schedule replayed on v4.6 never corrupts the queue (whatever it then does)."""
    k, run, violation, where = run_with_child("v4.6", BZ07_INPUT_RC1)
    assert violation is None or violation.invariant != "oom_reaper_queue_corrupt"


def test_bz05_on_v4_6_rc1_and_v4_6():
    for name, raw in BZ05_INPUT.items():
        ex = replay(load_variant(name), raw)
        assert ex.scenario == BZ05_SCENARIO
        assert ex.finding is not None, name
        assert ex.finding.invariant == "oom_killer_disable_early"
        assert ex.finding.known_bug == "BZ-05"
        assert ex.finding.where == "oom_killer_disable"
        assert "victim" in ex.finding.roles
        victim = next(t for t in ex.kernel.tasks if t.role == "victim")
        assert not victim.ghost_exit_mm_done and not victim.frozen
        assert ex.kernel.oom_victims.counter == 0  # the reaper dropped it, not the victim
        assert ex.input == raw


def test_reaper_gives_up_after_exactly_ten_trylocks():
    """oom_reap_task's ``attempts++ < MAX_OOM_REAP_RETRIES`` loop: ten calls, then "unable"."""
    for name, bug in (("v4.6-rc1", "BZ-12"), ("v4.6", "BZ-12")):
        ex = replay(load_variant(name), BZ12_INPUT)
        reaper = ex.kernel.oom_reaper_th.thread.tid
        trylocks = sum(1 for t, s in ex.run.sites if t == reaper and s == "down_read(victim_mm.mmap_sem)")
        assert trylocks == 10
        assert ex.finding.invariant == "unreapable_victim_reselected"
        assert ex.finding.known_bug == bug
        assert ("unable_to_reap", "victim") in [(kind, role) for kind, role, _ in ex.kernel.events]


def test_exit_oom_victim_is_test_and_clear():
    """A second exit_oom_victim(tsk) of the same victim does not decrement (BZ-03 fixed)."""
    ex = replay(load_variant("v4.6"), BZ05_INPUT["v4.6"])
    k = ex.kernel
    victim = next(t for t in k.tasks if t.role == "victim")
    k.m.current = victim.thread
    gen = k.exit_oom_victim(victim)
    assert list(gen) == []  # returned at once: TIF_MEMDIE already clear
    assert k.oom_victims.counter == 0


def test_bz10_sync_mmput_stalls_the_reaper_on_v4_6_rc1_and_v4_6():
    for name, raw in BZ10_INPUT.items():
        assert list(raw[1:6]) == BZ10_SCENARIO.choices()
        ex = replay(load_variant(name), raw)
        k = ex.kernel
        assert ex.scenario == BZ10_SCENARIO and ex.input == raw and ex.preemptions == 3
        assert ex.finding is not None, name
        assert (ex.finding.invariant, ex.finding.known_bug) == ("oom_reaper_stalled", "BZ-10")
        assert ex.finding.roles == ("reaper", "victim")
        # The reaper itself is in other_mm's teardown: its pin was the last mm_users reference.
        assert k.oom_reaper_th.thread.waiting_on is k.memory_wait
        other_mm = mm(ex, "other_mm")
        assert other_mm.mm_users.counter == 0 and other_mm.ghost_teardown_waits_memory
        assert other_mm.ghost_reaped and not other_mm.ghost_exit_mmap_done  # nothing freed yet
        assert task(ex, "other").ghost_exit_mm_done  # other's own mmput was not the last
        # The later victim: queued, never popped, stuck behind the allocator's i_mutex.
        victim = task(ex, "victim")
        assert victim.tif & 0x1 and victim.mm is not None and not victim.mm.ghost_reaped
        assert k.oom_reaper_list is victim and victim.thread.waiting_on is k.fs_lock


def test_bz10_same_plan_on_v4_7_reaps_the_later_victim():
    """ec8d7c14ea14: the reaper's last reference goes to a kworker (mmput_async), which waits in
    exit_aio instead; the reaper goes on to reap the victim stuck on i_mutex."""
    ex = replay(load_variant("v4.7"), BZ10_PLAN_V47)
    k = ex.kernel
    assert ex.scenario == BZ10_SCENARIO and ex.input == BZ10_PLAN_V47
    assert ex.status == "ok" and ex.finding is None
    roles = {t.tid: t.role for t in k.m.threads}
    waits = [roles[tid] for tid, site in ex.run.sites if site == "wait(free_memory)"]
    assert waits and set(waits) == {"kworker"}  # the teardown waited, the reaper never did
    events = [(kind, role) for kind, role, _ in k.events]
    # The victim was killed while the allocator still held i_mutex (released after alloc_ok),
    # and reaped: both mms went through the reaper, and the allocation then succeeded.
    assert events.index(("killed", "victim")) < events.index(("alloc_ok", "allocator"))
    assert events.count(("reaped", None)) == 2
    assert mm(ex, "victim_mm").ghost_reaped and mm(ex, "other_mm").ghost_freed


def test_bz10_sync_form_clean_on_v4_7():
    """Bounded DFS (two preemptions) over BZ-10's scenario never leaves v4.7's reaper stalled.

    The v4.6 schedule needs three preemptions, so this alone could not tell the fix apart; the
    replay above pins the same plan on v4.7. This sweeps the neighbourhood of the default
    schedule for any other way into a reaper-side teardown."""
    result = explore(load_variant("v4.7"), "dfs", preemptions=2, scenario=BZ10_SCENARIO)
    assert result.exhausted and result.executions > 1000  # the search really branched
    assert not any(sig.startswith("oom_reaper_stalled") for sig in result.findings), sorted(result.findings)


# BZ-10, first form, with a kernel thread allocating during a suspend (drivers=kalloc,freezer):
# the leader exits, the mmap thread (holding mmap_sem for write) OOM-kills itself; the reaper
# pins victim_mm, fails the trylock and is held there (the one preemption) while the mmap thread
# exits: its mmput is not the last, the reaper's is, and that __mmput waits in exit_aio for
# memory. The kernel thread's next OOM kills the freezer process, which is queued behind the
# blocked reaper and never reaped. Found by BoundedDFS(1) on BZ10_KALLOC_SCENARIO.
BZ10_KALLOC_SCENARIO = Scenario(shape="exit,mmap", drivers="kalloc,freezer", mm="aio")
BZ10_KALLOC_INPUT = {
    "v4.6-rc1": bytes.fromhex("0502000403003b02"),
    "v4.6": bytes.fromhex("0502000403003c02"),  # one more scheduling point: the head read
}


def pinned_finding(name: str, raw: bytes, scenario: Scenario, preemptions: int, invariant: str, bug: str) -> Any:
    """Replay a pinned input: its scenario, its deviation count and the listed bug it shows."""
    ex = replay(load_variant(name), raw)
    assert ex.scenario == scenario and ex.input == raw and ex.preemptions == preemptions
    assert ex.finding is not None, name
    assert (ex.finding.invariant, ex.finding.known_bug) == (invariant, bug)
    return ex


def test_bz10_with_a_kernel_thread_allocating_during_suspend():
    for name, raw in BZ10_KALLOC_INPUT.items():
        ex = pinned_finding(name, raw, BZ10_KALLOC_SCENARIO, 1, "oom_reaper_stalled", "BZ-10")
        k = ex.kernel
        assert k.oom_reaper_th.thread.waiting_on is k.memory_wait
        victim_mm = mm(ex, "victim_mm")
        assert victim_mm.mm_users.counter == 0 and victim_mm.ghost_teardown_waits_memory
        assert task(ex, "sibling").ghost_exit_mm_done  # the mmap thread's mmput was not the last
        # The later victim is the freezer process: queued, never popped, its mm never reaped.
        freezer = task(ex, "freezer")
        assert freezer.tif & 0x1 and k.oom_reaper_list is freezer
        assert not freezer.mm.ghost_reaped
        allocator = task(ex, "allocator")
        assert allocator.flags & PF_KTHREAD and allocator.mm is None


def test_bz10_kalloc_scenario_found_by_dfs_and_clean_on_v4_7():
    """One deviation reaches it on both 4.6 kernels; v4.7's mmput_async never stalls the reaper."""
    for name in BZ10_KALLOC_INPUT:
        result = explore(load_variant(name), "dfs", preemptions=1, scenario=BZ10_KALLOC_SCENARIO)
        assert result.exhausted
        assert any(f.known_bug == "BZ-10" for f in result.findings.values()), (name, sorted(result.findings))
    result = explore(load_variant("v4.7"), "dfs", preemptions=1, scenario=BZ10_KALLOC_SCENARIO)
    assert result.exhausted and result.executions > 300
    assert not any(sig.startswith("oom_reaper_stalled") for sig in result.findings), sorted(result.findings)


# BZ-05 with a kernel thread allocating during a suspend: the kernel thread's OOM kills the
# vfork parent (and its child, which shares the mm) while the parent waits for the child, so the
# freezer skips it (PF_FREEZER_SKIP). The reaper is held inside find_lock_task_mm while the
# freezer polls (nobody left to freeze: the kernel thread is not frozen in this phase) and asks
# for oom_lock; the parent starts exiting; the reaper unmaps and clears its TIF_MEMDIE
# (oom_victims 1 -> 0) while the parent is still in exit_mm, whose last mmput then waits in
# exit_aio for slow I/O; oom_killer_disable returns. Found by BoundedDFS(2) on
# BZ05_KALLOC_SCENARIO (none with one deviation); scenario 198 of 3,150, the first with BZ-05 in
# the <= 2 pass of a search from an empty start.
BZ05_KALLOC_SCENARIO = Scenario(shape="run", other="vfork", drivers="kalloc,freezer", mm="aio_slow")
BZ05_KALLOC_INPUT = {
    "v4.6-rc1": bytes.fromhex("05000304040029010400"),
    "v4.6": bytes.fromhex("0500030404002a000301"),
}


def test_bz05_with_a_kernel_thread_allocating_during_suspend():
    for name, raw in BZ05_KALLOC_INPUT.items():
        ex = pinned_finding(name, raw, BZ05_KALLOC_SCENARIO, 2, "oom_killer_disable_early", "BZ-05")
        k = ex.kernel
        assert ex.finding.roles == ("victim", "freezer")
        victim = task(ex, "victim")
        assert victim.ghost_victim and not victim.ghost_exit_mm_done and not victim.frozen
        assert victim.mm is None and mm(ex, "victim_mm").mm_users.counter == 0  # in exit_aio
        assert not victim.tif & 0x1  # the reaper cleared it, not the victim
        assert mm(ex, "victim_mm").ghost_reaped
        assert k.oom_killer_disabled and k.oom_victims.counter == 0


def test_bz05_kalloc_scenario_clean_on_v4_9():
    """v4.9's reaper never clears TIF_MEMDIE: no schedule with two deviations returns early."""
    result = explore(load_variant("v4.9"), "dfs", preemptions=2, scenario=BZ05_KALLOC_SCENARIO)
    assert result.exhausted and result.executions > 10_000
    assert not any(sig.startswith("oom_killer_disable_early") for sig in result.findings), sorted(result.findings)
