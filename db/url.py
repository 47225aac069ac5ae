"""Which database: `--db URL` > $OOMFUZZ_DATABASE_URL > ./oomfuzz.db, checked and normalised."""

from __future__ import annotations

import os
from collections.abc import Mapping

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from oomfuzz.db.errors import DatabaseError

ENV_VAR = "OOMFUZZ_DATABASE_URL"
DEFAULT_URL = "sqlite:///oomfuzz.db"
EXAMPLES = "use sqlite:///PATH or postgresql://USER@HOST[:PORT]/DBNAME"

_DRIVERS = {
    "sqlite": "sqlite+pysqlite",
    "sqlite+pysqlite": "sqlite+pysqlite",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}


def resolve_url(explicit: str | None = None, environ: Mapping[str, str] = os.environ) -> URL:
    """The database URL from `--db`, else the environment, else ./oomfuzz.db; validated."""
    return parse_url(explicit or environ.get(ENV_VAR) or DEFAULT_URL)


def parse_url(raw: str | URL) -> URL:
    """`raw` as a URL for the drivers we ship (psycopg 3, pysqlite), or DatabaseError saying why."""
    if isinstance(raw, URL):
        raw = raw.render_as_string(hide_password=False)
    try:
        url = make_url(raw.strip())
        port = url.port
    except (ArgumentError, ValueError):
        raise DatabaseError(f"malformed database URL {raw!r}: {EXAMPLES}") from None
    shown = url.render_as_string(hide_password=True)
    if url.drivername not in _DRIVERS:
        scheme = url.drivername
        raise DatabaseError(f"unsupported database URL scheme {scheme!r} in {shown}: {EXAMPLES}")
    if port is not None and not 0 < port < 65536:
        raise DatabaseError(f"malformed database URL {shown}: port {port} is out of range")
    url = url.set(drivername=_DRIVERS[url.drivername])
    is_file = url.database not in (None, "", ":memory:") and "uri" not in url.query
    if url.get_backend_name() == "sqlite" and is_file:
        url = url.set(database=os.path.abspath(os.path.expanduser(url.database)))
    return url
