"""Boot a scenario: create its tasks and mms, and the user-space behaviour of each thread.

This is not kernel code: it plays the part of the programs running on the machine. User
threads enter the kernel through the model's system calls (mmap, page faults, exit) and, on
every return to user space, act on a pending SIGKILL and on the freezer, as the kernel's
signal delivery would make them. Drivers (the allocators, the freezer, the kernel thread) do
their job and then declare it done; when every driver is done the remaining user threads
exit normally, so a complete run ends with every reference dropped and can be checked.
"""

from __future__ import annotations

from typing import Any, Callable

from . import invariants as inv
from .linux.mm_types import VM_HUGETLB, VM_LOCKED, mm_struct, vm_area_struct
from .linux.sched import OOM_SCORE_ADJ_MIN, PF_KTHREAD, SIGNAL_UNKILLABLE, signal_struct, task_struct
from .runtime.primitives import (
    down_write, mutex_lock, mutex_unlock, Mutex, preempt_point, up_write, wait_event,
)
from .scenario import SHAPES, Scenario

ALLOC_PAGES = 2  # what each allocator needs; more than the reserves, less than a victim frees
STUCK_IO_PAGES = 16  # what a stuck writer's I/O waits for: more than the scenario ever frees
INDEP_AIO_PAGES = 4  # other=indep_aio: more than any first process starts with (at most 3)


def new_mm(k: Any, name: str, layout: tuple[tuple[int, int], ...]) -> mm_struct:
    mm = mm_struct(k, k.next_oid(), name)
    mm.mmap = [vm_area_struct(k.next_oid(), flags, pages) for flags, pages in layout]
    k.mms.append(mm)
    return mm


def new_process(k: Any, roles: tuple[str, ...], mm: mm_struct | None, adj: int = 0, pid: int | None = None) -> list:
    """A thread group with one task per role, all on ``mm`` (one mm_users reference each)."""
    sig = signal_struct(k.next_oid(), adj)
    tasks = []
    for i, role in enumerate(roles):
        t = task_struct(k, k.next_oid(), pid if (pid is not None and i == 0) else 100 + k.objects, role, sig)
        t.mm = t.active_mm = mm
        sig.threads.append(t)
        if sig.leader is None:
            sig.leader = t
        k.tasks.append(t)
        k.all_tasks.append(t)
        tasks.append(t)
    if mm is not None:
        mm.mm_users.counter = sum(1 for p in k.tasks if p.mm is mm)
    return tasks


def share_mm(mm: mm_struct, tasks: list) -> None:
    """CLONE_VM: the new tasks run on mm, each holding an mm_users reference."""
    for t in tasks:
        t.mm = t.active_mm = mm
    mm.mm_users.counter += len(tasks)


def victim_layout(kind: str) -> tuple[tuple[int, int], ...]:
    if kind == "mlocked":
        return ((0, 1), (VM_LOCKED, 2))
    if kind == "hugetlb":
        return ((0, 1), (VM_HUGETLB, 2))
    return ((0, 2),)


# ------------------------------------------------------------------------------------------------
# User-space behaviour


def return_to_user(k: Any) -> Any:
    """Back in user space: die on SIGKILL, freeze if asked, exit when the scenario ends."""
    tsk = k.current
    while True:
        if tsk.sigkill:
            yield from k.do_group_exit(9)
            return
        if k.freezing(tsk):
            yield from k.try_to_freeze()
            continue
        if k.scenario_over:
            inv.check_user_access(k, tsk)
            yield from k.do_group_exit(0)
            return
        yield from wait_event(
            k.scenario_wait, lambda: k.scenario_over or tsk.sigkill or k.freezing(tsk), killed=k.killed
        )


