"""Variant v4.9: the "fortify oom killer even more" series (v2, 2016-08-25) and 7c5f64f84483, as
a delta on v4.8 (docs/kernel/v4.9.md).

What changes against v4.8:

* 26db62f179d1: ``mark_oom_victim`` records the victim's mm in ``signal->oom_mm`` (first
  victim thread of the group, pinned on ``mm_count`` until the signal_struct is freed). The
  reaper works on that mm (no find_lock_task_mm) and, in every case, marks it hidden when it
  is done: reaped, found ``mm_users == 0``, or gave up after one round (2/9 drops
  ``MMF_OOM_NOT_REAPABLE``). Hiding an mm whose last ``__mmput`` is still in ``exit_aio`` is
  BZ-13.
* 5/9: ``signal->oom_victims`` is gone; the scan (``oom_evaluate_task``, 7c5f64f84483) aborts
  on ``tsk_is_oom_victim`` unless the victim's mm has ``MMF_OOM_SKIP`` (the renamed
  ``MMF_OOM_REAPED``), which ``__mmput`` now also sets after ``exit_mmap``.
* 6/9: the reaper no longer calls ``exit_oom_victim`` (so ``oom_victims`` only drops in the
  victim's own exit_mm: BZ-05 closed); ``oom_killer_disable`` takes a timeout; the freezer's
  4.7 double check and the reaper's ``set_freezable`` go. 7/9: ``exit_oom_victim`` is
  current-only again.
* 8/9: the reaper sets ``MMF_UNSTABLE`` before unmapping, and a kthread's fault on such an mm
  fails instead of reading the zero page. 9/9: a kthread on the mm no longer forbids the
  reap; only global init does (and hides the mm at kill time).
"""

from .. import invariants as inv
from ..linux.mm_types import MMF_OOM_SKIP, MMF_UNSTABLE
from ..linux.oom_kill import ABORT
from ..linux.power_process import FREEZE_TIMEOUT
from ..linux.sched import (
    OOM_SCORE_ADJ_MIN, PF_KTHREAD, TIF_MEMDIE, is_global_init, same_thread_group, thread_group_leader,
)
from ..runtime.primitives import (
    atomic_inc_not_zero, down_read_trylock, mutex_lock, mutex_unlock, preempt_point,
    schedule_timeout, spin_lock, spin_unlock, up_read, wait_event, wait_event_timeout, write_once,
)

from ..linux.exit import exit_mm as _v4_5_exit_mm
from ..linux.oom_kill import exit_oom_victim as _v4_5_exit_oom_victim

NAME = "v4.9"
PARENT = "v4.8"
SUMMARY = "signal->oom_mm + MMF_OOM_SKIP set by the reaper in every case, reaper leaves TIF_MEMDIE alone"
KNOWN_BUGS = {
    "BZ-13": ("spurious_oom_kill",),
}
ATTRIBUTES = {"OOM_HIDE_FLAGS": MMF_OOM_SKIP}
# 7/9 makes exit_oom_victim() current-only again: exit_mm and exit_oom_victim are v4.5's code.
REUSE = (_v4_5_exit_mm, _v4_5_exit_oom_victim)
HZ = 100
MAX_OOM_REAP_RETRIES = 10
# freeze_timeout_msecs: oom_killer_disable waits as long as the freezer polls (# MODEL: scaled)
OOM_DISABLE_TIMEOUT = FREEZE_TIMEOUT


# ------------------------------------------------------------------------------------------------
# include/linux/oom.h


def tsk_is_oom_victim(k, tsk):
    """include/linux/oom.h:tsk_is_oom_victim() @ v4.9: tsk's group had a victim marked."""
    return tsk.signal.oom_mm is not None


# ------------------------------------------------------------------------------------------------
# mm/oom_kill.c


