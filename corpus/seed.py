"""Seeding: an OOM episode from a real log becomes a model scenario, a schedule and a fidelity.

Design
======

A real log tells what the kernel did, not how its threads interleaved. Seeding turns one
parsed episode into a model input that makes the model do the same thing, in the same order:

1. **Variant.** The log's kernel version picks the nearest shipped release at or below it
   (``v4.5`` … ``v4.9``; 4.10 and later read as v4.9, older ones as v4.5). Without a version,
   oom:* reaper tracepoints (4.13+) read as v4.9, reaper lines as v4.6, anything else as v4.5.
   An rc of 4.6 is ``v4.6-rc1``; a 4.5 linux-next/mmotm build that shows reaper lines
   is ``seed-3of2`` (the reaper as linux-next carried it in early 2016). ``--variant`` wins.
2. **Scenario.** Each dimension is read from evidence in the episode (``scenario_for``), and
   the evidence is kept as notes so the user can see why: ``unable to reap`` → a thread stuck
   holding mmap_sem for write; several exiting threads → two victim threads; a kill "sharing
   same memory" → a CLONE_VM sharer; a sacrificed child → the allocator's child; another
   process in the task table → an independent process; freezer lines → the PM freezer;
   ``oom_kill_allocating_task`` (or a memcg OOM that killed the allocating task) → the sysctl.
3. **Schedule.** The log's events become a sequence of model event kinds (``TRACE_KINDS``);
   the model's own sequence comes from its event log plus the functions its threads enter
   (``model_sequence``). A bounded DFS (fewest preemptions first) and then a seeded random
   walk search schedules of the fixed scenario; the execution whose sequence has the longest
   common subsequence with the log's wins (ties: fewer preemptions, then the shorter input,
   then the first found). Everything is deterministic: same file, same input bytes.
4. **Check.** The winner is replayed from its canonical input; the replay must give the same
   sequence, and its fidelity (matched log events / log events, in order) is what is
   reported. Inputs with fidelity > 0 are accepted.

Nothing here touches a database: ``record_seeds`` takes the session its caller opened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..db.store import add_corpus_entry
from ..engine.execute import Execution, execute, replay
from ..engine.runtime.strategies import BoundedDFS, RandomWalk
from ..engine.scenario import DIMENSIONS, Scenario
from ..engine.variants import load_variant, variant_names
from ..fuzzer.corpus import write_input
from .episodes import Episode
from .events import Event, EventKind
from .parse import ParseResult

_K = EventKind

# Log event kind -> model event kind. Report furniture (version header, task rows, memcg lines,
# oom-kill: constraint) and the allocator's retry tracepoints say nothing about ordering.
TRACE_KINDS: dict[EventKind, str] = {
    _K.OOM_INVOKED: "oom_invoked",
    _K.KILL_SELECT: "kill_select",
    _K.KILLED: "killed",
    _K.MARK_VICTIM: "mark_victim",
    _K.WAKE_REAPER: "wake_reaper",
    _K.START_TASK_REAPING: "start_task_reaping",
    _K.REAPED: "reaped",
    _K.UNABLE_TO_REAP: "unable_to_reap",
    _K.FINISH_TASK_REAPING: "finish_task_reaping",
    _K.SKIP_TASK_REAPING: "skip_task_reaping",  # MODEL: no counterpart yet, never matched
    _K.SCHED_PROCESS_EXIT: "exit",
    _K.SCHED_PROCESS_FREE: "free",
    _K.OOM_DISABLED: "oom_disabled",
    _K.OOM_ENABLED: "oom_enabled",
}

# Model functions whose entry is a kernel-visible event. oom_invoked is dump_header(), which
# oom_kill_process() prints first; the reaper's start is oom_reap_task() (or the older
# __oom_reap_task() of the variants that have no oom_reap_task()).
ENTRY_EVENTS: dict[str, str] = {
    "oom_kill_process": "oom_invoked",
    "mark_oom_victim": "mark_victim",
    "wake_oom_reaper": "wake_reaper",
    "oom_killer_disable": "oom_disabled",
    "oom_killer_enable": "oom_enabled",
}
LOGGED_EVENTS = frozenset({"kill_select", "killed", "reaped", "unable_to_reap"})
# Tie order of events that fall on the same model step: the order the kernel prints them.
EVENT_ORDER = (
    "oom_disabled", "oom_invoked", "kill_select", "killed", "mark_victim", "wake_reaper",
    "start_task_reaping", "reaped", "unable_to_reap", "finish_task_reaping", "exit", "free",
    "oom_enabled",
)
_RANK = {kind: i for i, kind in enumerate(EVENT_ORDER)}
RELEASES = (((4, 5), "v4.5"), ((4, 6), "v4.6"), ((4, 7), "v4.7"), ((4, 8), "v4.8"), ((4, 9), "v4.9"))
DEFAULT_VARIANT = "v4.5"
REAPER_TRACEPOINTS = frozenset({_K.MARK_VICTIM, _K.WAKE_REAPER, _K.START_TASK_REAPING, _K.FINISH_TASK_REAPING,
                                _K.SKIP_TASK_REAPING})
SOURCE = "trace"


@dataclass(frozen=True)
class SeedConfig:
    """How hard to search: executions per strategy, DFS preemption bound, random seed."""

    dfs_executions: int = 400
    random_executions: int = 400
    max_preemptions: int = 2
    seed: int = 1


@dataclass
class EpisodeSeed:
    """What seeding made of one episode."""

    index: int
    variant: str
    variant_reason: str
    scenario: Scenario
    notes: list[str]
    trace_events: list[str]
    model_events: list[str] = field(default_factory=list)
    matched: int = 0
    executions: int = 0
    input: bytes | None = None
    replay_ok: bool = False

    @property
    def fidelity(self) -> float:
        return self.matched / len(self.trace_events) if self.trace_events else 0.0

    @property
    def accepted(self) -> bool:
        return self.input is not None and self.replay_ok and self.matched > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "episode": self.index,
            "variant": self.variant,
            "variant_reason": self.variant_reason,
            "scenario": self.scenario.as_dict(),
            "mapping": self.notes,
            "trace_events": self.trace_events,
            "model_events": self.model_events,
            "matched": self.matched,
            "fidelity": round(self.fidelity, 3),
            "executions": self.executions,
            "accepted": self.accepted,
            "input": self.input.hex() if self.input is not None else None,
        }


# ------------------------------------------------------------------------------------------------
# Variant and scenario from the log


def variant_for(episode: Episode, override: str | None = None) -> tuple[str, str]:
    """The variant to replay ``episode`` on, and why it was chosen."""
    if override:
        return override, "--variant"
    version, release = episode.kernel_version, episode.kernel_release
    kinds = {e.kind for e in episode.events}
    reaper_lines = bool(kinds & {_K.REAPED, _K.UNABLE_TO_REAP})
    if release is None:
        if kinds & REAPER_TRACEPOINTS:
            return "v4.9", "no kernel version; oom:* reaper tracepoints exist from 4.13 on"
        if reaper_lines:
            return "v4.6", "no kernel version; reaper lines exist from 4.6 on"
        return DEFAULT_VARIANT, "no kernel version in the log"
    lowered = (version or "").lower()
    if release[:2] == (4, 5) and reaper_lines and ("-next-2016" in lowered or "mmotm" in lowered):
        return "seed-3of2", f"{version}: linux-next/mmotm of early 2016 with reaper lines"
    if release[:2] == (4, 6) and "-rc" in lowered and "v4.6-rc1" in variant_names():
        return "v4.6-rc1", f"{version}: a 4.6 release candidate"
    chosen = DEFAULT_VARIANT
    for floor, name in RELEASES:
        if release[:2] >= floor:
            chosen = name
    if release[:2] < RELEASES[0][0]:
        return chosen, f"{version}: older than every model, the oldest is used"
    return chosen, f"{version}: nearest shipped release at or below it"


def scenario_for(episode: Episode, file_events: Sequence[Event] = ()) -> tuple[Scenario, list[str]]:
    """The scenario the episode's evidence points to, and one note per non-default choice."""
    notes: list[str] = []
    kinds = {e.kind for e in episode.events}
    kills = [e for e in episode.events if e.kind is _K.KILLED]
    shape = "run"
    exit_pids = {e.pid for e in episode.events if e.kind in (_K.SCHED_PROCESS_EXIT, _K.SCHED_PROCESS_FREE)}
    if _K.UNABLE_TO_REAP in kinds:
        shape = "run,stuck_writer"
        notes.append("shape run,stuck_writer: 'unable to reap' (a thread holds mmap_sem for write)")
    elif len(exit_pids) > 1:
        shape = "run,run"
        notes.append(f"shape run,run: {len(exit_pids)} victim threads exit")
    other = _other_for(episode, kills, notes)
    drivers = "alloc"
    if any(e.kind is _K.OOM_DISABLED for e in file_events):
        if _is_kernel_thread(episode.invoker_comm):
            drivers = "kalloc,freezer"
            notes.append(f"drivers kalloc,freezer: the kernel thread {episode.invoker_comm} invoked the OOM "
                         "killer and 'OOM killer disabled' (the PM freezer) is in the log")
        else:
            drivers = "alloc,freezer"
            notes.append("drivers alloc,freezer: 'OOM killer disabled' (the PM freezer) in the log")
    sysctl = "default"
    reasons = " ".join(str(e.fields.get("reason", "")) for e in kills).lower()
    if "oom_kill_allocating_task" in reasons:
        sysctl = "kill_allocating_task"
        notes.append("sysctl kill_allocating_task: the kill line names oom_kill_allocating_task")
    elif episode.memcg and episode.invoker_comm is not None and episode.invoker_comm == episode.victim_comm:
        # MODEL: no memcg in the model; a memcg OOM that kills the allocating task itself is
        # closest to the global OOM killer told to kill the allocating task.
        sysctl = "kill_allocating_task"
        notes.append("sysctl kill_allocating_task: memcg OOM killed the allocating task")
    return Scenario(shape=shape, other=other, drivers=drivers, mm="anon", sysctl=sysctl), notes


