"""ftrace text records of the oom:* and sched:sched_process_{exit,free} events.

Three layouts carry the same records:
- trace_pipe / `trace` file: `  comm-PID  [CPU] flags TIMESTAMP: event: payload`, where the
  flags column (4 chars before 5.x, 5 with migrate-disable since) is absent when irq info is
  off, and `(TGID)` (or `(-----)`) follows the pid when record-tgid is on;
- `trace-cmd report`: the same, with wider payload padding and sometimes a `system:` prefix;
- `perf script`: `  comm  PID[/TID] [CPU] TIMESTAMP: system:event: payload`.
The comm is whatever precedes the last `-PID` (trace_pipe) or ` PID` (perf), so a space in it
("GamepadUI Input") is kept. `<...>` (comm cache miss) and `<idle>` are kept verbatim.

Payloads (include/trace/events/oom.h, sched.h):
- mark_victim: `pid=%d`, since ~6.9 also `comm=%s total-vm=%lukB anon-rss=%lukB
  file-rss:%lukB shmem-rss:%lukB uid=%u pgtables=%lukB oom_score_adj=%hd`;
- wake_reaper, start_task_reaping, finish_task_reaping, skip_task_reaping: `pid=%d`;
- oom_score_adj_update: `pid=%d comm=%s oom_score_adj=%hd`;
- reclaim_retry_zone: `node=%d zone=%-8s order=%d reclaimable=%lu available=%lu min_wmark=%lu
  no_progress_loops=%d wmark_check=%d`; compact_retry: `order=%d priority=%s
  compaction_result=%s retries=%d max_retries=%d should_retry=%d`;
- sched_process_exit / sched_process_free: `comm=%s pid=%d prio=%d` (+ ` group_dead=%s` in
  the 2025 form of exit).

The subject pid/comm of an event is the payload's task; for reclaim_retry_zone and
compact_retry, which describe the allocating task itself, it is the printing context.
"""

from __future__ import annotations

import re

from .events import EventKind, FieldValue
from .prefix import strip_quote

_K = EventKind
KINDS: dict[str, EventKind] = {
    k.value: k
    for k in (
        _K.MARK_VICTIM,
        _K.WAKE_REAPER,
        _K.START_TASK_REAPING,
        _K.FINISH_TASK_REAPING,
        _K.SKIP_TASK_REAPING,
        _K.OOM_SCORE_ADJ_UPDATE,
        _K.RECLAIM_RETRY_ZONE,
        _K.COMPACT_RETRY,
        _K.SCHED_PROCESS_EXIT,
        _K.SCHED_PROCESS_FREE,
    )
}

_N = r"\d{1,18}"
_TS = r"(?P<ts>\d{1,12}(?:\.\d{1,12})?)"
# Possessive quantifiers (and a perf comm that ends in a non-space) keep every pattern linear:
# a line of 20 000 spaces or dashes must not take seconds.
_EVENT = r"(?:\s++(?:(?P<sys>\w++):)?(?P<event>\w++):(?:\s++(?P<payload>.*)|\s*+$))"
_TRACE_PIPE = re.compile(
    rf"\s*+(?P<comm>.*?)-(?P<pid>{_N})\s++(?:\(\s*+(?:{_N}|-++)\)\s++)?\[(?P<cpu>{_N})\]\s++"
    rf"(?:(?P<flags>\S{{1,8}})\s++)?{_TS}:{_EVENT}?"
)
_PERF = re.compile(
    rf"\s*+(?P<comm>\S(?:.*?\S)?)\s++(?P<pid>{_N})(?:/(?P<tid>{_N}))?\s++"
    rf"(?:\[(?P<cpu>{_N})\]\s++)?{_TS}:(?:\s++\d{{1,18}})?{_EVENT}"
)
_EVENT_FIRST = re.compile(r"\s*+(?:\w++:)?(\w++):(?:\s|$)")
_GROUPS = ("event", "payload", "pid", "comm", "cpu", "ts")  # named in both layouts

Record = tuple[EventKind, int | None, str | None, dict[str, FieldValue], bool, float, tuple]
"""(kind, pid, comm, fields, complete, time, identity used to spot duplicate pastes)."""


def parse_record(line: str) -> Record | None:
    """One ftrace record of an event we model; None for anything else."""
    if line[:1] == ">":  # quoted in a mail reply
        line = line[strip_quote(line) :]
    m = _TRACE_PIPE.match(line)
    tid = None
    if m is None or m.group("event") is None:
        m = _PERF.match(line)
        if m is None:
            return None
        tid = m.group("tid")
    event, payload, pid_text, ctx_comm, cpu, ts = m.group(*_GROUPS)
    kind = KINDS.get(event)
    if kind is None:
        return None
    payload = (payload or "").strip()
    ctx_pid = int(tid or pid_text)
    ctx_comm = ctx_comm.strip()
    parsed = _PAYLOAD[kind](payload)
    if parsed is None:
        return None
    pid, comm, fields, complete = parsed
    if pid is None:  # events about the printing task itself
        pid, comm = ctx_pid, (None if ctx_comm.startswith("<") else ctx_comm)
    out: dict[str, FieldValue] = {"ctx_pid": ctx_pid, "ctx_comm": ctx_comm}
    if cpu is not None:
        out["cpu"] = int(cpu)
    out.update(fields)
    identity = (ctx_pid, cpu, ts, kind, payload)
    return kind, pid, comm, out, complete, float(ts), identity


