"""Interleaving coverage: what one execution's schedule did, as a set of hashed features.

Design
======

Line coverage of the kernel model (Atheris instruments ``engine.linux`` and
``engine.variants``) tells libFuzzer which model code ran, but not in which order the threads
ran it: the same lines run in every interleaving of BZ-03, and only the order is the bug. So
each execution is also summarised by features that name thread interactions, threads by role
class (``allocator2`` is an allocator, a sibling is a victim thread), never by pid:

* ``switch``: thread A at site a was followed by thread B at site b (a context switch,
  whether a preemption or a block); the pair is the interleaving's basic edge;
* ``handover``: a shared object (a lock, an atomic, an mm's mmap_sem, a queue slot) was last
  touched by role A and is now touched by role B, with both operations: lock hand-overs and
  "which write did this read see", at the granularity of objects;
* ``end``: where each role stopped (its last site), the abstract state a stall is made of;
* ``outcome``: the scenario (its dimension values) crossed with how the run ended (outcome,
  invariant, preemptions capped at 4): the abstract kernel states reached.

A feature is a Python hash of a tuple of short strings, so the vocabulary is open (a new
variant's sites need no table) and cheap (one tuple per step). ``CounterMap`` folds features
into a fixed number of counters that Atheris reserved for us; libFuzzer then treats a new
(counter, hit-count bucket) like new edge coverage. Features are presence-only per
execution (a set), so a loop that spins 40 times does not look new at 41. Hashes of strings
depend on PYTHONHASHSEED: the worker fixes it, so counters are stable within a campaign.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

NUM_COUNTERS = 8192
_OBJECT_SITE = re.compile(r"^([A-Za-z_]+)\((.*)\)$")
_ROLE_DIGITS = re.compile(r"\d+$")


def role_class(role: str) -> str:
    """Roles of one kind compare equal: allocator2 is an allocator, a sibling a victim thread."""
    role = _ROLE_DIGITS.sub("", role)
    return "victim" if role == "sibling" else role


_SITES: dict[Any, tuple[str, tuple[str, str] | None]] = {}  # site -> (its text, (op, object) or None)


def _parse_site(site: Any) -> tuple[str, tuple[str, str] | None]:
    """("lock(oom_lock)", ("lock", "oom_lock")); sites come from a small vocabulary, so cached."""
    parsed = _SITES.get(site)
    if parsed is None:
        text = site if isinstance(site, str) else str(site)
        match = _OBJECT_SITE.match(text)
        parsed = _SITES[site] = (text, (match.group(1), match.group(2)) if match else None)
    return parsed


def interleaving_features(ex: Any) -> set[int]:
    """The features of one execution (an ``engine.execute.Execution``)."""
    roles = [role_class(t.role) for t in ex.kernel.m.threads]
    feats: set[int] = set()
    add = feats.add
    last_toucher: dict[str, tuple[str, str]] = {}  # object -> (role, op) of the last access
    last_site: dict[str, str] = {}
    prev_role, prev_site = None, None
    parse = _parse_site
    for tid, raw_site in ex.run.sites:
        role = roles[tid]
        site, obj = parse(raw_site)
        if role != prev_role and prev_role is not None:
            add(hash(("switch", prev_role, prev_site, role, site)))
        if obj is not None:
            op, name = obj
            before = last_toucher.get(name)
            if before is not None and before[0] != role:
                add(hash(("handover", name, before[0], before[1], role, op)))
            last_toucher[name] = (role, op)
        last_site[role] = site
        prev_role, prev_site = role, site
    for role, site in last_site.items():
        add(hash(("end", role, site)))
    finding = ex.finding.invariant if ex.finding is not None else None
    add(hash(("outcome", tuple(ex.scenario.choices()), ex.run.outcome.name, finding, min(ex.preemptions, 4))))
    return feats


class CounterMap:
    """Features folded into reserved libFuzzer counters (or a no-op for the baselines)."""

    def __init__(self, counters: list[int], trace: Callable[[int], None] | None) -> None:
        self.counters = counters
        self.trace = trace

    @classmethod
    def reserve(cls, n: int = NUM_COUNTERS) -> "CounterMap":
        """Reserve ``n`` counters from Atheris (call before ``atheris.Fuzz``)."""
        import atheris

        return cls([atheris._reserve_counter() for _ in range(n)], atheris._trace_branch)

    @classmethod
    def disabled(cls) -> "CounterMap":
        return cls([], None)

    def feed(self, features: Iterable[int]) -> None:
        """Mark each feature's counter as hit in the current libFuzzer input."""
        trace, counters = self.trace, self.counters
        if trace is None:
            return
        n = len(counters)
        for feature in features:
            trace(counters[feature % n])
