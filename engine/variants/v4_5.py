"""Variant v4.5: the base protocol, before the oom_reaper (mm/oom_kill.c as of Linux 4.5).

The functions live in ``engine/linux/``, one module per C file; this module only names them
and lists the known bugs.
"""

from ..linux import (
    aio, exit, fork, freezer, memory, mmap, mmu_context, oom_kill, page_alloc, power_process, rcupdate, signal,
)

NAME = "v4.5"
PARENT = None
SUMMARY = "no reaper: TIF_MEMDIE victims exit on their own; the scan aborts while one exists"
MODULES = (rcupdate, fork, aio, mmap, signal, exit, oom_kill, page_alloc, memory, freezer, power_process, mmu_context)
KNOWN_BUGS = {
    "BZ-01": ("oom_livelock_victim_stuck",),
}


def oom_init(k):
    """mm/oom_kill.c:oom_init() @ v4.5: nothing to start before the reaper exists."""
    return None
