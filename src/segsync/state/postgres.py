"""The PostgreSQL backend, for deployments where several workers or machines share state.

Opened by URL (`postgresql://user@host:5432/db`; a `search_path` in the URL's `options`
selects a schema). The run lock is a session advisory lock (`pg_try_advisory_lock`) on a
dedicated connection, keyed by the schema and the configuration name: it is released when
the holder's session ends, so a killed run never leaves a stale lock. The `locks` table
names the holder for the message of `RunLocked`.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from segsync.clock import Clock, SystemClock
from segsync.state.base import RunLocked, StoreError
from segsync.state.sql import SqlStateStore
from segsync.state.sqlite import holder_description

__all__ = ["PostgresStateStore", "redact_url"]


def redact_url(url: str) -> str:
    """The URL with any password masked (for messages and reprs)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://<unparseable url>"
    user = info.get("user") or ""
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    dbname = info.get("dbname") or ""
    auth = f"{user}:***@" if info.get("password") else (f"{user}@" if user else "")
    return f"postgresql://{auth}{host}:{port}/{dbname}"


class _PgTx:
    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(sql.replace("?", "%s"), params)
        return self._cursor.fetchall() if self._cursor.description else []

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor.executemany(sql.replace("?", "%s"), rows)


class PostgresStateStore(SqlStateStore):
    """State in a PostgreSQL database (schema from the connection's search_path)."""

    serial_type = "BIGSERIAL PRIMARY KEY"

    def __init__(self, url: str, *, clock: Clock | None = None, connect_timeout: int = 5) -> None:
        self._url = url
        self.url = redact_url(url)
        self.clock = clock or SystemClock()
        self._timeout = connect_timeout
        try:
            self._conn = psycopg.connect(url, connect_timeout=connect_timeout)
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot connect to the PostgreSQL state at {self.url}: {type(exc).__name__}"
            ) from None
        self._mutex = threading.RLock()
        self._current: _PgTx | None = None
        self._migrate()

    def __repr__(self) -> str:
        return f"PostgresStateStore({self.url!r})"

    @contextlib.contextmanager
    def _tx(self) -> Iterator[_PgTx]:
        with self._mutex:
            if self._current is not None:  # inside `transaction()`: one transaction
                yield self._current
                return
            with self._conn.transaction(), self._conn.cursor() as cursor:
                self._current = _PgTx(cursor)
                try:
                    yield self._current
                finally:
                    self._current = None

    def _migrate(self) -> None:
        # serialise concurrent migrations of one database
        with self._mutex, self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(727272)")
            super()._migrate()

    def _script(self, tx: Any, statements: Sequence[str]) -> None:
        tx.execute(";\n".join(statements))

    def close(self) -> None:
        self._conn.close()

    def _lock_key(self, config: str) -> int:
        with self._tx() as tx:
            schema = tx.execute("SELECT current_schema()")[0][0]
        digest = hashlib.sha1(f"{schema}\0{config}".encode(), usedforsecurity=False).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    @contextlib.contextmanager
    def lock(self, config: str) -> Iterator[None]:
        """Hold the run lock of `config` (see the module docstring)."""
        key = self._lock_key(config)
        conn = psycopg.connect(self._url, autocommit=True, connect_timeout=self._timeout)
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if not (row and row[0]):
                with self._tx() as tx:
                    rows = tx.execute("SELECT holder FROM locks WHERE config = ?", (config,))
                raise RunLocked(config, rows[0][0] if rows else "another run")
            with self._tx() as tx:
                tx.execute(
                    "INSERT INTO locks (config, holder, acquired_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (config) DO UPDATE SET holder = excluded.holder,"
                    " acquired_at = excluded.acquired_at",
                    (config, holder_description(self.clock), self.clock.now().isoformat()),
                )
            try:
                yield
            finally:
                with contextlib.suppress(psycopg.Error), self._tx() as tx:
                    tx.execute("DELETE FROM locks WHERE config = ?", (config,))
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        finally:
            conn.close()
