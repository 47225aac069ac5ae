"""Blocking and atomic primitives with kernel semantics; every one is a scheduling point.

Each primitive is a generator used as ``yield from primitive(...)``. It yields once *before*
it acts (so another thread may run first: that is the race window), then acts atomically. A
primitive that must wait marks the current thread blocked or sleeping and yields again until it
is woken and its condition holds. Nothing here knows about the kernel's objects; locks, wait
queues and atomics carry the machine that owns them, and a name used in traces.

What is *not* here on purpose: a preemption point inside an atomic operation. ``atomic_*``,
``cmpxchg`` and ``test_and_set_bit``-style operations are indivisible, exactly as on hardware;
their race window is the scheduling point before them.

The value each primitive yields is its *site*: a short string naming the operation and its
object (``"down_read_trylock(mmap_sem)"``), precomputed so a step allocates nothing.
"""

from __future__ import annotations

from typing import Any, Callable

from .machine import Machine

# --------------------------------------------------------------------------------------------
# Plain preemption points and racy single-word accesses


def preempt_point(m: Machine, site: str) -> Any:
    """A point where the kernel may lose the CPU before its next racy access."""
    yield site


def read_once(m: Machine, obj: Any, attr: str, site: str) -> Any:
    """READ_ONCE(obj->attr): a racy read, with a race window before it."""
    yield site
    return getattr(obj, attr)


def write_once(m: Machine, obj: Any, attr: str, value: Any, site: str) -> Any:
    """WRITE_ONCE(obj->attr, value)."""
    yield site
    setattr(obj, attr, value)


def cmpxchg(m: Machine, obj: Any, attr: str, old: Any, new: Any, site: str) -> Any:
    """cmpxchg(&obj->attr, old, new): returns the value found; stores ``new`` iff it was ``old``."""
    yield site
    found = getattr(obj, attr)
    if found is old:
        setattr(obj, attr, new)
    return found


# --------------------------------------------------------------------------------------------
# Atomics


class Atomic:
    """atomic_t: an integer whose operations are indivisible."""

    __slots__ = ("m", "name", "counter", "oid", "site")

    def __init__(self, m: Machine, name: str, value: int = 0, oid: int | None = None) -> None:
        self.m = m
        self.name = name
        self.counter = value
        self.oid = oid
        self.site = f"atomic({name})"

    def __repr__(self) -> str:
        return f"{self.name}={self.counter}"


def atomic_read(v: Atomic) -> Any:
    yield v.site
    return v.counter


def atomic_inc(v: Atomic) -> Any:
    yield v.site
    v.counter += 1
    if v.m.tracing:
        v.m.effect(f"{v.name} {v.counter - 1}→{v.counter}")


def atomic_dec(v: Atomic) -> Any:
    yield v.site
    v.counter -= 1
    if v.m.tracing:
        v.m.effect(f"{v.name} {v.counter + 1}→{v.counter}")


def atomic_dec_return(v: Atomic) -> Any:
    yield v.site
    v.counter -= 1
    if v.m.tracing:
        v.m.effect(f"{v.name} {v.counter + 1}→{v.counter}")
    return v.counter


def atomic_dec_and_test(v: Atomic) -> Any:
    yield v.site
    v.counter -= 1
    if v.m.tracing:
        v.m.effect(f"{v.name} {v.counter + 1}→{v.counter}")
    return v.counter == 0


def atomic_inc_not_zero(v: Atomic) -> Any:
    yield v.site
    if v.counter == 0:
        if v.m.tracing:
            v.m.effect(f"{v.name} is 0: not taken")
        return False
    v.counter += 1
    if v.m.tracing:
        v.m.effect(f"{v.name} {v.counter - 1}→{v.counter}")
    return True


# --------------------------------------------------------------------------------------------
# Locks


class SpinLock:
    """spinlock_t. A spinning waiter makes no progress, so it is modelled as blocked."""

    __slots__ = ("m", "name", "owner", "waiters", "oid", "site_lock", "site_unlock")

    def __init__(self, m: Machine, name: str, oid: int | None = None) -> None:
        self.m = m
        self.name = name
        self.owner: Any = None
        self.waiters: list = []
        self.oid = oid
        self.site_lock = f"lock({name})"
        self.site_unlock = f"unlock({name})"


def spin_lock(lock: SpinLock, killed: Callable[[], bool] | None = None) -> Any:
    """spin_lock / mutex_lock, or mutex_lock_killable when ``killed`` says whether a fatal
    signal is pending: then False means the wait was interrupted and the lock is not held."""
    m = lock.m
    yield lock.site_lock
    while lock.owner is not None:
        if lock.owner is m.current:
            raise RuntimeError(f"model bug: recursive lock of {lock.name} by {m.current.role}")
        if killed is not None and killed():
            if m.current in lock.waiters:
                lock.waiters.remove(m.current)
            return False
        lock.waiters.append(m.current)
        m.block(lock, killable=killed is not None)
        yield lock.site_lock
    lock.owner = m.current
    return True


def spin_trylock(lock: SpinLock) -> Any:
    m = lock.m
    yield lock.site_lock
    if lock.owner is not None:
        if m.tracing:
            m.effect(f"{lock.name} busy")
        return False
    lock.owner = m.current
    return True


