"""Shared by tests/test_triage_*.py: findings recorded from pinned inputs, and running the CLI."""

from __future__ import annotations

import subprocess
import sys

from oomfuzz.db.engine import make_engine, session_scope, upgrade
from oomfuzz.db.store import HitRecord, record_hit
from oomfuzz.engine.execute import replay, replay_command
from oomfuzz.engine.variants import load_variant
from oomfuzz.fuzzer.recorder import trace_json

# The pinned inputs of tests/test_known_bugs_2016.py (BZ-03 form a, BZ-04 on both variants).
BZ03_A = bytes.fromhex("0501000000001101")
BZ04_MMOTM = bytes.fromhex(
    "050607010000000000020102000200020002000100010000000000000001010001000000020000000100020001000100"
    "020001000100000000000000040100010001000101020000000000000102010100020002000000000002020000010001"
    "000000000000020201010001000200000201000000010000000102000000010000000200"
)
BZ04_SEED = bytes.fromhex(
    "050607010000010100020001000300000100020100000000000000000000010001000100010000000000000002000100"
    "030003000000010000000300000000000200010000000001000101000101000000010000000100020100000000000000"
    "000100020000000100020001000002020102010100010001000101020000010200020000010202000000000100000101"
    "00010100050001000200000001000000"
)
# BZ-07 on v4.6-rc1 through the alloc_child scenario (other=alloc_child, kill_allocating_task):
# the schedule of tests/test_variant_v4_6.py without the test-local re-parenting.
BZ07_RC1 = bytes.fromhex("050006000001000201020f02")

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
