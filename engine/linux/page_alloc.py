"""mm/page_alloc.c @ v4.5: the allocation slow path and its way into the OOM killer.

# MODEL: memory is one pool of free pages with one watermark. A normal allocation needs the
# pool to stay at or above the watermark; TIF_MEMDIE tasks may allocate below it (memory
# reserves, ALLOC_NO_WATERMARKS). Direct reclaim and compaction never make progress: the
# machine is out of memory by construction, and only freed (exited or reaped) memory helps.
"""

from __future__ import annotations

from typing import Any

from ..runtime.primitives import mutex_trylock, mutex_unlock, preempt_point, schedule_timeout
from .sched import PF_DUMPCORE, TIF_MEMDIE


def get_page_from_freelist(k: Any, pages: int, no_watermarks: bool) -> Any:
    """mm/page_alloc.c:get_page_from_freelist() @ v4.5: take pages if the watermark allows."""
    yield from preempt_point(k.m, "zone_watermark_ok")
    floor = 0 if no_watermarks else k.wmark_min
    if k.free_pages - pages >= floor:
        k.free_pages -= pages
        return True
    return False


def __alloc_pages_may_oom(k: Any, pages: int) -> Any:
    """mm/page_alloc.c:__alloc_pages_may_oom() @ v4.5: returns (page, did_some_progress).

    If somebody else holds oom_lock, they are making progress for us: sleep a tick and retry.
    Under oom_lock, one more allocation attempt catches a parallel kill's freed memory before
    the OOM killer is invoked.

    # MODEL: the kernel makes that last attempt against the high watermark (only a parallel
    # kill's worth of freed memory passes it); the one watermark here is the min one, so
    # memory that came back above min but below high stops this OOM kill where the kernel
    # would go on and kill.
    """
    current = k.current
    got = yield from mutex_trylock(k.oom_lock)
    current.ghost_oom_attempted = got
    if not got:
        yield from schedule_timeout(k.m, 1, "schedule_timeout_uninterruptible(1)")
        return False, True
    page = yield from k.get_page_from_freelist(pages, False)
    progress = False
    if not page and not current.flags & PF_DUMPCORE:
        # MODEL: order-0 __GFP_FS allocations from ZONE_NORMAL; the early exits for costly
        # orders, !__GFP_FS, lowmem and __GFP_THISNODE do not apply.
        progress = yield from k.out_of_memory()
    yield from mutex_unlock(k.oom_lock)
    return page, bool(page) or progress


def __alloc_pages_slowpath(k: Any, pages: int) -> Any:
    """mm/page_alloc.c:__alloc_pages_slowpath() @ v4.5: retry while the OOM killer progresses.

    Returns True when the allocation succeeded. A TIF_MEMDIE task that cannot allocate even
    from the reserves gives up (nopage) instead of looping.
    """
    current = k.current
    while True:  # retry:
        yield from k.retry_point("__alloc_pages_slowpath:retry")
        page = yield from k.get_page_from_freelist(pages, False)
        if page:
            return True
        if current.tif & TIF_MEMDIE:  # ALLOC_NO_WATERMARKS
            page = yield from k.get_page_from_freelist(pages, True)
            if page:
                return True
            return False  # TIF_MEMDIE and !__GFP_NOFAIL: nopage
        # MODEL: direct reclaim and compaction find nothing to reclaim (did_some_progress 0).
        page, progress = yield from k.__alloc_pages_may_oom(pages)
        if page:
            return True
        if not progress:
            return False


def __alloc_pages(k: Any, pages: int) -> Any:
    """mm/page_alloc.c:__alloc_pages_nodemask() @ v4.5: fast path, then the slow path."""
    k.allocating[k.current.oid] = True
    page = yield from k.get_page_from_freelist(pages, False)
    if not page:
        page = yield from k.__alloc_pages_slowpath(pages)
    k.allocating.pop(k.current.oid, None)
    return page
