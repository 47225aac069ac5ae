"""Kernel OOM messages of every era (2.6 to 6.x), parsed from the text after the log prefix.

Each parser takes one message (prefix already stripped by `prefix.strip_prefix`) and returns a
`Parsed` tuple or None. `complete` says whether the message ends the way the kernel ends that
record; an incomplete one is a candidate for joining with a hard-wrapped continuation line
(the scanner in `scan.py` tries that), and is still reported if no join completes it.

Comm names are taken between the first `(` after the pid and the LAST `)` before the known tail,
so `Web Content`, `kworker/u8:2` and `a (b) c` survive. Message regexes are anchored at the
start of the message: a non-kernel syslog line that merely mentions "Killed process" is noise.

Formats by era (see docs/corpus.md for examples):
- header: `%s invoked oom-killer: gfp_mask=…[, nodemask=…], order=%d, {oomkilladj|oom_adj|
  oom_score_adj}=%d` (fields separated by ", "; 4.9–4.18 carry nodemask, 5.x moved it);
  2.6.18 printed no comm: `oom-killer: gfp_mask=0x%x, order=%d`.
- task table: `[ pid ]`/`[  pid  ]` header naming the columns (2.6 `cpu oom_adj`, 3.x/4.x
  `nr_ptes [nr_pmds]`, 4.15+ `pgtables_bytes`, 6.x `rss_anon rss_file rss_shmem`), then rows.
- selection (≤ 4.19): `[<reason>: ]{Kill|kill} process %d (%s) [with ]score %d or sacrifice
  child` / `or a child` / `and children.`; siblings: `Kill process %d (%s) sharing same memory`.
- kill: `[<reason>: ]Killed process %d[, UID %d,] (%s)[ {total-vm|vsz}:…kB, anon-rss:…kB,
  file-rss:…kB[, shmem-rss:…kB][, UID:%u pgtables:…kB oom_score_adj:%d]]`.
- 5.0+: `oom-kill:constraint=…,nodemask=…[,cpuset=…,mems_allowed=…][,oom_memcg=…]
  [,task_memcg=…],task=%s,pid=%d,uid=%d`.
- memcg OOM: `memory: usage %llukB, limit %llukB, failcnt %lu` (every era, v1 and v2) and,
  for cgroup v1 up to 4.18, `Task in %s killed as a result of limit of %s`.
- reaper (4.6+): `oom_reaper: reaped process %d (%s), now anon-rss:…kB, file-rss:…kB,
  shmem-rss:…kB`, `oom_reaper: unable to reap pid:%d (%s)[, anon-rss:…]`.
- freezer: `OOM killer disabled.` / `OOM killer enabled.`
- version: `CPU: %d [UID: %d ]PID: %d Comm: %s {Not tainted|Tainted: …} <release> #…`,
  2.6 `Pid: %d, comm: %s …`, hung-task `      Not tainted <release> #…`, `Linux version <rel>`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping

from .events import EventKind, FieldValue

Parsed = tuple[EventKind, int | None, str | None, Mapping[str, FieldValue], bool]
"""(kind, pid, comm, fields, complete)."""

_K = EventKind

# ---------------------------------------------------------------------------------------------
# key:value tails ("total-vm:123kB, anon-rss:4kB, UID:1000 oom_score_adj:0")

_KB_KEYS = frozenset({"total-vm", "vsz", "anon-rss", "file-rss", "shmem-rss", "pgtables"})
_NAME_CACHE: dict[tuple[str, str], str] = {}


def _field_name(key: str, unit: str) -> str:
    name = _NAME_CACHE.get((key, unit))
    if name is None:
        name = key.lower().replace("-", "_")
        if unit:
            name += "_kb"
        if len(_NAME_CACHE) < 4096:  # hostile input must not grow it without bound
            _NAME_CACHE[(key, unit)] = name
    return name


def _kv_fields(tail: str, out: dict[str, FieldValue]) -> bool:
    """Add every `key:value[kB]` token of `tail` to `out`; False if one is malformed.

    Tokens are split on commas and spaces (a split is several times faster than a findall
    here). Words without a number ("now") are not fields. A memory value with another unit or
    none (the 2016 reaper printed "shmem-rss:0lB"; a wrap can cut "anon-rss:12") keeps its raw
    text instead of an invented number, and makes the record incomplete."""
    clean = True
    for token in tail.replace(",", " ").split():
        key, sep, value = token.partition(":")
        if not sep:
            key, sep, value = token.partition("=")
        head = value[1:2] if value[:1] == "-" else value[:1]
        if not sep or not key[:1].isalpha() or not head.isdecimal():
            continue
        unit = ""
        if value.endswith(("kB", "KB")):
            value, unit = value[:-2], "kB"
        kb_key = key in _KB_KEYS
        if _is_int(value) and (unit or not kb_key):
            out[_field_name(key, unit)] = int(value)
        else:
            out[_field_name(key, "kB" if kb_key else "")] = value + unit
            clean = False
    return clean


def _split_comm(text: str) -> tuple[str, str, bool]:
    """`text` starts right after "(": return (comm, tail after ")", closed)."""
    close = text.rfind(")")
    if close < 0:
        return text, "", False
    return text[:close], text[close + 1 :], True


# ---------------------------------------------------------------------------------------------
# "invoked oom-killer"

_INVOKED = " invoked oom-killer:"
_INVOKED_OLD = "oom-killer: gfp_mask="
_INT_FIELDS = frozenset({"order", "oom_score_adj", "oom_adj", "oomkilladj"})


def parse_invoked(msg: str) -> Parsed | None:
    """`%s invoked oom-killer: …`, or 2.6.18's comm-less `oom-killer: gfp_mask=…, order=%d`."""
    if msg.startswith(_INVOKED_OLD):
        at, skip, comm = 0, len("oom-killer:"), None
    else:
        at = msg.find(_INVOKED)
        if at <= 0:
            return None
        skip, comm = len(_INVOKED), msg[:at]
    fields: dict[str, FieldValue] = {}
    for key, value in _comma_fields(msg[at + skip :]):
        if key == "gfp_mask" and isinstance(value, str):
            mask, _, flags = value.partition("(")
            fields["gfp_mask"] = mask
            if flags:
                fields["gfp_flags"] = flags.rstrip(")")
        elif key in _INT_FIELDS and isinstance(value, str) and _is_int(value):
            fields[key] = int(value)
        else:
            fields[key] = value
    complete = "order" in fields and (comm is None or any(k in fields for k in _ADJ_FIELDS))
    return _K.OOM_INVOKED, None, comm, fields, complete


