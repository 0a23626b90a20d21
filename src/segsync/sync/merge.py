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

A record the pull read as its base was read is not staged at all (`segsync.sync.pull.Unstaged`):
its platform is as if not read for the merge (its base is that read), and it counts
unchanged unless the merge writes it. A large worklist is merged by forked worker processes
(`merged_by_workers`), chunk by chunk, whose decisions are added here in the order of the
chunks: the plan is the one a merge in this process makes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NoReturn

from segsync.state.base import BaseRow, StateStore
from segsync.state.roles import Snapshots
from segsync.sync.plan import ChangeRow, ConsentEvents, Member, OwedRow
from segsync.sync.policy import SyncPolicy
from segsync.sync.pull import Unstaged
from segsync.sync.reconcile import Normaliser, Reconciled, reconcile, resend
from segsync.sync.segments import Memberships
from segsync.sync.snapshot import CanonicalView, PlatformRecord
from segsync.sync.timing import active, phase

__all__ = ["ChunkDelta", "Merge", "MergeWorkerFailed", "StagedView", "merged_by_workers"]

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
        normalise: Mapping[str, Normaliser] | None = None, unstaged: Unstaged | None = None,
    ) -> None:
        self.state = state
        self.normalise = normalise or {}  # per platform: see `reconcile`
        self.policy = policy
        self.memberships = memberships
        self.now = now
        self.changes: Mapping[str, list[ChangeRow]] = memberships.changes
        self.unchanged: dict[str, int] = dict.fromkeys(policy.platforms, 0)
        #: the records the pull read unchanged and left unstaged (`segsync.sync.pull`): each
        #: live one counts unchanged, but where its contact is written there after all
        self.unstaged = unstaged
        for p, count in (unstaged.live if unstaged is not None else {}).items():
            if p in self.unchanged:
                self.unchanged[p] += count
        self.events = ConsentEvents()
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
            if self.unstaged is not None and result.writes:
                self._uncount(result, bases, pulled)
            if evaluating:
                self.seen.add(cid)
                with timer.measure("segments") if timer else contextlib.nullcontext():
                    self.memberships.evaluate(cid, result.view, result.live, result.writes,
                                              members.get(cid, {}))
        return staged

    def chunk_delta(self, cids: list[str]) -> ChunkDelta:
        """`chunk(cids)`, and what it added to this merge's results (a worker's answer)."""
        members = self.memberships
        changes = {p: len(rows) for p, rows in self.changes.items()}
        unchanged, conflicts, notes = dict(self.unchanged), self.conflicts, len(self.notes)
        added = {k: len(v) for k, v in members.added.items()}
        removed = {k: len(v) for k, v in members.removed.items()}
        self.events, self.seen = ConsentEvents(), set()
        staged = self.chunk(cids)
        return ChunkDelta(
            staged=staged,
            changes={p: rows[changes.get(p, 0):] for p, rows in self.changes.items()
                     if len(rows) > changes.get(p, 0)},
            unchanged={p: n - unchanged.get(p, 0) for p, n in self.unchanged.items()},
            events=list(self.events.rows()),
            conflicts=self.conflicts - conflicts,
            seen=sorted(self.seen),
            notes=self.notes[notes:],
            added={k: v[added.get(k, 0):] for k, v in members.added.items()
                   if len(v) > added.get(k, 0)},
            removed={k: v[removed.get(k, 0):] for k, v in members.removed.items()
                     if len(v) > removed.get(k, 0)},
        )

    def add(self, delta: ChunkDelta) -> None:
        """Add what a worker's chunk decided (`chunk_delta`), in the order of the chunks."""
        for p, rows in delta.changes.items():
            self.changes[p].extend(rows)
        for p, n in delta.unchanged.items():
            self.unchanged[p] += n
        self.events.extend(delta.events)
        self.conflicts += delta.conflicts
        self.seen.update(delta.seen)
        self.notes.extend(delta.notes)
        for key, members in delta.added.items():
            self.memberships.added.setdefault(key, []).extend(members)
        for key, members in delta.removed.items():
            self.memberships.removed.setdefault(key, []).extend(members)

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

    def _uncount(
        self, result: Reconciled, bases: Mapping[str, BaseRow], pulled: Mapping[str, BaseRow]
    ) -> None:
        """A record read unchanged and left unstaged, counted unchanged, that the contact's
        merge writes after all (another platform's change reaches it) is not unchanged."""
        assert self.unstaged is not None
        for p in result.writes:
            base = bases.get(p)
            if (p not in pulled and base is not None and not base.deleted
                    and self.unstaged.holds(p, base.platform_id)):
                self.unchanged[p] -= 1

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
        # a first sync sees every person's consent on every platform: one event each, kept
        # packed (`ConsentEvents`), their repeated texts (statuses, evidence, times) shared
        email, add = result.view.email, self.events.add
        for e in result.events:
            add((cid, email, e.platform, _shared(e.previous), sys.intern(e.new), e.source,
                 sys.intern(e.at or self.now), _shared(e.legal_basis), _shared(e.evidence)))


