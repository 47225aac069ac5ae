"""Variant v4.7: the oom_reaper after the 4.7 merge window and the late 4.7-rc fixes, as a delta
on v4.6 (docs/kernel/v4.7.md).

What changes against v4.6:

* f44666b04605: ``signal->oom_victims`` counts the TIF_MEMDIE threads of a thread group; the
  victim scan walks thread-group leaders and aborts on that counter (kernel-model.md puts it at
  v4.8; the notes show it in 4.7-rc2 and win).
* 3ef22dfff239: ``try_oom_reaper`` wakes the reaper from the fast paths too (an exiting
  ``current`` in ``out_of_memory``, an exiting chosen task in ``oom_kill_process``), unless a
  live process shares the mm.
* 449d777d7ad6: ``oom_reap_task`` resets the task's link and clears its TIF_MEMDIE whether the
  reap worked or not.
* ``MMF_OOM_REAPED`` replaces the ``oom_score_adj = OOM_SCORE_ADJ_MIN`` trick: a reaped mm
  scores 0 in ``oom_badness``.
* e2fe14564d33: the reaper holds ``oom_lock`` from before its ``mm_users`` pin until after the
  unmap, so no victim is selected in between (BZ-09 closed).
* ec8d7c14ea14: the reaper drops its pin with ``mmput_async``; a last reference hands
  ``__mmput`` to a kworker. The pin is taken, and dropped, even when the trylock failed: the
  deferred teardown of an unreaped mm is BZ-10's second form.
* 98748bd72200: ``task_will_free_mem`` accepts a multi-threaded group only once it is exiting
  as a group.
* 74070542099c: ``freeze_processes`` re-runs ``try_to_freeze_tasks`` after
  ``oom_killer_disable``; ``oom_killer_disable`` itself still returns early (BZ-05).
* The killable ``mmap_sem`` series: ``vm_mmap_pgoff`` waits with ``down_write_killable``.
"""

from .. import invariants as inv
from ..linux.mm_types import MMF_OOM_REAPED
from ..linux.oom_kill import ABORT, OOM_SCAN_ABORT, OOM_SCAN_CONTINUE, OOM_SCAN_OK, OOM_SCAN_SELECT
from ..linux.sched import (
    OOM_SCORE_ADJ_MIN, PF_EXITING, PF_KTHREAD, SIGNAL_GROUP_COREDUMP, SIGNAL_GROUP_EXIT, TIF_MEMDIE,
    fatal_signal_pending, is_global_init, same_thread_group, signal_struct, task_struct, thread_group_leader,
)
from ..runtime.primitives import (
    SpinLock, WaitQueue, atomic_dec_and_test, atomic_dec_return, atomic_inc, atomic_read, down_read_trylock,
    down_write, mutex_lock, mutex_unlock, preempt_point, schedule_timeout, spin_lock, spin_unlock, up_read,
    up_write, wait_event, wake_up, write_once,
)

NAME = "v4.7"
PARENT = "v4.6"
SUMMARY = "reaper under oom_lock, mmput_async, TIF_MEMDIE cleared even on failure, MMF_OOM_REAPED, fast paths queue"
KNOWN_BUGS = {
    "BZ-05": ("oom_killer_disable_early",),
    "BZ-10": ("spurious_oom_kill",),
    "BZ-12": ("unreapable_victim_reselected",),
}
ATTRIBUTES = {"OOM_HIDE_FLAGS": MMF_OOM_REAPED}
HZ = 100
MAX_OOM_REAP_RETRIES = 10


# ------------------------------------------------------------------------------------------------
# include/linux/oom.h


def task_will_free_mem(k, task):
    """include/linux/oom.h:task_will_free_mem() @ v4.7 (98748bd72200): exiting, not dumping
    core, and either alone in its thread group or exiting as a whole group. ``task->mm`` is not
    looked at (callers test it)."""
    sig = task.signal
    if sig.flags & SIGNAL_GROUP_COREDUMP:
        return False
    if not task.flags & PF_EXITING:
        return False
    if len(sig.threads) > 1 and not sig.flags & SIGNAL_GROUP_EXIT:  # !thread_group_empty
        return False
    return True


