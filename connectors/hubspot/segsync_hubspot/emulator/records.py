"""HubSpot's records as the emulator keeps them, and the rules contact values follow.

`ContactRecords` holds the contacts with an email index and sorted (epoch ms, id) indexes of
`createdate` and `lastmodifieddate` (range searches start from them), validates and stores
property values as HubSpot does (numbers, booleans, dates at midnight UTC, options of
enumerations, `;`-appended checkbox values, read-only properties, unique emails), keeps each
property's history, mirrors subscription statuses into the read-only `hs_email_optout*`
properties, and journals what a batch touches so that the batch can be undone. The records
of lists and subscription statuses are here too; `HubSpotError` is an error answer in
HubSpot's shape, raised anywhere below a route.
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from segsync.emulator.base import Emulator
from segsync_hubspot.filters import to_epoch_ms

__all__ = [
    "EMAIL_PATTERN",
    "BatchJournal",
    "ContactRecord",
    "ContactRecords",
    "HubSpotError",
    "ListRecord",
    "StatusRecord",
    "iso_time",
]

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
"""What HubSpot accepts as an email address."""


class HubSpotError(Exception):
    """An error answer: HTTP `status`, HubSpot `category`, message and extra body fields."""

    def __init__(self, status: int, category: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.extra = extra


@dataclasses.dataclass
class ContactRecord:
    """A contact: its property values (HubSpot strings), their history, and when it changed."""

    id: str
    properties: dict[str, str]
    history: dict[str, list[tuple[str, dt.datetime]]]
    created_at: dt.datetime
    updated_at: dt.datetime
    archived: bool = False
    #: when it was archived (`archivedAt`; None: not archived, or archived by a test directly)
    archived_at: dt.datetime | None = None
    #: what search shows while the last write waits out the index lag: (when that version
    #: was written, its properties); None: the record is not in the index yet
    indexed: tuple[dt.datetime, dict[str, str]] | None = None


def searchable_at(record: ContactRecord, lag: float) -> dt.datetime:
    """When search finds `record`'s last write: between half and all of `lag` seconds after
    it (drawn from the record and the write's time), so a later write may be searchable
    before an earlier one, as in an index fed by a queue."""
    stamp = int(record.updated_at.timestamp() * 1000)
    spread = (int(record.id) * 2_654_435_761 + stamp * 40_503) % 1000 / 1000
    return record.updated_at + dt.timedelta(seconds=lag * (0.5 + 0.5 * spread))


@dataclasses.dataclass
class ListRecord:
    """A list: MANUAL members, or the filter branch of a DYNAMIC or SNAPSHOT list."""

    id: str
    name: str
    processing_type: str
    filter_branch: dict[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime
    filters_updated_at: dt.datetime
    version: int = 1
    members: dict[str, dt.datetime] = dataclasses.field(default_factory=dict)
    deleted: bool = False


@dataclasses.dataclass
class StatusRecord:
    """An address's status for one subscription type, with its legal basis."""

    status: str  # SUBSCRIBED | NOT_SUBSCRIBED
    timestamp: dt.datetime
    legal_basis: str | None = None
    explanation: str | None = None
    source: str = "API"


@dataclasses.dataclass
class BatchJournal:
    """What a batch changed, to undo it: contacts and email keys as they were before."""

    next_id: int
    contacts: dict[str, ContactRecord | None] = dataclasses.field(default_factory=dict)
    emails: dict[str, str | None] = dataclasses.field(default_factory=dict)


def iso_time(when: dt.datetime) -> str:
    """`when` as HubSpot writes times: ISO 8601 in UTC, milliseconds, a `Z`."""
    return (
        when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    )


class ContactRecords(Emulator):
    """Contacts, their indexes and the batch journal; see the module docstring.

    `HubSpotState.__init__` sets every attribute declared here.
    """

    portal_id: int
    contacts: dict[str, ContactRecord]
    properties: dict[str, dict[str, Any]]
    subscriptions: dict[int, dict[str, Any]]
    statuses: dict[str, dict[int, StatusRecord]]
    opted_out_of_all: dict[str, dt.datetime]
    _by_email: dict[str, str]
    _sorted: dict[str, list[tuple[int, int]]]
    _sorted_keys: dict[str, dict[str, int]]
    _journal: BatchJournal | None
    _next_id: int
    search_delay: float
    #: ids of the contacts search may show in an earlier version (`ContactRecord.indexed`)
    _lagging: set[str]

    def _find_email(self, email: str) -> ContactRecord | None:
        contact_id = self._by_email.get(email.strip().lower())
        if contact_id is None:
            return None
        record = self.contacts[contact_id]
        return None if record.archived else record

    def _lookup(
        self, ident: str, id_property: str | None, *, archived: bool = False
    ) -> ContactRecord | None:
        """The live contact `ident` names (by id, or by `id_property`); with `archived`, the
        archived one instead (HubSpot's `?archived=true`: only archived records)."""
        if archived:
            return self._lookup_archived(ident, id_property)
        if id_property in (None, "", "hs_object_id"):
            record = self.contacts.get(ident)
            return None if record is None or record.archived else record
        if id_property == "email":
            return self._find_email(ident)
        for record in self.contacts.values():
            if not record.archived and record.properties.get(id_property) == ident:
                return record
        return None

    def _archive_record(self, record: ContactRecord) -> None:
        """Archive a contact (HubSpot's recycle bin): search and reads of live records no
        longer find it; `?archived=true` reads do, with `archivedAt`."""
        record.archived = True
        record.archived_at = record.updated_at = self.clock.now()

    def _lookup_archived(self, ident: str, id_property: str | None) -> ContactRecord | None:
        if id_property in (None, "", "hs_object_id"):
            record = self.contacts.get(ident)
            return record if record is not None and record.archived else None
        key = ident.strip().lower() if id_property == "email" else ident
        for record in self.contacts.values():
            value = record.properties.get(id_property)
            if id_property == "email" and value is not None:
                value = value.strip().lower()
            if record.archived and value == key:
                return record
        return None

    def _value_error(self, name: str, value: str, error: str, message: str) -> dict[str, Any]:
        return {
            "isValid": False,
            "message": message,
            "error": error,
            "name": name,
            "localizedErrorMessage": message,
        }

    def _normalise_value(
        self, name: str, value: str, current: str | None, *, allow_read_only: bool
    ) -> tuple[str | None, dict[str, Any] | None]:
        """The stored form of `value` for property `name`, or a HubSpot validation error."""
        prop = self.properties.get(name)
        if prop is None or prop["archived"]:
            return None, self._value_error(
                name, value, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
            )
        if prop["modificationMetadata"]["readOnlyValue"] and not allow_read_only:
            return None, self._value_error(
                name,
                value,
                "READ_ONLY_VALUE",
                f"{name} is a read only property; its value cannot be set.",
            )
        if value == "":
            return None, None
        ptype = prop["type"]
        if name == "email" and not EMAIL_PATTERN.match(value.strip()):
            return None, self._value_error(
                name, value, "INVALID_EMAIL", f"Email address {value} is invalid"
            )
        if ptype == "number":
            try:
                float(value)
            except ValueError:
                return None, self._value_error(
                    name, value, "INVALID_DECIMAL", f"{value} was not a valid number."
                )
            return value, None
        if ptype == "bool":
            if value.lower() not in ("true", "false"):
                return None, self._value_error(
                    name,
                    value,
                    "INVALID_BOOLEAN",
                    f"{value} was not a valid boolean (true or false).",
                )
            return value.lower(), None
        if ptype in ("date", "datetime"):
            ms = to_epoch_ms(value)
            if ms is None:
                return None, self._value_error(
                    name, value, "INVALID_DATE", f"{value} was not a valid date or timestamp."
                )
            when = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
            if ptype == "date":
                if (when.hour, when.minute, when.second, when.microsecond) != (0, 0, 0, 0):
                    return None, self._value_error(
                        name,
                        value,
                        "INVALID_DATE",
                        f"{value} is at {when.time()} UTC, but date properties take midnight UTC.",
                    )
                return when.date().isoformat(), None
            return iso_time(when), None
        if ptype == "enumeration":
            allowed = [o["value"] for o in prop["options"]]
            multi = prop["fieldType"] == "checkbox"
            if multi and value.startswith(";"):
                chosen = [v for v in (current or "").split(";") if v]
                chosen += [v for v in value.split(";") if v and v not in chosen]
            else:
                chosen = [v for v in value.split(";") if v] if multi else [value]
            bad = [v for v in chosen if v not in allowed]
            if bad:
                return None, self._value_error(
                    name,
                    value,
                    "INVALID_OPTION",
                    f"{bad[0]} was not one of the allowed options: [{', '.join(allowed)}]",
                )
            return (";".join(chosen) or None), None
        return value, None

    def _apply(
        self, record: ContactRecord, values: Mapping[str, Any], *, allow_read_only: bool = False
    ) -> list[dict[str, Any]]:
        """Validate and write property values; return validation errors (nothing written then)."""
        staged: dict[str, str | None] = {}
        errors: list[dict[str, Any]] = []
        for name, raw in values.items():
            value = "" if raw is None else str(raw)
            stored, error = self._normalise_value(
                name, value, record.properties.get(name), allow_read_only=allow_read_only
            )
            if error:
                errors.append(error)
            else:
                staged[name] = stored
        if "email" in staged and staged["email"] is not None:
            email = staged["email"].strip().lower()
            owner = self._by_email.get(email)
            if owner is not None and owner != record.id and not self.contacts[owner].archived:
                raise HubSpotError(
                    409,
                    "CONFLICT",
                    f"Contact already exists. Existing ID: {owner}",
                    context={"existingId": [owner]},
                )
        if errors:
            return errors
        if staged:
            self._remember(record.id)
        now = self.clock.now()
        lag = self.search_delay
        if lag > 0 and self.contacts.get(record.id) is record and searchable_at(record, lag) <= now:
            record.indexed = (record.updated_at, dict(record.properties))  # what search keeps
            self._lagging.add(record.id)
        changed = False
        for name, stored in staged.items():
            if record.properties.get(name) == stored:
                continue
            changed = True
            if name == "email":
                old = record.properties.get("email")
                if old:
                    self._index_email(old.lower(), None)
                if stored:
                    self._index_email(stored.strip().lower(), record.id)
                    stored = stored.strip()
            if name == "hs_additional_emails":
                for old in (record.properties.get(name) or "").split(";"):
                    if old.strip() and self._by_email.get(old.strip().lower()) == record.id:
                        self._index_email(old.strip().lower(), None)
                for new in (stored or "").split(";"):
                    if new.strip():
                        self._index_email(new.strip().lower(), record.id)
            if stored is None:
                record.properties.pop(name, None)
            else:
                record.properties[name] = stored
            record.history.setdefault(name, []).append((stored or "", now))
        if changed:
            record.updated_at = now
            record.properties["lastmodifieddate"] = iso_time(now)
            if self.contacts.get(record.id) is record:
                self._reindex(record)
        return []

    def _index_email(self, key: str, contact_id: str | None) -> None:
        """Point email `key` at `contact_id` (None: drop it), journaled during a batch."""
        if self._journal is not None and key not in self._journal.emails:
            self._journal.emails[key] = self._by_email.get(key)
        if contact_id is None:
            self._by_email.pop(key, None)
        else:
            self._by_email[key] = contact_id

    def _remember(self, contact_id: str) -> None:
        """Keep a copy of contact `contact_id` as it is (None: absent) before a batch changes it."""
        journal = self._journal
        if journal is not None and contact_id not in journal.contacts:
            current = self.contacts.get(contact_id)
            journal.contacts[contact_id] = None if current is None else copy.deepcopy(current)

    def _begin_batch(self) -> BatchJournal:
        """Start journaling changes so `_undo_batch` can restore contacts and the email index."""
        self._journal = BatchJournal(next_id=self._next_id)
        return self._journal

    def _end_batch(self) -> None:
        self._journal = None

    def _undo_batch(self, journal: BatchJournal) -> None:
        """Restore everything `journal` recorded, as the state was when it began."""
        self._journal = None
        for contact_id, before in journal.contacts.items():
            if before is None:
                self.contacts.pop(contact_id, None)
                self._unindex(contact_id)
            else:
                self.contacts[contact_id] = before
                self._reindex(before)
        for key, owner in journal.emails.items():
            if owner is None:
                self._by_email.pop(key, None)
            else:
                self._by_email[key] = owner
        self._next_id = journal.next_id

    def _unindex(self, contact_id: str) -> None:
        for name, keys in self._sorted_keys.items():
            old = keys.pop(contact_id, None)
            if old is not None:
                entries = self._sorted[name]
                del entries[bisect.bisect_left(entries, (old, int(contact_id)))]

    def _reindex(self, record: ContactRecord) -> None:
        """Bring the sorted indexes in line with `record`'s current indexed values."""
        for name, keys in self._sorted_keys.items():
            raw = record.properties.get(name)
            new = to_epoch_ms(raw) if raw else None
            old = keys.get(record.id)
            if new == old:
                continue
            entries = self._sorted[name]
            if old is not None:
                del entries[bisect.bisect_left(entries, (old, int(record.id)))]
                del keys[record.id]
            if new is not None:
                bisect.insort(entries, (new, int(record.id)))
                keys[record.id] = new

    def _create(
        self, values: Mapping[str, Any], *, allow_read_only: bool = False
    ) -> tuple[ContactRecord | None, list[dict[str, Any]]]:
        if not any(values.get(k) for k in ("email", "firstname", "lastname")):
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                "At least one of email, firstname or lastname must be set to create a contact",
            )
        email = str(values.get("email") or "").strip().lower()
        if email and self._find_email(email):
            owner = self._by_email[email]
            raise HubSpotError(
                409,
                "CONFLICT",
                f"Contact already exists. Existing ID: {owner}",
                context={"existingId": [owner]},
            )
        now = self.clock.now()
        record = ContactRecord(
            id=str(self._next_id), properties={}, history={}, created_at=now, updated_at=now
        )
        errors = self._apply(record, values, allow_read_only=allow_read_only)
        if errors:
            return None, errors
        self._next_id += 1
        record.properties.update(
            hs_object_id=record.id, createdate=iso_time(now), lastmodifieddate=iso_time(now)
        )
        self._remember(record.id)
        self.contacts[record.id] = record
        self._reindex(record)
        if email:
            self._sync_optout_properties(email)
        return record, []

    def _sync_optout_properties(self, email: str) -> None:
        """Mirror an address's subscription statuses into its contact's read-only properties."""
        record = self._find_email(email)
        if record is None:
            return
        values: dict[str, str] = {}
        all_out = email in self.opted_out_of_all
        if all_out or record.properties.get("hs_email_optout"):
            values["hs_email_optout"] = "true" if all_out else "false"
        for sub_id in self.subscriptions:
            status = self.statuses.get(email, {}).get(sub_id)
            if all_out or (status and status.status == "NOT_SUBSCRIBED"):
                values[f"hs_email_optout_{sub_id}"] = "true"
            elif status:
                values[f"hs_email_optout_{sub_id}"] = "false"
        self._apply(record, values, allow_read_only=True)

    def _render(
        self, record: ContactRecord, properties: Sequence[str] | None, *, default: Sequence[str]
    ) -> dict[str, Any]:
        names = list(properties) if properties else list(default)
        return {
            "id": record.id,
            "properties": {n: record.properties.get(n) for n in names},
            "createdAt": iso_time(record.created_at),
            "updatedAt": iso_time(record.updated_at),
            "archived": record.archived,
            **(
                {"archivedAt": iso_time(record.archived_at or record.updated_at)}
                if record.archived else {}
            ),
            "url": f"https://app.hubspot.com/contacts/{self.portal_id}/record/0-1/{record.id}",
        }
