"""The kernel object: global state of one execution, with a variant's functions as methods.

A variant is a subclass of ``Kernel`` whose class dictionary holds the model functions of its
kernel version (``variants.py`` builds it). Model functions are plain module-level functions
taking the kernel as first argument (``def exit_mm(k, tsk)``), so once installed they are
called as ``k.exit_mm(tsk)`` and a later variant replaces one by defining a function of the
same name. Globals keep the kernel's names (``oom_lock``, ``oom_victims``,
``oom_killer_disabled``); memory bookkeeping and the event log are the model's own.
"""

from __future__ import annotations

from typing import Any, Callable

from . import invariants as inv
from .runtime.fingerprint import machine_fingerprint
from .runtime.machine import Lockup, Machine
from .runtime.primitives import Atomic, Mutex, WaitQueue, wake_up


CYCLE_AFTER = 8  # changed states at loop heads before the lockup test looks for cycles
LONG_RUN = 1_000  # steps after which every loop head also looks for a fair repeat of the machine


class Kernel:
    """Global kernel state; variant subclasses add the functions."""

    NAME = "base"
    PARENT: str | None = None
    SUMMARY = ""
    KNOWN_BUGS: dict[str, tuple[str, ...]] = {}
    LIVENESS: tuple[Callable, ...] = (
        inv.reaper_stalled,
        inv.victim_never_reaped,
        inv.victim_remarked_after_reap,
        inv.memdie_stuck_after_reap,
        inv.unreapable_reselected,
        inv.victim_stuck,
    )
    CITATIONS: dict[str, str] = {}
    has_oom_victims_counter = True
    OOM_HIDE_FLAGS = 0  # mm flags that hide a victim's mm from the OOM killer (MMF_OOM_REAPED...)

    def __init__(self, m: Machine, *, wmark_min: int = 1, kill_allocating_task: bool = False) -> None:
        self.m = m
        self.oom_lock = Mutex(m, "oom_lock")
        self.oom_victims = Atomic(m, "oom_victims", 0)
        self.oom_victims_wait = WaitQueue(m, "oom_victims_wait")
        self.oom_killer_disabled = False
        self.sysctl_oom_kill_allocating_task = kill_allocating_task
        self.memory_wait = WaitQueue(m, "free_memory")
        self.scenario_wait = WaitQueue(m, "scenario_end")
        self.scenario_over = False
        self.wmark_min = wmark_min
        self.free_pages = wmark_min
        self.totalpages = 64
        self.tasks: list[Any] = []  # the task list: unhashed by release_task
        self.all_tasks: list[Any] = []  # every task ever created, for end-of-run checks
        self.mms: list[Any] = []
        self.objects = 0
        self.allocating: dict[int, bool] = {}
        self.system_freezing_cnt = 0
        self.pm_freezing = False
        self.suspend_task: Any = None
        self.rcu_readers = 0
        self.rcu_callbacks: list[Any] = []
        self.events: list[tuple] = []
        self._loop_states: dict[int, Any] = {}
        self._cycle_keys: set[Any] = set()  # loop-head states seen since the last progress
        self._last_key: Any = None  # the state the previous loop head saw
        self._heads = 0  # loop heads that saw a changed state
        self._stable_passes: dict[int, int] = {}  # passes since the state last changed
        self._cycle_passes: dict[int, int] = {}  # passes since a loop head last saw a new state
        self._spin_checks: set[Any] = set()  # whole-machine fingerprints where the test fired
        self._long_states: dict[Any, tuple[int, int]] = {}  # fingerprint -> (step, jiffies) first seen
        m.snapshot = self.snapshot

    # -- the execution's view of the kernel ------------------------------------------------------
    @property
    def current(self) -> Any:
        return self.m.current.task

    def killed(self) -> bool:
        """fatal_signal_pending(current), for killable waits."""
        return self.m.current.task.sigkill

    def next_oid(self) -> int:
        self.objects += 1
        return self.objects

    def log(self, kind: str, task: Any = None, **fields: Any) -> None:
        """Record a kernel-visible event (a printk or tracepoint the real kernel would emit)."""
        self.events.append((kind, None if task is None else task.role, len(self.m.sites)))

    # -- memory bookkeeping (the model's, not the kernel's) --------------------------------------
    def memory_available(self) -> bool:
        return self.free_pages > self.wmark_min

    def free_pages_add(self, pages: int) -> None:
        if pages:
            self.free_pages += pages
            wake_up(self.memory_wait)

    def add_pages(self, mm: Any, pages: int) -> None:
        """A successful allocation is mapped into mm's first private, unlocked mapping."""
        for vma in mm.mmap:
            if not vma.vm_flags:
                vma.pages += pages
                return
        if mm.mmap:
            mm.mmap[0].pages += pages

    def complete_vfork(self, child: Any) -> None:
        wake_up(self.vfork_wait)

    def idle_waits(self) -> tuple:
        """Wait queues a kernel thread sleeps on when it has nothing to do."""
        wq = getattr(self, "oom_reaper_wait", None)
        return (wq,) if wq is not None else ()

    def early_kill_accepted(self, mm: Any) -> bool:
        """Whether this kernel knowingly accepts a new kill while mm still maps memory."""
        return False

    def reapable(self, p: Any, mm: Any) -> bool:
        """Whether this variant's rules would let the reaper unmap mm (checked by invariants)."""
        return all(t.signal.oom_score_adj != -1000 for t in self.tasks if t.mm is mm and not t.flags & 0x200000)

    def mm_pins_by_design(self, mm: Any) -> int:
        """mm_count references the kernel keeps on purpose past the last user (v4.9 oom_mm)."""
        return 0

    # -- livelock detection ------------------------------------------------------------------------
    def retry_point(self, site: str, loop_state: Any = None) -> Any:
        """The head of an unbounded retry loop: cond_resched() plus lockup detection.

        cond_resched() lets every other runnable thread go first by default, as a fair kernel
        scheduler would during a busy retry loop. The test looks at the state at loop heads:
        the shared state, every thread's run state, and every loop's own ``loop_state`` (a
        counter that bounds the loop, say; a change of it starts the test afresh).

        * Fixed point: every thread that can run has passed its loop head at least twice and
          the state never changed meanwhile. With no timer pending, that is a lockup.
        * Cycle (looked for after the first ``CYCLE_AFTER`` changes, so that short retry loops
          do not pay for hashing states): every thread that can run has passed its loop head
          at least twice and no loop head saw a state that had not been seen at one before:
          two allocators that each re-mark themselves while the reaper clears their
          TIF_MEMDIE in turn see two states, one each, forever. The loop heads cannot see
          everything (a sleeping reaper counting its attempts is progress), so then the whole
          machine is fingerprinted (every thread's frames and locals, deadlines relative to
          now): the same fingerprint as at an earlier check closes the cycle, a lockup.
        * Either way, if a timer is pending, spinning lets time pass: the whole machine is
          checked the same way, then the earliest timer fires and the test starts again, so
          a sleeper's wake-ups are part of the cycle once the machine repeats.
        * Past ``LONG_RUN`` steps, every loop head also fingerprints the whole machine and
          looks for a fair repeat (``_check_repeat``). Under a schedule that fires timers early
          and preempts at random, the tests above can fire too rarely to meet the same phase
          of a long cycle twice (the v4.7 reaper's ten attempts, give-up and re-queue) before
          the step cap.
        """
        m = self.m
        tid = m.current.tid
        key = (self.progress_snapshot(), tuple(sorted(self._loop_states.items())))
        if self._loop_states.get(tid) != loop_state:
            self._loop_states[tid] = loop_state
            key = None
            self._cycle_keys, self._stable_passes, self._cycle_passes = set(), {}, {}
        elif key != self._last_key:
            self._stable_passes = {}
            self._heads += 1
            # Cycles are looked for once loop heads have seen a few changes (hashing the state
            # at every head would cost every short retry loop its price).
            if self._heads > CYCLE_AFTER and key not in self._cycle_keys:  # a new state: progress
                self._cycle_keys.add(key)
                self._cycle_passes = {}
        self._last_key = key
        cycles = self._heads > CYCLE_AFTER
        if m.current.task is None or m.current.task.ghost_oom_attempted:
            # Only a pass that reached the OOM decision is evidence: one that lost a trylock
            # might win it next time.
            self._stable_passes[tid] = self._stable_passes.get(tid, 0) + 1
            if cycles:
                self._cycle_passes[tid] = self._cycle_passes.get(tid, 0) + 1
        if key is not None:
            fixed = self._all_cycling(self._stable_passes)
            if fixed and not m.sleepers:
                raise Lockup(site)
            if fixed or (cycles and self._all_cycling(self._cycle_passes)):
                self._check_cycle(site)
        if len(m.sites) > LONG_RUN:
            self._check_repeat(site)
        m.yield_cpu()
        yield site

    def _check_repeat(self, site: str) -> None:
        """A lockup if the whole machine is as it was at an earlier loop head and the way back
        was fair: every thread that could run meanwhile ran, and if a timer is pending, time
        passed (its sleeper woke and slept again). That stretch of schedule can then repeat
        forever, and a kernel scheduler could run it so: nothing ever changes."""
        m = self.m
        state = machine_fingerprint(m)
        seen = self._long_states.setdefault(state, (len(m.sites), m.jiffies))
        at, jiffies = seen
        if at == len(m.sites) or (m.sleepers and m.jiffies == jiffies):
            return
        ran = {tid for tid, _ in m.sites[at:]}
        if all(t.tid in ran for t in m.threads if t.state == 0 or t is m.current):
            raise Lockup(site)

    def _check_cycle(self, site: str) -> None:
        """The spinners went round: a lockup if the whole machine repeats, else let time pass."""
        m = self.m
        state = machine_fingerprint(m)
        if state in self._spin_checks:
            raise Lockup(site)
        self._spin_checks.add(state)
        self._stable_passes, self._cycle_passes = {}, {}
        if m.sleepers:  # time passes while they spin
            m.fire_earliest_timer()
            self._cycle_keys, self._last_key = set(), None

    def loop_pass(self) -> None:
        """The head of a kernel thread's service loop (the reaper's ``for (;;)``): a pass, not a
        scheduling point. A service thread that is runnable while others spin will run one more
        iteration; once it has done two without the state at the spinners' loop heads changing,
        it is part of the cycle (a set-then-clear ping-pong), not progress. No yield, so
        schedules are unchanged; only the lockup verdict can come earlier."""
        tid = self.m.current.tid
        self._stable_passes[tid] = self._stable_passes.get(tid, 0) + 1
        self._cycle_passes[tid] = self._cycle_passes.get(tid, 0) + 1

    def _all_cycling(self, passes: dict[int, int]) -> bool:
        m = self.m
        return all(
            passes.get(t.tid, 0) >= 2 for t in m.threads if t.state == 0 or t is m.current
        )

    def progress_snapshot(self) -> tuple:
        """Shared state that a retry loop could be waiting to see change (locks excluded: a
        loop takes and drops them every pass), with sleepers' deadlines relative to now."""
        m = self.m
        return (
            self.snapshot(),
            tuple((t.state, t.wake_at - m.jiffies if t.state == 2 else 0) for t in m.threads),
        )

    def snapshot(self) -> tuple:
        """Every shared object's state, for fingerprints (tasks and mms in creation order)."""
        return (
            self.oom_victims.counter, self.oom_killer_disabled,
            self.free_pages, self.system_freezing_cnt, self.pm_freezing, self.scenario_over,
            tuple(t.snapshot() for t in self.tasks),
            tuple(mm.snapshot() for mm in self.mms),
            self.extra_snapshot(),
        )

    def extra_snapshot(self) -> tuple:
        """State a variant adds (its reaper queue, for instance)."""
        return ()
