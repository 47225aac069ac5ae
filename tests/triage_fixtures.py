"""Shared by tests/test_triage_*.py: findings recorded from pinned inputs, and running the CLI."""

from __future__ import annotations

import subprocess
import sys

from oomfuzz.db.engine import make_engine, session_scope, upgrade
from oomfuzz.db.store import HitRecord, record_hit
from oomfuzz.engine.execute import replay, replay_command
from oomfuzz.engine.variants import load_variant
from oomfuzz.fuzzer.recorder import trace_json

from pinned_inputs import BZ03_A, BZ04_MMOTM, BZ04_SEED, BZ07_RC1  # noqa: E402,F401  (tests/ is on sys.path)

# What `oomfuzz fuzz --variant all` leaves behind for these three bugs: BZ-04 hit on both
# variants that have it, with a different input each (the same bytes do not race on both).
HITS = (("seed-3of2", BZ03_A), ("mmotm-2016-01", BZ04_MMOTM), ("seed-3of2", BZ04_SEED), ("v4.6-rc1", BZ07_RC1))


def hit_of(variant_name: str, raw: bytes) -> HitRecord:
    """The HitRecord the fuzzer would write for ``raw`` on ``variant_name``."""
    variant = load_variant(variant_name)
    ex = replay(variant, raw)
    f = ex.finding
    assert f is not None, (variant_name, raw.hex())
    return HitRecord(f.signature, f.invariant, f.title, f.known_bug, variant_name, ex.input, ex.preemptions,
                     ex.steps, trace_json(variant, raw), replay_command(variant_name, ex.input))


def fill(url: str) -> dict[str, int]:
    """Record HITS into the database at ``url``; returns {known bug: finding id}."""
    engine = make_engine(url)
    upgrade(engine)
    ids = {}
    try:
        for variant_name, raw in HITS:
            hit = hit_of(variant_name, raw)
            with session_scope(engine) as session:
                ids[hit.known_bug] = record_hit(session, hit)[0]
    finally:
        engine.dispose()
    return ids


def oomfuzz(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `oomfuzz` entry point (exit codes and stderr as a user sees them)."""
    code = "import sys; from oomfuzz.cli import main; sys.argv[0] = 'oomfuzz'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)
