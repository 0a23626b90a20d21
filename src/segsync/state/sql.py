"""The SQL shared by the SQLite and PostgreSQL backends.

Statements are written once with `?` placeholders; a backend supplies a transaction
(`_tx`), its placeholder style, its auto-increment type and its run lock.
"""

from __future__ import annotations

import abc
import itertools
import json
import re
import secrets
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from segsync.clock import Clock
from segsync.state.base import (
    MIGRATIONS,
    BaseRow,
    Binding,
    Deletion,
    LedgerEntry,
    OwedErasure,
    OwedWrite,
    OwnedObject,
    StandingProblem,
    StateStore,
    payload_hash,
)

__all__ = ["SqlStateStore"]

T = TypeVar("T")

_IN_CHUNK = 500  # ids per IN (...) list
# the platforms of a configuration's base, a seek each (a loose index scan: no full scan)
_BASE_PLATFORMS = (
    "WITH RECURSIVE p(name) AS (SELECT MIN(platform) FROM base WHERE config = ?"
    " UNION ALL SELECT (SELECT MIN(platform) FROM base WHERE config = ? AND platform > p.name)"
    " FROM p WHERE p.name IS NOT NULL) SELECT name FROM p WHERE name IS NOT NULL"
)


class Tx(Protocol):
    """A cursor inside one transaction, speaking `?` placeholders."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


def _chunks(items: Sequence[str], size: int = _IN_CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(n: int) -> str:
    return ",".join("?" * n)


_LEDGER_BATCH = 10_000  # ledger entries a statement


def _batched(items: Iterable[T], size: int) -> Iterator[tuple[T, ...]]:
    """`items` in tuples of `size` (the last shorter): `itertools.batched` of Python 3.12."""
    it = iter(items)
    while batch := tuple(itertools.islice(it, size)):
        yield batch


class SqlStateStore(StateStore):
    """`StateStore` over a SQL connection; see `segsync.state.base` for the contract."""

    serial_type: str = "INTEGER PRIMARY KEY"
    clock: Clock  # set by the backend (times the store records itself)

    @abc.abstractmethod
    def _tx(self) -> AbstractContextManager[Tx]:
        """One transaction: committed on success, rolled back on error (joins an open one)."""

    def transaction(self) -> AbstractContextManager[Any]:
        return self._tx()

    # -- schema ---------------------------------------------------------------------------

    def _script(self, tx: Tx, statements: Sequence[str]) -> None:
        """Run DDL statements (a backend may send them in one round trip)."""
        for statement in statements:
            tx.execute(statement)

    def _migrate(self) -> None:
        with self._tx() as tx:
            tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            rows = tx.execute("SELECT version FROM schema_version")
            if not rows:
                tx.execute("INSERT INTO schema_version (version) VALUES (0)")
        current = self.schema_version()
        for version, statements in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            with self._tx() as tx:
                self._script(tx, [st.format(serial=self.serial_type) for st in statements])
                tx.execute("UPDATE schema_version SET version = ?", (version,))

    def schema_version(self) -> int:
        with self._tx() as tx:
            rows = tx.execute("SELECT version FROM schema_version")
        return int(rows[0][0]) if rows else 0

    # -- generation -----------------------------------------------------------------------

    @staticmethod
    def _bump(tx: Tx, config: str, plan_id: str | None = None, *, keep_plan: bool) -> int:
        tx.execute(
            "INSERT INTO meta (config, generation, plan_id) VALUES (?, 0, NULL)"
            " ON CONFLICT (config) DO NOTHING",
            (config,),
        )
        if keep_plan:
            tx.execute("UPDATE meta SET generation = generation + 1 WHERE config = ?", (config,))
        else:
            tx.execute(
                "UPDATE meta SET generation = generation + 1, plan_id = ? WHERE config = ?",
                (plan_id, config),
            )
        return int(tx.execute("SELECT generation FROM meta WHERE config = ?", (config,))[0][0])

    def generation(self, config: str) -> int:
        with self._tx() as tx:
            rows = tx.execute("SELECT generation FROM meta WHERE config = ?", (config,))
        return int(rows[0][0]) if rows else 0

    def plan_id(self, config: str) -> str | None:
        with self._tx() as tx:
            rows = tx.execute("SELECT plan_id FROM meta WHERE config = ?", (config,))
        return rows[0][0] if rows else None

    # -- cursors --------------------------------------------------------------------------

    def cursor(self, config: str, platform: str) -> str | None:
        with self._tx() as tx:
            rows = tx.execute(
                "SELECT cursor FROM cursors WHERE config = ? AND platform = ?", (config, platform)
            )
        return rows[0][0] if rows else None

    def pending_cursor(self, config: str, platform: str) -> str | None:
        with self._tx() as tx:
            rows = tx.execute(
                "SELECT pending FROM cursors WHERE config = ? AND platform = ?",
                (config, platform),
            )
        return rows[0][0] if rows else None

    def set_pending_cursor(self, config: str, platform: str, cursor: str | None) -> None:
        with self._tx() as tx:
            tx.execute(
                "INSERT INTO cursors (config, platform, cursor, pending) VALUES (?, ?, NULL, ?)"
                " ON CONFLICT (config, platform) DO UPDATE SET pending = excluded.pending",
                (config, platform, cursor),
            )

    # -- staging --------------------------------------------------------------------------

    def _clear(self, tx: Tx, config: str) -> None:
        tx.execute("DELETE FROM pulled WHERE config = ?", (config,))
        tx.execute("DELETE FROM planned WHERE config = ?", (config,))
        tx.execute("UPDATE cursors SET pending = NULL WHERE config = ?", (config,))

    def begin_stage(self, config: str) -> None:
        with self._tx() as tx:
            self._clear(tx, config)
            self._bump(tx, config, None, keep_plan=False)

    def stage_pulled(
        self, config: str, platform: str, rows: Sequence[tuple[Any, ...]]
    ) -> None:
        if not rows:
            return
        with self._tx() as tx:
            tx.executemany(
                "INSERT INTO pulled (config, platform, platform_id, cid, email_key, payload,"
                " hash, deleted, rhash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (config, platform, platform_id) DO UPDATE SET cid = excluded.cid,"
                " email_key = excluded.email_key, payload = excluded.payload,"
                " hash = excluded.hash, deleted = excluded.deleted, rhash = excluded.rhash",
                [
                    (config, platform, row[0], row[1], row[2], row[3],
                     row[4] or payload_hash(row[3]), int(row[5]),
                     row[6] if len(row) > 6 else None)
                    for row in rows
                ],
            )

    def new_records_of_renamed(self, config: str) -> list[tuple[str, str, str]]:
        with self._tx() as tx:
            if not tx.execute("SELECT 1 FROM base WHERE config = ? LIMIT 1", (config,)):
                return []  # no record was linked before (a first sync): none renamed
            rows = tx.execute(
                "SELECT DISTINCT n.platform, n.platform_id, n.email_key FROM pulled n JOIN pulled o"
                " ON o.config = n.config AND o.platform = n.platform AND o.cid = n.cid"
                " AND o.platform_id <> n.platform_id AND o.deleted = 0"
                " AND o.email_key <> n.email_key"
                " WHERE n.config = ? AND n.deleted = 0"
                " AND NOT EXISTS (SELECT 1 FROM base b WHERE b.config = n.config"
                " AND b.platform = n.platform AND b.platform_id = n.platform_id)"
                " AND EXISTS (SELECT 1 FROM base b WHERE b.config = o.config"
                " AND b.platform = o.platform AND b.platform_id = o.platform_id)"
                " ORDER BY n.platform, n.platform_id",
                (config,),
            )
        return [(platform, pid, key) for platform, pid, key in rows]

    def set_pulled_cids(self, config: str, rows: Sequence[tuple[str, str, str]]) -> None:
        with self._tx() as tx:
            tx.executemany(
                "UPDATE pulled SET cid = ? WHERE config = ? AND platform = ? AND platform_id = ?",
                [(cid, config, platform, pid) for platform, pid, cid in rows],
            )

    def relink_pulled(self, config: str) -> int:
        with self._tx() as tx:
            if not tx.execute("SELECT 1 FROM canonical WHERE config = ? LIMIT 1", (config,)):
                return 0  # no contact yet (a first sync): nobody's address moved
            rows = tx.execute(
                "SELECT n.platform, n.platform_id, MIN(o.cid) FROM pulled n JOIN pulled o"
                " ON o.config = n.config AND o.email_key = n.email_key AND o.cid <> n.cid"
                " AND o.platform <> n.platform AND o.deleted = 0"
                " WHERE n.config = ? AND n.deleted = 0"
                " AND NOT EXISTS (SELECT 1 FROM canonical c WHERE c.config = n.config"
                " AND c.cid = n.cid)"
                " AND EXISTS (SELECT 1 FROM canonical c WHERE c.config = o.config"
                " AND c.cid = o.cid AND c.email_key <> o.email_key)"
                " GROUP BY n.platform, n.platform_id",
                (config,),
            )
            tx.executemany(
                "UPDATE pulled SET cid = ? WHERE config = ? AND platform = ? AND platform_id = ?",
                [(cid, config, platform, pid) for platform, pid, cid in rows],
            )
        return len(rows)

    def moved_records(self, config: str) -> list[tuple[str, str, str, str, str]]:
        with self._tx() as tx:
            rows = tx.execute(
                "SELECT p.platform, p.platform_id, p.cid, p.email_key, b.payload FROM pulled p"
                " JOIN base b ON b.config = p.config AND b.platform = p.platform"
                " AND b.platform_id = p.platform_id AND b.cid = p.cid"
                " JOIN canonical c ON c.config = p.config AND c.cid = p.cid"
                " WHERE p.config = ? AND p.deleted = 0 AND p.email_key <> ''"
                " AND p.email_key <> c.email_key ORDER BY p.platform, p.platform_id",
                (config,),
            )
        return [(platform, pid, cid, key, payload) for platform, pid, cid, key, payload in rows]

    def relink_records(self, config: str, rows: Sequence[tuple[str, str, str]]) -> None:
        by_platform: dict[str, dict[str, str]] = {}
        for platform, pid, cid in rows:
            by_platform.setdefault(platform, {})[pid] = cid
        with self._tx() as tx:
            for platform, moves in sorted(by_platform.items()):
                self._relink_platform(tx, config, platform, moves)

    @staticmethod
    def _relink_platform(tx: Tx, config: str, platform: str, moves: dict[str, str]) -> None:
        """Move the records `moves` (platform id -> new contact) of one platform, with
        their base rows and memberships (see `relink_records`)."""
        pids = sorted(moves)
        old: dict[str, tuple[str, str, str, int]] = {}
        for part in _chunks(pids):
            for pid, cid, payload, digest, deleted in tx.execute(
                "SELECT platform_id, cid, payload, hash, deleted FROM base"  # noqa: S608
                f" WHERE config = ? AND platform = ? AND platform_id IN ({_marks(len(part))})",
                (config, platform, *part),
            ):
                old[pid] = (cid, payload, digest, deleted)
        held: dict[str, set[str]] = {}
        for part in _chunks(sorted({v[0] for v in old.values()})):
            for segment, cid in tx.execute(
                "SELECT segment, cid FROM members WHERE config = ? AND platform = ?"  # noqa: S608
                f" AND cid IN ({_marks(len(part))})",
                (config, platform, *part),
            ):
                held.setdefault(cid, set()).add(segment)
        tx.executemany(
            "DELETE FROM base WHERE config = ? AND platform = ? AND platform_id = ?",
            [(config, platform, pid) for pid in old],
        )
        tx.executemany(
            "DELETE FROM members WHERE config = ? AND platform = ? AND cid = ?",
            [(config, platform, cid) for cid in held],
        )
        targets = sorted({moves[pid] for pid in old})
        kept: set[str] = set()  # contacts keeping a base row of another (live) record here
        gone: set[str] = set()  # contacts whose base row here is of a deleted record
        for part in _chunks(targets):
            for held_cid, held_deleted in tx.execute(
                "SELECT cid, deleted FROM base WHERE config = ? AND platform = ?"  # noqa: S608
                f" AND cid IN ({_marks(len(part))})",
                (config, platform, *part),
            ):
                (gone if held_deleted else kept).add(held_cid)
        for pid in pids:
            cid = moves[pid]
            if pid not in old or cid in kept:
                continue
            kept.add(cid)
            if cid in gone:  # the moved record replaces the deleted one (base, memberships)
                for table in ("base", "members"):
                    tx.execute(
                        f"DELETE FROM {table} WHERE config = ? AND platform = ? AND cid = ?",  # noqa: S608
                        (config, platform, cid),
                    )
            before, payload, digest, deleted = old[pid]
            tx.execute(
                "INSERT INTO base (config, platform, cid, platform_id, payload, hash, deleted)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (config, platform, cid, pid, payload, digest, deleted),
            )
            tx.executemany(
                "INSERT INTO members (config, platform, segment, cid) VALUES (?, ?, ?, ?)",
                [(config, platform, segment, cid) for segment in sorted(held.get(before, ()))],
            )
        tx.executemany(
            "UPDATE pulled SET cid = ? WHERE config = ? AND platform = ? AND platform_id = ?",
            [(cid, config, platform, pid) for pid, cid in moves.items()],
        )
        # a contact a record moved away from is reconciled again (it may lack a record now)
        tx.executemany(
            "UPDATE canonical SET dirty = 1 WHERE config = ? AND cid = ?",
            [(config, before) for before in sorted({v[0] for v in old.values()})],
        )

    def discard_pulled(self, config: str, platform: str) -> None:
        with self._tx() as tx:
            tx.execute("DELETE FROM pulled WHERE config = ? AND platform = ?", (config, platform))
            tx.execute(
                "UPDATE cursors SET pending = NULL WHERE config = ? AND platform = ?",
                (config, platform),
            )

    def settle_pulled(self, config: str, platform: str) -> None:
        with self._tx() as tx:
            # a deletion next to a live record of the same contact: the live one is the record
            tx.execute(
                "DELETE FROM pulled WHERE config = ? AND platform = ? AND deleted = 1 AND EXISTS"
                " (SELECT 1 FROM pulled q WHERE q.config = pulled.config"
                " AND q.platform = pulled.platform AND q.cid = pulled.cid"
                " AND (q.deleted = 0 OR q.platform_id > pulled.platform_id))",
                (config, platform),
            )

    def drop_pulled(self, config: str, platform: str, platform_ids: Sequence[str]) -> None:
        with self._tx() as tx:
            for part in _chunks(list(platform_ids)):
                tx.execute(
                    f"DELETE FROM pulled WHERE config = ? AND platform = ?"  # noqa: S608 - marks only
                    f" AND platform_id IN ({_marks(len(part))})",
                    (config, platform, *part),
                )

    def duplicate_records(self, config: str, platform: str) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        with self._tx() as tx:
            # two live staged records of one contact
            rows = tx.execute(
                "SELECT p.cid, p.platform_id, b.platform_id FROM pulled p"
                " LEFT JOIN base b ON b.config = p.config AND b.platform = p.platform"
                " AND b.cid = p.cid"
                " WHERE p.config = ? AND p.platform = ? AND p.deleted = 0 AND p.cid IN"
                " (SELECT cid FROM pulled WHERE config = ? AND platform = ? AND deleted = 0"
                " GROUP BY cid HAVING COUNT(*) > 1) ORDER BY p.cid, p.platform_id",
                (config, platform, config, platform),
            )
            groups: dict[str, list[tuple[str, str | None]]] = {}
            for cid, pid, linked in rows:
                groups.setdefault(cid, []).append((pid, linked))
            for cid, members in groups.items():
                ids = [pid for pid, _ in members]
                linked = members[0][1]
                keep = linked if linked in ids else ids[0]
                out.extend((cid, pid, keep) for pid in ids if pid != keep)
            # a staged live record next to the live base record of another id, not re-read
            rows = tx.execute(
                "SELECT p.cid, p.platform_id, b.platform_id FROM pulled p JOIN base b"
                " ON b.config = p.config AND b.platform = p.platform AND b.cid = p.cid"
                " WHERE p.config = ? AND p.platform = ? AND p.deleted = 0 AND b.deleted = 0"
                " AND p.platform_id <> b.platform_id AND NOT EXISTS (SELECT 1 FROM pulled q"
                " WHERE q.config = b.config AND q.platform = b.platform"
                " AND q.platform_id = b.platform_id)",
                (config, platform),
            )
            out.extend((cid, pid, other) for cid, pid, other in rows)
        return out

    def _cids_of_ids(
        self, table: str, config: str, platform: str, platform_ids: Sequence[str]
    ) -> dict[str, str]:
        """platform id -> contact id of the rows of `table` (base or pulled) with those ids."""
        found: dict[str, str] = {}
        with self._tx() as tx:
            for part in _chunks(list(platform_ids)):
                for pid, cid in tx.execute(
                    f"SELECT platform_id, cid FROM {table} WHERE config = ? AND platform = ?"  # noqa: S608
                    f" AND platform_id IN ({_marks(len(part))})",
                    (config, platform, *part),
                ):
                    found[pid] = cid
        return found

    def cids_by_platform_id(
        self, config: str, platform: str, platform_ids: Sequence[str]
    ) -> dict[str, str]:
        return self._cids_of_ids("base", config, platform, platform_ids)

    def linked_reads(
        self, config: str, platform: str, platform_ids: Sequence[str]
    ) -> dict[str, tuple[str, str | None, str | None]]:
        found: dict[str, tuple[str, str | None, str | None]] = {}
        with self._tx() as tx:
            for part in _chunks(list(platform_ids)):
                for pid, cid, rhash, key in tx.execute(
                    "SELECT b.platform_id, b.cid, b.rhash, c.email_key FROM base b"  # noqa: S608
                    " LEFT JOIN canonical c ON c.config = b.config AND c.cid = b.cid"
                    f" WHERE b.config = ? AND b.platform = ? AND b.platform_id IN"
                    f" ({_marks(len(part))})",
                    (config, platform, *part),
                ):
                    found[pid] = (cid, rhash, key)
        return found

    def unread_neighbours(self, config: str, platform: str) -> list[BaseRow]:
        with self._tx() as tx:
            rows = tx.execute(
                "SELECT DISTINCT b.cid, b.platform_id, b.payload, b.deleted, b.hash, b.rhash"
                " FROM pulled p JOIN base b ON b.config = p.config AND b.platform = p.platform"
                " AND b.cid = p.cid AND b.platform_id <> p.platform_id"
                " WHERE p.config = ? AND p.platform = ? AND NOT EXISTS (SELECT 1 FROM pulled q"
                " WHERE q.config = b.config AND q.platform = b.platform"
                " AND q.platform_id = b.platform_id)",
                (config, platform),
            )
        return [BaseRow(platform, cid, pid, payload, bool(deleted), digest or "", rhash)
                for cid, pid, payload, deleted, digest, rhash in rows]

    def forget_records(self, config: str, platform: str, platform_ids: Sequence[str]) -> None:
        if not platform_ids:
            return
        with self._tx() as tx:
            for pid in platform_ids:
                for (cid,) in list(tx.execute(
                    "SELECT cid FROM base WHERE config = ? AND platform = ? AND platform_id = ?",
                    (config, platform, pid),
                )):
                    tx.execute("DELETE FROM members WHERE config = ? AND platform = ?"
                               " AND cid = ?", (config, platform, cid))
                for table in ("base", "owed", "deletions"):
                    tx.execute(
                        f"DELETE FROM {table} WHERE config = ? AND platform = ?"  # noqa: S608
                        " AND platform_id = ?",
                        (config, platform, pid),
                    )

    def readdress_records(
        self, config: str, platform: str, moves: Sequence[tuple[str, str]]
    ) -> None:
        if not moves:
            return
        with self._tx() as tx:
            for table in ("base", "owed", "deletions"):
                tx.executemany(
                    f"UPDATE {table} SET platform_id = ? WHERE config = ?"  # noqa: S608
                    " AND platform = ? AND platform_id = ?",
                    [(new, config, platform, old) for old, new in moves],
                )

    def staged_cids(self, config: str, platform: str, *, refreshed: bool = False) -> list[str]:
        sql, params = "SELECT cid FROM pulled WHERE config = ? AND platform = ?", [config, platform]
        if refreshed:  # a superset: the key's text may also appear inside a value
            sql += (" AND EXISTS (SELECT 1 FROM base b WHERE b.config = pulled.config"
                    " AND b.platform = pulled.platform AND b.cid = pulled.cid"
                    " AND b.payload LIKE ?)")
            params.append('%"er":%')
        with self._tx() as tx:
            return sorted({cid for (cid,) in tx.execute(sql, params)})

    def staged_cids_by_platform_id(
        self, config: str, platform: str, platform_ids: Sequence[str]
    ) -> dict[str, str]:
        return self._cids_of_ids("pulled", config, platform, platform_ids)

    def cids_by_email(self, config: str, email_keys: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._tx() as tx:
            for part in _chunks(sorted(set(email_keys))):
                for key, cid in tx.execute(
                    f"SELECT email_key, cid FROM canonical WHERE config = ?"  # noqa: S608
                    f" AND email_key IN ({_marks(len(part))}) ORDER BY cid DESC",
                    (config, *part),
                ):
                    found[key] = cid
        return found

    def known_cids(self, config: str, cids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self._tx() as tx:
            for part in _chunks(sorted(set(cids))):
                found.update(
                    row[0]
                    for row in tx.execute(
                        f"SELECT cid FROM canonical WHERE config = ?"  # noqa: S608
                        f" AND cid IN ({_marks(len(part))})",
                        (config, *part),
                    )
                )
        return found

    def worklist(self, config: str, chunk: int) -> Iterator[list[str]]:
        # two index range scans merged here: one ordered UNION re-sorts everything left on
        # every chunk (quadratic in the audience)
        after = ""
        while True:
            with self._tx() as tx:
                pulled = tx.execute(
                    "SELECT DISTINCT cid FROM pulled WHERE config = ? AND cid > ?"
                    " ORDER BY cid LIMIT ?",
                    (config, after, chunk),
                )
                dirty = tx.execute(
                    "SELECT cid FROM canonical WHERE config = ? AND dirty = 1 AND cid > ?"
                    " ORDER BY cid LIMIT ?",
                    (config, after, chunk),
                )
            cids = sorted({row[0] for row in pulled} | {row[0] for row in dirty})[:chunk]
            if not cids:
                return
            yield cids
            after = cids[-1]

    def load(
        self, config: str, cids: Sequence[str]
    ) -> tuple[
        dict[str, tuple[str, bool]], dict[str, dict[str, BaseRow]], dict[str, dict[str, BaseRow]]
    ]:
        canonical: dict[str, tuple[str, bool]] = {}
        bases: dict[str, dict[str, BaseRow]] = {}
        pulled: dict[str, dict[str, BaseRow]] = {}
        with self._tx() as tx:
            # the base is keyed (config, platform, cid): looked up by cid alone, it would be
            # scanned whole for every chunk (quadratic in the audience); by its platforms, it
            # is a seek per record
            platforms = [row[0] for row in tx.execute(_BASE_PLATFORMS, (config, config))]
            for_base = f"platform IN ({_marks(len(platforms))}) AND " if platforms else ""
            for part in _chunks(list(cids)):
                marks = _marks(len(part))
                for cid, payload, dirty in tx.execute(
                    "SELECT cid, payload, dirty FROM canonical"  # noqa: S608
                    f" WHERE config = ? AND cid IN ({marks})",
                    (config, *part),
                ):
                    canonical[cid] = (payload, bool(dirty))
                for table, target, within in (
                    ("base", bases, for_base), ("pulled", pulled, "")
                ):
                    for platform, cid, pid, payload, deleted, digest in tx.execute(
                        "SELECT platform, cid, platform_id, payload, deleted, hash"  # noqa: S608
                        f" FROM {table} WHERE config = ? AND {within}cid IN ({marks})",
                        (config, *(platforms if within else ()), *part),
                    ):
                        target.setdefault(cid, {})[platform] = BaseRow(
                            platform, cid, pid, payload, bool(deleted), digest
                        )
        return canonical, bases, pulled

    def stage_planned(
        self, config: str, rows: Sequence[tuple[str, str, str]], *, plan_id: str,
        retry: bool = False,
    ) -> None:
        if not rows:
            return
        with self._tx() as tx:
            tx.executemany(
                "INSERT INTO planned (config, cid, email_key, payload, failed)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (config, cid) DO UPDATE SET"
                " email_key = excluded.email_key, payload = excluded.payload,"
                " failed = excluded.failed",
                [(config, cid, key, payload, int(retry)) for cid, key, payload in rows],
            )

    def seal_plan(self, config: str, plan_id: str) -> int:
        with self._tx() as tx:
            return self._bump(tx, config, plan_id, keep_plan=False)

    # -- apply ----------------------------------------------------------------------------

    def snapshots(self, config: str, platform: str, cids: Sequence[str]) -> dict[str, BaseRow]:
        found: dict[str, BaseRow] = {}
        with self._tx() as tx:
            for part in _chunks(list(cids)):
                marks = _marks(len(part))
                # staged reads override the base; the staging is keyed by platform id: by
                # (config, platform) it would be scanned whole for every chunk, by its cid
                # index it is a seek per contact (`|| ''` keeps the planner off the former)
                for table, on in (("base", "platform"), ("pulled", "platform || ''")):
                    for cid, pid, payload, deleted, digest in tx.execute(
                        "SELECT cid, platform_id, payload, deleted, hash"  # noqa: S608
                        f" FROM {table} WHERE config = ? AND {on} = ? AND cid IN ({marks})",
                        (config, platform, *part),
                    ):
                        found[cid] = BaseRow(platform, cid, pid, payload, bool(deleted),
                                             digest or "")
        return found

    @staticmethod
    def _put_base(tx: Tx, config: str, rows: Sequence[BaseRow]) -> None:
        if not rows:
            return
        tx.executemany(
            "DELETE FROM base WHERE config = ? AND platform = ? AND platform_id = ? AND cid <> ?",
            [(config, r.platform, r.platform_id, r.cid) for r in rows],
        )
        tx.executemany(
            "INSERT INTO base (config, platform, cid, platform_id, payload, hash, deleted,"
            " rhash) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (config, platform, cid)"
            " DO UPDATE SET platform_id = excluded.platform_id, payload = excluded.payload,"
            " hash = excluded.hash, deleted = excluded.deleted, rhash = excluded.rhash",
            [
                (config, r.platform, r.cid, r.platform_id, r.payload,
                 r.hash or payload_hash(r.payload), int(r.deleted), r.rhash)
                for r in rows
            ],
        )

    @staticmethod
    def _canonical_from_planned(tx: Tx, config: str, cids: Sequence[str], dirty: bool) -> None:
        for part in _chunks(list(cids)):
            tx.execute(
                "INSERT INTO canonical (config, cid, email_key, payload, hash, dirty)"  # noqa: S608
                " SELECT config, cid, email_key, payload, '', ? FROM planned"
                f" WHERE config = ? AND cid IN ({_marks(len(part))})"
                " ON CONFLICT (config, cid) DO UPDATE SET email_key = excluded.email_key,"
                " payload = excluded.payload, dirty = excluded.dirty",
                (int(dirty), config, *part),
            )

    def commit_writes(
        self,
        config: str,
        platform: str,
        confirmed: Sequence[BaseRow],
        failed: Sequence[str],
        ledger: Sequence[LedgerEntry] = (),
        *,
        owed: Sequence[OwedWrite] = (),
        deleted: Sequence[Deletion] = (),
    ) -> None:
        with self._tx() as tx:
            self._put_base(tx, config, confirmed)
            done = [r.cid for r in confirmed]
            tx.executemany(
                "DELETE FROM pulled WHERE config = ? AND platform = ? AND cid = ?",
                [(config, platform, cid) for cid in done],
            )
            self._canonical_from_planned(tx, config, done, dirty=True)
            if failed:
                # what was read becomes the base; the contact is reconciled again next run
                read = [
                    BaseRow(platform, cid, pid, payload, bool(deleted), digest)
                    for part in _chunks(list(failed))
                    for cid, pid, payload, deleted, digest in tx.execute(
                        "SELECT cid, platform_id, payload, deleted, hash FROM pulled"  # noqa: S608
                        f" WHERE config = ? AND platform = ? AND cid IN ({_marks(len(part))})",
                        (config, platform, *part),
                    )
                ]
                self._put_base(tx, config, read)
                tx.executemany(
                    "DELETE FROM pulled WHERE config = ? AND platform = ? AND cid = ?",
                    [(config, platform, cid) for cid in failed],
                )
                tx.executemany(
                    "UPDATE planned SET failed = 1 WHERE config = ? AND cid = ?",
                    [(config, cid) for cid in failed],
                )
                self._canonical_from_planned(tx, config, failed, dirty=True)
            self._owe(tx, config, platform, done, owed, deleted)
            self._insert_ledger(tx, config, ledger)
            self._bump(tx, config, keep_plan=True)

    @staticmethod
    def _owe(
        tx: Tx, config: str, platform: str, done: Sequence[str], owed: Sequence[OwedWrite],
        deleted: Sequence[Deletion],
    ) -> None:
        """Settle the owed writes of a batch: confirmed ones paid, failed ones owed (first
        failure kept), deleted ones recorded once and reconciled again."""
        tx.executemany(
            "DELETE FROM owed WHERE config = ? AND platform = ? AND cid = ?",
            [(config, platform, cid) for cid in done],
        )
        tx.executemany(
            "INSERT INTO owed (config, platform, cid, email, platform_id, code, error,"
            " first_failed, last_failed, failures) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)"
            " ON CONFLICT (config, platform, cid) DO UPDATE SET email = excluded.email,"
            " platform_id = COALESCE(excluded.platform_id, owed.platform_id),"
            " code = excluded.code, error = excluded.error,"
            " last_failed = excluded.last_failed, failures = owed.failures + 1",
            [
                (config, o.platform, o.cid, o.email, o.platform_id, o.code, o.error,
                 o.first_failed or o.last_failed, o.last_failed)
                for o in owed
            ],
        )
        tx.executemany(
            "INSERT INTO deletions (config, platform, cid, email, platform_id, found_at,"
            " found_by, acted) VALUES (?, ?, ?, ?, ?, ?, ?, 0)"
            " ON CONFLICT (config, platform, cid) DO UPDATE SET email = excluded.email,"
            " platform_id = excluded.platform_id, found_at = excluded.found_at,"
            " found_by = excluded.found_by, acted = 0",
            [(config, d.platform, d.cid, d.email, d.platform_id, d.found_at, d.found_by)
             for d in deleted],
        )
        # the contact of a deletion is reconciled again: the `on_delete` policy acts on it
        tx.executemany(
            "UPDATE planned SET failed = 1 WHERE config = ? AND cid = ?",
            [(config, d.cid) for d in deleted],
        )

    def owed(self, config: str, platform: str | None = None) -> list[OwedWrite]:
        sql = (
            "SELECT platform, cid, email, error, last_failed, first_failed, platform_id, code,"
            " failures FROM owed WHERE config = ?"
        )
        params: tuple[str, ...] = (config,)
        if platform is not None:
            sql += " AND platform = ?"
            params = (config, platform)
        with self._tx() as tx:
            rows = tx.execute(sql + " ORDER BY platform, email, cid", params)
        return [
            OwedWrite(platform, cid, email, error, last, first, pid, code, int(failures))
            for platform, cid, email, error, last, first, pid, code, failures in rows
        ]

    def ack_owed(
        self, config: str, emails: Sequence[str] | None, platform: str | None = None
    ) -> int:
        where, params = "config = ?", [config]
        if platform is not None:
            where += " AND platform = ?"
            params.append(platform)
        dropped = 0
        with self._tx() as tx:
            parts = [None] if emails is None else list(_chunks(sorted(set(emails))))
            for part in parts:
                clause, args = where, list(params)
                if part is not None:
                    clause += f" AND email IN ({_marks(len(part))})"
                    args += part
                dropped += int(tx.execute(
                    f"SELECT COUNT(*) FROM owed WHERE {clause}", args  # noqa: S608
                )[0][0])
                tx.execute(f"DELETE FROM owed WHERE {clause}", args)  # noqa: S608
            if dropped:
                self._bump(tx, config, keep_plan=True)
        return dropped

    def deletions(self, config: str, *, pending: bool = False) -> list[Deletion]:
        sql = (
            "SELECT platform, cid, email, platform_id, found_at, found_by, acted FROM deletions"
            " WHERE config = ?"
        )
        if pending:
            sql += " AND acted <> 1"
        with self._tx() as tx:
            rows = tx.execute(sql + " ORDER BY found_at, platform, cid", (config,))
        return [
            Deletion(platform, cid, email, pid, found_at, found_by, acted == 1)
            for platform, cid, email, pid, found_at, found_by, acted in rows
        ]

    def members(self, config: str, cids: Sequence[str]) -> dict[str, dict[str, set[str]]]:
        found: dict[str, dict[str, set[str]]] = {}
        with self._tx() as tx:
            for part in _chunks(list(cids)):
                for platform, segment, cid in tx.execute(
                    "SELECT platform, segment, cid FROM members"  # noqa: S608
                    f" WHERE config = ? AND cid IN ({_marks(len(part))})",
                    (config, *part),
                ):
                    found.setdefault(cid, {}).setdefault(platform, set()).add(segment)
        return found

    def commit_members(
        self,
        config: str,
        platform: str,
        segment: str,
        added: Sequence[str],
        removed: Sequence[str],
    ) -> None:
        with self._tx() as tx:
            tx.executemany(
                "INSERT INTO members (config, platform, segment, cid) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (config, platform, segment, cid) DO NOTHING",
                [(config, platform, segment, cid) for cid in added],
            )
            tx.executemany(
                "DELETE FROM members WHERE config = ? AND platform = ? AND segment = ?"
                " AND cid = ?",
                [(config, platform, segment, cid) for cid in removed],
            )
            self._bump(tx, config, keep_plan=True)

    def rule_fingerprints(self, config: str) -> dict[tuple[str, str], str]:
        with self._tx() as tx:
            return {
                (platform, name): fingerprint
                for platform, name, fingerprint in tx.execute(
                    "SELECT platform, name, fingerprint FROM segment_rules WHERE config = ?",
                    (config,),
                )
            }

    def set_rule_fingerprints(
        self, config: str, platform: str, fingerprints: Mapping[str, str]
    ) -> None:
        with self._tx() as tx:
            tx.executemany(
                "INSERT INTO segment_rules (config, platform, name, fingerprint)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (config, platform, name)"
                " DO UPDATE SET fingerprint = excluded.fingerprint",
                [(config, platform, name, fp) for name, fp in sorted(fingerprints.items())],
            )

    def finish(self, config: str, *, hold: Collection[str] = ()) -> None:
        held = sorted(set(hold))
        # deletions on a held platform wait for a run reaching every platform their policy
        # acts on (the `on_delete` policy of a run that left some out)
        free = f" AND platform NOT IN ({_marks(len(held))})" if held else ""
        also = f" OR p.platform IN ({_marks(len(held))})" if held else ""
        with self._tx() as tx:
            # `acted`: 0 found by a write of this run, 2 awaiting the next run's plan (which
            # applies the `on_delete` policy), 1 done
            tx.execute(
                "UPDATE deletions SET acted = 1 WHERE config = ? AND acted = 2 AND NOT EXISTS"  # noqa: S608
                " (SELECT 1 FROM owed o WHERE o.config = deletions.config"
                " AND o.cid = deletions.cid)" + free,
                (config, *held),
            )
            tx.execute("UPDATE deletions SET acted = 2 WHERE config = ? AND acted = 0", (config,))
            # a live record read deleted: found by this run's read (and acted on by it, but
            # on a held platform or while its contact owes a write)
            tx.execute(
                "INSERT INTO deletions (config, platform, cid, email, platform_id, found_at,"  # noqa: S608
                " found_by, acted) SELECT p.config, p.platform, p.cid, COALESCE(NULLIF(p.email_key,"
                " ''), (SELECT c.email_key FROM canonical c WHERE c.config = p.config"
                " AND c.cid = p.cid), p.cid), p.platform_id, ?, 'read',"
                # a deletion read now waits too while its contact owes a write (an archive
                # refused) or on a held platform
                " CASE WHEN EXISTS (SELECT 1 FROM owed o WHERE o.config = p.config"
                f" AND o.cid = p.cid AND o.platform <> p.platform){also} THEN 2 ELSE 1 END"
                " FROM pulled p JOIN base b ON b.config = p.config"
                " AND b.platform = p.platform AND b.cid = p.cid AND b.deleted = 0"
                " WHERE p.config = ? AND p.deleted = 1"
                " ON CONFLICT (config, platform, cid) DO UPDATE SET email = excluded.email,"
                " platform_id = excluded.platform_id, found_at = excluded.found_at,"
                " found_by = excluded.found_by, acted = excluded.acted",
                (self.clock.now().isoformat(), *held, config),
            )
            tx.execute(
                "DELETE FROM owed WHERE config = ? AND EXISTS (SELECT 1 FROM pulled p"
                " WHERE p.config = owed.config AND p.platform = owed.platform"
                " AND p.cid = owed.cid AND p.deleted = 1)",
                (config,),
            )
            tx.execute(
                "DELETE FROM base WHERE config = ? AND EXISTS (SELECT 1 FROM pulled p"
                " WHERE p.config = base.config AND p.platform = base.platform"
                " AND p.platform_id = base.platform_id AND p.cid <> base.cid)",
                (config,),
            )
            tx.execute(
                "INSERT INTO base (config, platform, cid, platform_id, payload, hash, deleted,"
                " rhash) SELECT config, platform, cid, platform_id, payload, hash, deleted,"
                " rhash FROM pulled WHERE config = ? ON CONFLICT (config, platform, cid)"
                " DO UPDATE SET platform_id = excluded.platform_id,"
                " payload = excluded.payload, hash = excluded.hash, deleted = excluded.deleted,"
                " rhash = excluded.rhash",
                (config,),
            )
            tx.execute(
                "INSERT INTO canonical (config, cid, email_key, payload, hash, dirty)"
                " SELECT config, cid, email_key, payload, '', failed FROM planned"
                " WHERE config = ? ON CONFLICT (config, cid) DO UPDATE SET"
                " email_key = excluded.email_key, payload = excluded.payload,"
                " dirty = excluded.dirty",
                (config,),
            )
            tx.execute(
                "UPDATE cursors SET cursor = pending WHERE config = ? AND pending IS NOT NULL",
                (config,),
            )
            self._clear(tx, config)
            self._bump(tx, config, None, keep_plan=False)

    # -- owned ----------------------------------------------------------------------------

    def owned(self, config: str, platform: str | None = None) -> list[OwnedObject]:
        with self._tx() as tx:
            sql = "SELECT platform, kind, name, ref, definition_hash FROM owned WHERE config = ?"
            params: tuple[str, ...] = (config,)
            if platform is not None:
                sql += " AND platform = ?"
                params = (config, platform)
            rows = tx.execute(sql + " ORDER BY platform, kind, name", params)
        return [OwnedObject(*row) for row in rows]

    def set_owned(self, config: str, obj: OwnedObject, *, at: str) -> None:
        with self._tx() as tx:
            tx.execute(
                "INSERT INTO owned (config, platform, kind, name, ref, definition_hash,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT"
                " (config, platform, kind, name) DO UPDATE SET ref = excluded.ref,"
                " definition_hash = excluded.definition_hash",
                (config, obj.platform, obj.kind, obj.name, obj.ref, obj.definition_hash, at),
            )

    def forget_owned(self, config: str, platform: str, kind: str, name: str) -> None:
        with self._tx() as tx:
            tx.execute(
                "DELETE FROM owned WHERE config = ? AND platform = ? AND kind = ? AND name = ?",
                (config, platform, kind, name),
            )
            # the object is gone: nobody is a member of it any more, and an object made again
            # under its name starts empty (its members evaluated afresh, not taken as written)
            for table, column in (("members", "segment"), ("segment_rules", "name")):
                tx.execute(
                    f"DELETE FROM {table} WHERE config = ? AND platform = ? AND {column} = ?"  # noqa: S608
                    " AND NOT EXISTS (SELECT 1 FROM owned"
                    " WHERE config = ? AND platform = ? AND name = ?)",
                    (config, platform, name, config, platform, name),
                )

    # -- ledger ---------------------------------------------------------------------------

    @staticmethod
    def _insert_ledger(tx: Tx, config: str, entries: Iterable[LedgerEntry]) -> None:
        # in batches: a first sync of a million people records millions of entries
        for batch in _batched(entries, _LEDGER_BATCH):
            tx.executemany(
                "INSERT INTO ledger (config, cid, email, platform, at, previous, new, source,"
                " legal_basis, run_id, sent, source_platform, evidence, basis_from_default)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                [(config, e.cid, e.email, e.platform, e.at, e.previous, e.new, e.source,
                  e.legal_basis, e.run_id, e.sent, e.source_platform, e.evidence,
                  int(e.basis_from_default)) for e in batch],
            )

    def add_ledger(self, config: str, entries: Iterable[LedgerEntry]) -> None:
        with self._tx() as tx:
            self._insert_ledger(tx, config, entries)

    def ledger(
        self, config: str, cid: str | None = None, *, email: str | None = None,
        since: str | None = None,
    ) -> list[LedgerEntry]:
        sql = (
            "SELECT cid, email, platform, at, previous, new, source, legal_basis, run_id,"
            " sent, source_platform, evidence, basis_from_default FROM ledger WHERE config = ?"
        )
        params: list[str] = [config]
        if cid is not None:
            sql += " AND cid = ?"
            params.append(cid)
        if email is not None:  # the person's rows under any address they had
            sql += (
                " AND (email = ? OR cid IN (SELECT cid FROM canonical"
                " WHERE config = ? AND email_key = ?))"
            )
            params += [email, config, email]
        if since is not None:
            sql += " AND at >= ?"
            params.append(since)
        with self._tx() as tx:
            rows = list(tx.execute(sql + " ORDER BY id", tuple(params)))
        return [
            LedgerEntry(
                row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8],
                sent=row[9], source_platform=row[10], evidence=row[11],
                basis_from_default=bool(row[12]),
            )
            for row in rows
        ]

    # -- erasure --------------------------------------------------------------------------

    _ERASURE_KEY = "erasure"

    def erasure_key(self) -> bytes:
        with self._tx() as tx:
            rows = tx.execute("SELECT value FROM state_keys WHERE name = ?", (self._ERASURE_KEY,))
            if not rows:
                tx.execute(
                    "INSERT INTO state_keys (name, value) VALUES (?, ?)"
                    " ON CONFLICT (name) DO NOTHING",
                    (self._ERASURE_KEY, secrets.token_bytes(32).hex()),
                )
                rows = tx.execute(
                    "SELECT value FROM state_keys WHERE name = ?", (self._ERASURE_KEY,)
                )
        return bytes.fromhex(rows[0][0])

    def add_tombstone(self, config: str, email_hash: str, *, at: str) -> None:
        with self._tx() as tx:
            tx.execute(
                "INSERT INTO tombstones (config, email_hash, erased_at) VALUES (?, ?, ?)"
                " ON CONFLICT (config, email_hash) DO NOTHING",
                (config, email_hash, at),
            )

    def has_tombstones(self, config: str) -> bool:
        with self._tx() as tx:
            return bool(
                tx.execute("SELECT 1 FROM tombstones WHERE config = ? LIMIT 1", (config,))
            )

    def tombstoned(self, config: str, email_hashes: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self._tx() as tx:
            if not tx.execute("SELECT 1 FROM tombstones WHERE config = ? LIMIT 1", (config,)):
                return found
            for part in _chunks(sorted(set(email_hashes))):
                found.update(
                    row[0]
                    for row in tx.execute(
                        f"SELECT email_hash FROM tombstones WHERE config = ?"  # noqa: S608
                        f" AND email_hash IN ({_marks(len(part))})",
                        (config, *part),
                    )
                )
        return found

    def tombstones(self, config: str) -> list[tuple[str, str]]:
        with self._tx() as tx:
            rows = tx.execute(
                "SELECT email_hash, erased_at FROM tombstones WHERE config = ?"
                " ORDER BY erased_at, email_hash",
                (config,),
            )
        return [(h, at) for h, at in rows]

    @staticmethod
    def _person_cids(tx: Tx, config: str, email_key: str) -> list[str]:
        """Every contact id of the person: by canonical or staged email, or the id made of
        their email (`email`, `email#n`)."""
        like = email_key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = tx.execute(
            "SELECT cid FROM canonical WHERE config = ? AND (email_key = ? OR cid = ?"
            " OR cid LIKE ? ESCAPE '\\')"
            " UNION SELECT cid FROM pulled WHERE config = ? AND email_key = ?"
            " UNION SELECT cid FROM planned WHERE config = ? AND email_key = ?"
            " UNION SELECT cid FROM base WHERE config = ? AND (cid = ? OR cid LIKE ? ESCAPE '\\')"
            " UNION SELECT cid FROM ledger WHERE config = ? AND email = ?",
            (config, email_key, email_key, like + "#%", config, email_key, config, email_key,
             config, email_key, like + "#%", config, email_key),
        )
        return sorted({row[0] for row in rows})

    def owe_erasure(
        self, config: str, email_hash: str, platform: str, email_key: str, *, at: str,
        error: str,
    ) -> None:
        with self._tx() as tx:
            tx.execute(
                "INSERT INTO erasures_owed (config, email_hash, platform, email, since, error)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (config, email_hash, platform)"
                " DO UPDATE SET email = excluded.email, error = excluded.error",
                (config, email_hash, platform, email_key, at, error),
            )

    def settle_erasure(self, config: str, email_hash: str, platform: str) -> None:
        with self._tx() as tx:
            tx.execute(
                "DELETE FROM erasures_owed WHERE config = ? AND email_hash = ? AND platform = ?",
                (config, email_hash, platform),
            )

    def owed_erasures(self, config: str, platform: str | None = None) -> list[OwedErasure]:
        where, args = "config = ?", [config]
        if platform is not None:
            where, args = where + " AND platform = ?", [config, platform]
        with self._tx() as tx:
            rows = tx.execute(
                f"SELECT email_hash, platform, email, since, error FROM erasures_owed"  # noqa: S608
                f" WHERE {where} ORDER BY since, email_hash, platform",
                tuple(args),
            )
        return [OwedErasure(*row) for row in rows]

    def standing(self, config: str, platform: str | None = None) -> list[StandingProblem]:
        where, args = "config = ?", [config]
        if platform is not None:
            where, args = where + " AND platform = ?", [config, platform]
        with self._tx() as tx:
            rows = tx.execute(
                f"SELECT platform, platform_id, kind, ref, cid, since FROM standing"  # noqa: S608
                f" WHERE {where} ORDER BY since, platform, platform_id",
                tuple(args),
            )
        return [StandingProblem(*row) for row in rows]

    def set_standing(self, config: str, problems: Sequence[StandingProblem]) -> None:
        if not problems:
            return
        now = self.clock.now().isoformat()
        with self._tx() as tx:
            tx.executemany(
                "INSERT INTO standing (config, platform, platform_id, kind, ref, cid, since)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (config, platform, platform_id)"
                " DO UPDATE SET kind = excluded.kind, ref = excluded.ref, cid = excluded.cid",
                [(config, p.platform, p.platform_id, p.kind, p.ref, p.cid, p.since or now)
                 for p in problems],
            )

    def clear_standing(self, config: str, platform: str, platform_ids: Sequence[str]) -> None:
        with self._tx() as tx:
            for part in _chunks(list(platform_ids)):
                tx.execute(
                    f"DELETE FROM standing WHERE config = ? AND platform = ?"  # noqa: S608
                    f" AND platform_id IN ({_marks(len(part))})",
                    (config, platform, *part),
                )

    def erasure_targets(self, config: str, email_key: str) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._tx() as tx:
            cids = self._person_cids(tx, config, email_key)
            for part in _chunks(cids):
                for platform, pid in tx.execute(
                    f"SELECT platform, platform_id FROM base WHERE config = ?"  # noqa: S608
                    f" AND deleted = 0 AND cid IN ({_marks(len(part))}) ORDER BY cid",
                    (config, *part),
                ):
                    found.setdefault(platform, pid)
        return found

    def purge_person(self, config: str, email_key: str, label: str) -> int:
        with self._tx() as tx:
            cids = self._person_cids(tx, config, email_key)
            for part in _chunks(cids):
                marks = _marks(len(part))
                for table in ("base", "canonical", "pulled", "planned", "members", "owed",
                              "deletions", "base_kept", "members_kept", "standing"):
                    tx.execute(
                        f"DELETE FROM {table} WHERE config = ? AND cid IN ({marks})",  # noqa: S608
                        (config, *part),
                    )
                tx.execute(
                    f"UPDATE ledger SET cid = ?, email = ? WHERE config = ?"  # noqa: S608
                    f" AND cid IN ({marks})",
                    (label, label, config, *part),
                )
            tx.execute(
                "UPDATE ledger SET cid = ?, email = ? WHERE config = ? AND email = ?",
                (label, label, config, email_key),
            )
            self._scrub_runs(tx, config, email_key, label)
            # engagement refresh cursors may tally per member (a platform's member id, a
            # hash of the address): they start over, so the next refresh reads whole
            tx.execute("DELETE FROM cursors WHERE config = ? AND platform LIKE ?",
                       (config, "%#engagement"))
            self._bump(tx, config, keep_plan=True)
        return len(cids)

    @staticmethod
    def _scrub_runs(tx: Tx, config: str, email_key: str, label: str) -> None:
        """Replace the address (any case, plain or JSON-escaped) by `label` in what the runs
        of `config` recorded: reports, errors and diagnostics."""
        spellings = {email_key, json.dumps(email_key)[1:-1]}
        pattern = re.compile("|".join(re.escape(s) for s in spellings), re.IGNORECASE)

        def scrub(text: str | None) -> str | None:
            return None if text is None else pattern.sub(label, text)

        needles = [f"%{s.lower()}%" for s in spellings]
        where = " OR ".join("LOWER({col}) LIKE ?" for _ in needles)
        runs = "SELECT run_id FROM runs WHERE config = ?"
        for run_id, report in tx.execute(
            "SELECT run_id, report FROM runs WHERE config = ? AND ("  # noqa: S608
            + where.format(col="report") + ")",
            (config, *needles),
        ):
            tx.execute("UPDATE runs SET report = ? WHERE run_id = ?", (scrub(report), run_id))
        for row_id, email, message in tx.execute(
            f"SELECT id, email, message FROM run_errors WHERE run_id IN ({runs}) AND ("  # noqa: S608
            + where.format(col="email") + " OR " + where.format(col="message") + ")",
            (config, *needles, *needles),
        ):
            tx.execute(
                "UPDATE run_errors SET email = ?, message = ? WHERE id = ?",
                (scrub(email), scrub(message), row_id),
            )
        for row_id, message in tx.execute(
            f"SELECT id, message FROM run_diagnostics WHERE run_id IN ({runs}) AND ("  # noqa: S608
            + where.format(col="message") + ")",
            (config, *needles),
        ):
            tx.execute(
                "UPDATE run_diagnostics SET message = ? WHERE id = ?", (scrub(message), row_id)
            )

    # -- account bindings -----------------------------------------------------------------

    def binding(self, config: str, platform: str) -> Binding | None:
        with self._tx() as tx:
            rows = tx.execute(
                "SELECT account_id, label, bound_at, checked FROM bindings"
                " WHERE config = ? AND platform = ?",
                (config, platform),
            )
        if not rows:
            return None
        account_id, label, bound_at, checked = rows[0]
        return Binding(platform, account_id, label, bound_at, checked)

    def bind(
        self, config: str, platform: str, account_id: str | None, label: str | None, *, at: str
    ) -> None:
        with self._tx() as tx:
            tx.execute(
                "INSERT INTO bindings (config, platform, account_id, label, bound_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (config, platform) DO UPDATE SET"
                " account_id = excluded.account_id, label = excluded.label,"
                " bound_at = excluded.bound_at",
                (config, platform, account_id, label, at),
            )
            if account_id is not None:
                self._restore_kept(tx, config, platform, account_id)

    @staticmethod
    def _restore_kept(tx: Tx, config: str, platform: str, account_id: str) -> None:
        """Back on an account a rebind left: its owned objects, the snapshots and ids of the
        contacts still held, and their static memberships are the platform's again."""
        key = (config, platform, account_id)
        tx.execute(
            "INSERT INTO owned (config, platform, kind, name, ref, definition_hash, created_at)"
            " SELECT k.config, k.platform, k.kind, k.name, k.ref, k.definition_hash,"
            " k.created_at FROM owned_kept k WHERE k.config = ? AND k.platform = ?"
            " AND k.account_id = ? ON CONFLICT DO NOTHING",
            key,
        )
        tx.execute(
            "INSERT INTO base (config, platform, cid, platform_id, payload, hash, deleted)"
            " SELECT k.config, k.platform, k.cid, k.platform_id, k.payload, k.hash, k.deleted"
            " FROM base_kept k WHERE k.config = ? AND k.platform = ? AND k.account_id = ?"
            " AND EXISTS (SELECT 1 FROM canonical c WHERE c.config = k.config"
            " AND c.cid = k.cid) ON CONFLICT DO NOTHING",
            key,
        )
        tx.execute(
            "INSERT INTO members (config, platform, segment, cid) SELECT k.config, k.platform,"
            " k.segment, k.cid FROM members_kept k WHERE k.config = ? AND k.platform = ?"
            " AND k.account_id = ? AND EXISTS (SELECT 1 FROM canonical c"
            " WHERE c.config = k.config AND c.cid = k.cid) ON CONFLICT DO NOTHING",
            key,
        )
        for table in ("owned_kept", "base_kept", "members_kept"):
            tx.execute(
                f"DELETE FROM {table} WHERE config = ? AND platform = ?"  # noqa: S608
                " AND account_id = ?",
                key,
            )

    def set_checked(self, config: str, platform: str, fingerprint: str | None) -> None:
        with self._tx() as tx:
            tx.execute(
                "INSERT INTO bindings (config, platform, checked) VALUES (?, ?, ?)"
                " ON CONFLICT (config, platform) DO UPDATE SET checked = excluded.checked",
                (config, platform, fingerprint),
            )

    def forget_platform(
        self, config: str, platform: str, *, dry_run: bool = False
    ) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._tx() as tx:
            bound = tx.execute(
                "SELECT account_id FROM bindings WHERE config = ? AND platform = ?",
                (config, platform),
            )
            if bound and bound[0][0] is not None and not dry_run:
                self._keep(tx, config, platform, str(bound[0][0]))
            for name, table in (
                ("records", "base"),
                ("owned", "owned"),
                ("memberships", "members"),
                ("cursor", "cursors"),
                ("binding", "bindings"),
                # what the old account owed or deleted names its records
                ("owed", "owed"),
                ("deletions", "deletions"),
            ):
                counts[name] = int(
                    tx.execute(
                        f"SELECT COUNT(*) FROM {table} WHERE config = ? AND platform = ?",  # noqa: S608
                        (config, platform),
                    )[0][0]
                )
                if not dry_run:
                    tx.execute(
                        f"DELETE FROM {table} WHERE config = ? AND platform = ?",  # noqa: S608
                        (config, platform),
                    )
            if dry_run:
                return counts
            # the problems found in the old account name its records
            tx.execute("DELETE FROM standing WHERE config = ? AND platform = ?",
                       (config, platform))
            # the platform's engagement refresh (segsync.sync.engagement) starts over too
            tx.execute("DELETE FROM cursors WHERE config = ? AND platform = ?",
                       (config, f"{platform}#engagement"))
            # a staged plan was made on the forgotten ids: discard it
            self._clear(tx, config)
            tx.execute("UPDATE canonical SET dirty = 1 WHERE config = ?", (config,))
            self._bump(tx, config, None, keep_plan=False)
        return counts

    @staticmethod
    def _keep(tx: Tx, config: str, platform: str, account_id: str) -> None:
        """Keep what the state holds of the account a rebind leaves, by its id (replacing
        what was kept of it before): `_restore_kept` gives it back."""
        key = (config, platform, account_id)
        for table in ("owned_kept", "base_kept", "members_kept"):
            tx.execute(
                f"DELETE FROM {table} WHERE config = ? AND platform = ?"  # noqa: S608
                " AND account_id = ?",
                key,
            )
        tx.execute(
            "INSERT INTO owned_kept (config, platform, account_id, kind, name, ref,"
            " definition_hash, created_at) SELECT config, platform, ?, kind, name, ref,"
            " definition_hash, created_at FROM owned WHERE config = ? AND platform = ?",
            (account_id, config, platform),
        )
        tx.execute(
            "INSERT INTO base_kept (config, platform, account_id, cid, platform_id, payload,"
            " hash, deleted) SELECT config, platform, ?, cid, platform_id, payload, hash,"
            " deleted FROM base WHERE config = ? AND platform = ?",
            (account_id, config, platform),
        )
        tx.execute(
            "INSERT INTO members_kept (config, platform, account_id, segment, cid)"
            " SELECT config, platform, ?, segment, cid FROM members WHERE config = ?"
            " AND platform = ?",
            (account_id, config, platform),
        )

    # -- runs -----------------------------------------------------------------------------

    def start_run(self, config: str, run_id: str, *, at: str) -> None:
        with self._tx() as tx:
            # called under the run lock: a run of this config still `running` died
            tx.execute(
                "UPDATE runs SET status = ?, finished_at = COALESCE(finished_at, ?)"
                " WHERE config = ? AND status = ?",
                ("abandoned", at, config, "running"),
            )
            tx.execute(
                "INSERT INTO runs (run_id, config, started_at, status) VALUES (?, ?, ?, ?)",
                (run_id, config, at, "running"),
            )

    def end_run(
        self,
        run_id: str,
        *,
        at: str,
        status: str,
        report: dict[str, Any],
        errors: Sequence[tuple[str, str | None, str | None, str | None, str]] = (),
        diagnostics: Sequence[tuple[str | None, str | None, str, str]] = (),
    ) -> None:
        with self._tx() as tx:
            tx.execute(
                "UPDATE runs SET finished_at = ?, status = ?, report = ? WHERE run_id = ?",
                (at, status, json.dumps(report, sort_keys=True, default=str), run_id),
            )
            if errors:
                tx.executemany(
                    "INSERT INTO run_errors (run_id, platform, email, platform_id, code, message)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [(run_id, *e) for e in errors],
                )
            if diagnostics:
                tx.executemany(
                    "INSERT INTO run_diagnostics (run_id, platform, segment, level, message)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [(run_id, *d) for d in diagnostics],
                )

    def runs(self, config: str, limit: int = 10) -> list[dict[str, Any]]:
        with self._tx() as tx:
            rows = tx.execute(
                "SELECT run_id, started_at, finished_at, status, report FROM runs"
                " WHERE config = ? ORDER BY started_at DESC, run_id DESC LIMIT ?",
                (config, limit),
            )
        return [self._run_row(row) for row in rows]

    def run(self, config: str, run_id: str) -> dict[str, Any] | None:
        with self._tx() as tx:
            rows = tx.execute(
                "SELECT run_id, started_at, finished_at, status, report FROM runs"
                " WHERE config = ? AND run_id = ?",
                (config, run_id),
            )
        return self._run_row(rows[0]) if rows else None

    @staticmethod
    def _run_row(row: Sequence[Any]) -> dict[str, Any]:
        run_id, started, finished, status, report = row
        return {
            "run_id": run_id,
            "started_at": started,
            "finished_at": finished,
            "status": status,
            "report": json.loads(report) if report else None,
        }

    def run_errors(self, run_id: str) -> list[dict[str, str | None]]:
        with self._tx() as tx:
            rows = tx.execute(
                "SELECT platform, email, platform_id, code, message FROM run_errors"
                " WHERE run_id = ? ORDER BY id",
                (run_id,),
            )
        keys = ("platform", "email", "platform_id", "code", "message")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def run_diagnostics(self, run_id: str) -> list[dict[str, str | None]]:
        with self._tx() as tx:
            rows = tx.execute(
                "SELECT platform, segment, level, message FROM run_diagnostics"
                " WHERE run_id = ? ORDER BY id",
                (run_id,),
            )
        keys = ("platform", "segment", "level", "message")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def find_runs(self, config: str, prefix: str) -> list[str]:
        with self._tx() as tx:
            exact = tx.execute(
                "SELECT run_id FROM runs WHERE config = ? AND run_id = ?", (config, prefix)
            )
            if exact:
                return [exact[0][0]]
            # compared here, not by LIKE or a range: no wildcard, no collation
            rows = tx.execute(
                "SELECT run_id FROM runs WHERE config = ? ORDER BY started_at DESC, run_id DESC",
                (config,),
            )
        return [row[0] for row in rows if prefix and row[0].startswith(prefix)]

    def prune_runs(
        self, config: str, *, keep_runs: int | None = None, before: str | None = None
    ) -> int:
        with self._tx() as tx:
            rows = tx.execute(
                "SELECT run_id, started_at, status FROM runs WHERE config = ?"
                " ORDER BY started_at DESC, run_id DESC",
                (config,),
            )
            gone = [
                run_id for index, (run_id, started, status) in enumerate(rows)
                if status != "running" and (
                    (keep_runs is not None and index >= keep_runs)
                    or (before is not None and started < before)
                )
            ]
            for chunk in _chunks(gone):
                for table in ("run_errors", "run_diagnostics", "runs"):
                    tx.execute(
                        f"DELETE FROM {table} WHERE run_id IN ({_marks(len(chunk))})",  # noqa: S608
                        tuple(chunk),
                    )
        return len(gone)

    # -- reading --------------------------------------------------------------------------

    def canonical_contacts(self, config: str) -> Iterator[tuple[str, dict[str, Any], bool]]:
        after = ""
        while True:
            with self._tx() as tx:
                rows = tx.execute(
                    "SELECT cid, payload, dirty FROM canonical WHERE config = ? AND cid > ?"
                    " ORDER BY cid LIMIT 1000",
                    (config, after),
                )
            if not rows:
                return
            for cid, payload, dirty in rows:
                yield cid, json.loads(payload), bool(dirty)
            after = rows[-1][0]

    def base_rows(self, config: str, platform: str) -> Iterator[BaseRow]:
        after = ""
        while True:
            with self._tx() as tx:
                rows = tx.execute(
                    "SELECT cid, platform_id, payload, deleted FROM base WHERE config = ?"
                    " AND platform = ? AND cid > ? ORDER BY cid LIMIT 1000",
                    (config, platform, after),
                )
            if not rows:
                return
            for cid, pid, payload, deleted in rows:
                yield BaseRow(platform, cid, pid, payload, bool(deleted))
            after = rows[-1][0]

    def counts(self, config: str) -> dict[str, int]:
        out: dict[str, int] = {}
        with self._tx() as tx:
            for name, sql in (
                ("contacts", "SELECT COUNT(*) FROM canonical WHERE config = ?"),
                ("dirty", "SELECT COUNT(*) FROM canonical WHERE config = ? AND dirty = 1"),
                ("records", "SELECT COUNT(*) FROM base WHERE config = ?"),
                ("owned", "SELECT COUNT(*) FROM owned WHERE config = ?"),
                ("ledger", "SELECT COUNT(*) FROM ledger WHERE config = ?"),
                ("runs", "SELECT COUNT(*) FROM runs WHERE config = ?"),
            ):
                out[name] = int(tx.execute(sql, (config,))[0][0])
        return out