_ADJ_FIELDS = ("oom_score_adj", "oom_adj", "oomkilladj")


def _is_int(text: str) -> bool:
    """Decimal that int() takes without hitting its digit limit (totality on hostile input)."""
    if len(text) > 18:
        return False
    return text.isdecimal() or (text[:1] == "-" and text[1:].isdecimal())


def _comma_fields(body: str) -> list[tuple[str, FieldValue]]:
    """`a=1, b=x,y,flag` -> [(a, "1"), (b, "x,y"), (flag, 1)]: node lists hold commas."""
    out: list[tuple[str, FieldValue]] = []
    for raw in body.split(","):
        token = raw.strip()
        key, sep, value = token.partition("=")
        if sep and key and key.replace("_", "").isalnum():
            out.append((key, value))
        elif not sep and token.replace("_", "").isalpha():
            out.append((token, 1))  # bare flag such as global_oom
        elif token and out and isinstance(out[-1][1], str):
            out[-1] = (out[-1][0], f"{out[-1][1]},{token}")
    return out


# ---------------------------------------------------------------------------------------------
# selection and kill lines

_REASON = r"(?:OOM\[\d+\]: )?(?P<reason>(?i:out of memory|memory cgroup out of memory)[^:]*): "
_KILLED = re.compile(
    rf"(?:{_REASON})?Killed process (?P<pid>\d{{1,18}})(?:, UID (?P<uid>\d{{1,18}}),)? \("
)
_KILL = re.compile(rf"(?:{_REASON})?[Kk]ill process (?P<pid>\d{{1,18}}) \(")
_SELECT_TAIL = re.compile(
    r" (?:with )?score (\d{1,18}) (?:or sacrifice child|or a child|and children\.?)"
)
_SELECT_PARTIAL = re.compile(r" (?:with )?score (\d{1,18})")
_SHARING_TAIL = re.compile(r' (?:in VE "[^"]*" )?sharing same memory')


