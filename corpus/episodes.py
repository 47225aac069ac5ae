"""Grouping of parsed events into OOM episodes (invocation, selection, kill, reap, exit).

An episode is one OOM kill as the log tells it. The kernel prints a report in a fixed order:
`invoked oom-killer` → CPU/version header → (memcg `Task in`) → task table → (`oom-kill:`) →
(`Kill process … score`) → `Killed process`, then possibly `Kill process … sharing same
memory`; later, asynchronously, the reaper's `reaped`/`unable to reap` line, and in ftrace
`mark_victim` → `wake_reaper` → `start_task_reaping` → `finish_task_reaping` /
`skip_task_reaping`, and the victim's `sched_process_exit` / `sched_process_free`.

Rules (one pass, in line order):
- `oom_invoked` always opens a new episode, the "open report".
- Report lines (version header, memcg lines, task rows, `oom-kill:`, selection) join the open
  report while it has no kill yet and, for the once-per-report kinds, has not seen that kind
  already (a second selection line, or a task row repeating a pid already in the table, means a
  new report whose header was not pasted); otherwise they open an implicit episode. A version header joins only if its comm
  matches the invoking comm; it also tells the invoker's pid.
- `killed` joins the open report if it has no kill yet ("sacrifice child" kills a pid other
  than the one selected, so pids are not compared), else an episode opened by a `mark_victim`
  of that pid that has no kill yet, else opens one. `… sharing same memory` kills join the
  episode of the kill they follow.
- Everything that names a victim pid afterwards (reaper lines, oom:* reaper tracepoints,
  sched exit/free, oom_score_adj_update) joins the most recent episode with that victim, so
  overlapping episodes are told apart by pid. `mark_victim` for a pid whose latest episode was
  already marked starts a new episode (the kernel marks a task once per kill); so does any
  reaper event without a known victim (ftrace-only captures are keyed by victim pid).
- sched exit/free and oom_score_adj_update of a pid that no episode knows are not OOM events and
  stay unattached; so do freezer `OOM killer disabled/enabled` lines.
- `reclaim_retry_zone` / `compact_retry` (the allocator retrying before it gives up) join the
  open report whose invoker pid they carry, or wait for one: a later version header naming that
  pid claims them.
- The kernel version of an episode is its own header's, else the nearest one printed before it
  in the log, else the first one after it.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Sequence
from dataclasses import dataclass

from .events import Event, EventKind, release_tuple

_K = EventKind
_REPORT_ONCE = frozenset({_K.OOM_KILL_CONSTRAINT, _K.KILL_SELECT})
_BY_VICTIM = frozenset(
    {
        _K.REAPED,
        _K.UNABLE_TO_REAP,
        _K.WAKE_REAPER,
        _K.START_TASK_REAPING,
        _K.FINISH_TASK_REAPING,
        _K.SKIP_TASK_REAPING,
    }
)
_IF_VICTIM = frozenset({_K.SCHED_PROCESS_EXIT, _K.SCHED_PROCESS_FREE, _K.OOM_SCORE_ADJ_UPDATE})
_ALLOCATOR = frozenset({_K.RECLAIM_RETRY_ZONE, _K.COMPACT_RETRY})


@dataclass(frozen=True, slots=True)
class Episode:
    """One OOM kill (or an attempt at one) with every event the log shows for it."""

    index: int
    events: tuple[Event, ...]
    victim_pids: tuple[int, ...]
    victim_comm: str | None
    invoker_comm: str | None
    invoker_pid: int | None
    task_rows: tuple[Event, ...]
    kernel_version: str | None
    memcg: bool
    first_line: int
    last_line: int

    @property
    def kernel_release(self) -> tuple[int, int, int] | None:
        return release_tuple(self.kernel_version)

    @property
    def kills(self) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.kind is _K.KILLED)

    def has(self, kind: EventKind) -> bool:
        return any(e.kind is kind for e in self.events)

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "first_line": self.first_line,
            "last_line": self.last_line,
            "victim_pids": list(self.victim_pids),
            "victim_comm": self.victim_comm,
            "invoker_comm": self.invoker_comm,
            "invoker_pid": self.invoker_pid,
            "kernel_version": self.kernel_version,
            "memcg": self.memcg,
            "task_rows": len(self.task_rows),
            "event_lines": [e.line for e in self.events],
        }


class _Builder:
    """Mutable episode under construction."""

    __slots__ = (
        "events", "rows", "victims", "marked", "kinds", "row_pids", "invoker_comm", "invoker_pid",
        "version", "first_index", "killed",
    )

    def __init__(self, first_index: int) -> None:
        self.events: list[Event] = []  # everything but task rows, which are kept apart
        self.rows: list[Event] = []
        self.victims: list[int] = []
        self.marked: set[int] = set()
        self.kinds: set[EventKind] = set()
        self.row_pids: set[int] = set()
        self.invoker_comm: str | None = None
        self.invoker_pid: int | None = None
        self.version: str | None = None
        self.first_index = first_index
        self.killed = False


class _Grouper:
    """One pass over the events; see the module docstring for the rules."""

    def __init__(self) -> None:
        self.builders: list[_Builder] = []
        self.report: _Builder | None = None
        self.by_victim: dict[int, _Builder] = {}
        self.waiting: dict[int, list[Event]] = {}
        self.versions: list[tuple[int, str]] = []

    def new(self, index: int, report: bool) -> _Builder:
        b = _Builder(index)
        self.builders.append(b)
        if report:
            self.report = b
        return b

    def add_victim(self, b: _Builder, pid: int | None) -> None:
        if pid is not None and pid not in b.victims:
            b.victims.append(pid)
        if pid is not None:
            self.by_victim[pid] = b

    def open_report(self, index: int) -> _Builder:
        r = self.report
        return r if r is not None and not r.killed else self.new(index, report=True)

    def feed(self, index: int, e: Event) -> None:
        kind = e.kind  # task rows are handled by group_episodes itself
        if kind is _K.OOM_INVOKED:
            b = self.new(index, report=True)
            b.invoker_comm = e.comm
        elif kind is _K.KERNEL_VERSION:
            self.versions.append((index, str(e.fields.get("version"))))
            b = self.version_target(e)
            if b is None:
                return
        elif kind in _REPORT_ONCE:
            b = self.open_report(index)
            if kind in b.kinds:
                b = self.new(index, report=True)
        elif kind is _K.MEMCG_OOM:  # `memory: usage` and `Task in` both, in either order
            b = self.open_report(index)
        elif kind is _K.KILLED:
            b = self.kill_target(index, e)
        elif kind is _K.MARK_VICTIM:
            b = self.mark_target(index, e)
        elif kind in _BY_VICTIM:
            b = self.by_victim.get(e.pid) or self.new(index, report=False)  # type: ignore[arg-type]
            self.add_victim(b, e.pid)
        elif kind in _IF_VICTIM:
            b = self.by_victim.get(e.pid)  # type: ignore[arg-type]
            if b is None:
                return
        elif kind in _ALLOCATOR:
            r = self.report
            if r is None or r.killed or r.invoker_pid != e.pid:
                self.waiting.setdefault(e.pid, []).append(e)  # type: ignore[arg-type]
                return
            b = r
        else:
            return
        b.events.append(e)
        b.kinds.add(kind)

    def version_target(self, e: Event) -> _Builder | None:
        r = self.report
        if r is None or r.killed or r.version is not None or r.row_pids:
            return None
        if r.invoker_comm is not None and e.comm is not None and e.comm != r.invoker_comm:
            return None
        r.version = str(e.fields.get("version"))
        if e.pid is not None and r.invoker_pid is None:
            r.invoker_pid = e.pid
            r.invoker_comm = r.invoker_comm or e.comm
            r.events.extend(self.waiting.pop(e.pid, ()))
        return r

    def kill_target(self, index: int, e: Event) -> _Builder:
        if e.fields.get("sharing_mm"):
            r = self.report
            b = r if r is not None and r.killed else self.new(index, report=True)
        else:
            r = self.report
            if r is not None and not r.killed:
                b = r
            else:
                marked = self.by_victim.get(e.pid)  # type: ignore[arg-type]
                if marked is not None and not marked.killed and e.pid in marked.marked:
                    b = marked
                else:
                    b = self.new(index, report=True)
            b.killed = True
        self.add_victim(b, e.pid)
        return b

    def mark_target(self, index: int, e: Event) -> _Builder:
        b = self.by_victim.get(e.pid)  # type: ignore[arg-type]
        if b is None or e.pid in b.marked:
            r = self.report
            b = r if r is not None and not r.killed and not r.marked else self.new(index, False)
        b.marked.add(e.pid)  # type: ignore[arg-type]
        self.add_victim(b, e.pid)
        return b


def group_episodes(events: Sequence[Event]) -> tuple[Episode, ...]:
    """Group `events` (in line order) into episodes, numbered from 0 in order of appearance."""
    g = _Grouper()
    row = _K.TASK_TABLE_ROW
    for index, e in enumerate(events):
        if e.kind is row:  # the bulk of every log: the first branch of feed(), inlined
            b = g.report
            if b is None or b.killed or e.pid in b.row_pids:
                b = g.new(index, report=True)
            b.row_pids.add(e.pid)  # type: ignore[arg-type]
            b.rows.append(e)
        else:
            g.feed(index, e)
    out = []
    for b in g.builders:
        if b.events or b.rows:
            out.append(_finish(len(out), b, _resolve_version(b, g.versions)))
    return tuple(out)


def _resolve_version(b: _Builder, versions: list[tuple[int, str]]) -> str | None:
    """Own header's version, else the nearest one before the episode, else the first after."""
    if b.version is not None:
        return b.version
    if not versions:
        return None
    at = bisect.bisect_left(versions, (b.first_index, ""))
    return versions[at - 1][1] if at > 0 else versions[0][1]


