"""A user variant: the seed patch with the review's fix folded in (exit_oom_victim must
test_and_clear TIF_MEMDIE, so only one of the reaper and exit_mm decrements oom_victims).

Load it with:  oomfuzz explore --variant examples/seed_test_and_clear.py --strategy dfs
"""

from oomfuzz.engine import invariants as inv
from oomfuzz.engine.linux.sched import TIF_MEMDIE
from oomfuzz.engine.runtime.primitives import atomic_dec_return, wake_up

NAME = "seed-3of2+test_and_clear"
PARENT = "seed-3of2"
SUMMARY = "seed-3of2 with exit_oom_victim(tsk) starting with test_and_clear_tsk_thread_flag"
KNOWN_BUGS = {"BZ-04": ("reap_request_dropped",)}


def exit_oom_victim(k, tsk):
    """mm/oom_kill.c:exit_oom_victim(tsk) @ seed-3of2+fix: only the clearer decrements."""
    if not tsk.tif & TIF_MEMDIE:  # test_and_clear_tsk_thread_flag() lost the race: nothing to do
        return
    tsk.tif &= ~TIF_MEMDIE
    left = yield from atomic_dec_return(k.oom_victims)
    inv.check_oom_victims(k, tsk)
    if not left:
        wake_up(k.oom_victims_wait)
