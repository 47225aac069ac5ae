"""Hand-written schedules for v4.7, v4.8 and v4.9: BZ-05 (oom_killer_disable returns early),
BZ-12 (unreapable victim reselected), BZ-10's second form (mmput_async defers an unreaped
mm) and BZ-13 (MMF_OOM_SKIP on an mm whose teardown is still in exit_aio), each on the
version that has it and on the version that fixed it.

Every input is pinned as bytes: the scenario's data choices, then the preemptions. BZ-05's
inputs were found by a guided schedule (a priority order of roles per phase of the race), the
others by BoundedDFS on the fixed scenario (BZ-10: one preemption) or are the default schedule.
"""

from __future__ import annotations

import sys
from pathlib import Path

from oomfuzz.engine.execute import execute, replay
from oomfuzz.engine.linux.mm_types import MMF_OOM_NOT_REAPABLE, MMF_OOM_REAPED, MMF_OOM_SKIP
from oomfuzz.engine.runtime.choices import Recording
from oomfuzz.engine.runtime.strategies import BoundedDFS
from oomfuzz.engine.scenario import Scenario
from oomfuzz.engine.variants import load_variant

sys.path.insert(0, str(Path(__file__).parent))
from model_lookup import mm, task  # noqa: E402

# BZ-05: the freezer freezes the victim; the allocator kills it (the thaw leaves PF_FROZEN set
# until the victim runs) and the reaper unmaps it while holding oom_lock; the allocator
# allocates and freezes; the freezer's last poll sees nobody to freeze and waits for oom_lock
# in oom_killer_disable; the reaper drops oom_lock; the freezer disables the OOM killer; the
# victim leaves the refrigerator and starts exiting; the reaper's exit_oom_victim(victim)
# (449d777d7ad6: always) drops oom_victims to 0 and the freezer returns.
BZ05_SCENARIO = Scenario(shape="run", other="none", drivers="alloc,freezer", mm="anon")
BZ05_INPUT = {
    "v4.7": bytes.fromhex("05000002000000030001010101011100030004000300000000010401000102010100000100000200"),
    "v4.8": bytes.fromhex("05000002000000030001010101011100030004000300000000010401000102010100010100000200"),
}
# The same guided plan on v4.9: the reaper no longer clears the victim's TIF_MEMDIE.
BZ05_GUIDED_V49 = bytes.fromhex(
    "0500000200000003000101010101110003000400030000000001020100010201010001010000020005000000020000010b00"
)

# BZ-12: a thread of the victim holds mmap_sem for write and waits for I/O that never
# completes. The default schedule is enough.
BZ12_SCENARIO = Scenario(shape="run,stuck_writer")
BZ12_INPUT = bytes.fromhex("050300000000")

# BZ-10 (second form): the reaper pins mm_users (under oom_lock), its trylock fails against the
# victim's mmap() thread, which then finishes and exits with its sibling; the reaper's pin is
# the last reference, and the allocator's next OOM kill comes before mmput_async's deferred
# __mmput. One preemption: the allocator runs right after the reaper dropped oom_lock.
BZ10_SCENARIO = Scenario(shape="exit,mmap")
BZ10_INPUT = bytes.fromhex("0502000000003d00")

# BZ-13: the victim's last mmput is in exit_aio; the reaper's mmget_not_zero fails, it sets
# MMF_OOM_SKIP anyway, and the allocator kills again. The default schedule.
BZ13_SCENARIO = Scenario(mm="aio_slow")
BZ13_INPUT = bytes.fromhex("050000000400")


def reaper_sites(ex, site):
    tid = ex.kernel.oom_reaper_th.thread.tid
    return sum(1 for t, s in ex.run.sites if t == tid and s == site)


def dfs_signatures(variant, scenario, bound):
    """Every signature of every execution of ``scenario`` with at most ``bound`` preemptions."""
    strategy = BoundedDFS(bound)
    signatures = set()
    while strategy.begin():
        ex = execute(variant, strategy, scenario=scenario)
        strategy.end(ex.run)
        signatures.add(ex.finding.signature if ex.finding else ex.status)
    return signatures


