"""mm/oom_kill.c @ v4.5: victim selection, the kill, TIF_MEMDIE and oom_killer_disable.

The v4.5 protocol has no reaper. A victim gets TIF_MEMDIE (access to memory reserves) and
oom_victims counts such tasks; while any task has TIF_MEMDIE, or is exiting with its mm, the
victim scan aborts and nobody else is killed. The victim clears its own TIF_MEMDIE at the end
of exit_mm. oom_killer_disable() (the PM freezer) waits for oom_victims to drop to zero.

Functions appear in the C file's order. Scheduling points: every task_lock, the oom_lock
mutex, the oom_victims atomics, and one point before each unlocked read of another task's
flags in the scan (the race window of kernel-model.md's BZ-01 and BZ-05).
"""

from __future__ import annotations

from typing import Any

from .. import invariants as inv
from ..runtime.primitives import (
    atomic_dec_return, atomic_inc, mutex_lock, mutex_unlock, preempt_point,
    schedule_timeout, spin_lock, spin_unlock, wait_event, wake_up,
)
from .mm_types import get_mm_rss
from .sched import (
    OOM_SCORE_ADJ_MIN, PF_EXITING, PF_KTHREAD, SIGNAL_GROUP_COREDUMP, TIF_MEMDIE,
    is_global_init, same_thread_group, thread_group_leader,
)

OOM_SCAN_OK, OOM_SCAN_CONTINUE, OOM_SCAN_ABORT, OOM_SCAN_SELECT = range(4)
ABORT = object()  # select_bad_process's (struct task_struct *)-1UL


def find_lock_task_mm(k: Any, p: Any) -> Any:
    """mm/oom_kill.c:find_lock_task_mm() @ v4.5: a thread of p's group that still has an mm,
    returned with its task_lock held, or None."""
    k.rcu_read_lock()
    for t in list(p.signal.threads) or [p]:
        yield from spin_lock(t.alloc_lock)
        if t.mm is not None:
            k.rcu_read_unlock()
            return t
        yield from spin_unlock(t.alloc_lock)
    k.rcu_read_unlock()
    return None


def oom_unkillable_task(k: Any, p: Any) -> bool:
    """mm/oom_kill.c:oom_unkillable_task() @ v4.5 (no memcg or nodemask constraint)."""
    return is_global_init(p) or bool(p.flags & PF_KTHREAD)


def oom_badness(k: Any, p: Any) -> Any:
    """mm/oom_kill.c:oom_badness() @ v4.5: rss-based score, 0 for unkillable tasks.

    # MODEL: swap entries, page tables and the CAP_SYS_ADMIN discount are left out; the score
    # is rss pages plus oom_score_adj scaled to totalpages/1000.
    """
    if k.oom_unkillable_task(p):
        return 0
    t = yield from k.find_lock_task_mm(p)
    if t is None:
        return 0
    adj = t.signal.oom_score_adj
    if k.oom_badness_skip(t):
        yield from spin_unlock(t.alloc_lock)
        return 0
    points = get_mm_rss(t.mm)
    yield from spin_unlock(t.alloc_lock)
    points += adj * k.totalpages // 1000
    return points if points > 0 else 1


def oom_badness_skip(k: Any, t: Any) -> bool:
    """The "never select" test of mm/oom_kill.c:oom_badness() @ v4.5 (t holds task_lock, has
    an mm): OOM_SCORE_ADJ_MIN. Later versions add hidden mms and vfork children."""
    return t.signal.oom_score_adj == OOM_SCORE_ADJ_MIN


def oom_scan_process_thread(k: Any, task: Any) -> Any:
    """mm/oom_kill.c:oom_scan_process_thread() @ v4.5"""
    if k.oom_unkillable_task(task):
        return OOM_SCAN_CONTINUE
    yield from preempt_point(k.m, "scan(TIF_MEMDIE, mm, PF_EXITING)")
    if task.tif & TIF_MEMDIE:
        return OOM_SCAN_ABORT
    if task.mm is None:
        return OOM_SCAN_CONTINUE
    if k.task_will_free_mem(task):
        return OOM_SCAN_ABORT
    return OOM_SCAN_OK


def select_bad_process(k: Any) -> Any:
    """mm/oom_kill.c:select_bad_process() @ v4.5: highest badness over every thread, or ABORT.

    Returns (chosen task with a reference held, points) or (ABORT, 0) or (None, 0).
    """
    chosen, chosen_points = None, 0
    k.rcu_read_lock()
    for p in list(k.tasks):
        verdict = yield from k.oom_scan_process_thread(p)
        if verdict == OOM_SCAN_SELECT:
            chosen, chosen_points = p, 1 << 62
            continue
        if verdict == OOM_SCAN_CONTINUE:
            continue
        if verdict == OOM_SCAN_ABORT:
            k.rcu_read_unlock()
            return ABORT, 0
        points = yield from k.oom_badness(p)
        if not points or points < chosen_points:
            continue
        if points == chosen_points and chosen is not None and thread_group_leader(chosen):
            continue
        chosen, chosen_points = p, points
    if chosen is not None:
        k.get_task_struct(chosen)
    k.rcu_read_unlock()
    return chosen, chosen_points


