"""Re-check before apply: the contacts whose records changed on a platform during the run.

A plan merges what the pull read. A person editing a record after its page was read (while
the run pages on, merges or waits to apply a saved plan) is read by the next run, but this
run's writes would land on that record, or carry the stale merge to the other platforms.
Right before the apply writes, each platform the plan covers is read again incrementally
from this run's read start (the pending cursor the pull staged; the committed cursor when
the staging is gone): a quiet platform costs one read call. A record read again whose
content (`segsync.sync.snapshot.encode_read`'s digest, times left out) differs from the one
this run staged (else from its base), or a record this run knows nothing of now holding a
planned contact's address, changed during the run: its contact is *deferred*. The apply
writes nothing of a deferred contact on any platform (but its opt-outs) and keeps it dirty,
so the next run merges the new edit. A platform whose re-check fails is reported (a
warning) and written unchecked. The window left is the time between this read and the write.

A platform whose change listing lags its writes (`Connector.listing_lags`: an edit made
seconds before is not listed yet) is also read by id (`Connector.read_by_id`) for the
records the plan writes there that it knows by id: one such record whose content, engagement
left out (the platform's own calculated figures, which the engagement refresh reads), differs
from the one this run knows (edited during the run, or just before it and not yet listed
when the pull read) defers its contact. One the platform no longer holds (deleted or
archived) is left to the write, which finds it gone and records it, never re-creating it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence

from segsync.connector import Connector, RemoteContact
from segsync.logs import bind_log
from segsync.model import InvalidEmail, normalize_email
from segsync.state.scoped import ConfigState
from segsync.sync.plan import Plan
from segsync.sync.snapshot import PlatformRecord, content_hash, encode_read

__all__ = ["Recheck", "RecheckResult", "planned_cids"]

log = logging.getLogger("segsync.sync")


@dataclasses.dataclass(frozen=True)
class RecheckResult:
    """The contacts deferred to the next run, the re-check's requests per platform, the
    contacts deferred per platform they changed on, and the diagnostics (plan dicts)."""

    deferred: frozenset[str]
    calls: dict[str, int]
    changed: dict[str, set[str]]
    diagnostics: list[dict[str, str]]


def planned_cids(plan: Plan) -> set[str]:
    """The contacts a plan writes: record changes and static segment memberships."""
    cids: set[str] = set()
    for pplan in plan.platforms.values():
        cids.update(row["cid"] for row in pplan.changes)
        for membership in pplan.memberships:
            cids.update(m.cid for m in (*membership.add, *membership.remove))
    return cids


def _content(record: PlatformRecord) -> str:
    """`content_hash` of `record` without its engagement (read or refreshed)."""
    return content_hash(dataclasses.replace(
        record, engagement={}, refreshed={}, refreshed_at=None))


class Recheck:
    """The re-check of `plan` over `connectors` (see the module docstring)."""

    def __init__(
        self, connectors: Mapping[str, Connector], state: ConfigState, plan: Plan,
        *, staged: bool = True,
    ) -> None:
        self.connectors = connectors
        self.state = state
        self.plan = plan
        #: the plan's reads are the staging; otherwise only the records it writes are
        #: compared, with the bases it was planned on (`Plan.bases`)
        self.staged = staged

    async def run(self) -> RecheckResult:
        """Read every platform of the plan again; never raises for a platform's failure."""
        wanted = planned_cids(self.plan)
        names = [p for p in self.plan.platforms if p in self.connectors]
        result = RecheckResult(frozenset(), {}, {}, [])
        if not wanted:
            return result
        await asyncio.gather(*(self._platform(p, wanted, result) for p in names))
        deferred = frozenset(c for cids in result.changed.values() for c in cids)
        for name in names:
            count = len(result.changed.get(name, ()))
            if count:
                message = (f"{count} contact(s) changed on {name} during this run; "
                           "deferred to the next run")
                log.warning("%s: %s", name, message)
                result.diagnostics.append({"platform": name, "segment": "",
                                           "level": "warning", "step": "recheck",
                                           "message": message})
        return dataclasses.replace(result, deferred=deferred)

    async def _platform(self, name: str, wanted: set[str], result: RecheckResult) -> None:
        bind_log(platform=name)  # this platform's task: its log lines name it
        connector = self.connectors[name]
        cursor = self.state.pending_cursor(name) or self.state.cursor(name)
        by_id = self._written(name) if connector.listing_lags else {}
        if cursor is None and not by_id:  # never read incrementally: nothing to read "since"
            return
        stats = connector.stats
        before = stats.reads + stats.writes
        try:
            if cursor is not None:
                async for page in connector.read(cursor):
                    changed = (self._changed(name, page.contacts) if self.staged
                               else self._moved(name, page.contacts))
                    result.changed.setdefault(name, set()).update(changed & wanted)
            if by_id:  # the listing lags: what it cannot show yet, read by id
                records = await connector.read_by_id(sorted(by_id))
                if records is not None:
                    changed = self._read_by_id(name, by_id, records)
                    result.changed.setdefault(name, set()).update(changed & wanted)
        except Exception as exc:  # the apply goes ahead: a failing read must not block it
            message = f"re-check before writing failed: {exc}; written unchecked"
            log.warning("%s: %s", name, message)
            result.diagnostics.append({"platform": name, "segment": "", "level": "warning",
                                       "step": "recheck", "message": message})
        finally:
            result.calls[name] = stats.reads + stats.writes - before
        if not result.changed.get(name):
            result.changed.pop(name, None)

    def _written(self, name: str) -> dict[str, str]:
        """The records the plan writes on platform `name` that it knows by id (its updates,
        opt-outs and archives; not its creations): platform id -> contact."""
        pplan = self.plan.platforms.get(name)
        if pplan is None:
            return {}
        return {pid: row["cid"] for row in pplan.changes
                if (pid := row.get("platform_id")) and not row.get("create")}

    def _read_by_id(
        self, name: str, written: Mapping[str, str], contacts: Sequence[RemoteContact]
    ) -> set[str]:
        """The contacts of `written` (platform id -> contact) whose record, read by id
        (`contacts`), differs from what this run knows of it (what it staged, else its
        base, which a saved plan not staged was planned on) by more than engagement: the
        platform's calculated engagement changes without anybody editing the record, and
        the refresh reads it. A record answered under another id (merged) changed. One the
        platform no longer holds is left to the write, which finds it gone and records it
        deleted, as a record deleted before the run (the listing never shows it): it makes
        nothing of the merge stale, so its contact is written elsewhere, and a deferral
        would only meet the deletion again next run."""
        read = {r.platform_id: r for r in contacts}
        snaps = self.state.snapshots(name, sorted(set(written.values())))
        changed: set[str] = set()
        for pid, cid in written.items():
            remote, snap = read.get(pid), snaps.get(cid)
            if snap is None or snap.platform_id != pid or remote is None:
                changed.add(cid)
                continue
            if remote.deleted:
                continue
            key = ""
            with contextlib.suppress(InvalidEmail):
                key = normalize_email(remote.email)
            now = PlatformRecord.of(remote, key)
            if snap.deleted or _content(now) != _content(PlatformRecord.loads(snap.payload)):
                changed.add(cid)
        return changed

    def _moved(self, name: str, contacts: Sequence[RemoteContact]) -> set[str]:
        """The contacts of the records in `contacts` the plan writes (not from its staging:
        another plan's came in between) that differ from the base it was planned on."""
        planned = self.plan.bases.get(name, {})
        pids = [r.platform_id for r in contacts]
        linked = self.state.cids_by_platform_id(name, pids)
        changed: set[str] = set()
        for remote in contacts:
            cid = linked.get(remote.platform_id)
            if cid is None or cid not in planned:
                continue
            key = ""
            with contextlib.suppress(InvalidEmail):
                key = normalize_email(remote.email)
            digest = encode_read(remote, key)[1]
            base = planned[cid]
            if remote.deleted:
                if not base.startswith("deleted:"):
                    changed.add(cid)
            elif base != digest:
                changed.add(cid)
        return changed

    def _changed(self, name: str, contacts: Iterable[RemoteContact]) -> set[str]:
        """The contacts of the records in `contacts` that differ from what this run knows."""
        read: dict[str, tuple[RemoteContact, str | None, str]] = {}
        for remote in contacts:
            key: str | None = None
            with contextlib.suppress(InvalidEmail):
                key = normalize_email(remote.email)
            read[remote.platform_id] = (remote, key, encode_read(remote, key or "")[1])
        pids = list(read)
        linked = self.state.cids_by_platform_id(name, pids)
        linked.update(self.state.staged_cids_by_platform_id(name, pids))
        by_email = self.state.cids_by_email(
            [k for pid, (_, k, _) in read.items() if pid not in linked and k]
        )
        snaps = self.state.snapshots(name, sorted(set(linked.values())))
        changed: set[str] = set()
        for pid, (remote, key, digest) in read.items():
            cid = linked.get(pid)
            if cid is None:  # a record this run never saw, holding a known address
                if key and key in by_email and not remote.deleted:
                    changed.add(by_email[key])
                continue
            snap = snaps.get(cid)
            if snap is None or snap.platform_id != pid:
                changed.add(cid)
                continue
            if snap.deleted and remote.deleted:
                continue
            known = content_hash(PlatformRecord.loads(snap.payload))
            if known != digest or snap.deleted != remote.deleted:
                changed.add(cid)
        return changed