def user_thread(k: Any, behaviour: str) -> Any:
    """One user thread: do ``behaviour`` in the kernel, then live in user space."""
    tsk = k.current
    if behaviour == "exit":
        tsk.ghost_exiting_user = True
        yield from k.do_exit(0)
        return
    if behaviour == "mmap":
        yield from k.vm_mmap_pgoff(1)
    elif behaviour == "fault":
        yield from k.do_page_fault()
    elif behaviour == "stuck_writer":
        mm = tsk.mm
        yield from down_write(mm.mmap_sem)
        # Waits, holding mmap_sem, for I/O whose completion needs more free memory than the
        # scenario will ever have (a GFP_NOIO allocation that never succeeds): stuck for good.
        yield from wait_event(k.memory_wait, lambda: k.free_pages >= k.wmark_min + STUCK_IO_PAGES)
        yield from up_write(mm.mmap_sem)
    elif behaviour == "lockwait":
        yield from mutex_lock(k.fs_lock)
        yield from mutex_unlock(k.fs_lock)
    elif behaviour == "vfork_parent":
        child = tsk.children[0] if tsk.children else None  # gone already: the vfork completed
        if child is not None:
            yield from k.wait_for_vfork_done(child)
    yield from return_to_user(k)


def driver_done(k: Any) -> None:
    k.drivers_left -= 1
    if k.drivers_left == 0:
        k.scenario_over = True
        from .runtime.primitives import wake_up

        wake_up(k.scenario_wait)


def allocator(k: Any, holds_fs_lock: bool) -> Any:
    """A process that needs memory (a syscall allocating ALLOC_PAGES pages), or a kernel thread
    (``drivers=kalloc,...``: a kworker's GFP_KERNEL allocation). The kernel thread has no mm and
    no user space to return to, the OOM killer never picks it, and the PM freezer's user-space
    phase (all ``freeze_processes`` does before ``oom_killer_disable``) leaves it running."""
    # MODEL: one allocation without __GFP_NOFAIL stands for whatever the kworker does; once the
    # OOM killer is disabled it fails instead of looping (__alloc_pages_slowpath: no progress).
    tsk = k.current
    if holds_fs_lock:
        yield from mutex_lock(k.fs_lock)
    ok = yield from k.__alloc_pages(ALLOC_PAGES)
    if ok and tsk.mm is not None:
        k.add_pages(tsk.mm, ALLOC_PAGES)
    if holds_fs_lock:
        yield from mutex_unlock(k.fs_lock)
    k.log("alloc_ok" if ok else "alloc_failed", tsk)
    driver_done(k)
    if not tsk.flags & PF_KTHREAD:
        yield from return_to_user(k)


def freezer(k: Any) -> Any:
    """The PM suspend path: freeze user space (and disable the OOM killer), then thaw."""
    error = yield from k.freeze_processes()
    if not error:
        yield from k.thaw_processes()
    driver_done(k)
    yield from return_to_user(k)


def kthread_user(k: Any, target: Any) -> Any:
    """A kernel thread (vhost-like) that borrows target's mm, touches it, and lets it go."""
    mm = yield from k.get_task_mm(target)
    if mm is not None:
        yield from k.use_mm(mm)
        yield from preempt_point(k.m, "kthread:copy_from_user")
        k.kthread_access(mm)
        yield from k.unuse_mm(mm)
        yield from k.mmput(mm)
    driver_done(k)


# ------------------------------------------------------------------------------------------------
# Boot


