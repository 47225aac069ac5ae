"""mm/mmu_context.c @ v4.5: kernel threads borrowing a user mm (use_mm / unuse_mm)."""

from __future__ import annotations

from typing import Any

from ..runtime.primitives import spin_lock, spin_unlock


def get_task_mm(k: Any, task: Any) -> Any:
    """kernel/fork.c:get_task_mm() @ v4.5: task's mm with an mm_users reference, or None."""
    yield from spin_lock(task.alloc_lock)
    mm = task.mm
    if mm is not None:
        mm.mm_users.counter += 1
    yield from spin_unlock(task.alloc_lock)
    return mm


def use_mm(k: Any, mm: Any) -> Any:
    """mm/mmu_context.c:use_mm() @ v4.5: current (a kthread) runs on mm."""
    tsk = k.current
    yield from spin_lock(tsk.alloc_lock)
    active = tsk.active_mm
    if active is not mm:
        mm.mm_count.counter += 1
        tsk.active_mm = mm
    tsk.mm = mm
    yield from spin_unlock(tsk.alloc_lock)
    if active is not None and active is not mm:
        k.mmdrop(active)


def unuse_mm(k: Any, mm: Any) -> Any:
    """mm/mmu_context.c:unuse_mm() @ v4.5: the kthread stops using mm (keeps it lazily)."""
    tsk = k.current
    yield from spin_lock(tsk.alloc_lock)
    tsk.mm = None
    yield from spin_unlock(tsk.alloc_lock)
