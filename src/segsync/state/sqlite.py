"""The SQLite backend (the default): one file, WAL journal, a file lock per configuration.

The run lock is an advisory `flock` on `<db>.<config>.lock` (released by the operating
system when the process dies, so a killed run never leaves a stale lock); the file holds
who took it, for the message of `RunLocked`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from segsync.clock import Clock, SystemClock
from segsync.state.base import RunLocked, StoreError
from segsync.state.sql import SqlStateStore

__all__ = ["SQLiteStateStore"]

DEFAULT_PATH = Path(".segsync/state.db")


class _SqliteTx:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(sql, params)
        return self._cursor.fetchall()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(sql, rows)


def holder_description(clock: Clock) -> str:
    """Who holds a lock: process, host and since when."""
    return f"pid {os.getpid()} on {socket.gethostname()} since {clock.now().isoformat()}"


class SQLiteStateStore(SqlStateStore):
    """State in a SQLite file (`:memory:` for a throwaway store)."""

    serial_type = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path: str | Path = DEFAULT_PATH, *, clock: Clock | None = None) -> None:
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        self.clock = clock or SystemClock()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite state {self.path!r}: {exc}") from None
        self._mutex = threading.RLock()
        self._current: _SqliteTx | None = None
        self._memory_locks: dict[str, str] = {}
        self._migrate()

    def __repr__(self) -> str:
        return f"SQLiteStateStore({self.path!r})"

    @contextlib.contextmanager
    def _tx(self) -> Iterator[_SqliteTx]:
        with self._mutex:
            if self._current is not None:  # inside `transaction()`: one transaction
                yield self._current
                return
            cursor = self._conn.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            self._current = _SqliteTx(cursor)
            try:
                yield self._current
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            else:
                cursor.execute("COMMIT")
            finally:
                self._current = None
                cursor.close()

    def close(self) -> None:
        self._conn.close()

    def _lock_path(self, config: str) -> Path:
        digest = hashlib.sha1(config.encode(), usedforsecurity=False).hexdigest()[:12]
        return Path(f"{self.path}.{digest}.lock")

    @contextlib.contextmanager
    def lock(self, config: str) -> Iterator[None]:
        """Hold the run lock of `config` (see the module docstring)."""
        if self.path == ":memory:":
            if config in self._memory_locks:
                raise RunLocked(config, self._memory_locks[config])
            self._memory_locks[config] = holder_description(self.clock)
            try:
                yield
            finally:
                self._memory_locks.pop(config, None)
            return
        path = self._lock_path(config)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = path.read_text(errors="replace").strip() or "another run"
                raise RunLocked(config, holder) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder_description(self.clock).encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
