"""Open a fresh state store of each backend for a test (shared by tests/state and tests/sync).

PostgreSQL comes from `SEGSYNC_TEST_POSTGRES_URL` (default
postgresql://postgres@127.0.0.1:5432/test); each store gets its own random schema (through
`search_path`), dropped afterwards. An unreachable server skips with the reason, except in
CI (`CI=true`), where it fails.
"""

from __future__ import annotations

import os
import secrets
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from segsync.state import StateStore, open_store

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", "postgres"]


def postgres_url() -> str:
    return os.environ.get("SEGSYNC_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(f"PostgreSQL not reachable ({reason}); set SEGSYNC_TEST_POSTGRES_URL")


def with_search_path(url: str, schema: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)
    # commits need not wait for the disk in tests (a server crash is not what they test)
    query.append(("options", f"-csearch_path={schema} -csynchronous_commit=off"))
    encoded = urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
    return urllib.parse.urlunsplit(parts._replace(query=encoded))


class PostgresSchemas:
    """Creates random schemas on the test server and drops them at the end."""

    def __init__(self) -> None:
        import psycopg

        self.url = postgres_url()
        try:
            self.admin = psycopg.connect(self.url, autocommit=True, connect_timeout=3)
        except psycopg.Error as exc:
            _unavailable(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}")
        self.schemas: list[str] = []

    def new_url(self) -> str:
        schema = "segsync_test_" + secrets.token_hex(6)
        self.admin.execute(f'CREATE SCHEMA "{schema}"')
        self.schemas.append(schema)
        return with_search_path(self.url, schema)

    def close(self) -> None:
        if self.schemas:
            names = ", ".join(f'"{schema}"' for schema in self.schemas)
            self.admin.execute(f"DROP SCHEMA IF EXISTS {names} CASCADE")
        self.admin.close()


@pytest.fixture(scope="session")
def postgres_schemas() -> Iterator[PostgresSchemas]:
    """The test server; every schema made for a test is dropped at the end of the session."""
    schemas = PostgresSchemas()
    try:
        yield schemas
    finally:
        schemas.close()


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty state database of the backend under test."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    schemas: PostgresSchemas = request.getfixturevalue("postgres_schemas")
    return schemas.new_url()


@pytest.fixture
def store_factory(store_url: str) -> Iterator[Callable[[], StateStore]]:
    """A function opening a store on the database of the backend under test."""
    opened: list[StateStore] = []

    def make() -> StateStore:
        store = open_store(store_url)
        opened.append(store)
        return store

    try:
        yield make
    finally:
        for store in opened:
            store.close()


@pytest.fixture
def store(store_factory: Callable[[], StateStore]) -> StateStore:
    """A fresh store of the backend under test."""
    return store_factory()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_url" in metafunc.fixturenames:
        metafunc.parametrize("store_url", BACKENDS, indirect=True)
