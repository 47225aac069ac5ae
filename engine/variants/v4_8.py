"""Variant v4.8: "Handle oom bypass more gracefully" and the reaper fixes of the 4.8 merge
window, as a delta on v4.7 (docs/kernel/v4.8.md).

What changes against v4.7:

* e5e3f4c4f0e9: the reaper pins ``mm_count`` under task_lock, takes the trylock, and only then
  pins ``mm_users`` with ``mmget_not_zero``; ``mmput_async`` runs only after a real reap, and
  everything happens under ``oom_lock``. An unreaped mm is no longer handed to a kworker
  (BZ-10's second form closed).
* "do not attempt to reap a task more than twice": a failed round marks the mm
  ``MMF_OOM_NOT_REAPABLE``; a second failed round marks it ``MMF_OOM_REAPED``, hiding it
  (BZ-12 closed). The scan lets a group with TIF_MEMDIE threads pass when a thread that
  still has the mm shows ``MMF_OOM_REAPED``.
* 1af8bb432695 + "skip oom_reaped tasks" + "tighten locking": ``task_will_free_mem`` needs
  the task's mm, a group exit (or a lone exiting thread), no ``MMF_OOM_REAPED``, and every
  other process on the mm dying too; ``try_oom_reaper`` is gone and the fast paths call
  ``wake_oom_reaper`` directly. A SIGKILLed ``current`` no longer takes the fast path alone.
* "kill all tasks sharing the mm": OOM_SCORE_ADJ_MIN sharers are killed too; "hide mm which is
  shared with kthread or global init": such an mm is marked ``MMF_OOM_REAPED`` at kill time
  and not reaped ("has mm pinned by").
* "skip vforked tasks from being selected": ``in_vfork`` tasks score 0.
* "freezer, oom: check TIF_MEMDIE on the correct task": ``freezing_slow_path`` tests ``p``.

Unchanged (so still as v4.7): mark_oom_victim, exit_oom_victim(tsk) (the reaper still calls
it remotely: BZ-05 remains), oom_killer_disable without a timeout, wake_oom_reaper,
oom_reaper, mmput_async, exit_mm, freeze_processes with its double check.
"""

from .. import invariants as inv
from ..linux.mm_types import MMF_OOM_NOT_REAPABLE, MMF_OOM_REAPED
from ..linux.oom_kill import OOM_SCAN_ABORT, OOM_SCAN_CONTINUE, OOM_SCAN_OK
from ..linux.sched import (
    OOM_SCORE_ADJ_MIN, PF_EXITING, PF_KTHREAD, PF_NOFREEZE, SIGNAL_GROUP_COREDUMP, SIGNAL_GROUP_EXIT, TIF_MEMDIE,
    is_global_init, same_thread_group, thread_group_leader,
)
from ..runtime.primitives import (
    atomic_inc_not_zero, down_read_trylock, mutex_lock, mutex_unlock, preempt_point, schedule_timeout,
    spin_lock, spin_unlock, up_read, write_once,
)

NAME = "v4.8"
PARENT = "v4.7"
SUMMARY = "reap at most twice then hide (MMF_OOM_NOT_REAPABLE), mmput_async only after a reap, kill all sharers"
KNOWN_BUGS = {
    "BZ-05": ("oom_killer_disable_early",),
}
HZ = 100
MAX_OOM_REAP_RETRIES = 10


# ------------------------------------------------------------------------------------------------
# include/linux/sched.h


def in_vfork(k, tsk):
    """include/linux/sched.h:in_vfork() @ v4.8: a vfork child still borrowing its parent's mm
    (CLONE_VFORK without CLONE_VM does not count)."""
    parent = tsk.parent
    return bool(tsk.vfork_done) and parent is not None and parent.mm is tsk.mm


# ------------------------------------------------------------------------------------------------
# mm/oom_kill.c


def oom_badness_skip(k, t):
    """The "never select" test of mm/oom_kill.c:oom_badness() @ v4.8: reaped (or hidden) mms
    and vfork children score 0 too."""
    return t.signal.oom_score_adj == OOM_SCORE_ADJ_MIN or bool(t.mm.flags & MMF_OOM_REAPED) or k.in_vfork(t)


