"""Variant v4.6-rc1: the oom_reaper as merged for Linux 4.6-rc1 ("[PATCH 0/9] oom reaper v6",
2016-03-22, plus the other OOM patches of the 4.6 merge window), as a delta on seed-3of2.

What changes against the posted seed (docs/kernel/v4.6-rc1.md):

* The single slot becomes a LIFO queue: ``oom_reaper_list`` is the head, each task links to the
  next through ``tsk->oom_reaper_list``; push and pop happen under ``oom_reaper_lock``. A task
  whose link is non-NULL counts as "already queued" (9/9), a test made without the lock. The
  link of a task pushed onto an empty queue is NULL, so a second push of that task makes it
  point to itself (BZ-07). A popped task's link is never reset.
* ``exit_oom_victim(tsk)`` is a test-and-clear (3/9): only the path that cleared TIF_MEMDIE
  decrements ``oom_victims`` (BZ-03 fixed).
* ``can_oom_reap`` is also cleared for an mm shared with global init (2/9 as merged).
* The reaper calls ``set_freezable()`` and waits freezably (8/9).
* MMF_OOM_KILLED came (6/9) and went (9/9) inside the same merge: the net tree has no OOM MMF
  bit. kernel-model.md lists it for this version; the notes (read from 9/9's diff) win.
* Johannes Weiner's "don't ignore oom score on exiting tasks": an exiting task no longer aborts
  the victim scan. Tetsuo Handa's "make oom_killer_disable() killable": ``mutex_lock_killable``
  replaces the TIF_MEMDIE test. (Both inferred from the mmotm since-4.5 list, not from a tree.)

Not modelled: "do not loop !__GFP_FS allocation if the OOM killer is disabled" (every model
allocation is __GFP_FS, so the bail-out it changes is never taken).
"""

from .. import invariants as inv
from ..linux.oom_kill import OOM_SCAN_ABORT, OOM_SCAN_CONTINUE, OOM_SCAN_OK
from ..linux.sched import (
    OOM_SCORE_ADJ_MIN, PF_KTHREAD, PF_NOFREEZE, TIF_MEMDIE, is_global_init, same_thread_group,
    thread_group_leader,
)
from ..runtime.primitives import (
    SpinLock, atomic_dec_return, atomic_inc_not_zero, down_read_trylock, mutex_lock, mutex_unlock, preempt_point,
    read_once, schedule_timeout, spin_lock, spin_unlock, up_read, wait_event, wake_up,
)

NAME = "v4.6-rc1"
PARENT = "seed-3of2"
SUMMARY = "merged reaper: oom_reaper_list queue (link != NULL = queued), test-and-clear exit_oom_victim"
KNOWN_BUGS = {
    "BZ-05": ("oom_killer_disable_early",),
    # The self-loop is caught at the push; if it were not, the reaper would pop the task over
    # and over and over-put it (its consequences are listed so a later detection still tags).
    "BZ-07": ("oom_reaper_queue_corrupt", "task_refcount_underflow", "task_use_after_free"),
    # kernel-model.md dates these from v4.6, but af8e15cc85a2 is the only change between rc1 and
    # 4.6 and touches none of them: the reaper code they live in is this version's
    # (docs/kernel/v4.6-rc1.md §3 items 3-5).
    "BZ-09": ("spurious_oom_kill",),
    "BZ-10": ("oom_reaper_stalled",),
    "BZ-12": ("unreapable_victim_reselected",),
}
HZ = 100
MAX_OOM_REAP_RETRIES = 10


# ------------------------------------------------------------------------------------------------
# kernel/freezer.c, include/linux/freezer.h


def set_freezable(k):
    """kernel/freezer.c:set_freezable() @ v4.6-rc1: current may now be frozen; freeze if asked."""
    current = k.current
    current.flags &= ~PF_NOFREEZE
    yield from k.try_to_freeze()


# ------------------------------------------------------------------------------------------------
# mm/oom_kill.c


def oom_scan_process_thread(k, task):
    """mm/oom_kill.c:oom_scan_process_thread() @ v4.6-rc1

    "mm: oom_kill: don't ignore oom score on exiting tasks": a PF_EXITING task with an mm is
    scored like any other, no longer a reason to abort. TIF_MEMDIE still aborts.
    # MODEL: oom_task_origin (swapoff/KSM unmerge) is never set, so OOM_SCAN_SELECT is not.
    """
    if k.oom_unkillable_task(task):
        return OOM_SCAN_CONTINUE
    yield from preempt_point(k.m, "scan(TIF_MEMDIE, mm)")
    if task.tif & TIF_MEMDIE:
        return OOM_SCAN_ABORT
    if task.mm is None:
        return OOM_SCAN_CONTINUE
    return OOM_SCAN_OK