def parse_kill(msg: str) -> Parsed | None:
    """`Killed process …`, `Kill process … score … or sacrifice child`, `… sharing same memory`."""
    m = _KILLED.match(msg)
    if m is not None:
        return _parse_killed(msg, m)
    m = _KILL.match(msg)
    if m is None:
        return None
    comm, tail, closed = _split_comm(msg[m.end() :])
    fields: dict[str, FieldValue] = {}
    if m.group("reason"):
        fields["reason"] = m.group("reason")
    pid = int(m.group("pid"))
    if _SHARING_TAIL.fullmatch(tail):
        fields["sharing_mm"] = 1
        return _K.KILLED, pid, comm, fields, True
    sel = _SELECT_TAIL.fullmatch(tail)
    if sel is not None:
        fields["score"] = int(sel.group(1))
        return _K.KILL_SELECT, pid, comm, fields, closed
    partial = _SELECT_PARTIAL.match(tail)
    if partial is not None:
        fields["score"] = int(partial.group(1))
    return _K.KILL_SELECT, pid, comm, fields, False


# The kill tail as mainline prints it from 2.6.32 to 6.x, read in one match; anything else
# (vsz:, RHEL's UID, a wrap, a typo) goes through the general _kv_fields.
_KILLED_TAIL = re.compile(
    r" total-vm:(\d{1,18})kB, anon-rss:(\d{1,18})kB, file-rss:(\d{1,18})kB"
    r"(?:, shmem-rss:(\d{1,18})kB)?(?:, UID:(\d{1,18}) pgtables:(\d{1,18})kB"
    r" oom_score_adj:(-?\d{1,18}))?"
)
_KILLED_NAMES = (
    "total_vm_kb", "anon_rss_kb", "file_rss_kb", "shmem_rss_kb", "uid", "pgtables_kb",
    "oom_score_adj",
)


def _parse_killed(msg: str, m: re.Match[str]) -> Parsed:
    comm, tail, closed = _split_comm(msg[m.end() :])
    fields: dict[str, FieldValue] = {}
    if m.group("reason"):
        fields["reason"] = m.group("reason")
    if m.group("uid"):
        fields["uid"] = int(m.group("uid"))
    fast = _KILLED_TAIL.fullmatch(tail.rstrip())
    if fast is not None and closed:
        for name, value in zip(_KILLED_NAMES, fast.groups()):
            if value is not None:
                fields[name] = int(value)
        return _K.KILLED, int(m.group("pid")), comm, fields, True  # every form ends complete
    clean = _kv_fields(tail, fields)
    complete = closed and clean and _killed_tail_complete(tail, fields)
    return _K.KILLED, int(m.group("pid")), comm, fields, complete


def _killed_tail_complete(tail: str, fields: dict[str, FieldValue]) -> bool:
    stripped = tail.strip()
    if stripped in ("", "."):
        return True  # 2.6-era "Killed process 123 (comm)" carries nothing else
    if stripped.endswith(","):
        return False
    if "uid" in fields and "UID:" in tail:
        return "oom_score_adj" in fields  # the 5.3+ form always ends with oom_score_adj
    return "file_rss_kb" in fields


# ---------------------------------------------------------------------------------------------
# reaper

_REAPED = re.compile(r"oom_reaper: reaped process (\d{1,18}) \(")
_UNABLE = re.compile(r"oom_reaper: unable to reap pid:(\d{1,18}) \(")
_REAP_KEYS = ("anon_rss_kb", "file_rss_kb", "shmem_rss_kb")


_REAPED_TAIL = re.compile(
    r", now anon-rss:(\d{1,18})kB, file-rss:(\d{1,18})kB, shmem-rss:(\d{1,18})kB"
)


