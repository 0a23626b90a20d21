"""The state store contract, its schema and the migrations both SQL backends share.

A `StateStore` keeps, per sync configuration (`config`, a name):

- `base`      — per contact per platform, the snapshot segsync last saw or wrote there (a JSON
                payload and its hash), and the platform id (the id map);
- `canonical` — per contact, the reconciled view, with a `dirty` flag for contacts whose last
                run did not reach every platform;
- `cursors`   — the committed read cursor per platform, and the one pending for this run;
- `pulled` / `planned` — the staging of the current run (what was read; what was decided),
                spilled to the store so that memory does not grow with the audience;
- `owned`     — tags, lists and segments segsync created (never touches anything else);
- `ledger`    — every consent change: contact, platform, time, previous -> new, source, basis;
- `runs`      — one row per run, with its report (JSON), per-record errors and diagnostics;
- `owed`      — the record writes a platform refused, owed until written or acknowledged;
- `deletions` — the records found deleted or archived on a platform (by a read or a write);
- `standing`  — the problems a run found on a platform that stand until a read no longer
                finds them (`StandingProblem`: a duplicate record, an erased person held again);
- `meta`      — the state generation, bumped by every commit (a plan records it);
- `bindings`  — per platform, the account the state is bound to (`Binding`) and the
                fingerprint of the connector config last checked;
- `owned_kept`, `base_kept`, `members_kept` — what the state held of an account a rebind
                left (owned objects, snapshots and ids, static memberships), by account id;
                given back when the platform is bound to that account again.

Every write is one transaction. A run holds the run lock of its configuration (`lock`), so a
second run fails fast with `RunLocked` naming the holder, or waits.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import hmac
import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from segsync.state.scoped import ConfigState

__all__ = [
    "MIGRATIONS",
    "BaseRow",
    "Binding",
    "Deletion",
    "LedgerEntry",
    "OwedErasure",
    "OwedWrite",
    "OwnedObject",
    "RunLocked",
    "StandingProblem",
    "StateStore",
    "StoreError",
    "erasure_hash",
    "payload_hash",
]


class StoreError(Exception):
    """The state store cannot be opened or used; the message says why."""


class RunLocked(StoreError):
    """Another run of the same sync configuration holds the run lock."""

    def __init__(self, config: str, holder: str) -> None:
        super().__init__(f"sync configuration {config!r} is locked by {holder}")
        self.config = config
        self.holder = holder


def payload_hash(payload: str) -> str:
    """A short content hash of a JSON payload (compares snapshots without decoding them)."""
    return hashlib.blake2b(payload.encode(), digest_size=12).hexdigest()


def erasure_hash(key: bytes, email_key: str) -> str:
    """The tombstone of a normalised email: its HMAC-SHA256 under the state's erasure key
    (`StateStore.erasure_key`), in hex. The address cannot be read back from it."""
    return hmac.new(key, email_key.encode(), hashlib.sha256).hexdigest()


@dataclasses.dataclass(frozen=True, slots=True)
class BaseRow:
    """One base snapshot: a contact (`cid`) on a platform, its id there, and the payload."""

    platform: str
    cid: str
    platform_id: str
    payload: str
    deleted: bool = False
    hash: str = ""  # content hash of the payload ("" : computed by the store)
    #: the read hash of the record the payload was read as (None: not a read as it came,
    #: e.g. a write segsync made): `segsync.sync.snapshot.read_hash`
    rhash: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One consent change, as the ledger records it (the proof of DESIGN.md).

    A change seen on a platform has `source` that platform; a change segsync made on one has
    `source` "sync", `sent` the status actually sent (e.g. `pending` where `subscribed` was
    asked for), `source_platform` and `evidence` what the status it copied rests on (the
    platform and its `field=value`), and `basis_from_default` True when the legal basis sent
    was the connector's configured default rather than the evidence's own.
    """

    cid: str
    email: str  # the normalised email at the time
    platform: str  # the platform whose status changed; "canonical" for the reconciled view
    at: str  # ISO-8601 time
    previous: str | None
    new: str
    source: str  # where the change came from: a platform name, or "sync"
    legal_basis: str | None = None
    run_id: str | None = None
    sent: str | None = None
    source_platform: str | None = None
    evidence: str | None = None
    basis_from_default: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class OwedWrite:
    """A record write a platform refused (or did not confirm): owed until a later write of
    the contact there is confirmed, or the user acknowledges it (`StateStore.ack_owed`).

    `first_failed` / `last_failed` are ISO-8601 times, `failures` how many runs failed it,
    `error` and `code` the platform's last word."""

    platform: str
    cid: str
    email: str
    error: str
    last_failed: str
    first_failed: str = ""  # "" : `last_failed` (a first failure)
    platform_id: str | None = None
    code: str | None = None
    failures: int = 1


