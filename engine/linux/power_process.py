"""kernel/power/process.c @ v4.5: freeze_processes / thaw_processes and the OOM killer."""

from __future__ import annotations

from typing import Any

from ..runtime.primitives import schedule_timeout

# MODEL: freeze_timeout_msecs is 20 s, twenty times the reaper's ten HZ/10 attempts. Here it
# is 1.2 s (HZ = 100): the freezer still outwaits the reaper's attempts on a victim killed
# early in the freeze, which is the order that matters to the OOM protocol. Every tick the
# freezer waits is time in which spinning allocators must be seen to repeat before a lockup
# verdict: with the full 20 s, v4.7's BZ-12 runs under a freeze ran past the step budget.
FREEZE_TIMEOUT = 120


def try_to_freeze_tasks(k: Any, user_only: bool) -> Any:
    """kernel/power/process.c:try_to_freeze_tasks() @ v4.5: 0, or -EBUSY if some never froze.

    # MODEL: the kernel polls every 1 to 8 ms until the timeout; here the sleep between polls
    # starts at one tick and doubles: polls at ticks 0, 1, 3, 7, 15, 31, 63 and 127 (the one
    # past the timeout gives up). A schedule can fire the freezer's timer early, so a poll
    # can happen at any moment.
    """
    current = k.current
    end_time = k.m.jiffies + FREEZE_TIMEOUT
    sleep = 1
    while True:
        todo = 0
        for p in list(k.tasks):
            # freeze_task is False for a task left uncounted (freezer_do_not_count); the kernel
            # tests it again here for a task that sets it during the walk, which this atomic
            # walk cannot see.
            if p is current or not k.freeze_task(p):
                continue
            todo += 1
        if not todo:
            return 0
        if k.m.jiffies > end_time:
            return -16
        yield from schedule_timeout(k.m, sleep, "try_to_freeze_tasks:usleep")
        sleep *= 2


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
