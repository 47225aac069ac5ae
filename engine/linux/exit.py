"""kernel/exit.c: do_exit, exit_mm and group exit."""

from __future__ import annotations

from typing import Any

from ..runtime.primitives import down_read, preempt_point, spin_lock, spin_unlock, up_read
from .sched import PF_EXITING, PF_NOFREEZE, SIGNAL_GROUP_EXIT, TASK_DEAD, TIF_MEMDIE


def release_task(k: Any, p: Any) -> None:
    """kernel/exit.c:release_task() @ v4.5: unhash the task and drop the "alive" reference.

    A group leader that exits before its threads stays in the task list as a zombie (mm
    NULL, still walked by for_each_process) until the last thread is released.
    # MODEL: every exiting task is auto-reaped (its parent ignores SIGCHLD).
    """
    sig = p.signal
    leader = sig.leader
    others = [t for t in sig.threads if t is not p and t is not leader]
    if p is leader and others:
        return  # zombie leader: released with the last thread
    _unhash(k, p)
    if p is not leader and not others and leader is not None and leader.exit_state and leader in sig.threads:
        _unhash(k, leader)


def _unhash(k: Any, t: Any) -> None:
    """__exit_signal/__unhash_process: off the task list, the thread group and the parent's
    children list (under tasklist_lock in the kernel)."""
    if t in k.tasks:
        k.tasks.remove(t)
    if t.parent is not None and t in t.parent.children:
        t.parent.children.remove(t)
    if t in t.signal.threads:
        t.signal.threads.remove(t)
    k.delayed_put_task_struct(t)


def exit_mm(k: Any, tsk: Any) -> Any:
    """kernel/exit.c:exit_mm() @ v4.5

    Order that matters: tsk->mm is cleared under task_lock *before* the mmput, so whoever
    finds the mm through find_lock_task_mm() under task_lock sees mm_users >= 1 (model trap
    of kernel-model.md §4). TIF_MEMDIE is tested and cleared only after the mmput.
    """
    mm = tsk.mm
    k.mm_release(tsk, mm)
    if mm is None:
        return
    # Serialises with a core dump in progress; it blocks behind an mmap_sem writer (BZ-01).
    yield from down_read(mm.mmap_sem)
    mm.mm_count.counter += 1  # atomic_inc(&mm->mm_count): the lazy TLB reference
    yield from spin_lock(tsk.alloc_lock)
    tsk.mm = None
    yield from up_read(mm.mmap_sem)
    yield from spin_unlock(tsk.alloc_lock)
    yield from k.mmput(mm)
    tsk.ghost_exit_mm_done = True
    yield from preempt_point(k.m, "test_thread_flag(TIF_MEMDIE)")
    if tsk.tif & TIF_MEMDIE:
        yield from k.exit_oom_victim()


def do_exit(k: Any, code: int) -> Any:
    """kernel/exit.c:do_exit() @ v4.5 (the parts that touch the OOM protocol)."""
    tsk = k.current
    yield from k.exit_signals(tsk)  # PF_EXITING
    yield from k.exit_mm(tsk)
    # MODEL: exit_sem, exit_files, exit_fs, exit_task_namespaces, exit_thread and the
    # accounting in between neither block on the OOM protocol nor touch its state.
    yield from preempt_point(k.m, "exit_notify")
    tsk.exit_state = 1
    k.release_task(tsk)
    # The final schedule: finish_task_switch drops the lazy mm and the last task reference.
    # PF_NOFREEZE goes with TASK_DEAD: the freezer ignores a dead task, such as a group leader
    # that stays a zombie until its last thread is released.
    tsk.state = TASK_DEAD
    tsk.flags |= PF_NOFREEZE
    if tsk.active_mm is not None:
        mm, tsk.active_mm = tsk.active_mm, None
        k.mmdrop(mm)
    k.put_task_struct(tsk)


def do_group_exit(k: Any, code: int) -> Any:
    """kernel/exit.c:do_group_exit() @ v4.5: SIGNAL_GROUP_EXIT first, then kill the others."""
    tsk = k.current
    sig = tsk.signal
    if not sig.flags & SIGNAL_GROUP_EXIT and len(sig.threads) > 1:
        yield from preempt_point(k.m, "siglock(do_group_exit)")
        if not sig.flags & SIGNAL_GROUP_EXIT:
            sig.flags |= SIGNAL_GROUP_EXIT
            k.zap_other_threads(tsk)
    yield from k.do_exit(code)


def task_is_exiting(p: Any) -> bool:
    return bool(p.flags & PF_EXITING)
