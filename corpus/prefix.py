"""Log-line prefixes (printk stamps, dmesg -T, syslog, journalctl, /dev/kmsg) and their clocks.

A kernel message reaches people wrapped in layers, outermost first: mail quote markers `> `
(logs travel in LKML replies), a syslog priority `<4>`, a
`/dev/kmsg` record header `6,1234,5678901,-;`, `dmesg -x` facility/level `kern  :err   : `, a
wall clock with a `host kernel:` tag (BSD syslog `Mar  3 10:00:00`, journalctl short and
short-precise, RFC 3339 / short-iso), a printk stamp (`[  123.456789]` since boot, or
`dmesg -T`'s `[Tue Mar  3 10:00:00 2020]`), and a printk caller id `[ T123]`. Any subset may be
present. One anchored regex strips them all at once; its groups give the clock.

The clock chosen is the most precise one: the printk/kmsg stamp (seconds since boot) if present,
else the wall clock (seconds since the Unix epoch, or since 1 January when the stamp has no year,
as BSD syslog and journalctl short stamps do). `precise` says whether the stamp has sub-second
resolution: only then can two identical lines be told to be one record pasted twice no matter
how far apart they are.
"""

from __future__ import annotations

import calendar
import functools
import re

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NO = {name: i + 1 for i, name in enumerate(_MONTHS)}
# Days before each month in a leap year, so Feb 29 of a year-less stamp still has a place.
_LEAP_DAYS_BEFORE = (0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335)
_MON = "(?:" + "|".join(_MONTHS) + ")"
_WDAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_TAG = r"(?:\S+\ )?kernel(?:\[\d+\])?:\ ?"

_PREFIX = re.compile(
    rf"""
    (?:<\d{{1,3}}>)?
    (?:\d+,\d+,(?P<kmsg>\d{{1,18}}),[^;\s]*;)?
    (?:[a-z]+\ *:[a-z]+\ *:\ )?
    (?:
        (?P<mon>{_MON})\ {{1,2}}(?P<day>\d{{1,2}})\ (?P<hms>\d\d:\d\d:\d\d)(?P<frac>\.\d{{1,9}})?
        \ {_TAG}
      | (?P<date>\d{{4}}-\d\d-\d\d)[T\ ](?P<ihms>\d\d:\d\d:\d\d)(?P<ifrac>[.,]\d{{1,9}})?
        (?P<tz>Z|[+-]\d\d:?\d\d)?\ (?:{_TAG})?
    )?
    (?:<\d{{1,3}}>)?
    (?:
        \[\ *(?P<mono>\d{{1,12}}\.\d{{1,12}})\]\ ?(?:\S+\ kernel:\ )?
      | \[(?P<ctime>{_WDAY}\ {_MON}\ {{1,2}}\d{{1,2}}\ \d\d:\d\d:\d\d\ \d{{4}})\]\ ?
    )?
    (?:\[\ *[TC]\d+\]\ ?)?
    """,
    re.VERBOSE,
)

# Cheap test used on the line after a record to decide whether it can be a wrapped tail:
# anything that starts like a prefix is a record of its own.
_LOOKS_PREFIXED = re.compile(rf"<\d|\[|\d+,\d+,\d+,|{_MON} [ \d]\d |\d{{4}}-\d\d-\d\d[T ]")

Prefix = tuple[int, float | None, bool]
"""(offset where the message starts, time in seconds or None, stamp has sub-second precision)."""

_NO_PREFIX: Prefix = (0, None, False)
_RAW_STAMP = re.compile(r"\[ *(\d{1,12}\.\d{1,12})\] ?")
_CALLER_AFTER = re.compile(r"\[ *[TC]\d+\] ?")
_CALLER = re.compile(r"\[ *[TC]\d+\]")
_SYSLOG_TAG = re.compile(r" kernel(?:\[\d+\])?: ?")
_MONTH_INITIALS = frozenset(name[0] for name in _MONTHS)
_FACILITY = re.compile(r"[a-z]+ *:[a-z]+ *: ")
_QUOTE = re.compile(r"(?:>[ \t]?)+")


def strip_prefix(line: str) -> Prefix:
    """Find where the kernel message starts in `line` and what time its stamp says.

    The common shapes (raw printk stamp, BSD syslog / journalctl) take short paths that avoid
    the full regex and memoise the wall-clock arithmetic per distinct stamp; everything else,
    and anything the short paths are unsure of, goes through the one full regex."""
    c = line[:1]
    if c == ">":  # quoted in a mail reply: "> [  12.3] …", "> > …"
        quote = strip_quote(line)
        start, time, precise = strip_prefix(line[quote:])
        return quote + start, time, precise
    if c == "[":
        stamped = _raw_stamp(line, 0)
        if stamped is not None:
            return stamped
        second = line[1:2]
        if second.isalpha() or (second == " " and _CALLER.match(line)):
            return _full(line)  # dmesg -T, or a caller id without a time stamp
        return _NO_PREFIX  # a bare task-table row or other bracketed message
    if c in _MONTH_INITIALS and line[3:4] == " ":
        return _syslog(line)
    if c == "<" or c.isdigit() or (c.islower() and _FACILITY.match(line)):
        return _full(line)
    return _NO_PREFIX


