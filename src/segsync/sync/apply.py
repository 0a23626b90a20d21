"""Apply: write a plan's part of each platform, record what the platforms confirmed, and
store the run's report.

Segment objects are published first (residual tags before the native definitions that
filter on them), then contact changes in batches of the connector's `write_batch_size`, at
most `max_concurrency` in flight, then static segment memberships. Every batch's verdicts
are committed in one transaction: the base advances for confirmed records only, and a
failed record's contact is reconciled again by the next run.

A platform-level failure (`segsync.http.PlatformUnavailable`: the platform is down, refused
the credentials, failed TLS; seen as the exception or as its client's open circuit breaker)
stops that platform: no more batches, publications or membership changes there, one
`RecordError` with the failure's code (`platform_unavailable`, `auth_failed`, `tls_failed`,
`host_unreachable`) and no per-record errors for the records it did not write, which stay
owed to the next run. The other platforms carry on. An `Interrupt` (SIGTERM, SIGINT) stops
every platform the same way: batches in flight finish and are committed, the run's status
is `interrupted`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import cast

from segsync.clock import Clock
from segsync.connector import (
    Capabilities,
    ChangeResult,
    Connector,
    ContactChange,
    Unwritable,
)
from segsync.erasure import settle_owed
from segsync.http import (
    INTERRUPTED,
    PLATFORM_FAILURE_CODES,
    ApiError,
    Interrupted,
    PlatformUnavailable,
)
from segsync.logs import bind_log
from segsync.model import CONSENT_OPT_OUTS, InvalidEmail, Schema, normalize_email
from segsync.state.base import BaseRow, Deletion, LedgerEntry, OwedWrite, OwnedObject
from segsync.state.scoped import ConfigState
from segsync.sync.plan import (
    ChangeRow,
    MembershipChange,
    Plan,
    PlatformPlan,
    Publication,
    PublicationKind,
    RecordError,
    to_change,
    writes_something,
)
from segsync.sync.policy import OWNED_TAG_PREFIX
from segsync.sync.progress import (
    ApplyDone,
    ApplyStarted,
    MembersChanged,
    ProgressObserver,
    Published,
    WriteBatch,
)
from segsync.sync.report import PlatformReport, RunReport
from segsync.sync.segments import CREATING, recall_made, record_made
from segsync.sync.snapshot import PlatformRecord, apply_change, encode_record

__all__ = ["NOT_SENT", "Apply", "Interrupt", "RunStart", "iso_now"]

log = logging.getLogger("segsync.sync")
_PUBLICATION_ORDER = tuple(PublicationKind)  # residual tags exist before natives


def _switching(publications: Sequence[Publication]) -> set[str]:
    """Names an owned object gives up to a new object of the other kind (static <-> native)
    in these publications: the deletion of the old one goes first."""
    made = {(p.name, str(p.kind)) for p in publications
            if p.ref is None and p.kind in (PublicationKind.STATIC, PublicationKind.NATIVE)}
    return {p.name for p in publications if p.kind is PublicationKind.DELETE
            and any(n == p.name and k != (p.owned_kind or "static") for n, k in made)}


#: what an opt-out of a deferred contact sends (its record and consent, nothing else)
_OPT_OUT_KEYS = frozenset({"cid", "email", "platform_id", "consent", "consent_basis",
                           "consent_source", "consent_evidence"})

NOT_SENT = "not_sent"
"""The code of a change left unsent (platform stopped, run interrupted): owed, not an error."""


class Interrupt:
    """A request to stop a run early (a signal): no new batches, and within the batches in
    flight no new requests (those sent finish; `segsync.http.Interrupted`).

    `signal` is the number of the signal that asked (None: not asked). Safe to set from an
    event loop's signal handler; `on_set` callbacks run then (or at once if already set).
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self._callbacks: list[Callable[[], None]] = []

    def set(self, signal: int) -> None:
        if self.signal is None:
            self.signal = signal
            for callback in self._callbacks:
                callback()

    def on_set(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` when set (now, if it is); returns the undo of the registration."""
        self._callbacks.append(callback)
        if self.signal is not None:
            callback()
        return lambda: self._callbacks.remove(callback)

    def is_set(self) -> bool:
        return self.signal is not None

    def __repr__(self) -> str:
        return f"Interrupt(signal={self.signal})"


@dataclasses.dataclass(frozen=True)
class RunStart:
    """When a run started (its plan step, for a sync) and each connector's request counts
    then, so the report's time and API calls cover the whole run (reads included)."""

    at: str
    monotonic: float
    calls: Mapping[str, tuple[int, int]]  # platform -> (reads, writes) requests so far

    @classmethod
    def now(cls, clock: Clock, connectors: Mapping[str, Connector]) -> RunStart:
        return cls(
            iso_now(clock), clock.monotonic(),
            {name: (c.stats.reads, c.stats.writes) for name, c in connectors.items()},
        )


def iso_now(clock: Clock) -> str:
    """The clock's time, ISO-8601 in UTC."""
    return clock.now().astimezone(dt.UTC).isoformat()


def _chunks(items: Sequence[ChangeRow], size: int) -> list[Sequence[ChangeRow]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _count(
    counts: PlatformReport, row: ChangeRow, residual: dict[str, tuple[list[str], list[str]]]
) -> None:
    """Count a confirmed change; its residual tags (`segsync:` tags of split segments) are
    membership changes, collected into `residual` (tag -> added, removed contact ids)."""
    if row.get("create"):
        counts.created += 1
    else:
        counts.updated += 1
    counts.tags_added += len(row.get("tags_add", ()))
    counts.tags_removed += len(row.get("tags_remove", ()))
    if row.get("consent") is not None:
        counts.consent_changes += 1
    for tag in row.get("tags_add", ()):
        if tag.startswith(OWNED_TAG_PREFIX):
            residual.setdefault(tag, ([], []))[0].append(row["cid"])
    for tag in row.get("tags_remove", ()):
        if tag.startswith(OWNED_TAG_PREFIX):
            residual.setdefault(tag, ([], []))[1].append(row["cid"])


class Apply:
    """The apply step of a run: writes a plan platform by platform (concurrently), commits
    the verdicts of every batch, and records the run and its report."""

    def __init__(
        self,
        connectors: Mapping[str, Connector],
        state: ConfigState,
        *,
        schema: Schema,
        clock: Clock,
        progress: ProgressObserver,
        run_id: str,
        plan: Plan,
        start: RunStart | None = None,
        interrupt: Interrupt | None = None,
        deferred: frozenset[str] = frozenset(),
        hold: frozenset[str] = frozenset(),
    ) -> None:
        self.connectors = connectors
        self.state = state
        self.schema = schema
        self.clock = clock
        self.progress = progress
        self.run_id = run_id
        self.plan = plan
        self.start = start or RunStart.now(clock, connectors)
        self.interrupt = interrupt or Interrupt()
        #: contacts changed during the run (segsync.sync.recheck): nothing of them is
        #: written but their opt-outs, and they are reconciled again by the next run
        self.deferred = deferred
        #: platforms whose deletions stay pending (`StateStore.finish`)
        self.hold = hold
        #: the platforms stopped by a platform-level failure, and why
        self.stopped: dict[str, ApiError] = {}
        self.report = RunReport.of_plan(plan, run_id, started_at=self.start.at)

    async def run(self) -> RunReport:
        """Apply the plan; the report is stored whatever happens (status `failed` when the
        run raised)."""
        plan, report = self.plan, self.report
        started = self.start.monotonic
        self.state.start_run(self.run_id, at=report.started_at)
        calls_before = self.start.calls
        undo = self.interrupt.on_set(self._halt_requests)
        try:
            # consent changes seen and decided are recorded before anything is written: a
            # run killed mid-apply may not see them again (recording twice is harmless)
            self.state.add_ledger([
                LedgerEntry(e.cid, e.email, e.platform, e.at, e.previous, e.new, e.source,
                            e.legal_basis, self.run_id, source_platform=e.source or None,
                            evidence=e.evidence)
                for e in plan.consent_events
            ])
            await asyncio.gather(*(
                self.platform(name, pplan)
                for name, pplan in plan.platforms.items() if name in self.connectors
            ))
            self.state.finish(hold=self.hold)
        except BaseException:
            report.status = "failed"
            self._end(started, calls_before)
            raise
        finally:
            undo()
            for connector in self.connectors.values():
                if getattr(connector.stats, "halted", None) is not None:
                    connector.stats.halted = None
        if self.interrupt.is_set():
            report.status = "interrupted"
            report.interrupted_by = self.interrupt.signal
        else:
            report.status = "errors" if report.errors else "ok"
        self._end(started, calls_before)
        return report

    def _end(self, started: float, calls_before: Mapping[str, tuple[int, int]]) -> None:
        """Count calls and errors per platform, time the run and store its report."""
        report = self.report
        for name, connector in self.connectors.items():
            if name in report.platforms:
                counts = report.platforms[name]
                reads, writes = calls_before.get(name, (0, 0))
                counts.read_calls = connector.stats.reads - reads
                counts.write_calls = connector.stats.writes - writes
                counts.api_calls = counts.read_calls + counts.write_calls
                counts.errors = sum(1 for e in report.errors if e.platform == name)
        report.finished_at = iso_now(self.clock)
        report.duration_s = round(self.clock.monotonic() - started, 6)
        self.state.end_run(
            report.run_id,
            at=report.finished_at,
            status=report.status,
            report=report.model_dump(mode="json"),
            errors=[e.row() for e in report.errors],
            diagnostics=[
                (d.get("platform"), d.get("segment"), d.get("level", "info"), d.get("message", ""))
                for d in report.diagnostics
            ],
        )

    async def platform(self, name: str, pplan: PlatformPlan) -> None:
        """Publish, write and change memberships on one platform; errors go to the report."""
        bind_log(platform=name)  # this platform's task: its log lines name it
        pplan = self._defer(name, pplan)
        connector = self.connectors[name]
        caps = connector.capabilities
        if not self._halted(name):
            await self._owed_erasures(name, connector)
        try:
            await self._platform(name, pplan, connector, caps)
        finally:  # the containers it made are the platform's by their recorded refs
            record_made(name, connector, self.state.set_owned, iso_now(self.clock))

    async def _platform(
        self, name: str, pplan: PlatformPlan, connector: Connector, caps: Capabilities
    ) -> None:
        # what the plan made (or adopted) is recorded, then the connector is told it all
        record_made(name, connector, self.state.set_owned, iso_now(self.clock))
        await recall_made({name: connector}, self.state.owned(name),
                          [name] if self.state.cursor(name) is None else [],
                          self.state.set_owned, lambda: iso_now(self.clock))
        gate = asyncio.Semaphore(caps.max_concurrency)
        unprepared: str | None = None
        self.progress(ApplyStarted(
            name, len(pplan.changes), sum(len(m.add) + len(m.remove) for m in pplan.memberships),
        ))
        changes: Sequence[ChangeRow] = pplan.changes
        if changes and not self._halted(name):
            # fields, properties and tag options must exist before writes; a field or tag
            # the platform cannot hold is left out of its writes, never blocks the others
            named = {t for row in changes
                     for t in (*row.get("tags_add", ()), *row.get("tags_remove", ()))}
            problems = [
                Unwritable("tag", tag, why) for tag in sorted(named)
                if (why := connector.tag_problem(tag)) is not None
            ]
            bad = {p.name for p in problems}
            tags = sorted({t for row in changes for t in row.get("tags_add", ())} - bad)
            try:
                problems += await connector.prepare(self.schema.fields, tags) or []
            except Exception as exc:  # every write of the platform fails, reported per record
                self._platform_failed(name, exc)
                unprepared = f"preparing {name} failed: {exc}"
            record_made(name, connector, self.state.set_owned, iso_now(self.clock))
            changes = self._without(name, changes, problems)
        refs = await self._publish(name, pplan.publications)
        await asyncio.gather(*(
            self._write(name, batch, gate, unprepared)
            for batch in _chunks(changes, caps.write_batch_size)
        ))
        for membership in pplan.memberships:
            if self._halted(name):
                self._owe_members(name, membership.add, membership.remove)
                continue
            ref = refs.get(membership.name)
            if ref is None:
                self.report.errors.extend(
                    RecordError(platform=name, email=email, code="segment",
                                message=f"segment {membership.name!r} could not be created")
                    for _cid, email in membership.add
                )
                self.progress(MembersChanged(name, 0, 0, len(membership.add)))
                continue
            await self._members(name, ref, membership, gate)
        self.progress(ApplyDone(name))

    def _defer(self, name: str, pplan: PlatformPlan) -> PlatformPlan:
        """`pplan` without the writes of deferred contacts (but their opt-outs), which are
        kept dirty: what was read of them becomes the base, the next run merges them again."""
        if not self.deferred:
            return pplan
        changes: list[ChangeRow] = []
        held: set[str] = set()
        for row in pplan.changes:
            if row["cid"] not in self.deferred:
                changes.append(row)
                continue
            held.add(row["cid"])
            if (row.get("consent") in CONSENT_OPT_OUTS and row.get("platform_id")
                    and not row.get("create")):  # an opt-out wins whatever changed
                changes.append(cast(ChangeRow, {
                    k: v for k, v in row.items() if k in _OPT_OUT_KEYS
                }))
        memberships = []
        for m in pplan.memberships:
            add = [x for x in m.add if x.cid not in self.deferred]
            remove = [x for x in m.remove if x.cid not in self.deferred]
            held.update(x.cid for x in (*m.add, *m.remove) if x.cid in self.deferred)
            memberships.append(m.model_copy(update={"add": add, "remove": remove}))
        if not held:
            return pplan
        self.state.commit_writes(name, [], sorted(held), [])
        return pplan.model_copy(update={"changes": changes, "memberships": memberships})

    # -- contact changes ------------------------------------------------------------------

    def _without(
        self, name: str, changes: Sequence[ChangeRow], problems: Sequence[Unwritable]
    ) -> Sequence[ChangeRow]:
        """`changes` without the fields and tags platform `name` cannot hold (one warning
        each in the report); a row left writing nothing is dropped (it stays planned: the
        base does not advance). Consent, email and everything else are still written."""
        if not problems:
            return changes
        fields = {p.name for p in problems if p.kind == "field"}
        tags = {p.name for p in problems if p.kind == "tag"}
        for p in problems:
            message = f"{p.kind} {p.name!r} is not written to {name}: {p.message}"
            log.warning("%s: %s", name, message)
            self.report.diagnostics.append({
                "platform": name, "segment": "", "level": "warning", "step": "prepare",
                "message": message,
            })
        kept: list[ChangeRow] = []
        for original in changes:
            row = cast(ChangeRow, {**original})
            if fields and row.get("fields"):
                row["fields"] = {k: v for k, v in row["fields"].items() if k not in fields}
            if tags and row.get("tags_add"):
                row["tags_add"] = [t for t in row["tags_add"] if t not in tags]
            if tags and row.get("tags_remove"):
                row["tags_remove"] = [t for t in row["tags_remove"] if t not in tags]
            if writes_something(row):
                kept.append(row)
        return kept

    async def _write(
        self, name: str, batch: Sequence[ChangeRow], gate: asyncio.Semaphore,
        unprepared: str | None,
    ) -> None:
        counts = self.report.platforms[name]
        async with gate:
            if self._halted(name):  # not sent: owed to the next run, not an error
                results = [
                    ChangeResult(email=row["email"], ok=False, code=NOT_SENT) for row in batch
                ]
            else:
                try:
                    if unprepared is not None and name not in self.stopped:
                        raise RuntimeError(unprepared)
                    results = await self.connectors[name].write(
                        [self._change(r) for r in batch]
                    )
                except Exception as exc:  # a failed call fails its records
                    self._platform_failed(name, exc)
                    code = (exc.reason if isinstance(exc, PlatformUnavailable)
                            else exc.code if isinstance(exc, Interrupted) else "call")
                    results = [
                        ChangeResult(email=row["email"], ok=False, error=str(exc), code=code)
                        for row in batch
                    ]
                failure = (
                    self._reason(self.stopped[name]) if self._platform_failed(name)
                    else INTERRUPTED if self.interrupt.is_set() else None
                )
                if failure is not None:
                    # failed while the platform went down or the run was being interrupted:
                    # owed to the next run (which shows a refusal again), not reported here
                    results = [
                        r if r.ok and not r.partial else r.model_copy(update={"code": failure})
                        for r in results
                    ]
            created, updated = counts.created, counts.updated
            gone = counts.deleted + counts.archived
            with self.state.transaction():
                self._commit(name, batch, results, counts)
            created, updated = counts.created - created, counts.updated - updated
            gone = counts.deleted + counts.archived - gone  # found gone or archived: no failure
            self.progress(WriteBatch(name, created, updated,
                                     len(batch) - created - updated - gone))

    def _change(self, row: ChangeRow) -> ContactChange:
        """The change to send: field values coerced to the schema's types where they can."""
        if not row.get("fields"):
            return to_change(row)
        fields = {}
        for key, value in row["fields"].items():
            spec = self.schema.get(key)
            try:
                fields[key] = spec.coerce(value) if spec is not None else value
            except ValueError:
                fields[key] = value
        return to_change({**row, "fields": fields})

    def _commit(
        self,
        name: str,
        batch: Sequence[ChangeRow],
        results: Sequence[ChangeResult],
        counts: PlatformReport,
    ) -> None:
        """Record a batch's verdicts: the base advances for confirmed records only; a failed
        record is owed (with the platform's error) until written or acknowledged; a record
        the platform answered deleted (or that an `archive` row removed) is recorded deleted
        there, reported once, never written again."""
        at = iso_now(self.clock)
        snaps = self.state.snapshots(name, [row["cid"] for row in batch])
        confirmed: list[BaseRow] = []
        failed: list[str] = []
        owed: list[OwedWrite] = []
        deleted: list[Deletion] = []
        ledger: list[LedgerEntry] = []
        residual: dict[str, tuple[list[str], list[str]]] = {}  # tag -> (added, removed)
        claimed = self._claimed(name, batch, results)
        for index, row in enumerate(batch):
            result = results[index] if index < len(results) else None
            result = claimed.get(index, result)
            pid = (result.platform_id if result else None) or row.get("platform_id")
            before_row = snaps.get(row["cid"])
            before = (
                PlatformRecord.loads(before_row.payload)
                if before_row and not row.get("create") else None
            )
            email_key = normalize_email(row.get("new_email") or row["email"])
            if result is not None and result.sent_consent is not None:
                # a consent the platform confirmed is a change made, even in a failed record
                ledger.append(self._entry(name, row, result, before, email_key, at))
            if result is not None and result.deleted:
                confirmed.append(self._gone(name, row, before, pid, email_key, deleted, at))
                continue
            if result is None or not result.ok or result.partial or pid is None:
                failed.append(row["cid"])
                if self._refused(name, row, result, pid):
                    owed.append(OwedWrite(
                        name, row["cid"], email_key, self.report.errors[-1].message, at,
                        platform_id=pid, code=result.code if result else None,
                    ))
                continue
            held = row
            if row.get("fields"):  # values as the platform holds them (its own rewrites)
                connector = self.connectors[name]
                held = {**row, "fields": {
                    k: connector.normalise_field(k, v) for k, v in row["fields"].items()
                }}
            if result.sent_consent is not None and row.get("consent") != result.sent_consent:
                held = {**held, "consent": result.sent_consent}  # what the platform holds
            payload, digest = encode_record(
                apply_change(before, held, pid, email_key=email_key, at=at)
            )
            confirmed.append(BaseRow(name, row["cid"], pid, payload, hash=digest))
            _count(counts, row, residual)
            if row.get("consent") is not None and result.sent_consent is None and (
                not result.consent_not_sent  # nothing sent (a status it cannot hold): no row
            ):
                ledger.append(self._entry(name, row, result, before, email_key, at))
        self.state.commit_writes(name, confirmed, failed, ledger, owed=owed, deleted=deleted)
        for tag, (added, removed) in sorted(residual.items()):
            self.state.commit_members(name, tag, added, removed)
            counts.members_added += len(added)
            counts.members_removed += len(removed)

    def _entry(
        self, name: str, row: ChangeRow, result: ChangeResult, before: PlatformRecord | None,
        email_key: str, at: str,
    ) -> LedgerEntry:
        """The ledger row of a consent change made on platform `name`: what was asked, what
        was sent (the platform's word where it gives it), what it rests on and its basis."""
        asked = str(row["consent"]) if row.get("consent") is not None else None
        sent = str(result.sent_consent) if result.sent_consent is not None else asked
        previous = before.consent.value if before else None
        if result.held_consent is not None:  # read right before the write: what it held
            previous = result.held_consent.value
        return LedgerEntry(
            row["cid"], email_key, name, at, previous,
            asked or sent or "", "sync",
            result.sent_basis or row.get("consent_basis"), self.run_id,
            sent=sent, source_platform=row.get("consent_source"),
            evidence=row.get("consent_evidence"), basis_from_default=result.basis_from_default,
        )

    def _gone(
        self, name: str, row: ChangeRow, before: PlatformRecord | None, pid: str | None,
        email_key: str, deleted: list[Deletion], at: str,
    ) -> BaseRow:
        """The base of a record no longer on platform `name`: marked deleted. One found by a
        write (not segsync's own `archive`) is recorded and reported once."""
        record = before or PlatformRecord(pid or "", row["email"], email_key)
        pid = pid or record.platform_id
        payload, digest = encode_record(dataclasses.replace(record, deleted=True))
        counts = self.report.platforms[name]
        if row.get("archive"):
            counts.archived += 1
        elif row.get("create"):  # archived before segsync linked it: nothing to archive
            counts.deleted += 1  # elsewhere (never linked), never added back there
            self.report.diagnostics.append({
                "platform": name, "segment": "", "level": "warning", "step": "delete",
                "message": f"{row['email']}: archived on {name} before segsync linked it:"
                           " recorded, not re-created there",
            })
        else:
            counts.deleted += 1
            deleted.append(Deletion(name, row["cid"], email_key, pid, at, "write"))
            self.report.diagnostics.append({
                "platform": name, "segment": "", "level": "warning", "step": "delete",
                "message": f"{row['email']}: deleted or archived on {name} (answered to an"
                           " update): recorded, not written or re-created there",
            })
        return BaseRow(name, row["cid"], pid, payload, deleted=True, hash=digest)

    def _claimed(
        self, name: str, batch: Sequence[ChangeRow], results: Sequence[ChangeResult]
    ) -> dict[int, ChangeResult]:
        """The confirmed records answered with a platform id another contact is linked to
        (in the base, or earlier in the batch): two people on one record. Each fails with
        an error naming both (never linked), instead of breaking the id map."""
        fresh = {
            i: r.platform_id for i, r in enumerate(results[: len(batch)])
            if r.ok and r.platform_id and r.platform_id != batch[i].get("platform_id")
        }
        if not fresh:
            return {}
        ids = sorted(set(fresh.values()))
        holders = {**self.state.staged_cids_by_platform_id(name, ids),  # read this run
                   **self.state.cids_by_platform_id(name, ids)}
        emails = {row["cid"]: row["email"] for row in batch}
        for row in batch:  # a record kept by its linked contact is that contact's
            if (kept := row.get("platform_id")) in ids:
                holders.setdefault(str(kept), row["cid"])
        out: dict[int, ChangeResult] = {}
        for i, pid in fresh.items():
            holder = holders.setdefault(pid, batch[i]["cid"])
            if holder == batch[i]["cid"]:
                continue
            snap = self.state.snapshots(name, [holder]).get(holder)
            who = emails.get(holder) or (
                PlatformRecord.loads(snap.payload).email_key if snap else "another contact")
            out[i] = results[i].model_copy(update={
                "ok": False, "partial": False, "platform_id": None, "code": "record_claimed",
                "error": f"{name} answered with record {pid}, which is {who}'s: one {name} "
                         f"record for two people; nothing is linked; fix: separate or merge "
                         f"the two people in {name}",
            })
        return out

    def _refused(
        self, name: str, row: ChangeRow, result: ChangeResult | None, platform_id: str | None
    ) -> bool:
        """Report a record the platform refused, or did not confirm (not one left unsent, nor
        one failed by its platform's failure: that is one platform-level error). True when
        reported: the write is then owed."""
        if result is not None and (
            result.code == NOT_SENT
            or (name in self.stopped and result.code in PLATFORM_FAILURE_CODES)
            or (self.interrupt.is_set() and result.code == INTERRUPTED)
        ):
            return False
        message = "no result for this record" if result is None else (
            result.error or "not confirmed")
        self.report.errors.append(
            RecordError(platform=name, email=row["email"], platform_id=platform_id,
                        code=result.code if result else None, message=message)
        )
        return True

    # -- segment objects ------------------------------------------------------------------

    async def _publish(self, name: str, publications: Sequence[Publication]) -> dict[str, str]:
        """Create static segments, publish native ones, delete owned ones no longer wanted;
        returns the refs of the static segments, by name.

        A segment switching kind (static <-> native) has its old object retired first, so
        that the new one takes the name segsync gives it; when that deletion fails, the new
        object waits for the next run rather than taking a distinct name.
        """
        owned = self.state.owned(name)
        refs = {o.name: o.ref for o in owned if o.kind == "static" and o.ref != CREATING}
        intents = {(o.kind, o.name) for o in owned if o.ref == CREATING}
        at = iso_now(self.clock)
        switching = _switching(publications)
        retiring: set[str] = set()  # names whose old object is not yet retired
        for pub in sorted(publications, key=lambda p: (
            not (p.kind is PublicationKind.DELETE and p.name in switching),
            _PUBLICATION_ORDER.index(p.kind),
        )):
            if self._halted(name):  # published by the next run
                break
            if pub.kind is not PublicationKind.DELETE and pub.name in retiring:
                continue
            if pub.kind is PublicationKind.DELETE and pub.name in switching:
                retiring.add(pub.name)
            try:
                if pub.kind is not PublicationKind.DELETE and pub.name in switching:
                    await self._name_after_retiring(name, pub)
                await self._publish_one(name, pub, refs, intents, at)
                retiring.discard(pub.name)
                self.report.platforms[name].publications += 1
                self.progress(Published(name, pub.kind, pub.name, ok=True))
            except Exception as exc:
                if self._platform_failed(name, exc) or isinstance(exc, Interrupted):
                    break
                self.report.errors.append(RecordError(
                    platform=name, code="segment", message=f"{pub.kind} {pub.name!r}: {exc}"
                ))
                self.progress(Published(name, pub.kind, pub.name, ok=False))
        return refs

    async def _publish_one(
        self, name: str, pub: Publication, refs: dict[str, str],
        intents: set[tuple[str, str]], at: str,
    ) -> None:
        connector = self.connectors[name]
        if pub.kind is PublicationKind.TAG:  # a residual tag: the platform's tag option
            await connector.prepare(self.schema.fields, [pub.name])
            self.state.set_owned(OwnedObject(name, "tag", pub.name, pub.name), at=at)
        elif pub.kind is PublicationKind.STATIC:
            ref = await self._known_or_adopted(name, pub, intents, at)
            ref = await connector.ensure_static(pub.name, ref)
            self.state.set_owned(OwnedObject(name, "static", pub.name, ref), at=at)
            refs[pub.name] = ref
        elif pub.kind is PublicationKind.NATIVE:
            ref = await self._known_or_adopted(name, pub, intents, at)
            ref = await connector.publish_native(pub.name, pub.definition or {}, ref)
            self.state.set_owned(
                OwnedObject(name, "native", pub.name, ref, pub.definition_hash), at=at
            )
        else:
            kind = pub.owned_kind or "static"
            found = pub.ref
            if found == CREATING:  # a creation a killed run may or may not have made
                found = await connector.find_owned(kind, pub.name)
            if found is not None:
                await connector.delete_owned(kind, found)
            self.state.forget_owned(name, kind, pub.name)

    async def _name_after_retiring(self, platform: str, pub: Publication) -> None:
        """A segment switching kind, its old object deleted: a name still held is someone
        else's object, which the report names (as the plan does for any creation)."""
        named, note = await self.connectors[platform].creation_name(str(pub.kind), pub.name)
        if note:
            self.report.diagnostics.append({
                "segment": pub.segment, "platform": platform, "step": "ownership",
                "level": "warning",
                "message": f"{note}; segsync leaves it alone and creates {named!r} instead",
            })

    async def _known_or_adopted(
        self, platform: str, pub: Publication, intents: set[tuple[str, str]], at: str
    ) -> str | None:
        """The ref to update for a publication, or None to create one.

        Before a creation, the intent (kind, name, ref `CREATING`) is recorded, so that a run
        killed before recording the platform's answer leaves a trace: the next run adopts
        the object of that exact owned name (`Connector.find_owned`) instead of creating a
        second one or failing on a duplicate name.
        """
        if pub.ref is not None:
            return pub.ref
        if (pub.kind, pub.name) in intents:
            ref = await self.connectors[platform].find_owned(pub.kind, pub.name)
            if ref is not None:
                return ref
        else:
            self.state.set_owned(OwnedObject(platform, pub.kind, pub.name, CREATING), at=at)
        return None

    # -- static segment memberships -------------------------------------------------------

    async def _members(
        self, name: str, ref: str, membership: MembershipChange, gate: asyncio.Semaphore
    ) -> None:
        connector = self.connectors[name]
        counts = self.report.platforms[name]
        size = connector.capabilities.membership_batch_size
        adds, removes = membership.add, membership.remove
        for start in range(0, max(len(adds), len(removes)), size):
            add = adds[start : start + size]
            remove = removes[start : start + size]
            if self._halted(name):
                self._owe_members(name, add, remove)
                continue
            async with gate:
                try:
                    results = await connector.change_static_members(
                        ref, [e for _, e in add], [e for _, e in remove]
                    )
                except Exception as exc:
                    self._platform_failed(name, exc)
                    results = [ChangeResult(email=e, ok=False, error=str(exc))
                               for _, e in [*add, *remove]]
                if self._platform_failed(name) or self.interrupt.is_set():
                    # what it did not confirm is owed; the platform's failure is one error
                    done = {r.email for r in results if r.ok}
                    with contextlib.suppress(InvalidEmail):
                        done |= {normalize_email(r.email) for r in results if r.ok}
                    self._owe_members(name, [m for m in add if m[1] not in done],
                                      [m for m in remove if m[1] not in done])
                    add = [m for m in add if m[1] in done]
                    remove = [m for m in remove if m[1] in done]
            verdict = {}
            for r in results:
                with contextlib.suppress(InvalidEmail):
                    verdict[normalize_email(r.email)] = r
            ok_add = [cid for cid, e in add if (v := verdict.get(e)) is not None and v.ok]
            ok_remove = [cid for cid, e in remove if (v := verdict.get(e)) is not None and v.ok]
            gone = self._members_gone(name, [(c, e) for c, e in add
                                             if (v := verdict.get(e)) is not None and v.deleted])
            for _cid, email in [*add, *remove]:
                v = verdict.get(email)
                if email in gone:
                    continue
                if v is None or not v.ok:
                    self.report.errors.append(RecordError(
                        platform=name, email=email, code=v.code if v else None,
                        message=(v.error if v else None) or "membership not confirmed",
                    ))
            self.state.commit_members(name, membership.name, ok_add, ok_remove)
            counts.members_added += len(ok_add)
            counts.members_removed += len(ok_remove)
            self.progress(MembersChanged(
                name, len(ok_add), len(ok_remove),
                len(add) + len(remove) - len(ok_add) - len(ok_remove),
            ))

    async def _owed_erasures(self, name: str, connector: Connector) -> None:
        """Perform the erasures owed on platform `name` (its account was checked by the
        run's gate): each done one is counted and reported (a diagnostic, never a record
        error); one that failed again stays owed and is a record error."""
        for done in await settle_owed(name, connector, self.state):
            if done.result.confirmed:
                self.report.platforms[name].erased += 1
                self.report.diagnostics.append({
                    "platform": name, "segment": "", "level": "info", "step": "erase",
                    "message": f"{done.tombstone}: the erasure owed on {name} since "
                               f"{done.since} (`segsync erase`) is done",
                })
            else:
                self.report.errors.append(RecordError(
                    platform=name, code="erasure_owed",
                    message=f"{done.tombstone}: the erasure owed on {name} since {done.since}"
                            f" failed again: {done.result.error} (retried by each run)",
                ))

    def _members_gone(self, name: str, found: Sequence[tuple[str, str]]) -> set[str]:
        """Members a membership write found deleted on platform `name` (answered `deleted`):
        recorded deleted there and reported once, as a contact write finding it (never a
        record error). Returns their emails; one without a base there stays an error."""
        if not found:
            return set()
        at = iso_now(self.clock)
        snaps = self.state.snapshots(name, [cid for cid, _ in found])
        bases: list[BaseRow] = []
        deleted: list[Deletion] = []
        emails: set[str] = set()
        for cid, email in found:
            snap = snaps.get(cid)
            if snap is None:
                continue
            emails.add(email)
            if snap.deleted:
                continue
            before = PlatformRecord.loads(snap.payload)
            row = cast(ChangeRow, {"cid": cid, "email": email})
            bases.append(self._gone(name, row, before, snap.platform_id, email, deleted, at))
        if bases:
            with self.state.transaction():
                self.state.commit_writes(name, bases, [], deleted=deleted)
        return emails

    # -- platform failures and interruptions ----------------------------------------------

    def _halted(self, name: str) -> bool:
        """No more work on platform `name`: it failed as a whole, or the run was interrupted."""
        return self.interrupt.is_set() or self._platform_failed(name)

    def _platform_failed(self, name: str, exc: BaseException | None = None) -> bool:
        """Whether platform `name` is stopped; `exc` (a call's exception) or its client's open
        circuit breaker stop it, with one platform-level error in the report."""
        if name in self.stopped:
            return True
        failure = exc if isinstance(exc, PlatformUnavailable) else None
        if failure is None:
            failure = getattr(self.connectors[name].stats, "unavailable", None)
        if not isinstance(failure, ApiError):
            return False
        self.stopped[name] = failure
        self.report.errors.append(RecordError(
            platform=name, code=self._reason(failure),
            message=f"{failure}; what was not written is retried next run",
        ))
        return True

    @staticmethod
    def _reason(failure: ApiError) -> str:
        """The platform-level code of a failure (`PLATFORM_FAILURE_CODES`)."""
        reason = getattr(failure, "reason", None)
        return reason if isinstance(reason, str) else "platform_unavailable"

    def _owe_members(
        self, name: str, add: Sequence[tuple[str, str]], remove: Sequence[tuple[str, str]]
    ) -> None:
        """Membership changes left unsent: their contacts are reconciled again next run."""
        cids = sorted({cid for cid, _ in [*add, *remove]})
        if cids:
            self.state.commit_writes(name, [], cids, [])

    def _halt_requests(self) -> None:
        """The run was interrupted: every platform's client stops sending new requests."""
        for connector in self.connectors.values():
            with contextlib.suppress(AttributeError):
                connector.stats.halted = f"the run was interrupted (signal {self.interrupt.signal})"