@dataclasses.dataclass(frozen=True, slots=True)
class OwedErasure:
    """An erasure platform `platform` has not confirmed: the person's tombstone hash, the
    normalised address to ask it by (kept only until it confirms), since when it is owed
    and the last error."""

    email_hash: str
    platform: str
    email: str
    since: str
    error: str


@dataclasses.dataclass(frozen=True, slots=True)
class StandingProblem:
    """A problem a run found on `platform` that stands until a read no longer finds it:
    `kind` "duplicate" (record `platform_id` has the normalised email of record `ref`, its
    contact `cid`'s) or "erased_person" (record `platform_id` holds the person erased under
    the tombstone `ref`; no `cid`, never the address). `since`: when first found."""

    platform: str
    platform_id: str
    kind: str
    ref: str
    cid: str | None = None
    since: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Deletion:
    """A record found deleted or archived on `platform`: by a read (`found_by` "read") or
    answered by a write (`found_by` "write"). `acted` is True once a run applied the
    `on_delete` policy to it."""

    platform: str
    cid: str
    email: str
    platform_id: str
    found_at: str
    found_by: str
    acted: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class OwnedObject:
    """A tag, list or segment segsync created on a platform."""

    platform: str
    kind: str
    name: str
    ref: str
    definition_hash: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Binding:
    """What the state knows of a platform's account: the account it is bound to
    (`account_id` None: not bound, the connector cannot tell), its label, when it was bound,
    and the fingerprint of the connector config last checked (None: never checked)."""

    platform: str
    account_id: str | None
    label: str | None = None
    bound_at: str | None = None
    checked: str | None = None


