"""Same input, same trace: replay a sample of random schedules twice and compare byte for byte."""

import json

import pytest

from oomfuzz.engine.execute import execute, replay
from oomfuzz.engine.report import execution_json
from oomfuzz.engine.runtime.choices import ChoiceInput
from oomfuzz.engine.runtime.strategies import RandomWalk
from oomfuzz.engine.variants import load_variant, variant_names


@pytest.mark.parametrize("name", ["v4.5", "mmotm-2016-01", "seed-3of2"])
def test_random_schedules_replay_identically(name, seed):
    variant = load_variant(name)
    walk = RandomWalk(seed)
    for _ in range(40):
        first = execute(variant, walk)
        a = replay(variant, first.input, tracing=True)
        b = replay(variant, first.input, tracing=True)
        assert json.dumps(execution_json(a)) == json.dumps(execution_json(b))
        assert a.run.sites == first.run.sites  # tracing changes nothing
        assert (a.finding and a.finding.signature) == (first.finding and first.finding.signature)


@pytest.mark.parametrize("name", ["v4.5", "seed-3of2"])
def test_arbitrary_bytes_give_a_valid_run(name, seed):
    import random

    variant = load_variant(name)
    rng = random.Random(seed)
    for _ in range(60):
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 120)))
        ex = replay(variant, raw)
        assert ex.status in ("ok", "finding", "inconclusive")
        again = replay(variant, ex.input)  # the canonical form replays to the same result
        assert again.run.sites == ex.run.sites


def test_every_shipped_variant_loads():
    names = variant_names()
    assert names[:3] == ["v4.5", "mmotm-2016-01", "seed-3of2"]
    for name in names:
        assert load_variant(name).NAME == name
