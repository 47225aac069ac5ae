"""Primitives have kernel semantics: locks exclude, waits wake, trylocks fail under writers."""

from hypothesis import given, settings, strategies as st

from oomfuzz.engine.runtime.machine import Machine, Outcome
from oomfuzz.engine.runtime.primitives import (
    Atomic, RwSem, SpinLock, WaitQueue, atomic_dec_return, atomic_inc, down_read, down_read_trylock,
    down_write, preempt_point, spin_lock, spin_unlock, up_read, up_write, wait_event, wake_up,
)
from oomfuzz.engine.runtime.strategies import RandomWalk


def _run(seed, build):
    m = Machine(RandomWalk(seed))
    state = build(m)
    result = m.run()
    return m, state, result


@given(st.integers(0, 2**32))
@settings(max_examples=150, deadline=None)
def test_spinlock_excludes(seed):
    def build(m):
        lock = SpinLock(m, "l")
        state = {"inside": 0, "max": 0, "done": 0}

        def body():
            for _ in range(3):
                yield from spin_lock(lock)
                state["inside"] += 1
                state["max"] = max(state["max"], state["inside"])
                yield from preempt_point(m, "critical")
                state["inside"] -= 1
                yield from spin_unlock(lock)
            state["done"] += 1

        for i in range(3):
            m.spawn(f"t{i}", body())
        return state

    _, state, result = _run(seed, build)
    assert result.outcome == Outcome.OK
    assert state["max"] == 1 and state["done"] == 3


@given(st.integers(0, 2**32))
@settings(max_examples=150, deadline=None)
def test_rwsem_readers_share_writers_exclude(seed):
    def build(m):
        sem = RwSem(m, "sem")
        state = {"readers": 0, "writers": 0, "bad": False, "trylock_under_writer": False}

        def reader():
            yield from down_read(sem)
            state["readers"] += 1
            state["bad"] |= state["writers"] > 0
            yield from preempt_point(m, "read")
            state["readers"] -= 1
            yield from up_read(sem)

        def writer():
            yield from down_write(sem)
            state["writers"] += 1
            state["bad"] |= state["readers"] > 0 or state["writers"] > 1
            yield from preempt_point(m, "write")
            state["writers"] -= 1
            yield from up_write(sem)

        def trier():
            ok = yield from down_read_trylock(sem)
            if ok:
                state["trylock_under_writer"] |= sem.writer is not None
                yield from up_read(sem)

        for body in (reader(), writer(), reader(), writer(), trier()):
            m.spawn("t", body)
        return state

    _, state, result = _run(seed, build)
    assert result.outcome == Outcome.OK
    assert not state["bad"] and not state["trylock_under_writer"]


@given(st.integers(0, 2**32))
@settings(max_examples=150, deadline=None)
def test_wait_event_wakes_and_atomics_balance(seed):
    def build(m):
        wq = WaitQueue(m, "wq")
        count = Atomic(m, "count", 0)
        state = {"woken": 0}

        def waiter():
            yield from wait_event(wq, lambda: count.counter == 0 and state.get("go"))
            state["woken"] += 1

        def worker():
            yield from atomic_inc(count)
            left = yield from atomic_dec_return(count)
            state["go"] = True
            if left == 0:
                wake_up(wq)

        m.spawn("w1", waiter())
        m.spawn("w2", waiter())
        m.spawn("k", worker())
        return state

    _, state, result = _run(seed, build)
    assert result.outcome == Outcome.OK
    assert state["woken"] == 2


def test_a_wait_nobody_satisfies_is_quiescent():
    m = Machine(RandomWalk(0))
    wq = WaitQueue(m, "never")
    m.spawn("w", wait_event(wq, lambda: False))
    assert m.run().outcome == Outcome.QUIESCENT


class _KeepSpinning:
    """A strategy that, whenever the spinner yields, runs it again ahead of everyone else."""

    def pick(self, m, decision, n_alt):
        return 1 if m.alternative(1) is not None and m.alternative(1).role == "spinner" else 0

    def choose(self, n):
        return 0


def test_a_cycle_that_starves_a_runnable_thread_is_no_lockup():
    """The lockup tests only ever call a cycle a lockup if every thread that could run ran in
    it: here the spinner's state repeats at every loop head, but the worker that would end its
    wait never gets the CPU. A kernel scheduler would run it, so the run gets no verdict (the
    engine's step limit), not a lockup. Given the CPU, the worker ends the spin at once."""
    from oomfuzz.engine.kernel import LONG_RUN, Kernel

    def run(strategy):
        m = Machine(strategy, max_steps=3 * LONG_RUN)
        k = Kernel(m)
        flag = {"set": False}

        def spinner():
            while not flag["set"]:
                yield from k.retry_point("spin")

        def worker():
            flag["set"] = True
            yield "set"

        m.spawn("spinner", spinner())
        m.spawn("worker", worker())
        return m.run()

    assert run(_KeepSpinning()).outcome == Outcome.STEP_LIMIT
    assert run(RandomWalk(0)).outcome == Outcome.OK
