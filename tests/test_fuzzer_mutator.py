"""The structure-aware mutator: outputs decode, fit, and change one structural element."""

from __future__ import annotations

import random

from oomfuzz.engine.execute import execute, replay
from oomfuzz.engine.runtime.choices import (
    MAX_CHANGE_POINTS, PriorityInput, input_data, is_priority_form, join_input, split_input,
)
from oomfuzz.engine.runtime.strategies import RandomWalk
from oomfuzz.engine.scenario import DIMENSIONS, Scenario
from oomfuzz.engine.variants import load_variant
from oomfuzz.fuzzer import mutator
from oomfuzz.fuzzer.scenarios import ScenarioScheduler

BZ03 = bytes.fromhex("0501000000001101")


def test_mutants_decode_fit_and_usually_change_structure(seed: int) -> None:
    rng = random.Random(seed)
    variant = load_variant("seed-3of2")
    raw, changed = BZ03, 0
    for i in range(300):
        out = mutator.mutate_structure(raw, 64, rng)
        assert len(out) <= 64
        assert join_input(*split_input(out)) == out  # the structure round-trips
        changed += split_input(out) != split_input(raw)
        if i % 30 == 0:
            assert replay(variant, out).status != "engine_error"
        raw = out if rng.random() < 0.7 else BZ03
    assert changed > 200


def test_insert_and_drop_change_the_number_of_preemptions(seed: int) -> None:
    rng = random.Random(seed)
    data, pairs = bytearray(b"\1\0\0\0\0"), [(17, 1), (3, 2)]
    mutator.insert_pair(data, pairs, rng)
    assert len(pairs) == 3
    mutator.drop_pair(data, pairs, rng)
    mutator.drop_pair(data, pairs, rng)
    assert len(pairs) == 1


def test_drop_keeps_later_preemptions_at_their_decision_points() -> None:
    pairs = [(4, 1), (2, 7), (5, 3)]
    mutator.drop_pair(bytearray(), pairs, random.Random(1))
    absolute = []
    at = -1
    for gap, target in pairs:
        at += gap + 1
        absolute.append((at, target))
    original = [(4, 1), (7, 7), (13, 3)]
    assert all(p in original for p in absolute) and len(absolute) == 2


def test_move_keeps_the_following_pair_in_place(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        pairs = [(5, 1), (5, 2)]
        mutator.move_pair(bytearray(), pairs, rng)
        assert all(g >= 0 for g, _ in pairs)
        assert pairs[0][0] + pairs[1][0] == 10 or pairs[0] == (5, 1)  # moved the last pair


def test_scenario_changes_stay_inside_each_dimension(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        data = bytearray()
        mutator.change_scenario(data, [], rng)
        for i, value in enumerate(data[: len(DIMENSIONS)]):
            assert value < len(DIMENSIONS[i][1])


# shape=fault other=indep_big drivers=alloc,alloc mm=aio: the scenario of BZ-04 on seed-3of2.
BZ04_SCENARIO = bytes.fromhex("050407010300")


def test_reschedule_keeps_the_scenario_or_changes_one_dimension(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        out = mutator.reschedule(BZ04_SCENARIO, 512, rng)
        assert is_priority_form(out) and len(out) <= 512
        data = input_data(out)
        assert sum(a != b for a, b in zip(data, BZ04_SCENARIO[1:])) <= 1


def test_priority_schedules_reach_bz04_where_single_deviations_need_dozens() -> None:
    variant = load_variant("seed-3of2")
    rng = random.Random(3)
    bugs, deviations = set(), []
    for _ in range(150):
        out = mutator.random_schedule(BZ04_SCENARIO[1:], rng)
        ex = replay(variant, out)
        assert ex.status != "engine_error"
        assert replay(variant, ex.input).run.sites == ex.run.sites  # the canonical form replays it
        if ex.finding is not None and ex.finding.known_bug == "BZ-04":
            bugs.add("BZ-04")
            deviations.append(ex.preemptions)
    assert "BZ-04" in bugs and min(deviations) > 5


def test_priority_mutants_change_one_element(seed: int) -> None:
    rng = random.Random(seed)
    raw = mutator.random_schedule(BZ04_SCENARIO[1:], rng)
    changed = 0
    for _ in range(300):
        out = mutator.mutate_priorities(raw, 512, rng)
        before, after = PriorityInput.decode(raw), PriorityInput.decode(out)
        diffs = (
            sum(a != b for a, b in zip(before.data, after.data))
            + sum(a != b for a, b in zip(before.threads, after.threads))
            + (before.timer != after.timer)
            + (before.change_points != after.change_points)
        )
        assert diffs <= 1 and len(after.change_points) <= MAX_CHANGE_POINTS
        changed += diffs
    assert changed > 200


def test_generate_and_reschedule_are_deterministic_per_seed() -> None:
    # (the hook's other branch, atheris.Mutate, only runs inside atheris.Fuzz)
    variant = load_variant("v4.6-rc1")
    for seed in range(20):
        assert mutator.generate(128, random.Random(seed)) == mutator.generate(128, random.Random(seed))
        a = mutator.reschedule(BZ03, 128, random.Random(seed))
        assert a == mutator.reschedule(BZ03, 128, random.Random(seed)) and len(a) <= 128
    fresh = mutator.generate(64, random.Random(1))
    assert len(fresh) <= 64 and replay(variant, fresh).status != "engine_error"


def test_generate_draws_scenarios_from_the_scheduler(seed: int) -> None:
    scenarios = ScenarioScheduler()
    rich, poor = BZ04_SCENARIO[1:], bytes(5)
    for _ in range(50):
        scenarios.credit(rich, 20)
        scenarios.credit(poor, 0)
    rng = random.Random(seed)
    drawn = [input_data(mutator.generate(512, rng, scenarios)) for _ in range(400)]
    assert drawn.count(rich) > 5 * max(1, drawn.count(poor))
    assert len(set(drawn)) > 50  # the uniform share keeps every scenario in play


def test_random_walks_fit_and_reach_races_as_often_as_the_random_baseline() -> None:
    """A walk input is the random scheduler written down: on one scenario it hits BZ-04 (on
    mmotm-2016-01, with other=indep_aio: a few short preemptions) about as often."""
    variant = load_variant("mmotm-2016-01")
    scenario = Scenario(shape="run", other="indep_aio", drivers="alloc,alloc", mm="aio")
    data = bytes(scenario.choices())
    rng = random.Random(2)
    walks = [mutator.random_walk(data, 512, rng) for _ in range(300)]
    assert all(len(w) <= 512 and not is_priority_form(w) and input_data(w) == data for w in walks)
    assert len(mutator.random_walk(data, 40, rng)) <= 40
    by_walk = sum(1 for w in walks if (ex := replay(variant, w)).finding and ex.finding.known_bug == "BZ-04")
    baseline = RandomWalk(2)
    by_random = 0
    for _ in range(300):
        ex = execute(variant, baseline, scenario=scenario)
        by_random += bool(ex.finding and ex.finding.known_bug == "BZ-04")
    assert by_random > 0 and by_walk >= by_random // 2, (by_walk, by_random)
