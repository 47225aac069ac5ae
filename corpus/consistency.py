"""Self-consistency properties of parse results, checked by the fuzz target and the tests.

- parsing is deterministic (the same text gives the same events, episodes and summary);
- every event's lines lie within the input and are ordered, events are in line order;
- the summary's counts agree with the event list, and skipped + covered lines add up;
- no event belongs to two episodes; re-parsing one episode's lines alone keeps its kills;
- appending unrelated (prefixed, keyword-free) lines does not change the kills.
"""

from __future__ import annotations

from .events import EventKind
from .parse import ParseResult, parse_text

_JUNK = (
    "[ 9999.000001] usb 1-1: new high-speed USB device number 2 using xhci_hcd",
    "Mar  3 10:00:00 host systemd[1]: Started Session 42 of User admin.",
    "[ 9999.000002] audit: type=1400 audit(1234567890.123:456): apparmor=\"DENIED\"",
)


def _kills(result: ParseResult) -> list[tuple[int | None, str | None]]:
    return [(e.pid, e.comm) for e in result.events if e.kind is EventKind.KILLED]


def check_consistency(text: str) -> None:
    """Assert every property in the module docstring for `text`."""
    first = parse_text(text)
    again = parse_text(text)
    assert first.to_json() == again.to_json(), "parse is not deterministic"
    _check_lines(first)
    _check_summary(first)
    _check_episodes(first)
    base = text if text.endswith("\n") else text + "\n"
    plain = parse_text(base)
    with_junk = parse_text(base + "\n".join(_JUNK) + "\n")
    assert _kills(with_junk) == _kills(plain), "appending unrelated lines changed the kills"


def _check_lines(result: ParseResult) -> None:
    last_line = 0
    for e in result.events:
        assert 1 <= e.line <= e.end_line <= result.lines_read, f"event outside input: {e}"
        assert e.line >= last_line, "events out of line order"
        last_line = e.line


def _check_summary(result: ParseResult) -> None:
    summary = result.summary()
    kinds = [e.kind for e in result.events]
    assert len(summary["kills"]) == kinds.count(EventKind.KILLED)
    assert summary["reaped"] == kinds.count(EventKind.REAPED)
    assert summary["unable_to_reap"] == kinds.count(EventKind.UNABLE_TO_REAP)
    assert len(summary["tracepoints"]) == sum(k.is_tracepoint for k in kinds)
    assert summary["episodes"] == len(result.episodes)
    assert result.skipped_count == len(result.skipped) >= 0, "skipped count disagrees"
    assert sum(summary["event_counts"].values()) == len(result.events)


def _check_episodes(result: ParseResult) -> None:
    lines = result.source_lines
    seen: set[int] = set()
    for ep in result.episodes:
        for e in ep.events:
            assert id(e) not in seen, "an event belongs to two episodes"
            seen.add(id(e))
        own = [(e.pid, e.comm) for e in ep.events if e.kind is EventKind.KILLED]
        if not own:
            continue
        chunk = "\n".join(lines[ep.first_line - 1 : ep.last_line])
        alone = _kills(parse_text(chunk, first_line=ep.first_line))
        missing = [k for k in own if k not in alone]
        assert not missing, f"episode {ep.index} re-parsed alone lost kills {missing}"
