"""Pull: stage every platform's changes since its cursor, page by page.

Each page and the cursor reaching past it are staged in one transaction. A read record is
linked to its contact by platform id, else by normalised email, else it is a new contact
(its email as id, or `email#n` when a renamed contact holds that id). A platform whose read
fails is discarded for the run; duplicates (two live records of one contact on a platform)
are reported and set aside.

Identity is the normalised email; a platform id only caches the link. A record linked by id
that now carries another address is a rename of its contact, unless that address is the
current address of another known contact, or is claimed by records of several contacts in
this read: then it is relinked to the person whose address it holds (a new contact where
nobody holds it), with its base and memberships, and its old contact keeps nothing of it
(`_relink_moved`; a swap relinks both records). Its readings stay those of a record moved to
a new address: no opt-in for its new person (`segsync.sync.reconcile`). Each relink is a
diagnostic naming the platform and the record ids.

A record not known by its platform id but by one of its `aliases` (an id the connector gave
it before, e.g. under an older id scheme) is its contact's: the id map moves to its new id.

A record of a person erased by `segsync erase` (their email's keyed hash is a tombstone) is
never staged: nothing is linked, merged or written for them. Each is reported (by its
tombstone, never its email) and, with `erase` (`sync.erasure: enforce`, during a sync only),
erased on that platform again.

A run's `RunScope` narrows it (`segsync plan|sync --select/--limit/--full-refresh`):

- `full_refresh` reads every platform from the start (its cursor ignored); the records read
  replace the snapshots, and what differed from the state is a diagnostic per platform
  (`refresh_differences`: counts and a few examples);
- `limit` keeps a deterministic sample of `limit` contacts of those read (the lowest SHA-256
  of their contact id, the normalised email: the same people run after run; everyone is
  read on a first run or a full refresh, the changed people otherwise): everything is read, the
  other contacts' records are dropped from the staging (never merged, never seen missing),
  nobody else is erased again, and the read's cursors are not committed: the next unlimited
  run reads all that this one read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import heapq
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from segsync.connector import Connector, RemoteContact
from segsync.erasure import erase_on, tombstone_label
from segsync.http import ApiError, PlatformUnavailable
from segsync.logs import bind_log
from segsync.model import InvalidEmail, normalize_email
from segsync.state.base import BaseRow, erasure_hash
from segsync.state.roles import Loaded, PulledRow, ReadStaging
from segsync.sync.plan import RecordError
from segsync.sync.policy import OWNED_TAG_PREFIX
from segsync.sync.progress import PageRead, ProgressObserver, PullDone, PullStarted
from segsync.sync.snapshot import PlatformRecord, encode_read, jsonify

__all__ = [
    "Pull",
    "PullResult",
    "RunScope",
    "ScopeError",
    "refresh_differences",
    "sample_rank",
]

log = logging.getLogger("segsync.sync")

#: examples of differing records a full refresh names per platform and kind
REFRESH_EXAMPLES = 3


class ScopeError(ValueError):
    """A run scope that cannot be run (a `--select` name or `--limit` refused, or a sample
    that would drop what the state owes an unlimited run); the message names the fix."""


@dataclasses.dataclass(frozen=True)
class RunScope:
    """What a run covers: `platforms` and `segments` (None: all), `limit` (a deterministic
    sample of that many contacts; None: everyone) and `full_refresh` (read everything again,
    cursors ignored). The default covers everything, incrementally."""

    platforms: frozenset[str] | None = None
    segments: frozenset[str] | None = None
    limit: int | None = None
    full_refresh: bool = False

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit: {self.limit} is not a positive number of contacts")

    @property
    def limited(self) -> bool:
        """Whether the run covers only a sample of the contacts."""
        return self.limit is not None

    def covers(self, platform: str) -> bool:
        """Whether `platform` is read and written by the run."""
        return self.platforms is None or platform in self.platforms

    def as_dict(self) -> dict[str, Any]:
        """The scope as a plan records it (empty for a full-coverage incremental run)."""
        out: dict[str, Any] = {}
        if self.platforms is not None:
            out["platforms"] = sorted(self.platforms)
        if self.segments is not None:
            out["segments"] = sorted(self.segments)
        if self.limit is not None:
            out["limit"] = self.limit
        if self.full_refresh:
            out["full_refresh"] = True
        return out


def sample_rank(cid: str) -> str:
    """A contact's place in the `--limit` sample (lowest first): stable across runs and
    machines, unrelated to the order a platform returns records in."""
    return hashlib.sha256(cid.encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class PullResult:
    """Records read per platform, the platforms whose read failed, and the diagnostics
    (as plan dicts) of the records relinked to another person."""

    reads: dict[str, int]
    failed: set[str]
    diagnostics: list[dict[str, str]] = dataclasses.field(default_factory=list)
    #: with a `limit`, the contacts of the sample (the only ones staged); None: everyone
    sample: frozenset[str] | None = None


class Pull:
    """The pull step of a run over `connectors` into the staging of `state`."""

    def __init__(
        self,
        connectors: Mapping[str, Connector],
        state: ReadStaging,
        progress: ProgressObserver,
        *,
        erase: bool = False,
        scope: RunScope | None = None,
    ) -> None:
        self.connectors = connectors
        self.state = state
        self.progress = progress
        self.scope = scope or RunScope()
        # a sample's run erases nobody again: the erased are outside any sample
        self.erase = erase and not self.scope.limited
        #: with a `limit`, the platform ids read per platform (to draw the sample from)
        self._read_ids: dict[str, list[str]] = {}
        self._erasure_key: bytes | None = None
        #: per platform, the live records of erased people read this run: id -> (email, label)
        self.erased: dict[str, dict[str, tuple[str, str]]] = {}

    async def run(self, errors: list[RecordError]) -> PullResult:
        """Stage every platform's changes since its cursor; read failures go to `errors`."""
        self.state.begin_stage()
        self._erasure_key = self.state.erasure_key() if self.state.has_tombstones() else None
        result = PullResult({}, set())
        self.progress(PullStarted(tuple(self.connectors)))
        await asyncio.gather(*(self._platform(name, result, errors) for name in self.connectors))
        result.diagnostics.extend(self._relink_moved())
        renamed = self.state.new_records_of_renamed()
        if renamed:  # the platform renamed the contact away: the new record is someone new
            taken = self.state.known_cids([key for _, _, key in renamed])
            self.state.set_pulled_cids(
                [(p, pid, self._new_cid(key, taken)) for p, pid, key in renamed]
            )
        self.state.relink_pulled()
        if self.scope.limit is not None:
            result = dataclasses.replace(result, sample=self._keep_sample(self.scope.limit,
                                                                          result.failed))
        for name in self.connectors:
            if name not in result.failed:
                self._settle(name, errors, await self._made_again(name))
        return result

    async def _platform(self, name: str, result: PullResult, errors: list[RecordError]) -> None:
        bind_log(platform=name)  # this platform's task: its log lines name it
        try:
            result.reads[name] = await self._read(name, errors)
            await self._erased_again(name, errors, result.diagnostics)
            self.progress(PullDone(name))
        except Exception as exc:
            message = f"read failed: {exc}"
            last = getattr(self.connectors[name].stats, "last", None)
            if not isinstance(exc, ApiError) and last:  # an answer the connector misread
                message = (
                    f"read failed: unexpected answer to {name} {last} "
                    f"({type(exc).__name__}: {exc})"
                )
            log.warning("reading %s failed: %s", name, message)
            # a platform-level failure (down, credentials, TLS, host) keeps its own code
            code = exc.reason if isinstance(exc, PlatformUnavailable) else "read_failed"
            errors.append(RecordError(platform=name, code=code, message=message))
            self.state.discard_pulled(name)
            result.failed.add(name)
            self.progress(PullDone(name, ok=False))

    async def _read(self, name: str, errors: list[RecordError]) -> int:
        count = 0
        cursor = None if self.scope.full_refresh else self.state.cursor(name)
        ids = self._read_ids.setdefault(name, []) if self.scope.limited else None
        async for page in self.connectors[name].read(cursor):
            count += len(page.contacts)
            if ids is not None:
                ids.extend(remote.platform_id for remote in page.contacts)
            with self.state.transaction():  # the page and the cursor reaching past it
                self._stage_page(name, page.contacts, errors)
                if page.cursor is not None:
                    self.state.set_pending_cursor(name, page.cursor)
            self.progress(PageRead(name, len(page.contacts)))
        return count

    async def _erased_again(
        self, name: str, errors: list[RecordError], notes: list[dict[str, str]]
    ) -> None:
        """Report the erased people the platform holds again; erase them with `erase` (one
        erased now is a diagnostic, not a record error, and settles an owed erasure)."""
        erased = self.erased.get(name, {})
        owed = {o.email_hash for o in self.state.owed_erasures(name)} if erased else set()
        for pid, (email, label) in sorted(erased.items()):
            message = f"{name} holds {label}, a person erased by `segsync erase`; not synced"
            if not self.erase and label.removeprefix("erased:") in owed:
                notes.append({"platform": name, "segment": "", "level": "warning",
                              "step": "erase", "message": message + "; the erasure owed"
                              " there is performed by a sync (segsync owed)"})
                continue
            if self.erase:
                result = await erase_on(name, self.connectors[name], email, pid)
                if result.confirmed:
                    if self._erasure_key is not None:
                        self.state.settle_erasure(erasure_hash(self._erasure_key, email), name)
                    notes.append({"platform": name, "segment": "", "level": "info",
                                  "step": "erase", "message": message
                                  + "; erased there again (sync.erasure: enforce)"})
                    continue
                message += f"; erasing them there again failed: {result.error}"
            else:
                message += " (erase them there, or set sync.erasure: enforce)"
            errors.append(
                RecordError(platform=name, platform_id=pid, code="erased_person", message=message)
            )

    def _skip_erased(
        self, name: str, keyed: list[tuple[RemoteContact, str | None]]
    ) -> list[tuple[RemoteContact, str | None]]:
        """`keyed` without the records of erased people (the live ones are remembered)."""
        if self._erasure_key is None:
            return keyed
        hashes = {key: erasure_hash(self._erasure_key, key) for _, key in keyed if key}
        dead = self.state.tombstoned(list(hashes.values()))
        if not dead:
            return keyed
        kept: list[tuple[RemoteContact, str | None]] = []
        for remote, key in keyed:
            digest = hashes.get(key) if key else None
            if digest is None or digest not in dead:
                kept.append((remote, key))
            elif not remote.deleted and key:
                self.erased.setdefault(name, {})[remote.platform_id] = (
                    key, tombstone_label(digest)
                )
        return kept

    def _keep_sample(self, limit: int, failed: set[str]) -> frozenset[str]:
        """Keep the staged records of the `limit` contacts of lowest `sample_rank` over every
        platform read; drop the others' (they stay as the state holds them)."""
        staged: dict[str, dict[str, str]] = {}  # platform -> platform id -> contact
        for name, ids in self._read_ids.items():
            if name not in failed:
                staged[name] = self.state.staged_cids_by_platform_id(name, sorted(set(ids)))
        cids = {cid for linked in staged.values() for cid in linked.values()}
        sample = frozenset(heapq.nsmallest(limit, cids, key=sample_rank))
        for name, linked in staged.items():
            dropped = sorted(pid for pid, cid in linked.items() if cid not in sample)
            if dropped:
                self.state.drop_pulled(name, dropped)
        self._read_ids.clear()
        log.info("sample of %d contact(s) out of %d read", len(sample), len(cids))
        return sample

    def _relink_moved(self) -> list[dict[str, str]]:
        """Relink the records that moved to an address that is not their person's to take
        (see the module docstring); returns the diagnostics."""
        moved = [
            (p, pid, cid, key) for p, pid, cid, key, base in self.state.moved_records()
            if PlatformRecord.loads(base).email_key != key  # not a rename segsync owes there
        ]
        if not moved:
            return []
        holders = self.state.cids_by_email(sorted({key for *_, key in moved}))
        claims: dict[str, set[str]] = {}
        for _, _, cid, key in moved:
            claims.setdefault(key, set()).add(cid)
        fresh: dict[str, str] = {}
        taken = self.state.known_cids(sorted(claims))

        def person(key: str) -> str:
            holder = holders.get(key)
            if holder is None:
                holder = fresh.setdefault(key, self._new_cid(key, taken))
            return holder

        targets: dict[tuple[str, str], str] = {}
        for p, pid, cid, key in moved:
            holder = holders.get(key)
            if (holder is not None and holder != cid) or (holder is None and len(claims[key]) > 1):
                targets[(p, pid)] = person(key)
        # a person given a record where their own one moved on to a free address (a chain):
        # that one is no rename of them now, it is its new address's person
        given = {(p, cid) for (p, _), cid in targets.items()}
        for p, pid, cid, key in moved:
            if (p, pid) not in targets and (p, cid) in given:
                targets[(p, pid)] = person(key)
        if not targets:
            return []
        self.state.relink_records([(p, pid, cid) for (p, pid), cid in sorted(targets.items())])
        before = {(p, pid): cid for p, pid, cid, _ in moved}
        notes = _relink_notes(targets, before, set(fresh.values()))
        for note in notes:
            log.warning("%s: %s", note["platform"], note["message"])
        return notes

    async def _made_again(self, name: str) -> list[tuple[str, str, str]] | None:
        """A record read next to the record its contact is linked to, which this read did
        not see: when the platform says that one is gone (deleted or archived without a read
        telling it, then made again: a re-import, a new sign-up), the new record takes its
        place: the gone record is forgotten (`forget_records`), so the new one is that
        contact's new record there (no base: what it lacks clears nothing), never a
        duplicate. Returns the platform's duplicates when it forgot none (None: ask again)."""
        dups = self.state.duplicate_records(name)
        linked = {k for _, _, k in dups}
        unseen = sorted(linked - set(self.state.staged_cids_by_platform_id(name, sorted(linked))))
        if not unseen:  # a record read this run exists: nothing to ask the platform
            return dups
        gone = await self.connectors[name].missing(unseen)
        news: dict[str, list[str]] = {}
        for _, pid, kept in dups:
            if kept in gone:
                news.setdefault(kept, []).append(pid)
        olds = [old for old, new in sorted(news.items()) if len(new) == 1]
        if olds:
            log.info("%s: %d record(s) made again after a deletion segsync had not read",
                     name, len(olds))
            self.state.forget_records(name, olds)
            return None
        return dups

    def _settle(
        self, name: str, errors: list[RecordError],
        duplicates: list[tuple[str, str, str]] | None = None,
    ) -> None:
        """Report and set aside a platform's duplicate records (`duplicates`, when known);
        one staged record per contact."""
        if duplicates is None:
            duplicates = self.state.duplicate_records(name)
        for cid, pid, kept in duplicates:
            errors.append(
                RecordError(
                    platform=name,
                    email=cid,
                    platform_id=pid,
                    code="duplicate",
                    message=(
                        f"record {pid} has the same normalised email as record {kept}; "
                        "not synced (merge or fix them on the platform)"
                    ),
                )
            )
        if duplicates:
            self.state.drop_pulled(name, [pid for _, pid, _ in duplicates])
        self.state.settle_pulled(name)

    def _stage_page(
        self, name: str, contacts: Sequence[RemoteContact], errors: list[RecordError]
    ) -> None:
        keyed = self._skip_erased(name, self._keyed(name, contacts, errors))
        by_id = self.state.cids_by_platform_id(name, [remote.platform_id for remote, _ in keyed])
        by_id.update(self._linked_by_alias(name, keyed, by_id))
        unlinked = [key for remote, key in keyed if remote.platform_id not in by_id and key]
        by_email = self.state.cids_by_email(unlinked)
        taken = self.state.known_cids([key for key in unlinked if key not in by_email])
        rows: list[PulledRow] = []
        for remote, key in keyed:
            cid = by_id.get(remote.platform_id)
            if cid is None:
                if remote.deleted or key is None:
                    continue  # a deletion of a record never seen: nothing to do
                cid = by_email.get(key) or self._new_cid(key, taken)
            payload, digest = encode_read(remote, key or "")
            rows.append((remote.platform_id, cid, key or "", payload, digest, remote.deleted))
        self.state.stage_pulled(name, rows)

    def _linked_by_alias(
        self, name: str, keyed: Sequence[tuple[RemoteContact, str | None]],
        by_id: Mapping[str, str],
    ) -> dict[str, str]:
        """Records not known by their platform id but by one of their `aliases` (an id the
        connector gave them before): platform id -> contact id, the id map moved to the
        new id (so the record is that contact's, never a new person or a duplicate)."""
        wanted = {
            alias: remote.platform_id
            for remote, _ in keyed if remote.platform_id not in by_id
            for alias in sorted(remote.aliases) if alias != remote.platform_id
        }
        if not wanted:
            return {}
        found = self.state.cids_by_platform_id(name, sorted(wanted))
        linked: dict[str, str] = {}
        moves: list[tuple[str, str]] = []
        for alias, cid in sorted(found.items()):
            pid = wanted[alias]
            if pid not in linked:
                linked[pid] = cid
                moves.append((alias, pid))
        self.state.readdress_records(name, moves)
        return linked

    @staticmethod
    def _keyed(
        name: str, contacts: Sequence[RemoteContact], errors: list[RecordError]
    ) -> list[tuple[RemoteContact, str | None]]:
        """Records with their normalised email (None for a deletion with an invalid one);
        a live record with an invalid email is an error, not staged."""
        keyed: list[tuple[RemoteContact, str | None]] = []
        for remote in contacts:
            try:
                key: str | None = normalize_email(remote.email)
            except InvalidEmail as exc:
                if not remote.deleted:
                    errors.append(
                        RecordError(
                            platform=name,
                            email=remote.email,
                            platform_id=remote.platform_id,
                            code="invalid_email",
                            message=str(exc),
                        )
                    )
                    continue
                key = None
            keyed.append((remote, key))
        return keyed

    def _new_cid(self, key: str, taken: set[str]) -> str:
        """A contact id for a new email: the email, or email#n if a renamed contact had it."""
        if key not in taken:
            return key
        n = 2
        while True:
            candidate = f"{key}#{n}"
            if not self.state.known_cids([candidate]):
                return candidate
            n += 1