def exit_oom_victim(k, tsk):
    """mm/oom_kill.c:exit_oom_victim(tsk) @ v4.6-rc1: test-and-clear tsk's TIF_MEMDIE; only
    the caller that cleared it decrements oom_victims."""
    if not tsk.tif & TIF_MEMDIE:  # test_and_clear_tsk_thread_flag: one atomic bit operation
        return
    tsk.tif &= ~TIF_MEMDIE
    inv.check_memdie_exit_paired(k, tsk, True)
    left = yield from atomic_dec_return(k.oom_victims)
    inv.check_oom_victims(k, tsk)
    if not left:
        wake_up(k.oom_victims_wait)


def oom_killer_disable(k):
    """mm/oom_kill.c:oom_killer_disable() @ v4.6-rc1: killable wait for oom_lock instead of the
    TIF_MEMDIE test; then no new kills, and wait (no timeout) for every victim."""
    locked = yield from mutex_lock(k.oom_lock, k.killed)  # mutex_lock_killable
    if not locked:
        return False
    k.oom_killer_disabled = True
    yield from mutex_unlock(k.oom_lock)
    yield from wait_event(k.oom_victims_wait, lambda: k.oom_victims.counter == 0)
    inv.check_oom_killer_disable_return(k)
    return True


def __oom_reap_task(k, tsk):
    """mm/oom_kill.c:__oom_reap_task() @ v4.6-rc1: reap the mm of tsk's thread group, hide the
    group and clear tsk's TIF_MEMDIE. True means done, False asks for another attempt.

    Unchanged from the seed except that exit_oom_victim is now a test-and-clear, and the
    "reaped process" line (4/9) is printed while mmap_sem is still held.
    """
    inv.check_task_alive(k, tsk, "__oom_reap_task")
    p = yield from k.find_lock_task_mm(tsk)
    if p is None:
        return True
    mm = p.mm
    pinned = yield from atomic_inc_not_zero(mm.mm_users)
    if not pinned:  # cannot happen under task_lock with p->mm set (kernel-model.md §4)
        yield from spin_unlock(p.alloc_lock)
        return True
    mm.ghost_reaper_pin += 1
    yield from spin_unlock(p.alloc_lock)
    ok = yield from down_read_trylock(mm.mmap_sem)
    if ok:
        k.oom_unmap_vmas(mm)  # also the pr_info("oom_reaper: reaped process ...")
        yield from up_read(mm.mmap_sem)
        tsk.signal.oom_score_adj = OOM_SCORE_ADJ_MIN
        yield from k.exit_oom_victim(tsk)
    mm.ghost_reaper_pin -= 1
    yield from k.mmput(mm)  # the last user's teardown runs here, synchronously (BZ-10)
    return ok


