"""The state of an emulated Brevo account, and the helpers tests use to stage and inspect it.

`BrevoState` holds contacts (unique lower-case email and ext_id, integer ids,
`createdAt`/`modifiedAt` in the account's offset with milliseconds), attributes (categories
and types; values of the wrong type dropped silently and recorded in `dropped_values`),
folders and lists, read-only segments (fixtures with a predicate), asynchronous processes and
double opt-in requests. Test hooks, which stage what people do in Brevo's UI or inbox, are
its public methods (`add_segment`, `contact`, `blocklist`, `unsubscribe_from_list`,
`confirm_double_opt_in`, `delete_attribute`, `add_to_list`, `advance_processes`); a lived-in
account is staged with the `seed_<thing>` methods (folders, lists, attributes, contacts in
lists, per-list unsubscribes, blocklists); the `_`-prefixed methods apply Brevo's rules
for the route handlers (`routes`). Nothing here speaks HTTP.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from segsync.clock import Clock
from segsync.emulator.fixture import Seedable
from segsync.model import InvalidEmail, normalize_email
from segsync_brevo.emulator.fixture import BrevoFixture, apply_brevo_fixture

__all__ = [
    "ATTRIBUTE_CATEGORIES",
    "MAX_IMPORT_BYTES",
    "MAX_LIST_ITEMS",
    "TYPES_BY_CATEGORY",
    "AttributeRecord",
    "BrevoError",
    "BrevoState",
    "ContactRecord",
    "ProcessFailed",
    "ProcessRecord",
    "SegmentRecord",
]

ATTRIBUTE_CATEGORIES = ("normal", "transactional", "category", "calculated", "global")
TYPES_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    "normal": ("text", "date", "float", "boolean", "multiple-choice", "user"),
    "transactional": ("text", "date", "float", "boolean", "id"),
    "category": ("category",),
    "calculated": (),
    "global": (),
}
IDENTIFIER_TYPES = (
    "email_id",
    "contact_id",
    "ext_id",
    "phone_id",
    "whatsapp_id",
    "landline_number_id",
)
DATE_VALUE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_LIST_ITEMS = 150
UNIQUE_ATTRIBUTES = ("SMS", "WHATSAPP", "LANDLINE_NUMBER")
MAX_IMPORT_BYTES = 10 * 1024 * 1024


class BrevoError(Exception):
    """An error answer a handler raises: status, Brevo code, message, extra body fields."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


@dataclasses.dataclass
class AttributeRecord:
    """One attribute of the account."""

    name: str
    category: str
    type: str | None = None
    enumeration: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    options: list[str] = dataclasses.field(default_factory=list)
    value: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "category": self.category}
        if self.type:
            out["type"] = "text" if self.type == "category" else self.type
        if self.category == "category":
            out["enumeration"] = list(self.enumeration)
        if self.type == "multiple-choice":
            out["multiCategoryOptions"] = list(self.options)
        if self.value is not None:
            out["calculatedValue"] = self.value
        return out


@dataclasses.dataclass
class ContactRecord:
    """One stored contact."""

    id: int
    email: str | None
    created_at: dt.datetime
    modified_at: dt.datetime
    ext_id: str | None = None
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)
    email_blacklisted: bool = False
    sms_blacklisted: bool = False
    list_ids: set[int] = dataclasses.field(default_factory=set)
    list_unsubscribed: set[int] = dataclasses.field(default_factory=set)
    #: who set the blocklist: "contact" (the person opted out), "api", "import", "admin"
    blocklist_source: str | None = None


@dataclasses.dataclass
class ProcessRecord:
    """An asynchronous job (`IMPORTUSER`, `REMOVE_LIST_CONTACTS`)."""

    id: int
    name: str
    created: float
    queued_seconds: float
    run_seconds: float
    apply: Callable[[dt.datetime], dict[str, Any]]
    status: str = "queued"
    info: dict[str, Any] | None = None
    #: why a `failed` process failed (the 2026 description's `error`)
    error: str | None = None

    def due(self) -> float:
        return self.created + self.queued_seconds + self.run_seconds


class ProcessFailed(Exception):
    """Raised by a process's `apply`: the process ends `failed` with this message, and
    nothing of it is applied."""


