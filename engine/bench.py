"""The engine benchmark: executions per second on one core for a reference scenario."""

from __future__ import annotations

import cProfile
import io
import pstats
import random
import time
from typing import Any

from .execute import execute
from .runtime.choices import join_input
from .runtime.strategies import Replay
from .scenario import Scenario
from .variants import load_variant

REFERENCE_VARIANT = "seed-3of2"
REFERENCE = Scenario(shape="run,run", other="none", drivers="alloc", mm="anon")


def reference_inputs(count: int, seed: int = 1) -> list[bytes]:
    """Fuzzer-like inputs of the reference scenario: 0 to 3 random preemptions each."""
    rng = random.Random(seed)
    data = bytes(REFERENCE.choices())
    inputs = []
    for _ in range(count):
        pairs = [(rng.randrange(12), rng.randrange(256)) for _ in range(rng.randrange(4))]
        inputs.append(join_input(data, pairs))
    return inputs


def _run(variant: Any, inputs: list[bytes], seconds: float) -> tuple[int, float, int, int]:
    n = steps = findings = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for raw in inputs:
            ex = execute(variant, Replay(raw))
            n += 1
            steps += ex.steps
            findings += ex.finding is not None
    return n, time.perf_counter() - start, steps, findings


def bench_engine(seconds: float = 10.0, profile: bool = False) -> dict[str, Any]:
    """Run the reference executions for about ``seconds`` and report the rate."""
    variant = load_variant(REFERENCE_VARIANT)
    inputs = reference_inputs(256)
    _run(variant, inputs[:16], 0.2)  # warm up imports and caches
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    n, elapsed, steps, findings = _run(variant, inputs, seconds)
    result: dict[str, Any] = {
        "reference": f"{REFERENCE_VARIANT}: {REFERENCE.describe()} (two-thread victim, allocator, reaper)",
        "executions": n,
        "seconds": round(elapsed, 3),
        "exec_per_second": round(n / elapsed, 1),
        "steps_per_execution": round(steps / n, 1) if n else 0.0,
        "findings": findings,
    }
    if profiler:
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
        result["profile"] = out.getvalue()
    return result
