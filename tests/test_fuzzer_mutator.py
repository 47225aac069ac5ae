"""The structure-aware mutator: outputs decode, fit, and change one structural element."""

from __future__ import annotations

import random

from oomfuzz.engine.execute import replay
from oomfuzz.engine.runtime.choices import join_input, split_input
from oomfuzz.engine.scenario import DIMENSIONS
from oomfuzz.engine.variants import load_variant
from oomfuzz.fuzzer import mutator

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


# other=indep_big drivers=alloc,alloc: the scenario in which PCT schedules reach BZ-04.
BZ04_SCENARIO = bytes.fromhex("050407010300")


def test_reschedule_keeps_the_scenario_and_replays_what_it_ran() -> None:
    variant = load_variant("seed-3of2")
    rng = random.Random(3)
    bugs = set()
    for _ in range(200):
        out = mutator.reschedule(variant, BZ04_SCENARIO, 512, rng)
        assert len(out) <= 512
        data, _ = split_input(out)
        ex = replay(variant, out)
        assert ex.input == out  # canonical: what PCT ran is exactly what the bytes replay
        assert ex.status != "engine_error"
        if data[:5] == BZ04_SCENARIO[1:]:
            bugs.add(ex.finding.known_bug if ex.finding else None)
    assert "BZ-04" in bugs  # one low-priority reaper is enough, where single deviations need dozens


def test_generate_and_reschedule_are_deterministic_per_seed() -> None:
    # (the hook's other branch, atheris.Mutate, only runs inside atheris.Fuzz)
    variant = load_variant("v4.6-rc1")
    for seed in range(20):
        assert mutator.generate(variant, 128, random.Random(seed)) == mutator.generate(variant, 128, random.Random(seed))
        a = mutator.reschedule(variant, BZ03, 128, random.Random(seed))
        assert a == mutator.reschedule(variant, BZ03, 128, random.Random(seed)) and len(a) <= 128
    fresh = mutator.generate(variant, 64, random.Random(1))
    assert len(fresh) <= 64 and replay(variant, fresh).status != "engine_error"