# ------------------------------------------------------------------------------------------------
# mm/oom_kill.c


def oom_badness_skip(k, t):
    """The "never select" test of mm/oom_kill.c:oom_badness() @ v4.7: an mm the reaper
    unmapped (MMF_OOM_REAPED) scores 0 too."""
    return t.signal.oom_score_adj == OOM_SCORE_ADJ_MIN or bool(t.mm.flags & MMF_OOM_REAPED)


def oom_scan_process_thread(k, task):
    """mm/oom_kill.c:oom_scan_process_thread() @ v4.7 (f44666b04605): ``task`` is a thread-group
    leader; any TIF_MEMDIE thread of its group (signal->oom_victims) aborts the scan, even one
    that already left exit_mm. An mm-less leader is left to oom_badness.

    # MODEL: is_sysrq_oom and oom_task_origin never apply.
    """
    if k.oom_unkillable_task(task):
        return OOM_SCAN_CONTINUE
    yield from preempt_point(k.m, "atomic_read(signal->oom_victims)")
    if task.signal.oom_victims:
        return OOM_SCAN_ABORT
    return OOM_SCAN_OK


def select_bad_process(k):
    """mm/oom_kill.c:select_bad_process() @ v4.7: for_each_process (leaders only) under
    rcu_read_lock, highest badness wins; returns (chosen with a reference, points), (ABORT, 0)
    or (None, 0)."""
    chosen, chosen_points = None, 0
    k.rcu_read_lock()
    for p in list(k.tasks):
        if not thread_group_leader(p):
            continue
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
        chosen, chosen_points = p, points
    if chosen is not None:
        k.get_task_struct(chosen)
    k.rcu_read_unlock()
    return chosen, chosen_points


def __oom_reap_task(k, tsk):
    """mm/oom_kill.c:__oom_reap_task() @ v4.7: under oom_lock (e2fe14564d33) pin the mm of
    tsk's group, unmap it if the trylock works and mark it MMF_OOM_REAPED; drop the pin with
    mmput_async (ec8d7c14ea14) after oom_lock, on success and on failure alike. True = done.

    The pin is a plain atomic_inc: under find_lock_task_mm's task_lock ``p->mm`` is set, so
    mm_users >= 1 (kernel-model.md §4).
    """
    inv.check_task_alive(k, tsk, "__oom_reap_task")
    ret = True
    mm = None
    yield from mutex_lock(k.oom_lock)
    p = yield from k.find_lock_task_mm(tsk)
    if p is not None:
        mm = p.mm
        yield from atomic_inc(mm.mm_users)
        mm.ghost_reaper_pin += 1
        yield from spin_unlock(p.alloc_lock)
        ok = yield from down_read_trylock(mm.mmap_sem)
        if not ok:
            ret = False
        else:
            k.oom_unmap_vmas(mm)  # also the pr_info("oom_reaper: reaped process ...")
            yield from up_read(mm.mmap_sem)
            mm.flags |= MMF_OOM_REAPED  # set_bit
    yield from mutex_unlock(k.oom_lock)
    if mm is not None:
        yield from k.mmput_async(mm)
        mm.ghost_reaper_pin -= 1
    return ret


def oom_reap_task(k, tsk):
    """mm/oom_kill.c:oom_reap_task() @ v4.7: ``while (attempts++ < MAX_OOM_REAP_RETRIES &&
    !__oom_reap_task(tsk))`` with HZ/10 sleeps; then (449d777d7ad6) reset tsk's link and clear
    its TIF_MEMDIE whatever happened, and drop the queue's task reference."""
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
    yield from write_once(k.m, tsk, "oom_reaper_list", None, "tsk->oom_reaper_list = NULL")
    yield from k.exit_oom_victim(tsk)
    k.put_task_struct(tsk)