# Migrations: ordered lists of statements. `{serial}` is the dialect's auto-increment key.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE meta (config TEXT PRIMARY KEY, generation BIGINT NOT NULL, plan_id TEXT)",
        "CREATE TABLE base (config TEXT NOT NULL, platform TEXT NOT NULL, cid TEXT NOT NULL,"
        " platform_id TEXT NOT NULL, payload TEXT NOT NULL, hash TEXT NOT NULL,"
        " deleted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (config, platform, cid))",
        "CREATE UNIQUE INDEX base_platform_id ON base (config, platform, platform_id)",
        "CREATE TABLE canonical (config TEXT NOT NULL, cid TEXT NOT NULL,"
        " email_key TEXT NOT NULL, payload TEXT NOT NULL, hash TEXT NOT NULL,"
        " dirty INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (config, cid))",
        "CREATE INDEX canonical_email ON canonical (config, email_key)",
        "CREATE INDEX canonical_dirty ON canonical (config, dirty)",
        "CREATE TABLE cursors (config TEXT NOT NULL, platform TEXT NOT NULL, cursor TEXT,"
        " pending TEXT, PRIMARY KEY (config, platform))",
        "CREATE TABLE pulled (config TEXT NOT NULL, platform TEXT NOT NULL,"
        " platform_id TEXT NOT NULL, cid TEXT NOT NULL, email_key TEXT NOT NULL,"
        " payload TEXT NOT NULL, hash TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,"
        " PRIMARY KEY (config, platform, platform_id))",
        "CREATE INDEX pulled_cid ON pulled (config, cid)",
        "CREATE TABLE planned (config TEXT NOT NULL, cid TEXT NOT NULL, email_key TEXT NOT NULL,"
        " payload TEXT NOT NULL, failed INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (config, cid))",
        "CREATE TABLE owned (config TEXT NOT NULL, platform TEXT NOT NULL, kind TEXT NOT NULL,"
        " name TEXT NOT NULL, ref TEXT NOT NULL, definition_hash TEXT, created_at TEXT NOT NULL,"
        " PRIMARY KEY (config, platform, kind, name))",
        "CREATE TABLE ledger (id {serial}, config TEXT NOT NULL, cid TEXT NOT NULL,"
        " email TEXT NOT NULL, platform TEXT NOT NULL, at TEXT NOT NULL, previous TEXT,"
        " new TEXT NOT NULL, source TEXT NOT NULL, legal_basis TEXT, run_id TEXT)",
        "CREATE INDEX ledger_cid ON ledger (config, cid)",
        # a change recorded twice (a run re-reading it after a crash) is one entry
        "CREATE UNIQUE INDEX ledger_once ON ledger (config, cid, platform, at, new, source)",
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, config TEXT NOT NULL,"
        " started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL, report TEXT)",
        "CREATE INDEX runs_config ON runs (config, started_at)",
        "CREATE TABLE run_errors (id {serial}, run_id TEXT NOT NULL, platform TEXT NOT NULL,"
        " email TEXT, platform_id TEXT, code TEXT, message TEXT NOT NULL)",
        "CREATE INDEX run_errors_run ON run_errors (run_id)",
        "CREATE TABLE run_diagnostics (id {serial}, run_id TEXT NOT NULL, platform TEXT,"
        " segment TEXT, level TEXT NOT NULL, message TEXT NOT NULL)",
        "CREATE TABLE locks (config TEXT PRIMARY KEY, holder TEXT NOT NULL,"
        " acquired_at TEXT NOT NULL)",
    ),
    (
        # static segment membership as segsync last wrote it, per platform
        "CREATE TABLE members (config TEXT NOT NULL, platform TEXT NOT NULL,"
        " segment TEXT NOT NULL, cid TEXT NOT NULL, PRIMARY KEY (config, platform, segment, cid))",
        "CREATE INDEX members_cid ON members (config, cid)",
    ),
    (
        # relinking pulled records by email joins `pulled` on itself: without it, quadratic
        "CREATE INDEX pulled_email ON pulled (config, email_key)",
    ),
    (
        # the ledger as proof: what was sent, on what evidence, on which legal basis
        "ALTER TABLE ledger ADD COLUMN sent TEXT",
        "ALTER TABLE ledger ADD COLUMN source_platform TEXT",
        "ALTER TABLE ledger ADD COLUMN evidence TEXT",
        "ALTER TABLE ledger ADD COLUMN basis_from_default INTEGER NOT NULL DEFAULT 0",
    ),
    (
        # erasure: a keyed hash of each erased address (never the address), and the key
        "CREATE TABLE tombstones (config TEXT NOT NULL, email_hash TEXT NOT NULL,"
        " erased_at TEXT NOT NULL, PRIMARY KEY (config, email_hash))",
        "CREATE TABLE state_keys (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    (
        # account bindings: the account each platform's state belongs to, and the
        # fingerprint of the connector config last checked
        "CREATE TABLE bindings (config TEXT NOT NULL, platform TEXT NOT NULL,"
        " account_id TEXT, label TEXT, bound_at TEXT, checked TEXT,"
        " PRIMARY KEY (config, platform))",
    ),
    (  # deletes and owed writes
        # a record write that failed stays owed until written or acknowledged
        "CREATE TABLE owed (config TEXT NOT NULL, platform TEXT NOT NULL, cid TEXT NOT NULL,"
        " email TEXT NOT NULL, platform_id TEXT, code TEXT, error TEXT NOT NULL,"
        " first_failed TEXT NOT NULL, last_failed TEXT NOT NULL,"
        " failures INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (config, platform, cid))",
        # a record found deleted or archived on a platform (by a read or a write), once;
        # `acted`: a run applied the `on_delete` policy to it
        "CREATE TABLE deletions (config TEXT NOT NULL, platform TEXT NOT NULL,"
        " cid TEXT NOT NULL, email TEXT NOT NULL, platform_id TEXT NOT NULL,"
        " found_at TEXT NOT NULL, found_by TEXT NOT NULL, acted INTEGER NOT NULL DEFAULT 0,"
        " PRIMARY KEY (config, platform, cid))",
    ),
    (
        # what the state held of an account a rebind left (owned objects, snapshots and ids,
        # static memberships), kept by that account's id: binding the platform to that
        # account again gives it back (segsync finds its own objects and its snapshots)
        "CREATE TABLE owned_kept (config TEXT NOT NULL, platform TEXT NOT NULL,"
        " account_id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, ref TEXT NOT NULL,"
        " definition_hash TEXT, created_at TEXT NOT NULL,"
        " PRIMARY KEY (config, platform, account_id, kind, name))",
        "CREATE TABLE base_kept (config TEXT NOT NULL, platform TEXT NOT NULL,"
        " account_id TEXT NOT NULL, cid TEXT NOT NULL, platform_id TEXT NOT NULL,"
        " payload TEXT NOT NULL, hash TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,"
        " PRIMARY KEY (config, platform, account_id, cid))",
        "CREATE INDEX base_kept_cid ON base_kept (config, cid)",
        "CREATE TABLE members_kept (config TEXT NOT NULL, platform TEXT NOT NULL,"
        " account_id TEXT NOT NULL, segment TEXT NOT NULL, cid TEXT NOT NULL,"
        " PRIMARY KEY (config, platform, account_id, segment, cid))",
        "CREATE INDEX members_kept_cid ON members_kept (config, cid)",
    ),
    (
        # the fingerprint of the rule each static segment's membership was last evaluated
        # on, per platform: a changed rule re-evaluates every contact for that segment
        "CREATE TABLE segment_rules (config TEXT NOT NULL, platform TEXT NOT NULL,"
        " name TEXT NOT NULL, fingerprint TEXT NOT NULL, PRIMARY KEY (config, platform, name))",
    ),
    (
        # the erasures a platform has not confirmed yet, per person (tombstone) and platform:
        # the address is kept only to ask that platform by email, and removed with the row
        # once it confirms
        "CREATE TABLE erasures_owed (config TEXT NOT NULL, email_hash TEXT NOT NULL,"
        " platform TEXT NOT NULL, email TEXT NOT NULL, since TEXT NOT NULL,"
        " error TEXT NOT NULL, PRIMARY KEY (config, email_hash, platform))",
    ),
    (
        # the read hash of a record as read (`segsync.sync.snapshot.read_hash`), kept with
        # the snapshot it became: a record read again with the same one is left as it is
        # (NULL: the snapshot is not a read's, e.g. a write segsync made)
        "ALTER TABLE base ADD COLUMN rhash TEXT",
        "ALTER TABLE pulled ADD COLUMN rhash TEXT",
        # a platform's duplicate records (two live staged records of one contact) found by
        # one scan of this index alone
        "DROP INDEX pulled_cid",
        "CREATE INDEX pulled_cid ON pulled (config, cid, platform, deleted)",
    ),
    (
        # standing problems (`StandingProblem`), per platform record, until a read no longer
        # finds them: `ref` the record kept (a duplicate) or the tombstone (an erased person
        # held again; no cid, never the address)
        "CREATE TABLE standing (config TEXT NOT NULL, platform TEXT NOT NULL,"
        " platform_id TEXT NOT NULL, kind TEXT NOT NULL, ref TEXT NOT NULL, cid TEXT,"
        " since TEXT NOT NULL, PRIMARY KEY (config, platform, platform_id))",
    ),
)
"""The schema, version by version; `schema_version` records how many have been applied."""


