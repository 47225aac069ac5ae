"""`oomfuzz triage status|dup|undup` and reopen on recurrence, against SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from oomfuzz.db.engine import make_engine, session_scope
from oomfuzz.db.store import history, record_hit
from oomfuzz.db.testing import empty_db, scratch_postgres  # noqa: F401  (fixtures)

sys.path.insert(0, str(Path(__file__).parent))
from triage_fixtures import BZ03_A, fill, hit_of, oomfuzz  # noqa: E402


def show(url: str, finding_id: int) -> dict:
    out = oomfuzz("triage", "show", str(finding_id), "--db", url, "--no-matrix", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_lifecycle(empty_db) -> None:
    url = empty_db.render_as_string(hide_password=False)
    ids = fill(url)
    bz03, bz04, bz07 = ids["BZ-03"], ids["BZ-04"], ids["BZ-07"]

    ok = oomfuzz("triage", "status", str(bz03), "confirmed", "--note", "replays on seed-3of2", "--db", url, "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["new"] == "confirmed"
    assert oomfuzz("triage", "status", str(bz03), "fixed", "--db", url).returncode == 0
    same = oomfuzz("triage", "status", str(bz03), "fixed", "--db", url, "--json")
    assert json.loads(same.stdout)["changed"] is False
    bad = oomfuzz("triage", "status", str(bz03), "closed", "--db", url)
    assert bad.returncode == 2

    # A fixed finding hit again is reopened, not duplicated.
    engine = make_engine(url)
    with session_scope(engine) as session:
        again_id, is_new = record_hit(session, hit_of("seed-3of2", BZ03_A))
    assert (again_id, is_new) == (bz03, False)
    detail = show(url, bz03)
    assert detail["status"] == "new" and detail["hits"] == 2
    actions = [(e["action"], e["old"], e["new"]) for e in detail["history"]]
    assert actions == [("status", "new", "confirmed"), ("status", "confirmed", "fixed"), ("reopen", "fixed", "new")]
    assert detail["history"][0]["note"] == "replays on seed-3of2" and "@" in detail["history"][0]["actor"]

    # dup / undup, including the refusals.
    assert oomfuzz("triage", "dup", str(bz07), "--of", str(bz04), "--db", url).returncode == 0
    assert oomfuzz("triage", "dup", str(bz04), "--of", str(bz07), "--db", url).returncode == 2  # a cycle
    assert oomfuzz("triage", "dup", str(bz07), "--of", "999", "--db", url).returncode == 2
    refused = oomfuzz("triage", "status", str(bz07), "confirmed", "--db", url)
    assert refused.returncode == 2 and "unmark it first" in refused.stderr
    listed = json.loads(oomfuzz("triage", "list", "--status", "duplicate", "--db", url, "--json").stdout)
    assert [(r["id"], r["duplicate_of"]) for r in listed["findings"]] == [(bz07, bz04)]
    assert oomfuzz("triage", "undup", str(bz07), "--db", url).returncode == 0
    assert oomfuzz("triage", "undup", str(bz07), "--db", url).returncode == 2
    with session_scope(engine) as session:
        events = [(e.action, e.old_value, e.new_value) for e in history(session, bz07)]
    engine.dispose()
    assert events == [("dup", "new", str(bz04)), ("undup", str(bz04), "new")]
