"""The invariants: named, cited checks that turn a model state into a finding, and their titles.

Safety invariants are called from the model at the exact point where the kernel would go
wrong (a counter decremented below zero, a freed object touched, a queue made cyclic), so
they cost nothing on the common path. Liveness invariants classify an execution that stopped
making progress (``Outcome.LOCKUP`` or ``Outcome.QUIESCENT``); end-of-run invariants check
that every reference taken was dropped. Each function's docstring states the property and the
kernel reason it must hold. Titles name threads by role, never by pid.
"""

from __future__ import annotations

from typing import Any, Iterable

from .linux.sched import TIF_MEMDIE, PF_EXITING, PF_KTHREAD, TASK_DEAD
from .runtime.machine import BLOCKED, DONE, RUNNABLE, SLEEPING, Outcome, Violation

TITLES: dict[str, str] = {
    "oom_victims_underflow": "oom_victims underflow in exit_oom_victim",
    "memdie_unpaired_exit": "oom_victims decremented twice for one TIF_MEMDIE (exit_oom_victim raced)",
    "task_refcount_underflow": "task_struct refcount underflow (put_task_struct without get)",
    "task_use_after_free": "use-after-free of a task_struct",
    "mm_refcount_underflow": "mm_struct refcount underflow",
    "mm_use_after_free": "use-after-free of an mm_struct",
    "vma_use_after_free": "use-after-free of a VMA being unmapped",
    "oom_reaper_queue_corrupt": "oom_reaper queue corrupted: task queued twice or list made cyclic",
    "oom_killer_disable_early": "oom_killer_disable returned while an OOM victim still runs",
    "spurious_oom_kill": "second OOM victim killed while the first one's memory was about to be freed",
    "reaped_live_mm": "oom_reaper unmapped memory that a live, not-dying user still runs on",
    "oom_livelock_victim_stuck": "OOM livelock: a stuck exiting/TIF_MEMDIE task blocks every OOM kill",
    "memdie_stuck_after_reap": "TIF_MEMDIE stuck after a successful reap: OOM killer blocked forever",
    "victim_remarked_after_reap": "OOM ping-pong: the reaper clears TIF_MEMDIE, the OOM killer marks the same task again, forever",
    "victim_never_reaped": "OOM victim never handed to the oom_reaper: lockup",
    "reap_request_dropped": "OOM victim never reaped: its oom_reaper request was dropped (slot busy)",
    "oom_reaper_stalled": "oom_reaper blocked in mm teardown: later victims never reaped",
    "unreapable_victim_reselected": "unreapable OOM victim selected again and again: no other victim ever chosen",
    "oom_deadlock": "deadlock: OOM path threads blocked forever",
    "oom_lockup": "lockup: threads spin in OOM retry loops and nothing changes",
    "task_refcount_leak": "task_struct reference leaked (get without put)",
    "mm_refcount_leak": "mm_struct reference leaked",
    "oom_victims_leak": "oom_victims left non-zero: oom_killer_disable would wait forever",
}


def fail(invariant: str, detail: str, *tasks: Any) -> Violation:
    """Build the violation of ``invariant`` naming the tasks involved by role."""
    return Violation(invariant, detail, tuple(t.role for t in tasks if t is not None))


# ----------------------------------------------------------------------------------------------
# Safety: called from the model at the point of the bug


def check_oom_victims(k: Any, tsk: Any) -> None:
    """oom_victims never goes below zero (mm/oom_kill.c:exit_oom_victim() @ v4.5).

    oom_victims counts tasks with TIF_MEMDIE; oom_killer_disable() waits for it to reach zero.
    A negative value means some decrement had no matching increment, and the wake-up it caused
    came too early.
    """
    if k.oom_victims.counter < 0:
        raise fail("oom_victims_underflow", f"oom_victims is {k.oom_victims.counter}", tsk, k.current)


def check_memdie_exit_paired(k: Any, tsk: Any, was_set: bool) -> None:
    """Every TIF_MEMDIE set→clear pairs with exactly one oom_victims decrement.

    mark_oom_victim() increments oom_victims once per test_and_set of TIF_MEMDIE; a decrement
    for a task whose flag was already clear means two paths both "exited" the same victim.
    """
    if not was_set:
        raise fail(
            "memdie_unpaired_exit",
            f"exit_oom_victim({tsk.role}) found TIF_MEMDIE already clear; oom_victims {k.oom_victims.counter}",
            tsk, k.current,
        )