# Kernel threads that allocate and can invoke the OOM killer; their comm names them.
_KTHREAD_COMMS = ("kworker/", "kswapd", "kcompactd", "khugepaged", "kthreadd", "jbd2/", "kblockd")


def _is_kernel_thread(comm: str | None) -> bool:
    return comm is not None and comm.startswith(_KTHREAD_COMMS)


def _other_for(episode: Episode, kills: list[Event], notes: list[str]) -> str:
    if any(e.fields.get("sharing_mm") for e in kills):
        notes.append("other clone_vm: a kill 'sharing same memory'")
        return "clone_vm"
    selected = [e.pid for e in episode.events if e.kind is _K.KILL_SELECT]
    if selected and kills and kills[0].pid not in selected:
        notes.append("other alloc_child: a child was sacrificed instead of the selected process")
        return "alloc_child"
    known = set(episode.victim_pids) | {episode.invoker_pid}
    others = {e.pid for e in episode.task_rows if e.pid not in known}
    if others:
        notes.append(f"other indep: {len(others)} more processes in the task table")
        return "indep"
    return "none"


def trace_sequence(episode: Episode) -> list[str]:
    """The episode's events as model event kinds, in log order."""
    return [TRACE_KINDS[e.kind] for e in episode.events if e.kind in TRACE_KINDS]


