"""`oomfuzz triage matrix`/`verify`/`replay`/`list`: the issue-4 verdicts for BZ-03, BZ-04, BZ-07."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from triage_fixtures import fill, oomfuzz  # noqa: E402

SEARCH = "400"  # DFS executions per variant without a stored witness: enough to keep these fast


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, int]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('triage') / 'findings.db'}"
    return url, fill(url)


def matrix(db: tuple[str, dict[str, int]], bug: str) -> dict:
    url, ids = db
    out = oomfuzz("triage", "matrix", str(ids[bug]), "--db", url, "--search", SEARCH, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_bz03_exists_on_seed_only_fixed_in_v4_6_rc1(db):
    m = matrix(db, "BZ-03")
    assert m["exists_on"] == ["seed-3of2"]
    assert (m["introduced_in"], m["fixed_in"]) == (["seed-3of2"], ["v4.6-rc1"])
    assert m["decided_by"] == "signature"


def test_bz04_exists_on_mmotm_and_seed(db):
    m = matrix(db, "BZ-04")
    assert m["exists_on"] == ["mmotm-2016-01", "seed-3of2"]
    assert (m["introduced_in"], m["fixed_in"]) == (["mmotm-2016-01"], ["v4.6-rc1"])
    evidence = {c["variant"]: c["evidence"] for c in m["variants"]}
    # The mmotm reproducer runs clean on seed-3of2: the fuzzer's own seed-3of2 hit proves it there.
    assert (evidence["mmotm-2016-01"], evidence["seed-3of2"]) == ("reproducer", "hit")


def test_bz07_exists_on_v4_6_rc1_only(db):
    m = matrix(db, "BZ-07")
    assert m["exists_on"] == ["v4.6-rc1"]
    assert (m["introduced_in"], m["fixed_in"]) == (["v4.6-rc1"], ["v4.6"])


def test_matrix_includes_a_user_variant_file(db, tmp_path):
    """A finding seen on examples/seed_test_and_clear.py gets that file as a column, vs its parent."""
    from triage_fixtures import BZ03_A, hit_of
    from oomfuzz.db.engine import make_engine, session_scope
    from oomfuzz.db.store import record_hit
    from oomfuzz.engine.variants import load_variant

    url, ids = db
    user = str(Path(__file__).parents[1] / "examples" / "seed_test_and_clear.py")
    load_variant(user)
    hit = hit_of("seed-3of2", BZ03_A)
    engine = make_engine(url)
    with session_scope(engine) as session:  # the seed-3of2 hit, counted as if fuzzing the user file
        record_hit(session, type(hit)(**{**hit.__dict__, "variant": user}))
    engine.dispose()
    m = matrix(db, "BZ-03")
    assert m["variants"][-1]["variant"] == user and not m["variants"][-1]["exists"]
    assert user in m["fixed_in"]  # its parent seed-3of2 has the race, the file does not


def test_verify_exit_codes(db):
    url, ids = db
    fixed = oomfuzz("triage", "verify", str(ids["BZ-03"]), "--variant", "v4.6-rc1", "--search", "200", "--db", url)
    assert fixed.returncode == 0 and "looks fixed" in fixed.stdout
    still = oomfuzz("triage", "verify", str(ids["BZ-03"]), "--variant", "seed-3of2", "--db", url, "--json")
    assert still.returncode == 1
    assert json.loads(still.stdout)["fixed"] is False


def test_replay_and_list(db):
    url, ids = db
    out = oomfuzz("triage", "replay", str(ids["BZ-03"]), "--db", url)
    assert out.returncode == 0 and "exit_oom_victim" in out.stdout and "reproduces on seed-3of2" in out.stdout
    other = oomfuzz("triage", "replay", str(ids["BZ-03"]), "--variant", "v4.6", "--db", url, "--json")
    assert other.returncode == 0 and json.loads(other.stdout)["reproduced"] is False
    rows = json.loads(oomfuzz("triage", "list", "--db", url, "--json", "--sort", "preemptions").stdout)["findings"]
    assert {r["known_bug"] for r in rows} == {"BZ-03", "BZ-04", "BZ-07"}
    assert [r["preemptions"] for r in rows] == sorted(r["preemptions"] for r in rows)
    plain = oomfuzz("triage", "list", "--db", url, "--invariant", "reap_request_dropped")
    assert plain.returncode == 0 and "BZ-04" in plain.stdout and "BZ-03" not in plain.stdout
    assert "│" not in plain.stdout and "┃" not in plain.stdout  # piped: plain text, no box drawing


def test_usage_and_infrastructure_exit_codes(db, tmp_path):
    url, ids = db
    missing = oomfuzz("triage", "show", "999", "--db", url, "--no-matrix")
    assert missing.returncode == 2 and missing.stderr.strip() == "oomfuzz: error: no finding #999"
    bad_variant = oomfuzz("triage", "verify", str(ids["BZ-03"]), "--variant", "v9.9", "--db", url)
    assert bad_variant.returncode == 2 and "unknown variant 'v9.9'" in bad_variant.stderr
    down = oomfuzz("triage", "list", "--db", "postgresql://nobody@127.0.0.1:1/x")
    assert down.returncode == 3 and down.stderr.count("\n") == 1 and "cannot reach PostgreSQL" in down.stderr
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    corrupt = oomfuzz("triage", "stats", "--db", f"sqlite:///{garbage}")
    assert corrupt.returncode == 3 and "not a usable SQLite database" in corrupt.stderr


def test_stats(db):
    url, _ = db
    s = json.loads(oomfuzz("triage", "stats", "--db", url, "--json").stdout)
    assert s["findings"] == 3 and s["known_bugs"] == ["BZ-03", "BZ-04", "BZ-07"]
    assert s["findings_over_time"][-1]["total"] == 3
