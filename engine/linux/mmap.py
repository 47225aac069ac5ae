"""mm/mmap.c: the mmap_sem writer path and exit_mmap."""

from __future__ import annotations

from typing import Any

from .. import invariants as inv
from ..runtime.primitives import down_write, preempt_point, up_write
from .mm_types import VM_LOCKED


def vm_mmap_pgoff(k: Any, pages: int) -> Any:
    """mm/util.c:vm_mmap_pgoff() @ v4.5: mmap() under mmap_sem held for write.

    # MODEL: the mapping is populated (MAP_POPULATE/mlock-style) while mmap_sem is held, so the
    # page allocation, and possibly the OOM killer, runs with mmap_sem held for write. This is
    # the writer of BZ-01. At v4.5 the lock is taken with plain down_write (not killable).
    Returns True on success, False on -ENOMEM.
    """
    tsk = k.current
    mm = tsk.mm
    yield from down_write(mm.mmap_sem)
    ok = yield from k.__alloc_pages(pages)
    if ok:
        k.add_pages(mm, pages)
    yield from up_write(mm.mmap_sem)
    return ok


def exit_mmap(k: Any, mm: Any) -> Any:
    """mm/mmap.c:exit_mmap() @ v4.5: munlock, unmap every VMA, free page tables and VMAs.

    Called by the last mmput with no lock held: mm_users is zero, so nobody else may walk the
    VMAs (the reaper pins mm_users first).
    """
    inv.check_mm_alive(k, mm, "exit_mmap")
    yield from preempt_point(k.m, "exit_mmap:munlock")
    for vma in mm.mmap:
        if vma.vm_flags & VM_LOCKED:
            vma.vm_flags &= ~VM_LOCKED  # munlock_vma_pages_all
    yield from preempt_point(k.m, "exit_mmap:unmap_vmas")
    freed = mm.mapped_pages()
    for vma in mm.mmap:
        vma.pages = 0
    k.free_pages_add(freed)
    yield from preempt_point(k.m, "exit_mmap:remove_vma")
    for vma in mm.mmap:
        vma.freed = True
    mm.mmap = []
    mm.ghost_exit_mmap_done = True