def try_oom_reaper(k, tsk):
    """mm/oom_kill.c:try_oom_reaper() @ v4.7 (3ef22dfff239): queue a fast-path victim unless
    another process on its mm is alive (no fatal signal, no group exit).

    Callers hold task_lock(tsk) or tsk is current, so ``tsk->mm`` is stable. The sharing test
    is process_shares_mm (first thread with an mm decides), read without locks; tsk's own
    process is among those tested.
    """
    mm = tsk.mm
    if mm is None:
        return
    users = yield from atomic_read(mm.mm_users)
    if users > 1:
        for p in list(k.tasks):
            if not thread_group_leader(p) or not k.process_shares_mm(p, mm):
                continue
            if fatal_signal_pending(p):
                continue
            if p.signal.flags & SIGNAL_GROUP_EXIT:  # signal_group_exit
                continue
            if k.m.tracing:
                k.m.effect(f"{p.role} still runs on {mm.name}: not queued")
            return
    yield from k.wake_oom_reaper(tsk, mm)


def mark_oom_victim(k, tsk):
    """mm/oom_kill.c:mark_oom_victim() @ v4.7: TIF_MEMDIE, the group's and the global count.

    Callers hold task_lock of a thread that has the mm, or tsk is current with an mm (model
    trap of kernel-model.md §4).
    # MODEL: the test_and_set, both increments and the thaw are one step. In the kernel they
    # run back to back with preemption off under task_lock; a remote exit_oom_victim slipping
    # between the bit and the increments only makes oom_victims dip below its final value.
    """
    yield from preempt_point(k.m, "test_and_set_tsk_thread_flag(TIF_MEMDIE)")
    if tsk.tif & TIF_MEMDIE:
        return
    tsk.tif |= TIF_MEMDIE
    tsk.ghost_victim = True
    tsk.ghost_memdie_sets += 1
    if tsk.mm is not None:
        tsk.mm.ghost_victim = True
    tsk.signal.oom_victims += 1  # atomic_inc(&tsk->signal->oom_victims)
    k.__thaw_task(tsk)
    k.oom_victims.counter += 1  # atomic_inc(&oom_victims)
    if k.m.tracing:
        k.m.effect(f"TIF_MEMDIE set on {tsk.role}; oom_victims {k.oom_victims.counter}")


def exit_oom_victim(k, tsk):
    """mm/oom_kill.c:exit_oom_victim(tsk) @ v4.7: test-and-clear tsk's TIF_MEMDIE; the winner
    decrements the group's and the global count and wakes oom_killer_disable at zero.

    Called by the victim (exit_mm) and, remotely, by the reaper (oom_reap_task).
    """
    if not tsk.tif & TIF_MEMDIE:  # test_and_clear_tsk_thread_flag: one atomic bit operation
        return
    tsk.tif &= ~TIF_MEMDIE
    tsk.signal.oom_victims -= 1  # atomic_dec(&tsk->signal->oom_victims)
    inv.check_memdie_exit_paired(k, tsk, True)
    left = yield from atomic_dec_return(k.oom_victims)
    inv.check_oom_victims(k, tsk)
    if not left:
        wake_up(k.oom_victims_wait)


def oom_kill_exiting_shortcut(k, p):
    """The first step of mm/oom_kill.c:oom_kill_process() @ v4.7: an exiting p with an mm only
    gets TIF_MEMDIE and, new in 4.7, goes to the reaper through try_oom_reaper."""
    yield from spin_lock(p.alloc_lock)
    if p.mm is not None and k.task_will_free_mem(p):
        yield from k.mark_oom_victim(p)
        yield from k.try_oom_reaper(p)
        yield from spin_unlock(p.alloc_lock)
        k.put_task_struct(p)
        return True
    yield from spin_unlock(p.alloc_lock)
    return False