def _shared(text: str | None) -> str | None:
    """One copy of a text many events repeat (`sys.intern`)."""
    return None if text is None else sys.intern(text)


def _echoes(bases: Mapping[str, BaseRow], pulled: Mapping[str, BaseRow]) -> bool:
    """Whether every record read is its base unchanged (an echo or an overlap)."""
    return all(p in bases and bases[p].hash == row.hash for p, row in pulled.items())


@dataclasses.dataclass
class ChunkDelta:
    """What merging one chunk of the worklist decided (`Merge.chunk_delta`): the views to
    stage, and what it adds to the merge's changes, counts, consent changes, conflicts,
    contacts seen, notes and static memberships."""

    staged: list[StagedView]
    changes: dict[str, list[ChangeRow]]
    unchanged: dict[str, int]
    events: list[tuple[Any, ...]]
    conflicts: int
    seen: list[str]
    notes: list[dict[str, str]]
    added: dict[tuple[str, str], list[Member]]
    removed: dict[tuple[str, str], list[Member]]


class MergeWorkerFailed(RuntimeError):
    """A merge worker process failed; the message holds its traceback."""


def merged_by_workers(
    merge: Merge, chunks: Callable[[Snapshots], Iterable[list[str]]], store: StateStore,
    config: str, workers: int,
) -> Iterator[list[StagedView]]:
    """The merge of the worklist (`chunks(state)`: its chunks, the same in every process)
    by `workers` forked processes, chunk i by worker i % workers, each reading the state
    through a connection of its own (`StateStore.worker_store`); this process adds what
    each chunk decided to `merge` in the order of the chunks (so the plan is the one a
    merge here would make) and yields its views to stage. A failed worker raises
    `MergeWorkerFailed`; leaving early stops the workers."""
    children: list[tuple[int, Any]] = []
    gc.freeze()  # what exists now is never collected by a worker (no copy of its pages)
    try:
        for k in range(workers):
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # the worker: never returns
                os.close(read)
                _work(merge, chunks, store, config, k, workers, write)
            os.close(write)
            children.append((pid, os.fdopen(read, "rb")))
        index = 0
        while True:
            message = _received(children[index % workers][1])
            if message[0] == "end":
                break
            if message[1] != index:
                raise MergeWorkerFailed(f"chunk {message[1]} came where {index} was due")
            merge.add(message[2])
            yield message[2].staged
            index += 1
        for k, (_, pipe) in enumerate(children):
            if k != index % workers and _received(pipe)[0] != "end":
                raise MergeWorkerFailed("a merge worker had chunks left at the end")
    finally:
        gc.unfreeze()
        for pid, pipe in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # done by now, unless this run stops early
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            pipe.close()


def _received(pipe: Any) -> tuple[Any, ...]:
    """A worker's next message: ("chunk", index, ChunkDelta) or ("end", chunks)."""
    try:
        message: tuple[Any, ...] = pickle.load(pipe)  # noqa: S301 - from a worker of this run
    except EOFError:
        raise MergeWorkerFailed("a merge worker ended without a word") from None
    if message[0] == "error":
        raise MergeWorkerFailed(f"a merge worker failed:\n{message[1]}")
    return message


def _work(
    merge: Merge, chunks: Callable[[Snapshots], Iterable[list[str]]], store: StateStore,
    config: str, k: int, workers: int, fd: int,
) -> NoReturn:
    """A forked merge worker: its chunks, each answered as ("chunk", index, delta); then
    ("end", chunks). It leaves by `os._exit`: nothing inherited (connections, buffers) is
    closed or flushed by it."""
    code = 0
    out = os.fdopen(fd, "wb")
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        own = store.worker_store()
        if own is None:
            raise MergeWorkerFailed("the state store has no connection for a worker")
        merge.state = own.scoped(config)
        index = -1
        for index, cids in enumerate(chunks(merge.state)):
            if index % workers == k:
                pickle.dump(("chunk", index, merge.chunk_delta(cids)), out, protocol=5)
                out.flush()
        pickle.dump(("end", index + 1), out, protocol=5)
        out.flush()
    except BaseException:
        code = 1
        with contextlib.suppress(BaseException):
            pickle.dump(("error", traceback.format_exc()), out, protocol=5)
            out.flush()
    finally:
        os._exit(code)
