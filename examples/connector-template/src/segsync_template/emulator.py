"""A stateful emulator of the Template platform's API (an ASGI app on `segsync.emulator`).

State: field definitions, contacts (fields, tags, consent, updated_at), static lists and
saved segments. Behaviour a connector must cope with:

- `GET /v1/contacts` pages by `offset`/`limit` (at most `MAX_PAGE`), ordered by
  (updated_at, id), filtered by `updated_since`;
- `POST /v1/contacts/batch` takes at most `MAX_BATCH` records and answers 200 with one verdict
  per record (invalid email, unknown field, opted-out contact asked to be subscribed, and
  injected partial failures are refused per record);
- consent: `unsubscribed` and `bounced` can never become `subscribed` again;
- `WindowLimit` of `RATE_LIMIT` requests a second, answered with 429 and `Retry-After`;
- saved segments hold one flat AND of conditions, evaluated on read of their members.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import re
from collections.abc import Sequence
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from segsync.emulator import ConcurrencyLimit, Emulator, WindowLimit, offset_page

__all__ = ["StoredContact", "TemplateEmulator", "condition_matches"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CONSENT_STATUSES = ("subscribed", "unsubscribed", "pending", "bounced", "non_subscribed")
OPTED_OUT = ("unsubscribed", "bounced")
FIELD_TYPES = ("text", "enum", "number", "date")


@dataclasses.dataclass
class StoredContact:
    """One contact as the platform holds it."""

    id: str
    email: str
    attributes: dict[str, Any]
    tags: set[str]
    consent: str
    updated_at: dt.datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "attributes": dict(self.attributes),
            "tags": sorted(self.tags),
            "consent": self.consent,
            "updated_at": self.updated_at.isoformat(),
        }


def _value(contact: StoredContact, name: str) -> Any:
    if name == "email":
        return contact.email
    if name == "consent":
        return contact.consent
    value = contact.attributes.get(name)
    return None if value in ("", None) else value


def _same(left: Any, right: Any, ftype: str) -> bool:
    """Equality as the platform has it: text case-insensitive, enums exact, numbers numeric."""
    if isinstance(left, bool) or isinstance(right, bool):
        return False
    if ftype == "number":
        return isinstance(left, int | float) and isinstance(right, int | float) and left == right
    if not (isinstance(left, str) and isinstance(right, str)):
        return False
    return left == right if ftype == "enum" else left.casefold() == right.casefold()


def condition_matches(contact: StoredContact, condition: dict[str, Any], ftype: str) -> bool:
    """The platform's verdict for one condition on a field of type `ftype`.

    An unset attribute (absent or "") matches no condition; `has` on tags ignores case.
    """
    op, name = condition["op"], condition["field"]
    if op == "has":
        wanted = str(condition["value"]).casefold()
        return name == "tags" and any(tag.casefold() == wanted for tag in contact.tags)
    value = _value(contact, name)
    if value is None:
        return False
    if op == "in":
        return any(_same(value, v, ftype) for v in condition["values"])
    target = condition["value"]
    if op == "eq":
        return _same(value, target, ftype)
    numbers = (int, float)
    if ftype != "number" or isinstance(target, bool) or not isinstance(target, numbers):
        return False
    comparisons = {
        "lt": value < target,
        "lte": value <= target,
        "gt": value > target,
        "gte": value >= target,
    }
    return bool(comparisons[op])


class TemplateEmulator(Emulator):
    """The Template platform, in-process; see the module docstring."""

    platform: ClassVar[str] = "template"
    default_api_key: ClassVar[str] = "tpl-test-key-0123456789"
    MAX_PAGE: ClassVar[int] = 100
    MAX_BATCH: ClassVar[int] = 50
    MAX_MEMBERS: ClassVar[int] = 100
    RATE_LIMIT: ClassVar[int] = 20
    retry_after_header: ClassVar[bool] = True
    #: None: the template stays out of `segsync demo` (a real platform names a loopback port)
    demo_port: ClassVar[int | None] = None

    def client_config(self) -> dict[str, Any]:
        """The `platforms.template` block that reaches this emulator (without `base_url`)."""
        return {"api_key": self.api_key}

    def __init__(self, **kwargs: Any) -> None:
        self.fields: dict[str, str] = {}
        self.contacts: dict[str, StoredContact] = {}  # by lowercased email
        self.lists: dict[str, dict[str, Any]] = {}
        self.segments: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        super().__init__(**kwargs)

    # -- what the base asks for -----------------------------------------------------------

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/v1/account", self.account, methods=["GET"]),
            Route("/v1/fields", self.list_fields, methods=["GET"]),
            Route("/v1/fields", self.create_field, methods=["POST"]),
            Route("/v1/contacts", self.list_contacts, methods=["GET"]),
            Route("/v1/contacts/batch", self.batch_contacts, methods=["POST"]),
            Route("/v1/lists", self.create_list, methods=["POST"]),
            Route("/v1/lists/{id}", self.get_list, methods=["GET"]),
            Route("/v1/lists/{id}", self.delete_list, methods=["DELETE"]),
            Route("/v1/lists/{id}/members", self.change_members, methods=["POST"]),
            Route("/v1/lists/{id}/members", self.list_members, methods=["GET"]),
            Route("/v1/segments", self.create_segment, methods=["POST"]),
            Route("/v1/segments/{id}", self.update_segment, methods=["PUT"]),
            Route("/v1/segments/{id}", self.delete_segment, methods=["DELETE"]),
            Route("/v1/segments/{id}/members", self.segment_members, methods=["GET"]),
        ]

    def error_response(self, status: int, code: str, message: str, **extra: Any) -> Response:
        return self.json({"error": {"code": code, "message": message, **extra}}, status)

    def authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    def rate_limits(self) -> Sequence[WindowLimit | ConcurrencyLimit]:
        return [WindowLimit("requests per second", self.RATE_LIMIT, 1.0)]

    # -- seeding and inspection without the API (tests) --------------------------------

    def put_contact(
        self,
        email: str,
        *,
        attributes: dict[str, Any] | None = None,
        tags: set[str] | None = None,
        consent: str = "non_subscribed",
    ) -> StoredContact:
        """Create or replace a contact directly, stamped with the clock's time."""
        key = email.lower()
        existing = self.contacts.get(key)
        contact = StoredContact(
            id=existing.id if existing else f"c{next(self._ids)}",
            email=email,
            attributes=dict(attributes or {}),
            tags=set(tags or ()),
            consent=consent,
            updated_at=self.clock.now(),
        )
        self.contacts[key] = contact
        return contact

    def touch(self, email: str, **attributes: Any) -> None:
        """Change attributes of a contact as a person using the platform would."""
        contact = self.contacts[email.lower()]
        contact.attributes.update(attributes)
        contact.updated_at = self.clock.now()

    # -- endpoints ------------------------------------------------------------------------

    async def account(self, request: Request) -> Response:
        return self.json({"name": "Template test account", "contacts": len(self.contacts)})

    async def list_fields(self, request: Request) -> Response:
        return self.json({"fields": [{"name": n, "type": t} for n, t in self.fields.items()]})

    async def create_field(self, request: Request) -> Response:
        body = await request.json()
        name, ftype = body.get("name"), body.get("type")
        if not isinstance(name, str) or ftype not in FIELD_TYPES:
            return self.error_response(400, "invalid_field", f"type must be one of {FIELD_TYPES}")
        if name in self.fields:
            return self.error_response(409, "duplicate_field", f"Field {name!r} exists")
        self.fields[name] = ftype
        return self.json({"name": name, "type": ftype}, 201)

    async def list_contacts(self, request: Request) -> Response:
        params = request.query_params
        limit = min(int(params.get("limit", self.MAX_PAGE)), self.MAX_PAGE)
        offset = int(params.get("offset", 0))
        since = params.get("updated_since")
        contacts = sorted(self.contacts.values(), key=lambda c: (c.updated_at, int(c.id[1:])))
        if since:
            when = dt.datetime.fromisoformat(since)
            contacts = [c for c in contacts if c.updated_at >= when]
        page = offset_page(contacts, offset, limit)
        more = offset + limit < len(contacts)
        return self.json(
            {"contacts": [c.as_json() for c in page],
             "next_offset": offset + limit if more else None}
        )

    def _refusal(self, record: dict[str, Any], existing: StoredContact | None) -> str | None:
        email = record.get("email")
        if not isinstance(email, str) or not _EMAIL.match(email):
            return f"Invalid email address: {email!r}"
        unknown = sorted(set(record.get("attributes") or {}) - set(self.fields))
        if unknown:
            return f"Unknown field(s) {unknown}: create them first"
        consent = record.get("consent")
        if consent is not None and consent not in CONSENT_STATUSES:
            return f"Unknown consent status {consent!r}"
        if consent == "subscribed" and existing is not None and existing.consent in OPTED_OUT:
            return f"Contact is {existing.consent} and cannot be resubscribed"
        if existing is None and not record.get("create"):
            return "Contact not found"
        return None

    async def batch_contacts(self, request: Request) -> Response:
        body = await request.json()
        records = body.get("contacts")
        if not isinstance(records, list) or not records:
            return self.error_response(400, "invalid_body", "'contacts' must be a non-empty list")
        if len(records) > self.MAX_BATCH:
            return self.error_response(
                400, "batch_too_large", f"At most {self.MAX_BATCH} contacts per batch"
            )
        failing = (
            self.faults.failing_indexes(len(records))
            if self.partial_failure_requested(request)
            else set()
        )
        results = []
        for index, record in enumerate(records):
            key = str(record.get("email", "")).lower()
            existing = self.contacts.get(key)
            refusal = self._refusal(record, existing)
            if refusal is None and index in failing:
                refusal = "Temporarily unable to process this contact"
            if refusal is not None:
                results.append({"email": record.get("email"), "ok": False, "error": refusal})
                continue
            created = existing is None
            contact = existing or self.put_contact(record["email"])
            before = contact.as_json()
            contact.attributes.update(
                {k: v for k, v in (record.get("attributes") or {}).items() if v is not None}
            )
            for name in [k for k, v in (record.get("attributes") or {}).items() if v is None]:
                contact.attributes.pop(name, None)
            contact.tags |= set(record.get("tags_add") or ())
            contact.tags -= set(record.get("tags_remove") or ())
            if record.get("consent") is not None:
                contact.consent = record["consent"]
            if record.get("new_email"):
                self.contacts.pop(key)
                contact.email = record["new_email"]
                self.contacts[contact.email.lower()] = contact
            if created or contact.as_json() != before:
                contact.updated_at = self.clock.now()
            results.append(
                {"email": contact.email, "ok": True, "id": contact.id, "created": created}
            )
        return self.json({"results": results})

    async def create_list(self, request: Request) -> Response:
        body = await request.json()
        list_id = f"l{next(self._ids)}"
        self.lists[list_id] = {"id": list_id, "name": body.get("name"), "members": set()}
        return self.json({"id": list_id, "name": body.get("name")}, 201)

    async def get_list(self, request: Request) -> Response:
        found = self.lists.get(request.path_params["id"])
        if found is None:
            return self.error_response(404, "not_found", "List not found")
        return self.json({"id": found["id"], "name": found["name"], "size": len(found["members"])})

    async def delete_list(self, request: Request) -> Response:
        if self.lists.pop(request.path_params["id"], None) is None:
            return self.error_response(404, "not_found", "List not found")
        return Response(status_code=204)

    async def change_members(self, request: Request) -> Response:
        found = self.lists.get(request.path_params["id"])
        if found is None:
            return self.error_response(404, "not_found", "List not found")
        body = await request.json()
        add, remove = list(body.get("add") or ()), list(body.get("remove") or ())
        if len(add) > self.MAX_MEMBERS or len(remove) > self.MAX_MEMBERS:
            return self.error_response(
                400, "too_many_members", f"At most {self.MAX_MEMBERS} adds and removes a call"
            )
        results = []
        for email, adding in [(e, True) for e in add] + [(e, False) for e in remove]:
            if str(email).lower() not in self.contacts:
                results.append({"email": email, "ok": False, "error": "Contact not found"})
                continue
            (found["members"].add if adding else found["members"].discard)(str(email).lower())
            results.append({"email": email, "ok": True})
        return self.json({"results": results})

    async def list_members(self, request: Request) -> Response:
        found = self.lists.get(request.path_params["id"])
        if found is None:
            return self.error_response(404, "not_found", "List not found")
        return self._member_page(request, sorted(found["members"]))

    def _member_page(self, request: Request, emails: list[str]) -> Response:
        limit = min(int(request.query_params.get("limit", self.MAX_PAGE)), self.MAX_PAGE)
        offset = int(request.query_params.get("offset", 0))
        more = offset + limit < len(emails)
        return self.json(
            {"emails": offset_page(emails, offset, limit),
             "next_offset": offset + limit if more else None}
        )

    def _segment_error(self, body: Any) -> str | None:
        conditions = body.get("conditions") if isinstance(body, dict) else None
        if body.get("match") != "all" or not isinstance(conditions, list) or not conditions:
            return "A segment is {'match': 'all', 'conditions': [...]} with at least one condition"
        for condition in conditions:
            if condition.get("op") not in ("eq", "lt", "lte", "gt", "gte", "in", "has"):
                return f"Unknown operator {condition.get('op')!r}"
        return None

    async def create_segment(self, request: Request) -> Response:
        body = await request.json()
        error = self._segment_error(body)
        if error:
            return self.error_response(400, "invalid_segment", error)
        segment_id = f"s{next(self._ids)}"
        self.segments[segment_id] = {"id": segment_id, "name": body.get("name"), **body}
        return self.json({"id": segment_id}, 201)

    async def update_segment(self, request: Request) -> Response:
        segment_id = request.path_params["id"]
        if segment_id not in self.segments:
            return self.error_response(404, "not_found", "Segment not found")
        body = await request.json()
        error = self._segment_error(body)
        if error:
            return self.error_response(400, "invalid_segment", error)
        self.segments[segment_id] = {"id": segment_id, **body}
        return self.json({"id": segment_id})

    async def delete_segment(self, request: Request) -> Response:
        if self.segments.pop(request.path_params["id"], None) is None:
            return self.error_response(404, "not_found", "Segment not found")
        return Response(status_code=204)

    async def segment_members(self, request: Request) -> Response:
        segment = self.segments.get(request.path_params["id"])
        if segment is None:
            return self.error_response(404, "not_found", "Segment not found")
        emails = sorted(
            key for key, contact in self.contacts.items()
            if all(
                condition_matches(contact, c, self.fields.get(c["field"], "text"))
                for c in segment["conditions"]
            )
        )
        return self._member_page(request, emails)
