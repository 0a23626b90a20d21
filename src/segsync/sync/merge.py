"""Merge: reconcile the worklist of a run chunk by chunk, and collect what it decides.

Each chunk's canonical views, bases and staged reads are loaded in one transaction and
decoded into snapshots (`segsync.sync.snapshot`); each contact is merged by
`segsync.sync.reconcile.reconcile`. A contact whose every read is its base unchanged (an echo
of segsync's own write, or an overlap of two reads) is skipped without decoding, unless its
last run did not reach every platform, or a materialised segment reads engagement (which an
engagement refresh changes without changing the hash): it is as if it had not been read
(materialised segments evaluate it with the contacts not read,
`segsync.sync.segments.evaluate_rest`). The
new views are returned to be staged; writes, consent changes and counts accumulate on the
`Merge`.

Deletes and owed writes (docs/sync.md): the deletions a write of the last run found are
handed to `reconcile` (it applies the `on_delete` policy); every deletion found and every
archive decided is a `notes` line (a plan diagnostic: reported once). A record owed on a
platform (a failed write, `OwedWrite`) that the merge finds matching is written again in full
(`resend`), so an owed write is retried until it is confirmed or acknowledged.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping

from segsync.state.base import BaseRow
from segsync.state.roles import Snapshots
from segsync.sync.plan import ChangeRow, ConsentChange, OwedRow
from segsync.sync.policy import SyncPolicy
from segsync.sync.reconcile import Normaliser, Reconciled, reconcile, resend
from segsync.sync.segments import Memberships
from segsync.sync.snapshot import CanonicalView, PlatformRecord
from segsync.sync.timing import active, phase

__all__ = ["Merge", "StagedView"]

StagedView = tuple[str, str, str]
"""A reconciled view to stage: `(cid, email_key, stored payload)`."""


class Merge:
    """The merge step of a plan over `policy.platforms` (the platforms read this run).

    After the chunks: `changes` and `unchanged` per platform, the consent `events`, the
    number of `conflicts`, and the contacts `seen` (only tracked when `memberships` has
    materialised segments: the rest, echoes included, are evaluated afterwards when they must
    be). `changes` are the lists of
    `memberships.changes`, which residual tag deltas join.
    """

    def __init__(
        self, state: Snapshots, policy: SyncPolicy, memberships: Memberships, now: str,
        normalise: Mapping[str, Normaliser] | None = None,
    ) -> None:
        self.state = state
        self.normalise = normalise or {}  # per platform: see `reconcile`
        self.policy = policy
        self.memberships = memberships
        self.now = now
        self.changes: Mapping[str, list[ChangeRow]] = memberships.changes
        self.unchanged: dict[str, int] = dict.fromkeys(policy.platforms, 0)
        self.events: list[ConsentChange] = []
        self.conflicts = 0
        self.seen: set[str] = set()
        self.notes: list[dict[str, str]] = []
        owed = state.owed()
        self.owed = {(o.platform, o.cid) for o in owed}
        #: the owed writes, as the plan shows them
        self.owed_rows = [
            OwedRow(platform=o.platform, email=o.email, error=o.error, code=o.code,
                    first_failed=o.first_failed, last_failed=o.last_failed,
                    failures=o.failures)
            for o in owed
        ]
        self.pending: dict[str, set[str]] = {}  # cid -> platforms a write found deleted
        for d in state.deletions(pending=True):
            self.pending.setdefault(d.cid, set()).add(d.platform)

    def chunk(self, cids: list[str]) -> list[StagedView]:
        """Reconcile a chunk of the worklist; returns the views to stage."""
        evaluating = self.memberships.any
        # a refresh of engagement leaves the content hash alone: rules reading it see the view
        skip_echoes = not evaluating or self.memberships.view_only
        timer = active()  # None unless profiled (`segsync.sync.timing`)
        with phase("staging"), self.state.transaction():
            canonical_rows, base_rows, pulled_rows = self.state.load(cids)
            members = self.state.members(cids) if evaluating else {}
        staged: list[StagedView] = []
        for cid in cids:
            canonical = canonical_rows.get(cid)
            bases, pulled = base_rows.get(cid, {}), pulled_rows.get(cid, {})
            if canonical is not None and not canonical[1] and skip_echoes and (
                _echoes(bases, pulled)
            ):
                # as if not read: its view and memberships stand (materialised segments
                # evaluate it with the contacts not read, when they must: `evaluate_rest`)
                self._count_unchanged(bases, pulled)
                continue
            result = reconcile(
                cid,
                CanonicalView.loads(canonical[0]) if canonical else None,
                {p: PlatformRecord.loads(r.payload) for p, r in bases.items()},
                {
                    p: PlatformRecord.loads(r.payload)
                    for p, r in pulled.items() if p in self.unchanged
                },
                self.policy,
                self.pending.get(cid, ()),
                self.normalise,
            )
            self._owe(cid, result)
            staged.append((cid, result.view.email, result.view.dumps()))
            self._collect(cid, result, pulled)
            if evaluating:
                self.seen.add(cid)
                with timer.measure("segments") if timer else contextlib.nullcontext():
                    self.memberships.evaluate(cid, result.view, result.live, result.writes,
                                              members.get(cid, {}))
        return staged

    def _owe(self, cid: str, result: Reconciled) -> None:
        """Write again what is owed and matches; note the deletions found and archives."""
        for p, record in result.live.items():
            if (p, cid) in self.owed and p not in result.writes and not result.archived:
                row = resend(cid, p, result.view, record, self.policy)
                if row is not None:
                    result.writes[p] = row
        pending = self.pending.get(cid, set())
        archived = sorted(p for p, row in result.writes.items() if row.get("archive"))
        for p in result.deleted:
            if p in pending and not archived:
                continue  # reported by the run whose write found it
            message = (
                f"{result.view.email}: deleted or archived on {p}: recorded, not written or"
                " re-created there"
            )
            if archived:
                message += f"; archived on {', '.join(archived)} (on_delete: archive_elsewhere)"
            self.notes.append({"platform": p, "segment": "", "level": "warning",
                               "step": "delete", "message": message})

    def _count_unchanged(
        self, bases: Mapping[str, BaseRow], pulled: Mapping[str, BaseRow]
    ) -> None:
        """Records read again unchanged (an echo or an overlap) count as unchanged."""
        for p in pulled:
            if p in self.unchanged and not bases[p].deleted:
                self.unchanged[p] += 1

    def _collect(self, cid: str, result: Reconciled, pulled: Mapping[str, BaseRow]) -> None:
        """Add one contact's writes, unchanged reads, conflicts and consent changes."""
        for p, change in result.writes.items():
            self.changes[p].append(change)
        for p in result.live:  # read this run, and already matching
            if p in pulled and p not in result.writes:
                self.unchanged[p] += 1
        self.conflicts += len(result.conflicts)
        # a first sync sees every person's consent on every platform: one event each, so
        # they share their field set and their repeated texts (statuses, evidence, times)
        self.events.extend(
            ConsentChange.model_construct(
                _EVENT_FIELDS, cid=cid, email=result.view.email, platform=e.platform,
                previous=_shared(e.previous), new=sys.intern(e.new), source=e.source,
                at=sys.intern(e.at or self.now), legal_basis=_shared(e.legal_basis),
                evidence=_shared(e.evidence),
            )
            for e in result.events
        )


_EVENT_FIELDS = set(ConsentChange.model_fields)  # every field is given: one set for all


def _shared(text: str | None) -> str | None:
    """One copy of a text many events repeat (`sys.intern`)."""
    return None if text is None else sys.intern(text)


def _echoes(bases: Mapping[str, BaseRow], pulled: Mapping[str, BaseRow]) -> bool:
    """Whether every record read is its base unchanged (an echo or an overlap)."""
    return all(p in bases and bases[p].hash == row.hash for p, row in pulled.items())
