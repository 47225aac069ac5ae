"""Variant v4.6: v4.6-rc1 plus af8e15cc85a2 "oom, oom_reaper: do not enqueue task if it is on
the oom_reaper_list head" (Michal Hocko, 2016-03-29, merged for 4.6-rc2).

The "already queued" test of wake_oom_reaper also refuses the task at the queue's head, so a
task that is the only element (NULL link) can no longer be pushed onto itself: the BZ-07
self-loop is gone. The test is still lockless, and the queue's tail (NULL link, not the head)
still passes it; no other OOM-protocol change was found between 4.6-rc1 and 4.6
(docs/kernel/v4.6.md).
"""

from .. import invariants as inv
from ..runtime.primitives import read_once, spin_lock, spin_unlock, wake_up

NAME = "v4.6"
PARENT = "v4.6-rc1"
SUMMARY = "v4.6-rc1 + af8e15cc85a2: the queue's head is also \"already queued\""
KNOWN_BUGS = {
    "BZ-05": ("oom_killer_disable_early",),
    "BZ-09": ("spurious_oom_kill",),
    "BZ-10": ("oom_reaper_stalled",),
    "BZ-12": ("unreapable_victim_reselected",),
}


def wake_oom_reaper(k, tsk, mm):
    """mm/oom_kill.c:wake_oom_reaper(tsk) @ v4.6: push tsk unless it is the head or its link
    is set.

    Both reads are still made without oom_reaper_lock (callers hold oom_lock; the reaper may
    pop between them).
    # MODEL: ``mm`` is the victim's mm, passed only for the invariants' ghost bookkeeping.
    """
    if k.oom_reaper_th is None:
        return
    head = yield from read_once(k.m, k, "oom_reaper_list", "oom_reaper_list")
    if tsk is head:
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
        link = tsk.oom_reaper_list
        k.m.effect(f"queued {tsk.role}; its link is {'NULL' if link is None else link.role}")
    inv.check_reaper_queue(k, tsk, k.oom_reaper_list)
    yield from spin_unlock(k.oom_reaper_lock)
    wake_up(k.oom_reaper_wait)
