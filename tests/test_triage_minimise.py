"""`oomfuzz triage minimise`: a padded reproducer shrinks back, keeps its signature, is stored."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from oomfuzz.db.engine import make_engine, session_scope, upgrade
from oomfuzz.db.store import get_finding, record_hit
from oomfuzz.engine.execute import replay
from oomfuzz.engine.variants import load_variant

sys.path.insert(0, str(Path(__file__).parent))
from triage_fixtures import BZ03_A, hit_of, oomfuzz  # noqa: E402


def padded_bz03() -> bytes:
    """BZ-03 with one extra, useless preemption before the race (2 preemptions in all)."""
    raw = bytes.fromhex("05010000000002000e01")
    ex = replay(load_variant("seed-3of2"), raw)
    assert ex.finding is not None and ex.finding.known_bug == "BZ-03" and ex.preemptions == 2
    return raw


def test_minimise_shrinks_and_stores(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'min.db'}"
    engine = make_engine(url)
    upgrade(engine)
    raw = padded_bz03()
    with session_scope(engine) as session:
        finding_id, _ = record_hit(session, hit_of("seed-3of2", raw))
    with session_scope(engine) as session:
        before = get_finding(session, finding_id).preemptions
    engine.dispose()

    out = oomfuzz("triage", "minimise", str(finding_id), "--db", url, "--seconds", "10", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["deterministic"] is True
    assert result["before"]["preemptions"] == before == 2
    assert result["after"]["preemptions"] == 1 and result["stored"] is True
    shrunk = replay(load_variant("seed-3of2"), bytes.fromhex(result["input"]))
    assert shrunk.finding is not None and shrunk.finding.signature == "memdie_unpaired_exit|exit_oom_victim"

    missing = oomfuzz("triage", "minimise", "9999", "--db", url)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