def test_inputs_decode_to_their_scenarios():
    for raw, scenario in (
        (BZ05_INPUT["v4.7"], BZ05_SCENARIO), (BZ12_INPUT, BZ12_SCENARIO),
        (BZ10_INPUT, BZ10_SCENARIO), (BZ13_INPUT, BZ13_SCENARIO),
    ):
        assert list(raw[1:6]) == scenario.choices()
    assert BZ12_INPUT == Recording(data=BZ12_SCENARIO.choices(), picks=[]).to_bytes()
    assert BZ10_INPUT == Recording(data=BZ10_SCENARIO.choices(), picks=[(61, 1)]).to_bytes()


def test_bz05_on_v4_7_and_v4_8():
    for name, raw in BZ05_INPUT.items():
        ex = replay(load_variant(name), raw)
        assert ex.scenario == BZ05_SCENARIO
        assert ex.finding is not None, name
        assert ex.finding.invariant == "oom_killer_disable_early"
        assert ex.finding.known_bug == "BZ-05"
        assert ex.finding.where == "oom_killer_disable"
        victim = task(ex, "victim")
        assert victim.flags & 0x4 and not victim.ghost_exit_mm_done and not victim.frozen
        assert ex.kernel.oom_victims.counter == 0  # dropped by the reaper, not by the victim
        assert ex.input == raw


def test_bz05_replays_identically():
    first = replay(load_variant("v4.7"), BZ05_INPUT["v4.7"])
    second = replay(load_variant("v4.7"), BZ05_INPUT["v4.7"])
    assert first.run.sites == second.run.sites


def test_bz05_scenario_clean_on_v4_9():
    v49 = load_variant("v4.9")
    for raw in (BZ05_GUIDED_V49, BZ05_INPUT["v4.7"], BZ05_INPUT["v4.8"]):
        ex = replay(v49, raw)
        assert ex.status == "ok", ex.finding
        assert task(ex, "victim").ghost_exit_mm_done
    assert "oom_killer_disable_early|oom_killer_disable" not in dfs_signatures(v49, BZ05_SCENARIO, 1)


def test_bz12_on_v4_7_ten_trylocks_per_round():
    ex = replay(load_variant("v4.7"), BZ12_INPUT)
    assert ex.finding.invariant == "unreapable_victim_reselected"
    assert ex.finding.known_bug == "BZ-12"
    victim_mm = mm(ex, "victim_mm")
    assert not victim_mm.flags & MMF_OOM_REAPED  # never hidden
    gave_up = [e for e in ex.kernel.events if e[0] == "unable_to_reap"]
    trylocks = reaper_sites(ex, "down_read(victim_mm.mmap_sem)")
    assert len(gave_up) >= 1
    assert trylocks >= 10 * len(gave_up) and trylocks < 10 * (len(gave_up) + 1)
    # After giving up, the same victim was marked and queued again and a new round of trylocks
    # began: the machine is then exactly as it was in the first round, which is the lockup.
    roles = [t.role for t in ex.kernel.m.threads]
    after = [(roles[t], s) for t, s in ex.run.sites[gave_up[-1][2]:]]
    assert ("allocator", "test_and_set_tsk_thread_flag(TIF_MEMDIE)") in after
    assert ("allocator", "lock(oom_reaper_lock)") in after and ("reaper", "down_read(victim_mm.mmap_sem)") in after


def test_bz12_clean_on_v4_8_two_rounds_then_hidden():
    ex = replay(load_variant("v4.8"), BZ12_INPUT)
    assert ex.finding is None or ex.finding.invariant != "unreapable_victim_reselected"
    victim_mm = mm(ex, "victim_mm")
    assert victim_mm.flags & MMF_OOM_NOT_REAPABLE and victim_mm.flags & MMF_OOM_REAPED
    assert reaper_sites(ex, "down_read(victim_mm.mmap_sem)") == 20  # two rounds of ten
    assert [e[1] for e in ex.kernel.events if e[0] == "unable_to_reap"] == ["victim"]  # "giving up"


def test_bz10_second_form_on_v4_7():
    ex = replay(load_variant("v4.7"), BZ10_INPUT)
    assert ex.finding.invariant == "spurious_oom_kill"
    assert ex.finding.known_bug == "BZ-10"
    assert ex.finding.where == "oom_kill_process"
    victim_mm = mm(ex, "victim_mm")
    assert not victim_mm.ghost_reaped and not victim_mm.flags & MMF_OOM_REAPED  # trylock failed
    assert victim_mm.ghost_reaper_pin == 1 and victim_mm.mm_users.counter == 1  # only the reaper
    assert reaper_sites(ex, "down_read(victim_mm.mmap_sem)") == 1
    assert ex.preemptions == 1


