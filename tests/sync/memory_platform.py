"""An in-memory platform and its connector, for testing the sync engine.

`MemoryPlatform` behaves like a marketing platform: its own ids, `updated_at` from an injected
clock, incremental reads by `updated_at` with an overlap (the boundary is re-read), paging,
a consent floor (refuses `subscribed` for unsubscribed or bounced records, like Mailchimp's
"Member In Compliance State"), a refusal to create a second record with the same email,
per-record errors on demand, static segments, native segments, and a log of every write. It
can be saved to and loaded from JSON (the crash test persists it after every write call).

The user-side helpers (`add`, `edit`, `tag`, `set_consent`, `rename`, `delete`) are what a
person does in the platform's UI: they move `updated_at` and are not logged as writes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, ClassVar

from segsync.clock import Clock, VirtualClock
from segsync.connector import (
    Capabilities,
    ChangeResult,
    Connector,
    ConnectorConfig,
    ContactChange,
    ReadPage,
    RemoteContact,
    TagRepresentation,
)
from segsync.http import RequestStats
from segsync.model import Consent, ConsentStatus, FieldSpec

OPT_OUTS = {"unsubscribed", "bounced"}


def _key(email: str) -> str:
    return email.strip().lower()


@dataclasses.dataclass
class Record:
    id: str
    email: str
    fields: dict[str, Any]
    tags: set[str]
    consent: str
    updated_at: dt.datetime
    consent_at: dt.datetime | None = None
    deleted: bool = False

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["tags"] = sorted(self.tags)
        data["updated_at"] = self.updated_at.isoformat()
        data["consent_at"] = self.consent_at.isoformat() if self.consent_at else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Record:
        values = dict(data)
        values["tags"] = set(values["tags"])
        values["updated_at"] = dt.datetime.fromisoformat(values["updated_at"])
        if values.get("consent_at"):
            values["consent_at"] = dt.datetime.fromisoformat(values["consent_at"])
        return cls(**values)


class MemoryPlatform:
    """The platform's state (see the module docstring)."""

    def __init__(
        self,
        name: str,
        clock: VirtualClock,
        *,
        page_size: int = 7,
        overlap: dt.timedelta = dt.timedelta(seconds=0),
        fields: Sequence[str] | None = None,
        cannot_hold: Mapping[str, str] | None = None,
        no_evidence: Sequence[str] = (),
    ) -> None:
        self.name = name
        # consent statuses the platform cannot hold -> what a write of them leaves (e.g.
        # HubSpot: pending -> non_subscribed, "not specified"), and the statuses it reads
        # without evidence (unknown); the others read with evidence `consent=<status>`
        self.cannot_hold = dict(cannot_hold or {})
        self.no_evidence = frozenset(no_evidence)
        # like HubSpot's `legal_basis`: the basis sent with a consent that has none of its
        # own (reported in `ChangeResult.sent_basis`); like Mailchimp's `reoptin_via_pending`:
        # `subscribed` asked over an opt-out is sent as `pending` (`ChangeResult.sent_consent`)
        self.default_basis: str | None = None
        self.reoptin_via_pending = False
        self.clock = clock
        self.page_size = page_size
        self.overlap = overlap
        self.fields = tuple(fields) if fields is not None else None
        self.records: dict[str, Record] = {}
        self.next_id = 1
        self.statics: dict[str, dict[str, Any]] = {}
        self.natives: dict[str, dict[str, Any]] = {}
        self.writes: list[dict[str, Any]] = []  # every change segsync sent, as applied
        self.fail: dict[str, str] = {}  # email key -> message of a refusal on demand
        self.after_write: Callable[[MemoryPlatform], None] | None = None

    # -- persistence ----------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "next_id": self.next_id,
                "records": [r.as_json() for r in self.records.values()],
                "statics": {k: {"name": v["name"], "members": sorted(v["members"])}
                            for k, v in self.statics.items()},
                "natives": self.natives,
                "writes": self.writes,
            }
        )

    def load_json(self, text: str) -> None:
        data = json.loads(text)
        self.next_id = data["next_id"]
        self.records = {r["id"]: Record.from_json(r) for r in data["records"]}
        self.statics = {k: {"name": v["name"], "members": set(v["members"])}
                        for k, v in data["statics"].items()}
        self.natives = data["natives"]
        self.writes = data["writes"]

    # -- what a person does in the UI -----------------------------------------------------

    def _tick(self) -> dt.datetime:
        self.clock.advance(0.001)
        return self.clock.now()

    def find(self, email: str) -> Record | None:
        """The live record with this email (case-insensitive), if any."""
        for record in self.records.values():
            if not record.deleted and _key(record.email) == _key(email):
                return record
        return None

    def live(self) -> list[Record]:
        return [r for r in self.records.values() if not r.deleted]

    def add(
        self,
        email: str,
        fields: Mapping[str, Any] | None = None,
        tags: Sequence[str] = (),
        consent: str = "non_subscribed",
    ) -> Record:
        now = self._tick()
        record = Record(
            id=f"{self.name}-{self.next_id}", email=email, fields=dict(fields or {}),
            tags=set(tags), consent=consent, updated_at=now, consent_at=now,
        )
        self.next_id += 1
        self.records[record.id] = record
        return record

    def edit(self, record_id: str, **fields: Any) -> None:
        record = self.records[record_id]
        for name, value in fields.items():
            if value is None:
                record.fields.pop(name, None)
            else:
                record.fields[name] = value
        record.updated_at = self._tick()

    def tag(self, record_id: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> None:
        record = self.records[record_id]
        record.tags |= set(add)
        record.tags -= set(remove)
        record.updated_at = self._tick()

    def set_consent(self, record_id: str, status: str) -> None:
        record = self.records[record_id]
        record.consent = status
        record.updated_at = record.consent_at = self._tick()

    def rename(self, record_id: str, email: str) -> None:
        record = self.records[record_id]
        record.email = email
        record.updated_at = self._tick()

    def delete(self, record_id: str) -> None:
        record = self.records[record_id]
        record.deleted = True
        record.updated_at = self._tick()

    # -- the API --------------------------------------------------------------------------

    def read_pages(self, cursor: str | None) -> list[ReadPage]:
        since = dt.datetime.fromisoformat(cursor) - self.overlap if cursor else None
        chosen = sorted(
            (r for r in self.records.values() if since is None or r.updated_at >= since),
            key=lambda r: (r.updated_at, r.id),
        )
        pages = []
        for start in range(0, len(chosen), self.page_size):
            part = chosen[start : start + self.page_size]
            pages.append(ReadPage([self._remote(r) for r in part], part[-1].updated_at.isoformat()))
        return pages

    def _remote(self, record: Record) -> RemoteContact:
        fields = {k: v for k, v in record.fields.items() if self.fields is None or k in self.fields}
        return RemoteContact(
            platform_id=record.id,
            email=record.email,
            fields=fields,
            tags=frozenset(record.tags),
            consent=Consent(
                status=ConsentStatus(record.consent), updated_at=record.consent_at,
                evidence=None if record.consent in self.no_evidence
                else f"consent={record.consent}",
            ),
            updated_at=record.updated_at,
            deleted=record.deleted,
        )

    def apply(self, change: ContactChange) -> ChangeResult:
        """Apply one change like the platform would; refusals carry the platform's message."""
        sent: ConsentStatus | None = None
        refusal = self.fail.get(_key(change.email))
        if refusal:
            return ChangeResult(email=change.email, ok=False, error=refusal, code="refused")
        if change.create:
            if self.find(change.email) is not None:
                return ChangeResult(email=change.email, ok=False, code="conflict",
                                    error=f"Contact already exists: {change.email}")
            consent = change.consent or "non_subscribed"
            record = self.add(change.email, consent=self.cannot_hold.get(consent, consent))
            created = True
        else:
            record = self.records.get(change.platform_id or "")
            if record is None or record.deleted:
                return ChangeResult(email=change.email, ok=False, code="not_found",
                                    error=f"Resource Not Found: {change.platform_id}")
            created = False
            if change.consent == "subscribed" and record.consent in OPT_OUTS and (
                self.reoptin_via_pending
            ):
                change = change.model_copy(update={"consent": ConsentStatus.PENDING})
                sent = ConsentStatus.PENDING
            elif change.consent == "subscribed" and record.consent in OPT_OUTS:
                return ChangeResult(
                    email=change.email, ok=False, code="compliance",
                    error=f"{change.email} is in a compliance state and cannot be subscribed",
                )
            if change.new_email:
                other = self.find(change.new_email)
                if other is not None and other.id != record.id:
                    return ChangeResult(email=change.email, ok=False, code="conflict",
                                        error=f"Contact already exists: {change.new_email}")
                record.email = change.new_email
            held = self.cannot_hold.get(change.consent or "", change.consent)
            if held is not None and held != record.consent:
                record.consent = held
                record.consent_at = self.clock.now()
        for name, value in change.fields.items():
            if value is None:
                record.fields.pop(name, None)
            else:
                record.fields[name] = value
        record.tags |= set(change.tags_add)
        record.tags -= set(change.tags_remove)
        record.updated_at = self._tick()
        self.writes.append(json.loads(change.model_dump_json(exclude_defaults=True)))
        basis = None
        if change.consent is not None and self.default_basis is not None:
            basis = change.consent_basis or self.default_basis
        return ChangeResult(
            email=change.email, ok=True, platform_id=record.id, created=created,
            sent_consent=sent, sent_basis=basis,
            basis_from_default=basis is not None and change.consent_basis is None,
        )


class MemoryConfig(ConnectorConfig):
    pass


class MemoryConnector(Connector):
    """A `Connector` over a `MemoryPlatform` (yields to the event loop like real I/O)."""

    name: ClassVar[str] = "memory"
    title: ClassVar[str] = "In-memory platform"
    config_model = MemoryConfig
    capabilities = Capabilities(
        write_batch_size=3,
        read_page_size=7,
        membership_batch_size=4,
        max_concurrency=2,
        tags=TagRepresentation.TAGS,
        static_segments="tag",
    )

    def __init__(self, platform: MemoryPlatform, clock: Clock | None = None) -> None:
        super().__init__({}, clock=clock or platform.clock)
        self.platform = platform
        self._stats = RequestStats()
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def stats(self) -> RequestStats:
        return self._stats

    def _count(self, endpoint: str) -> None:
        self._stats.endpoints[endpoint].calls += 1

    async def check(self) -> None:
        self._count("GET /ping")

    async def prepare(self, fields: Mapping[str, FieldSpec], tags: Sequence[str]) -> None:
        self._count("POST /prepare")

    async def read(self, cursor: str | None = None) -> AsyncIterator[ReadPage]:
        for page in self.platform.read_pages(cursor):
            self._count("GET /contacts")
            await asyncio.sleep(0)
            yield page

    async def write(self, changes: Sequence[ContactChange]) -> list[ChangeResult]:
        assert len(changes) <= self.capabilities.write_batch_size
        self._count("POST /contacts/batch")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
            results = [self.platform.apply(change) for change in changes]
        finally:
            self.in_flight -= 1
        if self.platform.after_write is not None:
            self.platform.after_write(self.platform)
        return results

    async def ensure_static(self, name: str, ref: str | None) -> str:
        self._count("POST /statics")
        if ref is not None and ref in self.platform.statics:
            return ref
        ref = f"static-{len(self.platform.statics) + 1}"
        self.platform.statics[ref] = {"name": name, "members": set()}
        return ref

    async def change_static_members(
        self, ref: str, add: Sequence[str], remove: Sequence[str]
    ) -> list[ChangeResult]:
        self._count("POST /statics/members")
        members = self.platform.statics[ref]["members"]
        results = []
        for email, adding in [*((e, True) for e in add), *((e, False) for e in remove)]:
            record = self.platform.find(email)
            if record is None:
                results.append(ChangeResult(email=email, ok=False, error="no such member"))
                continue
            (members.add if adding else members.discard)(record.id)
            results.append(ChangeResult(email=email, ok=True, platform_id=record.id))
        return results

    async def publish_native(
        self, name: str, definition: Mapping[str, Any], ref: str | None
    ) -> str:
        self._count("POST /segments")
        ref = ref or f"segment-{len(self.platform.natives) + 1}"
        self.platform.natives[ref] = {"name": name, "definition": dict(definition)}
        return ref

    async def delete_owned(self, kind: str, ref: str) -> None:
        self._count("DELETE /objects")
        self.platform.statics.pop(ref, None)
        self.platform.natives.pop(ref, None)

    async def segment_members(self, ref: str) -> AsyncIterator[str]:
        for record_id in sorted(self.platform.statics[ref]["members"]):
            yield self.platform.records[record_id].email
