"""Migrations: empty to head on both backends, idempotent, and matching the models exactly."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import URL

from oomfuzz.db.engine import current_revision, head_revision, make_engine, upgrade
from oomfuzz.db.models import Base
from oomfuzz.db.testing import empty_db, scratch_postgres  # noqa: F401  (fixtures)

TABLES = {"campaign", "finding", "finding_variant", "hit", "finding_event", "corpus_entry"}


def test_upgrade_from_empty_to_head_is_idempotent(empty_db: URL) -> None:
    engine = make_engine(empty_db)
    try:
        with engine.connect() as connection:
            assert current_revision(connection) is None
            assert not TABLES & set(inspect(connection).get_table_names())
        assert upgrade(engine) == head_revision()
        assert upgrade(engine) == head_revision()
        assert upgrade(empty_db.render_as_string(hide_password=False)) == head_revision()
        with engine.connect() as connection:
            assert current_revision(connection) == head_revision()
            assert TABLES <= set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def test_models_match_the_migrations(empty_db: URL) -> None:
    engine = make_engine(empty_db)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as connection:
            pragma = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
    finally:
        engine.dispose()
    assert pragma["journal_mode"] == "wal" and pragma["foreign_keys"] == 1
    assert pragma["busy_timeout"] >= 1000
    assert pragma["synchronous"] == 2  # FULL: a committed first hit survives power loss