def parse_reaper(msg: str) -> Parsed | None:
    m = _REAPED.match(msg)
    if m is not None:
        comm, tail, closed = _split_comm(msg[m.end() :])
        fast = _REAPED_TAIL.fullmatch(tail.rstrip())
        if fast is not None and closed:
            anon, file, shmem = map(int, fast.groups())
            values = {"anon_rss_kb": anon, "file_rss_kb": file, "shmem_rss_kb": shmem}
            return _K.REAPED, int(m.group(1)), comm, values, True
        fields: dict[str, FieldValue] = {}
        clean = _kv_fields(tail, fields)
        complete = closed and clean and all(k in fields for k in _REAP_KEYS)
        return _K.REAPED, int(m.group(1)), comm, fields, complete
    m = _UNABLE.match(msg)
    if m is not None:
        comm, tail, closed = _split_comm(msg[m.end() :])
        fields = {}
        clean = _kv_fields(tail, fields)
        complete = closed and clean and not tail.rstrip().endswith(",")
        return _K.UNABLE_TO_REAP, int(m.group(1)), comm, fields, complete
    return None


# ---------------------------------------------------------------------------------------------
# oom-kill: summary line (5.0+) and the cgroup-v1 "Task in" line

_PID_UID = re.compile(r",pid=(\d{1,18}),uid=(\d{1,18})")


def parse_constraint(msg: str) -> Parsed | None:
    if not msg.startswith("oom-kill:"):
        return None
    body = msg[len("oom-kill:") :]
    fields: dict[str, FieldValue] = {}
    pid = comm = None
    at = body.rfind(",pid=")
    tail = _PID_UID.fullmatch(body, at) if at >= 0 else None
    task = body.rfind("task=", 0, at) if tail is not None else -1
    if tail is not None and task >= 0 and (task == 0 or body[task - 1] == ","):
        comm, pid = body[task + 5 : at], int(tail.group(1))
        fields["uid"] = int(tail.group(2))
        body = body[: max(task - 1, 0)]
    else:
        tail = None
    for key, value in _comma_fields(body):
        fields[key] = value
    return _K.OOM_KILL_CONSTRAINT, pid, comm, fields, tail is not None


_TASK_IN = re.compile(r"Task in (.+) killed as a result of limit of (.+)$")


def parse_task_in(msg: str) -> Parsed | None:
    m = _TASK_IN.match(msg)
    if m is not None:
        fields: dict[str, FieldValue] = {"task_memcg": m.group(1), "limit_memcg": m.group(2)}
        return _K.MEMCG_OOM, None, None, fields, True
    if not msg.startswith("Task in /"):
        return None
    task = msg[len("Task in ") :].split(" ", 1)[0]  # cut by a wrap: a join may complete it
    return _K.MEMCG_OOM, None, None, {"task_memcg": task}, False


_MEMCG_USAGE = re.compile(r"memory: usage (\d{1,18})kB, limit (\d{1,18})kB, failcnt (\d{1,18})$")


def parse_memcg_usage(msg: str) -> Parsed | None:
    """`memory: usage %llukB, limit %llukB, failcnt %lu`: the memcg OOM header of every era."""
    m = _MEMCG_USAGE.match(msg)
    if m is None:
        return None
    fields: dict[str, FieldValue] = {
        "usage_kb": int(m.group(1)), "limit_kb": int(m.group(2)), "failcnt": int(m.group(3)),
    }
    return _K.MEMCG_OOM, None, None, fields, True


def parse_oom_killer_toggle(msg: str) -> Parsed | None:
    body = msg.rstrip(".")
    if body == "OOM killer disabled":
        return _K.OOM_DISABLED, None, None, {}, True
    if body == "OOM killer enabled":
        return _K.OOM_ENABLED, None, None, {}, True
    return None


# ---------------------------------------------------------------------------------------------
# kernel version (CPU:/Pid: header of the OOM report, hung-task lines, boot banner)