def oom_reap_task(k, tsk):
    """mm/oom_kill.c:oom_reap_task() @ v4.6-rc1: ``while (attempts++ < MAX_OOM_REAP_RETRIES &&
    !__oom_reap_task(tsk))`` sleeps HZ/10 between attempts; reports failure; drops the queue's
    task reference. On failure TIF_MEMDIE stays set."""
    attempts = 0
    while True:
        more = attempts < MAX_OOM_REAP_RETRIES  # the post-increment compares the old value
        attempts += 1
        if not more:
            break
        done = yield from k.__oom_reap_task(tsk)
        if done:
            break
        yield from schedule_timeout(k.m, HZ // 10, "schedule_timeout_idle(HZ/10)")
    if attempts > MAX_OOM_REAP_RETRIES:
        # pr_info("oom_reaper: unable to reap pid:%d (%s)"); debug_show_all_locks()
        k.note_reap_gave_up(tsk)
    k.put_task_struct(tsk)


def oom_reaper(k):
    """mm/oom_kill.c:oom_reaper() @ v4.6-rc1: freezable kthread popping the queue's head.

    The wait condition reads the head without oom_reaper_lock; the pop takes the lock and
    leaves the popped task's link as it was.
    # MODEL: freeze_processes() does not freeze kernel threads (no pm_nosig_freezing), so
    # freezing(reaper) is always false here; the freezable wait is kept for fidelity.
    """
    yield from k.set_freezable()
    while True:
        k.loop_pass()
        current = k.current
        yield from wait_event(k.oom_reaper_wait, lambda: k.oom_reaper_list is not None or k.freezing(current))
        yield from k.try_to_freeze()
        tsk = None
        yield from spin_lock(k.oom_reaper_lock)
        if k.oom_reaper_list is not None:
            tsk = k.oom_reaper_list
            k.oom_reaper_list = tsk.oom_reaper_list
            if k.m.tracing:
                k.m.effect(f"popped {tsk.role}; head now {_role(k.oom_reaper_list)}")
        yield from spin_unlock(k.oom_reaper_lock)
        if tsk is not None:
            yield from k.oom_reap_task(tsk)


def wake_oom_reaper(k, tsk, mm):
    """mm/oom_kill.c:wake_oom_reaper(tsk) @ v4.6-rc1: push tsk unless its link says "queued".

    Callers hold oom_lock, so pushes are serialised with each other, not with the reaper's pop.
    The test reads tsk->oom_reaper_list without oom_reaper_lock; it is NULL for a task that
    is the only element of the queue (BZ-07) and for the queue's tail.
    # MODEL: ``mm`` is the victim's mm, passed only for the invariants' ghost bookkeeping.
    """
    if k.oom_reaper_th is None:
        return
    link = yield from read_once(k.m, tsk, "oom_reaper_list", "tsk->oom_reaper_list")
    if link is not None:
        return
    k.get_task_struct(tsk)
    yield from spin_lock(k.oom_reaper_lock)
    tsk.oom_reaper_list = k.oom_reaper_list
    k.oom_reaper_list = tsk
    mm.ghost_reap_queued = True
    if k.m.tracing:
        k.m.effect(f"queued {tsk.role}; its link is {_role(tsk.oom_reaper_list)}")
    inv.check_reaper_queue(k, tsk, k.oom_reaper_list)
    yield from spin_unlock(k.oom_reaper_lock)
    wake_up(k.oom_reaper_wait)


def oom_kill_sharers(k, victim, mm):
    """The sharer loop of mm/oom_kill.c:oom_kill_process() @ v4.6-rc1: can_oom_reap.

    Other processes on the mm are SIGKILLed; one that will keep running on it (a kthread inside
    use_mm, global init, an OOM_SCORE_ADJ_MIN process) is spared and forbids the reap.
    """
    can_oom_reap = True
    k.rcu_read_lock()
    for p in list(k.tasks):
        if not thread_group_leader(p) or not k.process_shares_mm(p, mm):
            continue
        if same_thread_group(p, victim):
            continue
        if p.flags & PF_KTHREAD or is_global_init(p) or p.signal.oom_score_adj == OOM_SCORE_ADJ_MIN:
            can_oom_reap = False
            continue
        yield from k.do_send_sig_info(p)
    k.rcu_read_unlock()
    return can_oom_reap


def oom_init(k):
    """mm/oom_kill.c:oom_init() @ v4.6-rc1: start the oom_reaper kthread (normal priority)."""
    k.oom_reaper_list = None
    k.oom_reaper_lock = SpinLock(k.m, "oom_reaper_lock")
    k.start_oom_reaper()


# ------------------------------------------------------------------------------------------------
# The model's own helpers


def reapable(k, p, mm):
    """The can_oom_reap rule of mm/oom_kill.c:oom_kill_process() @ v4.6-rc1, for invariants:
    no other process on mm is a kthread, global init or OOM_SCORE_ADJ_MIN."""
    for t in k.tasks:
        if t.mm is not mm or same_thread_group(t, p):
            continue
        if t.flags & PF_KTHREAD or is_global_init(t) or t.signal.oom_score_adj == OOM_SCORE_ADJ_MIN:
            return False
    return True


def extra_snapshot(k):
    """The queue from its head, by oid (a cycle is cut at the first repeat)."""
    order, seen, node = [], set(), k.oom_reaper_list
    while node is not None and node.oid not in seen:
        seen.add(node.oid)
        order.append(node.oid)
        node = node.oom_reaper_list
    return (tuple(order), k.oom_reaper_lock.owner is not None)


def _role(t):
    return "NULL" if t is None else t.role
