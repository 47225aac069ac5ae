"""The input format: one byte string decoded into every choice an execution makes, and back.

Design
======

An execution of the model makes two kinds of decisions, both drawn from one input:

* **data choices** (``choose(n)``): the scenario's shape (how many processes, who shares which
  mm, which thread mmaps, ...) and the few run-time choices that are not about scheduling;
* **scheduling decisions**, taken at every *decision point*: a scheduling point where more than
  one thing could run next. Index 0 is always the *default* (the current thread runs on; when it
  blocks, the longest-waiting runnable thread); any other index is a *preemption* in the wide
  sense used throughout oomfuzz (a deviation from the default schedule).

Most decisions are defaults, so the input stores only the deviations, sparsely::

    byte 0           L: how many data-choice bytes follow
    bytes 1..L       data choices, one byte each, in the order they are drawn (value = byte % n)
    rest             preemption pairs (gap, target):
                       gap    = decision points to let pass with the default before this one
                                (a byte of 255 adds 255 and reads another gap byte)
                       target = which alternative to take (alternative = 1 + target % n_alt)

Decoding is total: any byte string is a valid input. Missing data bytes read as 0 (the
simplest scenario), missing pairs mean "default from here on", a pair that points past the end
of the run is never used. So a shorter input never has more preemptions, and removing a pair
removes exactly one preemption: shrinking the input shrinks the schedule.

``Recording`` is the inverse: the runtime records every non-default decision and every data
choice of a run, and ``Recording.to_bytes()`` produces the canonical input that replays it.
Replaying an input and re-encoding its recording gives the canonical form (unused bytes
dropped), which is what findings store.

The priority form
-----------------

Some races need one thread held back for a long stretch while others run many steps (BZ-04:
the reaper must not clear its slot until a whole second OOM kill has come and gone). As
deviations that is dozens of pairs; as PCT's thread priorities it is one low number. So an
input whose byte 0 has its top bit set is a *priority schedule* instead::

    byte 0           0x80 | L: L (at most 127) data-choice bytes follow, as above
    bytes 1..L       data choices
    next byte        c: how many priority change points (c % 4)
    2c bytes         the change points: decision indices, little-endian 16 bits each
    next byte        the timer's priority
    rest             the priority of thread 0, 1, 2, ... (missing bytes read as 0)

and it is run by ``strategies.PrioritySchedule``: PCT with its random draws spelt out. This
form is the fuzzer's compact way to write long-held schedules; it is total like the other
(any bytes decode), but never canonical: every execution records its deviations, so findings,
replay commands and shrinking all use the deviation form. Canonical inputs have fewer than 128
data choices, so their byte 0 never has the top bit set.
"""

from __future__ import annotations

from dataclasses import dataclass

FORMAT_VERSION = 1
MAX_DATA_CHOICES = 127  # byte 0's top bit marks the priority form
PRIORITY_FORM = 0x80
MAX_CHANGE_POINTS = 3
GAP_CONTINUE = 255


class ChoiceInput:
    """A cursor over an input's data bytes and preemption pairs."""

    __slots__ = ("_data", "_dpos", "_pairs", "_ppos", "next_at", "_target")

    def __init__(self, raw: bytes) -> None:
        raw = bytes(raw)
        length = raw[0] if raw else 0
        self._data = raw[1 : 1 + length]
        self._dpos = 0
        self._pairs = raw[1 + length :]
        self._ppos = 0
        self.next_at = -1
        self._target = 0
        self._load_pair(-1)

    def _load_pair(self, previous: int) -> None:
        """Position the next preemption after decision point ``previous`` (or never)."""
        pairs, pos = self._pairs, self._ppos
        gap = 0
        while pos < len(pairs) and pairs[pos] == GAP_CONTINUE:
            gap += GAP_CONTINUE
            pos += 1
        if pos + 1 >= len(pairs):
            self.next_at = -1
            self._ppos = len(pairs)
            return
        gap += pairs[pos]
        self._target = pairs[pos + 1]
        self._ppos = pos + 2
        self.next_at = previous + 1 + gap

    def choose(self, n: int) -> int:
        """Next data choice in [0, n); 0 once the data bytes run out."""
        if self._dpos >= len(self._data):
            return 0
        value = self._data[self._dpos]
        self._dpos += 1
        return value % n if n > 1 else 0

    def pick(self, decision: int, n_alt: int) -> int:
        """The choice at decision point ``decision`` with ``n_alt`` alternatives (0 = default)."""
        if decision != self.next_at:
            return 0
        choice = 1 + self._target % n_alt
        self._load_pair(decision)
        return choice


