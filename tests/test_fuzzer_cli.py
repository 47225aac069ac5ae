"""`oomfuzz fuzz` end to end in a subprocess: real findings, one line per user error."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from oomfuzz.db.engine import make_engine, session_scope
from oomfuzz.db.models import Campaign, Finding


def oomfuzz(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OOMFUZZ_DATABASE_URL"}
    return subprocess.run(["oomfuzz", *args],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def test_fuzz_reports_bz03_once_with_a_replay_that_replays(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'f.db'}"
    out = oomfuzz("fuzz", "--variant", "seed-3of2", "--seconds", "20", "--db", db, "--corpus", "corpus",
                  "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["executions"] > 0 and result["exec_per_second"] > 0
    bz03 = [f for f in result["findings"] if f["known_bug"] == "BZ-03"]
    assert len(bz03) == 1
    assert bz03[0]["preemptions"] == 1 and bz03[0]["variants"] == ["seed-3of2"]
    assert len({f["signature"] for f in result["findings"]}) == len(result["findings"])
    replayed = subprocess.run(bz03[0]["replay"].split() + ["--json"], capture_output=True, text=True, timeout=60)
    replay_json = json.loads(replayed.stdout)
    assert replay_json["finding"] is not None, (bz03[0], replay_json["status"], replay_json["error"])
    assert replay_json["finding"]["signature"] == bz03[0]["signature"]
    engine = make_engine(db)
    with session_scope(engine) as session:
        row = session.scalar(select(Finding).where(Finding.signature == bz03[0]["signature"]))
        assert row.hits >= bz03[0]["hits"] and row.minimised and not row.flaky
        campaign = session.get(Campaign, result["campaign"])
        assert campaign.status == "finished" and campaign.executions == result["executions"]
    assert any((tmp_path / "corpus").iterdir())


def test_random_engine_runs_in_the_same_loop(tmp_path: Path) -> None:
    out = oomfuzz("fuzz", "-v", "seed-3of2", "--seconds", "4", "--engine", "random", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["engine"] == "random" and result["executions"] > 100
    assert (tmp_path / "oomfuzz.db").exists()  # the default database, in the working directory


def test_garbage_corpus_files_get_one_warning_each(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notes.txt").write_text("hello")
    (corpus / ("ab" * 32)).write_bytes(b"wrong contents")
    out = oomfuzz("fuzz", "-v", "seed-3of2", "--seconds", "2", "--engine", "random", "--corpus", str(corpus),
                  "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    warnings = [ln for ln in out.stderr.splitlines() if ln.startswith("oomfuzz: warning: corpus")]
    assert len(warnings) == 2 and "Traceback" not in out.stderr
    assert (corpus / "notes.txt").read_text() == "hello"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--db", "mysql://me@host/db"], "unsupported database URL scheme"),
        (["--db", "postgresql://postgres@127.0.0.1:1/x"], "cannot reach PostgreSQL"),
        (["--corpus", "afile"], "not a directory"),
        (["--variant", "v9.99"], "unknown variant"),
    ],
)
def test_user_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "afile").write_text("x")
    base = ["fuzz", "--seconds", "2", "--engine", "random"]
    if "--variant" not in args:
        base += ["--variant", "seed-3of2"]
    out = oomfuzz(*base, *args, cwd=tmp_path, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("oomfuzz: error:")


def test_a_corrupt_database_file_is_an_error_and_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "bad.db"
    db.write_bytes(b"this is not an sqlite database, and must survive" * 20)
    before = db.read_bytes()
    out = oomfuzz("fuzz", "-v", "seed-3of2", "--seconds", "2", "--db", f"sqlite:///{db}", cwd=tmp_path, timeout=60)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "not a usable SQLite database" in out.stderr
    assert db.read_bytes() == before
