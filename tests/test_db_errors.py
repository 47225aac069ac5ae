"""URL resolution, and one-line DatabaseErrors for every way of pointing at a bad database."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from oomfuzz.db.engine import make_engine, session_scope, upgrade
from oomfuzz.db.errors import DatabaseError
from oomfuzz.db.store import list_findings
from oomfuzz.db.testing import empty_db, scratch_postgres  # noqa: F401  (fixtures)
from oomfuzz.db.url import ENV_VAR, parse_url, resolve_url


def _error(call, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(DatabaseError) as caught:
        call(*args)
    message = str(caught.value)
    assert message and "\n" not in message and "Traceback" not in message
    return message


def test_explicit_url_beats_environment_beats_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {ENV_VAR: "sqlite:///from-env.db"}
    assert resolve_url("sqlite:///explicit.db", env).database == str(tmp_path / "explicit.db")
    assert resolve_url(None, env).database == str(tmp_path / "from-env.db")
    assert resolve_url(None, {}).database == str(tmp_path / "oomfuzz.db")


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_postgresql_urls_use_psycopg3(scheme: str) -> None:
    url = parse_url(f"{scheme}://me:pw@db.example:6543/findings")
    assert (url.drivername, url.host, url.port, url.database) == (
        "postgresql+psycopg", "db.example", 6543, "findings"
    )


@pytest.mark.parametrize(
    "raw",
    ["not a url", "", "/var/lib/oomfuzz.db", "postgresql://me@h:abc/db", "postgresql://h:70000/d"],
)
def test_malformed_url(raw: str) -> None:
    assert "malformed database URL" in _error(parse_url, raw)


@pytest.mark.parametrize("raw", ["mysql://me@h/db", "postgresql+asyncpg://me@h/db", "http://x/y"])
def test_unsupported_scheme(raw: str) -> None:
    message = _error(parse_url, raw)
    assert "unsupported database URL scheme" in message and "sqlite:///" in message


def test_unreachable_server_fails_fast_without_leaking_the_password() -> None:
    started = time.monotonic()
    message = _error(make_engine, "postgresql://postgres:s3cret@127.0.0.1:1/test")
    assert time.monotonic() - started < 10
    assert "cannot reach PostgreSQL at 127.0.0.1:1" in message and "s3cret" not in message


def test_unknown_role_is_an_authentication_failure(postgres_url: str) -> None:
    url = make_url(postgres_url).set(username="oomfuzz_no_such_role", password=None)
    message = _error(make_engine, url)
    assert "refused user 'oomfuzz_no_such_role'" in message


def test_missing_postgres_database(postgres_url: str) -> None:
    url = make_url(postgres_url).set(database="oomfuzz_no_such_database")
    assert 'database "oomfuzz_no_such_database" does not exist' in _error(make_engine, url)


def test_corrupt_sqlite_file_is_reported_and_left_byte_for_byte(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "findings.db"
    original = random.Random(seed).randbytes(8192)
    path.write_bytes(original)
    for call in (make_engine, upgrade):
        message = _error(call, f"sqlite:///{path}")
        assert f"{path} is not a usable SQLite database" in message and "untouched" in message
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["findings.db"]


def test_sqlite_path_that_cannot_be_opened(tmp_path: Path) -> None:
    message = _error(make_engine, f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    assert "cannot open SQLite database" in message
    assert not (tmp_path / "missing-dir").exists()


def test_schema_from_a_newer_oomfuzz_is_refused_and_kept(empty_db: URL) -> None:
    engine = make_engine(empty_db)
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'fffffffffff9'"))
    engine.dispose()
    for call in (make_engine, upgrade):
        message = _error(call, empty_db)
        assert "schema revision 'fffffffffff9', newer than this oomfuzz" in message


def test_unmigrated_database_asks_for_an_upgrade(empty_db: URL) -> None:
    engine = make_engine(empty_db)
    try:
        with pytest.raises(DatabaseError, match="has no oomfuzz schema yet .*finding"):
            with session_scope(engine) as session:
                list_findings(session)
    finally:
        engine.dispose()