def task_will_free_mem(k: Any, task: Any) -> bool:
    """include/linux/oom.h:task_will_free_mem() @ v4.5: exiting, and not dumping core."""
    return bool(task.flags & PF_EXITING) and not task.signal.flags & SIGNAL_GROUP_COREDUMP


def mark_oom_victim(k: Any, tsk: Any) -> Any:
    """mm/oom_kill.c:mark_oom_victim() @ v4.5: TIF_MEMDIE, thaw, count the victim.

    Callers hold task_lock of a thread that has the mm (or tsk is current), so the victim has
    not passed exit_mm yet (model trap of kernel-model.md §4).
    """
    if tsk.tif & TIF_MEMDIE:  # test_and_set_tsk_thread_flag
        return
    tsk.tif |= TIF_MEMDIE
    tsk.ghost_victim = True
    tsk.ghost_memdie_sets += 1
    if tsk.mm is not None:
        tsk.mm.ghost_victim = True
    k.__thaw_task(tsk)
    yield from atomic_inc(k.oom_victims)


def exit_oom_victim(k: Any) -> Any:
    """mm/oom_kill.c:exit_oom_victim() @ v4.5: current clears its own TIF_MEMDIE."""
    tsk = k.current
    was_set = bool(tsk.tif & TIF_MEMDIE)
    tsk.tif &= ~TIF_MEMDIE  # clear_thread_flag
    inv.check_memdie_exit_paired(k, tsk, was_set)
    left = yield from atomic_dec_return(k.oom_victims)
    inv.check_oom_victims(k, tsk)
    if not left:
        wake_up(k.oom_victims_wait)


def oom_killer_disable(k: Any) -> Any:
    """mm/oom_kill.c:oom_killer_disable() @ v4.5: no new kills; wait for every victim."""
    yield from mutex_lock(k.oom_lock)
    if k.current.tif & TIF_MEMDIE:
        yield from mutex_unlock(k.oom_lock)
        return False
    k.oom_killer_disabled = True
    yield from mutex_unlock(k.oom_lock)
    yield from wait_event(k.oom_victims_wait, lambda: k.oom_victims.counter == 0)
    inv.check_oom_killer_disable_return(k)
    return True


def oom_killer_enable(k: Any) -> None:
    """mm/oom_kill.c:oom_killer_enable() @ v4.5"""
    k.oom_killer_disabled = False


def process_shares_mm(k: Any, p: Any, mm: Any) -> bool:
    """mm/oom_kill.c:process_shares_mm() @ v4.5: the first thread of p with an mm decides."""
    for t in p.signal.threads:
        if t.mm is not None:
            return t.mm is mm
    return False


def oom_kill_process(k: Any, p: Any, points: int, message: str) -> Any:
    """mm/oom_kill.c:oom_kill_process() @ v4.5

    Consumes the caller's reference on p. Steps: an already exiting p only gets TIF_MEMDIE;
    otherwise a child with its own mm and a higher score is sacrificed instead; the victim is
    switched to a thread that still has the mm, SIGKILLed, marked; finally every other user
    process sharing the mm is SIGKILLed too (without TIF_MEMDIE).
    """
    if (yield from k.oom_kill_exiting_shortcut(p)):
        return
    k.log("kill_select", p, points=points)
    victim = yield from k.oom_sacrifice_child(p)
    t = yield from k.find_lock_task_mm(victim)
    if t is None:
        k.put_task_struct(victim)
        return
    if t is not victim:
        k.get_task_struct(t)
        k.put_task_struct(victim)
        victim = t
    mm = victim.mm
    mm.mm_count.counter += 1  # atomic_inc(&mm->mm_count): compare mm after task_unlock
    if message == "Out of memory":  # oom_kill_allocating_task kills without waiting, by design
        inv.check_no_spurious_kill(k, victim)
    yield from k.do_send_sig_info(victim)
    yield from k.mark_oom_victim(victim)
    k.log("killed", victim)
    yield from spin_unlock(victim.alloc_lock)
    can_oom_reap = yield from k.oom_kill_sharers(victim, mm)
    if can_oom_reap:
        yield from k.wake_oom_reaper(victim, mm)
    k.mmdrop(mm)
    k.put_task_struct(victim)