def check_task_alive(k: Any, tsk: Any, where: str) -> None:
    """No access to a freed task_struct (its last put_task_struct already ran)."""
    if tsk.ghost_freed:
        raise fail("task_use_after_free", f"{where} touched freed task {tsk.role}", tsk, k.current)


def check_task_put(k: Any, tsk: Any) -> None:
    """put_task_struct never drops the refcount below zero."""
    if tsk.usage < 0:
        raise fail("task_refcount_underflow", f"{tsk.role}.usage is {tsk.usage}", tsk, k.current)


def check_mm_alive(k: Any, mm: Any, where: str) -> None:
    """No access to a freed mm_struct (mm_count reached zero and __mmdrop ran)."""
    if mm.ghost_freed:
        raise fail("mm_use_after_free", f"{where} touched freed mm {mm.name}", k.current)


def check_mm_counts(k: Any, mm: Any) -> None:
    """mm_users and mm_count never go below zero."""
    if mm.mm_users.counter < 0 or mm.mm_count.counter < 0:
        raise fail(
            "mm_refcount_underflow",
            f"{mm.name}: mm_users {mm.mm_users.counter}, mm_count {mm.mm_count.counter}",
            k.current,
        )


def check_reaper_queue(k: Any, tsk: Any, head: Any) -> None:
    """The reaper queue is acyclic and holds a task at most once (mm/oom_kill.c @ v4.6-rc1).

    A task queued while already on the list makes its oom_reaper_list point into the list
    again: the reaper then reaps it twice and drops the queue's task reference twice.
    """
    seen = set()
    node, length = head, 0
    while node is not None:
        if node.oid in seen:
            raise fail("oom_reaper_queue_corrupt", f"{node.role} is reachable twice from the queue head", tsk, k.current)
        seen.add(node.oid)
        node = node.oom_reaper_list
        length += 1


def check_user_access(k: Any, tsk: Any) -> None:
    """A live user that was not killed never runs on memory the oom_reaper unmapped.

    The reaper replaces private pages with the zero page; a task that keeps running on the mm
    (a kernel thread that borrowed it, a CLONE_VM sharer that was spared) then reads zeros
    where its data was. can_oom_reap and, from v4.9, MMF_UNSTABLE exist to prevent that.
    """
    mm = tsk.mm
    if mm is not None and mm.ghost_reaped and not tsk.sigkill:
        raise fail("reaped_live_mm", f"{tsk.role} touches {mm.name} after the reaper unmapped it", tsk)


def check_oom_killer_disable_return(k: Any) -> None:
    """oom_killer_disable() returned ⇒ every OOM victim passed exit_mm, or is frozen.

    The PM freezer relies on this: after it returns no victim may still be running and doing
    I/O (kernel/power/process.c:freeze_processes()).
    """
    for p in k.tasks:
        if p is k.current:  # the suspending task itself may have been an OOM victim
            continue
        if p.ghost_victim and not p.ghost_exit_mm_done and not p.frozen:
            raise fail("oom_killer_disable_early", f"{p.role} is a victim still in the kernel", p, k.current)


def check_no_spurious_kill(k: Any, victim: Any) -> None:
    """A new victim is chosen only when no earlier victim's memory is about to be freed anyway.

    The OOM protocol hides a victim from the next selection (TIF_MEMDIE cleared, MMF_ flags)
    on the promise that its memory is gone or going. If an earlier victim's mm still maps
    memory, no task runs on it any more, and the OOM machinery itself holds it (the reaper's
    mm_users pin, a deferred mmput_async, or a hide flag set while memory is still mapped),
    then the next kill comes too early: the memory would have been freed without it. An mm
    the reaper gave up on, or whose teardown itself waits for free memory, is not counted:
    moving on is then the only way forward.
    # MODEL: a teardown by an exiting last user with no OOM flag involved (possible since
    # v4.5 and never changed) is a known, accepted race and is not reported.
    """
    for mm in k.mms:
        if not mm.ghost_victim or mm.ghost_freed or mm.ghost_reap_gave_up or victim.mm is mm:
            continue
        if mm.ghost_teardown_waits_memory or mm.mapped_pages() == 0:
            continue
        if any(p.mm is mm for p in k.tasks):
            continue
        if not (mm.ghost_reaper_pin or mm.ghost_async_put or mm.flags & k.OOM_HIDE_FLAGS):
            continue
        if k.early_kill_accepted(mm):
            continue
        raise fail(
            "spurious_oom_kill",
            f"{victim.role} killed while {mm.name} still maps {mm.mapped_pages()} pages being torn down",
            victim, k.current,
        )


