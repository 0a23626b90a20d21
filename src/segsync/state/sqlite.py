"""The SQLite backend (the default): one file, WAL journal, a file lock per configuration.

The run lock is an operating-system file lock (`filelock`: `flock` on Unix, `msvcrt` on
Windows) on `<db>.<config>.lock`, released by the operating system when the process dies, so
a killed run never leaves a stale lock. Who took it (pid, host, since when) is written to
`<db>.<config>.holder` once the lock is held, for the message of `RunLocked` (a separate file:
a locked file cannot be read on every OS).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import sqlite3
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import filelock

from segsync.clock import Clock, SystemClock
from segsync.state.base import RunLocked, StoreError
from segsync.state.sql import SqlStateStore

__all__ = ["SQLiteStateStore"]

DEFAULT_PATH = Path(".segsync/state.db")

PRIVATE_DIR = 0o700
"""The mode of the state directory: the state holds emails and the consent ledger."""

PRIVATE_FILE = 0o600
"""The mode of the database file and of its side files."""

DB_SIDE_FILES = ("-wal", "-shm", "-journal")

CACHE_KIB = 65536
"""The page cache of a connection, in KiB."""

log = logging.getLogger("segsync.state")


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


def _tighten(db: Path) -> None:
    """Make the database file and its `-wal`/`-shm`/`-journal` 0600, warning for each that
    was open to others (they hold emails and the consent ledger)."""
    if os.name == "nt":
        return
    for path in [db, *(db.with_name(db.name + suffix) for suffix in DB_SIDE_FILES)]:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(path, PRIVATE_FILE)
            log.warning(
                "%s was readable by other users (mode %o); segsync made it %o",
                path,
                mode,
                PRIVATE_FILE,
            )


def _private_state_files(db: Path) -> None:
    """The state directory 0700 (created so; segsync's own `.segsync` tightened with a
    warning), the database file created 0600 and existing state files tightened."""
    directory = db.parent
    if not directory.exists():
        directory.mkdir(parents=True, mode=PRIVATE_DIR)
        if os.name != "nt":
            os.chmod(directory, PRIVATE_DIR)
    elif os.name != "nt" and directory.name == DEFAULT_PATH.parent.name:
        mode = stat.S_IMODE(directory.stat().st_mode)
        if mode & 0o077:
            os.chmod(directory, PRIVATE_DIR)
            log.warning(
                "%s was open to other users (mode %o); segsync made it %o",
                directory,
                mode,
                PRIVATE_DIR,
            )
    if not db.exists():
        # created private before SQLite opens it; SQLite gives -wal/-shm the same mode
        with contextlib.suppress(FileExistsError):
            os.close(os.open(db, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE))
    _tighten(db)


class SQLiteStateStore(SqlStateStore):
    """State in a SQLite file (`:memory:` for a throwaway store)."""

    serial_type = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(
        self, path: str | Path = DEFAULT_PATH, *, clock: Clock | None = None,
        _reader: bool = False,
    ) -> None:
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        self.clock = clock or SystemClock()
        if self.path != ":memory:" and not _reader:
            _private_state_files(Path(self.path))
        try:
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                _tighten(Path(self.path))
            self._conn.execute("PRAGMA synchronous=NORMAL")
            # 64 MiB of pages (2 MiB by default): a large audience's indices stay in memory
            self._conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite state {self.path!r}: {exc}") from None
        self._mutex = threading.RLock()
        self._current: _SqliteTx | None = None
        self._memory_locks: dict[str, str] = {}
        # a worker's connection only reads: its transactions take no write lock (the
        # writers and the other workers go on meanwhile)
        self._begin = "BEGIN" if _reader else "BEGIN IMMEDIATE"
        if not _reader:
            self._migrate()

    def __repr__(self) -> str:
        return f"SQLiteStateStore({self.path!r})"

    def worker_store(self) -> SQLiteStateStore | None:
        """A connection of its own to this file, for a forked worker (none for `:memory:`),
        that only reads."""
        if self.path == ":memory:":
            return None
        return SQLiteStateStore(self.path, clock=self.clock, _reader=True)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[_SqliteTx]:
        with self._mutex:
            if self._current is not None:  # inside `transaction()`: one transaction
                yield self._current
                return
            cursor = self._conn.cursor()
            cursor.execute(self._begin)
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
        holder_file = path.with_suffix(".holder")
        file_lock = filelock.FileLock(str(path), timeout=0)
        try:
            file_lock.acquire()
        except filelock.Timeout:
            try:
                holder = holder_file.read_text(errors="replace").strip()
            except OSError:
                holder = ""
            raise RunLocked(config, holder or "another run") from None
        try:
            holder_file.write_text(holder_description(self.clock), encoding="utf-8")
            yield
        finally:
            with contextlib.suppress(OSError):
                holder_file.write_text("", encoding="utf-8")
            file_lock.release()