def spin_unlock(lock: SpinLock) -> Any:
    """Release without a scheduling point before it: nobody can observe the difference."""
    m = lock.m
    if lock.owner is not m.current:
        raise RuntimeError(f"model bug: {m.current.role} unlocks {lock.name} it does not hold")
    lock.owner = None
    if lock.waiters:
        for waiter in lock.waiters:
            m.wake(waiter)
        lock.waiters.clear()
    yield lock.site_unlock


Mutex = SpinLock  # a sleeping lock has the same exclusion and hand-over semantics here
mutex_lock = spin_lock
mutex_trylock = spin_trylock
mutex_unlock = spin_unlock


class RwSem:
    """struct rw_semaphore: many readers or one writer; readers queue behind waiting writers."""

    __slots__ = ("m", "name", "readers", "writer", "waiters", "writers_waiting", "oid", "site_r", "site_w", "site_up")

    def __init__(self, m: Machine, name: str, oid: int | None = None) -> None:
        self.m = m
        self.name = name
        self.readers = 0
        self.writer: Any = None
        self.waiters: list = []
        self.writers_waiting = 0
        self.oid = oid
        self.site_r = f"down_read({name})"
        self.site_w = f"down_write({name})"
        self.site_up = f"up({name})"

    def _wake_all(self) -> None:
        for waiter in self.waiters:
            self.m.wake(waiter)
        self.waiters.clear()


def down_read(sem: RwSem) -> Any:
    m = sem.m
    yield sem.site_r
    while sem.writer is not None or sem.writers_waiting:
        sem.waiters.append(m.current)
        m.block(sem)
        yield sem.site_r
    sem.readers += 1


def down_read_trylock(sem: RwSem) -> Any:
    yield sem.site_r
    if sem.writer is not None or sem.writers_waiting:
        if sem.m.tracing:
            sem.m.effect(f"{sem.name}: trylock failed")
        return False
    sem.readers += 1
    return True


def up_read(sem: RwSem) -> Any:
    sem.readers -= 1
    if sem.readers < 0:
        raise RuntimeError(f"model bug: up_read of {sem.name} without down_read")
    if sem.readers == 0 and sem.waiters:
        sem._wake_all()
    yield sem.site_up


def down_write(sem: RwSem, killed: Callable[[], bool] | None = None) -> Any:
    """down_write, or down_write_killable when ``killed`` says whether a fatal signal is pending.

    Returns True when the lock was taken, False when a killable wait was interrupted.
    """
    m = sem.m
    yield sem.site_w
    waiting = False
    while sem.writer is not None or sem.readers:
        if killed is not None and killed():
            if waiting:
                sem.writers_waiting -= 1
                sem._wake_all()
            if m.tracing:
                m.effect(f"{sem.name}: killable wait interrupted")
            return False
        if not waiting:
            sem.writers_waiting += 1
            waiting = True
        sem.waiters.append(m.current)
        m.block(sem, killable=killed is not None)
        yield sem.site_w
    if waiting:
        sem.writers_waiting -= 1
    sem.writer = m.current
    return True


def up_write(sem: RwSem) -> Any:
    if sem.writer is not sem.m.current:
        raise RuntimeError(f"model bug: up_write of {sem.name} by a non-owner")
    sem.writer = None
    sem._wake_all()
    yield sem.site_up


# --------------------------------------------------------------------------------------------
# Wait queues and sleeping


class WaitQueue:
    """wait_queue_head_t: threads waiting for a condition that a waker announces."""

    __slots__ = ("m", "name", "waiters", "oid", "site")

    def __init__(self, m: Machine, name: str, oid: int | None = None) -> None:
        self.m = m
        self.name = name
        self.waiters: list = []
        self.oid = oid
        self.site = f"wait({name})"


def wait_event(wq: WaitQueue, condition: Callable[[], Any], killed: Callable[[], bool] | None = None) -> Any:
    """wait_event / wait_event_killable / wait_event_freezable: sleep until ``condition()``.

    Returns the condition's value, or None when a killable wait saw a fatal signal.
    """
    m = wq.m
    yield wq.site
    while True:
        value = condition()
        if value:
            return value
        if killed is not None and killed():
            return None
        wq.waiters.append(m.current)
        m.block(wq, killable=killed is not None)
        yield wq.site


def wait_event_timeout(wq: WaitQueue, condition: Callable[[], Any], ticks: int) -> Any:
    """wait_event_timeout: the condition's value, or False when ``ticks`` passed without it."""
    m = wq.m
    yield wq.site
    deadline = m.jiffies + ticks
    while True:
        value = condition()
        if value:
            return value
        if m.jiffies >= deadline:
            return False
        wq.waiters.append(m.current)
        m.sleep(deadline - m.jiffies, wq)
        yield wq.site
        if m.current in wq.waiters:
            wq.waiters.remove(m.current)


def wake_up(wq: WaitQueue) -> None:
    """wake_up / wake_up_all: every waiter re-checks its condition (not a scheduling point)."""
    if wq.waiters:
        m = wq.m
        for waiter in wq.waiters:
            m.wake(waiter)
        wq.waiters.clear()


def schedule_timeout(m: Machine, ticks: int, site: str, killed: Callable[[], bool] | None = None) -> Any:
    """schedule_timeout_{idle,uninterruptible,killable}(ticks): sleep; killable ends early."""
    if killed is not None and killed():
        yield site
        return
    m.sleep(ticks, "timer", killable=killed is not None)
    yield site


def block_forever(m: Machine, what: str) -> Any:
    """Wait for something the model never provides (e.g. I/O that needs memory)."""
    while True:
        m.block(what)
        yield what
