"""Variant mmotm-2016-01: "[PATCH 1/2] mm, oom: introduce oom reaper" as posted (2016-01-06).

A kernel thread, the oom_reaper, unmaps a victim's private anonymous memory so that memory
comes back even when the victim is stuck. The request is a single slot, ``mm_to_reap``: a
request made while the slot is busy is dropped. The reaper never touches TIF_MEMDIE.
"""

from ..invariants import check_mm_alive
from ..linux.mm_types import VM_HUGETLB, VM_LOCKED, VM_SHARED
from ..linux.sched import (
    OOM_SCORE_ADJ_MIN,
    PF_KTHREAD,
    is_global_init,
    same_thread_group,
    signal_struct,
    task_struct,
    thread_group_leader,
)
from ..runtime.primitives import (
    WaitQueue, atomic_inc_not_zero, cmpxchg, down_read_trylock, schedule_timeout,
    up_read, wait_event, wake_up, write_once,
)

NAME = "mmotm-2016-01"
PARENT = "v4.5"
SUMMARY = "posted oom_reaper: single mm_to_reap slot, busy slot drops the request, TIF_MEMDIE kept"
KNOWN_BUGS = {
    "BZ-02": ("memdie_stuck_after_reap",),
    "BZ-04": ("reap_request_dropped",),
}
HZ = 100
REAP_ATTEMPTS = 10


def oom_init(k):
    """mm/oom_kill.c:oom_init() @ mmotm-2016-01: start the oom_reaper kthread."""
    k.mm_to_reap = None
    k.start_oom_reaper()


def start_oom_reaper(k):
    """The kthread_run() of mm/oom_kill.c:oom_init() @ mmotm-2016-01."""
    k.oom_reaper_wait = WaitQueue(k.m, "oom_reaper_wait")
    sig = signal_struct(k.next_oid(), 0)
    th = task_struct(k, k.next_oid(), 2, "reaper", sig)
    th.flags |= PF_KTHREAD
    sig.threads.append(th)
    sig.leader = th
    k.tasks.append(th)
    k.all_tasks.append(th)
    k.oom_reaper_th = th
    th.thread = k.m.spawn("reaper", k.oom_reaper(), th, daemon=True)


def note_reap_gave_up(k, tsk):
    """The reaper failed on tsk's mm (the model's record; later kernels print "unable to reap")."""
    mm = tsk.mm if tsk.mm is not None else tsk.active_mm
    if mm is not None:
        mm.ghost_reap_gave_up = True
    k.log("unable_to_reap", tsk)


def __oom_reap_vmas(k, mm):
    """mm/oom_kill.c:__oom_reap_vmas() @ mmotm-2016-01: unmap private anon memory of mm.

    True means done (reaped, or raced with the exit path); False asks for a retry.
    """
    check_mm_alive(k, mm, "__oom_reap_vmas")
    pinned = yield from atomic_inc_not_zero(mm.mm_users)
    if not pinned:
        return True  # raced with the exit path: it frees the memory
    mm.ghost_reaper_pin += 1
    ok = yield from down_read_trylock(mm.mmap_sem)
    if ok:
        k.oom_unmap_vmas(mm)
        yield from up_read(mm.mmap_sem)
    mm.ghost_reaper_pin -= 1
    yield from k.mmput(mm)
    return ok


def oom_unmap_vmas(k, mm):
    """The VMA walk of mm/oom_kill.c:__oom_reap_vmas() @ mmotm-2016-01 (tlb gather/finish).

    hugetlb and mlocked VMAs are skipped; anonymous or private mappings are unmapped.
    # MODEL: the walk runs under mmap_sem for read with no scheduling point inside; nothing
    # else can change the VMA list meanwhile (writers need mmap_sem for write).
    """
    freed = 0
    for vma in mm.mmap:
        if vma.freed:
            from ..invariants import fail
            raise fail("vma_use_after_free", f"reaper walks a freed VMA of {mm.name}", k.current)
        if vma.vm_flags & (VM_HUGETLB | VM_LOCKED):
            continue
        if not vma.vm_flags & VM_SHARED:
            freed += vma.pages
            vma.pages = 0
    mm.ghost_reaped = True
    k.free_pages_add(freed)
    if k.m.tracing:
        k.m.effect(f"reaped {mm.name}: {freed} pages freed")
    k.log("reaped", None, mm=mm.name)


def oom_reap_vmas(k, mm):
    """mm/oom_kill.c:oom_reap_vmas() @ mmotm-2016-01: retry the trylock up to 10 times."""
    attempts = 0
    while True:
        attempts += 1
        if attempts > REAP_ATTEMPTS:
            break
        done = yield from k.__oom_reap_vmas(mm)
        if done:
            break
        yield from schedule_timeout(k.m, HZ // 10, "schedule_timeout_idle(HZ/10)")
    if attempts > REAP_ATTEMPTS:
        mm.ghost_reap_gave_up = True
        k.log("unable_to_reap", None, mm=mm.name)
    k.mmdrop(mm)


def oom_reaper(k):
    """mm/oom_kill.c:oom_reaper() @ mmotm-2016-01: the kthread's loop over the slot."""
    while True:
        k.loop_pass()
        mm = yield from wait_event(k.oom_reaper_wait, lambda: k.mm_to_reap)
        yield from k.oom_reap_vmas(mm)
        yield from write_once(k.m, k, "mm_to_reap", None, "WRITE_ONCE(mm_to_reap, NULL)")


def wake_oom_reaper(k, tsk, mm):
    """mm/oom_kill.c:wake_oom_reaper(mm) @ mmotm-2016-01: pin mm_count, claim the slot."""
    mm.mm_count.counter += 1
    old = yield from cmpxchg(k.m, k, "mm_to_reap", None, mm, "cmpxchg(mm_to_reap)")
    if old is None:
        mm.ghost_reap_queued = True
        wake_up(k.oom_reaper_wait)
    else:
        mm.ghost_reap_dropped = True
        if k.m.tracing:
            k.m.effect(f"slot busy with {old.name}: request for {mm.name} dropped")
        k.mmdrop(mm)


def oom_kill_sharers(k, victim, mm):
    """The sharer loop of mm/oom_kill.c:oom_kill_process() @ mmotm-2016-01: can_oom_reap.

    Global init is skipped as before, without touching can_oom_reap (the v5 posting fixed
    that, after Tetsuo's report of 2016-01-07). A kernel thread inside use_mm of the mm, or an
    OOM_SCORE_ADJ_MIN process, is neither killed nor may the mm be reaped under it.
    """
    can_oom_reap = True
    k.rcu_read_lock()
    for p in list(k.tasks):
        if not thread_group_leader(p) or not k.process_shares_mm(p, mm):
            continue
        if same_thread_group(p, victim) or is_global_init(p):
            continue
        if p.flags & PF_KTHREAD or p.signal.oom_score_adj == OOM_SCORE_ADJ_MIN:
            can_oom_reap = False
            continue
        yield from k.do_send_sig_info(p)
    k.rcu_read_unlock()
    return can_oom_reap


def extra_snapshot(k):
    return (None if k.mm_to_reap is None else k.mm_to_reap.oid,)
