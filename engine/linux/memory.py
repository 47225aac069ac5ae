"""mm/memory.c (and the arch fault handler) @ v4.5: a user page fault that allocates."""

from __future__ import annotations

from typing import Any

from ..runtime.primitives import down_read, up_read


def handle_mm_fault(k: Any, mm: Any) -> Any:
    """mm/memory.c:handle_mm_fault() @ v4.5: allocate and map one anonymous page.

    Returns True, or False for VM_FAULT_OOM.
    # MODEL: every fault is an anonymous write fault on the task's first private mapping.
    """
    ok = yield from k.__alloc_pages(1)
    if ok:
        k.add_pages(mm, 1)
    return ok


def do_page_fault(k: Any) -> Any:
    """arch/x86/mm/fault.c:__do_page_fault() @ v4.5: mmap_sem for read around the fault;
    VM_FAULT_OOM ends in pagefault_out_of_memory() after the lock is dropped."""
    tsk = k.current
    mm = tsk.mm
    yield from down_read(mm.mmap_sem)
    ok = yield from k.handle_mm_fault(mm)
    yield from up_read(mm.mmap_sem)
    if not ok:
        yield from k.pagefault_out_of_memory()
    return ok


def kthread_access(k: Any, mm: Any) -> None:
    """mm/memory.c:handle_mm_fault() @ v4.5, reached from a kernel thread's copy_from_user()
    on a borrowed mm: a refault of a page the reaper unmapped silently maps the zero page."""
    from .. import invariants as inv

    inv.check_user_access(k, k.current)
