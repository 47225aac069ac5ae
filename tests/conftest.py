"""Shared test fixtures: the logged seed, golden-file updating and the real services."""

from __future__ import annotations

import os
import random
import socket
from urllib.parse import urlsplit

import pytest

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files from the current output instead of comparing",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """A per-test seed: OOMFUZZ_TEST_SEED overrides it; it is printed so a failure can be rerun."""
    env = os.environ.get("OOMFUZZ_TEST_SEED")
    value = int(env) if env else random.SystemRandom().randrange(2**32)
    print(f"[seed] {request.node.nodeid}: OOMFUZZ_TEST_SEED={value}")
    return value


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url.replace("+psycopg", ""))
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a real PostgreSQL server (OOMFUZZ_TEST_POSTGRES_URL), or a skip that says why."""
    url = os.environ.get("OOMFUZZ_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    if not _reachable(url, 5432):
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {url}, and CI must have it")
        pytest.skip(f"PostgreSQL not reachable at {url}: set OOMFUZZ_TEST_POSTGRES_URL or start it")
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a real Redis server (OOMFUZZ_TEST_REDIS_URL), or a skip that says why."""
    url = os.environ.get("OOMFUZZ_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    if not _reachable(url, 6379):
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {url}, and CI must have it")
        pytest.skip(f"Redis not reachable at {url}: set OOMFUZZ_TEST_REDIS_URL or start it")
    return url
