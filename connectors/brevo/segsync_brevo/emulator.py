"""A stateful emulator of the Brevo API v3, for everything segsync's connector uses.

Served at the root and under `/v3` (so `https://api.brevo.com/v3` maps onto it). It keeps
contacts (unique lower-case email and ext_id, integer ids, `createdAt`/`modifiedAt` in the
account's offset with milliseconds), attributes (categories and types; values of the wrong
type dropped silently and recorded in `dropped_values`), folders and lists, read-only
segments (fixtures with a predicate), asynchronous imports and their processes, double opt-in
requests, and the rate limits: `/contacts*` per second and per hour by tier, every other
endpoint per hour, with `x-sib-ratelimit-*` headers and a 429 `{code, message}` body.

Fact-sheet quirks reproduced: import ignores boolean attributes; list add/remove matches
emails case-sensitively and answers 400 when no item succeeds; changing a blocklisted
contact's email clears the blocklist; clearing `emailBlacklisted` is recorded in
`unblocklist_writes` (and refused when `refuse_unblocklist`); `/contacts/batch` is
all-or-nothing and marked deprecated. When a `SpecValidator` is given, every request is
checked against the API description and departures are kept in `spec_violations` (and
answered 400 when `strict_spec`).
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as dt
import hmac
import itertools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Message, Receive, Scope, Send

from segsync.clock import Clock
from segsync.emulator.base import ConcurrencyLimit, Emulator, FaultPlan, WindowLimit
from segsync.model import InvalidEmail, normalize_email

if TYPE_CHECKING:
    from segsync_brevo.spec import SpecValidator

__all__ = ["TIERS", "BrevoEmulator", "ContactRecord", "TierLimits"]


@dataclasses.dataclass(frozen=True)
class TierLimits:
    """Requests allowed on one API tier (fact sheet section 8)."""

    contacts_per_second: int
    contacts_per_hour: int
    others_per_hour: int


TIERS: dict[str, TierLimits] = {
    "general": TierLimits(10, 36_000, 100),
    "advanced": TierLimits(20, 72_000, 200),
    "extended": TierLimits(60, 216_000, 200),
}
"""Per-tier limits; `extended` beyond the contacts rate is not published (assumed)."""

CONTACTS_PATH = r"^(/v3)?/contacts"
OTHER_PATH = r"^(?!(/v3)?/contacts(/|$))"
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
_KEY_SENT: contextvars.ContextVar[bool] = contextvars.ContextVar("brevo_key_sent", default=True)
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

    def due(self) -> float:
        return self.created + self.queued_seconds + self.run_seconds


@dataclasses.dataclass
class SegmentRecord:
    """A segment fixture: read-only through the API, membership by `predicate`."""

    id: int
    name: str
    category: str
    predicate: Callable[[dict[str, Any]], bool]
    updated_at: dt.datetime


class BrevoEmulator(Emulator):
    """The Brevo emulator; see the module docstring. Test hooks are the public methods."""

    platform = "brevo"
    base_path: ClassVar[str] = "/v3"
    default_api_key: ClassVar[str] = "xkeysib-" + "0" * 64 + "-segsyncTEST0001"
    #: set by a test session to validate every request of every instance
    default_validator: ClassVar[SpecValidator | None] = None
    #: called with every new instance (tests collect them to check `spec_violations`)
    on_create: ClassVar[Callable[[BrevoEmulator], None] | None] = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        clock: Clock | None = None,
        latency_ms: float = 0.0,
        faults: FaultPlan | None = None,
        seed: int = 0,
        enforce_rate_limits: bool = True,
        tier: str = "general",
        utc_offset_hours: float = 1.0,
        validator: SpecValidator | None = None,
        strict_spec: bool = False,
        refuse_unblocklist: bool = False,
        import_queue_seconds: float = 2.0,
        import_base_seconds: float = 5.0,
        import_seconds_per_contact: float = 0.002,
        owner_email: str = "owner@segsync-account.test",
    ) -> None:
        if tier not in TIERS:
            raise ValueError(f"unknown tier {tier!r}; known: {', '.join(TIERS)}")
        self.tier = TIERS[tier]
        self.tz = dt.timezone(dt.timedelta(hours=utc_offset_hours))
        self.validator = validator if validator is not None else self.default_validator
        self.strict_spec = strict_spec
        self.refuse_unblocklist = refuse_unblocklist
        self.import_queue_seconds = import_queue_seconds
        self.import_base_seconds = import_base_seconds
        self.import_seconds_per_contact = import_seconds_per_contact
        self.owner_email = owner_email
        super().__init__(
            api_key=api_key,
            clock=clock,
            latency_ms=latency_ms,
            faults=faults,
            seed=seed,
            enforce_rate_limits=enforce_rate_limits,
        )
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
        self.pending_double_opt_in: dict[str, dict[str, Any]] = {}
        self.dropped_values: list[tuple[str, str, Any, str]] = []
        self.unblocklist_writes: list[str] = []
        self.spec_violations: list[str] = []
        if BrevoEmulator.on_create is not None:
            BrevoEmulator.on_create(self)

    # -- platform declarations -----------------------------------------------------------

    def routes(self) -> Sequence[BaseRoute]:
        inner = [
            Route("/contacts", self._h(self.list_contacts), methods=["GET"]),
            Route("/contacts", self._h(self.create_contact), methods=["POST"]),
            Route("/contacts/batch", self._h(self.batch_update), methods=["POST"]),
            Route("/contacts/import", self._h(self.import_contacts), methods=["POST"]),
            Route(
                "/contacts/doubleOptinConfirmation", self._h(self.double_opt_in), methods=["POST"]
            ),
            Route("/contacts/attributes", self._h(self.get_attributes), methods=["GET"]),
            Route(
                "/contacts/attributes/{category}/{name}",
                self._h(self.attribute),
                methods=["POST", "PUT", "DELETE"],
            ),
            Route(
                "/contacts/attributes/{category}/{name}/{option}",
                self._h(self.delete_option),
                methods=["DELETE"],
            ),
            Route("/contacts/folders", self._h(self.folders_endpoint), methods=["GET", "POST"]),
            Route(
                "/contacts/folders/{folder_id:int}",
                self._h(self.folder_endpoint),
                methods=["GET", "PUT", "DELETE"],
            ),
            Route(
                "/contacts/folders/{folder_id:int}/lists",
                self._h(self.folder_lists),
                methods=["GET"],
            ),
            Route("/contacts/lists", self._h(self.lists_endpoint), methods=["GET", "POST"]),
            Route(
                "/contacts/lists/{list_id:int}",
                self._h(self.list_endpoint),
                methods=["GET", "PUT", "DELETE"],
            ),
            Route(
                "/contacts/lists/{list_id:int}/contacts",
                self._h(self.list_members),
                methods=["GET"],
            ),
            Route(
                "/contacts/lists/{list_id:int}/contacts/{action}",
                self._h(self.list_membership),
                methods=["POST"],
            ),
            Route("/contacts/segments", self._h(self.get_segments), methods=["GET"]),
            Route(
                "/contacts/segments",
                self._h(self.segments_read_only),
                methods=["POST", "PUT", "DELETE"],
            ),
            Route(
                "/contacts/{identifier}",
                self._h(self.contact_endpoint),
                methods=["GET", "PUT", "DELETE"],
            ),
            Route("/processes", self._h(self.get_processes), methods=["GET"]),
            Route("/processes/{process_id:int}", self._h(self.get_process), methods=["GET"]),
        ]
        return [Mount("/v3", routes=inner), *inner]

    def error_response(self, status: int, code: str, message: str, **extra: Any) -> Response:
        return JSONResponse({"code": code, "message": message, **extra}, status_code=status)

    def authorized(self, request: Request) -> bool:
        """The `api-key` header (or an OAuth Bearer token) holds the account's key."""
        key = request.headers.get("api-key")
        if key is None:
            auth = request.headers.get("authorization", "")
            key = auth[7:] if auth.lower().startswith("bearer ") else None
        _KEY_SENT.set(key is not None)
        return key is not None and hmac.compare_digest(key.encode(), self.api_key.encode())

    def unauthorized_response(self) -> Response:
        """Brevo's two 401 bodies: no credential at all, or one it does not know."""
        if not _KEY_SENT.get():
            return self.error_response(401, "unauthorized", "authentication not found in headers")
        return self.error_response(401, "unauthorized", "Key not found")

    def rate_limits(self) -> Sequence[WindowLimit | ConcurrencyLimit]:
        tier = self.tier
        return (
            WindowLimit("contacts per second", tier.contacts_per_second, 1.0, CONTACTS_PATH),
            WindowLimit("contacts per hour", tier.contacts_per_hour, 3600.0, CONTACTS_PATH),
            WindowLimit("other endpoints per hour", tier.others_per_hour, 3600.0, OTHER_PATH),
        )

    def rate_limited_response(
        self, limit: WindowLimit | ConcurrencyLimit, retry_after: float
    ) -> Response:
        """Brevo's 429: no Retry-After; the `x-sib-ratelimit-*` headers say when to come back."""
        return JSONResponse(
            {"code": "too_many_requests", "message": "The expected rate limit is exceeded."},
            status_code=429,
        )

    def rate_limit_headers(
        self, limit: WindowLimit, remaining: int, reset_in: float
    ) -> Mapping[str, str]:
        """`x-sib-ratelimit-limit/remaining/reset` (reset: whole seconds until a slot frees)."""
        reset = math.ceil(reset_in) if reset_in > 0 else 0
        if remaining == 0:
            reset = max(1, reset)
        return {
            "x-sib-ratelimit-limit": str(limit.limit),
            "x-sib-ratelimit-remaining": str(remaining),
            "x-sib-ratelimit-reset": str(reset),
        }

    # -- the pipeline additions ------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.advance_processes()
            if self.validator is not None:
                receive, problems = await self._validate(scope, receive)
                if problems:
                    self.spec_violations.extend(problems)
                    if self.strict_spec:
                        response = self.error_response(
                            400, "invalid_parameter", "; ".join(problems)[:1000]
                        )
                        await response(scope, receive, send)
                        return
        await super().__call__(scope, receive, send)

    async def _validate(self, scope: Scope, receive: Receive) -> tuple[Receive, list[str]]:
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replay = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay_receive() -> Message:
            return replay.pop() if replay else await receive()

        request = Request(scope)
        assert self.validator is not None
        problems = self.validator.check(
            request.method, request.url.path, list(request.query_params.multi_items()), body
        )
        return replay_receive, problems

    def _h(self, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                result = await handler(request)
            except BrevoError as exc:
                return self.error_response(exc.status, exc.code, exc.message, **exc.extra)
            if isinstance(result, Response):
                return result
            return JSONResponse(result)

        return endpoint

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
        """The person clicks the confirmation link: lists joined, `DOUBLE_OPT-IN` = 1 (Yes)."""
        request = self.pending_double_opt_in.pop(email.lower())
        contact = self.contact(email)
        if contact is None:
            contact = self._new_contact(email.lower())
        self._set_attributes(contact, request.get("attributes") or {}, source="api")
        contact.attributes["DOUBLE_OPT-IN"] = 1
        contact.list_ids |= set(request["includeListIds"])
        contact.list_ids -= set(request.get("excludeListIds") or ())
        contact.email_blacklisted = False
        contact.blocklist_source = None
        self._touch(contact)

    def advance_processes(self) -> None:
        """Move processes through queued -> in_process -> completed on the clock."""
        now = self.clock.monotonic()
        for process in self.processes.values():
            if process.status == "completed":
                continue
            if now >= process.due():
                finished = self._now() - dt.timedelta(seconds=now - process.due())
                process.info = process.apply(finished)
                process.status = "completed"
            elif now >= process.created + process.queued_seconds:
                process.status = "in_process"

    def seconds_until_processes_done(self) -> float:
        """How long until every process has completed (0 when none is running)."""
        now = self.clock.monotonic()
        running = [p.due() - now for p in self.processes.values() if p.status != "completed"]
        return max([0.0, *running])

    # -- helpers ---------------------------------------------------------------------------

    async def _json(self, request: Request, *, required: bool = True) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            if required:
                raise BrevoError(400, "missing_parameter", "No inputs in the body")
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise BrevoError(400, "bad_request", "Input must be a valid JSON object") from None
        if not isinstance(body, dict):
            raise BrevoError(400, "bad_request", "Input must be a valid JSON object")
        return body

    @staticmethod
    def _int_param(request: Request, name: str, default: int, maximum: int | None = None) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise BrevoError(400, "invalid_parameter", f"{name} must be an integer") from None
        if value < 0 or (maximum is not None and value > maximum):
            raise BrevoError(
                400,
                "out_of_range",
                f"{name} must be between 0 and {maximum}"
                if maximum is not None
                else f"{name} must not be negative",
            )
        return value

    @staticmethod
    def _date_param(request: Request, name: str) -> dt.datetime | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        try:
            value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
        except ValueError:
            raise BrevoError(400, "invalid_parameter", f"{name} is not a valid date-time") from None
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)

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

    # -- contacts ------------------------------------------------------------------------

    async def list_contacts(self, request: Request) -> dict[str, Any]:
        limit = self._int_param(request, "limit", 50, 1000)
        offset = self._int_param(request, "offset", 0)
        sort = request.query_params.get("sort", "desc")
        if sort not in ("asc", "desc"):
            raise BrevoError(400, "invalid_parameter", "sort must be asc or desc")
        modified_since = self._date_param(request, "modifiedSince")
        created_since = self._date_param(request, "createdSince")
        try:
            list_ids = [
                int(v)
                for raw in request.query_params.getlist("listIds")
                for v in raw.split(",")
                if v
            ]
        except ValueError:
            raise BrevoError(400, "invalid_parameter", "listIds must be integers") from None
        segment_id = request.query_params.get("segmentId")
        if list_ids and segment_id:
            raise BrevoError(400, "invalid_parameter", "Either listIds or segmentId can be passed")
        items = list(self.contacts.values())
        if modified_since is not None:
            items = [c for c in items if c.modified_at >= modified_since]
        if created_since is not None:
            items = [c for c in items if c.created_at >= created_since]
        if list_ids:
            items = [c for c in items if c.list_ids & set(list_ids)]
        if segment_id:
            segment = self.segments.get(int(segment_id)) if segment_id.isdigit() else None
            if segment is None:
                raise BrevoError(404, "document_not_found", "Segment ID does not exist")
            items = [c for c in items if segment.predicate(self.contact_json(c))]
        items.sort(key=lambda c: (c.created_at, c.id), reverse=(sort == "desc"))
        page = items[offset : offset + limit]
        return {"contacts": [self.contact_json(c) for c in page], "count": len(items)}

    async def create_contact(self, request: Request) -> Response:
        body = await self._json(request)
        attributes = body.get("attributes") or {}
        email = body.get("email")
        if email is None and "ext_id" not in body and "SMS" not in attributes:
            raise BrevoError(
                400,
                "missing_parameter",
                "Please provide Email or SMS attribute value to create user",
            )
        email = self._valid_email(email) if email is not None else None
        existing = self._by_email.get(email) if email else None
        if existing is None and body.get("ext_id") in self._by_ext_id:
            existing = self._by_ext_id[body["ext_id"]]
        list_ids = self._check_lists(body.get("listIds", []))
        self._check_unique(existing, attributes)
        if existing is not None:
            if not body.get("updateEnabled", False):
                raise BrevoError(
                    400,
                    "duplicate_parameter",
                    "Unable to create contact, email is already associated with another Contact",
                    metadata={"duplicate_identifiers": ["email"]},
                )
            contact = self.contacts[existing]
            self._update(contact, body, list_ids)
            return Response(status_code=204)
        contact = self._new_contact(email)
        if "ext_id" in body:
            contact.ext_id = str(body["ext_id"])
            self._by_ext_id[contact.ext_id] = contact.id
        self._set_attributes(contact, attributes, source="api")
        self._set_blacklist(contact, body.get("emailBlacklisted"), "api")
        contact.sms_blacklisted = bool(body.get("smsBlacklisted", False))
        contact.list_ids |= list_ids
        return JSONResponse({"id": contact.id}, status_code=201)

    def _update(self, contact: ContactRecord, body: Mapping[str, Any], list_ids: set[int]) -> None:
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

    async def contact_endpoint(self, request: Request) -> Response:
        identifier = request.path_params["identifier"]
        identifier_type = request.query_params.get("identifierType")
        contact = self._find(identifier, identifier_type, method=request.method)
        if request.method == "GET":
            data = self.contact_json(contact)
            data["statistics"] = {}
            return JSONResponse(data)
        if request.method == "DELETE":
            if contact.email == self.owner_email:
                raise BrevoError(405, "method_not_allowed", "You cannot delete the account owner")
            del self.contacts[contact.id]
            if contact.email:
                self._by_email.pop(contact.email, None)
            if contact.ext_id:
                self._by_ext_id.pop(contact.ext_id, None)
            return Response(status_code=204)
        body = await self._json(request)
        self._update(contact, body, self._check_lists(body.get("listIds", [])))
        return Response(status_code=204)

    async def batch_update(self, request: Request) -> Response:
        body = await self._json(request)
        items = body.get("contacts")
        if not isinstance(items, list) or not items:
            raise BrevoError(400, "missing_parameter", "contacts is required")
        targets = []
        for item in items:
            keys = [k for k in ("email", "id", "sms") if k in item]
            if len(keys) != 1:
                raise BrevoError(400, "invalid_parameter", "Pass exactly one of email, id or sms")
            kind = {"email": "email_id", "id": "contact_id", "sms": "phone_id"}[keys[0]]
            targets.append(self._find(str(item[keys[0]]), kind, method="PUT"))  # all-or-nothing
        for contact, item in zip(targets, items, strict=True):
            self._update(contact, item, self._check_lists(item.get("listIds", [])))
        return Response(status_code=204, headers={"Deprecation": "@1793318400"})

    async def double_opt_in(self, request: Request) -> Response:
        body = await self._json(request)
        missing = [
            k for k in ("email", "includeListIds", "templateId", "redirectionUrl") if k not in body
        ]
        if missing:
            raise BrevoError(400, "missing_parameter", f"{', '.join(missing)} is required")
        email = self._valid_email(body["email"])
        self._check_lists(body["includeListIds"])
        self.pending_double_opt_in[email] = dict(body)
        return Response(status_code=204 if email in self._by_email else 201)

    # -- import and processes -------------------------------------------------------------

    async def import_contacts(self, request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_IMPORT_BYTES:
            raise BrevoError(400, "invalid_parameter", "The body must be smaller than 10MB")
        body = await self._json(request)
        sources = [k for k in ("fileUrl", "fileBody", "jsonBody") if k in body]
        if len(sources) != 1:
            raise BrevoError(
                400,
                "invalid_parameter",
                "Please provide exactly one of fileUrl, fileBody or jsonBody",
            )
        if sources[0] == "fileUrl":
            raise BrevoError(400, "invalid_parameter", "fileUrl cannot be fetched by this emulator")
        rows = body["jsonBody"] if sources[0] == "jsonBody" else _csv_rows(body["fileBody"])
        if not isinstance(rows, list):
            raise BrevoError(400, "invalid_parameter", "jsonBody must be an array")
        if "listIds" in body:
            list_ids = self._check_lists(body["listIds"])
        elif isinstance(body.get("newList"), dict):
            new = body["newList"]
            list_id = next(self._list_ids)
            self.lists[list_id] = {
                "name": str(new.get("listName", "Imported")),
                "folderId": int(new.get("folderId", 1)),
                "createdAt": self._now(),
            }
            list_ids = {list_id}
        else:
            raise BrevoError(400, "missing_parameter", "listIds or newList is required")
        update_existing = bool(body.get("updateExistingContacts", True))
        empty_clears = bool(body.get("emptyContactsAttributes", False)) and update_existing
        blacklist = bool(body.get("emailBlacklist", False))
        failing = (
            self.faults.failing_indexes(len(rows))
            if self.partial_failure_requested(request)
            else set()
        )

        def apply(when: dt.datetime) -> dict[str, Any]:
            report = {
                "invalid_emails": 0,
                "duplicate_contact_id": 0,
                "duplicate_ext_id": 0,
                "duplicate_email_id": 0,
                "duplicate_phone_id": 0,
                "duplicate_whatsapp_id": 0,
                "duplicate_landline_number_id": 0,
            }
            seen: set[str] = set()
            for index, row in enumerate(rows):
                email = row.get("email") if isinstance(row, dict) else None
                try:
                    email = self._valid_email(email)
                except BrevoError:
                    report["invalid_emails"] += 1
                    continue
                if index in failing:
                    report["invalid_emails"] += 1
                    continue
                if email in seen:
                    report["duplicate_email_id"] += 1
                    continue
                seen.add(email)
                cid = self._by_email.get(email)
                if cid is None:
                    contact = self._new_contact(email, when)
                    self._set_attributes(contact, row.get("attributes") or {}, source="import")
                elif update_existing:
                    contact = self.contacts[cid]
                    self._set_attributes(
                        contact,
                        row.get("attributes") or {},
                        source="import",
                        empty_clears=empty_clears,
                    )
                else:
                    contact = self.contacts[cid]
                if blacklist:
                    self._set_blacklist(contact, True, "import")
                contact.list_ids |= list_ids
                self._touch(contact, when)
            return {"import": report}

        process = self._start_process("IMPORTUSER", len(rows), apply)
        return JSONResponse({"processId": process.id}, status_code=202)

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
        return out

    async def get_process(self, request: Request) -> dict[str, Any]:
        process = self.processes.get(request.path_params["process_id"])
        if process is None:
            raise BrevoError(404, "document_not_found", "Process ID not found")
        return self._process_json(process)

    async def get_processes(self, request: Request) -> dict[str, Any]:
        limit = self._int_param(request, "limit", 10, 50)
        offset = self._int_param(request, "offset", 0)
        sort = request.query_params.get("sort", "desc")
        items = sorted(self.processes.values(), key=lambda p: p.id, reverse=(sort == "desc"))
        return {
            "processes": [self._process_json(p) for p in items[offset : offset + limit]],
            "count": len(items),
        }

    # -- attributes ----------------------------------------------------------------------

    async def get_attributes(self, request: Request) -> dict[str, Any]:
        return {"attributes": [a.as_json() for a in self.attributes.values()]}

    async def attribute(self, request: Request) -> Response:
        category = request.path_params["category"]
        name = request.path_params["name"].upper()
        if category not in ATTRIBUTE_CATEGORIES:
            raise BrevoError(400, "invalid_parameter", f"Invalid attribute category {category!r}")
        existing = self.attributes.get(name)
        if request.method == "DELETE":
            if existing is None or existing.category != category:
                raise BrevoError(404, "document_not_found", "Attribute not found")
            del self.attributes[name]
            for contact in self.contacts.values():
                contact.attributes.pop(name, None)
            return Response(status_code=204)
        body = await self._json(request)
        if request.method == "PUT":
            if existing is None or existing.category != category:
                raise BrevoError(404, "document_not_found", "Attribute not found")
            if "enumeration" in body:
                if category != "category":
                    raise BrevoError(
                        400, "invalid_parameter", "enumeration is only for category attributes"
                    )
                merged = {e["value"]: e for e in existing.enumeration}
                merged.update({int(e["value"]): dict(e) for e in body["enumeration"]})
                existing.enumeration = sorted(merged.values(), key=lambda e: e["value"])
            if "multiCategoryOptions" in body:
                if existing.type != "multiple-choice":
                    raise BrevoError(400, "invalid_parameter", "Not a multiple-choice attribute")
                for option in body["multiCategoryOptions"]:
                    if option not in existing.options:
                        existing.options.append(str(option))
            if "value" in body:
                existing.value = str(body["value"])
            return Response(status_code=204)
        if existing is not None:
            raise BrevoError(400, "invalid_parameter", "Attribute name must be unique")
        kind = body.get("type")
        if category == "category":
            kind = "category"
            enumeration = body.get("enumeration")
            if not enumeration:
                raise BrevoError(
                    400, "missing_parameter", "enumeration is required for category attributes"
                )
        elif category in ("calculated", "global"):
            if "value" not in body:
                raise BrevoError(400, "missing_parameter", "value is required")
            kind = None
        elif kind not in TYPES_BY_CATEGORY[category]:
            raise BrevoError(
                400, "invalid_parameter", f"Invalid type {kind!r} for category {category!r}"
            )
        record = AttributeRecord(
            name,
            category,
            kind,
            enumeration=[
                {"value": int(e["value"]), "label": str(e["label"])}
                for e in body.get("enumeration") or []
            ],
            options=[str(o) for o in body.get("multiCategoryOptions") or []],
            value=body.get("value"),
        )
        self.attributes[name] = record
        return Response(status_code=201)

    async def delete_option(self, request: Request) -> Response:
        attribute = self.attributes.get(request.path_params["name"].upper())
        option = request.path_params["option"]
        if (
            attribute is None
            or attribute.type != "multiple-choice"
            or option not in attribute.options
        ):
            raise BrevoError(404, "document_not_found", "Attribute option not found")
        attribute.options.remove(option)
        return Response(status_code=204)

    # -- folders and lists ---------------------------------------------------------------

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

    def _list_json(self, list_id: int) -> dict[str, Any]:
        data = self.lists[list_id]
        members = [c for c in self.contacts.values() if list_id in c.list_ids]
        return {
            "id": list_id,
            "name": data["name"],
            "folderId": data["folderId"],
            "totalBlacklisted": sum(1 for c in members if c.email_blacklisted),
            "totalSubscribers": sum(1 for c in members if not c.email_blacklisted),
            "uniqueSubscribers": len(members),
        }

    @staticmethod
    def _paged(request: Request, items: list[Any], maximum: int) -> tuple[list[Any], int]:
        limit = BrevoEmulator._int_param(request, "limit", 10, maximum)
        offset = BrevoEmulator._int_param(request, "offset", 0)
        if request.query_params.get("sort", "desc") == "desc":
            items = list(reversed(items))
        return items[offset : offset + limit], len(items)

    async def folders_endpoint(self, request: Request) -> Response:
        if request.method == "POST":
            body = await self._json(request)
            if not isinstance(body.get("name"), str) or not body["name"]:
                raise BrevoError(400, "missing_parameter", "name is required")
            folder_id = next(self._folder_ids)
            self.folders[folder_id] = body["name"]
            return JSONResponse({"id": folder_id}, status_code=201)
        page, count = self._paged(request, sorted(self.folders), 50)
        return JSONResponse({"folders": [self._folder_json(i) for i in page], "count": count})

    async def folder_endpoint(self, request: Request) -> Response:
        folder_id = request.path_params["folder_id"]
        if folder_id not in self.folders:
            raise BrevoError(404, "document_not_found", "Folder ID not found")
        if request.method == "GET":
            return JSONResponse(self._folder_json(folder_id))
        if request.method == "PUT":
            body = await self._json(request)
            self.folders[folder_id] = str(body.get("name", self.folders[folder_id]))
            return Response(status_code=204)
        del self.folders[folder_id]
        for list_id in [i for i, data in self.lists.items() if data["folderId"] == folder_id]:
            self._delete_list(list_id)
        return Response(status_code=204)

    async def folder_lists(self, request: Request) -> dict[str, Any]:
        folder_id = request.path_params["folder_id"]
        if folder_id not in self.folders:
            raise BrevoError(404, "document_not_found", "Folder ID not found")
        ids = sorted(i for i, data in self.lists.items() if data["folderId"] == folder_id)
        page, count = self._paged(request, ids, 50)
        return {"lists": [self._list_json(i) for i in page], "count": count}

    async def lists_endpoint(self, request: Request) -> Response:
        if request.method == "POST":
            body = await self._json(request)
            missing = [k for k in ("name", "folderId") if k not in body]
            if missing:
                raise BrevoError(400, "missing_parameter", f"{', '.join(missing)} is required")
            if body["folderId"] not in self.folders:
                raise BrevoError(404, "document_not_found", "Folder ID does not exist")
            list_id = next(self._list_ids)
            self.lists[list_id] = {
                "name": str(body["name"]),
                "folderId": body["folderId"],
                "createdAt": self._now(),
            }
            return JSONResponse({"id": list_id}, status_code=201)
        page, count = self._paged(request, sorted(self.lists), 50)
        return JSONResponse({"lists": [self._list_json(i) for i in page], "count": count})

    def _delete_list(self, list_id: int) -> None:
        del self.lists[list_id]
        for contact in self.contacts.values():
            contact.list_ids.discard(list_id)
            contact.list_unsubscribed.discard(list_id)

    async def list_endpoint(self, request: Request) -> Response:
        list_id = request.path_params["list_id"]
        if list_id not in self.lists:
            raise BrevoError(404, "document_not_found", "List ID not found")
        if request.method == "GET":
            data = self._list_json(list_id)
            data["createdAt"] = self.stamp(self.lists[list_id]["createdAt"])
            data["campaignStats"] = []
            data["dynamicList"] = False
            return JSONResponse(data)
        if request.method == "PUT":
            body = await self._json(request)
            if ("name" in body) == ("folderId" in body):
                raise BrevoError(400, "invalid_parameter", "Pass either name or folderId")
            if "folderId" in body and body["folderId"] not in self.folders:
                raise BrevoError(404, "document_not_found", "Folder ID does not exist")
            self.lists[list_id].update(body)
            return Response(status_code=204)
        self._delete_list(list_id)
        return Response(status_code=204)

    async def list_members(self, request: Request) -> dict[str, Any]:
        list_id = request.path_params["list_id"]
        if list_id not in self.lists:
            raise BrevoError(404, "document_not_found", "List ID not found")
        limit = self._int_param(request, "limit", 50, 500)
        offset = self._int_param(request, "offset", 0)
        since = self._date_param(request, "modifiedSince")
        items = [c for c in self.contacts.values() if list_id in c.list_ids]
        if since is not None:
            items = [c for c in items if c.modified_at >= since]
        items.sort(
            key=lambda c: (c.created_at, c.id),
            reverse=request.query_params.get("sort", "desc") == "desc",
        )
        return {
            "contacts": [self.contact_json(c) for c in items[offset : offset + limit]],
            "count": len(items),
        }

    async def list_membership(self, request: Request) -> Response:
        list_id = request.path_params["list_id"]
        action = request.path_params["action"]
        if action not in ("add", "remove"):
            raise BrevoError(404, "document_not_found", "Not found")
        if list_id not in self.lists:
            raise BrevoError(404, "document_not_found", "List ID not found")
        body = await self._json(request)
        if action == "remove" and body.get("all") is True:
            members = [c for c in self.contacts.values() if list_id in c.list_ids]

            def remove_all(when: dt.datetime) -> dict[str, Any]:
                for contact in members:
                    contact.list_ids.discard(list_id)
                    self._touch(contact, when)
                return {}

            process = self._start_process("REMOVE_LIST_CONTACTS", len(members), remove_all)
            return JSONResponse(
                {"contacts": {"total": len(members), "processId": process.id}}, status_code=201
            )
        keys = [k for k in ("emails", "ids", "extIds") if k in body]
        if len(keys) != 1:
            raise BrevoError(400, "invalid_parameter", "Pass exactly one of emails, ids or extIds")
        items = body[keys[0]]
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_LIST_ITEMS:
            raise BrevoError(
                400,
                "out_of_range",
                f"You can pass between 1 and {MAX_LIST_ITEMS} items in one request",
            )
        failing = (
            self.faults.failing_indexes(len(items))
            if self.partial_failure_requested(request)
            else set()
        )
        success: list[Any] = []
        failure: list[Any] = []
        for index, item in enumerate(items):
            contact: ContactRecord | None = None
            if keys[0] == "emails":
                # matched case-sensitively against the stored (lower-case) address
                cid = self._by_email.get(item) if isinstance(item, str) else None
                contact = None if cid is None else self.contacts[cid]
            elif keys[0] == "ids":
                contact = self.contacts.get(item) if isinstance(item, int) else None
            else:
                cid = self._by_ext_id.get(item) if isinstance(item, str) else None
                contact = None if cid is None else self.contacts[cid]
            present = contact is not None and list_id in contact.list_ids
            ok = (
                contact is not None
                and index not in failing
                and (not present if action == "add" else present)
            )
            if not ok or contact is None:
                failure.append(item)
                continue
            if action == "add":
                contact.list_ids.add(list_id)
            else:
                contact.list_ids.discard(list_id)
            self._touch(contact)
            success.append(item)
        if not success:
            raise BrevoError(
                400, "invalid_parameter", "Contact already in list and/or does not exist"
            )
        return JSONResponse({"contacts": {"success": success, "failure": failure}}, status_code=201)

    # -- segments (read-only) -------------------------------------------------------------

    async def get_segments(self, request: Request) -> dict[str, Any]:
        page, count = self._paged(request, sorted(self.segments), 50)
        return {
            "segments": [
                {
                    "id": i,
                    "segmentName": self.segments[i].name,
                    "categoryName": self.segments[i].category,
                    "updatedAt": self.stamp(self.segments[i].updated_at),
                }
                for i in page
            ],
            "count": count,
        }

    async def segments_read_only(self, request: Request) -> Response:
        raise BrevoError(405, "method_not_allowed", "Segments cannot be changed through the API")


def _csv_rows(text: Any) -> list[dict[str, Any]]:
    """`fileBody` CSV (`;`-separated, header of attribute names) as jsonBody rows."""
    if not isinstance(text, str):
        raise BrevoError(400, "invalid_parameter", "fileBody must be a string")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = [h.strip().upper() for h in lines[0].split(";")]
    rows = []
    for line in lines[1:]:
        values = dict(zip(header, (v.strip() for v in line.split(";")), strict=False))
        email = values.pop("EMAIL", None)
        rows.append({"email": email, "attributes": values})
    return rows
