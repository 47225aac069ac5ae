"""include/linux/sched.h: task_struct, signal_struct and their flags; the task refcount.

Objects carry only the fields the OOM/exit protocol reads or writes, with the kernel's names.
Fields prefixed ``ghost_`` are not in the kernel: they record history the invariants need
(was this task ever an OOM victim, has it passed exit_mm) and never influence the model.
"""

from __future__ import annotations

from typing import Any

from ..runtime.primitives import SpinLock

# task_struct::flags
PF_EXITING = 0x4
PF_DUMPCORE = 0x200
PF_MEMALLOC = 0x800
PF_NOFREEZE = 0x8000
PF_FROZEN = 0x10000
PF_KTHREAD = 0x200000
PF_FREEZER_SKIP = 0x40000000
# thread_info flags
TIF_MEMDIE = 0x1
# signal_struct::flags
SIGNAL_GROUP_EXIT = 0x4
SIGNAL_GROUP_COREDUMP = 0x8
SIGNAL_UNKILLABLE = 0x40

OOM_SCORE_ADJ_MIN = -1000
OOM_SCORE_ADJ_MAX = 1000

# Task states the model distinguishes (TASK_DEAD after the final schedule of do_exit).
TASK_RUNNING, TASK_DEAD = 0, 1


class signal_struct:
    """The state a thread group shares."""

    __slots__ = ("oid", "oom_score_adj", "flags", "threads", "leader", "oom_victims", "oom_mm", "group_exit_task")

    def __init__(self, oid: int, oom_score_adj: int) -> None:
        self.oid = oid
        self.oom_score_adj = oom_score_adj
        self.flags = 0
        self.threads: list[task_struct] = []  # the live thread group (a zombie leader stays)
        self.leader: task_struct | None = None
        self.oom_victims = 0  # v4.8
        self.oom_mm: Any = None  # v4.9
        self.group_exit_task: Any = None


class task_struct:
    """One kernel task (a thread)."""

    __slots__ = (
        "oid", "pid", "role", "comm", "flags", "tif", "state", "mm", "active_mm", "usage", "signal",
        "parent", "children", "alloc_lock", "oom_reaper_list", "sigkill", "thread", "vfork_done",
        "frozen", "exit_state", "ghost_victim", "ghost_exit_mm_done", "ghost_freed", "ghost_memdie_sets",
        "ghost_exiting_user", "ghost_oom_attempted",
    )

    def __init__(self, k: Any, oid: int, pid: int, role: str, signal: signal_struct) -> None:
        self.oid = oid
        self.pid = pid
        self.role = role
        self.comm = role
        self.flags = 0
        self.tif = 0
        self.state = TASK_RUNNING
        self.mm: Any = None
        self.active_mm: Any = None
        # One reference for being alive (dropped by release_task), one for the final schedule.
        self.usage = 2
        self.signal = signal
        self.parent: task_struct | None = None
        self.children: list[task_struct] = []
        self.alloc_lock = SpinLock(k.m, f"task_lock({role})")
        self.oom_reaper_list: Any = None
        self.sigkill = False
        self.thread: Any = None  # the runtime thread running this task
        self.vfork_done = False
        self.frozen = False
        self.exit_state = 0
        self.ghost_victim = False
        self.ghost_exit_mm_done = False
        self.ghost_freed = False
        self.ghost_memdie_sets = 0
        self.ghost_exiting_user = False
        self.ghost_oom_attempted = True  # did this task's last OOM retry pass reach the OOM decision

    def __repr__(self) -> str:
        return f"<task {self.role}>"

    def snapshot(self) -> tuple:
        return (
            self.flags, self.tif, self.state, _oid(self.mm), self.usage, self.oom_reaper_list is not None,
            _oid(self.oom_reaper_list), self.sigkill, self.frozen, self.exit_state,
        )


def _oid(obj: Any) -> Any:
    return None if obj is None else obj.oid


def thread_group_leader(p: task_struct) -> bool:
    """include/linux/sched.h:thread_group_leader() @ v4.5"""
    return p.signal.leader is p


def same_thread_group(p1: task_struct, p2: task_struct) -> bool:
    """include/linux/sched.h:same_thread_group() @ v4.5"""
    return p1.signal is p2.signal


def fatal_signal_pending(p: task_struct) -> bool:
    """include/linux/sched.h:fatal_signal_pending() @ v4.5"""
    return p.sigkill


def test_tsk_thread_flag(p: task_struct, flag: int) -> bool:
    return bool(p.tif & flag)


def is_global_init(p: task_struct) -> bool:
    """include/linux/sched.h:is_global_init() @ v4.5 (the model's init is the task named init)."""
    return p.pid == 1