# ------------------------------------------------------------------------------------------------
# The model's side


def model_sequence(ex: Execution) -> list[str]:
    """The kernel-visible events of a traced execution, in step order.

    The model logs selections, kills and reaper verdicts itself; the rest is read off the
    traced stacks: a function entered (its name appears on a thread's stack), exit_mm() left
    by a killed thread (sched_process_exit follows exit_mm in do_exit), a task freed.
    """
    k = ex.kernel
    found: list[tuple[int, int, str]] = [
        (step, _RANK[kind], kind) for kind, _, step in k.events if kind in LOGGED_EVENTS
    ]
    killed = {t.role for t in k.all_tasks if t.sigkill}
    reap_entry = "oom_reap_task" if hasattr(k, "oom_reap_task") else "__oom_reap_task"
    previous: dict[int, tuple[str, ...]] = {}
    for st in ex.run.trace:
        before = previous.get(st.tid, ())
        stack = st.stack
        for func, kind in ENTRY_EVENTS.items():
            if func in stack and func not in before:
                found.append((st.step, _RANK[kind], kind))
        if reap_entry in stack and reap_entry not in before:
            found.append((st.step, _RANK["start_task_reaping"], "start_task_reaping"))
        if reap_entry in before and reap_entry not in stack:
            found.append((st.step, _RANK["finish_task_reaping"], "finish_task_reaping"))
        if st.role in killed and "exit_mm" in before and "exit_mm" not in stack and "do_exit" in stack:
            found.append((st.step, _RANK["exit"], "exit"))
        for effect in st.effects:
            if effect.startswith("task ") and effect.endswith(" freed") and effect[5:-6] in killed:
                found.append((st.step, _RANK["free"], "free"))
        previous[st.tid] = stack
    found.sort()
    return [kind for _, _, kind in found]


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two event sequences."""
    if not a or not b:
        return 0
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0
        for j, y in enumerate(b, start=1):
            above = row[j]
            row[j] = diagonal + 1 if x == y else max(row[j], row[j - 1])
            diagonal = above
    return row[-1]


class FixedScenario:
    """A strategy wrapper: the scenario's data choices are fixed, so the search spends nothing
    on them (``execute`` overrides them anyway); later choices go to the wrapped strategy."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._skip = 0

    def begin(self) -> bool:
        self._skip = len(DIMENSIONS)
        return self.inner.begin()

    def pick(self, m: Any, decision: int, n_alt: int) -> int:
        return self.inner.pick(m, decision, n_alt)

    def choose(self, n: int) -> int:
        if self._skip:
            self._skip -= 1
            return 0
        return self.inner.choose(n)

    def end(self, result: Any) -> None:
        self.inner.end(result)