@dataclass
class Recording:
    """What one execution decided: data choices and its non-default scheduling decisions."""

    data: list[int]
    picks: list[tuple[int, int]]  # (decision point index, choice >= 1)

    @property
    def preemptions(self) -> int:
        return len(self.picks)

    def to_bytes(self) -> bytes:
        """The canonical input that replays this recording exactly."""
        if len(self.data) > MAX_DATA_CHOICES:
            raise ValueError(f"{len(self.data)} data choices exceed the format's {MAX_DATA_CHOICES}")
        out = bytearray([len(self.data)])
        out.extend(self.data)
        previous = -1
        for decision, choice in self.picks:
            gap = decision - previous - 1
            while gap >= GAP_CONTINUE:
                out.append(GAP_CONTINUE)
                gap -= GAP_CONTINUE
            out.append(gap)
            out.append(choice - 1)
            previous = decision
        return bytes(out)


def split_input(raw: bytes) -> tuple[bytes, list[tuple[int, int]]]:
    """Structure of an input for mutators and shrinkers: data bytes and (gap, target) pairs.

    Gaps longer than one byte are returned summed; ``join_input`` re-encodes them.
    """
    raw = bytes(raw)
    length = raw[0] if raw else 0
    data = raw[1 : 1 + length]
    rest = raw[1 + length :]
    pairs: list[tuple[int, int]] = []
    pos, gap = 0, 0
    while pos < len(rest):
        if rest[pos] == GAP_CONTINUE:
            gap += GAP_CONTINUE
            pos += 1
            continue
        if pos + 1 >= len(rest):
            break
        pairs.append((gap + rest[pos], rest[pos + 1]))
        gap = 0
        pos += 2
    return data, pairs


def join_input(data: bytes, pairs: list[tuple[int, int]]) -> bytes:
    """Inverse of ``split_input``: data bytes (at most 127) and (gap, target) pairs to an input."""
    data = bytes(data[:MAX_DATA_CHOICES])
    out = bytearray([len(data)])
    out.extend(data)
    for gap, target in pairs:
        gap = max(0, gap)
        while gap >= GAP_CONTINUE:
            out.append(GAP_CONTINUE)
            gap -= GAP_CONTINUE
        out.append(gap)
        out.append(target & 0xFF)
    return bytes(out)


def is_priority_form(raw: bytes) -> bool:
    """Is ``raw`` a priority schedule (byte 0's top bit set) rather than deviations?"""
    return bool(raw) and raw[0] >= PRIORITY_FORM


@dataclass
class PriorityInput:
    """A decoded priority schedule: data choices, change points, timer and thread priorities."""

    data: bytes
    change_points: list[int]
    timer: int
    threads: bytes

    @classmethod
    def decode(cls, raw: bytes) -> "PriorityInput":
        """Total: any bytes give a schedule (missing fields read as 0, extra bytes are priorities)."""
        raw = bytes(raw)
        length = raw[0] & ~PRIORITY_FORM if raw else 0
        data = raw[1 : 1 + length]
        rest = raw[1 + length :]
        count = rest[0] % (MAX_CHANGE_POINTS + 1) if rest else 0
        points = [
            int.from_bytes(rest[1 + 2 * i : 3 + 2 * i], "little") for i in range(count) if 3 + 2 * i <= len(rest)
        ]
        tail = rest[1 + 2 * count :]
        return cls(data, points, tail[0] if tail else 0, tail[1:])

    def to_bytes(self) -> bytes:
        data = bytes(self.data[:MAX_DATA_CHOICES])
        points = self.change_points[:MAX_CHANGE_POINTS]
        out = bytearray([PRIORITY_FORM | len(data)])
        out += data
        out.append(len(points))
        for point in points:
            out += (point & 0xFFFF).to_bytes(2, "little")
        out.append(self.timer & 0xFF)
        out += self.threads
        return bytes(out)


def input_data(raw: bytes) -> bytes:
    """The data-choice bytes of an input in either form."""
    return PriorityInput.decode(raw).data if is_priority_form(raw) else split_input(raw)[0]


def with_data(raw: bytes, data: bytes) -> bytes:
    """``raw`` with its data-choice bytes replaced, its schedule kept (either form)."""
    if is_priority_form(raw):
        schedule = PriorityInput.decode(raw)
        schedule.data = bytes(data)
        return schedule.to_bytes()
    return join_input(data, split_input(raw)[1])


def parse_input_text(text: str) -> bytes:
    """Decode the textual form of an input printed in replay commands: ``hex:<hex digits>``."""
    text = text.strip()
    if text.startswith("hex:"):
        text = text[4:]
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise ValueError(f"not a hex input: {exc}") from None


def format_input(raw: bytes) -> str:
    """The textual form of an input, as used in replay commands."""
    return "hex:" + bytes(raw).hex()