def _relink_notes(
    targets: Mapping[tuple[str, str], str], before: Mapping[tuple[str, str], str],
    new: set[str],
) -> list[dict[str, str]]:
    """One warning per relinked record, or per pair of records that swapped addresses,
    naming the platform and the record ids only (`new`: the contacts made for them)."""
    notes: list[dict[str, str]] = []
    told: set[tuple[str, str]] = set()
    # (platform, from, to) -> a record relinked so: its swap partner went (to, from)
    moves = {(k[0], before[k], cid): k for k, cid in sorted(targets.items(), reverse=True)}
    for (p, pid), cid in sorted(targets.items()):
        if (p, pid) in told:
            continue
        told.add((p, pid))
        other = moves.get((p, cid, before[(p, pid)]))
        if other is not None and other not in told:
            told.add(other)
            message = (
                f"records {pid} and {other[1]} swapped addresses: each is relinked to the"
                " person whose address it now holds (not a rename; nothing of the other"
                " person's data or consent is carried)"
            )
        elif cid in new:
            message = (
                f"record {pid} now holds an address another person's record moved to or"
                " took over: linked to a new person at that address, not a rename of its"
                " former person (nothing of their data or consent is carried)"
            )
        else:
            message = (
                f"record {pid} now holds the address of another person: relinked to them,"
                " not a rename of its former person (nothing of their data or consent is"
                " carried)"
            )
        notes.append({"platform": p, "segment": "", "level": "warning", "step": "identity",
                      "message": message})
    return notes


