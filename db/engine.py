"""Engines, sessions and schema migrations for the findings database, with user-facing errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, exc, func, select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from oomfuzz.db.errors import DatabaseError
from oomfuzz.db.url import parse_url

MIGRATIONS = Path(__file__).with_name("migrations")
CONNECT_TIMEOUT_S = 3
SQLITE_BUSY_TIMEOUT_MS = 30_000
_PG_MIGRATION_LOCK = 0x6F6F6D66757A7A  # "oomfuzz": serialises concurrent upgrades
_CALLER_BUGS = (exc.IntegrityError, exc.ProgrammingError, exc.DataError)


def make_engine(url: str | URL) -> Engine:
    """An engine for `url`, once it connects and holds no schema from a newer oomfuzz."""
    url = parse_url(url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "oomfuzz"}
        engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    try:
        with translate_errors(url), engine.connect() as connection:
            _check_known_revision(connection, url)
    except DatabaseError:
        engine.dispose()
        raise
    return engine


def _sqlite_on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # pysqlite's own BEGIN breaks SAVEPOINT and transactional DDL; _sqlite_begin replaces it.
    dbapi_connection.isolation_level = None
    for pragma in (
        f"busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}",
        "journal_mode = WAL",
        "synchronous = FULL",
        "foreign_keys = ON",
    ):
        dbapi_connection.execute(f"PRAGMA {pragma}")


def _sqlite_begin(connection: Connection) -> None:
    # IMMEDIATE takes the write lock up front, so the busy timeout applies; a deferred transaction
    # that reads and then writes can fail at once with SQLITE_BUSY when another process committed.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade(target: str | URL | Engine) -> str:
    """Migrate the schema to the newest revision; idempotent, safe from many processes at once."""
    engine = target if isinstance(target, Engine) else make_engine(target)
    try:
        with translate_errors(engine.url), engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(select(func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
            _check_known_revision(connection, engine.url)
            command.upgrade(alembic_config(connection), "head")
    finally:
        if engine is not target:
            engine.dispose()
    return head_revision()


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic configuration for the migrations shipped in this package, bound to `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations shipped"
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _check_known_revision(connection: Connection, url: URL) -> None:
    current = current_revision(connection)
    scripts = ScriptDirectory.from_config(alembic_config())
    if current is not None and current not in {s.revision for s in scripts.walk_revisions()}:
        raise DatabaseError(
            f"{_shown(url)} has schema revision {current!r}, newer than this oomfuzz knows"
            f" (it stops at {scripts.get_current_head()!r}): upgrade oomfuzz to use this database"
        )


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose transaction commits when the block ends and rolls back if it raises."""
    with translate_errors(engine.url), Session(engine, expire_on_commit=False) as session:
        with session.begin():
            yield session


@contextmanager
def translate_errors(url: URL) -> Iterator[None]:
    """Turn driver errors a user can cause (unreachable, refused, corrupt) into DatabaseError."""
    try:
        yield
    except exc.DBAPIError as error:
        if isinstance(error, _CALLER_BUGS) and not _missing_table(error):
            raise
        raise DatabaseError(_explain(error, url)) from error


def _missing_table(error: exc.DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) == "42P01" or "no such table" in str(error.orig)


def _explain(error: exc.DBAPIError, url: URL) -> str:
    shown = _shown(url)
    reason = str(error.orig).splitlines()[0] if str(error.orig) else type(error.orig).__name__
    if _missing_table(error):
        return f"{shown} has no oomfuzz schema yet ({reason}): upgrade its schema first"
    if url.get_backend_name() == "sqlite":
        name = getattr(error.orig, "sqlite_errorname", "")
        if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
            return f"{url.database} is not a usable SQLite database ({reason}); left untouched"
        if name == "SQLITE_CANTOPEN":
            return f"cannot open SQLite database {url.database}: {reason}"
        return f"SQLite database {url.database}: {reason}"
    reason = reason.rsplit("failed: ", 1)[-1].replace("FATAL:", "").strip()
    where = f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}"
    if "authentication" in reason or "role" in reason or "pg_hba.conf" in reason:
        return f"{where} refused user {url.username!r}: {reason}"
    if "database" in reason and "does not exist" in reason:
        return f"{where}: {reason} (create it first, e.g. createdb {url.database})"
    if error.connection_invalidated or "connection" in reason.lower() or "resolve" in reason:
        return f"cannot reach {where} ({shown}): {reason}"
    return f"{shown}: {reason}"


def _shown(url: URL) -> str:
    return url.render_as_string(hide_password=True)