def out_of_memory_current_shortcut(k):
    """The fast path of mm/oom_kill.c:out_of_memory() @ v4.7: a dying or exiting current marks
    itself and, new in 4.7, is queued to the reaper (try_oom_reaper).
    # MODEL: no OOM notifiers are registered, and every allocation is __GFP_FS (the NOFS
    # bail-out moved into out_of_memory in 4.7 never applies).
    """
    current = k.current
    if current.mm is not None and (fatal_signal_pending(current) or k.task_will_free_mem(current)):
        yield from k.mark_oom_victim(current)
        yield from k.try_oom_reaper(current)
        return True
    return False


def oom_init(k):
    """mm/oom_kill.c:oom_init() @ v4.7: the reaper queue and kthread; plus system_wq's kworker,
    which mmput_async (new in 4.7) needs."""
    k.oom_reaper_list = None
    k.oom_reaper_lock = SpinLock(k.m, "oom_reaper_lock")
    k.start_oom_reaper()
    k.start_kworker()


# ------------------------------------------------------------------------------------------------
# kernel/fork.c (ec8d7c14ea14 splits the teardown out of mmput into __mmput)


def __mmput(k, mm):
    """kernel/fork.c:__mmput() @ v4.7: the last user is gone; tear the address space down.

    # MODEL: uprobe_clear_state, ksm_exit, khugepaged_exit, exe_file and mmlist handling do
    # not interact with the OOM protocol and are left out.
    """
    mm.ghost_teardown = True
    yield from k.exit_aio(mm)
    yield from k.exit_mmap(mm)
    k.mmdrop(mm)


def mmput(k, mm):
    """kernel/fork.c:mmput() @ v4.7: drop a user; the last one runs __mmput synchronously."""
    inv.check_mm_alive(k, mm, "mmput")
    last = yield from atomic_dec_and_test(mm.mm_users)
    inv.check_mm_counts(k, mm)
    if last:
        yield from k.__mmput(mm)


def mmput_async_fn(k, mm):
    """kernel/fork.c:mmput_async_fn() @ v4.7: the work item of mmput_async, run by a kworker."""
    yield from k.__mmput(mm)
    mm.ghost_async_put = False


def mmput_async(k, mm):
    """kernel/fork.c:mmput_async() @ v4.7 (ec8d7c14ea14): like mmput, but the last user's
    __mmput is queued as mm->async_put_work instead of run by the caller."""
    inv.check_mm_alive(k, mm, "mmput_async")
    last = yield from atomic_dec_and_test(mm.mm_users)
    inv.check_mm_counts(k, mm)
    if last:
        mm.ghost_async_put = True
        k.schedule_work("mmput_async_fn", mm)


# ------------------------------------------------------------------------------------------------
# kernel/workqueue.c (just enough for mm->async_put_work)


def schedule_work(k, func, mm):
    """kernel/workqueue.c:schedule_work() @ v4.7: queue mm's work item on system_wq unless it is
    already pending (WORK_STRUCT_PENDING); the item is (work function name, mm)."""
    work = (func, mm)
    if work not in k.system_wq:
        k.system_wq.append(work)
        if k.m.tracing:
            k.m.effect(f"{func}({mm.name}) queued on system_wq")
        wake_up(k.system_wq_wait)


def worker_thread(k):
    """kernel/workqueue.c:worker_thread() @ v4.7: a kworker runs system_wq's items in order.

    # MODEL: one kworker serves system_wq. The kernel's concurrency-managed pool would start
    # another worker while this one sleeps in a work item; with at most one deferred teardown
    # per victim mm in the model's scenarios, the one worker only serialises what the real
    # pool could overlap. When the kworker gets to run is a scheduling choice: that is the
    # "arbitrarily late" of BZ-10's second form.
    """
    while True:
        yield from wait_event(k.system_wq_wait, lambda: k.system_wq)
        func, mm = k.system_wq.pop(0)
        yield from getattr(k, func)(mm)


