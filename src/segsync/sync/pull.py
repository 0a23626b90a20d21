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

A record is staged with its read hash (`segsync.sync.snapshot.read_hash`, where no segment
reads engagement: `Pull(unchanged=True)`); one read again with the hash its base was read
with, linked by id at its contact's address, is left unstaged (`Unstaged`): its base is that
read, it counts unchanged, and nothing of it is encoded or written. Where its contact has
another record staged on the platform, it is staged after all (the checks of duplicates and
deletions see it). Not in a full refresh nor a sample, which compare or draw from what is
staged.

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

import array
import asyncio
import bisect
import dataclasses
import functools
import hashlib
import heapq
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from segsync.connector import Connector, RemoteContact
from segsync.erasure import erase_on, tombstone_label
from segsync.http import ApiError, PlatformUnavailable
from segsync.logs import bind_log
from segsync.model import CONSENT_OPT_OUTS, InvalidEmail, normalize_email
from segsync.state.base import BaseRow, StandingProblem, erasure_hash
from segsync.state.roles import Loaded, PulledRow, ReadStaging
from segsync.sync.plan import RecordError
from segsync.sync.policy import OWNED_TAG_PREFIX
from segsync.sync.progress import PageRead, ProgressObserver, PullDone, PullStarted
from segsync.sync.snapshot import (
    PlatformRecord,
    encode_read,
    encode_record,
    jsonify,
    read_hash,
)

