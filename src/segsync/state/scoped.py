"""One sync configuration's state: the `StateStore` contract with `config` bound once.

`StateStore.scoped(config)` returns a `ConfigState`; the engine and its steps hold one and
never pass the configuration's name again. It implements the role protocols of
`segsync.state.roles` (runs, read staging, snapshots, ownership, ledger, erasure,
bindings); each
method is the store method of the same name (see `segsync.state.base.StateStore` for the contracts).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from segsync.state.base import (
    BaseRow,
    Binding,
    Deletion,
    LedgerEntry,
    OwedErasure,
    OwedWrite,
    OwnedObject,
    StandingProblem,
    StateStore,
)
from segsync.state.roles import (
    Bindings,
    ConsentLedger,
    Erasure,
    Loaded,
    Ownership,
    PulledRow,
    ReadStaging,
    RunRecords,
    Snapshots,
)

__all__ = ["ConfigState", "PulledRow"]


@dataclasses.dataclass(frozen=True)
class ConfigState(
    RunRecords, ReadStaging, Snapshots, Ownership, ConsentLedger, Erasure, Bindings
):
    """The state of the sync configuration `config` in `store`, in all its roles."""

    store: StateStore
    config: str

    def transaction(self) -> AbstractContextManager[Any]:
        """Group the calls made inside into one transaction (never across an `await`)."""
        return self.store.transaction()

    # -- the run --------------------------------------------------------------------------

    def lock(self) -> AbstractContextManager[None]:
        return self.store.lock(self.config)

    def generation(self) -> int:
        return self.store.generation(self.config)

    def plan_id(self) -> str | None:
        return self.store.plan_id(self.config)

    def start_run(self, run_id: str, *, at: str) -> None:
        self.store.start_run(self.config, run_id, at=at)

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
        self.store.end_run(run_id, at=at, status=status, report=report, errors=errors,
                           diagnostics=diagnostics)

    def runs(self, limit: int = 10) -> list[dict[str, Any]]:
        return self.store.runs(self.config, limit)

    def find_runs(self, prefix: str) -> list[str]:
        return self.store.find_runs(self.config, prefix)

    def run(self, run_id: str) -> dict[str, Any] | None:
        return self.store.run(self.config, run_id)

    def run_errors(self, run_id: str) -> list[dict[str, str | None]]:
        return self.store.run_errors(run_id)

    def run_diagnostics(self, run_id: str) -> list[dict[str, str | None]]:
        return self.store.run_diagnostics(run_id)

    def prune_runs(self, *, keep_runs: int | None = None, before: str | None = None) -> int:
        return self.store.prune_runs(self.config, keep_runs=keep_runs, before=before)

    def counts(self) -> dict[str, int]:
        return self.store.counts(self.config)

    # -- pull staging ---------------------------------------------------------------------

    def cursor(self, platform: str) -> str | None:
        return self.store.cursor(self.config, platform)

    def pending_cursor(self, platform: str) -> str | None:
        return self.store.pending_cursor(self.config, platform)

    def set_pending_cursor(self, platform: str, cursor: str | None) -> None:
        self.store.set_pending_cursor(self.config, platform, cursor)

    def begin_stage(self) -> None:
        self.store.begin_stage(self.config)

    def stage_pulled(self, platform: str, rows: Sequence[PulledRow]) -> None:
        self.store.stage_pulled(self.config, platform, rows)

    def new_records_of_renamed(self) -> list[tuple[str, str, str]]:
        return self.store.new_records_of_renamed(self.config)

    def set_pulled_cids(self, rows: Sequence[tuple[str, str, str]]) -> None:
        self.store.set_pulled_cids(self.config, rows)

    def relink_pulled(self) -> int:
        return self.store.relink_pulled(self.config)

    def moved_records(self) -> list[tuple[str, str, str, str, str]]:
        return self.store.moved_records(self.config)

    def relink_records(self, rows: Sequence[tuple[str, str, str]]) -> None:
        self.store.relink_records(self.config, rows)

    def discard_pulled(self, platform: str) -> None:
        self.store.discard_pulled(self.config, platform)

    def settle_pulled(self, platform: str) -> None:
        self.store.settle_pulled(self.config, platform)

    def drop_pulled(self, platform: str, platform_ids: Sequence[str]) -> None:
        self.store.drop_pulled(self.config, platform, platform_ids)

    def duplicate_records(self, platform: str) -> list[tuple[str, str, str]]:
        return self.store.duplicate_records(self.config, platform)

    def cids_by_platform_id(self, platform: str, platform_ids: Sequence[str]) -> dict[str, str]:
        return self.store.cids_by_platform_id(self.config, platform, platform_ids)

    def linked_reads(
        self, platform: str, platform_ids: Sequence[str]
    ) -> dict[str, tuple[str, str | None, str | None]]:
        return self.store.linked_reads(self.config, platform, platform_ids)

    def unread_neighbours(self, platform: str) -> list[BaseRow]:
        return self.store.unread_neighbours(self.config, platform)

    def readdress_records(self, platform: str, moves: Sequence[tuple[str, str]]) -> None:
        self.store.readdress_records(self.config, platform, moves)

    def forget_records(self, platform: str, platform_ids: Sequence[str]) -> None:
        self.store.forget_records(self.config, platform, platform_ids)

    def staged_cids(self, platform: str, *, refreshed: bool = False) -> list[str]:
        return self.store.staged_cids(self.config, platform, refreshed=refreshed)

    def staged_cids_by_platform_id(
        self, platform: str, platform_ids: Sequence[str]
    ) -> dict[str, str]:
        return self.store.staged_cids_by_platform_id(self.config, platform, platform_ids)

    def cids_by_email(self, email_keys: Sequence[str]) -> dict[str, str]:
        return self.store.cids_by_email(self.config, email_keys)

    def known_cids(self, cids: Sequence[str]) -> set[str]:
        return self.store.known_cids(self.config, cids)

    # -- plan staging ---------------------------------------------------------------------

    def worklist(self, chunk: int) -> Iterator[list[str]]:
        return self.store.worklist(self.config, chunk)

    def load(self, cids: Sequence[str]) -> Loaded:
        return self.store.load(self.config, cids)

    def stage_planned(
        self, rows: Sequence[tuple[str, str, str]], *, plan_id: str, retry: bool = False
    ) -> None:
        self.store.stage_planned(self.config, rows, plan_id=plan_id, retry=retry)

    def seal_plan(self, plan_id: str) -> int:
        return self.store.seal_plan(self.config, plan_id)

    def canonical_contacts(self) -> Iterator[tuple[str, dict[str, Any], bool]]:
        return self.store.canonical_contacts(self.config)

    # -- apply commits --------------------------------------------------------------------

    def snapshots(self, platform: str, cids: Sequence[str]) -> dict[str, BaseRow]:
        return self.store.snapshots(self.config, platform, cids)

    def commit_writes(
        self,
        platform: str,
        confirmed: Sequence[BaseRow],
        failed: Sequence[str],
        ledger: Sequence[LedgerEntry] = (),
        *,
        owed: Sequence[OwedWrite] = (),
        deleted: Sequence[Deletion] = (),
    ) -> None:
        self.store.commit_writes(self.config, platform, confirmed, failed, ledger, owed=owed,
                                 deleted=deleted)

    def owed(self, platform: str | None = None) -> list[OwedWrite]:
        return self.store.owed(self.config, platform)

    def ack_owed(self, emails: Sequence[str] | None, platform: str | None = None) -> int:
        return self.store.ack_owed(self.config, emails, platform)

    def deletions(self, *, pending: bool = False) -> list[Deletion]:
        return self.store.deletions(self.config, pending=pending)

    def members(self, cids: Sequence[str]) -> dict[str, dict[str, set[str]]]:
        return self.store.members(self.config, cids)

    def commit_members(
        self, platform: str, segment: str, added: Sequence[str], removed: Sequence[str]
    ) -> None:
        self.store.commit_members(self.config, platform, segment, added, removed)

    def rule_fingerprints(self) -> dict[tuple[str, str], str]:
        return self.store.rule_fingerprints(self.config)

    def set_rule_fingerprints(self, platform: str, fingerprints: Mapping[str, str]) -> None:
        self.store.set_rule_fingerprints(self.config, platform, fingerprints)

    def finish(self, *, hold: Collection[str] = ()) -> None:
        self.store.finish(self.config, hold=hold)

    # -- owned objects and the ledger -----------------------------------------------------

    def owned(self, platform: str | None = None) -> list[OwnedObject]:
        return self.store.owned(self.config, platform)

    def set_owned(self, obj: OwnedObject, *, at: str) -> None:
        self.store.set_owned(self.config, obj, at=at)

    def forget_owned(self, platform: str, kind: str, name: str) -> None:
        self.store.forget_owned(self.config, platform, kind, name)

    def add_ledger(self, entries: Iterable[LedgerEntry]) -> None:
        self.store.add_ledger(self.config, entries)

    def ledger(
        self, cid: str | None = None, *, email: str | None = None, since: str | None = None
    ) -> list[LedgerEntry]:
        return self.store.ledger(self.config, cid, email=email, since=since)

    # -- erasure --------------------------------------------------------------------------

    def erasure_key(self) -> bytes:
        return self.store.erasure_key()

    def add_tombstone(self, email_hash: str, *, at: str) -> None:
        self.store.add_tombstone(self.config, email_hash, at=at)

    def has_tombstones(self) -> bool:
        return self.store.has_tombstones(self.config)

    def tombstoned(self, email_hashes: Sequence[str]) -> set[str]:
        return self.store.tombstoned(self.config, email_hashes)

    def tombstones(self) -> list[tuple[str, str]]:
        return self.store.tombstones(self.config)

    def owe_erasure(
        self, email_hash: str, platform: str, email_key: str, *, at: str, error: str
    ) -> None:
        self.store.owe_erasure(self.config, email_hash, platform, email_key, at=at, error=error)

    def settle_erasure(self, email_hash: str, platform: str) -> None:
        self.store.settle_erasure(self.config, email_hash, platform)

    def owed_erasures(self, platform: str | None = None) -> list[OwedErasure]:
        return self.store.owed_erasures(self.config, platform)

    def erasure_targets(self, email_key: str) -> dict[str, str]:
        return self.store.erasure_targets(self.config, email_key)

    def standing(self, platform: str | None = None) -> list[StandingProblem]:
        return self.store.standing(self.config, platform)

    def set_standing(self, problems: Sequence[StandingProblem]) -> None:
        self.store.set_standing(self.config, problems)

    def clear_standing(self, platform: str, platform_ids: Sequence[str]) -> None:
        self.store.clear_standing(self.config, platform, platform_ids)

    def purge_person(self, email_key: str, label: str) -> int:
        return self.store.purge_person(self.config, email_key, label)

    # -- account bindings -----------------------------------------------------------------

    def binding(self, platform: str) -> Binding | None:
        return self.store.binding(self.config, platform)

    def bind(self, platform: str, account_id: str | None, label: str | None, *, at: str) -> None:
        self.store.bind(self.config, platform, account_id, label, at=at)

    def set_checked(self, platform: str, fingerprint: str | None) -> None:
        self.store.set_checked(self.config, platform, fingerprint)

    def forget_platform(self, platform: str, *, dry_run: bool = False) -> dict[str, int]:
        return self.store.forget_platform(self.config, platform, dry_run=dry_run)