def start_kworker(k):
    """The system_wq worker pool, started at boot (here: by oom_init)."""
    k.system_wq = []
    k.system_wq_wait = WaitQueue(k.m, "system_wq")
    sig = signal_struct(k.next_oid(), 0)
    th = task_struct(k, k.next_oid(), 4, "kworker", sig)
    th.flags |= PF_KTHREAD
    sig.threads.append(th)
    sig.leader = th
    k.tasks.append(th)
    k.all_tasks.append(th)
    th.thread = k.m.spawn("kworker", k.worker_thread(), th, daemon=True)


# ------------------------------------------------------------------------------------------------
# kernel/exit.c


# ------------------------------------------------------------------------------------------------
# kernel/power/process.c


def freeze_processes(k):
    """kernel/power/process.c:freeze_processes() @ v4.7 (74070542099c): after
    oom_killer_disable, check once more that user space is frozen; a victim the reaper
    released while it still runs keeps that second pass from succeeding."""
    k.suspend_task = k.current  # PF_SUSPEND_TASK
    k.system_freezing_cnt += 1
    k.pm_freezing = True
    k.log("freezing")
    error = yield from k.try_to_freeze_tasks(True)
    if not error:
        ok = yield from k.oom_killer_disable()
        if not ok:
            error = -16
    if not error:
        # pr_info("Double checking all user space processes after OOM killer disable... ")
        error = yield from k.try_to_freeze_tasks(True)
    if error:
        yield from k.thaw_processes()
    return error


# ------------------------------------------------------------------------------------------------
# mm/util.c (the killable mmap_sem series)


def vm_mmap_pgoff(k, pages):
    """mm/util.c:vm_mmap_pgoff() @ v4.7: mmap() takes mmap_sem with down_write_killable.

    A SIGKILLed caller still waiting for the lock gives up with -EINTR (False); one that already
    holds it carries on (kernel-model.md: the writer of BZ-01).
    # MODEL: as v4.5, the mapping is populated while mmap_sem is held for write.
    """
    tsk = k.current
    mm = tsk.mm
    locked = yield from down_write(mm.mmap_sem, killed=k.killed)
    if not locked:
        return False
    ok = yield from k.__alloc_pages(pages)
    if ok:
        k.add_pages(mm, pages)
    yield from up_write(mm.mmap_sem)
    return ok


# ------------------------------------------------------------------------------------------------
# The model's own helpers


def early_kill_accepted(k, mm):
    """Whether this kernel accepts, by design, a new OOM kill while mm (an earlier victim's,
    held by the OOM machinery) still maps memory; for the spurious-kill check.

    v4.7: the reaper unmapped mm already. What is still mapped is what it must skip (mlocked
    memory) or what the dying victim faulted in afterwards, and the deferred __mmput of the
    reaper's last reference frees it later: accepted in the 2016-06-07 thread ("the real
    content would be already freed", docs/kernel/v4.8.md R8-3, true of 4.7 as well).
    """
    return mm.ghost_reaped


def idle_waits(k):
    """Where the reaper and the kworker sleep when they have nothing to do."""
    return (k.oom_reaper_wait, k.system_wq_wait)


def reapable(k, p, mm):
    """The can_oom_reap rule of mm/oom_kill.c:oom_kill_process() @ v4.7, for invariants: no
    other process on mm is a kthread, global init or OOM_SCORE_ADJ_MIN."""
    for t in k.tasks:
        if t.mm is not mm or same_thread_group(t, p):
            continue
        if t.flags & PF_KTHREAD or is_global_init(t) or t.signal.oom_score_adj == OOM_SCORE_ADJ_MIN:
            return False
    return True


def extra_snapshot(k):
    """The reaper queue from its head, system_wq, and the per-group OOM state."""
    order, seen, node = [], set(), k.oom_reaper_list
    while node is not None and node.oid not in seen:
        seen.add(node.oid)
        order.append(node.oid)
        node = node.oom_reaper_list
    groups = tuple((t.signal.oid, t.signal.oom_victims, t.signal.flags) for t in k.tasks if thread_group_leader(t))
    work = tuple((func, mm.oid) for func, mm in k.system_wq)
    return (tuple(order), k.oom_reaper_lock.owner is not None, work, groups)
