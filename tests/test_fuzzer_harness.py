"""The harness: executions in, interleaving features and routed outcomes out; the instrumentation."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from pathlib import Path

from oomfuzz.engine.execute import replay
from oomfuzz.engine.runtime.choices import join_input, split_input
from oomfuzz.engine.variants import load_variant
from oomfuzz.fuzzer.corpus import scenario_seeds
from oomfuzz.fuzzer.coverage import CounterMap, interleaving_features
from oomfuzz.fuzzer.harness import Harness

BZ03 = bytes.fromhex("0501000000001101")
SEED_VARIANT = "seed-3of2"


def recording_counters(n: int = 512) -> tuple[CounterMap, list[int]]:
    hits: list[int] = []
    return CounterMap(list(range(1000, 1000 + n)), hits.append), hits


def test_harness_runs_inputs_and_feeds_counters(seed: int) -> None:
    counters, hits = recording_counters()
    harness = Harness(load_variant(SEED_VARIANT), counters=counters)
    rng = random.Random(seed)
    inputs = scenario_seeds()[:10] + [bytes(rng.randrange(256) for _ in range(rng.randrange(20))) for _ in range(10)]
    for raw in inputs:
        harness.run_input(raw)
    assert harness.stats.executions == 20
    assert hits and all(1000 <= h < 1512 for h in hits)
    assert len(harness.features) > 20
    assert harness.snapshot()["coverage"] == len(harness.features)


def test_the_race_has_features_the_default_schedule_lacks() -> None:
    variant = load_variant(SEED_VARIANT)
    data, _ = split_input(BZ03)
    race, calm = replay(variant, BZ03), replay(variant, join_input(data, []))
    assert race.finding is not None and calm.finding is None
    assert interleaving_features(race) - interleaving_features(calm)


def test_a_finding_is_recorded_and_fuzzing_goes_on() -> None:
    harness = Harness(load_variant(SEED_VARIANT))
    for raw in (BZ03, b"", BZ03, bytes([5, 1])):
        harness.run_input(raw)
    assert harness.stats.executions == 4
    (seen,) = [s for s in harness.seen.values() if s.known_bug == "BZ-03"]
    assert seen.hits == 2 and seen.preemptions == 1


def test_engine_errors_are_kept_apart_from_findings(tmp_path: Path) -> None:
    patch = tmp_path / "broken.py"
    patch.write_text(textwrap.dedent('''
        NAME = "seed-3of2+broken"
        PARENT = "seed-3of2"
        def exit_oom_victim(k, tsk):
            """mm/oom_kill.c:exit_oom_victim() @ test: a bug in our model."""
            raise RuntimeError("model bug")
            yield
    '''))
    harness = Harness(load_variant(str(patch)))
    harness.run_input(BZ03)
    assert harness.stats.engine_errors == 1
    assert not harness.seen
    assert "model bug" in harness.stats.error_samples[0]["error"]
    assert harness.stats.error_samples[0]["replay"].startswith("oomfuzz replay --variant seed-3of2+broken hex:")


def test_worker_instruments_the_model_and_not_the_runtime() -> None:
    code = textwrap.dedent('''
        from oomfuzz.fuzzer.worker import instrument_model
        instrument_model()
        from oomfuzz.engine.linux import oom_kill
        from oomfuzz.engine.runtime import primitives
        from oomfuzz.engine import execute
        mark = "__ATHERIS_INSTRUMENTED__"
        print(mark in oom_kill.oom_kill_process.__code__.co_consts,
              mark in primitives.spin_lock.__code__.co_consts, mark in execute.execute.__code__.co_consts)
    ''')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "False"]