def looks_like_record(line: str) -> bool:
    """Does `line` start like a trace_pipe record (of any event)?"""
    return _TRACE_PIPE.match(line) is not None


def is_header_only(line: str) -> bool:
    """A trace_pipe record whose event and payload were wrapped onto the next line."""
    m = _TRACE_PIPE.match(line)
    return m is not None and m.group("event") is None and m.end() == len(line.rstrip())


def starts_with_event(line: str) -> bool:
    """The payload half of a wrapped record: `sched_process_exit: comm=…`."""
    m = _EVENT_FIRST.match(line)
    return m is not None and m.group(1) in KINDS


# ---------------------------------------------------------------------------------------------
# payloads: each returns (pid or None for "the printing task", comm, fields, complete)

Payload = tuple[int | None, str | None, dict[str, FieldValue], bool]
_PID = re.compile(rf"pid=(-?{_N})")
_KV = re.compile(rf"(?<![\w-])([A-Za-z][\w-]*+)[=:](-?{_N})(\w*+)")


def _pid_only(payload: str) -> Payload | None:
    m = _PID.match(payload)
    if m is None:
        return None
    return int(m.group(1)), None, {}, m.end() == len(payload)


_VICTIM_TAIL = " total-vm="


def _mark_victim(payload: str) -> Payload | None:
    m = _PID.match(payload)
    if m is None:
        return None
    rest = payload[m.end() :]
    if not rest:
        return int(m.group(1)), None, {}, True
    if not rest.startswith(" comm="):
        return int(m.group(1)), None, {}, False
    end = rest.find(_VICTIM_TAIL)
    if end < 0:
        return int(m.group(1)), rest[6:], {}, False
    fields: dict[str, FieldValue] = {}
    for key, value, unit in _KV.findall(rest[end:]):
        name = key.lower().replace("-", "_") + ("_kb" if unit == "kB" else "")
        fields[name] = int(value) if unit in ("", "kB") else value + unit
    return int(m.group(1)), rest[6:end], fields, "oom_score_adj" in fields


_ADJ_UPDATE = re.compile(rf"pid=({_N}) comm=(.*) oom_score_adj=(-?{_N})$")


def _adj_update(payload: str) -> Payload | None:
    m = _ADJ_UPDATE.match(payload)
    if m is not None:
        return int(m.group(1)), m.group(2), {"oom_score_adj": int(m.group(3))}, True
    partial = _pid_only(payload)
    return None if partial is None else (partial[0], None, {}, False)


_SCHED = re.compile(rf"comm=(.*) pid=({_N}) prio=(-?{_N})(?: group_dead=(\w+))?$")
_SCHED_PARTIAL = re.compile(rf"comm=(.*?) pid=({_N})")


def _sched(payload: str) -> Payload | None:
    m = _SCHED.match(payload)
    if m is not None:
        fields: dict[str, FieldValue] = {"prio": int(m.group(3))}
        if m.group(4) is not None:
            fields["group_dead"] = m.group(4)
        return int(m.group(2)), m.group(1), fields, True
    m = _SCHED_PARTIAL.match(payload)
    if m is None:
        return None
    return int(m.group(2)), m.group(1), {}, False


def _key_values(last_key: str):
    """Parser for `key=value …` payloads that are complete once `last_key` is seen."""

    def parse(payload: str) -> Payload | None:
        fields: dict[str, FieldValue] = {}
        for token in payload.split():
            key, sep, value = token.partition("=")
            if not sep or not key:
                continue
            if value.isdecimal():  # "-" is no decimal: negative numbers take the next test
                fields[key] = int(value) if len(value) <= 18 else value
            elif value[:1] == "-" and value[1:].isdecimal() and len(value) <= 19:
                fields[key] = int(value)
            else:
                fields[key] = value
        if not fields:
            return None
        return None, None, fields, last_key in fields

    return parse


_PAYLOAD = {
    _K.MARK_VICTIM: _mark_victim,
    _K.WAKE_REAPER: _pid_only,
    _K.START_TASK_REAPING: _pid_only,
    _K.FINISH_TASK_REAPING: _pid_only,
    _K.SKIP_TASK_REAPING: _pid_only,
    _K.OOM_SCORE_ADJ_UPDATE: _adj_update,
    _K.RECLAIM_RETRY_ZONE: _key_values("wmark_check"),
    _K.COMPACT_RETRY: _key_values("should_retry"),
    _K.SCHED_PROCESS_EXIT: _sched,
    _K.SCHED_PROCESS_FREE: _sched,
}
