"""kernel/power/process.c @ v4.5: freeze_processes / thaw_processes and the OOM killer."""

from __future__ import annotations

from typing import Any

from ..runtime.primitives import schedule_timeout

# freeze_timeout_msecs (20 s) in ticks of HZ = 100: the freezer outwaits the reaper's ten
# HZ/10 attempts (1 s) twenty times over, as in the kernel.
FREEZE_TIMEOUT = 2_000


def try_to_freeze_tasks(k: Any, user_only: bool) -> Any:
    """kernel/power/process.c:try_to_freeze_tasks() @ v4.5: 0, or -EBUSY if some never froze.

    # MODEL: the kernel polls every 1 to 8 ms until the timeout; here the sleep between polls
    # starts at one tick and grows fourfold, so the 20 s wait costs 8 polls, not 2,000 (at
    # ticks 0, 1, 5, 21, 85, 341, 1365 and 5461: one after the reaper's ten attempts, one
    # past the timeout). A schedule can still fire the freezer's timer early, so a poll can
    # happen at any moment.
    """
    current = k.current
    end_time = k.m.jiffies + FREEZE_TIMEOUT
    sleep = 1
    while True:
        todo = 0
        for p in list(k.tasks):
            if p is current or not k.freeze_task(p):
                continue
            if not k.freezer_should_skip(p):  # (freezer_do_not_count may race with the walk)
                todo += 1
        if not todo:
            return 0
        if k.m.jiffies > end_time:
            return -16
        yield from schedule_timeout(k.m, sleep, "try_to_freeze_tasks:usleep")
        sleep *= 4


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