# ----------------------------------------------------------------------------------------------
# Liveness: classify an execution that stopped making progress


def _waiting_allocators(k: Any) -> list:
    return [p for p in k.tasks if p.thread is not None and p.thread.state != DONE and k.allocating.get(p.oid)]


def _memdie(k: Any) -> list:
    return [p for p in k.tasks if p.tif & TIF_MEMDIE and p.state != TASK_DEAD]


def classify_stall(k: Any, outcome: Outcome) -> Violation | None:
    """Name the liveness invariant an execution without progress violates (first match wins).

    None when nobody is left who needs the OOM killer: no allocator waits for memory, no
    freezer waits in oom_killer_disable, and no kernel thread is stuck mid-work. What remains
    then (a writer stuck on its own I/O, a GFP_NOIO wait) is the scenario's closed world, not
    an OOM bug: in a real system the next allocation would invoke the OOM killer.
    """
    idle = k.idle_waits()
    needy = bool(_waiting_allocators(k)) or any(
        t.state in (BLOCKED, SLEEPING)
        and (t.waiting_on is k.oom_victims_wait
             or (t.daemon and t.waiting_on not in idle and t.waiting_on is not k.memory_wait))
        for t in k.m.threads
    )
    if not needy:
        return None
    for check in k.LIVENESS:
        violation = check(k, outcome)
        if violation is not None:
            return violation
    blocked = [
        t.role for t in k.m.threads if t.state in (BLOCKED, SLEEPING) and not t.daemon and t.waiting_on is not k.scenario_wait
    ]
    if outcome == Outcome.LOCKUP:
        return Violation("oom_lockup", f"no progress; waiting: {', '.join(blocked)}", tuple(blocked))
    return Violation("oom_deadlock", f"blocked forever: {', '.join(blocked)}", tuple(blocked))


def reaper_stalled(k: Any, outcome: Outcome) -> Violation | None:
    """The oom_reaper is blocked somewhere other than its idle wait while a victim waits for it."""
    reaper = getattr(k, "oom_reaper_th", None)
    if reaper is None or reaper.thread.state not in (1, 2) or reaper.thread.waiting_on is k.oom_reaper_wait:
        return None
    if reaper.thread.waiting_on is k.oom_lock:
        return None  # v4.7+: the allocator holds oom_lock across its one-tick sleep: a delay
    if reaper.thread.state == 2 and reaper.thread.waiting_on == "timer":
        return None
    pending = [p for p in _memdie(k) if not (p.mm is None)]
    if not pending:
        return None
    blocker = getattr(reaper.thread.waiting_on, "name", reaper.thread.waiting_on)  # no object address
    return fail("oom_reaper_stalled", f"reaper blocked on {blocker!s}", reaper, *pending)


def _victim_mm(p: Any) -> Any:
    """The mm a victim ran on (its lazy active_mm after exit_mm cleared ->mm)."""
    return p.mm if p.mm is not None else p.active_mm


def victim_never_reaped(k: Any, outcome: Outcome) -> Violation | None:
    """Every TIF_MEMDIE victim whose mm the reaper could unmap is eventually handed to it.

    Two causes, two ids: the request was made and dropped (the single slot of the 2016
    postings was busy: ``reap_request_dropped``, BZ-04), or none was ever made (``can_oom_reap``
    was false at kill time, say, and the reason went away: ``victim_never_reaped``).
    """
    if getattr(k, "oom_reaper_th", None) is None or not _waiting_allocators(k):
        return None
    for p in _memdie(k):
        mm = _victim_mm(p)
        if mm is not None and not mm.ghost_reaped and not mm.ghost_reap_queued and not p.ghost_exiting_user:
            if mm.mapped_pages() and k.reapable(p, mm):
                if mm.ghost_reap_dropped:
                    return fail("reap_request_dropped", f"{p.role} holds TIF_MEMDIE; its reaper request was dropped", p)
                return fail("victim_never_reaped", f"{p.role} holds TIF_MEMDIE and was never queued", p)
    return None


