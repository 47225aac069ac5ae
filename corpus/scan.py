"""The line scanner: finds OOM records among arbitrary log lines, joins wrapped ones, drops pastes.

Design. Real logs are mostly lines we do not care about (Mem-Info, stack traces, other
drivers), so the scanner never visits them one by one: the keywords of every record we parse are
located over the whole text with `str.find` (and task rows with one regex whose literal first
character lets the engine skip ahead), positions become line numbers by counting newlines
between hits, and only those candidate lines get their prefix stripped (`prefix.strip_prefix`)
and their message parsed (`dmesg.parse_message`, or `ftrace.parse_record` when the keyword is
an event name, so one file may mix both). A line without a keyword costs no Python code at all.
Task rows, the bulk of every report, take a short path (`_rows`) once their header is known.

Hard wraps. A record broken across lines is joined when the continuation completes it:
- a dmesg record that is incomplete (`complete` is False) is joined with the next line(s) if
  the result parses completely; a complete record whose line had a log prefix is joined with a
  following line that has none only when that adds fields or extends a comm within the kernel's
  15-byte TASK_COMM_LEN (so "(...snipped...)" after "(a.out)" is never glued on);
- a keyword split by the wrap ("Killed" / "process 123 …") is found by searching the join of a
  prefixed line and an unprefixed next line;
- an ftrace record wrapped after its timestamp (`…  629614.303007:` / `sched_process_exit: …`)
  is joined backwards from the payload line; one wrapped inside the payload forwards.
A continuation line never starts like a prefix and never carries a keyword of its own.

Duplicates. The same timestamped record pasted twice is counted once: identical ftrace records
(same cpu, context pid, timestamp, event and payload; the context comm is display-only and may
read `<...>`) anywhere in the file, identical printk lines with sub-second stamps anywhere, and
identical lines with whole-second stamps (syslog, dmesg -T) within one OOM report (since the
last `invoked oom-killer`), because two reports in the same second print identical lines.
Lines without any stamp are never treated as duplicates.

Indented lines (journalctl re-indents continuation lines of multi-line records; `dmesg` and
fixtures keep a leading space) are parsed as messages of their own and take the time of the
nearest unindented line above them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from . import ftrace
from .dmesg import CONTINUATION_FIELDS, Parsed, RowFields, TaskTable, parse_message
from .events import Event, EventKind, FieldValue, make_fields, new_event
from .prefix import looks_prefixed, strip_prefix, strip_quote

_FT_NAMES = "|".join(sorted(ftrace.KINDS, key=len, reverse=True))
_FT_KEYWORDS = rf"(?P<ft>(?:{_FT_NAMES}):)"
_DM_WORDS = (
    "oom-killer:", "illed process", "ill process", "oom-kill:", "oom_reaper: ", "Task in ",
    "memory: usage ", "OOM killer ", "ainted", "Linux version ",
)
_DM_KEYWORDS = "(?P<dm>" + "|".join(_DM_WORDS) + ")"  # plain words: nothing to escape
_ROW_KEYWORDS = r"(?P<row>\[ *+\d++\] ++-?\d++ ++-?\d++ |\[ ++pid ++\])"
# The longest keyword but a task row's: a keyword split by a wrap lies within this many
# characters of the join. A task row or header split by one leaves this in the first line.
_KEYWORD_MAX = max(len(w) for w in (*_DM_WORDS, *(name + ":" for name in ftrace.KINDS)))
_ROW_HEAD = re.compile(r"\[[ \d\]pid-]*+")
# Keywords are located over the whole text with str.find (C speed, no per-line work for the
# lines that have none); task rows, the most common record, with one regex whose literal first
# character lets the engine skip ahead. `_CANDIDATE` re-checks single joined lines.
# Shared stems keep the number of passes down: "oom-kill" finds `oom-killer:` and `oom-kill:`,
# "process " every kill and selection line, "_task_reaping:" three tracepoints.
_FT_LITERALS = (
    "mark_victim:", "wake_reaper:", "_task_reaping:", "oom_score_adj_update:",
    "reclaim_retry_zone:", "compact_retry:", "sched_process_",
)
_DM_LITERALS = (
    "oom-kill", "process ", "oom_reaper: ", "Task in ", "memory: usage ", "OOM killer ", "ainted",
    "Linux version ",
)
_ROWS = re.compile(_ROW_KEYWORDS)
_CANDIDATE = re.compile(f"{_FT_KEYWORDS}|{_DM_KEYWORDS}|{_ROW_KEYWORDS}")
# Start of an unprefixed, unindented line: where a wrap may have split a keyword in two.
_BARE_LINE = re.compile(
    r"\n(?=[^\s\[<\d])(?!(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) )"
)
# First characters a log prefix can start with (printk stamp, level, kmsg, ISO date, month,
# mail quote): a line starting otherwise cannot be the prefixed half of a split keyword.
_PREFIX_FIRST = frozenset("[<>0123456789JFMASOND")
# First characters (or "" for a blank line) of lines that never continue a complete record.
_NO_TAIL = frozenset(("", " ", "\t", "["))
_INVOKED = EventKind.OOM_INVOKED
_TASK_ROW = EventKind.TASK_TABLE_ROW
_ROW_ONLY, _DMESG, _FTRACE = "row", "dmesg", "ftrace"
_COMM_LEN = 15
_MAX_JOIN = 3
_SEEN_LIMIT = 1 << 16
_LOOKBACK = 256
_Match = Callable[..., "re.Match[str] | None"]  # a compiled row pattern's bound `match`


def _line_numbers(positions: list[int], text: str) -> list[int]:
    """Line index of each position (ascending), counting newlines incrementally at C speed."""
    out, line, last = [], 0, 0
    count = text.count
    for pos in positions:
        line += count("\n", last, pos)
        last = pos
        out.append(line)
    return out


def _keyword_positions(text: str) -> tuple[list[int], set[int]]:
    """Positions of every keyword hit, and the subset that are ftrace event names."""
    positions: list[int] = []
    ftrace_hits: set[int] = set()
    find = text.find
    for literals, is_ft in ((_DM_LITERALS, False), (_FT_LITERALS, True)):
        for literal in literals:
            pos = find(literal)
            while pos >= 0:
                positions.append(pos)
                if is_ft:
                    ftrace_hits.add(pos)
                pos = find(literal, pos + 1)
    positions.sort()
    return positions, ftrace_hits


class Scanner:
    """Scan the text once (`run`), collecting events, duplicate spans and the non-blank count."""

    def __init__(self, text: str, lines: list[str], first_line: int = 1) -> None:
        self.text = text
        self.lines = lines
        self.ascii = text.isascii()  # O(1) in CPython; then every line is ASCII too
        self.offset = first_line
        self.events: list[Event] = []
        self.duplicates: list[tuple[int, int]] = []
        self.nonblank = 0
        self.covered = 0
        self.table = TaskTable()
        self.candidates: dict[int, str] = {}  # line index -> _ROW_ONLY, _DMESG or _FTRACE
        self._seen: dict[object, int] = {}
        self._generation = 0
        self._last_used = -1  # highest line index already part of an event
        self._inherit_memo: tuple[int, int, float | None] = (-1, -1, None)
        self._prefix_memo: tuple[str, int, float | None, bool] = ("", 0, None, False)

    # -- driver -----------------------------------------------------------------------------

    def run(self) -> None:
        text, lines = self.text, self.lines
        n = len(lines)
        self.nonblank = n - lines.count("") - sum(map(str.isspace, lines))
        cands = self.candidates
        rows = [m.start() for m in _ROWS.finditer(text)]
        for i in _line_numbers(rows, text):
            cands[i] = _ROW_ONLY
        positions, ftrace_hits = _keyword_positions(text)
        for i, pos in zip(_line_numbers(positions, text), positions):
            if pos in ftrace_hits:
                cands[i] = _FTRACE
            elif cands.get(i) is not _FTRACE:
                cands[i] = _DMESG
        bare = [m.start() + 1 for m in _BARE_LINE.finditer(text)]
        splits = [
            i - 1
            for i in _line_numbers(bare, text)
            if i > 0 and i - 1 not in cands and lines[i - 1][:1] in _PREFIX_FIRST
        ]
        resume = 0
        for i in sorted([*cands, *splits]):
            if i < resume or i >= n:
                continue
            what = cands.get(i)
            if what is _ROW_ONLY:
                resume = self._rows(i)
            elif what is not None:
                resume = self._candidate(lines[i], i, i, what is _FTRACE)
            elif i + 1 < n:
                resume = self._split_keyword(lines[i], i)

    def _candidate(self, text: str, first: int, last: int, is_ftrace: bool) -> int:
        """Handle the logical line `text` (lines first..last); return the next index to scan."""
        if is_ftrace:
            nxt = self._ftrace(text, first, last)
            if nxt is not None:
                return nxt
        return self._dmesg(text, first, last)

    def _rows(self, i: int) -> int:
        """Fast path for the bulk of every log: a run of task-table rows after their header.

        Rows come in three shapes, each with its own tight loop: bare (`[  pid]  …`, fixtures
        and pastes), printk-stamped (raw dmesg) and behind a syslog/journal prefix that the
        whole report shares. A loop hands back here when the shape changes; bracketed rows try
        last row's shape first, then the other. Anything unusual (no header, indentation, a
        possible wrapped tail) ends the run and takes the general `_dmesg` path."""
        lines, cands = self.lines, self.candidates
        n = len(lines)
        first = i
        patterns, columns = self.table.row_patterns(self.ascii), self.table.columns
        if patterns is not None and columns is not None:
            row = patterns[0].match
            bracketed = ((self._stamped_rows, patterns[1].match), (self._bare_rows, row))
            bare = False  # raw dmesg rows start with a printk stamp, fixture rows with the row
            while i < n and cands.get(i) is _ROW_ONLY:
                c = lines[i][0]
                if c in " \t":
                    break
                if c != "[":
                    i, stop = self._prefixed_rows(i, row, columns)
                else:
                    loop, match = bracketed[bare]
                    j, stop = loop(i, match, columns)
                    if j == i and not stop:  # the line has the other shape, or is no row
                        bare = not bare
                        loop, match = bracketed[bare]
                        j, stop = loop(i, match, columns)
                        if j == i and not stop:
                            break
                    i = j
                if stop:
                    break
        if i > first:
            self.covered += i - first
            self._last_used = max(self._last_used, i - 1)
            return i
        return self._dmesg(lines[i], i, i)

    # The shape loops take line i, a `_ROW_ONLY` candidate, and return (the first line they did
    # not take, whether the run ends there). `_emit`'s bookkeeping (duplicate key, event) is
    # inlined in them: they run once per row.

    def _bare_rows(self, i: int, match: _Match, columns: tuple[str, ...]) -> tuple[int, bool]:
        """Rows without any prefix or stamp: no time, so never duplicates."""
        lines, get, events, offset = self.lines, self.candidates.get, self.events, self.offset
        n = len(lines)
        while i < n and get(i) is _ROW_ONLY:
            line = lines[i]
            m = match(line) if line[0] == "[" else None
            if m is None:
                break
            pid, raw, name = m.groups()
            line_no = i + offset
            events.append(new_event(_TASK_ROW, line_no, line_no, None, int(pid), name.rstrip(),
                                    RowFields(columns, raw)))
            i += 1
        return i, False

    def _stamped_rows(self, i: int, match: _Match, columns: tuple[str, ...]) -> tuple[int, bool]:
        """Rows behind a printk stamp `[  123.456789] `: sub-second, so duplicates anywhere."""
        lines, cands, events, offset = self.lines, self.candidates, self.events, self.offset
        seen, generation = self._seen, self._generation
        n, get = len(lines), cands.get
        while i < n and get(i) is _ROW_ONLY:
            line = lines[i]
            m = match(line) if line[0] == "[" else None
            if m is None:
                return i, False
            if i + 1 < n and i + 1 not in cands:
                return i, True  # the next line may be the wrapped end of this one
            key = line.rstrip()
            if key in seen:
                self.duplicates.append((i, i))
            else:
                if len(seen) >= _SEEN_LIMIT:
                    seen.clear()
                seen[key] = generation
                stamp, pid, raw, name = m.groups()
                line_no = i + offset
                events.append(new_event(_TASK_ROW, line_no, line_no, float(stamp), int(pid),
                                        name.rstrip(), RowFields(columns, raw)))
            i += 1
        return i, False

    def _prefixed_rows(self, i: int, match: _Match, columns: tuple[str, ...]) -> tuple[int, bool]:
        """Rows behind a syslog/journal/kmsg prefix; consecutive rows usually share its text.

        A printk stamp never matches the row pattern, so a row after the remembered prefix text
        needs no `strip_prefix` (which would find the same prefix)."""
        lines, cands, events, offset = self.lines, self.candidates, self.events, self.offset
        seen, generation = self._seen, self._generation
        n, get = len(lines), cands.get
        head, start, time, precise = self._prefix_memo
        stop = False
        what = get(i)  # invariant: what is cands.get(i)
        while what is _ROW_ONLY and i < n:
            line = lines[i]
            if line[0] in " \t[":
                break
            # No row starts at 0 here (the line does not start with "["): an empty memo misses.
            m = match(line, start) if line.startswith(head) else None
            if m is None:
                at, at_time, at_precise = strip_prefix(line)
                m = match(line, at)
                if m is None:
                    stop = True
                    break
                head, start, time, precise = line[:at], at, at_time, at_precise
            what = get(i + 1)
            if what is None and i + 1 < n:
                stop = True  # the next line may be the wrapped end of this one
                break
            if time is not None:
                key = line.rstrip()
                seen_generation = seen.get(key)
                if seen_generation is not None and (precise or seen_generation == generation):
                    self.duplicates.append((i, i))
                    i += 1
                    continue
                if len(seen) >= _SEEN_LIMIT:
                    seen.clear()
                seen[key] = generation
            pid, raw, name = m.groups()
            line_no = i + offset
            events.append(new_event(_TASK_ROW, line_no, line_no, time, int(pid), name.rstrip(),
                                    RowFields(columns, raw)))
            i += 1
        self._prefix_memo = (head, start, time, precise)
        return i, stop

    def _split_keyword(self, line: str, i: int) -> int:
        """A keyword broken by a wrap between a prefixed line and its unprefixed tail.

        Returns the next index to scan (i + 1 when there is no such keyword)."""
        nxt = self.lines[i + 1]
        if not nxt or nxt[0] in " \t[" or looks_prefixed(nxt) or not looks_prefixed(line):
            return i + 1
        head, tail = line.rstrip(), nxt.strip()
        if not _may_straddle(head, tail):
            return i + 1
        for sep in ("", " "):
            joined = head + sep + tail
            m = _CANDIDATE.search(joined)
            if m is None or not m.start() < len(head) < m.end():
                continue
            before = len(self.events) + len(self.duplicates)
            after = self._candidate(joined, i, i + 1, m.lastgroup == "ft")
            if len(self.events) + len(self.duplicates) > before:
                return after
        return i + 1

    # -- dmesg ------------------------------------------------------------------------------

    def _dmesg(self, text: str, first: int, last: int) -> int:
        start, time, precise = strip_prefix(text)
        if start == 0 and text[0] in " \t":
            msg = text.strip()
            time, stamped = self._inherited_time(first), False
        else:
            msg = text[start:].strip()
            stamped = time is not None
        parsed = parse_message(msg, self.table)
        if parsed is None:
            return last + 1
        if not parsed[4] or (last + 1 not in self.candidates and self._may_extend(last + 1)):
            msg, parsed, last = self._extend_dmesg(msg, parsed, last, start > 0)
        kind, pid, comm, fields, _complete = parsed
        if kind is EventKind.TASK_TABLE_ROW and comm is None:
            return last + 1  # a fragment of a row that no continuation completed
        key = self._raw_key(first, last) if stamped else None
        self._emit(kind, pid, comm, fields, first, last, time, key, precise)
        return last + 1

    def _extend_dmesg(
        self, msg: str, parsed: Parsed, last: int, prefixed: bool
    ) -> tuple[str, Parsed, int]:
        """Join following continuation lines while that completes (or enriches) the record."""
        for _ in range(_MAX_JOIN):
            tail = self._continuation(last, allow_indent=not parsed[4])
            if tail is None:
                break
            better = None
            for sep in ("", " "):
                cand = parse_message(msg + sep + tail, self.table)
                if cand is not None and _improves(parsed, cand, prefixed):
                    better = (msg + sep + tail, cand)
                    break
            if better is None:
                break
            msg, parsed = better
            last += 1
        return msg, parsed, last

    def _may_extend(self, j: int) -> bool:
        """Can line j continue a complete record? Not if it is missing, blank, indented or starts
        with "[" (a printk stamp: every line of a raw dmesg), as `_continuation` would find."""
        lines = self.lines
        return j < len(lines) and lines[j][:1] not in _NO_TAIL

    def _continuation(self, last: int, allow_indent: bool) -> str | None:
        """The next line if it can only be the wrapped tail of the record ending at `last`."""
        j = last + 1
        if j >= len(self.lines):
            return None
        if j in self.candidates:
            return None  # a line with a keyword of its own is a record of its own
        nxt = self.lines[j]
        stripped = nxt.strip()
        if stripped[:1] == ">":  # the tail of a quoted record is quoted too
            stripped = stripped[strip_quote(stripped) :].strip()
        if not stripped or (nxt[0] in " \t" and not allow_indent):
            return None
        if looks_prefixed(stripped) or ftrace.looks_like_record(stripped):
            return None
        return stripped

    def _inherited_time(self, i: int) -> float | None:
        """Time of the nearest unindented line above `i` (within _LOOKBACK lines).

        Memoised on the previous query, so a run of indented lines costs one scan."""
        lines = self.lines
        low = max(i - _LOOKBACK, -1)
        prev_i, prev_j, prev_time = self._inherit_memo
        j = i - 1
        while j > low:
            if j == prev_i:
                found = (prev_j, prev_time) if prev_j > low else (-1, None)
                self._inherit_memo = (i, *found)
                return found[1]
            line = lines[j]
            if line and line[0] not in " \t":
                time = strip_prefix(line)[1]
                self._inherit_memo = (i, j, time)
                return time
            j -= 1
        self._inherit_memo = (i, -1, None)
        return None

    def _raw_key(self, first: int, last: int) -> str:
        if first == last:
            return self.lines[first].rstrip()
        return "\n".join(line.rstrip() for line in self.lines[first : last + 1])

    # -- ftrace -----------------------------------------------------------------------------

    def _ftrace(self, text: str, first: int, last: int) -> int | None:
        rec = ftrace.parse_record(text)
        if rec is None and first == last and first - 1 > self._last_used and first > 0:
            prev = self.lines[first - 1]
            if ftrace.starts_with_event(text) and ftrace.is_header_only(prev):
                rec = ftrace.parse_record(prev.rstrip() + " " + text.strip())
                if rec is not None:  # wrapped right after the timestamp: join backwards
                    first -= 1
                    text = prev.rstrip() + " " + text.strip()
        if rec is None or not rec[4] or last + 1 not in self.candidates:
            # cut inside its payload ("mark_victim:" / "pid=502", or "pid=50" / "2"): a bare
            # next line that makes the record parse completely is its tail
            joined = self._ftrace_forward(text, last)
            if joined is not None and (rec is None or joined[0][0] is rec[0]):
                rec, last = joined
        if rec is None:
            return None
        kind, pid, comm, fields, _complete, time, identity = rec
        self._emit(kind, pid, comm, fields, first, last, time, identity, True)
        return last + 1

    def _ftrace_forward(self, text: str, last: int) -> tuple[ftrace.Record, int] | None:
        """Join the lines after a record cut inside its payload until it parses completely."""
        for extra in range(1, _MAX_JOIN + 1):
            tail = self._continuation(last + extra - 1, allow_indent=True)
            if tail is None:
                return None
            for sep in (" ", ""):
                rec = ftrace.parse_record(text + sep + tail)
                if rec is not None and rec[4]:
                    return rec, last + extra
            text = text + " " + tail
        return None

    # -- output -----------------------------------------------------------------------------

    def _emit(
        self,
        kind: EventKind,
        pid: int | None,
        comm: str | None,
        fields: dict[str, FieldValue],
        first: int,
        last: int,
        time: float | None,
        key: object,
        precise: bool,
    ) -> None:
        self.covered += last - first + 1
        if last > self._last_used:
            self._last_used = last
        if key is not None:
            seen = self._seen.get(key)
            if seen is not None and (precise or seen == self._generation):
                self.duplicates.append((first, last))
                return
            if len(self._seen) >= _SEEN_LIMIT:
                self._seen.clear()
            if kind is _INVOKED:
                self._generation += 1
            self._seen[key] = self._generation
        elif kind is _INVOKED:
            self._generation += 1
        off = self.offset
        self.events.append(
            new_event(kind, first + off, last + off, time, pid, comm, make_fields(fields))
        )


def _improves(old: Parsed, new: Parsed, prefixed: bool) -> bool:
    """Is `new` (the record joined with a continuation) a better reading than `old`?

    An incomplete record takes any continuation that completes it. A complete one only takes
    fields its kind really prints next (so a following "cache:108KB" line is not read as part
    of a kill), or, when its line had a prefix and the next has none, the rest of a comm."""
    if new[0] is not old[0] or new[1] != old[1] or not new[4]:
        return False
    comm_ok = new[2] == old[2] or _fits_comm(new[2])
    if not old[4]:
        return comm_ok
    added = new[3].keys() - old[3].keys()
    if added:
        return comm_ok and added <= CONTINUATION_FIELDS.get(new[0], frozenset())
    old_comm, new_comm = old[2] or "", new[2] or ""
    return (
        prefixed
        and new[3] == old[3]
        and new_comm.startswith(old_comm)
        and new_comm != old_comm
        and comm_ok
    )


def _may_straddle(head: str, tail: str) -> bool:
    """Could a keyword match straddle the join of `head` and `tail` (glued, or with a space)?

    A necessary condition, cheap to test, for `_split_keyword`'s search over the whole joined
    line. A literal keyword straddling the join lies within `_KEYWORD_MAX - 1` characters of
    it, so searching the join's neighbourhood finds it (or an earlier match: still True). A task
    row or header match can be longer, but it holds a single "[", its first character: so it
    starts at the last "[" of `head`, and the rest of `head` consists of its characters."""
    w = _KEYWORD_MAX - 1
    near_head, near_tail = head[-w:], tail[:w]
    if _CANDIDATE.search(near_head + near_tail) or _CANDIDATE.search(f"{near_head} {near_tail}"):
        return True
    bracket = head.rfind("[")
    return bracket >= 0 and _ROW_HEAD.fullmatch(head, bracket) is not None


def _fits_comm(comm: str | None) -> bool:
    """A kernel comm is at most TASK_COMM_LEN - 1 = 15 bytes."""
    return comm is None or len(comm.encode("utf-8", "replace")) <= _COMM_LEN
