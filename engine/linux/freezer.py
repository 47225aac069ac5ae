"""kernel/freezer.c @ v4.5: freezing(), the refrigerator, freeze_task and __thaw_task."""

from __future__ import annotations

from typing import Any

from ..runtime.primitives import preempt_point
from .sched import PF_FREEZER_SKIP, PF_KTHREAD, PF_NOFREEZE, TIF_MEMDIE


def freezing_slow_path(k: Any, p: Any) -> bool:
    """kernel/freezer.c:freezing_slow_path() @ v4.5: an OOM victim is never frozen.

    The TIF_MEMDIE test looks at *current*, not at p (fixed in v4.8): the freezer asking
    about a victim counts it as freezable, while the victim itself refuses to freeze.
    """
    if p.flags & PF_NOFREEZE or p is k.suspend_task:
        return False
    if k.current.tif & TIF_MEMDIE:
        return False
    return k.pm_freezing and not p.flags & PF_KTHREAD


def freezing(k: Any, p: Any) -> bool:
    """include/linux/freezer.h:freezing() @ v4.5"""
    if not k.system_freezing_cnt:
        return False
    return k.freezing_slow_path(p)


def __refrigerator(k: Any) -> Any:
    """kernel/freezer.c:__refrigerator() @ v4.5: stay frozen while freezing(current)."""
    current = k.current
    was_frozen = False
    while True:
        yield from preempt_point(k.m, "__refrigerator")
        if not k.freezing(current):
            break
        was_frozen = True
        current.frozen = True
        k.m.block("refrigerator")
        yield "refrigerator"
    current.frozen = False
    return was_frozen


def try_to_freeze(k: Any) -> Any:
    """include/linux/freezer.h:try_to_freeze() @ v4.5"""
    if not k.freezing(k.current):
        return False
    return (yield from k.__refrigerator())


def freeze_task(k: Any, p: Any) -> bool:
    """kernel/freezer.c:freeze_task() @ v4.5: ask p to freeze; False if it need not, is frozen
    already, or is left uncounted (freezer_do_not_count)."""
    if k.freezer_should_skip(p) or not k.freezing(p) or p.frozen:
        return False
    k.signal_wake_up(p)  # fake_signal_wake_up
    return True


def __thaw_task(k: Any, p: Any) -> None:
    """kernel/freezer.c:__thaw_task() @ v4.5: wake a frozen task; it re-checks freezing()."""
    if p.frozen and p.thread is not None and p.thread.state == 1 and p.thread.waiting_on == "refrigerator":
        k.m.wake(p.thread)


def freezer_do_not_count(k: Any) -> None:
    """include/linux/freezer.h:freezer_do_not_count() @ v4.5: the freezer may leave current
    uncounted while it sleeps (it freezes as soon as it wakes, in freezer_count)."""
    k.current.flags |= PF_FREEZER_SKIP


def freezer_count(k: Any) -> Any:
    """include/linux/freezer.h:freezer_count() @ v4.5: count current again, and freeze now if
    a freeze began while it slept."""
    k.current.flags &= ~PF_FREEZER_SKIP
    yield from k.try_to_freeze()


def freezer_should_skip(k: Any, p: Any) -> bool:
    """include/linux/freezer.h:freezer_should_skip() @ v4.5"""
    return bool(p.flags & PF_FREEZER_SKIP)
