"""Complete-state fingerprints, for lockup detection at quiescent time jumps.

A fingerprint covers the model's shared objects (through the snapshot function the model
installs on the machine) and every thread: its scheduling state, its deadline relative to now,
and the code position and local variables of each frame of its coroutine stack. Objects are
named by their stable ``oid`` (creation order), never by ``id()``, so equal states give equal
fingerprints on every run. Local variables that hold absolute times must be ``Deadline``s so
that the same situation one timer period later still compares equal.
"""

from __future__ import annotations

from types import GeneratorType
from typing import Any


class Deadline(int):
    """An absolute jiffies value; fingerprints store it relative to the current time."""


_PLAIN = frozenset({int, bool, str, float, type(None)})


def freeze(value: Any, now: int) -> Any:
    """A hashable, run-independent image of a value found in model state or a frame."""
    kind = type(value)
    if kind in _PLAIN:  # the common case first: most locals are counters, flags and names
        return value
    if kind is Deadline:
        return ("deadline", int(value) - now)
    oid = getattr(value, "oid", None)
    if oid is not None:
        return ("o", oid)
    if kind is tuple or kind is list:
        return tuple([freeze(v, now) for v in value])
    if kind is GeneratorType:
        return None  # the delegated-to coroutine is walked as its own frame
    if isinstance(value, int):
        return int(value)
    if hasattr(value, "__next__"):  # a for loop's iterator: what it walks and how far it got
        try:
            reduced = value.__reduce__()
        except TypeError:
            return kind.__name__
        return ("iter", freeze(reduced[1:], now))
    if isinstance(value, dict):
        return tuple(sorted((str(k), freeze(v, now)) for k, v in value.items()))
    if isinstance(value, (tuple, list)):
        return tuple([freeze(v, now) for v in value])
    return kind.__name__


def coroutine_frames(gen: Any, now: int) -> tuple:
    """(function, instruction offset, locals) of each frame of a suspended coroutine stack.

    A frame's locals come in the order of its code object's variables, so equal frames give
    equal tuples without sorting."""
    frames = []
    while type(gen) is GeneratorType and gen.gi_frame is not None:
        frame = gen.gi_frame
        local = tuple([(k, v if type(v) in _PLAIN else freeze(v, now)) for k, v in frame.f_locals.items()])
        frames.append((frame.f_code.co_qualname, frame.f_lasti, local))
        gen = gen.gi_yieldfrom
    return tuple(frames)


def machine_fingerprint(m: Any) -> tuple:
    """The whole state of machine ``m`` and its model, with time taken relative to now.

    The model's snapshot must be made of plain values and tuples (objects named by ``oid``,
    no absolute times), so it is hashed as it is."""
    now = m.jiffies
    threads = tuple([
        (
            t.state,
            (t.wake_at - now) if t.state == 2 else 0,
            freeze(t.waiting_on, now),
            coroutine_frames(t.gen, now),
        )
        for t in m.threads
    ])
    return (m.snapshot(), threads)
