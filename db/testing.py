"""Test support for the findings database: scratch databases per backend, and a writer process."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from oomfuzz.db.engine import make_engine, session_scope, upgrade
from oomfuzz.db.store import HitRecord, add_corpus_entry, record_hit
from oomfuzz.db.url import parse_url

BACKENDS = ("sqlite", "postgresql")
SHARED_SIGNATURES = ("shared-0", "shared-1", "shared-2")
PRIVATE_PER_WRITER = 2


class ScratchPostgres:
    """Creates uniquely named databases on one PostgreSQL server and drops exactly those."""

    def __init__(self, server_url: str) -> None:
        self.server = parse_url(server_url)
        self.prefix = f"oomfuzz_test_{secrets.token_hex(4)}"
        self.created: list[str] = []

    def create(self) -> URL:
        name = f"{self.prefix}_{len(self.created)}"
        self._admin(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.server.set(database=name)

    def drop_all(self) -> None:
        for name in reversed(self.created):
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()

    def _admin(self, sql: str) -> None:
        engine = create_engine(self.server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql(sql)
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def scratch_postgres(postgres_url: str) -> Iterator[ScratchPostgres]:
    scratch = ScratchPostgres(postgres_url)
    yield scratch
    scratch.drop_all()


def _fresh_url(request: pytest.FixtureRequest, backend: str, directory: Path) -> URL:
    if backend == "sqlite":
        return parse_url(f"sqlite:///{directory / 'findings.db'}")
    return request.getfixturevalue("scratch_postgres").create()


@pytest.fixture(params=BACKENDS)
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> URL:
    """The URL of a fresh database with no schema, once per backend."""
    return _fresh_url(request, request.param, tmp_path)


@pytest.fixture(scope="session", params=BACKENDS)
def migrated_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """An engine on a database upgraded to head, shared by a module's tests, once per backend."""
    url = _fresh_url(request, request.param, tmp_path_factory.mktemp("db"))
    engine = make_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(migrated_engine: Engine) -> Iterator[Session]:
    """A session inside a transaction rolled back after the test; commit() releases a savepoint."""
    with migrated_engine.connect() as connection:
        transaction = connection.begin()
        with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
            yield session
        transaction.rollback()


def writer_hit(writer: int, round_: int, signature: str) -> HitRecord:
    """The hit `writer` records for `signature` in `round_`: sizes unique per (writer, round)."""
    preemptions = (writer * 7 + round_ * 5 + len(signature)) % 6 + 1
    return HitRecord(
        signature=signature,
        invariant="oom_victims_balanced",
        title=f"title of {signature}",
        known_bug=None,
        variant=f"v{round_ % 2}",
        input=f"{writer}:{round_}:{signature}".encode(),
        preemptions=preemptions,
        steps=1000 + writer * 100 + round_,
        trace="[]",
        replay=f"oomfuzz replay {writer}:{round_}",
    )


def writer_signatures(writer: int) -> tuple[str, ...]:
    own = tuple(f"private-{writer}-{k}" for k in range(PRIVATE_PER_WRITER))
    return SHARED_SIGNATURES + own


def hammer(urls: list[str], writer: int, rounds: int, barrier: Any, results: Any) -> None:
    """Writer process: record every signature `rounds` times into each database, one commit each;
    puts (writer, [(url index, signature) it saw as new]) on `results`."""
    engines = [make_engine(url) for url in urls]
    for engine in engines:
        upgrade(engine)
    barrier.wait()
    seen_new = []
    for round_ in range(rounds):
        for signature in writer_signatures(writer):
            for index, engine in enumerate(engines):
                with session_scope(engine) as session:
                    _, is_new = record_hit(session, writer_hit(writer, round_, signature))
                if is_new:
                    seen_new.append((index, signature))
        for engine in engines:
            with session_scope(engine) as session:
                add_corpus_entry(session, "v0", f"shared-{round_}".encode(), "fuzz")
            with session_scope(engine) as session:
                add_corpus_entry(session, "v0", f"own-{writer}-{round_}".encode(), "fuzz")
    for engine in engines:
        engine.dispose()
    results.put((writer, seen_new))
