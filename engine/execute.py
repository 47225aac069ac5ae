"""One execution of a variant under a strategy, classified into a finding or a clean run.

This is the engine's front door: ``execute`` builds the machine and the kernel, draws the
scenario, boots it, runs it, and turns the outcome into at most one ``Finding`` — a safety
violation raised during the run, a liveness violation named by classifying a run that stopped
making progress, or an end-of-run leak. Runs that fail in our own code (an exception in the
model, a runaway) are ``engine_error`` and never findings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import invariants as inv
from .kernel import Kernel
from .runtime.choices import format_input
from .runtime.machine import Machine, Outcome, RunResult, Violation
from .runtime.strategies import Replay
from .scenario import Scenario, draw_scenario
from .workload import boot

MAX_STEPS = 4_000  # executions take 50-300 steps; past this the run is inconclusive
GENERIC_STALLS = ("oom_lockup", "oom_deadlock")  # unnamed stalls: who waits on what tells them apart


@dataclass
class Finding:
    """An invariant violation, with what is needed to name, dedup and replay it."""

    invariant: str
    title: str
    detail: str
    roles: tuple[str, ...]
    where: str  # the model function that detected it
    known_bug: str | None
    signature: str


@dataclass
class Execution:
    """The result of one execution."""

    variant: str
    scenario: Scenario
    run: RunResult
    finding: Finding | None
    input: bytes  # canonical: replays this exact execution
    kernel: Any = field(repr=False, default=None)

    @property
    def status(self) -> str:
        """ok, finding, engine_error (our bug), or inconclusive (step limit: no verdict)."""
        if self.run.outcome == Outcome.ERROR:
            return "engine_error"
        if self.run.outcome == Outcome.STEP_LIMIT:
            return "inconclusive"
        return "finding" if self.finding is not None else "ok"

    @property
    def preemptions(self) -> int:
        return self.run.preemptions

    @property
    def steps(self) -> int:
        return self.run.steps


def _where(violation: Violation) -> str:
    """The innermost model function on the violation's traceback (not the check itself)."""
    tb = violation.__traceback__
    where = ""
    while tb is not None:
        code = tb.tb_frame.f_code
        module = tb.tb_frame.f_globals.get("__name__", "")
        if ".linux." in module or ".variants." in module or module.startswith("oomfuzz_user_variant"):
            where = code.co_name
        tb = tb.tb_next
    return where


def _role_class(role: str) -> str:
    """Roles of one kind compare equal: allocator2 is an allocator, a sibling is a victim thread."""
    role = re.sub(r"\d+$", "", role)
    return "victim" if role == "sibling" else role


def signature_of(violation: Violation, where: str, k: Kernel, outcome: Outcome) -> str:
    """Dedup key: the invariant, where it was detected, and for stalls who waits on what.

    Nothing about the variant, pids, counts or the raw input: the same race on three variants
    is one signature. For a stall, only the threads the violation names count (threads idling
    until the scenario ends are not part of any bug).
    """
    parts = [violation.invariant, where or "-"]
    if outcome in (Outcome.LOCKUP, Outcome.QUIESCENT) and violation.invariant in GENERIC_STALLS:
        by_role = {t.role: t for t in k.m.threads}
        stuck = set()
        for role in violation.roles:
            t = by_role.get(role)
            if t is not None and t.state in (1, 2) and t.waiting_on is not k.scenario_wait:
                stuck.add(_waiting_name(t.waiting_on))  # what blocks, not which bystander
        parts.append(",".join(sorted(stuck)))
    return "|".join(parts)


def _waiting_name(obj: Any) -> str:
    """A wait object's name without the instance: victim_mm.mmap_sem -> mmap_sem."""
    name = str(getattr(obj, "name", obj))
    name = re.sub(r"\(([a-z_]+?)\d*\)", r"(\1)", name)
    return name.rsplit(".", 1)[-1]


def classify(k: Kernel, run: RunResult) -> tuple[Violation | None, str]:
    """The violation an execution ended with, and where it was detected."""
    if run.outcome == Outcome.VIOLATION and run.violation is not None:
        return run.violation, _where(run.violation)
    if run.outcome in (Outcome.LOCKUP, Outcome.QUIESCENT):
        violation = inv.classify_stall(k, run.outcome)
        return violation, "stall"
    if run.outcome == Outcome.OK:
        busy = [t for t in k.m.threads if t.daemon and t.state in (1, 2) and t.waiting_on not in k.idle_waits()]
        if busy:  # a kernel thread is stuck mid-work: the run did not really finish
            return inv.classify_stall(k, Outcome.QUIESCENT), "stall"
        return inv.check_end(k), "end"
    return None, ""


def known_bug_of(variant: type[Kernel], invariant: str) -> str | None:
    for bug, invariants in variant.KNOWN_BUGS.items():
        if invariant in invariants:
            return bug
    return None


def execute(variant: type[Kernel], strategy: Any, *, tracing: bool = False, scenario: Scenario | None = None) -> Execution:
    """Run one execution of ``variant`` under ``strategy``."""
    m = Machine(strategy, max_steps=MAX_STEPS, tracing=tracing)
    k = variant(m)
    if scenario is not None:  # fixed: nothing drawn, so a search does not branch on it
        m.data[:] = scenario.choices()
        drawn = scenario
    else:
        drawn = draw_scenario(m.choose)
    boot(k, drawn)
    run = m.run()
    violation, where = classify(k, run)
    finding = None
    if violation is not None:
        finding = Finding(
            invariant=violation.invariant,
            title=inv.TITLES.get(violation.invariant, violation.invariant),
            detail=violation.detail,
            roles=violation.roles,
            where=where,
            known_bug=known_bug_of(variant, violation.invariant),
            signature=signature_of(violation, where, k, run.outcome),
        )
    return Execution(variant.NAME, drawn, run, finding, run.recording.to_bytes(), kernel=k)


def replay(variant: type[Kernel], raw: bytes, *, tracing: bool = False) -> Execution:
    """Replay one input (bytes in the format of ``runtime.choices``)."""
    return execute(variant, Replay(raw), tracing=tracing)


def replay_command(variant_name: str, raw: bytes) -> str:
    return f"oomfuzz replay --variant {variant_name} {format_input(raw)}"