def oom_scan_process_thread(k, task):
    """mm/oom_kill.c:oom_scan_process_thread() @ v4.8: a group with TIF_MEMDIE threads aborts
    the scan unless a thread that still has the mm shows MMF_OOM_REAPED (then it is passed
    over). With every thread past exit_mm there is no such thread: abort.

    # MODEL: is_sysrq_oom and oom_task_origin never apply.
    """
    if k.oom_unkillable_task(task):
        return OOM_SCAN_CONTINUE
    yield from preempt_point(k.m, "atomic_read(signal->oom_victims)")
    if task.signal.oom_victims:
        ret = OOM_SCAN_ABORT
        p = yield from k.find_lock_task_mm(task)
        if p is not None:
            if p.mm.flags & MMF_OOM_REAPED:
                ret = OOM_SCAN_CONTINUE
            yield from spin_unlock(p.alloc_lock)
        return ret
    return OOM_SCAN_OK


def __oom_reap_task(k, tsk):
    """mm/oom_kill.c:__oom_reap_task() @ v4.8 (e5e3f4c4f0e9): under oom_lock pin mm_count under
    task_lock, trylock mmap_sem, then mmget_not_zero; only a real reap marks MMF_OOM_REAPED
    and drops the user pin with mmput_async. True = done (also when mm_users was already 0:
    the mm is then not hidden, on purpose)."""
    inv.check_task_alive(k, tsk, "__oom_reap_task")
    ret = True
    yield from mutex_lock(k.oom_lock)
    p = yield from k.find_lock_task_mm(tsk)
    if p is not None:
        mm = p.mm
        mm.mm_count.counter += 1  # atomic_inc(&mm->mm_count)
        yield from spin_unlock(p.alloc_lock)
        ok = yield from down_read_trylock(mm.mmap_sem)
        if not ok:
            ret = False
        else:
            pinned = yield from atomic_inc_not_zero(mm.mm_users)  # mmget_not_zero
            if not pinned:
                yield from up_read(mm.mmap_sem)
            else:
                mm.ghost_reaper_pin += 1
                k.oom_unmap_vmas(mm)  # also the pr_info("oom_reaper: reaped process ...")
                yield from up_read(mm.mmap_sem)
                mm.flags |= MMF_OOM_REAPED  # set_bit
                yield from k.mmput_async(mm)
                mm.ghost_reaper_pin -= 1
        k.mmdrop(mm)
    yield from mutex_unlock(k.oom_lock)
    return ret


def oom_reap_task(k, tsk):
    """mm/oom_kill.c:oom_reap_task() @ v4.8: as v4.7, but a failed round marks the mm
    MMF_OOM_NOT_REAPABLE, and a second failed round ("giving up") MMF_OOM_REAPED.

    The second-round test runs without oom_lock, on whatever thread of tsk's group still has
    the mm; if none does, nothing is marked (the exit path frees the mm anyway).
    """
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
        # pr_info("oom_reaper: unable to reap pid:%d (%s)")
        p = yield from k.find_lock_task_mm(tsk)
        if p is not None:
            mm = p.mm
            if mm.flags & MMF_OOM_NOT_REAPABLE:  # test_and_set_bit
                # pr_info("oom_reaper: giving up pid:%d (%s)")
                mm.flags |= MMF_OOM_REAPED
                k.note_reap_gave_up(p)
            else:
                mm.flags |= MMF_OOM_NOT_REAPABLE
            yield from spin_unlock(p.alloc_lock)
        # debug_show_all_locks()
    yield from write_once(k.m, tsk, "oom_reaper_list", None, "tsk->oom_reaper_list = NULL")
    yield from k.exit_oom_victim(tsk)
    k.put_task_struct(tsk)


def __task_will_free_mem(k, task):
    """mm/oom_kill.c:__task_will_free_mem() @ v4.8: task's process is on its way out (a group
    exit, or a lone exiting thread) and not dumping core."""
    sig = task.signal
    if sig.flags & SIGNAL_GROUP_COREDUMP:
        return False
    if sig.flags & SIGNAL_GROUP_EXIT:
        return True
    if len(sig.threads) <= 1 and task.flags & PF_EXITING:  # thread_group_empty
        return True
    return False