class _Staged(Protocol):
    def staged_cids(self, platform: str) -> list[str]: ...

    def load(self, cids: Sequence[str]) -> Loaded: ...


def _chunked(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _held(record: PlatformRecord) -> tuple[Any, ...]:
    """What a full refresh compares of a record: its address, fields, tags (but segsync's
    own segment tags, whose membership the state holds apart) and consent status; not the
    times, nor the engagement the platform keeps moving."""
    tags = tuple(t for t in record.tags if not t.startswith(OWNED_TAG_PREFIX))
    return (record.email_key, jsonify(dict(record.fields)), tags, record.consent,
            record.reachable)


def refresh_differences(
    state: _Staged, platform: str, bases: Iterable[BaseRow], *,
    sample: frozenset[str] | None = None, chunk: int = 1000,
) -> dict[str, str]:
    """What a full refresh of `platform` read that differs from the snapshots the state held
    (`bases`: the platform's base rows, streamed before the staging is committed): records
    changed, records the state did not hold, and live records it held that the read did not
    return (within `sample`, when the run has one). A plan diagnostic (step `refresh`) with
    the counts and the first `REFRESH_EXAMPLES` emails of each; nothing is changed here."""
    staged = state.staged_cids(platform)
    changed: list[str] = []
    new: list[str] = []
    for part in _chunked(staged, chunk):
        _, held, pulled = state.load(part)
        for cid in part:
            row = pulled.get(cid, {}).get(platform)
            if row is None:
                continue
            record = PlatformRecord.loads(row.payload)
            base = held.get(cid, {}).get(platform)
            if base is None:
                if not row.deleted:
                    new.append(record.email or cid)
            elif (base.deleted != row.deleted or base.platform_id != row.platform_id
                  or _held(PlatformRecord.loads(base.payload)) != _held(record)):
                changed.append(record.email or cid)
    read = set(staged)
    unread_count, unread = 0, list[str]()
    for row in bases:
        if not row.deleted and row.cid not in read and (sample is None or row.cid in sample):
            unread_count += 1
            if len(unread) < REFRESH_EXAMPLES:
                unread.append(PlatformRecord.loads(row.payload).email or row.cid)
    parts = []
    for count, found, what in (
        (len(changed), changed, "differed from the state"),
        (len(new), new, "read that the state did not hold"),
        (unread_count, unread,
         "held by the state and not read (deleted or archived there without a read telling it?)"),
    ):
        if count:
            more = ", ..." if count > REFRESH_EXAMPLES else ""
            parts.append(f"{count} {what} ({', '.join(found[:REFRESH_EXAMPLES])}{more})")
    message = ("full refresh: " + "; ".join(parts) if parts
               else f"full refresh: {len(staged)} record(s) read, all as the state held them")
    return {"platform": platform, "segment": "", "level": "warning" if parts else "info",
            "step": "refresh", "message": message,
            "changed": str(len(changed)), "new": str(len(new)), "unread": str(unread_count)}