def oom_badness_skip(k, t):
    """The "never select" test of mm/oom_kill.c:oom_badness() @ v4.9: MMF_OOM_SKIP mms and
    vfork children score 0 too."""
    return t.signal.oom_score_adj == OOM_SCORE_ADJ_MIN or bool(t.mm.flags & MMF_OOM_SKIP) or k.in_vfork(t)


def oom_evaluate_task(k, task, oc):
    """mm/oom_kill.c:oom_evaluate_task() @ v4.9 (7c5f64f84483): score one process into
    ``oc``; 1 stops the walk (a victim still in flight: abort), 0 goes on.

    A victim process is in flight from its first mark_oom_victim until its oom_mm gets
    MMF_OOM_SKIP, whatever its threads' TIF_MEMDIE or ->mm say.
    # MODEL: ``oc`` is struct oom_control reduced to a dict with chosen and chosen_points;
    # is_sysrq_oom and oom_task_origin never apply.
    """
    if k.oom_unkillable_task(task):
        return 0
    yield from preempt_point(k.m, "tsk_is_oom_victim(task)")
    if k.tsk_is_oom_victim(task):
        if task.signal.oom_mm.flags & MMF_OOM_SKIP:
            return 0
        if oc["chosen"] is not None:
            k.put_task_struct(oc["chosen"])
        oc["chosen"] = ABORT
        return 1
    points = yield from k.oom_badness(task)
    if not points or points < oc["chosen_points"]:
        return 0
    if points == oc["chosen_points"] and oc["chosen"] is not None and thread_group_leader(oc["chosen"]):
        return 0
    if oc["chosen"] is not None:
        k.put_task_struct(oc["chosen"])
    k.get_task_struct(task)
    oc["chosen"], oc["chosen_points"] = task, points
    return 0


def select_bad_process(k, oc):
    """mm/oom_kill.c:select_bad_process() @ v4.9: for_each_process into oom_evaluate_task,
    under rcu_read_lock."""
    k.rcu_read_lock()
    for p in list(k.tasks):
        if not thread_group_leader(p):
            continue
        stop = yield from k.oom_evaluate_task(p, oc)
        if stop:
            break
    k.rcu_read_unlock()


def __oom_reap_task_mm(k, tsk, mm):
    """mm/oom_kill.c:__oom_reap_task_mm() @ v4.9: under oom_lock, trylock mmap_sem and
    mmget_not_zero; set MMF_UNSTABLE, unmap, drop the pin with mmput_async. True = done, also
    when mm_users was already 0 (the last __mmput is under way, maybe blocked: BZ-13).

    ``mm`` is tsk->signal->oom_mm, kept alive by the signal's mm_count reference.
    """
    inv.check_mm_alive(k, mm, "__oom_reap_task_mm")
    ret = True
    yield from mutex_lock(k.oom_lock)
    ok = yield from down_read_trylock(mm.mmap_sem)
    if not ok:
        ret = False
    else:
        pinned = yield from atomic_inc_not_zero(mm.mm_users)  # mmget_not_zero
        if not pinned:
            yield from up_read(mm.mmap_sem)
        else:
            mm.ghost_reaper_pin += 1
            mm.flags |= MMF_UNSTABLE  # set_bit, before anything is unmapped (8/9)
            k.oom_unmap_vmas(mm)  # also the pr_info("oom_reaper: reaped process ...")
            yield from up_read(mm.mmap_sem)
            yield from k.mmput_async(mm)
            mm.ghost_reaper_pin -= 1
    yield from mutex_unlock(k.oom_lock)
    return ret