def oom_kill_exiting_shortcut(k: Any, p: Any) -> Any:
    """The first step of mm/oom_kill.c:oom_kill_process() @ v4.5: an exiting p is only marked.

    True when p (with an mm) will free its memory by itself: it gets TIF_MEMDIE, nobody gets
    SIGKILL, and the caller's reference on p is dropped.
    """
    yield from spin_lock(p.alloc_lock)
    if p.mm is not None and k.task_will_free_mem(p):
        yield from k.mark_oom_victim(p)
        yield from spin_unlock(p.alloc_lock)
        k.put_task_struct(p)
        return True
    yield from spin_unlock(p.alloc_lock)
    return False


def oom_sacrifice_child(k: Any, p: Any) -> Any:
    """The child-sacrifice loop of mm/oom_kill.c:oom_kill_process() @ v4.5.

    A child process with a different mm and a higher badness is killed instead of its parent.
    """
    victim, victim_points = p, 0
    # read_lock(&tasklist_lock): no child is released (and freed) during the walk.
    # MODEL: the reader side is modelled as an RCU read section, which defers the free.
    k.rcu_read_lock()
    for t in list(p.signal.threads):
        for child in list(t.children):
            if p.mm is not None and k.process_shares_mm(child, p.mm):
                continue
            child_points = yield from k.oom_badness(child)
            if child_points > victim_points:
                k.put_task_struct(victim)
                victim, victim_points = child, child_points
                k.get_task_struct(victim)
    k.rcu_read_unlock()
    return victim


def oom_kill_sharers(k: Any, victim: Any, mm: Any) -> Any:
    """The loop of mm/oom_kill.c:oom_kill_process() @ v4.5 killing other users of the mm.

    Other thread groups sharing the mm get SIGKILL (no TIF_MEMDIE); kernel threads, global
    init and OOM_SCORE_ADJ_MIN processes are spared. Returns can_oom_reap (always True before
    the reaper exists).
    """
    k.rcu_read_lock()
    for p in list(k.tasks):
        if not thread_group_leader(p) or not k.process_shares_mm(p, mm):
            continue
        if same_thread_group(p, victim) or p.flags & PF_KTHREAD or is_global_init(p):
            continue
        if p.signal.oom_score_adj == OOM_SCORE_ADJ_MIN:
            continue
        yield from k.do_send_sig_info(p)
    k.rcu_read_unlock()
    return True


def wake_oom_reaper(k: Any, tsk: Any, mm: Any) -> Any:
    """No kernel function at v4.5 (there is no reaper yet): the hook oom_kill_process calls
    where later versions wake the reaper; here it does nothing.

    # MODEL: every variant's wake_oom_reaper takes the victim and its mm; the posted reaper
    # (mmotm-2016-01) queues the mm, later versions the task.
    """
    return
    yield


def out_of_memory(k: Any) -> Any:
    """mm/oom_kill.c:out_of_memory() @ v4.5, called with oom_lock held. True = "progress"."""
    current = k.current
    if k.oom_killer_disabled:
        return False
    if (yield from k.out_of_memory_current_shortcut()):
        return True
    if k.sysctl_oom_kill_allocating_task and current.mm is not None and not k.oom_unkillable_task(current) \
            and current.signal.oom_score_adj != OOM_SCORE_ADJ_MIN:
        k.get_task_struct(current)
        yield from k.oom_kill_process(current, 0, "Out of memory (oom_kill_allocating_task)")
        return True
    p, points = yield from k.select_bad_process()
    if p is None:
        # MODEL: the kernel panics ("no killable processes"); the model records it and stops
        # this allocation as failed instead of modelling a panic.
        k.log("no_killable")
        return False
    if p is not ABORT:
        yield from k.oom_kill_process(p, points, "Out of memory")
        yield from schedule_timeout(k.m, 1, "schedule_timeout_killable(1)", k.killed)
    return True


def out_of_memory_current_shortcut(k: Any) -> Any:
    """The fast path of mm/oom_kill.c:out_of_memory() @ v4.5: a dying or exiting current marks
    itself a victim and retries, without killing anyone. True when it applied."""
    current = k.current
    if current.mm is not None and (current.sigkill or k.task_will_free_mem(current)):
        yield from k.mark_oom_victim(current)
        return True
    return False


def pagefault_out_of_memory(k: Any) -> Any:
    """mm/oom_kill.c:pagefault_out_of_memory() @ v4.5"""
    from ..runtime.primitives import mutex_trylock

    got = yield from mutex_trylock(k.oom_lock)
    if not got:
        return
    yield from k.out_of_memory()
    yield from mutex_unlock(k.oom_lock)