class StateStore(abc.ABC):
    """What the sync engine needs from a state backend. Every method is one transaction."""

    url: str

    # -- lifecycle ------------------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections and locks."""

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def worker_store(self) -> StateStore | None:
        """A new connection to the same state, for a worker process forked from this one
        (which never uses the connections it inherits), or None where there is none (the
        work then stays in this process). Its schema is this store's (no migration)."""
        return None

    def scoped(self, config: str) -> ConfigState:
        """This store's state of one sync configuration, `config` bound once."""
        from segsync.state.scoped import ConfigState

        return ConfigState(self, config)

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[Any]:
        """Group the calls made inside into one transaction (never across an `await`)."""

    @abc.abstractmethod
    def schema_version(self) -> int:
        """How many migrations have been applied."""

    @abc.abstractmethod
    def lock(self, config: str) -> AbstractContextManager[None]:
        """Hold the run lock of `config`, or raise `RunLocked` naming the holder at once.

        Waiting for a lock is the caller's loop (`Engine(wait=True)`), on its injected clock.
        """

    # -- generation -----------------------------------------------------------------------

    @abc.abstractmethod
    def generation(self, config: str) -> int:
        """The state generation: bumped by every commit, recorded by plans."""

    @abc.abstractmethod
    def plan_id(self, config: str) -> str | None:
        """The id of the plan currently staged (None when nothing is staged)."""

    # -- cursors --------------------------------------------------------------------------

    @abc.abstractmethod
    def cursor(self, config: str, platform: str) -> str | None:
        """The committed read cursor of a platform."""

    @abc.abstractmethod
    def set_pending_cursor(self, config: str, platform: str, cursor: str | None) -> None:
        """Remember the cursor reached by this run's read; committed by `finish`."""

    def pending_cursor(self, config: str, platform: str) -> str | None:
        """The cursor reached by the staged read (None when nothing is staged for it)."""
        raise NotImplementedError

    # -- pull staging ---------------------------------------------------------------------

    @abc.abstractmethod
    def begin_stage(self, config: str) -> None:
        """Discard the staging of an unfinished run (its cursors were never committed)."""

    @abc.abstractmethod
    def stage_pulled(
        self, config: str, platform: str, rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """Stage read records `(platform_id, cid, email_key, payload, hash, deleted)`, each
        with its read hash (`segsync.sync.snapshot.read_hash`) as a seventh item where the
        payload is the record as read: a row without one keeps none.

        The last read of a record wins.
        """

    @abc.abstractmethod
    def new_records_of_renamed(self, config: str) -> list[tuple[str, str, str]]:
        """New records resolved by email to a contact whose linked record on the same
        platform was re-read under another email (renamed there): `(platform, platform_id,
        email_key)`. They are new contacts, not duplicates."""

    @abc.abstractmethod
    def set_pulled_cids(self, config: str, rows: Sequence[tuple[str, str, str]]) -> None:
        """Re-assign staged records `(platform, platform_id, cid)` to contacts."""

    @abc.abstractmethod
    def moved_records(self, config: str) -> list[tuple[str, str, str, str, str]]:
        """Staged live records linked by platform id whose email is not their contact's:
        `(platform, platform_id, cid, email_key, base payload)`, the base being what segsync
        last saw or wrote on that record (its address then is in the payload)."""

    @abc.abstractmethod
    def relink_records(self, config: str, rows: Sequence[tuple[str, str, str]]) -> None:
        """Relink staged records `(platform, platform_id, cid)` to other contacts, at once.

        The id map follows: each record's base row (and its static segment memberships on
        that platform) moves to its new contact, unless that contact keeps a base row of
        another record there (the staged record then has no base: a duplicate, or fresh).
        Its old contact keeps nothing of it.
        """

    @abc.abstractmethod
    def relink_pulled(self, config: str) -> int:
        """Join new records to the contact another platform renamed to their email.

        A staged live record of a contact not yet known whose email is the (new) email of a
        known contact staged from another platform takes that contact's id. Returns how many.
        """

    @abc.abstractmethod
    def discard_pulled(self, config: str, platform: str) -> None:
        """Discard what a platform's read staged (its read failed) and its pending cursor."""

    @abc.abstractmethod
    def settle_pulled(self, config: str, platform: str) -> None:
        """Keep one staged record per contact: a live record wins over deletions of others."""

    @abc.abstractmethod
    def drop_pulled(self, config: str, platform: str, platform_ids: Sequence[str]) -> None:
        """Remove staged records (duplicates that will not be synced)."""

    @abc.abstractmethod
    def duplicate_records(self, config: str, platform: str) -> list[tuple[str, str, str]]:
        """Staged live records whose contact already has another live record on the platform.

        Returns `(cid, platform_id, other_platform_id)`, the other being the one kept: the
        record the id map already links, or else the smallest id.
        """

    @abc.abstractmethod
    def cids_by_platform_id(
        self, config: str, platform: str, platform_ids: Sequence[str]
    ) -> dict[str, str]:
        """The id map: platform id -> contact id, for the ids known."""

    def linked_reads(
        self, config: str, platform: str, platform_ids: Sequence[str]
    ) -> dict[str, tuple[str, str | None, str | None]]:
        """The id map with what a pull needs to leave a record read unchanged: platform id
        -> `(contact id, read hash of its base or None, its contact's canonical email key or
        None)`, for the ids known."""
        return {pid: (cid, None, None)
                for pid, cid in self.cids_by_platform_id(config, platform, platform_ids).items()}

    def unread_neighbours(self, config: str, platform: str) -> list[BaseRow]:
        """The base rows of `platform` whose contact has a staged record there under
        another platform id (the records a pull left unstaged that the checks of the
        staging must see)."""
        raise NotImplementedError

    def staged_cids(self, config: str, platform: str, *, refreshed: bool = False) -> list[str]:
        """The contacts of the records this run's read staged on `platform` (`refreshed`:
        at least those whose base holds refreshed engagement, `segsync.sync.engagement`)."""
        raise NotImplementedError

    def forget_records(self, config: str, platform: str, platform_ids: Sequence[str]) -> None:
        """Forget records `platform` no longer holds (gone without a read telling it): their
        snapshots, owed writes, deletions and their contacts' static memberships there. The
        contacts stay; a record of theirs read next is new (no base: nothing it lacks is a
        clearing)."""
        raise NotImplementedError

    def readdress_records(
        self, config: str, platform: str, moves: Sequence[tuple[str, str]]
    ) -> None:
        """Give linked records of `platform` their new platform ids: `(old id, new id)` pairs
        (a record read under an id scheme's new id, known by its old one: an alias). The
        id map, owed writes and deletions follow; the contacts stay."""
        raise NotImplementedError

    def staged_cids_by_platform_id(
        self, config: str, platform: str, platform_ids: Sequence[str]
    ) -> dict[str, str]:
        """Platform id -> contact id of the records this run's read staged (pulled), for the
        ids staged; records new this run are there before the id map knows them."""
        raise NotImplementedError

    @abc.abstractmethod
    def cids_by_email(self, config: str, email_keys: Sequence[str]) -> dict[str, str]:
        """Contact ids of canonical contacts by normalised email."""

    @abc.abstractmethod
    def known_cids(self, config: str, cids: Sequence[str]) -> set[str]:
        """Which of `cids` are canonical contacts already."""

    @abc.abstractmethod
    def worklist(self, config: str, chunk: int) -> Iterator[list[str]]:
        """Contact ids to reconcile (staged or dirty), sorted, in chunks of `chunk`."""

    @abc.abstractmethod
    def load(
        self, config: str, cids: Sequence[str]
    ) -> tuple[
        dict[str, tuple[str, bool]], dict[str, dict[str, BaseRow]], dict[str, dict[str, BaseRow]]
    ]:
        """For `cids`: canonical `(payload, dirty)`, base rows and staged rows by platform."""

    @abc.abstractmethod
    def stage_planned(
        self, config: str, rows: Sequence[tuple[str, str, str]], *, plan_id: str,
        retry: bool = False,
    ) -> None:
        """Stage reconciled canonical payloads `(cid, email_key, payload)` of a plan.

        With `retry`, the contacts stay marked to be reconciled again after this run.
        """

    @abc.abstractmethod
    def seal_plan(self, config: str, plan_id: str) -> int:
        """Mark the staging as the plan `plan_id`; bump and return the generation."""

    # -- apply ----------------------------------------------------------------------------

    @abc.abstractmethod
    def snapshots(self, config: str, platform: str, cids: Sequence[str]) -> dict[str, BaseRow]:
        """The latest known record per contact on a platform: staged if read, else base."""

    @abc.abstractmethod
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
        """Record a batch's verdicts in one transaction.

        Confirmed records get their new base (what was written) and their contact the
        planned canonical view (still dirty until `finish`); failed contacts keep the base
        of what was read and are marked to be reconciled again. A confirmed record is no
        longer owed there; each of `owed` (the failed records, with the platform's error)
        is owed, keeping its first failure time. `deleted`: records the platform answered
        are gone (their base, in `confirmed`, marked deleted): recorded once, no longer
        owed, their contact reconciled again (the `on_delete` policy).
        """

    @abc.abstractmethod
    def owed(self, config: str, platform: str | None = None) -> list[OwedWrite]:
        """The owed writes (on one platform, or all), by platform then email."""

    @abc.abstractmethod
    def ack_owed(
        self, config: str, emails: Sequence[str] | None, platform: str | None = None
    ) -> int:
        """Drop owed writes: of the normalised `emails` (None: every one), on `platform`
        (None: every platform). Returns how many were dropped."""

    @abc.abstractmethod
    def deletions(self, config: str, *, pending: bool = False) -> list[Deletion]:
        """Records found deleted, oldest first; with `pending`, only those no run acted on."""

    @abc.abstractmethod
    def members(self, config: str, cids: Sequence[str]) -> dict[str, dict[str, set[str]]]:
        """Static segment membership as last written: cid -> platform -> segment names."""

    @abc.abstractmethod
    def commit_members(
        self, config: str, platform: str, segment: str, added: Sequence[str],
        removed: Sequence[str],
    ) -> None:
        """Record confirmed membership changes (contact ids) of a static segment."""

    @abc.abstractmethod
    def rule_fingerprints(self, config: str) -> dict[tuple[str, str], str]:
        """(platform, static segment name) -> the fingerprint of the rule its membership
        follows (`set_rule_fingerprints`); a static not listed follows no known rule."""

    @abc.abstractmethod
    def set_rule_fingerprints(
        self, config: str, platform: str, fingerprints: Mapping[str, str]
    ) -> None:
        """Record that a platform's static segments (by name) now hold the members of the
        rules of these fingerprints (every contact was evaluated on them)."""

    @abc.abstractmethod
    def finish(self, config: str, *, hold: Collection[str] = ()) -> None:
        """Commit the run: staged reads become base, planned views canonical, cursors move.

        A live base record read deleted now is recorded as a deletion (found by a read, acted
        on by this run; pending while its contact owes a write, e.g. a failed archive);
        pending deletions of contacts owing no write are marked acted on.
        `hold`: platforms whose deletions (found now, or pending) stay pending, because the
        run did not reach every platform their `on_delete` policy acts on (the next run
        acts on them again)."""

    # -- owned objects --------------------------------------------------------------------

    @abc.abstractmethod
    def owned(self, config: str, platform: str | None = None) -> list[OwnedObject]:
        """Objects segsync created (on one platform, or all)."""

    @abc.abstractmethod
    def set_owned(self, config: str, obj: OwnedObject, *, at: str) -> None:
        """Record (or update) an object segsync created."""

    @abc.abstractmethod
    def forget_owned(self, config: str, platform: str, kind: str, name: str) -> None:
        """Forget an owned object (after deleting it)."""

    # -- ledger ---------------------------------------------------------------------------

    @abc.abstractmethod
    def add_ledger(self, config: str, entries: Iterable[LedgerEntry]) -> None:
        """Append consent changes; one already recorded (same contact, platform, time, new
        status and source) is not recorded twice."""

    @abc.abstractmethod
    def ledger(
        self, config: str, cid: str | None = None, *, email: str | None = None,
        since: str | None = None,
    ) -> list[LedgerEntry]:
        """Consent changes, oldest first: of one contact (`cid`), of every contact that has
        or had the normalised `email`, or all; only those at or after `since` (ISO-8601)."""

    # -- erasure --------------------------------------------------------------------------

    @abc.abstractmethod
    def erasure_key(self) -> bytes:
        """The key of the tombstones' HMAC: generated once per state (`secrets.token_bytes`)
        and kept in it; the same for every configuration of the state."""

    @abc.abstractmethod
    def add_tombstone(self, config: str, email_hash: str, *, at: str) -> None:
        """Record that the person whose `erasure_hash` is `email_hash` was erased at `at`
        (an existing tombstone keeps its first time)."""

    @abc.abstractmethod
    def has_tombstones(self, config: str) -> bool:
        """Whether anyone of `config` was erased (a pull hashes emails only then)."""

    @abc.abstractmethod
    def tombstoned(self, config: str, email_hashes: Sequence[str]) -> set[str]:
        """Which of `email_hashes` are tombstones."""

    @abc.abstractmethod
    def tombstones(self, config: str) -> list[tuple[str, str]]:
        """Every tombstone `(email_hash, erased_at)`, oldest first."""

    @abc.abstractmethod
    def owe_erasure(
        self, config: str, email_hash: str, platform: str, email_key: str, *, at: str,
        error: str,
    ) -> None:
        """Record that `platform` has not confirmed the erasure of `email_key` (tombstone
        `email_hash`): owed until `settle_erasure` (an owed one keeps its first time)."""

    @abc.abstractmethod
    def settle_erasure(self, config: str, email_hash: str, platform: str) -> None:
        """`platform` confirmed the erasure: its owed row and the address go."""

    @abc.abstractmethod
    def owed_erasures(self, config: str, platform: str | None = None) -> list[OwedErasure]:
        """The erasures still owed (on `platform` alone when given), oldest first."""

    # -- standing problems ----------------------------------------------------------------

    def standing(self, config: str, platform: str | None = None) -> list[StandingProblem]:
        """The standing problems (on `platform` alone when given), oldest first."""
        raise NotImplementedError

    def set_standing(self, config: str, problems: Sequence[StandingProblem]) -> None:
        """Record problems found by a read (one per platform record; a problem standing
        already keeps its first `since`; an empty `since` is the store clock's now)."""
        raise NotImplementedError

    def clear_standing(self, config: str, platform: str, platform_ids: Sequence[str]) -> None:
        """A read no longer finds the problems of these records of `platform`: they go."""
        raise NotImplementedError

    @abc.abstractmethod
    def erasure_targets(self, config: str, email_key: str) -> dict[str, str]:
        """The ids the state knows for the person with the normalised `email_key`:
        platform -> platform id (live records only)."""

    @abc.abstractmethod
    def purge_person(self, config: str, email_key: str, label: str) -> int:
        """Forget the person with the normalised `email_key`, in one transaction: their
        snapshots, ids, canonical view, staging, segment membership and standing problems
        (a duplicate's) are deleted; their ledger rows stay with `label` (the tombstone) in
        place of their email and contact id;
        the address is replaced by `label` in run errors, diagnostics and reports.
        Returns how many contacts were forgotten."""

    # -- account bindings -----------------------------------------------------------------

    @abc.abstractmethod
    def binding(self, config: str, platform: str) -> Binding | None:
        """What the state knows of a platform's account (None: nothing yet)."""

    @abc.abstractmethod
    def bind(
        self, config: str, platform: str, account_id: str | None, label: str | None, *, at: str
    ) -> None:
        """Record the account a platform's state belongs to (`account_id` None: the connector
        cannot tell); the checked fingerprint is kept. What was kept of that account
        (`forget_platform` of a rebind that left it) is given back: its owned objects, the
        snapshots and ids of contacts the state still holds, and their static memberships
        (never over what the platform's state records now)."""

    @abc.abstractmethod
    def set_checked(self, config: str, platform: str, fingerprint: str | None) -> None:
        """Record the fingerprint of the connector config whose `check()` passed."""

    @abc.abstractmethod
    def forget_platform(
        self, config: str, platform: str, *, dry_run: bool = False
    ) -> dict[str, int]:
        """Forget what the state holds of a platform's account, in one transaction (`segsync
        rebind`): its ids and base snapshots, cursor, staging, owned objects, static
        segment membership, binding, the writes owed to, deletions and standing problems
        found on it. The consent ledger, the tombstones and the canonical contacts stay;
        every canonical contact is marked to be reconciled again, so the next run links the
        platform's records by email and writes what it lacks. What the state held of a bound account
        (owned objects, snapshots and ids, static memberships) is kept aside by its id:
        `bind` to that account gives it back, so a return to it finds segsync's own objects
        and merges against what segsync last saw there (an erasure purges what is kept).
        Returns how many rows of each kind were forgotten (with `dry_run`, would be: nothing
        is changed)."""

    # -- runs -----------------------------------------------------------------------------

    @abc.abstractmethod
    def start_run(self, config: str, run_id: str, *, at: str) -> None:
        """Record that a run started (status `running`); called under the run lock, so a
        run of `config` still `running` died without ending: it becomes `abandoned`."""

    @abc.abstractmethod
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
        """Store a run's report, errors `(platform, email, platform_id, code, message)` and
        diagnostics `(platform, segment, level, message)`."""

    @abc.abstractmethod
    def runs(self, config: str, limit: int = 10) -> list[dict[str, Any]]:
        """The latest runs, newest first: run_id, status, times and the report."""

    @abc.abstractmethod
    def run_errors(self, run_id: str) -> list[dict[str, str | None]]:
        """The per-record errors of a run."""

    @abc.abstractmethod
    def run(self, config: str, run_id: str) -> dict[str, Any] | None:
        """The run `run_id` of `config` as `runs` gives it, or None."""

    @abc.abstractmethod
    def run_diagnostics(self, run_id: str) -> list[dict[str, str | None]]:
        """The diagnostics of a run: platform, segment, level, message."""

    @abc.abstractmethod
    def find_runs(self, config: str, prefix: str) -> list[str]:
        """The ids of the runs of `config` starting with `prefix`, newest first (an exact
        id is the only match)."""

    @abc.abstractmethod
    def prune_runs(
        self, config: str, *, keep_runs: int | None = None, before: str | None = None
    ) -> int:
        """Forget the runs of `config` past the `keep_runs` newest, and those started
        before the ISO-8601 time `before`, with their errors and diagnostics; a `running`
        run is never forgotten. Returns how many runs were forgotten."""

    # -- reading the state (status, tests) ------------------------------------------------

    @abc.abstractmethod
    def canonical_contacts(self, config: str) -> Iterator[tuple[str, dict[str, Any], bool]]:
        """Every canonical contact: `(cid, payload, dirty)`."""

    @abc.abstractmethod
    def base_rows(self, config: str, platform: str) -> Iterator[BaseRow]:
        """Every base snapshot on a platform."""

    @abc.abstractmethod
    def counts(self, config: str) -> dict[str, int]:
        """How many contacts, base records, owned objects, ledger entries and runs."""


def decode(payload: str) -> dict[str, Any]:
    """A stored JSON payload as a dict."""
    value = json.loads(payload)
    assert isinstance(value, dict)
    return value
