"""kernel/signal.c: SIGKILL delivery, group exit of the other threads, exit_signals."""

from __future__ import annotations

from typing import Any

from ..runtime.primitives import preempt_point
from .sched import PF_EXITING, SIGNAL_GROUP_EXIT, SIGNAL_UNKILLABLE


def signal_wake_up(k: Any, t: Any) -> None:
    """include/linux/sched.h:signal_wake_up() @ v4.5: wake a killable or interruptible sleeper."""
    thread = t.thread
    if thread is not None and thread.killable and thread.state in (1, 2):
        k.m.wake(thread)


def do_send_sig_info(k: Any, p: Any) -> Any:
    """kernel/signal.c:do_send_sig_info(SIGKILL, SEND_SIG_FORCED, p, group) @ v4.5

    A fatal signal to a thread group: complete_signal() marks the group exiting and queues
    SIGKILL to every thread, waking those in killable sleeps.
    # MODEL: the whole delivery happens under siglock, so it is one atomic step here.
    """
    yield from preempt_point(k.m, "siglock(SIGKILL)")
    sig = p.signal
    if sig.flags & SIGNAL_UNKILLABLE:  # global init: a fatal signal does not kill the group
        return
    if sig.flags & SIGNAL_GROUP_EXIT:
        # complete_signal(): the group is already dying; no new broadcast.
        return
    sig.flags |= SIGNAL_GROUP_EXIT
    for t in sig.threads:
        if t.exit_state:
            continue
        t.sigkill = True
        k.signal_wake_up(t)
    if k.m.tracing:
        k.m.effect(f"SIGKILL to {p.role}'s thread group")


def zap_other_threads(k: Any, p: Any) -> None:
    """kernel/signal.c:zap_other_threads() @ v4.5: SIGKILL every other thread of the group."""
    for t in p.signal.threads:
        if t is p or t.exit_state:
            continue
        t.sigkill = True
        k.signal_wake_up(t)


def exit_signals(k: Any, tsk: Any) -> Any:
    """kernel/signal.c:exit_signals() @ v4.5: the task is exiting (PF_EXITING), under siglock."""
    yield from preempt_point(k.m, "siglock(exit_signals)")
    tsk.flags |= PF_EXITING
