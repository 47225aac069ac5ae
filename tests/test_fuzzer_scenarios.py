"""The scenario scheduler: fresh inputs go where coverage has paid, and nowhere is starved."""

from __future__ import annotations

import random

from oomfuzz.engine.scenario import DIMENSIONS
from oomfuzz.fuzzer.scenarios import EXPLORE, ScenarioScheduler, random_scenario


def test_an_empty_scheduler_draws_uniform_valid_scenarios(seed: int) -> None:
    rng = random.Random(seed)
    scenarios = ScenarioScheduler()
    for _ in range(200):
        data = scenarios.draw(rng)
        assert len(data) == len(DIMENSIONS)
        assert all(v < len(values) for v, (_, values) in zip(data, DIMENSIONS))


def test_yield_per_execution_sets_the_odds(seed: int) -> None:
    scenarios = ScenarioScheduler()
    a, b, c = b"\x01\x00\x00\x00\x00", b"\x02\x00\x00\x00\x00", b"\x03\x00\x00\x00\x00"
    for _ in range(30):
        scenarios.credit(a, 9)  # keeps paying
        scenarios.credit(b, 0)  # ran dry
    scenarios.credit(c, 0)
    assert scenarios.weight(a) > 5 * scenarios.weight(b)
    rng = random.Random(seed)
    drawn = [scenarios.draw(rng) for _ in range(3000)]
    assert drawn.count(a) > 5 * drawn.count(b)
    others = sum(1 for d in drawn if d not in (a, b, c))
    assert abs(others / len(drawn) - EXPLORE) < 0.05  # the uniform share


def test_draws_are_a_function_of_the_rng_and_the_credits() -> None:
    def run() -> list[bytes]:
        rng = random.Random(11)
        scenarios = ScenarioScheduler()
        out = []
        for i in range(500):
            data = scenarios.draw(rng)
            scenarios.credit(data, i % 7)
            out.append(data)
        return out

    assert run() == run()
    assert random_scenario(random.Random(3)) == random_scenario(random.Random(3))
