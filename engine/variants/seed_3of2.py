"""Variant seed-3of2: "[PATCH 3/2] oom: clear TIF_MEMDIE after oom_reaper managed to unmap
the address space" exactly as posted (2016-01-11, shared/seed-patch-3of2.txt).

The slot now holds the victim task (pinned with get_task_struct); the reaper finds the mm
through find_lock_task_mm and, after a successful unmap, hides the victim (oom_score_adj =
OOM_SCORE_ADJ_MIN) and calls exit_oom_victim(tsk), which clears TIF_MEMDIE and decrements
oom_victims without testing the flag first. exit_mm calls the same function for itself.
"""

from .. import invariants as inv
from ..linux.sched import OOM_SCORE_ADJ_MIN, TIF_MEMDIE
from ..runtime.primitives import (
    atomic_dec_return, atomic_inc_not_zero, cmpxchg, down_read, down_read_trylock, preempt_point,
    schedule_timeout, spin_lock, spin_unlock, up_read, wait_event, wake_up, write_once,
)

NAME = "seed-3of2"
PARENT = "mmotm-2016-01"
SUMMARY = "reaper slot holds the task; reaper clears TIF_MEMDIE with a plain exit_oom_victim(tsk)"
KNOWN_BUGS = {
    "BZ-03": ("memdie_unpaired_exit", "oom_victims_underflow"),
    "BZ-04": ("reap_request_dropped",),
}
HZ = 100
REAP_ATTEMPTS = 10


def exit_mm(k, tsk):
    """kernel/exit.c:exit_mm() @ seed-3of2: calls exit_oom_victim(tsk) if TIF_MEMDIE is set."""
    mm = tsk.mm
    k.mm_release(tsk, mm)
    if mm is None:
        return
    yield from down_read(mm.mmap_sem)
    mm.mm_count.counter += 1
    yield from spin_lock(tsk.alloc_lock)
    tsk.mm = None
    yield from up_read(mm.mmap_sem)
    yield from spin_unlock(tsk.alloc_lock)
    yield from k.mmput(mm)
    tsk.ghost_exit_mm_done = True
    yield from preempt_point(k.m, "test_thread_flag(TIF_MEMDIE)")
    if tsk.tif & TIF_MEMDIE:
        yield from k.exit_oom_victim(tsk)


def __oom_reap_task(k, tsk):
    """mm/oom_kill.c:__oom_reap_task() @ seed-3of2: reap the mm of tsk's group, then hide it
    and clear its TIF_MEMDIE. True means done."""
    inv.check_task_alive(k, tsk, "__oom_reap_task")
    p = yield from k.find_lock_task_mm(tsk)
    if p is None:
        return True
    mm = p.mm
    pinned = yield from atomic_inc_not_zero(mm.mm_users)
    if not pinned:
        yield from spin_unlock(p.alloc_lock)
        return True
    mm.ghost_reaper_pin += 1
    yield from spin_unlock(p.alloc_lock)
    ok = yield from down_read_trylock(mm.mmap_sem)
    if ok:
        k.oom_unmap_vmas(mm)
        yield from up_read(mm.mmap_sem)
        tsk.signal.oom_score_adj = OOM_SCORE_ADJ_MIN
        yield from k.exit_oom_victim(tsk)
    mm.ghost_reaper_pin -= 1
    yield from k.mmput(mm)
    return ok


def oom_reap_task(k, tsk):
    """mm/oom_kill.c:oom_reap_task() @ seed-3of2: up to 10 attempts, then drop the task ref."""
    attempts = 0
    while True:
        attempts += 1
        if attempts > REAP_ATTEMPTS:
            break
        done = yield from k.__oom_reap_task(tsk)
        if done:
            break
        yield from schedule_timeout(k.m, HZ // 10, "schedule_timeout_idle(HZ/10)")
    if attempts > REAP_ATTEMPTS:
        k.note_reap_gave_up(tsk)
    k.put_task_struct(tsk)


def oom_reaper(k):
    """mm/oom_kill.c:oom_reaper() @ seed-3of2: reap the task in the slot, then free the slot."""
    while True:
        k.loop_pass()
        tsk = yield from wait_event(k.oom_reaper_wait, lambda: k.task_to_reap)
        yield from k.oom_reap_task(tsk)
        yield from write_once(k.m, k, "task_to_reap", None, "WRITE_ONCE(task_to_reap, NULL)")


def wake_oom_reaper(k, tsk, mm):
    """mm/oom_kill.c:wake_oom_reaper(tsk) @ seed-3of2: pin the task, claim the slot."""
    k.get_task_struct(tsk)
    old = yield from cmpxchg(k.m, k, "task_to_reap", None, tsk, "cmpxchg(task_to_reap)")
    if old is None:
        mm.ghost_reap_queued = True
        wake_up(k.oom_reaper_wait)
    else:
        mm.ghost_reap_dropped = True
        if k.m.tracing:
            k.m.effect(f"slot busy with {old.role}: request for {tsk.role} dropped")
        k.put_task_struct(tsk)


def exit_oom_victim(k, tsk):
    """mm/oom_kill.c:exit_oom_victim(tsk) @ seed-3of2: clear tsk's TIF_MEMDIE (no test) and
    decrement oom_victims."""
    # The caller's test of TIF_MEMDIE and this clear are separate instructions: a window.
    yield from preempt_point(k.m, "clear_tsk_thread_flag(TIF_MEMDIE)")
    was_set = bool(tsk.tif & TIF_MEMDIE)
    tsk.tif &= ~TIF_MEMDIE
    inv.check_memdie_exit_paired(k, tsk, was_set)
    left = yield from atomic_dec_return(k.oom_victims)
    inv.check_oom_victims(k, tsk)
    if not left:
        wake_up(k.oom_victims_wait)


def oom_init(k):
    """mm/oom_kill.c:oom_init() @ seed-3of2: as before, with the task slot."""
    k.task_to_reap = None
    k.start_oom_reaper()


def extra_snapshot(k):
    return (None if k.task_to_reap is None else k.task_to_reap.oid,)
