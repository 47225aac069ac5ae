"""Which scenario a fresh input explores: a bandit over scenarios, paid in new coverage.

Design
======

Most races need one particular cast (BZ-04 needs two allocators, an independent process big
enough to be the first victim and a second victim stuck in ``exit_aio``: one scenario of over
two thousand). Drawn uniformly, such a scenario comes up once in a few thousand fresh inputs,
and then its schedule must be right too. Scenarios differ in how much there is to find in
them: a lone allocator and a one-thread victim run out of new interleavings after a few dozen
schedules, a five-thread cast keeps producing new ones for much longer. So the fuzzer spends
its fresh inputs where fresh inputs have paid, as Entropic and AFLFast spend mutations on seeds:

* every execution the harness observes credits its scenario with the interleaving features
  it added to the campaign (``credit``);
* ``draw`` picks a uniformly random scenario with probability ``EXPLORE`` (so every scenario
  keeps being tried and none is starved), otherwise a scenario already seen, with weight
  (features it added + 1) / (executions + 1): its yield per execution so far.

Scenarios are keyed by their data bytes. The weights are rebuilt every ``REFRESH`` draws,
not on every draw, so a draw stays cheap next to an execution. Nothing here is random except
through the ``rng`` the caller passes (the mutator's, seeded by libFuzzer).
"""

from __future__ import annotations

import random
from itertools import accumulate
from bisect import bisect

from ..engine.scenario import DIMENSIONS

EXPLORE = 0.3
REFRESH = 64
DIM_SIZES = tuple(len(values) for _, values in DIMENSIONS)  # how many values each dimension has


def random_scenario(rng: random.Random) -> bytes:
    """The data bytes of a uniformly random scenario."""
    return bytes(rng.randrange(size) for size in DIM_SIZES)


class ScenarioScheduler:
    """Per-scenario executions and coverage yield; draws scenarios in proportion to yield."""

    def __init__(self) -> None:
        self.stats: dict[bytes, list[int]] = {}  # data bytes -> [executions, new features]
        self._keys: list[bytes] = []
        self._cumulative: list[float] = []
        self._draws = 0

    def credit(self, data: bytes, new_features: int) -> None:
        """One execution of scenario ``data`` added ``new_features`` to the campaign."""
        entry = self.stats.get(data)
        if entry is None:
            entry = self.stats[data] = [0, 0]
        entry[0] += 1
        entry[1] += new_features

    def weight(self, data: bytes) -> float:
        runs, gained = self.stats.get(data, (0, 0))
        return (gained + 1) / (runs + 1)

    def draw(self, rng: random.Random) -> bytes:
        """A scenario for a fresh input."""
        if not self.stats or rng.random() < EXPLORE:
            return random_scenario(rng)
        if self._draws % REFRESH == 0 or not self._keys:
            self._keys = list(self.stats)
            self._cumulative = list(accumulate(self.weight(key) for key in self._keys))
        self._draws += 1
        point = rng.random() * self._cumulative[-1]
        return self._keys[min(bisect(self._cumulative, point), len(self._keys) - 1)]
