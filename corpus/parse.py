"""Public entry: parse kernel log / ftrace text or files into events, episodes and a summary."""

from __future__ import annotations

import gc
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .episodes import Episode, group_episodes
from .events import Event, EventKind
from .scan import Scanner

_BINARY_SNIFF = 8192
_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd")  # gzip, bzip2, xz, zstd
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class TraceFileError(Exception):
    """A trace file that cannot be read as text; the message is one line meant for users."""


@dataclass(frozen=True, slots=True)
class SkippedLine:
    """A non-blank source line that produced no event (for `--strict` reports)."""

    line: int
    text: str


@dataclass(frozen=True)
class ParseResult:
    """Everything parsed from one text; `summary()` is the short, JSON-ready view."""

    source: str
    events: tuple[Event, ...]
    episodes: tuple[Episode, ...]
    lines_read: int
    skipped_count: int
    duplicate_count: int
    first_line: int = 1
    _lines: tuple[str, ...] = field(default=(), repr=False, compare=False)
    _duplicate_spans: tuple[tuple[int, int], ...] = field(default=(), repr=False, compare=False)

    @property
    def source_lines(self) -> tuple[str, ...]:
        """The parsed text split into lines (line N is `source_lines[N - first_line]`)."""
        return self._lines

    @property
    def kernel_version(self) -> str | None:
        """The first kernel version the log shows (CPU/Pid header, hung-task line, banner)."""
        for e in self.events:
            if e.kind is EventKind.KERNEL_VERSION:
                return str(e.fields.get("version"))
        return None

    @property
    def skipped(self) -> tuple[SkippedLine, ...]:
        """Every non-blank line that gave no event and was no duplicate, with its number.

        Built on demand: large logs are mostly skipped lines, and the scan keeps none of them."""
        covered: set[int] = set()
        for e in self.events:
            covered.update(range(e.line - self.first_line, e.end_line - self.first_line + 1))
        for first, last in self._duplicate_spans:
            covered.update(range(first, last + 1))
        return tuple(
            SkippedLine(i + self.first_line, text)
            for i, text in enumerate(self._lines)
            if i not in covered and text.strip()
        )

    def summary(self) -> dict[str, object]:
        """Counts and lists a person (or a golden file) checks against the log by hand."""
        kinds = Counter(e.kind.value for e in self.events)
        return {
            "source": self.source,
            "lines_read": self.lines_read,
            "episodes": len(self.episodes),
            "kills": [
                {"pid": e.pid, "comm": e.comm} for e in self.events if e.kind is EventKind.KILLED
            ],
            "reaped": kinds.get(EventKind.REAPED.value, 0),
            "unable_to_reap": kinds.get(EventKind.UNABLE_TO_REAP.value, 0),
            "tracepoints": [
                {"event": e.kind.value, "pid": e.pid} for e in self.events if e.kind.is_tracepoint
            ],
            "skipped_lines": self.skipped_count,
            "duplicate_lines": self.duplicate_count,
            "kernel_version": self.kernel_version,
            "event_counts": dict(sorted(kinds.items())),
        }

    def to_json(self) -> dict[str, object]:
        """Summary, events and episodes as plain data (the golden-file format)."""
        return {
            "summary": self.summary(),
            "events": [e.to_json() for e in self.events],
            "episodes": [ep.to_json() for ep in self.episodes],
        }


def parse_text(text: str, *, source: str = "<text>", first_line: int = 1) -> ParseResult:
    """Parse any text; never raises. `first_line` numbers the first line (default 1)."""
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8", errors="replace") if _is_bytes(text) else str(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if "\xa0" in text:  # pasted from a web page: no-break spaces where the log had spaces
        text = text.replace("\xa0", " ")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    # The scan allocates one small object graph per event and no cycles; pausing the cyclic
    # collector keeps it from re-walking hundreds of thousands of live events (25% of the
    # time on a 100 MB log). It is restored even if something below were to fail.
    collecting = gc.isenabled()
    gc.disable()
    try:
        scanner = Scanner(text, lines, first_line)
        scanner.run()
        events = tuple(scanner.events)
        episodes = group_episodes(events)
    finally:
        if collecting:
            gc.enable()
    return ParseResult(
        source=source,
        events=events,
        episodes=episodes,
        lines_read=len(lines),
        skipped_count=scanner.nonblank - scanner.covered,
        duplicate_count=sum(last - first + 1 for first, last in scanner.duplicates),
        first_line=first_line,
        _lines=tuple(lines),
        _duplicate_spans=tuple(scanner.duplicates),
    )


def parse_file(path: str | os.PathLike[str]) -> ParseResult:
    """Parse a log file; raises TraceFileError (one-line message) if it cannot be read as text."""
    return parse_text(read_trace_file(path), source=str(path))


def parse_bytes(data: bytes, *, source: str) -> ParseResult:
    """Parse a log's raw bytes (stdin, an upload) as `parse_file` parses a file's.

    Raises TraceFileError, naming `source`, for compressed or binary data."""
    return parse_text(_trace_text(data, source), source=source)


def decode_trace_bytes(data: bytes) -> str:
    """A log's bytes as text: UTF-8 with U+FFFD for invalid bytes (UTF-16 when a UTF-16 byte
    order mark says so), without the byte order mark, CRLF line ends made LF. Never raises.

    A BOM kept would glue itself to the first line's log prefix, and a "\r" to every line's
    end. Whether the bytes are a text log at all is `parse_bytes`' question, not this one's."""
    if data.startswith(_UTF16_BOMS):
        text = data.decode("utf-16", errors="replace")  # saved by a Windows editor
    else:
        text = data.decode("utf-8-sig", errors="replace")
    return text.replace("\r\n", "\n") if "\r" in text else text


def read_trace_file(path: str | os.PathLike[str]) -> str:
    """The text of a trace file, decoded leniently; TraceFileError for anything that is not."""
    p = Path(path)
    try:
        if p.exists() and not p.is_dir() and not stat.S_ISREG(p.stat().st_mode):
            raise TraceFileError(f"{p}: not a regular file (device, pipe or socket)")
        data = p.read_bytes()
    except FileNotFoundError:
        raise TraceFileError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise TraceFileError(f"{p}: is a directory, not a trace file") from None
    except PermissionError:
        raise TraceFileError(f"{p}: permission denied") from None
    except OSError as exc:
        raise TraceFileError(f"{p}: cannot read ({exc.strerror or exc})") from None
    return _trace_text(data, str(p))


def _trace_text(data: bytes, name: str) -> str:
    """`decode_trace_bytes(data)`, or TraceFileError for data that is no text log."""
    if data.startswith(_COMPRESSED):
        raise TraceFileError(f"{name}: compressed data; decompress it first")
    if not data.startswith(_UTF16_BOMS) and b"\x00" in data[:_BINARY_SNIFF]:
        raise TraceFileError(f"{name}: binary data, not a text log")
    return decode_trace_bytes(data)


def _is_bytes(value: object) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview))
