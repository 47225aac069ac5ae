"""kernel/rcu (include/linux/rcupdate.h): read-side sections delay the freeing of tasks.

A task released while some thread is inside an RCU read-side section (a task-list walk) is
not freed until every such section has ended: release_task hands the last reference to
call_rcu (delayed_put_task_struct). The walks themselves stay preemptible, as with
CONFIG_PREEMPT_RCU, so the state they read can still change under them.
# MODEL: one global reader count stands for the grace-period machinery.
"""

from __future__ import annotations

from typing import Any


def rcu_read_lock(k: Any) -> None:
    """include/linux/rcupdate.h:rcu_read_lock() @ v4.5"""
    k.rcu_readers += 1


def rcu_read_unlock(k: Any) -> None:
    """include/linux/rcupdate.h:rcu_read_unlock() @ v4.5: the last reader ends the grace period."""
    k.rcu_readers -= 1
    if k.rcu_readers == 0 and k.rcu_callbacks:
        callbacks, k.rcu_callbacks = k.rcu_callbacks, []
        for t in callbacks:
            k.put_task_struct(t)


def delayed_put_task_struct(k: Any, t: Any) -> None:
    """kernel/exit.c:delayed_put_task_struct() @ v4.5, via call_rcu: put after a grace period."""
    if k.rcu_readers:
        k.rcu_callbacks.append(t)
    else:
        k.put_task_struct(t)