_BY_LINE = operator.attrgetter("line")
_END_LINE = operator.attrgetter("end_line")


def _finish(index: int, b: _Builder, version: str | None) -> Episode:
    others = sorted(b.events, key=_BY_LINE)  # claimed allocator events may be out of order
    events = tuple(sorted(others + b.rows, key=_BY_LINE)) if b.rows else tuple(others)
    return Episode(
        index=index,
        events=events,
        victim_pids=tuple(b.victims),
        victim_comm=_victim_comm(others, b.victims),
        invoker_comm=b.invoker_comm,
        invoker_pid=b.invoker_pid,
        task_rows=tuple(b.rows),
        kernel_version=version,
        memcg=any(_is_memcg(e) for e in others if e.kind in _MEMCG_HINTS),
        first_line=events[0].line,
        last_line=max(map(_END_LINE, events)),
    )


_COMM_SOURCES = (_K.KILLED, _K.KILL_SELECT, _K.OOM_KILL_CONSTRAINT, _K.REAPED, _K.UNABLE_TO_REAP,
                 _K.MARK_VICTIM, _K.SCHED_PROCESS_EXIT, _K.SCHED_PROCESS_FREE)


def _victim_comm(events: list[Event], victims: list[int]) -> str | None:
    first = victims[0] if victims else None
    for kind in _COMM_SOURCES:
        for e in events:
            if e.kind is kind and e.comm and (first is None or e.pid == first):
                return e.comm
    return None


_MEMCG_HINTS = frozenset({_K.MEMCG_OOM, _K.OOM_KILL_CONSTRAINT, _K.KILLED, _K.KILL_SELECT})


def _is_memcg(e: Event) -> bool:
    if e.kind is _K.MEMCG_OOM:
        return True
    if e.kind is _K.OOM_KILL_CONSTRAINT:
        return e.fields.get("constraint") == "CONSTRAINT_MEMCG" or "oom_memcg" in e.fields
    if e.kind in (_K.KILLED, _K.KILL_SELECT):
        return str(e.fields.get("reason", "")).lower().startswith("memory cgroup")
    return False
