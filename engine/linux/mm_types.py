"""include/linux/mm_types.h: mm_struct and vm_area_struct, with the MMF_ and VM_ flags.

Memory is counted in abstract pages. A VMA owns ``pages`` resident pages; unmapping it returns
them to the free pool, except hugetlb pages (they go back to the hugetlb pool, which does not
help a normal allocation) and pages of shared mappings (page cache: not freed by unmapping).
"""

from __future__ import annotations

from typing import Any

from ..runtime.primitives import Atomic, RwSem

# vm_area_struct::vm_flags
VM_SHARED = 0x8
VM_LOCKED = 0x2000
VM_HUGETLB = 0x400000
VM_PFNMAP = 0x400

# mm_struct::flags (the bit numbers do not matter to the model, only distinctness)
MMF_OOM_KILLED = 0x1  # v4.6-rc1
MMF_OOM_REAPED = 0x2  # v4.7
MMF_OOM_NOT_REAPABLE = 0x4  # v4.8
MMF_OOM_SKIP = 0x8  # v4.9
MMF_UNSTABLE = 0x10  # v4.9


class vm_area_struct:
    """One mapping."""

    __slots__ = ("oid", "vm_flags", "pages", "freed")

    def __init__(self, oid: int, vm_flags: int, pages: int) -> None:
        self.oid = oid
        self.vm_flags = vm_flags
        self.pages = pages
        self.freed = False

    def snapshot(self) -> tuple:
        return (self.vm_flags, self.pages, self.freed)


class mm_struct:
    """An address space."""

    __slots__ = (
        "oid", "name", "mm_users", "mm_count", "mmap_sem", "mmap", "flags", "core_state", "aio_pending",
        "owner", "ghost_freed", "ghost_victim", "ghost_exit_mmap_done", "ghost_reap_gave_up",
        "ghost_teardown", "ghost_reaped", "ghost_teardown_waits_memory", "ghost_reaper_pin",
        "ghost_reap_queued", "ghost_reap_dropped", "ghost_async_put",
    )

    def __init__(self, k: Any, oid: int, name: str) -> None:
        self.oid = oid
        self.name = name
        self.mm_users = Atomic(k.m, f"{name}.mm_users", 1)
        self.mm_count = Atomic(k.m, f"{name}.mm_count", 1)
        self.mmap_sem = RwSem(k.m, f"{name}.mmap_sem")
        self.mmap: list[vm_area_struct] = []
        self.flags = 0
        self.core_state = None
        self.aio_pending: str | None = None
        self.owner: Any = None
        self.ghost_freed = False
        self.ghost_victim = False
        self.ghost_exit_mmap_done = False
        self.ghost_reap_gave_up = False
        self.ghost_teardown = False
        self.ghost_reaped = False
        self.ghost_teardown_waits_memory = False
        self.ghost_reaper_pin = 0
        self.ghost_reap_queued = False
        self.ghost_reap_dropped = False  # a request to the reaper was refused (busy slot)
        self.ghost_async_put = False

    def __repr__(self) -> str:
        return f"<mm {self.name}>"

    def mapped_pages(self) -> int:
        """Pages that unmapping this mm would give back to the free pool."""
        return sum(v.pages for v in self.mmap if not v.vm_flags & (VM_HUGETLB | VM_SHARED))

    def snapshot(self) -> tuple:
        sem = self.mmap_sem
        return (
            self.mm_users.counter, self.mm_count.counter, sem.writer is not None,
            sem.writers_waiting, self.flags, self.aio_pending, self.ghost_freed,
            tuple(v.snapshot() for v in self.mmap),
        )


def get_mm_rss(mm: mm_struct) -> int:
    """include/linux/mm.h:get_mm_rss() @ v4.5: resident pages of all mappings.

    # MODEL: the kernel's counters (file, anon, shmem) leave hugetlb pages out. They are
    # counted here so that the victim of ``mm=hugetlb`` (one anon page, two hugetlb) is still
    # the biggest process, as a victim with more anon memory beside its hugetlb pages would
    # be; what the reaper can free (``mapped_pages``) still leaves hugetlb out.
    """
    return sum(v.pages for v in mm.mmap)