def task_will_free_mem(k, task):
    """mm/oom_kill.c:task_will_free_mem() @ v4.8 (1af8bb432695 + "skip oom_reaped tasks" +
    "tighten locking"): task's mm will go away by itself and may be reaped: task has an mm,
    its process is dying, the mm is not MMF_OOM_REAPED, and every other process on the mm is
    dying too. Callers hold task_lock(task) or task is current."""
    mm = task.mm
    if mm is None:
        return False
    if not k.__task_will_free_mem(task):
        return False
    if mm.flags & MMF_OOM_REAPED:
        return False
    if mm.mm_users.counter <= 1:  # atomic_read
        return True
    for p in list(k.tasks):
        if not thread_group_leader(p) or not k.process_shares_mm(p, mm):
            continue
        if same_thread_group(task, p):
            continue
        if not k.__task_will_free_mem(p):
            return False
    return True


def oom_kill_exiting_shortcut(k, p):
    """The first step of mm/oom_kill.c:oom_kill_process() @ v4.8: if p's mm will go away by
    itself (the fortified task_will_free_mem), p only gets TIF_MEMDIE and is queued directly."""
    yield from spin_lock(p.alloc_lock)
    if k.task_will_free_mem(p):
        yield from k.mark_oom_victim(p)
        yield from k.wake_oom_reaper(p, p.mm)
        yield from spin_unlock(p.alloc_lock)
        k.put_task_struct(p)
        return True
    yield from spin_unlock(p.alloc_lock)
    return False


def oom_kill_sharers(k, victim, mm):
    """The sharer loop of mm/oom_kill.c:oom_kill_process() @ v4.8: every other process on the
    mm is SIGKILLed, OOM_SCORE_ADJ_MIN and vfork children included ("kill all tasks sharing
    the mm"); a kthread or global init on it is spared, forbids the reap and hides the mm
    (MMF_OOM_REAPED, "oom killer %d (%s) has mm pinned by %d (%s)")."""
    can_oom_reap = True
    k.rcu_read_lock()
    for p in list(k.tasks):
        if not thread_group_leader(p) or not k.process_shares_mm(p, mm):
            continue
        if same_thread_group(p, victim):
            continue
        if p.flags & PF_KTHREAD or is_global_init(p):
            can_oom_reap = False
            mm.flags |= MMF_OOM_REAPED  # set_bit
            k.log("mm_pinned_by", p)
            continue
        yield from k.do_send_sig_info(p)
    k.rcu_read_unlock()
    return can_oom_reap


def out_of_memory_current_shortcut(k):
    """The fast path of mm/oom_kill.c:out_of_memory() @ v4.8: task_will_free_mem(current) alone
    (the fatal-signal and ->mm tests moved inside it), and current is queued directly."""
    current = k.current
    if k.task_will_free_mem(current):
        yield from k.mark_oom_victim(current)
        yield from k.wake_oom_reaper(current, current.mm)
        return True
    return False


# ------------------------------------------------------------------------------------------------
# kernel/freezer.c


def freezing_slow_path(k, p):
    """kernel/freezer.c:freezing_slow_path() @ v4.8 ("freezer, oom: check TIF_MEMDIE on the
    correct task"): a task with TIF_MEMDIE is not asked to freeze, nor counted as unfrozen."""
    if p.flags & PF_NOFREEZE or p is k.suspend_task:
        return False
    if p.tif & TIF_MEMDIE:
        return False
    return k.pm_freezing and not p.flags & PF_KTHREAD


# ------------------------------------------------------------------------------------------------
# The model's own helpers


def early_kill_accepted(k, mm):
    """Whether v4.8 accepts, by design, a new OOM kill while mm (an earlier victim's) still
    maps memory; for the spurious-kill check.

    As v4.7 (reaped already: only skipped or re-faulted memory is left), and new: an mm hidden
    with MMF_OOM_REAPED at kill time because a kthread or global init shares it ("has mm pinned
    by"; docs/kernel/v4.8.md R8-7): the cover letter prefers killing something else to a
    lockup. Such an mm was never handed to the reaper.
    """
    if mm.ghost_reaped:
        return True
    return bool(mm.flags & MMF_OOM_REAPED) and not mm.ghost_reap_queued


def reapable(k, p, mm):
    """The can_oom_reap rule of mm/oom_kill.c:oom_kill_process() @ v4.8, for invariants: no
    other process on mm is a kthread or global init."""
    for t in k.tasks:
        if t.mm is not mm or same_thread_group(t, p):
            continue
        if t.flags & PF_KTHREAD or is_global_init(t):
            return False
    return True
