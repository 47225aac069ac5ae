"""The fuzz harness: one input (or one strategy execution) in, invariants checked, feedback out.

Design
======

Every engine of a campaign goes through ``Harness.observe``: Atheris hands bytes to
``run_input`` (bytes -> ``replay`` -> one execution), the random and PCT baselines hand it
executions they drove themselves. ``observe`` then

* computes the execution's interleaving features (``coverage.py``) and feeds them to the
  reserved libFuzzer counters (a no-op for the baselines), counting distinct features as the
  campaign's comparable coverage figure, and credits the new ones to the execution's scenario
  (``scenarios.py``: where Atheris's fresh inputs go next);
* routes the outcome: a finding is counted per signature (``Seen``) and handed to the
  recorder, and the campaign goes on (a violation never stops fuzzing); an ``engine_error``
  (an exception in our model or runtime) is kept apart, never a finding, with its replay
  command; ``inconclusive`` runs are only counted.

Nothing here raises on a kernel finding; an exception out of ``observe`` is a bug in the
harness itself and is allowed to crash the job loudly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..engine.execute import Execution, replay, replay_command
from ..engine.runtime.choices import with_data
from .coverage import CounterMap, interleaving_features
from .scenarios import ScenarioScheduler

MAX_ENGINE_ERRORS_KEPT = 5


@dataclass
class Seen:
    """One signature as this process saw it."""

    signature: str
    invariant: str
    title: str
    known_bug: str | None
    variant: str
    input: bytes
    preemptions: int
    steps: int
    first_seconds: float
    first_execution: int
    hits: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "signature": self.signature, "invariant": self.invariant, "title": self.title,
            "known_bug": self.known_bug, "variant": self.variant, "input": self.input.hex(),
            "preemptions": self.preemptions, "steps": self.steps, "first_seconds": round(self.first_seconds, 3),
            "first_execution": self.first_execution, "hits": self.hits,
        }


@dataclass
class HarnessStats:
    executions: int = 0
    inconclusive: int = 0
    engine_errors: int = 0
    error_samples: list[dict[str, str]] = field(default_factory=list)


class Harness:
    """Runs executions of one variant and routes their outcomes."""

    def __init__(self, variant: Any, recorder: Any = None, counters: CounterMap | None = None,
                 fixed_data: bytes | None = None, scenarios: ScenarioScheduler | None = None) -> None:
        self.variant = variant
        self.scenarios = scenarios  # credited with each execution's new features (Atheris only)
        self.recorder = recorder
        self.counters = counters or CounterMap.disabled()
        self.fixed_data = fixed_data  # force the scenario bytes (the reference-scenario benchmark)
        self.stats = HarnessStats()
        self.features: set[int] = set()
        self.seen: dict[str, Seen] = {}
        self.started = time.monotonic()

    def run_input(self, raw: bytes) -> Execution:
        """Atheris's entry: decode ``raw`` (total), execute, observe."""
        if self.fixed_data is not None:
            raw = with_data(raw, self.fixed_data)
        ex = replay(self.variant, raw)
        self.observe(ex)
        return ex

    def observe(self, ex: Execution) -> int:
        """Count one execution; returns how many features were new to this process."""
        self.stats.executions += 1
        status = ex.status
        if status == "engine_error":
            self._engine_error(ex)
            return 0
        features = interleaving_features(ex)
        self.counters.feed(features)
        new = features - self.features
        if new:
            self.features |= new
        if self.scenarios is not None:
            self.scenarios.credit(bytes(ex.scenario.choices()), len(new))
        if status == "finding":
            self._finding(ex)
        elif status == "inconclusive":
            self.stats.inconclusive += 1
        return len(new)

    def _finding(self, ex: Execution) -> None:
        f = ex.finding
        seen = self.seen.get(f.signature)
        if seen is None:
            self.seen[f.signature] = Seen(
                f.signature, f.invariant, f.title, f.known_bug, ex.variant, ex.input, ex.preemptions, ex.steps,
                time.monotonic() - self.started, self.stats.executions,
            )
        else:
            seen.hits += 1
            if (ex.preemptions, ex.steps) < (seen.preemptions, seen.steps):
                seen.input, seen.preemptions, seen.steps = ex.input, ex.preemptions, ex.steps
        if self.recorder is not None:
            self.recorder.hit(ex)

    def _engine_error(self, ex: Execution) -> None:
        self.stats.engine_errors += 1
        if len(self.stats.error_samples) < MAX_ENGINE_ERRORS_KEPT:
            error = (ex.run.error or ex.run.outcome.name).strip().splitlines()
            self.stats.error_samples.append(
                {"variant": ex.variant, "error": error[-1] if error else "", "replay": replay_command(ex.variant, ex.input)}
            )

    def snapshot(self) -> dict[str, Any]:
        """What the job reports to its parent: totals and every signature seen."""
        elapsed = time.monotonic() - self.started
        return {
            "variant": self.variant.NAME,
            "executions": self.stats.executions,
            "seconds": round(elapsed, 3),
            "coverage": len(self.features),
            "inconclusive": self.stats.inconclusive,
            "engine_errors": self.stats.engine_errors,
            "error_samples": self.stats.error_samples,
            "findings": [s.as_dict() for s in self.seen.values()],
        }
