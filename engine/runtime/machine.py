"""The machine: runs kernel threads as coroutines, one scheduling decision at a time.

Design
======

A kernel thread is a Python generator. It runs until its next ``yield``, which is a *scheduling
point*: a place where the real kernel could block, sleep, take or drop a lock, or touch state
another thread races on. Primitives (``primitives.py``) do the yielding; model code only ever
writes ``yield from <primitive>(...)``, so every scheduling point is greppable.

Between two yields a thread's code is atomic. After every yield the machine asks its strategy
what runs next, but only when there is a real choice (a *decision point*): the candidates are the
current thread (if still runnable), the run queue in FIFO order, and "fire the earliest timer
now". Choice 0 is always the default: the current thread runs on, or, when it blocked, the
thread at the head of the run queue. A preempted thread goes to the tail of the run queue, as
in the kernel's scheduler.

Time is virtual (``jiffies``). A sleeping thread wakes when the strategy fires its timer early,
or, by default, when nothing else can run: then the clock jumps to the earliest deadline, like
Trio's autojump clock. That quiescent jump is also where livelock is detected: if the complete
model state (shared objects and every thread's frames, deadlines taken relative to now) is the
same as at an earlier jump, nothing but retry loops ran in between and they changed nothing, so
the system is locked up. No arbitrary step cap is involved; ``max_steps`` only guards against
bugs in the model itself and is reported as an engine error, never as a kernel finding.

The machine knows nothing about the kernel: the model supplies threads, a state snapshot
function for lockup detection and raises ``Violation`` from its invariant checks.
"""

from __future__ import annotations

import enum
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Protocol

from .choices import Recording

RUNNABLE, BLOCKED, SLEEPING, DONE = 0, 1, 2, 3
STATE_NAMES = ("runnable", "blocked", "sleeping", "done")

Coroutine = Generator[Any, None, Any]


class Strategy(Protocol):
    """What the machine asks at every decision; all nondeterminism comes through here."""

    def pick(self, m: "Machine", decision: int, n_alt: int) -> int:
        """0 = default, 1..n_alt = alternative ``m.alternative(i)``."""

    def choose(self, n: int) -> int:
        """A data choice in [0, n)."""


class Violation(Exception):
    """Raised by an invariant check: stops the execution with a finding."""

    def __init__(self, invariant: str, detail: str, roles: tuple[str, ...] = ()) -> None:
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant
        self.detail = detail
        self.roles = roles


class StopExecution(BaseException):
    """Raised inside a thread to end the whole execution with ``outcome``."""

    outcome: "Outcome"


class Lockup(StopExecution):
    """A retry point saw a complete state it had seen before: nothing can change any more."""


class Outcome(enum.IntEnum):
    """How an execution ended, ordered from benign to bad."""

    OK = 0  # every non-daemon thread finished
    QUIESCENT = 1  # nothing can run, nothing sleeps, some thread never finished
    LOCKUP = 2  # the same complete state came back at a quiescent time jump
    VIOLATION = 3  # an invariant check raised
    STEP_LIMIT = 4  # the model ran away: an engine bug, not a finding
    ERROR = 5  # an exception in our own code: an engine bug, not a finding


class Thread:
    """One kernel thread: a coroutine plus its scheduling state."""

    __slots__ = ("tid", "role", "gen", "state", "wake_at", "task", "daemon", "waiting_on", "killable")

    def __init__(self, tid: int, role: str, gen: Coroutine, task: Any, daemon: bool) -> None:
        self.tid = tid
        self.role = role
        self.gen = gen
        self.state = RUNNABLE
        self.wake_at = 0
        self.task = task
        self.daemon = daemon
        self.waiting_on: Any = None
        self.killable = False

    def __repr__(self) -> str:
        return f"<Thread {self.role} {STATE_NAMES[self.state]}>"


@dataclass
class TraceStep:
    """One step of a traced run: which thread ran, from which scheduling point, what it did."""

    step: int
    tid: int
    role: str
    site: Any
    preempted: bool
    effects: list[str] = field(default_factory=list)
    stack: tuple[str, ...] = ()  # function names, outermost first (where the thread stopped)


@dataclass
class RunResult:
    """Everything one execution produced."""

    outcome: Outcome
    steps: int
    decisions: int
    recording: Recording
    violation: Violation | None = None
    error: str | None = None
    sites: list[tuple[int, Any]] = field(default_factory=list)  # compact (tid, site) per step
    trace: list[TraceStep] = field(default_factory=list)  # only when tracing
    blocked: list[str] = field(default_factory=list)

    @property
    def preemptions(self) -> int:
        return self.recording.preemptions