# Possessive quantifiers keep a line of 100k spaces linear.
_TAINT = r"(?:Not tainted +|Tainted: [A-Z ]*+)(?P<ver>\d+\.\d+\S*)"
_CPU_LINE = re.compile(
    rf"CPU: \d+ (?:UID: \d+ )?PID: (?P<pid>\d{{1,18}}) Comm: (?P<comm>.*?) {_TAINT}"
)
_PID_LINE = re.compile(rf"Pid: (?P<pid>\d{{1,18}}), comm: (?P<comm>.*?) {_TAINT}")
_BARE_TAINT = re.compile(rf"\s*{_TAINT}")
_BANNER = re.compile(r"Linux version (?P<ver>\d+\.\d+\S*)")


def parse_version(msg: str) -> Parsed | None:
    for regex in (_CPU_LINE, _PID_LINE):
        m = regex.match(msg)
        if m is not None:
            fields: dict[str, FieldValue] = {"version": m.group("ver")}
            return _K.KERNEL_VERSION, int(m.group("pid")), m.group("comm"), fields, True
    m = _BARE_TAINT.match(msg) or _BANNER.match(msg)
    if m is not None:
        return _K.KERNEL_VERSION, None, None, {"version": m.group("ver")}, True
    return None


# ---------------------------------------------------------------------------------------------
# task table


class TaskTable:
    """The column layout announced by the last `[ pid ]` header (mutable scanner state)."""

    __slots__ = ("columns", "row", "stamped_row", "ascii_rows")

    def __init__(self) -> None:
        self.columns: tuple[str, ...] | None = None
        self.row: re.Pattern[str] | None = None  # groups: pid, numbers, name
        self.stamped_row: re.Pattern[str] | None = None  # printk stamp first: time, pid, ...
        self.ascii_rows: tuple[re.Pattern[str], re.Pattern[str]] | None = None

    def set_columns(self, names: list[str]) -> None:
        self.columns = tuple(names)
        self.row, self.stamped_row = _row_regexes(len(names), ascii=False)
        self.ascii_rows = _row_regexes(len(names), ascii=True)

    def row_patterns(self, ascii: bool) -> tuple[re.Pattern[str], re.Pattern[str]] | None:
        """(row, stamped row) patterns, the faster equivalents for ASCII-only text; None before a
        header."""
        if self.row is None or self.stamped_row is None or self.ascii_rows is None:
            return None
        return self.ascii_rows if ascii else (self.row, self.stamped_row)


class RowFields(Mapping[str, int]):
    """The numeric columns of one task-table row, decoded to ints on first access.

    A large log is mostly task rows and most rows are never looked at again, so the scan only
    validates the numbers (by regex) and keeps their text; `dict(fields)` or any lookup decodes
    them once. Logically immutable, like the MappingProxyType used for other events."""

    __slots__ = ("_columns", "_raw", "_values")

    def __init__(self, columns: tuple[str, ...], raw: str) -> None:
        self._columns = columns
        self._raw = raw
        self._values: dict[str, int] | None = None

    def _decoded(self) -> dict[str, int]:
        values = self._values
        if values is None:
            values = self._values = dict(zip(self._columns, map(int, self._raw.split())))
        return values

    def __getitem__(self, key: str) -> int:
        return self._decoded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)

    def __repr__(self) -> str:
        return f"RowFields({self._decoded()!r})"

    def __reduce__(self) -> tuple[object, ...]:
        return RowFields, (self._columns, self._raw)


@functools.lru_cache(maxsize=64)
def _row_regexes(columns: int, ascii: bool) -> tuple[re.Pattern[str], re.Pattern[str]]:
    # Every quantifier before the name is followed by a character it cannot match (a digit
    # after spaces, a space or `]` after digits), so making them possessive changes no match;
    # it spares the engine its backtracking bookkeeping. Unrolling the columns (real headers
    # have 6 to 10) avoids a counted group repeat, the slowest construct here: together a
    # third less time per row. Only `\s+(.+)$` may backtrack (a name of trailing spaces).
    space, digit = _ASCII_CLASSES if ascii else (r"\s", r"\d")
    number = rf"{space}++-?{digit}{{1,18}}+"
    numbers = number * columns if columns <= _UNROLL else rf"(?:{number}){{{columns}}}+"
    row = rf"\[{space}*+({digit}{{1,18}}+)\]({numbers}){space}+(.+)$"
    stamped = rf"\[ *+({digit}{{1,12}}+\.{digit}{{1,12}}+)\] ?{row}"
    return re.compile(row), re.compile(stamped)


