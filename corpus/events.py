"""Typed, immutable events parsed from kernel OOM logs and ftrace output."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

FieldValue = int | str
_EMPTY: Mapping[str, FieldValue] = MappingProxyType({})


class EventKind(enum.Enum):
    """What one log record says happened; values are the names used in JSON."""

    # dmesg / kernel log records
    OOM_INVOKED = "oom_invoked"
    KERNEL_VERSION = "kernel_version"
    TASK_TABLE_ROW = "task_table_row"
    MEMCG_OOM = "memcg_oom"
    OOM_KILL_CONSTRAINT = "oom_kill_constraint"
    KILL_SELECT = "kill_select"
    KILLED = "killed"
    REAPED = "reaped"
    UNABLE_TO_REAP = "unable_to_reap"
    OOM_DISABLED = "oom_disabled"
    OOM_ENABLED = "oom_enabled"
    # ftrace events (oom:* and sched:*)
    MARK_VICTIM = "mark_victim"
    WAKE_REAPER = "wake_reaper"
    START_TASK_REAPING = "start_task_reaping"
    FINISH_TASK_REAPING = "finish_task_reaping"
    SKIP_TASK_REAPING = "skip_task_reaping"
    OOM_SCORE_ADJ_UPDATE = "oom_score_adj_update"
    RECLAIM_RETRY_ZONE = "reclaim_retry_zone"
    COMPACT_RETRY = "compact_retry"
    SCHED_PROCESS_EXIT = "sched_process_exit"
    SCHED_PROCESS_FREE = "sched_process_free"

    @property
    def is_tracepoint(self) -> bool:
        return self in TRACEPOINT_KINDS


# Members are singletons compared by identity, so identity hashing is equivalent to Enum's
# name hashing, and it runs in C: the scanner and the grouper test kinds in sets per event.
EventKind.__hash__ = object.__hash__  # type: ignore[method-assign,assignment]


TRACEPOINT_KINDS = frozenset(
    {
        EventKind.MARK_VICTIM,
        EventKind.WAKE_REAPER,
        EventKind.START_TASK_REAPING,
        EventKind.FINISH_TASK_REAPING,
        EventKind.SKIP_TASK_REAPING,
        EventKind.OOM_SCORE_ADJ_UPDATE,
        EventKind.RECLAIM_RETRY_ZONE,
        EventKind.COMPACT_RETRY,
        EventKind.SCHED_PROCESS_EXIT,
        EventKind.SCHED_PROCESS_FREE,
    }
)


@dataclass(frozen=True, slots=True)
class Event:
    """One parsed record.

    `pid`/`comm` name the task the record is about (the victim of a kill, the row's task, the
    task in a tracepoint payload), not the task that printed it; ftrace events keep the printing
    context in `fields` (`ctx_pid`, `ctx_comm`, `cpu`). `line` is the 1-based number of the first
    source line, `end_line` the last one (they differ only for hard-wrapped records that were
    joined). `time` is seconds: since boot for printk/ftrace stamps, since the Unix epoch for
    dated wall-clock stamps, since 1 January for year-less syslog stamps, None without a stamp.
    """

    kind: EventKind
    line: int
    end_line: int
    time: float | None = None
    pid: int | None = None
    comm: str | None = None
    fields: Mapping[str, FieldValue] = field(default_factory=lambda: _EMPTY, hash=False)

    def to_json(self) -> dict[str, object]:
        """A plain, JSON-ready dict with a stable key order (used by golden files)."""
        return {
            "line": self.line,
            "end_line": self.end_line,
            "kind": self.kind.value,
            "time": self.time,
            "pid": self.pid,
            "comm": self.comm,
            "fields": dict(self.fields),
        }


_SETTERS = tuple(getattr(Event, name).__set__ for name in Event.__dataclass_fields__)
_new = object.__new__


def new_event(
    kind: EventKind,
    line: int,
    end_line: int,
    time: float | None,
    pid: int | None,
    comm: str | None,
    fields: Mapping[str, FieldValue],
) -> Event:
    """`Event(...)` for the scanner's hot path: fills the slots directly.

    The generated frozen `__init__` pays one `object.__setattr__` call per field; the scanner
    creates one event per task-table row, so this halves the cost of a large log."""
    e = _new(Event)
    s_kind, s_line, s_end, s_time, s_pid, s_comm, s_fields = _SETTERS
    s_kind(e, kind)
    s_line(e, line)
    s_end(e, end_line)
    s_time(e, time)
    s_pid(e, pid)
    s_comm(e, comm)
    s_fields(e, fields)
    return e


def make_fields(values: Mapping[str, FieldValue]) -> Mapping[str, FieldValue]:
    """Freeze a freshly built field dict (the caller must not keep a reference to mutate).

    Read-only mappings (a task row's lazily decoded columns) are kept as they are."""
    if type(values) is dict:
        return MappingProxyType(values) if values else _EMPTY
    return values


_RELEASE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def release_tuple(version: str | None) -> tuple[int, int, int] | None:
    """`"4.4.0-130-generic"` -> (4, 4, 0); `"5.13.0-rc5-next"` -> (5, 13, 0); junk -> None."""
    if not version:
        return None
    m = _RELEASE.match(version)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
