"""The roles of one configuration's state, each a small protocol a sync step depends on.

`ConfigState` (`StateStore.scoped(config)`) implements them all; a step names the roles it
uses, so what it may touch is its signature:

- `RunRecords`: the run lock, the state generation, the runs and their reports;
- `ReadStaging`: cursors, the id map and the staging of what a pull read (the pull);
- `Snapshots`: the worklist, base and canonical snapshots, the planned views, static segment
  membership, and the commits of confirmed writes (the merge, segments and apply);
- `Ownership`: the tags, lists and segments segsync created;
- `ConsentLedger`: every consent change;
- `Tombstones` (read by the pull) and `Erasure`: the people erased, as keyed hashes;
- `Bindings`: the account each platform's state belongs to, and the config last checked.

Every method is the `StateStore` method of the same name without its `config` (see
`segsync.state.base.StateStore` for the contracts).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from segsync.state.base import (
    BaseRow,
    Binding,
    Deletion,
    LedgerEntry,
    OwedErasure,
    OwedWrite,
    OwnedObject,
    StandingProblem,
)

__all__ = [
    "Bindings",
    "ConsentLedger",
    "Erasure",
    "Ownership",
    "PulledRow",
    "ReadStaging",
    "RunRecords",
    "Snapshots",
    "Tombstones",
    "Transactional",
]

PulledRow = tuple[str, str, str, str, str, bool] | tuple[str, str, str, str, str, bool, str]
"""A staged read: `(platform_id, cid, email_key, payload, hash, deleted)`, with the read hash
of the record as read (`segsync.sync.snapshot.read_hash`) where the payload is that read."""

Loaded = tuple[
    dict[str, tuple[str, bool]], dict[str, dict[str, BaseRow]], dict[str, dict[str, BaseRow]]
]
"""What `Snapshots.load` gives: canonical `(payload, dirty)`, base and staged rows by platform."""


class Transactional(Protocol):
    """Calls made inside `transaction()` are one transaction (never across an `await`)."""

    def transaction(self) -> AbstractContextManager[Any]: ...


class RunRecords(Transactional, Protocol):
    """The run lock, the state generation, and the record of runs."""

    def lock(self) -> AbstractContextManager[None]: ...

    def generation(self) -> int: ...

    def plan_id(self) -> str | None: ...

    def start_run(self, run_id: str, *, at: str) -> None: ...

    def end_run(
        self,
        run_id: str,
        *,
        at: str,
        status: str,
        report: dict[str, Any],
        errors: Sequence[tuple[str, str | None, str | None, str | None, str]] = (),
        diagnostics: Sequence[tuple[str | None, str | None, str, str]] = (),
    ) -> None: ...

    def runs(self, limit: int = 10) -> list[dict[str, Any]]: ...

    def find_runs(self, prefix: str) -> list[str]: ...

    def run(self, run_id: str) -> dict[str, Any] | None: ...

    def run_errors(self, run_id: str) -> list[dict[str, str | None]]: ...

    def run_diagnostics(self, run_id: str) -> list[dict[str, str | None]]: ...

    def prune_runs(self, *, keep_runs: int | None = None, before: str | None = None) -> int: ...

    def counts(self) -> dict[str, int]: ...


class Tombstones(Protocol):
    """The people erased: the key of their hashes, and which hashes are tombstones."""

    def erasure_key(self) -> bytes: ...

    def has_tombstones(self) -> bool: ...

    def tombstoned(self, email_hashes: Sequence[str]) -> set[str]: ...

    def settle_erasure(self, email_hash: str, platform: str) -> None: ...

    def owed_erasures(self, platform: str | None = None) -> list[OwedErasure]: ...


class ReadStaging(Transactional, Tombstones, Protocol):
    """Cursors, the id map, the staging of the records a pull read, the tombstones it
    skips, and the problems it finds that stand (duplicates, erased people held again)."""

    def cursor(self, platform: str) -> str | None: ...

    def set_pending_cursor(self, platform: str, cursor: str | None) -> None: ...

    def begin_stage(self) -> None: ...

    def stage_pulled(self, platform: str, rows: Sequence[PulledRow]) -> None: ...

    def new_records_of_renamed(self) -> list[tuple[str, str, str]]: ...

    def set_pulled_cids(self, rows: Sequence[tuple[str, str, str]]) -> None: ...

    def relink_pulled(self) -> int: ...

    def moved_records(self) -> list[tuple[str, str, str, str, str]]: ...

    def relink_records(self, rows: Sequence[tuple[str, str, str]]) -> None: ...

    def discard_pulled(self, platform: str) -> None: ...

    def settle_pulled(self, platform: str) -> None: ...

    def drop_pulled(self, platform: str, platform_ids: Sequence[str]) -> None: ...

    def duplicate_records(self, platform: str) -> list[tuple[str, str, str]]: ...

    def cids_by_platform_id(
        self, platform: str, platform_ids: Sequence[str]
    ) -> dict[str, str]: ...

    def linked_reads(
        self, platform: str, platform_ids: Sequence[str]
    ) -> dict[str, tuple[str, str | None, str | None]]: ...

    def unread_neighbours(self, platform: str) -> list[BaseRow]: ...

    def cids_by_email(self, email_keys: Sequence[str]) -> dict[str, str]: ...

    def known_cids(self, cids: Sequence[str]) -> set[str]: ...

    def readdress_records(self, platform: str, moves: Sequence[tuple[str, str]]) -> None: ...

    def forget_records(self, platform: str, platform_ids: Sequence[str]) -> None: ...

    def load(self, cids: Sequence[str]) -> Loaded: ...

    def standing(self, platform: str | None = None) -> list[StandingProblem]: ...

    def set_standing(self, problems: Sequence[StandingProblem]) -> None: ...

    def clear_standing(self, platform: str, platform_ids: Sequence[str]) -> None: ...

    def staged_cids_by_platform_id(
        self, platform: str, platform_ids: Sequence[str]
    ) -> dict[str, str]: ...


class Snapshots(Transactional, Protocol):
    """Base and canonical snapshots, planned views, static segment membership, and the
    commits of what the platforms confirmed."""

    def worklist(self, chunk: int) -> Iterator[list[str]]: ...

    def load(self, cids: Sequence[str]) -> Loaded: ...

    def stage_planned(
        self, rows: Sequence[tuple[str, str, str]], *, plan_id: str, retry: bool = False
    ) -> None: ...

    def seal_plan(self, plan_id: str) -> int: ...

    def canonical_contacts(self) -> Iterator[tuple[str, dict[str, Any], bool]]: ...

    def snapshots(self, platform: str, cids: Sequence[str]) -> dict[str, BaseRow]: ...

    def commit_writes(
        self,
        platform: str,
        confirmed: Sequence[BaseRow],
        failed: Sequence[str],
        ledger: Sequence[LedgerEntry] = (),
        *,
        owed: Sequence[OwedWrite] = (),
        deleted: Sequence[Deletion] = (),
    ) -> None: ...

    def owed(self, platform: str | None = None) -> list[OwedWrite]: ...

    def deletions(self, *, pending: bool = False) -> list[Deletion]: ...

    def members(self, cids: Sequence[str]) -> dict[str, dict[str, set[str]]]: ...

    def commit_members(
        self, platform: str, segment: str, added: Sequence[str], removed: Sequence[str]
    ) -> None: ...

    def rule_fingerprints(self) -> dict[tuple[str, str], str]: ...

    def set_rule_fingerprints(self, platform: str, fingerprints: Mapping[str, str]) -> None: ...

    def finish(self, *, hold: Collection[str] = ()) -> None: ...


class Ownership(Protocol):
    """The tags, lists and segments segsync created (the only ones it edits or deletes)."""

    def owned(self, platform: str | None = None) -> list[OwnedObject]: ...

    def set_owned(self, obj: OwnedObject, *, at: str) -> None: ...

    def forget_owned(self, platform: str, kind: str, name: str) -> None: ...


class ConsentLedger(Protocol):
    """Every consent change, recorded once."""

    def add_ledger(self, entries: Iterable[LedgerEntry]) -> None: ...

    def ledger(
        self, cid: str | None = None, *, email: str | None = None, since: str | None = None
    ) -> list[LedgerEntry]: ...


class Erasure(Tombstones, Protocol):
    """Erasing a person: their tombstone, their ids, and forgetting them."""

    def add_tombstone(self, email_hash: str, *, at: str) -> None: ...

    def tombstones(self) -> list[tuple[str, str]]: ...

    def erasure_targets(self, email_key: str) -> dict[str, str]: ...

    def owe_erasure(
        self, email_hash: str, platform: str, email_key: str, *, at: str, error: str
    ) -> None: ...

    def purge_person(self, email_key: str, label: str) -> int: ...


class Bindings(Protocol):
    """The account each platform's state belongs to, and the connector config last checked."""

    def binding(self, platform: str) -> Binding | None: ...

    def bind(
        self, platform: str, account_id: str | None, label: str | None, *, at: str
    ) -> None: ...

    def set_checked(self, platform: str, fingerprint: str | None) -> None: ...

    def forget_platform(self, platform: str, *, dry_run: bool = False) -> dict[str, int]: ...
