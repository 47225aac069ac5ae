"""kernel/power/process.c @ v4.5: freeze_processes / thaw_processes and the OOM killer.

# MODEL: the freezer's 20 s timeout is scaled to a few polls one tick apart; what matters to
# the OOM protocol is that it gives up on tasks that never freeze.
"""

from __future__ import annotations

from typing import Any

from ..runtime.primitives import schedule_timeout

FREEZE_POLLS = 4


def try_to_freeze_tasks(k: Any, user_only: bool) -> Any:
    """kernel/power/process.c:try_to_freeze_tasks() @ v4.5: 0, or -EBUSY if some never froze."""
    current = k.current
    for _ in range(FREEZE_POLLS):
        todo = 0
        for p in list(k.tasks):
            if p is current or not k.freeze_task(p):
                continue
            todo += 1
        if not todo:
            return 0
        yield from schedule_timeout(k.m, 1, "try_to_freeze_tasks:usleep")
    return -16


def freeze_processes(k: Any) -> Any:
    """kernel/power/process.c:freeze_processes() @ v4.5: freeze user space, then disable OOM."""
    k.suspend_task = k.current  # PF_SUSPEND_TASK
    k.system_freezing_cnt += 1
    k.pm_freezing = True
    k.log("freezing")
    error = yield from k.try_to_freeze_tasks(True)
    if not error:
        ok = yield from k.oom_killer_disable()
        if not ok:
            error = -16
    if error:
        yield from k.thaw_processes()
    return error


def thaw_processes(k: Any) -> Any:
    """kernel/power/process.c:thaw_processes() @ v4.5: re-enable the OOM killer, thaw all."""
    if k.pm_freezing:
        k.system_freezing_cnt -= 1
    k.pm_freezing = False
    k.oom_killer_enable()
    for p in list(k.tasks):
        k.__thaw_task(p)
    k.suspend_task = None
    yield from schedule_timeout(k.m, 0, "thaw_processes:schedule")