def search_schedule(variant: Any, scenario: Scenario, wanted: list[str], config: SeedConfig) -> tuple[Execution | None, int, int]:
    """The execution of ``scenario`` that best reproduces ``wanted``; (it, matched, executions)."""
    best: Execution | None = None
    best_key: tuple[int, int, int] | None = None
    runs = 0
    plans = (
        (BoundedDFS(config.max_preemptions), config.dfs_executions),
        (RandomWalk(config.seed), config.random_executions),
    )
    for inner, budget in plans:
        strategy = FixedScenario(inner)
        for _ in range(budget):
            if not strategy.begin():
                break
            ex = execute(variant, strategy, tracing=True, scenario=scenario)
            strategy.end(ex.run)
            runs += 1
            if ex.status == "engine_error":
                continue
            matched = lcs_length(wanted, model_sequence(ex))
            key = (-matched, ex.preemptions, len(ex.input))
            if best_key is None or key < best_key:
                best, best_key = ex, key
                if matched == len(wanted):
                    return best, matched, runs
    return best, (-best_key[0] if best_key else 0), runs


def seed_episode(episode: Episode, *, file_events: Sequence[Event] = (), variant: str | None = None,
                 config: SeedConfig = SeedConfig()) -> EpisodeSeed:
    """Map one episode, search its schedule, and check the winner by replay."""
    name, reason = variant_for(episode, variant)
    scenario, notes = scenario_for(episode, file_events)
    result = EpisodeSeed(episode.index, name, reason, scenario, notes, trace_sequence(episode))
    if not result.trace_events:
        return result
    kernel = load_variant(name)
    best, _, result.executions = search_schedule(kernel, scenario, result.trace_events, config)
    if best is None:
        return result
    again = replay(kernel, best.input, tracing=True)
    result.model_events = model_sequence(again)
    result.replay_ok = result.model_events == model_sequence(best) and again.input == best.input
    result.matched = lcs_length(result.trace_events, result.model_events)
    result.input = best.input
    return result


@dataclass
class FileSeed:
    """One log file's parse summary and what seeding made of each episode."""

    source: str
    parse: ParseResult
    episodes: list[EpisodeSeed]
    entries_added: int = 0
    corpus_added: int = 0

    @property
    def fidelity(self) -> float | None:
        """Matched log events / log events over every episode that had any."""
        total = sum(len(e.trace_events) for e in self.episodes)
        return sum(e.matched for e in self.episodes) / total if total else None

    def as_dict(self, strict: bool = False) -> dict[str, Any]:
        summary = self.parse.summary()
        out = dict(summary)
        out.update({
            "file": self.source,
            "entries_added": self.entries_added,
            "corpus_added": self.corpus_added,
            "fidelity": None if self.fidelity is None else round(self.fidelity, 3),
            "seeds": [e.as_dict() for e in self.episodes],
        })
        if strict:
            out["skipped"] = [{"line": s.line, "text": s.text} for s in self.parse.skipped]
        return out


def seed_parsed(parsed: ParseResult, *, variant: str | None = None, config: SeedConfig = SeedConfig()) -> FileSeed:
    """Seed every episode of a parsed log."""
    side = [e for e in parsed.events if e.kind in (_K.OOM_DISABLED, _K.OOM_ENABLED)]
    seeds = [seed_episode(ep, file_events=side, variant=variant, config=config) for ep in parsed.episodes]
    return FileSeed(parsed.source, parsed, seeds)


def record_seeds(file_seed: FileSeed, *, session: Any = None, corpus_dir: Path | None = None) -> None:
    """Store the accepted inputs: corpus entries in the caller's session and the corpus dir."""
    for ep in file_seed.episodes:
        if not ep.accepted or ep.input is None:
            continue
        if session is not None:
            detail = f"{file_seed.source}:episode {ep.index}"
            file_seed.entries_added += bool(add_corpus_entry(session, ep.variant, ep.input, SOURCE, detail))
        if corpus_dir is not None:
            file_seed.corpus_added += write_input(corpus_dir, ep.input)