def victim_remarked_after_reap(k: Any, outcome: Outcome) -> Violation | None:
    """A reaped victim must not be marked again and again while nothing is freed (a livelock in
    which TIF_MEMDIE comes and goes: the reaper clears it, the next OOM pass sets it again).

    Only a lockup verdict counts, and only for a victim that is itself one of the spinning
    allocators (runnable, in its retry loop): it keeps re-marking itself and the reaper keeps
    clearing the mark, so the set-then-clear cycle is all that happens. A victim marked again
    that then blocks with TIF_MEMDIE (in exit_aio, say) is ``memdie_stuck_after_reap``.
    """
    if outcome != Outcome.LOCKUP or getattr(k, "oom_reaper_th", None) is None:
        return None
    for p in _waiting_allocators(k):
        mm = _victim_mm(p)
        if p.ghost_memdie_sets >= 2 and p.thread.state == RUNNABLE and mm is not None and mm.ghost_reaped:
            return fail("victim_remarked_after_reap", f"{p.role} was reaped, then marked again ({p.ghost_memdie_sets} times)", p)
    return None


def memdie_stuck_after_reap(k: Any, outcome: Outcome) -> Violation | None:
    """After the reaper unmapped a victim's memory, its TIF_MEMDIE must not block the OOM killer."""
    if not _waiting_allocators(k):
        return None
    for p in _memdie(k):
        mm = _victim_mm(p)
        if mm is not None and mm.ghost_reaped:
            return fail("memdie_stuck_after_reap", f"{p.role} was reaped but keeps TIF_MEMDIE", p)
    return None


def unreapable_reselected(k: Any, outcome: Outcome) -> Violation | None:
    """A victim the reaper failed to reap must not be the OOM killer's only choice forever."""
    for p in _memdie(k) + [p for p in k.tasks if p.ghost_victim and p.mm is not None]:
        mm = p.mm
        if mm is not None and mm.ghost_reap_gave_up and _waiting_allocators(k):
            return fail("unreapable_victim_reselected", f"{p.role}'s mm could not be reaped; no other victim chosen", p)
    return None


def victim_stuck(k: Any, outcome: Outcome) -> Violation | None:
    """An exiting or TIF_MEMDIE task that cannot make progress must not block OOM kills forever."""
    if not _waiting_allocators(k):
        return None
    for p in k.tasks:
        if p.state == TASK_DEAD or p.thread is None or p.flags & PF_KTHREAD or p.thread.state not in (1, 2):
            continue
        if p.tif & TIF_MEMDIE or (p.flags & PF_EXITING and p.mm is not None):
            return fail("oom_livelock_victim_stuck", f"{p.role} is stuck and blocks the OOM killer", p)
    return None


# ----------------------------------------------------------------------------------------------
# End of run: every reference taken was dropped


def check_end(k: Any) -> Violation | None:
    """At the end of a complete run: refcounts balanced, no TIF_MEMDIE or oom_victims left."""
    for p in k.all_tasks:
        if p.state == TASK_DEAD and p.usage != 0:
            return fail("task_refcount_leak", f"{p.role} exited with usage {p.usage}", p)
        if p.state != TASK_DEAD and p.usage != 2:
            return fail("task_refcount_leak", f"{p.role} alive with usage {p.usage}", p)
    for mm in k.mms:
        users = sum(1 for p in k.tasks if p.mm is mm)
        if mm.mm_users.counter != users:
            return fail("mm_refcount_leak", f"{mm.name}: mm_users {mm.mm_users.counter}, {users} users")
        if mm.ghost_freed:
            continue
        lazy = sum(1 for p in k.all_tasks if p.active_mm is mm and p.mm is not mm and p.state != TASK_DEAD)
        expected = (1 if users else 0) + lazy + k.mm_pins_by_design(mm)
        if mm.mm_count.counter != expected:
            return fail("mm_refcount_leak", f"{mm.name}: mm_count {mm.mm_count.counter}, expected {expected}")
    if k.has_oom_victims_counter and k.oom_victims.counter != len(_memdie(k)):
        return fail("oom_victims_leak", f"oom_victims {k.oom_victims.counter}, TIF_MEMDIE tasks {len(_memdie(k))}")
    return None


def roles(tasks: Iterable[Any]) -> tuple[str, ...]:
    return tuple(t.role for t in tasks)
