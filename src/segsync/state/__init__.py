"""The state store: what segsync last saw and wrote, cursors, ids, ownership, consent ledger.

`open_store(url)` opens a backend by URL: `sqlite:///path/to/state.db` (the default,
`.segsync/state.db`), `sqlite:///:memory:`, or `postgresql://...`.
"""

from __future__ import annotations

from pathlib import Path

from segsync.clock import Clock
from segsync.state.base import (
    MIGRATIONS,
    BaseRow,
    Binding,
    LedgerEntry,
    OwnedObject,
    RunLocked,
    StateStore,
    StoreError,
)
from segsync.state.scoped import ConfigState
from segsync.state.sqlite import DEFAULT_PATH, SQLiteStateStore

__all__ = [
    "DEFAULT_PATH",
    "MIGRATIONS",
    "BaseRow",
    "Binding",
    "ConfigState",
    "LedgerEntry",
    "OwnedObject",
    "RunLocked",
    "SQLiteStateStore",
    "StateStore",
    "StoreError",
    "open_store",
]


def open_store(url: str | None = None, *, clock: Clock | None = None) -> StateStore:
    """Open the state store named by `url` (None: the default SQLite file).

    Raises:
        StoreError: the URL has an unknown scheme or the store cannot be opened.
    """
    if url is None:
        return SQLiteStateStore(DEFAULT_PATH, clock=clock)
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        path = path.removeprefix("/") if path.startswith("/") else path
        return SQLiteStateStore(Path(path) if path != ":memory:" else ":memory:", clock=clock)
    if url.startswith(("postgresql://", "postgres://")):
        from segsync.state.postgres import PostgresStateStore

        return PostgresStateStore(url, clock=clock)
    raise StoreError(
        f"unknown state URL scheme in {url.split('://')[0]!r}: use sqlite:///path or postgresql://"
    )