@dataclasses.dataclass
class SegmentRecord:
    """A segment fixture: read-only through the API, membership by `predicate`."""

    id: int
    name: str
    category: str
    predicate: Callable[[dict[str, Any]], bool]
    updated_at: dt.datetime


class BrevoState(Seedable):
    """An emulated Brevo account's state; see the module docstring."""

    fixture_model = BrevoFixture

    def apply_fixture(self, fixture: BrevoFixture) -> None:
        """Stage a validated fixture (see `segsync_brevo.emulator.fixture`; bundled:
        `lived-in`), through `load_fixture(data)` / `from_fixture(path_or_name)`."""
        apply_brevo_fixture(self, fixture)

    clock: Clock
    tz: dt.timezone
    refuse_unblocklist: bool
    double_opt_in_lifts_blocklist: bool
    import_queue_seconds: float
    import_base_seconds: float
    import_seconds_per_contact: float

    def _init_state(self) -> None:
        """An account as Brevo creates it: default attributes, first folder and list."""
        self._ids = itertools.count(1)
        self._list_ids = itertools.count(2)
        self._folder_ids = itertools.count(2)
        self._process_ids = itertools.count(70)
        self._segment_ids = itertools.count(1)
        self.contacts: dict[int, ContactRecord] = {}
        self._by_email: dict[str, int] = {}
        self._by_ext_id: dict[str, int] = {}
        self.attributes: dict[str, AttributeRecord] = {}
        for record in (
            AttributeRecord("FIRSTNAME", "normal", "text"),
            AttributeRecord("LASTNAME", "normal", "text"),
            AttributeRecord("SMS", "normal", "text"),
            AttributeRecord(
                "DOUBLE_OPT-IN",
                "category",
                "category",
                enumeration=[{"value": 1, "label": "Yes"}, {"value": 2, "label": "No"}],
            ),
        ):
            self.attributes[record.name] = record
        self.folders: dict[int, str] = {1: "Your first folder"}
        self.lists: dict[int, dict[str, Any]] = {
            1: {"name": "Your first list", "folderId": 1, "createdAt": self._now()}
        }
        self.segments: dict[int, SegmentRecord] = {}
        self.processes: dict[int, ProcessRecord] = {}
        #: when set (`fail_imports`), every import process ends `failed` with this error
        self.import_failure: str | None = None
        self.pending_double_opt_in: dict[str, dict[str, Any]] = {}
        self.dropped_values: list[tuple[str, str, Any, str]] = []
        self.unblocklist_writes: list[str] = []
        self.spec_violations: list[str] = []

    # -- time and formatting -----------------------------------------------------------------

    def _now(self) -> dt.datetime:
        return self.clock.now()

    def stamp(self, when: dt.datetime) -> str:
        """A Brevo date-time: the account's offset, milliseconds."""
        return when.astimezone(self.tz).isoformat(timespec="milliseconds")

    def contact_json(self, contact: ContactRecord) -> dict[str, Any]:
        out: dict[str, Any] = {
            "email": contact.email,
            "id": contact.id,
            "emailBlacklisted": contact.email_blacklisted,
            "smsBlacklisted": contact.sms_blacklisted,
            "createdAt": self.stamp(contact.created_at),
            "modifiedAt": self.stamp(contact.modified_at),
            "listIds": sorted(contact.list_ids),
            "attributes": dict(contact.attributes),
        }
        if contact.ext_id is not None:
            out["attributes"]["EXT_ID"] = contact.ext_id
        if contact.list_unsubscribed:
            out["listUnsubscribed"] = sorted(contact.list_unsubscribed)
        if contact.email is None:
            del out["email"]
        return out

    # -- test hooks ------------------------------------------------------------------------

    def add_segment(
        self, name: str, predicate: Callable[[dict[str, Any]], bool], category: str = "segsync"
    ) -> int:
        """Define a segment (as a person would in Brevo's UI); returns its id."""
        segment_id = next(self._segment_ids)
        self.segments[segment_id] = SegmentRecord(
            segment_id, name, category, predicate, self._now()
        )
        return segment_id

    def contact(self, email: str) -> ContactRecord | None:
        """The stored contact with this email (any case), or None."""
        cid = self._by_email.get(email.strip().lower())
        return None if cid is None else self.contacts[cid]

    def blocklist(self, email: str, source: str = "contact") -> None:
        """Blocklist a contact as Brevo does when the person unsubscribes or hard-bounces."""
        contact = self.contact(email)
        if contact is None:
            raise KeyError(email)
        contact.email_blacklisted = True
        contact.blocklist_source = source
        self._touch(contact)

    def unsubscribe_from_list(self, email: str, list_id: int) -> None:
        """Per-list unsubscription (an account option): the list moves to `listUnsubscribed`."""
        contact = self.contact(email)
        if contact is None:
            raise KeyError(email)
        contact.list_ids.discard(list_id)
        contact.list_unsubscribed.add(list_id)
        self._touch(contact)

    def confirm_double_opt_in(self, email: str) -> None:
        """The person clicks the confirmation link: lists joined, `DOUBLE_OPT-IN` = 1 (Yes).

        The blocklist is not lifted (fact sheet §2.8, §6, §10.8; unverified, so the strict
        reading): only the API's `emailBlacklisted: false`, an email change or Brevo's UI
        clear it. `double_opt_in_lifts_blocklist=True` is the lenient reading."""
        request = self.pending_double_opt_in.pop(email.lower())
        contact = self.contact(email)
        if contact is None:
            contact = self._new_contact(email.lower())
        self._set_attributes(contact, request.get("attributes") or {}, source="api")
        contact.attributes["DOUBLE_OPT-IN"] = 1
        contact.list_ids |= set(request["includeListIds"])
        contact.list_ids -= set(request.get("excludeListIds") or ())
        if self.double_opt_in_lifts_blocklist and contact.email_blacklisted:
            contact.email_blacklisted = False
            contact.blocklist_source = None
        self._touch(contact)

    # -- seeding a lived-in account (what people made before segsync came) -----------------

    def seed_folder(self, name: str) -> int:
        """A folder a person made; returns its id."""
        folder_id = next(self._folder_ids)
        self.folders[folder_id] = name
        return folder_id

    def seed_list(self, name: str, folder_id: int = 1) -> int:
        """A list a person made (in their first folder by default); returns its id."""
        list_id = next(self._list_ids)
        self.lists[list_id] = {"name": name, "folderId": folder_id, "createdAt": self._now()}
        return list_id

    def seed_attribute(
        self,
        name: str,
        category: str = "normal",
        kind: str | None = "text",
        *,
        labels: tuple[str, ...] = (),
    ) -> None:
        """An attribute a person made (a category one takes `labels`, valued 1, 2, ...)."""
        self.attributes[name.upper()] = AttributeRecord(
            name.upper(),
            category,
            "category" if category == "category" else kind,
            enumeration=[{"value": i + 1, "label": label} for i, label in enumerate(labels)],
        )

    def seed_contact(
        self,
        email: str,
        *,
        lists: tuple[int, ...] = (),
        unsubscribed_lists: tuple[int, ...] = (),
        blocklisted: bool = False,
        attributes: Mapping[str, Any] | None = None,
        created_at: dt.datetime | None = None,
    ) -> ContactRecord:
        """A contact as a person's import or form left it: lists, per-list unsubscribes
        (`listUnsubscribed`), a blocklist they asked for, attribute values as stored."""
        contact = self._new_contact(email.strip().lower(), created_at)
        contact.list_ids |= set(lists)
        contact.list_unsubscribed |= set(unsubscribed_lists)
        contact.attributes.update({k.upper(): v for k, v in (attributes or {}).items()})
        if blocklisted:
            contact.email_blacklisted = True
            contact.blocklist_source = "contact"
        return contact

    # -- people acting in Brevo between or during runs ------------------------------------

    def delete_attribute(self, name: str) -> None:
        """An admin deletes an attribute in Brevo's UI: its values go from every contact
        (their `modifiedAt` does not move: nothing tells an incremental reader)."""
        del self.attributes[name.upper()]
        for contact in self.contacts.values():
            contact.attributes.pop(name.upper(), None)

    def add_to_list(self, email: str, list_id: int) -> None:
        """A person adds a contact to a list in Brevo's UI."""
        contact = self.contact(email)
        if contact is None:
            raise KeyError(email)
        contact.list_ids.add(list_id)
        self._touch(contact)

    def advance_processes(self) -> None:
        """Move processes through queued -> in_process -> completed on the clock."""
        now = self.clock.monotonic()
        for process in self.processes.values():
            if process.status == "completed":
                continue
            if now >= process.due():
                finished = self._now() - dt.timedelta(seconds=now - process.due())
                try:
                    process.info = process.apply(finished)
                except ProcessFailed as exc:
                    process.status, process.error = "failed", str(exc)
                    continue
                process.status = "completed"
            elif now >= process.created + process.queued_seconds:
                process.status = "in_process"

    def fail_imports(self, error: str | None = "Processing timeout exceeded") -> None:
        """Make import processes end `failed` with `error` (None: succeed again), as Brevo's
        do on a timeout or a file it cannot process (2026 description: `error`)."""
        self.import_failure = error

    def seconds_until_processes_done(self) -> float:
        """How long until every process has completed (0 when none is running)."""
        now = self.clock.monotonic()
        running = [p.due() - now for p in self.processes.values() if p.status != "completed"]
        return max([0.0, *running])

    # -- Brevo's rules ---------------------------------------------------------------------

    def _touch(self, contact: ContactRecord, when: dt.datetime | None = None) -> None:
        contact.modified_at = when or self._now()

    def _new_contact(self, email: str | None, when: dt.datetime | None = None) -> ContactRecord:
        now = when or self._now()
        contact = ContactRecord(next(self._ids), email, now, now)
        self.contacts[contact.id] = contact
        if email:
            self._by_email[email] = contact.id
        return contact

    def _valid_email(self, email: Any) -> str:
        if not isinstance(email, str):
            raise BrevoError(400, "invalid_parameter", "Invalid email address")
        try:
            normalize_email(email)
        except InvalidEmail:
            raise BrevoError(400, "invalid_parameter", "Invalid email address") from None
        return email.strip().lower()

    def _find(self, identifier: str, identifier_type: str | None, *, method: str) -> ContactRecord:
        if identifier_type is not None and identifier_type not in IDENTIFIER_TYPES:
            raise BrevoError(400, "invalid_parameter", "Invalid identifierType")
        kind = identifier_type
        if kind is None:
            if "@" in identifier:
                kind = "email_id"
            elif identifier.isdigit():
                kind = "contact_id"
            else:
                kind = "phone_id" if method == "GET" else "email_id"
        cid: int | None = None
        if kind == "email_id":
            cid = self._by_email.get(identifier.lower())
        elif kind == "contact_id":
            cid = (
                int(identifier)
                if identifier.isdigit() and int(identifier) in self.contacts
                else None
            )
        elif kind == "ext_id":
            cid = self._by_ext_id.get(identifier)
        else:
            attribute = {"phone_id": "SMS", "whatsapp_id": "WHATSAPP"}.get(kind, "LANDLINE_NUMBER")
            cid = next(
                (c.id for c in self.contacts.values() if c.attributes.get(attribute) == identifier),
                None,
            )
        if cid is None:
            raise BrevoError(404, "document_not_found", "Contact does not exist")
        return self.contacts[cid]

    def _check_lists(self, list_ids: Any) -> set[int]:
        if not isinstance(list_ids, list) or not all(isinstance(i, int) for i in list_ids):
            raise BrevoError(400, "invalid_parameter", "listIds must be an array of integers")
        unknown = [i for i in list_ids if i not in self.lists]
        if unknown:
            raise BrevoError(404, "document_not_found", f"List ID does not exist: {unknown}")
        return set(list_ids)

    def _set_attributes(
        self,
        contact: ContactRecord,
        attributes: Mapping[str, Any],
        *,
        source: str,
        empty_clears: bool = True,
    ) -> bool:
        """Apply attribute values as Brevo does; return True when something changed."""
        changed = False
        label = contact.email or str(contact.id)
        for raw_name, value in attributes.items():
            name = raw_name.upper()
            if name in ("EMAIL", "EXT_ID"):
                continue
            attribute = self.attributes.get(name)
            if attribute is None:
                self.dropped_values.append((label, name, value, "no such attribute"))
                continue
            if value is None or value == "" or value == []:
                if empty_clears and name in contact.attributes:
                    del contact.attributes[name]
                    changed = True
                continue
            if name in UNIQUE_ATTRIBUTES and self._held_by_other(contact.id, name, value):
                self.dropped_values.append((label, name, value, "held by another contact"))
                continue
            if source == "import" and attribute.type == "boolean":
                self.dropped_values.append((label, name, value, "booleans are not imported"))
                continue
            stored = self._typed(attribute, value)
            if stored is None:
                self.dropped_values.append((label, name, value, f"not a {attribute.type}"))
                continue
            if contact.attributes.get(name) != stored:
                contact.attributes[name] = stored
                changed = True
        return changed

    def _held_by_other(self, contact_id: int | None, name: str, value: Any) -> bool:
        return any(
            c.attributes.get(name) == value for c in self.contacts.values() if c.id != contact_id
        )

    def _check_unique(self, contact_id: int | None, attributes: Mapping[str, Any]) -> None:
        """Refuse (before any change) identifiers another contact holds, as Brevo does."""
        for raw_name, value in attributes.items():
            name = raw_name.upper()
            if name in UNIQUE_ATTRIBUTES and value and self._held_by_other(contact_id, name, value):
                verb = "create" if contact_id is None else "update"
                raise BrevoError(
                    400,
                    "duplicate_parameter",
                    f"Unable to {verb} contact, {name} is already associated with another Contact",
                    metadata={"duplicate_identifiers": [name.lower()]},
                )

    @staticmethod
    def _typed(attribute: AttributeRecord, value: Any) -> Any:
        """The stored form of `value`, or None when Brevo would drop it."""
        kind = attribute.type or "text"
        if attribute.category == "category":
            labels = {e["value"] for e in attribute.enumeration}
            return (
                value
                if isinstance(value, int) and not isinstance(value, bool) and value in labels
                else None
            )
        if kind in ("text", "user", "id"):
            return value if isinstance(value, str) else None
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            return value if math.isfinite(value) else None
        if kind == "boolean":
            return value if isinstance(value, bool) else None
        if kind == "date":
            if isinstance(value, str) and DATE_VALUE.match(value):
                try:
                    dt.date.fromisoformat(value)
                except ValueError:
                    return None
                return value
            return None
        if kind == "multiple-choice":
            if (
                isinstance(value, list)
                and all(isinstance(v, str) for v in value)
                and set(value) <= set(attribute.options)
            ):
                return sorted(set(value))
            return None
        return None

    def _set_blacklist(self, contact: ContactRecord, value: Any, source: str) -> None:
        if not isinstance(value, bool):
            return
        if value and not contact.email_blacklisted:
            contact.email_blacklisted = True
            contact.blocklist_source = source
        elif not value and contact.email_blacklisted:
            self.unblocklist_writes.append(contact.email or str(contact.id))
            if self.refuse_unblocklist and contact.blocklist_source == "contact":
                raise BrevoError(
                    400,
                    "invalid_parameter",
                    "The contact unsubscribed and cannot be resubscribed through the API",
                )
            contact.email_blacklisted = False
            contact.blocklist_source = None

    def _update_contact(
        self, contact: ContactRecord, body: Mapping[str, Any], list_ids: set[int]
    ) -> None:
        attributes = dict(body.get("attributes") or {})
        self._check_unique(contact.id, attributes)
        unlink = self._check_lists(body.get("unlinkListIds", []))
        new_email = attributes.pop("EMAIL", None)
        if new_email is not None:
            new_email = self._valid_email(new_email)
            holder = self._by_email.get(new_email)
            if holder is not None and holder != contact.id:
                raise BrevoError(
                    400,
                    "duplicate_parameter",
                    "Unable to update contact, email is already associated with another Contact",
                    metadata={"duplicate_identifiers": ["email"]},
                )
        if "emailBlacklisted" in body:
            self._set_blacklist(contact, body["emailBlacklisted"], "api")
        if new_email is not None and new_email != contact.email:
            if contact.email:
                del self._by_email[contact.email]
            contact.email = new_email
            self._by_email[new_email] = contact.id
            if contact.email_blacklisted and body.get("emailBlacklisted") is not True:
                # Brevo: updating a blocklisted contact's email removes the blocklisting
                self.unblocklist_writes.append(new_email)
                contact.email_blacklisted = False
                contact.blocklist_source = None
        if "ext_id" in body:
            contact.ext_id = str(body["ext_id"])
            self._by_ext_id[contact.ext_id] = contact.id
        self._set_attributes(contact, attributes, source="api")
        if "smsBlacklisted" in body:
            contact.sms_blacklisted = bool(body["smsBlacklisted"])
        contact.list_ids |= list_ids
        contact.list_ids -= unlink
        self._touch(contact)

    def _start_process(
        self, name: str, size: int, apply: Callable[[dt.datetime], dict[str, Any]]
    ) -> ProcessRecord:
        process = ProcessRecord(
            id=next(self._process_ids),
            name=name,
            created=self.clock.monotonic(),
            queued_seconds=self.import_queue_seconds,
            run_seconds=self.import_base_seconds + self.import_seconds_per_contact * size,
            apply=apply,
        )
        self.processes[process.id] = process
        return process

    def _process_json(self, process: ProcessRecord) -> dict[str, Any]:
        """A process as `GET /processes` shows it (with the 2026 `created_at`/`completed_at`)."""
        out: dict[str, Any] = {"id": process.id, "name": process.name, "status": process.status}
        now = self.clock.monotonic()
        created = self._now() - dt.timedelta(seconds=now - process.created)
        out["created_at"] = created.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        if process.status == "completed":
            done = self._now() - dt.timedelta(seconds=now - process.due())
            out["completed_at"] = done.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
            if process.info:
                out["info"] = process.info
        if process.status == "failed":
            done = self._now() - dt.timedelta(seconds=now - process.due())
            out["completed_at"] = done.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
            out["error"] = process.error or "The process failed"
        return out

    def _folder_json(self, folder_id: int) -> dict[str, Any]:
        members = [
            c
            for c in self.contacts.values()
            if any(self.lists[i]["folderId"] == folder_id for i in c.list_ids if i in self.lists)
        ]
        return {
            "id": folder_id,
            "name": self.folders[folder_id],
            "totalBlacklisted": sum(1 for c in members if c.email_blacklisted),
            "totalSubscribers": sum(1 for c in members if not c.email_blacklisted),
            "uniqueSubscribers": len(members),
        }

    def contact_statistics(self, contact: ContactRecord) -> dict[str, Any]:
        """`statistics` of `GET /contacts/{identifier}` (getExtendedContactDetails): every
        campaign event list, empty where no campaign reached the contact."""
        del contact  # no campaign activity is emulated here
        return {
            "messagesSent": [],
            "hardBounces": [],
            "softBounces": [],
            "complaints": [],
            "unsubscriptions": {"userUnsubscription": [], "adminUnsubscription": []},
            "opened": [],
            "clicked": [],
            "transacAttributes": [],
            "delivered": [],
        }

    def list_campaign_stats(
        self, list_id: int, start: dt.datetime | None, end: dt.datetime | None
    ) -> list[dict[str, Any]]:
        """`campaignStats` of `GET /contacts/lists/{id}`: none where no campaign is emulated."""
        del list_id, start, end
        return []

    def _list_json(self, list_id: int, *, folder: bool = True) -> dict[str, Any]:
        """A list as `/contacts/lists` shows it; `folder=False`: as a folder's list shows it
        (getFolderLists items carry no `folderId`)."""
        data = self.lists[list_id]
        members = [c for c in self.contacts.values() if list_id in c.list_ids]
        return {
            "id": list_id,
            "name": data["name"],
            **({"folderId": data["folderId"]} if folder else {}),
            "totalBlacklisted": sum(1 for c in members if c.email_blacklisted),
            "totalSubscribers": sum(1 for c in members if not c.email_blacklisted),
            "uniqueSubscribers": len(members),
        }

    def _delete_list(self, list_id: int) -> None:
        del self.lists[list_id]
        for contact in self.contacts.values():
            contact.list_ids.discard(list_id)
            contact.list_unsubscribed.discard(list_id)
