"""Apply: write a plan's part of each platform, record what the platforms confirmed, and
store the run's report.

Segment objects are published first (residual tags before the native definitions that
filter on them), then contact changes in batches of the connector's `write_batch_size`, at
most `max_concurrency` in flight, then static segment memberships. Every batch's verdicts
are committed in one transaction: the base advances for confirmed records only, and a
failed record's contact is reconciled again by the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Mapping, Sequence

from segsync.clock import Clock
from segsync.connector import ChangeResult, Connector, ContactChange
from segsync.model import InvalidEmail, Schema, normalize_email
from segsync.state.base import BaseRow, LedgerEntry, OwnedObject
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
from segsync.sync.segments import CREATING
from segsync.sync.snapshot import PlatformRecord, apply_change, encode_record

__all__ = ["Apply", "iso_now"]

_PUBLICATION_ORDER = tuple(PublicationKind)  # residual tags exist before natives


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
    ) -> None:
        self.connectors = connectors
        self.state = state
        self.schema = schema
        self.clock = clock
        self.progress = progress
        self.run_id = run_id
        self.plan = plan
        self.report = RunReport.of_plan(plan, run_id, started_at=iso_now(clock))

    async def run(self) -> RunReport:
        """Apply the plan; the report is stored whatever happens (status `failed` when the
        run raised)."""
        plan, report = self.plan, self.report
        started = self.clock.monotonic()
        self.state.start_run(self.run_id, at=report.started_at)
        calls_before = {name: c.stats.calls for name, c in self.connectors.items()}
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
            self.state.finish()
        except BaseException:
            report.status = "failed"
            self._end(started, calls_before)
            raise
        report.status = "errors" if report.errors else "ok"
        self._end(started, calls_before)
        return report

    def _end(self, started: float, calls_before: Mapping[str, int]) -> None:
        """Count calls and errors per platform, time the run and store its report."""
        report = self.report
        for name, connector in self.connectors.items():
            if name in report.platforms:
                counts = report.platforms[name]
                counts.api_calls = connector.stats.calls - calls_before[name]
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
        connector = self.connectors[name]
        caps = connector.capabilities
        gate = asyncio.Semaphore(caps.max_concurrency)
        unprepared: str | None = None
        self.progress(ApplyStarted(
            name, len(pplan.changes), sum(len(m.add) + len(m.remove) for m in pplan.memberships),
        ))
        if pplan.changes:  # fields, properties and tag options must exist before writes
            tags = sorted({t for row in pplan.changes for t in row.get("tags_add", ())})
            try:
                await connector.prepare(self.schema.fields, tags)
            except Exception as exc:  # every write of the platform fails, reported per record
                unprepared = f"preparing {name} failed: {exc}"
        refs = await self._publish(name, pplan.publications)
        await asyncio.gather(*(
            self._write(name, batch, gate, unprepared)
            for batch in _chunks(pplan.changes, caps.write_batch_size)
        ))
        for membership in pplan.memberships:
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

    # -- contact changes ------------------------------------------------------------------

    async def _write(
        self, name: str, batch: Sequence[ChangeRow], gate: asyncio.Semaphore,
        unprepared: str | None,
    ) -> None:
        counts = self.report.platforms[name]
        async with gate:
            try:
                if unprepared is not None:
                    raise RuntimeError(unprepared)
                results = await self.connectors[name].write([self._change(r) for r in batch])
            except Exception as exc:  # a failed call fails its records
                results = [
                    ChangeResult(email=row["email"], ok=False, error=str(exc), code="call")
                    for row in batch
                ]
            created, updated = counts.created, counts.updated
            with self.state.transaction():
                self._commit(name, batch, results, counts)
            created, updated = counts.created - created, counts.updated - updated
            self.progress(WriteBatch(name, created, updated, len(batch) - created - updated))

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
        """Record a batch's verdicts: the base advances for confirmed records only."""
        at = iso_now(self.clock)
        snaps = self.state.snapshots(name, [row["cid"] for row in batch])
        confirmed: list[BaseRow] = []
        failed: list[str] = []
        ledger: list[LedgerEntry] = []
        residual: dict[str, tuple[list[str], list[str]]] = {}  # tag -> (added, removed)
        for index, row in enumerate(batch):
            result = results[index] if index < len(results) else None
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
            if result is None or not result.ok or result.partial or pid is None:
                failed.append(row["cid"])
                self._refused(name, row, result, pid)
                continue
            held = row
            if result.sent_consent is not None and row.get("consent") != result.sent_consent:
                held = {**row, "consent": result.sent_consent}  # what the platform holds
            payload, digest = encode_record(
                apply_change(before, held, pid, email_key=email_key, at=at)
            )
            confirmed.append(BaseRow(name, row["cid"], pid, payload, hash=digest))
            _count(counts, row, residual)
            if row.get("consent") is not None and result.sent_consent is None and (
                not result.consent_not_sent  # nothing sent (a status it cannot hold): no row
            ):
                ledger.append(self._entry(name, row, result, before, email_key, at))
        self.state.commit_writes(name, confirmed, failed, ledger)
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
        return LedgerEntry(
            row["cid"], email_key, name, at, before.consent.value if before else None,
            asked or sent or "", "sync",
            result.sent_basis or row.get("consent_basis"), self.run_id,
            sent=sent, source_platform=row.get("consent_source"),
            evidence=row.get("consent_evidence"), basis_from_default=result.basis_from_default,
        )

    def _refused(
        self, name: str, row: ChangeRow, result: ChangeResult | None, platform_id: str | None
    ) -> None:
        """Report a record the platform refused, or did not confirm."""
        message = "no result for this record" if result is None else (
            result.error or "not confirmed")
        self.report.errors.append(
            RecordError(platform=name, email=row["email"], platform_id=platform_id,
                        code=result.code if result else None, message=message)
        )

    # -- segment objects ------------------------------------------------------------------

    async def _publish(self, name: str, publications: Sequence[Publication]) -> dict[str, str]:
        """Create static segments, publish native ones, delete owned ones no longer wanted;
        returns the refs of the static segments, by name."""
        owned = self.state.owned(name)
        refs = {o.name: o.ref for o in owned if o.kind == "static" and o.ref != CREATING}
        intents = {(o.kind, o.name) for o in owned if o.ref == CREATING}
        at = iso_now(self.clock)
        for pub in sorted(publications, key=lambda p: _PUBLICATION_ORDER.index(p.kind)):
            try:
                await self._publish_one(name, pub, refs, intents, at)
                self.report.platforms[name].publications += 1
                self.progress(Published(name, pub.kind, pub.name, ok=True))
            except Exception as exc:
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
            async with gate:
                try:
                    results = await connector.change_static_members(
                        ref, [e for _, e in add], [e for _, e in remove]
                    )
                except Exception as exc:
                    results = [ChangeResult(email=e, ok=False, error=str(exc))
                               for _, e in [*add, *remove]]
            verdict = {}
            for r in results:
                with contextlib.suppress(InvalidEmail):
                    verdict[normalize_email(r.email)] = r
            ok_add = [cid for cid, e in add if (v := verdict.get(e)) is not None and v.ok]
            ok_remove = [cid for cid, e in remove if (v := verdict.get(e)) is not None and v.ok]
            for _cid, email in [*add, *remove]:
                v = verdict.get(email)
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