__all__ = [
    "Pull",
    "PullResult",
    "RunScope",
    "ScopeError",
    "Unstaged",
    "email_key",
    "refresh_differences",
    "sample_rank",
    "standing_error",
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


# a local part that is its own key, lowercased: ASCII letters, digits and the other
# characters `normalize_email` allows, dot-separated (no dot first, last or doubled)
_PLAIN_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@functools.lru_cache(maxsize=4096)
def _domain_key(domain: str) -> str | None:
    """The key of `domain` as `normalize_email` gives it (None: not a valid one)."""
    try:
        return normalize_email("x@" + domain)[2:]
    except InvalidEmail:
        return None


def email_key(email: str) -> str:
    """`normalize_email(email)`, at the cost of a match for a plain ASCII address (an
    audience holds few domains, each normalised once): the address's local part lowercased
    and its domain's key. Anything else, and every refusal, is `normalize_email`'s."""
    local, at, domain = email.partition("@")
    if (at and len(email) <= 254 and len(local) <= 64 and email.isascii()
            and _PLAIN_LOCAL.fullmatch(local)):
        key = _domain_key(domain)
        if key is not None:
            return f"{local.lower()}@{key}"
    return normalize_email(email)


def _key_or_none(email: str) -> str | None:
    """`email_key(email)`, None for an address refused."""
    try:
        return email_key(email)
    except InvalidEmail:
        return None


def sample_rank(cid: str) -> str:
    """A contact's place in the `--limit` sample (lowest first): stable across runs and
    machines, unrelated to the order a platform returns records in."""
    return hashlib.sha256(cid.encode("utf-8")).hexdigest()


class Unstaged:
    """The records a pull read as their base was read (the same `read_hash`) and left
    unstaged, per platform: their platform ids, as this process's `hash` of each (8 bytes a
    record), and how many of them are live (each a record read unchanged)."""

    def __init__(self) -> None:
        self._ids: dict[str, array.array[int]] = {}
        self._back: set[tuple[str, str]] = set()  # staged after all (`restaged`)
        self.live: dict[str, int] = {}

    def add(self, platform: str, platform_id: str, deleted: bool) -> None:
        """Record one record left unstaged."""
        self._ids.setdefault(platform, array.array("q")).append(hash(platform_id))
        if not deleted:
            self.live[platform] = self.live.get(platform, 0) + 1

    def seal(self) -> None:
        """Done adding: sorted for `holds`."""
        self._ids = {p: array.array("q", sorted(ids)) for p, ids in self._ids.items()}

    def of(self, platform: str) -> bool:
        """Whether any record of `platform` was left unstaged."""
        return bool(self._ids.get(platform))

    def holds(self, platform: str, platform_id: str) -> bool:
        """Whether the record was read and left unstaged (after `seal`)."""
        ids = self._ids.get(platform)
        if not ids or (platform, platform_id) in self._back:
            return False
        key = hash(platform_id)
        at = bisect.bisect_left(ids, key)
        return at < len(ids) and ids[at] == key

    def restaged(self, platform: str, platform_id: str, deleted: bool) -> None:
        """The record is staged after all (its read is the staging's again)."""
        self._back.add((platform, platform_id))
        if not deleted:
            self.live[platform] -= 1

    def drop(self, platform: str) -> None:
        """Forget a platform (its read failed: nothing of it is staged)."""
        self._ids.pop(platform, None)
        self.live.pop(platform, None)

    def __bool__(self) -> bool:
        return any(self._ids.values())


@dataclasses.dataclass(frozen=True)
class PullResult:
    """Records read per platform, the platforms whose read failed, and the diagnostics
    (as plan dicts) of the records relinked to another person."""

    reads: dict[str, int]
    failed: set[str]
    diagnostics: list[dict[str, str]] = dataclasses.field(default_factory=list)
    #: with a `limit`, the contacts of the sample (the only ones staged); None: everyone
    sample: frozenset[str] | None = None
    #: the records read unchanged and left unstaged (`Pull.unchanged`), None: none left
    unstaged: Unstaged | None = None


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
        unchanged: bool = False,
    ) -> None:
        self.connectors = connectors
        self.state = state
        self.progress = progress
        self.scope = scope or RunScope()
        #: `unchanged`: records get their read hash, and one read as its base was read (the
        #: same read hash, linked by id to a contact whose address it holds) is left
        #: unstaged: as if not read (its base is that read), counted unchanged. Not in a full
        #: refresh (everything read is compared) nor a sample (drawn from the staging)
        self.hashing = unchanged
        self.unstaged = (Unstaged() if unchanged and not self.scope.full_refresh
                         and not self.scope.limited else None)
        # a sample's run erases nobody again: the erased are outside any sample
        self.erase = erase and not self.scope.limited
        #: with a `limit`, the platform ids read per platform (to draw the sample from)
        self._read_ids: dict[str, list[str]] = {}
        self._erasure_key: bytes | None = None
        #: per platform, the live records of erased people read this run: id -> (email, label)
        self.erased: dict[str, dict[str, tuple[str, str]]] = {}
        #: per platform, the live records read with an opt-out: id -> record (`_fold_opt_outs`)
        self._opt_outs: dict[str, dict[str, PlatformRecord]] = {}
        #: per platform, the standing problems recorded before this run, by record id; the
        #: problems this run found; the records of the former it read (id -> deleted); the
        #: platforms read from the start (`_standing_problems`)
        self._standing: dict[str, dict[str, StandingProblem]] = {}
        self._found: dict[str, dict[str, StandingProblem]] = {}
        self._seen: dict[str, dict[str, bool]] = {}
        self._full: set[str] = set()

    async def run(self, errors: list[RecordError]) -> PullResult:
        """Stage every platform's changes since its cursor; read failures go to `errors`."""
        self.state.begin_stage()
        self._erasure_key = self.state.erasure_key() if self.state.has_tombstones() else None
        for problem in self.state.standing():
            if problem.platform in self.connectors:
                self._standing.setdefault(problem.platform, {})[problem.platform_id] = problem
        result = PullResult({}, set())
        self.progress(PullStarted(tuple(self.connectors)))
        await asyncio.gather(*(self._platform(name, result, errors) for name in self.connectors))
        if self.unstaged is not None:
            self.unstaged.seal()
            for name in self.connectors:
                if name not in result.failed and self.unstaged.of(name):
                    self._restage(name)
            if self.unstaged:
                result = dataclasses.replace(result, unstaged=self.unstaged)
        result.diagnostics.extend(await self._relink_moved())
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
        await self._standing_problems(result.failed, errors)
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
            if self.unstaged is not None:
                self.unstaged.drop(name)
            result.failed.add(name)
            self.progress(PullDone(name, ok=False))

    async def _read(self, name: str, errors: list[RecordError]) -> int:
        count = 0
        cursor = None if self.scope.full_refresh else self.state.cursor(name)
        if cursor is None and not self.scope.limited:
            self._full.add(name)
        standing = self._standing.get(name)
        ids = self._read_ids.setdefault(name, []) if self.scope.limited else None
        async for page in self.connectors[name].read(cursor):
            count += len(page.contacts)
            if standing:
                self._seen.setdefault(name, {}).update(
                    (r.platform_id, r.deleted) for r in page.contacts if r.platform_id in standing)
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
                message += (f": erase again or remove the re-imported record {pid} there"
                            " (or set sync.erasure: enforce)")
            self._found.setdefault(name, {})[pid] = StandingProblem(
                name, pid, "erased_person", label.removeprefix("erased:"))
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

    def _restage(self, name: str) -> None:
        """Stage the records left unstaged whose contact has another record staged on the
        platform: the checks of the staging (duplicates, deletions next to a live record)
        see every record of such a contact read there."""
        assert self.unstaged is not None
        rows: list[PulledRow] = []
        for row in self.state.unread_neighbours(name):
            if self.unstaged.holds(name, row.platform_id):
                rows.append((row.platform_id, row.cid, PlatformRecord.loads(row.payload).email_key,
                             row.payload, row.hash, row.deleted, row.rhash or ""))
                self.unstaged.restaged(name, row.platform_id, row.deleted)
        self.state.stage_pulled(name, rows)

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

    async def _relink_moved(self) -> list[dict[str, str]]:
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
        await self._forget_gone(targets)
        self.state.relink_records([(p, pid, cid) for (p, pid), cid in sorted(targets.items())])
        before = {(p, pid): cid for p, pid, cid, _ in moved}
        notes = _relink_notes(targets, before, set(fresh.values()))
        for note in notes:
            log.warning("%s: %s", note["platform"], note["message"])
        return notes

    async def _forget_gone(self, targets: Mapping[tuple[str, str], str]) -> None:
        """Before records move onto other people (`targets`: (platform, id) -> contact),
        forget each such person's own record there that is gone: read deleted now, or
        answered missing by the platform (`Connector.missing`) when no read returned it. The
        moved record then takes its place with its own base, so what it holds stays its
        former person's (no opt-in, no data for its new person), rather than arriving with
        no base and being read as news. A record read live, or not known gone, stays (the
        moved record is then a duplicate, not synced)."""
        moving = set(targets)
        _, held, pulled = self.state.load(sorted(set(targets.values())))
        asks: dict[str, list[str]] = {}
        gone: dict[str, list[str]] = {}
        for (p, _), cid in sorted(targets.items()):
            base = held.get(cid, {}).get(p)
            if base is None or base.deleted or (p, base.platform_id) in moving:
                continue  # none there, known gone, or itself moving (a swap, a chain)
            read = pulled.get(cid, {}).get(p)
            if read is not None and read.platform_id == base.platform_id:
                if read.deleted:
                    gone.setdefault(p, []).append(base.platform_id)
            elif self.unstaged is None or not self.unstaged.holds(p, base.platform_id):
                asks.setdefault(p, []).append(base.platform_id)
        for p, pids in sorted(asks.items()):
            try:
                gone.setdefault(p, []).extend(sorted(await self.connectors[p].missing(pids)))
            except ApiError as exc:  # not known gone: the moved record is a duplicate
                log.warning("%s: asking which records are gone failed: %s", p, exc)
        for p, pids in sorted(gone.items()):
            if pids:
                self.state.forget_records(p, sorted(set(pids)))

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
            self._found.setdefault(name, {})[pid] = StandingProblem(name, pid, "duplicate",
                                                                    kept, cid)
            errors.append(
                RecordError(
                    platform=name,
                    email=cid,
                    platform_id=pid,
                    code="duplicate",
                    message=(
                        f"record {pid} has the same normalised email as record {kept}; "
                        f"not synced: merge or delete record {pid} on {name}"
                    ),
                )
            )
        if duplicates:
            self.state.drop_pulled(name, [pid for _, pid, _ in duplicates])
            self._fold_opt_outs(name, duplicates)
        self.state.settle_pulled(name)

    async def _standing_problems(self, failed: set[str], errors: list[RecordError]) -> None:
        """Record the problems this run found that stand (`StandingProblem`: a duplicate, an
        erased person's record held again), and report those found before that stand
        still, each a record error with its fix, run after run. One found before goes when
        a read no longer finds it: its record read again, deleted or not as that problem
        (in a run not limited to a sample), a read of the platform from the start not
        finding it again, or the platform answering the record gone or changed
        (`_cleared`). A platform not read keeps its problems."""
        for name in self.connectors:
            held = self._standing.get(name, {})
            found = self._found.get(name, {})
            if name not in failed:
                seen = self._seen.get(name, {})
                gone = {pid for pid in held if pid not in found and (
                    seen.get(pid) or (pid in seen and not self.scope.limited)
                    or name in self._full)}
                ask = {pid: p for pid, p in held.items() if pid not in found and pid not in gone}
                gone |= await self._cleared(name, ask)
                self.state.clear_standing(name, sorted(gone))
                self.state.set_standing([found[pid] for pid in sorted(found)])
                held = {pid: p for pid, p in held.items() if pid not in gone}
            for pid, problem in sorted(held.items()):
                if pid not in found:
                    errors.append(standing_error(problem))

    async def _cleared(self, name: str, problems: Mapping[str, StandingProblem]) -> set[str]:
        """Which of `problems` (by record id) the platform no longer holds as such: read by
        id where the connector can (gone, merged into another record, or at an address that
        is no longer the problem's), else answered missing (`Connector.missing`)."""
        if not problems:
            return set()
        connector = self.connectors[name]
        try:
            read = await connector.read_by_id(sorted(problems))
            if read is None:
                return set(await connector.missing(sorted(problems)))
        except ApiError as exc:  # not known gone: the problems stand
            log.warning("%s: re-reading the records of standing problems failed: %s", name, exc)
            return set()
        live = {r.platform_id: r for r in read if not r.deleted}
        return {pid for pid, problem in problems.items()
                if pid not in live or not self._stands(problem, live[pid])}

    def _stands(self, problem: StandingProblem, remote: RemoteContact) -> bool:
        """Whether the record `remote`, read now, is still the `problem`: an erased person's
        address, or the address of the duplicate's contact."""
        try:
            key = email_key(remote.email)
        except InvalidEmail:
            return False
        if problem.kind == "erased_person":
            return self._erasure_key is not None and (
                erasure_hash(self._erasure_key, key) == problem.ref)
        return key == problem.cid or self.state.cids_by_email([key]).get(key) == problem.cid

    def _fold_opt_outs(self, name: str, duplicates: Sequence[tuple[str, str, str]]) -> None:
        """An opt-out read on a duplicate record (set aside, not synced) is its person's:
        the record kept for them is staged reading that opt-out (the duplicate's status,
        time and evidence, naming the duplicate), so it reaches every platform. Nothing
        else of the duplicate is taken."""
        outs = self._opt_outs.get(name, {})
        found = {(cid, pid): outs[pid] for cid, pid, _ in duplicates if pid in outs}
        if not found:
            return
        _, held, pulled = self.state.load(sorted({cid for cid, _ in found}))
        rows: list[PulledRow] = []
        for (cid, pid), out in sorted(found.items()):
            row = pulled.get(cid, {}).get(name) or held.get(cid, {}).get(name)
            if row is None or row.deleted:
                continue
            kept = PlatformRecord.loads(row.payload)
            if kept.consent in CONSENT_OPT_OUTS:
                continue  # the kept record says no already
            record = dataclasses.replace(
                kept, consent=out.consent, consent_at=out.consent_at or out.updated_at,
                legal_basis=None, reachable=True,
                consent_evidence=f"duplicate record {pid}: {out.consent_evidence or ''}".strip(),
                updated_at=max(kept.updated_at or "", out.updated_at or "") or None,
            )
            payload, digest = encode_record(record)
            rows.append((kept.platform_id, cid, kept.email_key, payload, digest, False))
            log.warning("%s: record %s (a duplicate) reads %s: its person's opt-out",
                        name, pid, out.consent.value)
        self.state.stage_pulled(name, rows)

    def _stage_page(
        self, name: str, contacts: Sequence[RemoteContact], errors: list[RecordError]
    ) -> None:
        linked: dict[str, tuple[str, str | None, str | None]] = {}
        hashes: dict[str, str] = {}  # read hashes taken (of records staged after all)
        if self.hashing:
            linked = self.state.linked_reads(name, [r.platform_id for r in contacts])
            contacts = self._leave_unchanged(name, contacts, linked, hashes)
        keyed = self._skip_erased(name, self._keyed(name, contacts, errors))
        pids = [remote.platform_id for remote, _ in keyed]
        by_id = ({pid: held[0] for pid, held in linked.items()} if self.hashing
                 else self.state.cids_by_platform_id(name, pids))
        by_id.update(self._linked_by_alias(name, keyed, by_id))
        unlinked = [key for remote, key in keyed if remote.platform_id not in by_id and key]
        by_email = self.state.cids_by_email(unlinked)
        taken = self.state.known_cids([key for key in unlinked if key not in by_email])
        rows: list[PulledRow] = []
        unstaged = self.unstaged
        for remote, key in keyed:
            pid = remote.platform_id
            if key and not remote.deleted and remote.consent.status in CONSENT_OPT_OUTS:
                self._opt_outs.setdefault(name, {})[pid] = PlatformRecord.of(remote, key)
            cid = by_id.get(pid)
            if cid is None:
                if remote.deleted or key is None:
                    continue  # a deletion of a record never seen: nothing to do
                cid = by_email.get(key) or self._new_cid(key, taken)
            if not self.hashing:
                payload, digest = encode_read(remote, key or "")
                rows.append((pid, cid, key or "", payload, digest, remote.deleted))
                continue
            rhash = hashes.get(pid) or read_hash(remote)
            held = linked.get(pid)
            if unstaged is not None and held is not None and held[1] == rhash and (
                key and key == held[2]
            ):  # as `_leave_unchanged` leaves it (there, where tombstones are checked)
                unstaged.add(name, pid, remote.deleted)
                continue
            payload, digest = encode_read(remote, key or "")
            rows.append((pid, cid, key or "", payload, digest, remote.deleted, rhash))
        self.state.stage_pulled(name, rows)

    def _leave_unchanged(
        self, name: str, contacts: Sequence[RemoteContact],
        linked: Mapping[str, tuple[str, str | None, str | None]], hashes: dict[str, str],
    ) -> Sequence[RemoteContact]:
        """`contacts` but those read as their base was read (the same read hash) at their
        contact's address (one at another address is staged, for the checks of identity):
        those are left unstaged, their address not even normalised. The read hashes of
        the others compared go to `hashes`. Where people were erased, every record's
        address is checked first: none is left here."""
        unstaged = self.unstaged
        if unstaged is None or self._erasure_key is not None:
            return contacts
        kept: list[RemoteContact] = []
        for remote in contacts:
            held = linked.get(remote.platform_id)
            if held is not None and held[1] is not None and held[2] is not None and (
                remote.email == held[2] or _key_or_none(remote.email) == held[2]
            ):
                rhash = read_hash(remote)
                if rhash == held[1]:
                    unstaged.add(name, remote.platform_id, remote.deleted)
                    continue
                hashes[remote.platform_id] = rhash
            kept.append(remote)
        return kept

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
                key: str | None = email_key(remote.email)
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


def standing_error(problem: StandingProblem) -> RecordError:
    """The record error of a problem found by an earlier run that stands, with its fix."""
    name, pid = problem.platform, problem.platform_id
    since = f"standing since {problem.since}"
    if problem.kind == "erased_person":
        message = (f"{name} holds {tombstone_label(problem.ref)}, a person erased by `segsync "
                   f"erase`; not synced ({since}): erase again or remove the re-imported "
                   f"record {pid} there (or set sync.erasure: enforce)")
        return RecordError(platform=name, platform_id=pid, code=problem.kind, message=message)
    message = (f"record {pid} has the same normalised email as record {problem.ref}; not "
               f"synced ({since}): merge or delete record {pid} on {name}")
    return RecordError(platform=name, email=problem.cid, platform_id=pid, code=problem.kind,
                       message=message)


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