def boot(k: Any, scenario: Scenario) -> None:
    """Create every task of ``scenario`` on kernel ``k`` and spawn its threads."""
    m = k.m
    k.fs_lock = Mutex(m, "i_mutex")
    from .runtime.primitives import WaitQueue

    k.vfork_wait = WaitQueue(m, "vfork_done")
    k.sysctl_oom_kill_allocating_task = scenario.sysctl == "kill_allocating_task"
    shape = SHAPES[scenario.shape]
    roles = ("victim", "sibling")[: len(shape)]
    if scenario.other == "vfork":
        shape = ("vfork_parent",) + shape[1:]
    mm_a = new_mm(k, "victim_mm", victim_layout(scenario.mm))
    mm_a.aio_pending = {"aio": "memory", "aio_slow": "io"}.get(scenario.mm)
    victim_tasks = new_process(k, roles, mm_a)
    bodies: list[tuple[Any, Callable[[], Any]]] = [
        (t, (lambda b=b: user_thread(k, b))) for t, b in zip(victim_tasks, shape)
    ]
    bodies += _other_process(k, scenario, victim_tasks[0], mm_a)
    bodies += _drivers(k, scenario, victim_tasks[0])
    if scenario.other == "alloc_child":
        child = next(t for t, _ in bodies if t.role == "other")
        parent = next(t for t, _ in bodies if t.role == "allocator")
        child.parent = parent
        parent.children.append(child)
    k.drivers_left = sum(1 for t, _ in bodies if t.role in DRIVER_ROLES)
    k.totalpages = 64
    k.oom_init()
    for t, body in bodies:
        t.thread = m.spawn(t.role, body(), t, daemon=bool(t.flags & PF_KTHREAD) and t.role not in DRIVER_ROLES)


DRIVER_ROLES = ("allocator", "allocator2", "freezer", "kthread")


def _other_process(k: Any, scenario: Scenario, victim: Any, mm_a: mm_struct) -> list:
    other = scenario.other
    if other == "none":
        return []
    if other in ("indep", "alloc_child", "indep_big"):
        pages = 3 if other == "indep_big" else 1
        (b,) = new_process(k, ("other",), new_mm(k, "other_mm", ((0, pages),)))
    elif other == "indep_aio":
        # The first victim, with AIO in flight whose completion needs memory: whoever drops the
        # last mm_users reference waits in exit_aio, before exit_mmap frees anything (BZ-10).
        # MODEL: all of its memory is mlocked, which every reaper here skips (VM_LOCKED, from the
        # posted reaper to 4.9), so reaping it frees nothing and only exit_mmap gives the pages
        # back. This stands for a process whose unlocked pages the reaper does free but the
        # looping allocators take before the I/O completion can: either way exit_aio still
        # waits for memory, and the reaper's help goes to the allocators, not to the teardown.
        aio_mm = new_mm(k, "other_mm", ((VM_LOCKED, INDEP_AIO_PAGES),))
        aio_mm.aio_pending = "memory"
        (b,) = new_process(k, ("other",), aio_mm)
    elif other == "init_shares":
        (b,) = new_process(k, ("init",), None, pid=1)
        b.signal.flags |= SIGNAL_UNKILLABLE
        share_mm(mm_a, [b])
    else:
        adj = OOM_SCORE_ADJ_MIN if other == "clone_vm_unkillable" else 0
        role = "vfork_child" if other == "vfork" else "sharer"
        (b,) = new_process(k, (role,), None, adj=adj)
        share_mm(mm_a, [b])
        b.parent = victim
        victim.children.append(b)
        b.vfork_done = other == "vfork"
    return [(b, lambda: user_thread(k, "run"))]


def _drivers(k: Any, scenario: Scenario, victim: Any) -> list:
    holds_lock = scenario.shape == "lockwait"
    kernel_thread = scenario.drivers.startswith("kalloc")
    (c,) = new_process(k, ("allocator",), None if kernel_thread else new_mm(k, "allocator_mm", ((0, 1),)))
    if kernel_thread:
        c.flags |= PF_KTHREAD
    bodies = [(c, lambda: allocator(k, holds_lock))]
    if scenario.drivers == "alloc,alloc":
        (c2,) = new_process(k, ("allocator2",), new_mm(k, "allocator2_mm", ((0, 1),)))
        bodies.append((c2, lambda: allocator(k, False)))
    elif scenario.drivers in ("alloc,freezer", "kalloc,freezer"):
        (f,) = new_process(k, ("freezer",), new_mm(k, "freezer_mm", ((0, 1),)))
        bodies.append((f, lambda: freezer(k)))
    elif scenario.drivers == "alloc,kthread":
        (t,) = new_process(k, ("kthread",), None)
        t.flags |= PF_KTHREAD
        bodies.append((t, lambda: kthread_user(k, victim)))
    return bodies