def test_bz10_second_form_clean_on_v4_8():
    """e5e3f4c4f0e9: no mm_users pin before the trylock, mmput_async only after a reap."""
    assert dfs_signatures(load_variant("v4.8"), BZ10_SCENARIO, 1) == {"ok"}
    assert "spurious_oom_kill|oom_kill_process" in dfs_signatures(load_variant("v4.7"), BZ10_SCENARIO, 1)


def test_bz13_on_v4_9_not_on_v4_8():
    ex = replay(load_variant("v4.9"), BZ13_INPUT)
    assert ex.finding.invariant == "spurious_oom_kill"
    assert ex.finding.known_bug == "BZ-13"
    victim_mm = mm(ex, "victim_mm")
    assert victim_mm.flags & MMF_OOM_SKIP and not victim_mm.ghost_reaped
    assert victim_mm.mm_users.counter == 0 and victim_mm.mapped_pages() > 0
    # v4.8 does not hide an mm whose mm_users was already 0 (e5e3f4c4f0e9 on purpose).
    ex48 = replay(load_variant("v4.8"), BZ13_INPUT)
    assert ex48.status == "ok"


def test_v4_9_oom_mm_pins_are_dropped_with_the_signal():
    """signal->oom_mm holds one mm_count reference until the group's last task is freed."""
    ex = replay(load_variant("v4.9"), BZ05_GUIDED_V49)
    victim = task(ex, "victim")
    assert victim.ghost_freed and victim.signal.oom_mm is None
    assert ex.kernel.mm_pins_by_design(mm(ex, "victim_mm")) == 0


# shape=run,run other=indep_big drivers=alloc,freezer mm=hugetlb sysctl=kill_allocating_task, no
# preemption: the allocator kills itself, the reaper clears its TIF_MEMDIE after every reap.
# Pinned in canonical form (it was the raw fuzzer input 9c24279e9851d5, whose byte 0 now marks
# the priority form and whose "other" byte 0x27 read indep_big only while OTHERS had 8 values).
PING_PONG_SCENARIO = Scenario(shape="run,run", other="indep_big", drivers="alloc,freezer", mm="hugetlb",
                              sysctl="kill_allocating_task")
PING_PONG = bytes.fromhex("050107020201")


def test_reaper_ping_pong_is_a_lockup_on_v4_7_and_v4_8():
    assert PING_PONG == Recording(data=PING_PONG_SCENARIO.choices(), picks=[]).to_bytes()
    for name in ("v4.7", "v4.8"):
        ex = replay(load_variant(name), PING_PONG)
        assert ex.scenario == PING_PONG_SCENARIO and ex.input == PING_PONG
        assert ex.status == "finding", name
        assert ex.finding.invariant == "victim_remarked_after_reap", name
        assert ex.finding.roles == ("allocator",) and ex.finding.known_bug is None
        assert ex.preemptions == 0


def test_reaper_ping_pong_clean_where_the_reaper_leaves_tif_memdie_alone():
    for name in ("v4.6", "v4.9"):  # 4.6: the fast path wakes no reaper; 4.9: the reaper keeps TIF_MEMDIE
        assert replay(load_variant(name), PING_PONG).status == "ok", name


def test_bz12_under_random_schedules_is_a_lockup_not_a_step_cap():
    """Random schedules fire the reaper's timer early and preempt anywhere, so the loop-head
    tests rarely meet the same phase of BZ-12's cycle (ten attempts, give-up, re-queue) twice;
    past LONG_RUN steps every loop head looks for a fair repeat of the whole machine. Before
    it, 9 of these 700 seeds ran to the step cap on v4.7."""
    from oomfuzz.engine.kernel import LONG_RUN
    from oomfuzz.engine.runtime.strategies import RandomWalk

    variant, long_runs = load_variant("v4.7"), 0
    for seed in range(700):
        walk = RandomWalk(seed)
        walk.begin()
        ex = execute(variant, walk)
        assert ex.status != "inconclusive", seed
        if ex.steps > LONG_RUN:
            long_runs += 1
            assert ex.finding.known_bug == "BZ-12" and ex.finding.invariant == "unreapable_victim_reselected", seed
    assert long_runs >= 5