def oom_reap_task(k, tsk):
    """mm/oom_kill.c:oom_reap_task() @ v4.9: up to MAX_OOM_REAP_RETRIES attempts on the
    group's oom_mm; then, whatever happened, reset tsk's link and mark the mm MMF_OOM_SKIP
    (26db62f179d1). TIF_MEMDIE is left to the victim's own exit_mm (6/9)."""
    attempts = 0
    mm = tsk.signal.oom_mm
    while True:
        more = attempts < MAX_OOM_REAP_RETRIES  # the post-increment compares the old value
        attempts += 1
        if not more:
            break
        done = yield from k.__oom_reap_task_mm(tsk, mm)
        if done:
            break
        yield from schedule_timeout(k.m, HZ // 10, "schedule_timeout_idle(HZ/10)")
    if attempts > MAX_OOM_REAP_RETRIES:
        # pr_info("oom_reaper: unable to reap pid:%d (%s)"); debug_show_all_locks()
        k.note_reap_gave_up(tsk)
    yield from write_once(k.m, tsk, "oom_reaper_list", None, "tsk->oom_reaper_list = NULL")
    yield from preempt_point(k.m, "set_bit(MMF_OOM_SKIP)")
    mm.flags |= MMF_OOM_SKIP
    k.put_task_struct(tsk)


def oom_reaper(k):
    """mm/oom_kill.c:oom_reaper() @ v4.9: as before, but no longer freezable (6/9)."""
    while True:
        k.loop_pass()
        yield from wait_event(k.oom_reaper_wait, lambda: k.oom_reaper_list is not None)
        tsk = None
        yield from spin_lock(k.oom_reaper_lock)
        if k.oom_reaper_list is not None:
            tsk = k.oom_reaper_list
            k.oom_reaper_list = tsk.oom_reaper_list
        yield from spin_unlock(k.oom_reaper_lock)
        if tsk is not None:
            yield from k.oom_reap_task(tsk)


def note_reap_gave_up(k, tsk):
    """The reaper gave up on tsk's group ("unable to reap"); the model's record, on oom_mm."""
    mm = tsk.signal.oom_mm
    if mm is not None:
        mm.ghost_reap_gave_up = True
    k.log("unable_to_reap", tsk)


def mark_oom_victim(k, tsk):
    """mm/oom_kill.c:mark_oom_victim() @ v4.9: TIF_MEMDIE; the group's first victim records
    its mm in signal->oom_mm and pins it (atomic_inc(&mm->mm_count); mmgrab() from 4.11).

    Callers hold task_lock of a thread that has the mm, or tsk is current with an mm.
    # MODEL: the test_and_set, the cmpxchg, the increments and the thaw are one step, as in
    # v4.7's model of this function.
    """
    yield from preempt_point(k.m, "test_and_set_tsk_thread_flag(TIF_MEMDIE)")
    mm = tsk.mm
    if tsk.tif & TIF_MEMDIE:
        return
    tsk.tif |= TIF_MEMDIE
    tsk.ghost_victim = True
    tsk.ghost_memdie_sets += 1
    mm.ghost_victim = True
    if tsk.signal.oom_mm is None:  # cmpxchg(&tsk->signal->oom_mm, NULL, mm)
        tsk.signal.oom_mm = mm
        mm.mm_count.counter += 1
    k.__thaw_task(tsk)
    k.oom_victims.counter += 1  # atomic_inc(&oom_victims)
    if k.m.tracing:
        k.m.effect(f"TIF_MEMDIE set on {tsk.role}; oom_victims {k.oom_victims.counter}")


def oom_killer_disable(k, timeout):
    """mm/oom_kill.c:oom_killer_disable(timeout) @ v4.9 (6/9): no new kills, then wait at most
    ``timeout`` for every victim; on a timeout re-enable the OOM killer and fail.

    # MODEL: the wait is wait_event_interruptible_timeout; the freezer is never signalled
    # while it waits there, so only the timeout ends it early.
    """
    locked = yield from mutex_lock(k.oom_lock, k.killed)  # mutex_lock_killable, as since v4.6-rc1
    if not locked:
        return False
    k.oom_killer_disabled = True
    yield from mutex_unlock(k.oom_lock)
    ret = yield from wait_event_timeout(k.oom_victims_wait, lambda: k.oom_victims.counter == 0, timeout)
    if not ret:
        k.oom_killer_enable()
        return False
    inv.check_oom_killer_disable_return(k)
    return True


def task_will_free_mem(k, task):
    """mm/oom_kill.c:task_will_free_mem() @ v4.9: as v4.8, with MMF_OOM_SKIP for the reaped
    test. Callers hold task_lock(task) or task is current."""
    mm = task.mm
    if mm is None:
        return False
    if not k.__task_will_free_mem(task):
        return False
    if mm.flags & MMF_OOM_SKIP:
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


def oom_kill_sharers(k, victim, mm):
    """The sharer loop of mm/oom_kill.c:oom_kill_process() @ v4.9 (9/9): global init on the mm
    forbids the reap and hides the mm (MMF_OOM_SKIP, "has mm pinned by"); a kthread is neither
    killed nor in the way of the reap (MMF_UNSTABLE protects it); everyone else is killed."""
    can_oom_reap = True
    k.rcu_read_lock()
    for p in list(k.tasks):
        if not thread_group_leader(p) or not k.process_shares_mm(p, mm):
            continue
        if same_thread_group(p, victim):
            continue
        if is_global_init(p):
            can_oom_reap = False
            mm.flags |= MMF_OOM_SKIP  # set_bit
            k.log("mm_pinned_by", p)
            continue
        if p.flags & PF_KTHREAD:
            continue
        yield from k.do_send_sig_info(p)
    k.rcu_read_unlock()
    return can_oom_reap


def out_of_memory(k):
    """mm/oom_kill.c:out_of_memory() @ v4.9, called with oom_lock held. True = "progress".

    # MODEL: no OOM notifiers are registered, every allocation is __GFP_FS, no memcg.
    """
    current = k.current
    if k.oom_killer_disabled:
        return False
    if (yield from k.out_of_memory_current_shortcut()):  # as v4.8
        return True
    if k.sysctl_oom_kill_allocating_task and current.mm is not None and not k.oom_unkillable_task(current) \
            and current.signal.oom_score_adj != OOM_SCORE_ADJ_MIN:
        k.get_task_struct(current)
        yield from k.oom_kill_process(current, 0, "Out of memory (oom_kill_allocating_task)")
        return True
    oc = {"chosen": None, "chosen_points": 0}
    yield from k.select_bad_process(oc)
    if oc["chosen"] is None:
        # MODEL: the kernel panics ("no killable processes"); the model stops this allocation.
        k.log("no_killable")
        return False
    if oc["chosen"] is not ABORT:
        yield from k.oom_kill_process(oc["chosen"], oc["chosen_points"], "Out of memory")
        yield from schedule_timeout(k.m, 1, "schedule_timeout_killable(1)", k.killed)
    return True


# ------------------------------------------------------------------------------------------------
# kernel/fork.c


def __put_task_struct(k, t):
    """kernel/fork.c:__put_task_struct() @ v4.9: the task_struct is freed, and with the last
    task of its thread group the signal_struct (put_signal_struct)."""
    t.ghost_freed = True
    if k.m.tracing:
        k.m.effect(f"task {t.role} freed")
    sig = t.signal
    if all(q.usage == 0 for q in k.all_tasks if q.signal is sig):  # sigcnt reached zero
        k.free_signal_struct(sig)


def free_signal_struct(k, sig):
    """kernel/fork.c:free_signal_struct() @ v4.9 (3/9, 4/9): drop oom_mm's mm_count pin.

    # MODEL: mmdrop_async defers __mmdrop to a kworker only because free_signal_struct may
    # run in softirq context; freeing the struct in place changes nothing for the OOM
    # protocol. The freed signal forgets its oom_mm so mm_pins_by_design counts live pins.
    """
    mm = sig.oom_mm
    if mm is not None:
        sig.oom_mm = None
        k.mmdrop(mm)  # mmdrop_async


def __mmput(k, mm):
    """kernel/fork.c:__mmput() @ v4.9 (5/9): after exit_mmap the mm is of no interest to the
    OOM killer any more: MMF_OOM_SKIP.

    # MODEL: uprobe_clear_state, ksm_exit, khugepaged_exit, exe_file and mmlist handling do
    # not interact with the OOM protocol and are left out.
    """
    mm.ghost_teardown = True
    yield from k.exit_aio(mm)
    yield from k.exit_mmap(mm)
    mm.flags |= MMF_OOM_SKIP  # set_bit
    k.mmdrop(mm)


# ------------------------------------------------------------------------------------------------
# kernel/exit.c


# ------------------------------------------------------------------------------------------------
# kernel/power/process.c


def freeze_processes(k):
    """kernel/power/process.c:freeze_processes() @ v4.9 (6/9): oom_killer_disable gets the
    freeze timeout; the 4.7 double check is gone."""
    k.suspend_task = k.current  # PF_SUSPEND_TASK
    k.system_freezing_cnt += 1
    k.pm_freezing = True
    k.log("freezing")
    error = yield from k.try_to_freeze_tasks(True)
    if not error:
        ok = yield from k.oom_killer_disable(OOM_DISABLE_TIMEOUT)
        if not ok:
            error = -16
    if error:
        yield from k.thaw_processes()
    return error


# ------------------------------------------------------------------------------------------------
# mm/memory.c


def kthread_access(k, mm):
    """mm/memory.c:handle_mm_fault() @ v4.9 (8/9), reached from a kernel thread's
    copy_from_user() on a borrowed mm: on an MMF_UNSTABLE mm the fault fails (-EFAULT)
    instead of mapping the zero page where the reaper unmapped data."""
    if mm.flags & MMF_UNSTABLE:
        if k.m.tracing:
            k.m.effect(f"fault on {mm.name}: MMF_UNSTABLE, -EFAULT")
        return
    inv.check_user_access(k, k.current)


# ------------------------------------------------------------------------------------------------
# The model's own helpers


def early_kill_accepted(k, mm):
    """Whether v4.9 accepts, by design, a new OOM kill while mm (an earlier victim's) still
    maps memory; for the spurious-kill check.

    Reaped already (as v4.7), or hidden with MMF_OOM_SKIP at kill time because global init
    shares it (docs/kernel/v4.9.md R9-6). Not excused: MMF_OOM_SKIP set by the reaper on an
    mm it never unmapped because mm_users was already 0 (BZ-13).
    """
    if mm.ghost_reaped:
        return True
    return bool(mm.flags & MMF_OOM_SKIP) and not mm.ghost_reap_queued


def mm_pins_by_design(k, mm):
    """mm_count references held on purpose past the last user: one per live signal_struct
    whose oom_mm is mm (26db62f179d1)."""
    return len({t.signal.oid for t in k.all_tasks if t.signal.oom_mm is mm})


def reapable(k, p, mm):
    """The can_oom_reap rule of mm/oom_kill.c:oom_kill_process() @ v4.9, for invariants: no
    other process on mm is global init."""
    return not any(is_global_init(t) for t in k.tasks if t.mm is mm and not same_thread_group(t, p))


def extra_snapshot(k):
    """The reaper queue from its head, system_wq, and each group's oom_mm."""
    order, seen, node = [], set(), k.oom_reaper_list
    while node is not None and node.oid not in seen:
        seen.add(node.oid)
        order.append(node.oid)
        node = node.oom_reaper_list
    groups = tuple(
        (t.signal.oid, None if t.signal.oom_mm is None else t.signal.oom_mm.oid, t.signal.flags)
        for t in k.tasks if thread_group_leader(t)
    )
    work = tuple((func, mm.oid) for func, mm in k.system_wq)
    return (tuple(order), k.oom_reaper_lock.owner is not None, work, groups)