_UNROLL = 32
# In a str pattern `\s` and `\d` look up each character's Unicode category; on ASCII text these
# classes match exactly the same characters (str.isspace() holds for \x1c-\x1f too), faster.
_ASCII_CLASSES = (r"[\t\n\x0b\x0c\r\x1c-\x1f ]", "[0-9]")


_HEADER = re.compile(r"\[\s*pid\s*\]\s")
_ROW = re.compile(r"\[\s*(\d{1,18})\]\s+(.*)$")


def parse_table_line(msg: str, table: TaskTable) -> Parsed | None:
    """A row becomes an event; a header only sets the table's columns and returns None."""
    row = table.row
    if row is not None:
        m = row.match(msg)
        if m is not None:
            fields = RowFields(table.columns, m.group(2))  # type: ignore[arg-type]
            return _K.TASK_TABLE_ROW, int(m.group(1)), m.group(3), fields, True
    m = _ROW.match(msg)
    if m is None:
        h = _HEADER.match(msg)
        if h is not None:
            names = msg[h.end() :].split()
            if len(names) > 1 and names[-1] == "name":
                table.set_columns(names[:-1])
        return None
    return _row_without_header(int(m.group(1)), m.group(2))


_GUESSED = ("uid", "tgid", "total_vm", "rss")


def _row_without_header(pid: int, body: str) -> Parsed | None:
    """No usable header (a partial paste): name the columns that are in place in every era."""
    tokens = body.split()
    count = 0
    while count < len(tokens) and _is_int(tokens[count]):
        count += 1
    if count == len(tokens):
        count -= 1  # an all-digit name, or a row truncated inside its numbers
    if count < 5:
        if count < 1:
            return None
        fields = {f"col{i + 1}": int(t) for i, t in enumerate(tokens[:count])}
        return _K.TASK_TABLE_ROW, pid, None, fields, False
    name = body.split(None, count)[-1]
    numbers = [int(t) for t in tokens[:count]]
    fields = dict(zip(_GUESSED, numbers))
    for i in range(len(_GUESSED), count - 1):
        fields[f"col{i + 1}"] = numbers[i]
    fields["oom_score_adj"] = numbers[-1]
    return _K.TASK_TABLE_ROW, pid, name, fields, True


# ---------------------------------------------------------------------------------------------
# dispatch

_MEMORY_FIELDS = frozenset({"total_vm_kb", "vsz_kb", "anon_rss_kb", "file_rss_kb", "shmem_rss_kb"})
CONTINUATION_FIELDS: dict[EventKind, frozenset[str]] = {
    _K.KILLED: _MEMORY_FIELDS | {"uid", "pgtables_kb", "oom_score_adj"},
    _K.REAPED: _MEMORY_FIELDS,
    _K.UNABLE_TO_REAP: _MEMORY_FIELDS,
    _K.OOM_INVOKED: frozenset({"gfp_mask", "gfp_flags", "nodemask", "order", *_ADJ_FIELDS}),
}
"""Fields a complete record of each kind may still gain from a hard-wrapped next line."""


def parse_message(msg: str, table: TaskTable) -> Parsed | None:
    """Parse one kernel message; None when it is not an OOM record."""
    if not msg:
        return None
    if msg[0] == "[":
        return parse_table_line(msg, table)
    if msg.startswith("OOM["):
        close = msg.find("]: ")
        if close > 0:
            msg = msg[close + 3 :]
    if "illed process" in msg or "ill process" in msg:
        return parse_kill(msg)
    if msg.startswith("oom_reaper: "):
        return parse_reaper(msg)
    if msg.startswith("oom-kill:"):
        return parse_constraint(msg)
    if "oom-killer:" in msg:
        return parse_invoked(msg)
    if msg.startswith("Task in "):
        return parse_task_in(msg)
    if msg.startswith("memory: usage "):
        return parse_memcg_usage(msg)
    if msg.startswith("OOM killer "):
        return parse_oom_killer_toggle(msg)
    if "ainted" in msg or msg.startswith("Linux version "):
        return parse_version(msg)
    return None
