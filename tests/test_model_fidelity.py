"""Model details a source audit (2026-11-26) found wrong, each pinned against the kernel:

- kernel/exit.c:do_exit sets PF_NOFREEZE with TASK_DEAD, so the freezer ignores a zombie
  group leader;
- kernel/fork.c:wait_for_vfork_done leaves the vfork parent uncounted by the freezer
  (freezer_do_not_count / freezer_count);
- kernel/power/process.c:try_to_freeze_tasks outwaits the reaper's ten HZ/10 attempts
  (freeze_timeout_msecs is 20 s; the model waits 1.2 s);
- the posted reaper (mmotm-2016-01, and the seed patch on top of it) forbids the reap when a
  kernel thread inside use_mm or an OOM_SCORE_ADJ_MIN process shares the mm, but not for
  global init;
- v4.9's oom_killer_disable takes a free oom_lock even when the caller was killed
  (mutex_lock_killable).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from oomfuzz.engine.execute import execute
from oomfuzz.engine.linux.power_process import FREEZE_TIMEOUT
from oomfuzz.engine.linux.sched import OOM_SCORE_ADJ_MIN, PF_FREEZER_SKIP, PF_KTHREAD, PF_NOFREEZE
from oomfuzz.engine.runtime.choices import join_input
from oomfuzz.engine.runtime.machine import Machine
from oomfuzz.engine.runtime.strategies import Replay
from oomfuzz.engine.scenario import Scenario
from oomfuzz.engine.variants import load_variant
from oomfuzz.engine.workload import boot

sys.path.insert(0, str(Path(__file__).parent))
from model_lookup import task  # noqa: E402


def default_input(scenario: Scenario) -> bytes:
    return join_input(bytes(scenario.choices()), [])


def drive(gen: Any, limit: int = 50) -> Any:
    """Run a model generator outside the scheduler (for steps that never block); its result."""
    for _ in range(limit):
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
    raise AssertionError("the generator did not finish")


def booted(variant: str, scenario: Scenario) -> tuple[Any, Machine]:
    m = Machine(Replay(default_input(scenario)))
    k = load_variant(variant)(m)
    boot(k, scenario)
    return k, m


def test_a_zombie_leader_does_not_hold_up_the_freezer() -> None:
    # v4.8, no preemption: the leader exits first and stays a zombie while its mmap thread is
    # killed and then stuck in exit_aio; the reaper gives up on it (exit_oom_victim), and the
    # freezer, which walks past the zombie, returns from oom_killer_disable: BZ-05. Counting
    # the zombie as "not frozen yet" made the freezer fail instead, every time.
    ex = execute(load_variant("v4.8"), Replay(bytes.fromhex("050200020301")))
    assert ex.finding is not None and ex.finding.known_bug == "BZ-05"
    leader = task(ex, "victim")
    assert leader.exit_state and leader in ex.kernel.tasks and leader.flags & PF_NOFREEZE


def test_a_waiting_vfork_parent_is_not_counted_by_the_freezer() -> None:
    # Every other user task frozen, the vfork parent waiting for its child: the poll is done.
    scenario = Scenario(shape="run", other="vfork", drivers="alloc,freezer")
    for skip, polls_again in ((True, False), (False, True)):
        k, m = booted("v4.6", scenario)
        freezer = next(t for t in m.threads if t.role == "freezer")
        m.current = freezer
        k.suspend_task, k.system_freezing_cnt, k.pm_freezing = freezer.task, 1, True
        for t in k.tasks:
            t.frozen = t.role not in ("victim", "freezer")
        parent = next(t for t in k.tasks if t.role == "victim")
        parent.flags |= PF_FREEZER_SKIP if skip else 0
        gen = k.try_to_freeze_tasks(True)
        if polls_again:
            assert next(gen) == "try_to_freeze_tasks:usleep"
        else:
            assert drive(gen, limit=1) == 0


def test_the_vfork_parent_waits_uncounted() -> None:
    # The workload's vfork parent waits in wait_for_vfork_done, and the freezer's polls skip it.
    variant = load_variant("v4.6")
    skipped: list[str] = []

    class Spy(variant):  # type: ignore[misc, valid-type]
        def freezer_should_skip(k: Any, p: Any) -> bool:
            if variant.freezer_should_skip(k, p):
                skipped.append(p.role)
                return True
            return False

    scenario = Scenario(shape="run", other="vfork", drivers="alloc,freezer")
    ex = execute(Spy, Replay(default_input(scenario)), tracing=True)
    assert skipped and set(skipped) == {"victim"}
    assert any("wait_for_vfork_done" in s.stack for s in ex.run.trace if s.role == "victim")
    assert not any(t.flags & PF_FREEZER_SKIP for t in ex.kernel.all_tasks)  # freezer_count cleared it


def test_the_freezer_outwaits_the_reaper() -> None:
    # A writer stuck with mmap_sem never freezes: the reaper's ten attempts fail (BZ-12) long
    # before the freezer gives up, after its timeout, with the sleeps between polls doubling.
    variant = load_variant("v4.6")
    gave_up_at: list[int] = []

    class Spy(variant):  # type: ignore[misc, valid-type]
        def thaw_processes(k: Any) -> Any:
            gave_up_at.append(k.m.jiffies)
            return (yield from variant.thaw_processes(k))

    scenario = Scenario(shape="run,stuck_writer", drivers="alloc,freezer")
    ex = execute(Spy, Replay(default_input(scenario)), tracing=True)
    polls = [s for s in ex.run.trace if s.role == "freezer" and s.site == "try_to_freeze_tasks:usleep"]
    reaper_sleeps = [s for s in ex.run.trace if s.role == "reaper" and s.site == "schedule_timeout_idle(HZ/10)"]
    assert len(polls) == 7 and sum(2**i for i in range(7)) > FREEZE_TIMEOUT > sum(2**i for i in range(6))
    assert gave_up_at and gave_up_at[0] > FREEZE_TIMEOUT
    assert len(reaper_sleeps) == 10 and reaper_sleeps[-1].step < polls[-1].step
    assert ex.finding is not None and ex.finding.known_bug == "BZ-12"


@pytest.mark.parametrize("variant", ["mmotm-2016-01", "seed-3of2"])
def test_the_posted_reaper_spares_an_mm_a_kthread_or_an_unkillable_process_uses(variant: str) -> None:
    k, m = booted(variant, Scenario(shape="run", other="clone_vm", drivers="alloc,kthread"))
    victim = next(t for t in k.tasks if t.role == "victim")
    sharer = next(t for t in k.tasks if t.role == "sharer")
    kthread = next(t for t in k.tasks if t.role == "kthread")
    mm = victim.mm
    m.current = next(t for t in m.threads if t.role == "allocator")
    assert kthread.flags & PF_KTHREAD and sharer.mm is mm
    assert drive(k.oom_kill_sharers(victim, mm)) is True and sharer.sigkill  # killed, reapable

    sharer.sigkill = False
    sharer.signal.flags = 0
    kthread.mm = mm  # inside use_mm(mm)
    assert drive(k.oom_kill_sharers(victim, mm)) is False and sharer.sigkill
    kthread.mm = None

    sharer.signal.oom_score_adj = OOM_SCORE_ADJ_MIN
    sharer.sigkill = False
    sharer.signal.flags = 0
    assert drive(k.oom_kill_sharers(victim, mm)) is False and not sharer.sigkill


def test_the_posted_reaper_still_reaps_under_global_init() -> None:
    # Tetsuo's report on the posting (2016-01-07): init is skipped without touching
    # can_oom_reap; the v5 posting and 4.6 forbid the reap instead.
    for variant, reapable in (("mmotm-2016-01", True), ("v4.6-rc1", False)):
        k, m = booted(variant, Scenario(shape="run", other="init_shares", drivers="alloc"))
        victim = next(t for t in k.tasks if t.role == "victim")
        m.current = next(t for t in m.threads if t.role == "allocator")
        assert drive(k.oom_kill_sharers(victim, victim.mm)) is reapable, variant


def test_v4_9_oom_killer_disable_takes_a_free_lock_even_when_killed() -> None:
    k, m = booted("v4.9", Scenario(shape="run", drivers="alloc,freezer"))
    m.current = next(t for t in m.threads if t.role == "freezer")
    m.current.task.sigkill = True
    assert drive(k.oom_killer_disable(FREEZE_TIMEOUT)) is True and k.oom_killer_disabled
