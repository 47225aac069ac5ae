"""kernel/fork.c (and the refcount inlines of include/linux/sched.h): task and mm references.

Task and mm_count references are atomic and never the first step of a race, so they take no
scheduling point of their own (# MODEL: the window around them is provided by the neighbouring
points). mm_users is the reference the reaper and the exit path race on: its operations are
scheduling points.
"""

from __future__ import annotations

from typing import Any

from .. import invariants as inv
from ..runtime.primitives import atomic_dec_and_test, wait_event


def get_task_struct(k: Any, t: Any) -> None:
    """include/linux/sched.h:get_task_struct() @ v4.5"""
    inv.check_task_alive(k, t, "get_task_struct")
    t.usage += 1


def put_task_struct(k: Any, t: Any) -> None:
    """include/linux/sched.h:put_task_struct() @ v4.5"""
    inv.check_task_alive(k, t, "put_task_struct")
    t.usage -= 1
    inv.check_task_put(k, t)
    if t.usage == 0:
        k.__put_task_struct(t)


def __put_task_struct(k: Any, t: Any) -> None:
    """kernel/fork.c:__put_task_struct() @ v4.5: the task_struct is freed."""
    # MODEL: free_task()/free_signal_struct() reduced to marking the object freed.
    t.ghost_freed = True
    if k.m.tracing:
        k.m.effect(f"task {t.role} freed")


def mmdrop(k: Any, mm: Any) -> None:
    """include/linux/sched.h:mmdrop() @ v4.5"""
    inv.check_mm_alive(k, mm, "mmdrop")
    mm.mm_count.counter -= 1
    inv.check_mm_counts(k, mm)
    if mm.mm_count.counter == 0:
        k.__mmdrop(mm)


def __mmdrop(k: Any, mm: Any) -> None:
    """kernel/fork.c:__mmdrop() @ v4.5: the mm_struct is freed."""
    mm.ghost_freed = True
    if k.m.tracing:
        k.m.effect(f"mm {mm.name} freed")


def mmput(k: Any, mm: Any) -> Any:
    """kernel/fork.c:mmput() @ v4.5: drop a user; the last one tears the address space down."""
    inv.check_mm_alive(k, mm, "mmput")
    last = yield from atomic_dec_and_test(mm.mm_users)
    inv.check_mm_counts(k, mm)
    if last:
        mm.ghost_teardown = True
        # MODEL: uprobe_clear_state, ksm_exit, khugepaged_exit, exe_file and mmlist handling
        # do not interact with the OOM protocol and are left out.
        yield from k.exit_aio(mm)
        yield from k.exit_mmap(mm)
        k.mmdrop(mm)


def mm_release(k: Any, tsk: Any, mm: Any) -> None:
    """kernel/fork.c:mm_release() @ v4.5: complete a vfork parent's wait."""
    # MODEL: futex/robust-list and clear_child_tid handling are left out (they matter for BZ-21,
    # a later kernel's bug).
    if tsk.vfork_done:
        tsk.vfork_done = False
        k.complete_vfork(tsk)


def wait_for_vfork_done(k: Any, child: Any) -> Any:
    """kernel/fork.c:wait_for_vfork_done() @ v4.5: the vfork parent waits (killable) for the
    child to exec or exit, uncounted by the freezer meanwhile."""
    k.freezer_do_not_count()
    yield from wait_event(k.vfork_wait, lambda: not child.vfork_done, killed=k.killed)
    yield from k.freezer_count()
