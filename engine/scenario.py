"""Scenarios: which processes, threads and actors an execution starts with.

A scenario is a handful of small, named dimensions, drawn as the first data choices of an
input (value 0 of each is the simplest case), or read from a declarative TOML/JSON file. The
dimensions are chosen so that every known race needs only a few non-default values and a
bounded search can enumerate them all:

* ``shape``: the threads of the first process (the likely victim) and what each does;
* ``other``: a second process and how it relates to the first (its own mm, CLONE_VM, vfork,
  an OOM_SCORE_ADJ_MIN sharer, global init sharing the mm), or a child of the allocator with
  its own mm (what oom_kill_process sacrifices instead of its parent), or an independent
  process bigger than the first (so that it is the first victim): ``indep_big`` with plain
  anonymous memory, ``indep_aio`` with mlocked memory and AIO in flight whose completion needs
  free memory, so that whoever drops its last mm_users reference blocks in ``exit_aio`` before
  ``exit_mmap`` can free anything (BZ-10's first form: the reaper, when its pin is the last;
  the first process is then the later victim that needs the reaper);
* ``drivers``: who allocates and what else runs (a second allocator, the PM freezer, a kernel
  thread that borrows the victim's mm); ``kalloc,freezer`` makes the allocator a kernel thread
  (a kworker's GFP_KERNEL allocation: no mm, never an OOM victim, and left running by the
  user-space phase of a suspend, which is all of it that comes before ``oom_killer_disable``)
  while the PM freezer runs;
* ``mm``: the victim mm's mappings (plain anon, an mlocked or hugetlb part the reaper must
  skip, AIO in flight so that teardown blocks: until memory is free again, or for a while);
* ``sysctl``: oom_kill_allocating_task.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

# Thread behaviours of the first process: "run" waits in user space until killed or the end.
SHAPES: dict[str, tuple[str, ...]] = {
    "run": ("run",),
    "run,run": ("run", "run"),
    "exit,mmap": ("exit", "mmap"),
    "run,stuck_writer": ("run", "stuck_writer"),
    "fault": ("fault",),
    "run,exit": ("run", "exit"),
    "lockwait": ("lockwait",),
}
# New values go at the end of their tuple: an input's data byte is read as value % len, so an
# appended value leaves every existing input's scenario what it was.
OTHERS = ("none", "indep", "clone_vm", "vfork", "clone_vm_unkillable", "init_shares", "alloc_child", "indep_big",
          "indep_aio")
DRIVERS = ("alloc", "alloc,alloc", "alloc,freezer", "alloc,kthread", "kalloc,freezer")
MMS = ("anon", "mlocked", "hugetlb", "aio", "aio_slow")
SYSCTLS = ("default", "kill_allocating_task")

DIMENSIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("shape", tuple(SHAPES)),
    ("other", OTHERS),
    ("drivers", DRIVERS),
    ("mm", MMS),
    ("sysctl", SYSCTLS),
)


class ScenarioError(ValueError):
    """A scenario file or value that is not valid; the message is for the user."""


@dataclass(frozen=True)
class Scenario:
    """One starting configuration of the model."""

    shape: str = "run"
    other: str = "none"
    drivers: str = "alloc"
    mm: str = "anon"
    sysctl: str = "default"

    def __post_init__(self) -> None:
        for name, values in DIMENSIONS:
            value = getattr(self, name)
            if value not in values:
                raise ScenarioError(f"scenario {name} {value!r} is not one of: {', '.join(values)}")

    def choices(self) -> list[int]:
        """The data choices that draw this scenario (the first bytes of its inputs)."""
        return [values.index(getattr(self, name)) for name, values in DIMENSIONS]

    def describe(self) -> str:
        return " ".join(f"{name}={getattr(self, name)}" for name, _ in DIMENSIONS)

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def draw_scenario(choose: Any) -> Scenario:
    """Draw a scenario through ``choose(n)`` (the machine's recorded data choice)."""
    values = {name: options[choose(len(options))] for name, options in DIMENSIONS}
    return Scenario(**values)


def scenario_from_mapping(data: Any, source: str = "scenario") -> Scenario:
    """A scenario from parsed TOML/JSON: a table with some of the dimension names."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: expected a table of {', '.join(n for n, _ in DIMENSIONS)}")
    table = data.get("scenario", data)
    if not isinstance(table, dict):
        raise ScenarioError(f"{source}: [scenario] must be a table")
    known = {f.name for f in fields(Scenario)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ScenarioError(f"{source}: unknown scenario keys {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if not all(isinstance(v, str) for v in table.values()):
        raise ScenarioError(f"{source}: scenario values must be strings")
    return Scenario(**table)


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file (``.toml`` or ``.json``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read scenario file {path}: {exc}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}") from None
    return scenario_from_mapping(data, str(path))