def coroutine_stack(gen: Any) -> tuple[str, ...]:
    """Names of the functions a suspended coroutine is in, outermost first."""
    names = []
    while gen is not None and getattr(gen, "gi_frame", None) is not None:
        names.append(gen.gi_frame.f_code.co_name)
        gen = gen.gi_yieldfrom
    return tuple(names)


def traceback_stack(exc: BaseException) -> tuple[str, ...]:
    names = []
    tb = exc.__traceback__
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return tuple(names[1:])


class Machine:
    """Runs threads under a strategy; one instance per execution."""

    def __init__(self, strategy: Strategy, *, max_steps: int = 20_000, tracing: bool = False) -> None:
        self.strategy = strategy
        self.max_steps = max_steps
        self.tracing = tracing
        self.threads: list[Thread] = []
        self.runq: list[Thread] = []
        self.sleepers: list[Thread] = []
        self.current: Thread | None = None
        self.jiffies = 0
        self.step = 0
        self.decisions = 0
        self.data: list[int] = []
        self.picks: list[tuple[int, int]] = []
        self.sites: list[tuple[int, Any]] = []
        self.trace: list[TraceStep] = []
        self.snapshot: Callable[[], Any] | None = None
        self._seen_quiescent: set[Any] = set()
        self._jumps = 0
        self._yielded = False
        self._yielder: Thread | None = None
        self._resumed: dict[int, tuple[Any, tuple[str, ...]]] = {}
        # Replay's decoder, read directly on the hot path (most decisions are defaults).
        self._input = getattr(strategy, "choice_input", None)

    # -- setup ---------------------------------------------------------------------------
    def spawn(self, role: str, gen: Coroutine, task: Any = None, *, daemon: bool = False) -> Thread:
        thread = Thread(len(self.threads), role, gen, task, daemon)
        self.threads.append(thread)
        self.runq.append(thread)
        return thread

    def choose(self, n: int) -> int:
        """A recorded data choice in [0, n)."""
        if n <= 1:
            return 0
        value = self.strategy.choose(n)
        self.data.append(value)
        return value

    # -- what primitives call --------------------------------------------------------------
    def block(self, waiting_on: Any, killable: bool = False) -> None:
        """The current thread stops being runnable until ``wake`` (it must yield next)."""
        thread = self.current
        thread.state = BLOCKED
        thread.waiting_on = waiting_on
        thread.killable = killable

    def sleep(self, ticks: int, waiting_on: Any = None, killable: bool = False) -> None:
        """The current thread sleeps until jiffies + ticks, or an earlier ``wake``."""
        thread = self.current
        thread.state = SLEEPING
        thread.wake_at = self.jiffies + ticks
        thread.waiting_on = waiting_on
        thread.killable = killable
        self.sleepers.append(thread)

    def wake(self, thread: Thread) -> None:
        """Make a blocked or sleeping thread runnable (no-op for others)."""
        if thread.state == SLEEPING:
            self.sleepers.remove(thread)
        elif thread.state != BLOCKED:
            return
        thread.state = RUNNABLE
        thread.waiting_on = None
        self.runq.append(thread)

    def yield_cpu(self) -> None:
        """cond_resched(): the current thread goes behind the others that can run (it must yield
        next). By default the head of the run queue runs; staying is a preemption choice."""
        if self.runq:
            self._yielded = True

    def effect(self, text: str) -> None:
        """Describe what the current step did (kept only when tracing)."""
        if self.tracing and self.trace:
            self.trace[-1].effects.append(text)

    # -- the scheduler ------------------------------------------------------------------------
    def alternative(self, i: int) -> Thread | None:
        """Alternative ``i`` (1-based) of the current decision; None means "fire the timer"."""
        cur = self.current
        yielded = self._yielder is cur and cur is not None
        queue = self.runq if cur is not None and cur.state == RUNNABLE and not yielded else self.runq[1:]
        return queue[i - 1] if i <= len(queue) else None

    def fire_earliest_timer(self) -> None:
        """Advance jiffies to the earliest deadline and wake every thread due by then."""
        deadline = min(t.wake_at for t in self.sleepers)
        if deadline > self.jiffies:
            self.jiffies = deadline
        for thread in [t for t in self.sleepers if t.wake_at <= self.jiffies]:
            self.wake(thread)

    def _next_thread(self) -> Thread | None:
        """Decide who runs the next step; None when nothing can run or sleep any more."""
        cur = self.current
        runq = self.runq
        if self._yielded:
            self._yielded = False
            self._yielder = cur
            runq.append(cur)
            cur = None
        if cur is not None and cur.state == RUNNABLE:
            n_alt = len(runq) + (1 if self.sleepers else 0)
            if n_alt == 0:
                return cur
            inp = self._input
            if inp is not None and self.decisions != inp.next_at:
                self.decisions += 1  # replaying: not the next recorded deviation
                return cur
            choice = self.strategy.pick(self, self.decisions, n_alt)
            self.decisions += 1
            if choice == 0:
                return cur
            self.picks.append((self.decisions - 1, choice))
            runq.append(cur)
            if choice >= len(runq):  # past the run queue: fire the timer, run who it woke first
                before = len(runq)
                self.fire_earliest_timer()
                return runq.pop(before)
            return runq.pop(choice - 1)
        while not runq:
            if not self.sleepers:
                return None
            if self._quiescent_repeat():
                return None
            self.fire_earliest_timer()
        n_alt = len(runq) - 1 + (1 if self.sleepers else 0)
        if n_alt == 0:
            return runq.pop(0)
        inp = self._input
        if inp is not None and self.decisions != inp.next_at:
            self.decisions += 1
            return runq.pop(0)
        choice = self.strategy.pick(self, self.decisions, n_alt)
        self.decisions += 1
        if choice == 0:
            return runq.pop(0)
        self.picks.append((self.decisions - 1, choice))
        if choice > len(runq) - 1:
            before = len(runq)
            self.fire_earliest_timer()
            return runq.pop(before)
        return runq.pop(choice)

    def _quiescent_repeat(self) -> bool:
        """Only sleepers are left: has this exact state been seen at an earlier time jump?"""
        if self.snapshot is None:
            return False
        self._jumps += 1
        if self._jumps < 4 or self._jumps & (self._jumps - 1):
            return False  # fingerprint only at the 4th, 8th, 16th... jump (Brent-style)
        from .fingerprint import machine_fingerprint

        key = machine_fingerprint(self)
        if key in self._seen_quiescent:
            return True
        self._seen_quiescent.add(key)
        return False

    # -- the run loop -----------------------------------------------------------------------
    def run(self) -> RunResult:
        outcome = Outcome.OK
        violation: Violation | None = None
        error: str | None = None
        sites = self.sites
        tracing = self.tracing
        max_steps = self.max_steps
        step = 0
        previous = None
        while True:
            thread = self._next_thread()
            if thread is None:
                outcome = self._end_state()
                break
            if tracing:  # the step performs the operation the thread stopped before
                preempted = (
                    previous is not None and previous is not thread and previous.state == RUNNABLE
                    and previous is not self._yielder
                )
                site, stack = self._resumed.get(thread.tid, ("start", ()))
                self.trace.append(TraceStep(step, thread.tid, thread.role, site, preempted, stack=stack))
            self._yielder = None
            previous = thread
            self.current = thread
            try:
                site = thread.gen.send(None)
            except StopIteration:
                thread.state = DONE
                site = "exit"
            except Violation as exc:
                violation = exc
                outcome = Outcome.VIOLATION
                sites.append((thread.tid, "violation"))
                if tracing:
                    self.trace[-1].stack = traceback_stack(exc)
                step += 1
                break
            except Lockup:
                sites.append((thread.tid, "lockup"))
                outcome = Outcome.LOCKUP
                step += 1
                break
            except Exception:  # an engine bug: kept apart from kernel findings
                error = traceback.format_exc()
                outcome = Outcome.ERROR
                break
            sites.append((thread.tid, site))
            if tracing:
                self._resumed[thread.tid] = (site, coroutine_stack(thread.gen))
            step += 1
            if step >= max_steps:
                outcome = Outcome.STEP_LIMIT
                break
        self.step = step
        return RunResult(
            outcome=outcome,
            steps=step,
            decisions=self.decisions,
            recording=Recording(self.data, self.picks),
            violation=violation,
            error=error,
            sites=sites,
            trace=self.trace,
            blocked=[t.role for t in self.threads if t.state in (BLOCKED, SLEEPING) and not t.daemon],
        )

    def _end_state(self) -> Outcome:
        if self.sleepers:
            return Outcome.LOCKUP
        if any(t.state != DONE and not t.daemon for t in self.threads):
            return Outcome.QUIESCENT
        return Outcome.OK

    def close(self) -> None:
        """Close every unfinished coroutine (runs no model code: they are only discarded)."""
        for thread in self.threads:
            if thread.state != DONE:
                thread.gen.close()