def _syslog(line: str) -> Prefix:
    tag = _SYSLOG_TAG.search(line, 15, 120)
    if tag is None:
        return _NO_PREFIX
    end = tag.end()
    time, precise = _syslog_stamp(line[: tag.start()])
    if time is None:
        return _NO_PREFIX
    if line[end : end + 1] == "[":
        stamped = _raw_stamp(line, end)  # a printk stamp inside the record is the better clock
        if stamped is not None:
            return stamped
    return end, time, precise


def _raw_stamp(line: str, pos: int) -> Prefix | None:
    """`[  123.456789] `, then maybe a caller id `[ T123]` or a short-monotonic `host kernel: `."""
    m = _RAW_STAMP.match(line, pos)
    if m is None:
        return None
    end = m.end()
    c = line[end : end + 1]
    if c == "[":
        caller = _CALLER_AFTER.match(line, end)
        if caller is not None:
            end = caller.end()
    elif c and c != " ":
        tag = line.find(" kernel: ", end, end + 80)
        if tag > end and " " not in line[end:tag]:
            end = tag + 9
    return end, float(m.group(1)), True


@functools.lru_cache(maxsize=4096)
def _syslog_stamp(head: str) -> tuple[float | None, bool]:
    """Time of `Mon DD HH:MM:SS[.frac] host` (memoised: a report shares a handful of stamps)."""
    m = _PREFIX.match(head + " kernel: ")
    if m is None or m.group("mon") is None:
        return None, False
    return _syslog_time(m)


def _full(line: str) -> Prefix:
    m = _PREFIX.match(line)
    end = m.end()
    if end == 0:
        return _NO_PREFIX
    mono = m.group("mono")
    if mono is not None:
        return end, float(mono), True
    kmsg = m.group("kmsg")
    if kmsg is not None:
        return end, int(kmsg) / 1e6, True
    if m.group("mon") is not None:
        return end, *_syslog_time(m)
    if m.group("date") is not None:
        return end, *_iso_time(m)
    ctime = m.group("ctime")
    if ctime is not None:
        return end, _ctime_time(ctime), False
    return end, None, False


def strip_quote(line: str) -> int:
    """Length of the mail quote markers (`> `, `>> `, `> > `) that start `line`, or 0."""
    m = _QUOTE.match(line)
    return m.end() if m else 0


def looks_prefixed(line: str) -> bool:
    """True when `line` starts like a log prefix (so it is a record, not a wrapped tail)."""
    return _LOOKS_PREFIXED.match(line) is not None


def _hms_seconds(hms: str) -> int:
    return int(hms[0:2]) * 3600 + int(hms[3:5]) * 60 + int(hms[6:8])


def _syslog_time(m: re.Match[str]) -> tuple[float | None, bool]:
    day = int(m.group("day"))
    days = _LEAP_DAYS_BEFORE[_MONTH_NO[m.group("mon")] - 1] + day - 1
    seconds = float(days * 86400 + _hms_seconds(m.group("hms")))
    frac = m.group("frac")
    if frac is not None:
        return seconds + float(frac), True
    return seconds, False


def _iso_time(m: re.Match[str]) -> tuple[float | None, bool]:
    date = m.group("date")
    try:
        base = calendar.timegm(
            (int(date[0:4]), int(date[5:7]), int(date[8:10]), 0, 0, 0, 0, 0, 0)
        )
    except (ValueError, OverflowError):
        return None, False
    seconds = float(base + _hms_seconds(m.group("ihms")) - _tz_offset(m.group("tz")))
    frac = m.group("ifrac")
    if frac is not None:
        return seconds + float("0." + frac[1:]), True
    return seconds, False


def _tz_offset(tz: str | None) -> int:
    if not tz or tz == "Z":
        return 0
    digits = tz[1:].replace(":", "")
    offset = int(digits[0:2]) * 3600 + int(digits[2:4]) * 60
    return -offset if tz[0] == "-" else offset


@functools.lru_cache(maxsize=4096)
def _ctime_time(ctime: str) -> float | None:
    parts = ctime.split()
    try:
        base = calendar.timegm((int(parts[4]), _MONTH_NO[parts[1]], 1, 0, 0, 0, 0, 0, 0))
    except (ValueError, OverflowError, KeyError, IndexError):
        return None
    return float(base + (int(parts[2]) - 1) * 86400 + _hms_seconds(parts[3]))
