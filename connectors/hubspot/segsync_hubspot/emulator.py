"""A stateful HubSpot emulator: contacts, search, properties, lists and subscriptions.

It serves the paths of every configured API version at once: `v3` (`/crm/v3/objects/contacts`,
`/crm/v3/lists`, `/crm/v3/properties/contacts`, `/communication-preferences/v3/...`) and dated
versions such as `2026-03` (`/crm/objects/2026-03/contacts`, `/crm/lists/2026-03`,
`/crm/properties/2026-03/contacts`, `/communication-preferences/2026-03/...`, whose shape is
v4's). Behaviour follows the fact sheet (reference/hubspot.md): 100 inputs a batch, 100 records
a page with an `after` cursor, search at 200 a page capped at 10,000 results (400 beyond) and
5 requests a second, 5 filter groups x 6 filters (18 in all), checkbox values `;`-joined and
validated against options (`INVALID_OPTION`), DYNAMIC lists evaluated from their filter branch
(with `includeObjectsWithNoValueSet`), membership writes on MANUAL/SNAPSHOT lists only,
memberships read 250 a page, subscription statuses per email address (v3 refuses to
re-subscribe an opted-out address; v4/dated versions allow it, as HubSpot does; batch status
reads and writes need Marketing Hub Enterprise (`enterprise_consent`), a 403 otherwise), read-only
`hs_email_optout*` properties, the rolling 10-second limit (100 or 190 by tier), the daily
limit and the search limit with HubSpot's 429 bodies and rate-limit headers.

Test hooks (no HTTP): `seed_contact`, `contact_by_email`, `set_engagement`, `hard_bounce`,
`unsubscribe_all`, `subscription_status`, `list_members`; `status_writes` records every v4
status write; `last_search_examined` counts the contacts the last search evaluated.

At scale: an email index finds upsert targets; searches whose every filter group bounds
`createdate` or `lastmodifieddate` evaluate only the contacts a sorted index places in range
(answers are those of a full scan); batches journal the contacts they touch to undo them.
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from segsync.emulator.base import ConcurrencyLimit, Emulator, WindowLimit
from segsync_hubspot.filters import (
    FilterError,
    RecordView,
    branch_accepts,
    normalise_branch,
    search_filter_accepts,
    to_epoch_ms,
    validate_branch,
)
from segsync_hubspot.limits import (
    BATCH_INPUTS,
    BURST_BY_TIER,
    BURST_SECONDS,
    DAILY_BY_TIER,
    MEMBERSHIP_PAGE,
    SEARCH_CAP,
    SEARCH_PAGE,
    SEARCH_PER_SECOND,
)

__all__ = ["HubSpotEmulator"]

_SEARCH_PATH = r"/crm/(?:v3/objects|objects/[^/]+)/contacts/search$"

_BUILTIN_PROPERTIES: tuple[tuple[str, str, str, bool], ...] = (
    # name, type, fieldType, read-only value
    ("email", "string", "text", False),
    ("firstname", "string", "text", False),
    ("lastname", "string", "text", False),
    ("phone", "string", "phonenumber", False),
    ("mobilephone", "string", "phonenumber", False),
    ("company", "string", "text", False),
    ("city", "string", "text", False),
    ("country", "string", "text", False),
    ("state", "string", "text", False),
    ("zip", "string", "text", False),
    ("jobtitle", "string", "text", False),
    ("website", "string", "text", False),
    ("date_of_birth", "string", "text", False),
    ("hs_language", "enumeration", "select", False),
    ("lifecyclestage", "enumeration", "radio", False),
    ("hs_additional_emails", "string", "text", True),  # ";"-separated, unique like email
    ("createdate", "datetime", "date", True),
    ("lastmodifieddate", "datetime", "date", True),
    ("hs_object_id", "number", "number", True),
    ("hs_email_optout", "bool", "booleancheckbox", True),
    ("hs_email_bad_address", "bool", "booleancheckbox", True),
    ("hs_email_open", "number", "number", True),
    ("hs_email_click", "number", "number", True),
    ("hs_email_delivered", "number", "number", True),
    ("hs_email_last_open_date", "datetime", "date", True),
    ("hs_email_last_click_date", "datetime", "date", True),
)

_BUILTIN_OPTIONS: dict[str, tuple[str, ...]] = {
    "hs_language": ("en", "fr", "de", "es", "it", "nl", "pt", "ja", "zh-cn"),
    "lifecyclestage": (
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
        "other",
    ),
}

_DEFAULT_SEARCH_PROPERTIES = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
_DEFAULT_GET_PROPERTIES = _DEFAULT_SEARCH_PROPERTIES

_FIELD_TYPES: dict[str, frozenset[str]] = {
    "string": frozenset(
        {"text", "textarea", "file", "html", "phonenumber", "calculation_equation"}
    ),
    "number": frozenset({"number", "calculation_equation"}),
    "date": frozenset({"date"}),
    "datetime": frozenset({"date"}),
    "enumeration": frozenset(
        {"select", "radio", "checkbox", "booleancheckbox", "calculation_equation"}
    ),
    "bool": frozenset({"booleancheckbox", "calculation_equation"}),
    "phone_number": frozenset({"phonenumber"}),
}

_INDEXED_PROPERTIES = ("createdate", "lastmodifieddate")
"""Datetime properties kept in a sorted (epoch ms, id) index that range searches start from."""

_RANGE_OPERATORS = frozenset({"EQ", "GT", "GTE", "LT", "LTE", "BETWEEN"})

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
_CHANNELS = frozenset({"EMAIL"})
_STATUS_STATES = frozenset({"SUBSCRIBED", "UNSUBSCRIBED", "NOT_SPECIFIED"})
_LEGAL_BASES = frozenset(
    {
        "CONSENT_WITH_NOTICE",
        "LEGITIMATE_INTEREST_CLIENT",
        "LEGITIMATE_INTEREST_OTHER",
        "LEGITIMATE_INTEREST_PQL",
        "NON_GDPR",
        "PERFORMANCE_OF_CONTRACT",
        "PROCESS_AND_STORE",
    }
)


class _HubSpotError(Exception):
    def __init__(self, status: int, category: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.extra = extra


@dataclasses.dataclass
class _Contact:
    id: str
    properties: dict[str, str]
    history: dict[str, list[tuple[str, dt.datetime]]]
    created_at: dt.datetime
    updated_at: dt.datetime
    archived: bool = False


@dataclasses.dataclass
class _List:
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
class _Status:
    status: str  # SUBSCRIBED | NOT_SUBSCRIBED
    timestamp: dt.datetime
    legal_basis: str | None = None
    explanation: str | None = None
    source: str = "API"


@dataclasses.dataclass
class _Journal:
    """What a batch changed, to undo it: contacts and email keys as they were before."""

    next_id: int
    contacts: dict[str, _Contact | None] = dataclasses.field(default_factory=dict)
    emails: dict[str, str | None] = dataclasses.field(default_factory=dict)


def _iso(when: dt.datetime) -> str:
    return (
        when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    )


def _ms(when: dt.datetime) -> str:
    return str(round(when.timestamp() * 1000))


class HubSpotEmulator(Emulator):
    """The HubSpot emulator; see the module docstring. Keyword arguments are its knobs."""

    platform: ClassVar[str] = "hubspot"
    default_api_key: ClassVar[str] = "pat-na1-00000000-1111-2222-3333-444444444444"

    def __init__(
        self,
        *,
        versions: Sequence[str] = ("v3", "2026-03"),
        tier: str = "starter",
        daily_limit: int | None = None,
        search_per_second: int = SEARCH_PER_SECOND,
        search_max_groups: int = 5,
        search_max_filters_per_group: int = 6,
        search_max_filters: int = 18,
        search_result_cap: int = SEARCH_CAP,
        search_delay_seconds: float = 0.0,
        batch_limit: int = BATCH_INPUTS,
        membership_write_limit: int = 100_000,
        enterprise_consent: bool = True,
        email_upsert_all_or_nothing: bool = False,
        portal_id: int = 12345678,
        **kwargs: Any,
    ) -> None:
        if tier not in BURST_BY_TIER:
            raise ValueError(f"tier {tier!r}: one of {', '.join(BURST_BY_TIER)}")
        self.versions = tuple(versions)
        self.tier = tier
        self.burst_limit = BURST_BY_TIER[tier]
        self.daily_limit = daily_limit or DAILY_BY_TIER[tier]
        self.search_per_second = search_per_second
        self.search_max_groups = search_max_groups
        self.search_max_filters_per_group = search_max_filters_per_group
        self.search_max_filters = search_max_filters
        self.search_result_cap = search_result_cap
        self.search_delay = search_delay_seconds
        self.batch_limit = batch_limit
        self.membership_write_limit = membership_write_limit
        self.enterprise_consent = enterprise_consent
        self.email_upsert_all_or_nothing = email_upsert_all_or_nothing
        self.portal_id = portal_id
        super().__init__(**kwargs)
        self.contacts: dict[str, _Contact] = {}
        self._by_email: dict[str, str] = {}
        #: per indexed property: sorted (epoch ms, int id) of every contact holding a value
        self._sorted: dict[str, list[tuple[int, int]]] = {n: [] for n in _INDEXED_PROPERTIES}
        #: per indexed property: contact id -> its key in `_sorted`
        self._sorted_keys: dict[str, dict[str, int]] = {n: {} for n in _INDEXED_PROPERTIES}
        self._journal: _Journal | None = None
        #: contacts the last search evaluated its filters on (test hook: work done)
        self.last_search_examined = 0
        self._next_id = 101
        self.properties: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {
            "contactinformation": {
                "name": "contactinformation",
                "label": "Contact information",
                "displayOrder": 0,
                "archived": False,
            },
            "emailinformation": {
                "name": "emailinformation",
                "label": "Email information",
                "displayOrder": 1,
                "archived": False,
            },
        }
        for name, ptype, field_type, read_only in _BUILTIN_PROPERTIES:
            options = [
                {"label": v, "value": v, "hidden": False, "displayOrder": i}
                for i, v in enumerate(_BUILTIN_OPTIONS.get(name, ()))
            ]
            self.properties[name] = self._property_record(
                {
                    "name": name,
                    "label": name,
                    "type": ptype,
                    "fieldType": field_type,
                    "groupName": "contactinformation",
                    "options": options,
                },
                hubspot_defined=True,
                read_only=read_only,
            )
        self.lists: dict[str, _List] = {}
        self._next_list_id = 1
        self.subscriptions: dict[int, dict[str, Any]] = {}
        self.statuses: dict[str, dict[int, _Status]] = {}
        self.opted_out_of_all: dict[str, dt.datetime] = {}
        #: (email, subscription id, statusState) of every v4 status write, in order (test hook)
        self.status_writes: list[tuple[str, int, str]] = []
        self._correlation = 0
        for sub_id, name, purpose in (
            (101, "Marketing Information", "Marketing"),
            (102, "One to One", "Sales"),
        ):
            self.add_subscription(sub_id, name, purpose)

    # -- base hooks --------------------------------------------------------------------------

    def rate_limits(self) -> Sequence[WindowLimit | ConcurrencyLimit]:
        return (
            WindowLimit("SECONDLY", self.search_per_second, 1.0, path_pattern=_SEARCH_PATH),
            WindowLimit(
                "TEN_SECONDLY_ROLLING",
                self.burst_limit,
                BURST_SECONDS,
                path_pattern=rf"^(?!.*{_SEARCH_PATH[:-1]}$)",
            ),
            WindowLimit("DAILY", self.daily_limit, 86_400.0),
        )

    def _correlation_id(self) -> str:
        self._correlation += 1
        return str(uuid.UUID(int=self.random.getrandbits(128) ^ self._correlation))

    def error_response(self, status: int, code: str, message: str, **extra: Any) -> Response:
        category = {
            "unauthorized": "INVALID_AUTHENTICATION",
            "server_error": "INTERNAL_ERROR",
            "rate_limited": "RATE_LIMITS",
            "not_found": "OBJECT_NOT_FOUND",
            "method_not_allowed": "VALIDATION_ERROR",
            "bad_request": "VALIDATION_ERROR",
        }.get(code, code)
        body: dict[str, Any] = {
            "status": "error",
            "message": message,
            "correlationId": self._correlation_id(),
            "category": category,
        }
        body.update(extra)
        return JSONResponse(body, status_code=status)

    def unauthorized_response(self) -> Response:
        return self.error_response(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication "
            "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        )

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        return header == f"Bearer {self.api_key}"

    def rate_limited_response(
        self, limit: WindowLimit | ConcurrencyLimit, retry_after: float
    ) -> Response:
        name = limit.name if limit.name in ("SECONDLY", "DAILY") else "TEN_SECONDLY_ROLLING"
        message = {
            "SECONDLY": "You have reached your secondly limit.",
            "DAILY": "You have reached your daily limit.",
            "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
        }[name]
        body = {
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "category": "RATE_LIMITS",  # seen by many clients; the spec's Error requires it
            "correlationId": self._correlation_id(),
            "policyName": name,
            "groupName": f"publicapi:private-app:{self.portal_id}",
            "requestId": self._correlation_id(),
        }
        headers = {} if name == "SECONDLY" else self._rate_headers()
        return JSONResponse(body, status_code=429, headers=headers)

    def _rate_headers(self) -> dict[str, str]:
        now = self.clock.monotonic()
        burst = next(
            x
            for x in self.limits
            if isinstance(x, WindowLimit) and x.name == "TEN_SECONDLY_ROLLING"
        )
        daily = next(x for x in self.limits if isinstance(x, WindowLimit) and x.name == "DAILY")
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(daily.remaining(now)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(self.burst_limit),
            "X-HubSpot-RateLimit-Remaining": str(burst.remaining(now)),
        }

    def rate_limit_headers(
        self, limit: WindowLimit, remaining: int, reset_in: float
    ) -> Mapping[str, str]:
        """HubSpot's X-HubSpot-RateLimit-* headers; search answers carry none."""
        if limit.name == "SECONDLY":
            return {}
        return self._rate_headers()

    # -- routing -----------------------------------------------------------------------------

    def routes(self) -> Sequence[BaseRoute]:
        routes: list[BaseRoute] = []
        for version in self.versions:
            dated = version != "v3"
            c = f"/crm/objects/{version}/contacts" if dated else "/crm/v3/objects/contacts"
            lists = f"/crm/lists/{version}" if dated else "/crm/v3/lists"
            props = f"/crm/properties/{version}" if dated else "/crm/v3/properties"
            routes += [
                Route(c, self._h(self.list_contacts), methods=["GET"]),
                Route(c, self._h(self.create_contact), methods=["POST"]),
                Route(f"{c}/search", self._h(self.search), methods=["POST"]),
                Route(f"{c}/batch/read", self._h(self.batch_read), methods=["POST"]),
                Route(f"{c}/batch/create", self._h(self.batch_create), methods=["POST"]),
                Route(f"{c}/batch/update", self._h(self.batch_update), methods=["POST"]),
                Route(f"{c}/batch/upsert", self._h(self.batch_upsert), methods=["POST"]),
                Route(f"{c}/batch/archive", self._h(self.batch_archive), methods=["POST"]),
                Route(f"{c}/{{contact_id}}", self._h(self.get_contact), methods=["GET"]),
                Route(f"{c}/{{contact_id}}", self._h(self.patch_contact), methods=["PATCH"]),
                Route(f"{c}/{{contact_id}}", self._h(self.archive_contact), methods=["DELETE"]),
                Route(f"{props}/{{object_type}}", self._h(self.get_properties), methods=["GET"]),
                Route(f"{props}/{{object_type}}", self._h(self.create_property), methods=["POST"]),
                Route(f"{props}/{{object_type}}/groups", self._h(self.get_groups), methods=["GET"]),
                Route(
                    f"{props}/{{object_type}}/groups", self._h(self.create_group), methods=["POST"]
                ),
                Route(
                    f"{props}/{{object_type}}/{{name}}", self._h(self.get_property), methods=["GET"]
                ),
                Route(
                    f"{props}/{{object_type}}/{{name}}",
                    self._h(self.patch_property),
                    methods=["PATCH"],
                ),
                Route(lists, self._h(self.create_list), methods=["POST"]),
                Route(lists, self._h(self.get_lists), methods=["GET"]),
                Route(f"{lists}/search", self._h(self.search_lists), methods=["POST"]),
                Route(
                    f"{lists}/object-type-id/{{otid}}/name/{{name}}",
                    self._h(self.get_list_by_name),
                    methods=["GET"],
                ),
                Route(f"{lists}/{{list_id}}", self._h(self.get_list), methods=["GET"]),
                Route(f"{lists}/{{list_id}}", self._h(self.delete_list), methods=["DELETE"]),
                Route(
                    f"{lists}/{{list_id}}/update-list-filters",
                    self._h(self.update_list_filters),
                    methods=["PUT"],
                ),
                Route(
                    f"{lists}/{{list_id}}/update-list-name",
                    self._h(self.update_list_name),
                    methods=["PUT"],
                ),
                Route(
                    f"{lists}/{{list_id}}/memberships",
                    self._h(self.get_memberships),
                    methods=["GET"],
                ),
                Route(
                    f"{lists}/{{list_id}}/memberships/add",
                    self._h(self.add_members),
                    methods=["PUT"],
                ),
                Route(
                    f"{lists}/{{list_id}}/memberships/remove",
                    self._h(self.remove_members),
                    methods=["PUT"],
                ),
                Route(
                    f"{lists}/{{list_id}}/memberships/add-and-remove",
                    self._h(self.add_and_remove_members),
                    methods=["PUT"],
                ),
            ]
            cp = f"/communication-preferences/{version}"
            routes.append(Route(f"{cp}/definitions", self._h(self.definitions), methods=["GET"]))
            if version == "v3":
                routes += [
                    Route(f"{cp}/status/email/{{email}}", self._h(self.v3_status), methods=["GET"]),
                    Route(f"{cp}/subscribe", self._h(self.v3_subscribe), methods=["POST"]),
                    Route(f"{cp}/unsubscribe", self._h(self.v3_unsubscribe), methods=["POST"]),
                ]
            else:
                routes += [
                    Route(
                        f"{cp}/statuses/batch/read", self._h(self.v4_batch_read), methods=["POST"]
                    ),
                    Route(
                        f"{cp}/statuses/batch/write",
                        self._h(self.v4_batch_write),
                        methods=["POST"],
                    ),
                    Route(f"{cp}/statuses/{{email}}", self._h(self.v4_status), methods=["GET"]),
                    Route(
                        f"{cp}/statuses/{{email}}", self._h(self.v4_set_status), methods=["POST"]
                    ),
                    Route(
                        f"{cp}/statuses/{{email}}/unsubscribe-all",
                        self._h(self.v4_unsubscribe_all),
                        methods=["POST"],
                    ),
                ]
        if "v4" not in self.versions and "v3" in self.versions:
            cp = "/communication-preferences/v4"
            routes += [
                Route(f"{cp}/definitions", self._h(self.definitions), methods=["GET"]),
                Route(f"{cp}/statuses/batch/read", self._h(self.v4_batch_read), methods=["POST"]),
                Route(f"{cp}/statuses/batch/write", self._h(self.v4_batch_write), methods=["POST"]),
                Route(f"{cp}/statuses/{{email}}", self._h(self.v4_status), methods=["GET"]),
                Route(f"{cp}/statuses/{{email}}", self._h(self.v4_set_status), methods=["POST"]),
                Route(
                    f"{cp}/statuses/{{email}}/unsubscribe-all",
                    self._h(self.v4_unsubscribe_all),
                    methods=["POST"],
                ),
            ]
        return routes

    def _h(self, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                result = await handler(request)
            except _HubSpotError as exc:
                return self.error_response(exc.status, exc.category, exc.message, **exc.extra)
            if isinstance(result, Response):
                return result
            return JSONResponse(result)

        return endpoint

    @staticmethod
    async def _body(request: Request) -> Any:
        raw = await request.body()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise _HubSpotError(
                400, "VALIDATION_ERROR", "Invalid input JSON on line 1: could not parse the body"
            ) from None

    async def _object_body(self, request: Request) -> dict[str, Any]:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise _HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
        return body

    def _inputs(self, body: Mapping[str, Any]) -> list[Any]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise _HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: inputs is required")
        if len(inputs) > self.batch_limit:
            raise _HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"Batch input limit exceeded: {len(inputs)} inputs, "
                f"the limit is {self.batch_limit}",
                context={"limit": [str(self.batch_limit)]},
            )
        return inputs

    # -- test hooks (no HTTP) -----------------------------------------------------------------

    def seed_contact(self, properties: Mapping[str, str]) -> str:
        """Create a contact directly (values as HubSpot strings); return its id."""
        record, errors = self._create(
            {k: str(v) for k, v in properties.items()}, allow_read_only=True
        )
        if errors:
            raise ValueError(errors)
        assert record is not None
        return record.id

    def contact_by_email(self, email: str) -> dict[str, str] | None:
        """The current properties of the contact with `email` (or an additional email)."""
        record = self._find_email(email)
        return dict(record.properties) if record else None

    def modify_contact(self, contact_id: str, properties: Mapping[str, str]) -> None:
        """Change properties of a contact as a person in HubSpot would."""
        errors = self._apply(self.contacts[contact_id], dict(properties), allow_read_only=True)
        if errors:
            raise ValueError(errors)

    def set_engagement(self, email: str, **values: str) -> None:
        """Set read-only engagement properties (hs_email_open=..., ...) of a contact."""
        record = self._find_email(email)
        assert record is not None, email
        self._apply(record, dict(values), allow_read_only=True)

    def hard_bounce(self, email: str) -> None:
        """Mark an address as hard-bounced (`hs_email_bad_address`)."""
        record = self._find_email(email)
        assert record is not None, email
        self._apply(record, {"hs_email_bad_address": "true"}, allow_read_only=True)

    def add_subscription(self, sub_id: int, name: str, purpose: str = "Marketing") -> None:
        """Define a subscription type (and its read-only `hs_email_optout_<id>` property)."""
        now = self.clock.now()
        self.subscriptions[sub_id] = {
            "id": sub_id,
            "name": name,
            "description": f"{name} emails",
            "purpose": purpose,
            "communicationMethod": "Email",
            "isActive": True,
            "isDefault": sub_id == 101,
            "isInternal": False,
            "createdAt": _iso(now),
            "updatedAt": _iso(now),
        }
        self.properties[f"hs_email_optout_{sub_id}"] = self._property_record(
            {
                "name": f"hs_email_optout_{sub_id}",
                "label": f"Opted out of email: {name}",
                "type": "enumeration",
                "fieldType": "select",
                "groupName": "emailinformation",
                "options": [{"label": "Yes", "value": "true"}, {"label": "No", "value": "false"}],
            },
            hubspot_defined=True,
            read_only=True,
        )

    def subscription_status(self, email: str, sub_id: int = 101) -> str:
        """SUBSCRIBED, NOT_SUBSCRIBED or NOT_SPECIFIED for an address and subscription."""
        key = email.strip().lower()
        if key in self.opted_out_of_all:
            return "NOT_SUBSCRIBED"
        status = self.statuses.get(key, {}).get(sub_id)
        return status.status if status else "NOT_SPECIFIED"

    def set_subscription(self, email: str, sub_id: int = 101, *, subscribed: bool) -> None:
        """Set an address's status for one subscription (as the person would)."""
        self._set(email.strip().lower(), sub_id, subscribed, None, None)

    def unsubscribe_all(self, email: str) -> None:
        """Opt an address out of all email (as the person would through a footer link)."""
        self._opt_out_of_all(email.strip().lower())

    def list_members(self, list_id: str) -> set[str]:
        """Record ids currently in a list (DYNAMIC lists evaluated now)."""
        return set(self._members(self.lists[list_id]))

    # -- properties ---------------------------------------------------------------------------

    def _property_record(
        self, spec: Mapping[str, Any], *, hubspot_defined: bool = False, read_only: bool = False
    ) -> dict[str, Any]:
        now = _iso(self.clock.now())
        options = [
            {
                "label": o.get("label", o.get("value")),
                "value": o.get("value"),
                "hidden": bool(o.get("hidden", False)),
                "displayOrder": o.get("displayOrder", i),
                **({"description": o["description"]} if "description" in o else {}),
            }
            for i, o in enumerate(spec.get("options") or [])
        ]
        return {
            "name": spec["name"],
            "label": spec.get("label", spec["name"]),
            "type": spec["type"],
            "fieldType": spec["fieldType"],
            "description": spec.get("description", ""),
            "groupName": spec.get("groupName"),
            "options": options,
            "displayOrder": spec.get("displayOrder", -1),
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": bool(spec.get("hasUniqueValue")),
            "hidden": bool(spec.get("hidden", False)),
            "hubspotDefined": hubspot_defined,
            "formField": bool(spec.get("formField", False)),
            "archived": False,
            "createdAt": now,
            "updatedAt": now,
            "modificationMetadata": {
                "archivable": not hubspot_defined,
                "readOnlyDefinition": hubspot_defined,
                "readOnlyValue": read_only,
            },
        }

    @staticmethod
    def _object_type(request: Request) -> None:
        if request.path_params["object_type"] not in ("contacts", "0-1", "contact"):
            raise _HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"Unable to infer object type from: {request.path_params['object_type']}",
            )

    async def get_properties(self, request: Request) -> Any:
        self._object_type(request)
        return {"results": [p for p in self.properties.values() if not p["archived"]]}

    async def get_property(self, request: Request) -> Any:
        self._object_type(request)
        name = request.path_params["name"]
        prop = self.properties.get(name)
        if prop is None:
            raise _HubSpotError(404, "OBJECT_NOT_FOUND", f"Property {name} does not exist")
        return prop

    async def create_property(self, request: Request) -> Any:
        self._object_type(request)
        body = await self._object_body(request)
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            raise _HubSpotError(400, "VALIDATION_ERROR", f"Missing required fields: {missing}")
        name = str(body["name"])
        if not _PROPERTY_NAME.match(name):
            raise _HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"Property name {name!r} must be lowercase, start with a letter, contain only "
                "letters, digits and underscores and be shorter than 100 characters",
            )
        if name in self.properties:
            raise _HubSpotError(409, "OBJECT_ALREADY_EXISTS", f"Property {name} already exists")
        ptype, field_type = body["type"], body["fieldType"]
        if field_type not in _FIELD_TYPES.get(ptype, frozenset()):
            raise _HubSpotError(
                400, "VALIDATION_ERROR", f"fieldType {field_type} is not valid for type {ptype}"
            )
        if body["groupName"] not in self.groups:
            raise _HubSpotError(
                400, "VALIDATION_ERROR", f"Property group {body['groupName']} does not exist"
            )
        self._check_options(body.get("options") or [])
        record = self._property_record(body)
        self.properties[name] = record
        return JSONResponse(record, status_code=201)

    @staticmethod
    def _check_options(options: Sequence[Any]) -> None:
        seen: set[str] = set()
        for option in options:
            value = option.get("value") if isinstance(option, dict) else None
            if not isinstance(value, str) or not value or not option.get("label"):
                raise _HubSpotError(
                    400, "VALIDATION_ERROR", "Each option needs a label and a value"
                )
            if ";" in value:
                raise _HubSpotError(
                    400, "VALIDATION_ERROR", f"Option value {value!r} may not contain ';'"
                )
            if value in seen:
                raise _HubSpotError(400, "VALIDATION_ERROR", f"Duplicate option value {value!r}")
            seen.add(value)

    async def patch_property(self, request: Request) -> Any:
        self._object_type(request)
        name = request.path_params["name"]
        prop = self.properties.get(name)
        if prop is None:
            raise _HubSpotError(404, "OBJECT_NOT_FOUND", f"Property {name} does not exist")
        body = await self._object_body(request)
        if prop["hubspotDefined"] and "options" in body and name != "hs_language":
            raise _HubSpotError(400, "VALIDATION_ERROR", f"Property {name} options are read-only")
        if "options" in body:
            self._check_options(body["options"] or [])
            prop["options"] = self._property_record({**prop, "options": body["options"]})["options"]
        for key in ("label", "description", "groupName", "hidden", "displayOrder", "formField"):
            if key in body:
                prop[key] = body[key]
        prop["updatedAt"] = _iso(self.clock.now())
        return prop

    async def get_groups(self, request: Request) -> Any:
        self._object_type(request)
        return {"results": list(self.groups.values())}

    async def create_group(self, request: Request) -> Any:
        self._object_type(request)
        body = await self._object_body(request)
        name = str(body.get("name") or "")
        if not name or not body.get("label"):
            raise _HubSpotError(400, "VALIDATION_ERROR", "Property groups need a name and a label")
        if name in self.groups:
            raise _HubSpotError(
                409, "OBJECT_ALREADY_EXISTS", f"Property group {name} already exists"
            )
        group = {
            "name": name,
            "label": body["label"],
            "displayOrder": body.get("displayOrder", -1),
            "archived": False,
        }
        self.groups[name] = group
        return JSONResponse(group, status_code=201)

    # -- contact state ------------------------------------------------------------------------

    def _find_email(self, email: str) -> _Contact | None:
        contact_id = self._by_email.get(email.strip().lower())
        if contact_id is None:
            return None
        record = self.contacts[contact_id]
        return None if record.archived else record

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
        if name == "email" and not _EMAIL.match(value.strip()):
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
            return _iso(when), None
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
        self, record: _Contact, values: Mapping[str, Any], *, allow_read_only: bool = False
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
                raise _HubSpotError(
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
            record.properties["lastmodifieddate"] = _iso(now)
            if self.contacts.get(record.id) is record:
                self._reindex(record)
        return []

    # -- indexes and batch journal -------------------------------------------------------------

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

    def _begin_batch(self) -> _Journal:
        """Start journaling changes so `_undo_batch` can restore contacts and the email index."""
        self._journal = _Journal(next_id=self._next_id)
        return self._journal

    def _end_batch(self) -> None:
        self._journal = None

    def _undo_batch(self, journal: _Journal) -> None:
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

    def _reindex(self, record: _Contact) -> None:
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
    ) -> tuple[_Contact | None, list[dict[str, Any]]]:
        if not any(values.get(k) for k in ("email", "firstname", "lastname")):
            raise _HubSpotError(
                400,
                "VALIDATION_ERROR",
                "At least one of email, firstname or lastname must be set to create a contact",
            )
        email = str(values.get("email") or "").strip().lower()
        if email and self._find_email(email):
            owner = self._by_email[email]
            raise _HubSpotError(
                409,
                "CONFLICT",
                f"Contact already exists. Existing ID: {owner}",
                context={"existingId": [owner]},
            )
        now = self.clock.now()
        record = _Contact(
            id=str(self._next_id), properties={}, history={}, created_at=now, updated_at=now
        )
        errors = self._apply(record, values, allow_read_only=allow_read_only)
        if errors:
            return None, errors
        self._next_id += 1
        record.properties.update(
            hs_object_id=record.id, createdate=_iso(now), lastmodifieddate=_iso(now)
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
        self, record: _Contact, properties: Sequence[str] | None, *, default: Sequence[str]
    ) -> dict[str, Any]:
        names = list(properties) if properties else list(default)
        return {
            "id": record.id,
            "properties": {n: record.properties.get(n) for n in names},
            "createdAt": _iso(record.created_at),
            "updatedAt": _iso(record.updated_at),
            "archived": record.archived,
            "url": f"https://app.hubspot.com/contacts/{self.portal_id}/record/0-1/{record.id}",
        }

    @staticmethod
    def _query_list(request: Request, key: str) -> list[str]:
        values: list[str] = []
        for item in request.query_params.getlist(key):
            values += [v for v in item.split(",") if v]
        return values

    def _lookup(self, ident: str, id_property: str | None) -> _Contact | None:
        if id_property in (None, "", "hs_object_id"):
            record = self.contacts.get(ident)
            return None if record is None or record.archived else record
        if id_property == "email":
            return self._find_email(ident)
        for record in self.contacts.values():
            if not record.archived and record.properties.get(id_property) == ident:
                return record
        return None

    # -- contacts endpoints -------------------------------------------------------------------

    async def list_contacts(self, request: Request) -> Any:
        limit = int(request.query_params.get("limit", "10"))
        if limit > BATCH_INPUTS or limit < 1:
            raise _HubSpotError(400, "VALIDATION_ERROR", "limit must be between 1 and 100")
        after = int(request.query_params.get("after", "0") or "0")
        archived = request.query_params.get("archived", "false").lower() == "true"
        ids = sorted(
            (int(i) for i, r in self.contacts.items() if r.archived == archived and int(i) >= after)
        )
        page = ids[:limit]
        props = self._query_list(request, "properties")
        body: dict[str, Any] = {
            "results": [
                self._render(self.contacts[str(i)], props, default=_DEFAULT_GET_PROPERTIES)
                for i in page
            ]
        }
        if len(ids) > limit:
            nxt = str(ids[limit])
            body["paging"] = {"next": {"after": nxt, "link": f"{request.url.path}?after={nxt}"}}
        return body

    async def get_contact(self, request: Request) -> Any:
        ident = request.path_params["contact_id"]
        record = self._lookup(ident, request.query_params.get("idProperty"))
        if record is None:
            raise _HubSpotError(
                404,
                "OBJECT_NOT_FOUND",
                "Object not found.  objectId are usually numeric.",
                context={"id": [ident]},
            )
        return self._render(
            record, self._query_list(request, "properties"), default=_DEFAULT_GET_PROPERTIES
        )

    async def create_contact(self, request: Request) -> Any:
        body = await self._object_body(request)
        record, errors = self._create(body.get("properties") or {})
        if errors:
            raise self._validation(errors)
        assert record is not None
        return JSONResponse(
            self._render(record, list(record.properties), default=()), status_code=201
        )

    def _validation(self, errors: list[dict[str, Any]]) -> _HubSpotError:
        return _HubSpotError(
            400,
            "VALIDATION_ERROR",
            f"Property values were not valid: {json.dumps(errors)}",
            errors=[
                {
                    "message": e["message"],
                    "code": e["error"],
                    "context": {"propertyName": [e["name"]]},
                }
                for e in errors
            ],
        )

    async def patch_contact(self, request: Request) -> Any:
        ident = request.path_params["contact_id"]
        record = self._lookup(ident, request.query_params.get("idProperty"))
        if record is None:
            raise _HubSpotError(
                404,
                "OBJECT_NOT_FOUND",
                "Object not found.  objectId are usually numeric.",
                context={"id": [ident]},
            )
        body = await self._object_body(request)
        errors = self._apply(record, body.get("properties") or {})
        if errors:
            raise self._validation(errors)
        return self._render(record, list(record.properties), default=())

    async def archive_contact(self, request: Request) -> Any:
        record = self.contacts.get(request.path_params["contact_id"])
        if record is not None:
            record.archived = True
            record.updated_at = self.clock.now()
        return Response(status_code=204)

    async def batch_archive(self, request: Request) -> Any:
        body = await self._object_body(request)
        for item in self._inputs(body):
            record = self.contacts.get(str(item.get("id")))
            if record is not None:
                record.archived = True
        return Response(status_code=204)

    def _batch_response(
        self,
        results: list[dict[str, Any]],
        errors: list[dict[str, Any]],
        started: dt.datetime,
        *,
        ok_status: int = 200,
    ) -> Response:
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": _iso(started),
            "completedAt": _iso(self.clock.now()),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return JSONResponse(body, status_code=207)
        return JSONResponse(body, status_code=ok_status)

    def _standard_error(
        self,
        category: str,
        message: str,
        context: dict[str, list[str]],
        errors: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        return {
            "status": "error",
            "category": category,
            "message": message,
            "context": context,
            "errors": list(errors),
            "links": {},
        }

    async def batch_read(self, request: Request) -> Any:
        started = self.clock.now()
        body = await self._object_body(request)
        inputs = self._inputs(body)
        id_property = body.get("idProperty")
        props = body.get("properties") or []
        results, missing = [], []
        for item in inputs:
            ident = str(item.get("id"))
            record = self._lookup(ident, id_property)
            if record is None:
                missing.append(ident)
            else:
                results.append(self._render(record, props, default=_DEFAULT_GET_PROPERTIES))
        errors = []
        if missing:
            errors.append(
                self._standard_error(
                    "OBJECT_NOT_FOUND",
                    f"Could not get some CONTACT objects, they may be deleted or not exist. "
                    f"Check that ids are valid. Ids: {', '.join(missing)}",
                    {"ids": missing},
                )
            )
        return self._batch_response(results, errors, started)

    async def batch_create(self, request: Request) -> Any:
        """Create; without an objectWriteTraceId on every input one bad input fails them all."""
        started = self.clock.now()
        body = await self._object_body(request)
        inputs = self._inputs(body)
        traced = all(isinstance(i, dict) and i.get("objectWriteTraceId") for i in inputs)
        journal = self._begin_batch()
        results, errors = [], []
        try:
            for item in inputs:
                trace = item.get("objectWriteTraceId")
                try:
                    record, problems = self._create(item.get("properties") or {})
                except _HubSpotError as exc:
                    if not traced:
                        raise
                    errors.append(
                        self._standard_error(
                            exc.category, exc.message, {"objectWriteTraceId": [str(trace)]}
                        )
                    )
                    continue
                if problems:
                    if not traced:
                        raise self._validation(problems)
                    errors.append(
                        self._standard_error(
                            "VALIDATION_ERROR",
                            f"Property values were not valid: {json.dumps(problems)}",
                            {"objectWriteTraceId": [str(trace)]},
                        )
                    )
                    continue
                assert record is not None
                out = self._render(record, list(record.properties), default=())
                if trace:
                    out["objectWriteTraceId"] = trace
                results.append(out)
        except _HubSpotError:
            self._undo_batch(journal)
            raise
        finally:
            self._end_batch()
        return self._batch_response(results, errors, started, ok_status=201)

    async def batch_update(self, request: Request) -> Any:
        started = self.clock.now()
        body = await self._object_body(request)
        results, errors = [], []
        for item in self._inputs(body):
            ident = str(item.get("id"))
            record = self._lookup(ident, item.get("idProperty"))
            if record is None:
                errors.append(
                    self._standard_error(
                        "OBJECT_NOT_FOUND", f"Object {ident} not found", {"ids": [ident]}
                    )
                )
                continue
            problems = self._apply(record, item.get("properties") or {})
            if problems:
                errors.append(
                    self._standard_error(
                        "VALIDATION_ERROR",
                        f"Property values were not valid: {json.dumps(problems)}",
                        {"ids": [ident]},
                    )
                )
                continue
            results.append(self._render(record, list(record.properties), default=()))
        return self._batch_response(results, errors, started)

    async def batch_upsert(self, request: Request) -> Any:
        """Upsert by `idProperty` (email or a unique property); 207 with per-input errors."""
        started = self.clock.now()
        body = await self._object_body(request)
        inputs = self._inputs(body)
        ids = [str(i.get("id", "")).strip().lower() for i in inputs if isinstance(i, dict)]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise _HubSpotError(
                400, "VALIDATION_ERROR", f"Duplicate IDs found in batch input: {duplicates}"
            )
        failing = (
            self.faults.failing_indexes(len(inputs))
            if self.partial_failure_requested(request)
            else set()
        )
        results, errors = [], []
        journal = self._begin_batch()
        try:
            for index, item in enumerate(inputs):
                ident = str(item.get("id", ""))
                id_property = item.get("idProperty")
                trace = item.get("objectWriteTraceId")
                context = {"ids": [ident]}
                if trace:
                    context["objectWriteTraceId"] = [str(trace)]
                if id_property not in ("email",) and not self.properties.get(
                    str(id_property), {}
                ).get("hasUniqueValue"):
                    errors.append(
                        self._standard_error(
                            "VALIDATION_ERROR",
                            "Unable to perform update/upsert by non-unique 0-1 property "
                            f"{id_property}",
                            context,
                        )
                    )
                    continue
                if index in failing:
                    errors.append(
                        self._standard_error(
                            "VALIDATION_ERROR",
                            "Property values were not valid: [injected failure]",
                            context,
                        )
                    )
                    continue
                properties = dict(item.get("properties") or {})
                record = self._lookup(ident, id_property)
                created = record is None
                try:
                    if record is None:
                        properties.setdefault(str(id_property), ident)
                        record, problems = self._create(properties)
                    else:
                        problems = self._apply(record, properties)
                except _HubSpotError as exc:
                    errors.append(self._standard_error(exc.category, exc.message, context))
                    continue
                if problems:
                    errors.append(
                        self._standard_error(
                            "VALIDATION_ERROR",
                            f"Property values were not valid: {json.dumps(problems)}",
                            context,
                        )
                    )
                    continue
                assert record is not None
                out = self._render(record, list(record.properties), default=())
                out["new"] = created
                if trace:
                    out["objectWriteTraceId"] = trace
                results.append(out)
        finally:
            self._end_batch()
        if errors and self.email_upsert_all_or_nothing:
            # "Partial upserts are not supported when using email as the idProperty"
            self._undo_batch(journal)
            first = errors[0]
            raise _HubSpotError(
                400, str(first["category"]), str(first["message"]), context=first["context"]
            )
        return self._batch_response(results, errors, started)

    # -- search -------------------------------------------------------------------------------

    async def search(self, request: Request) -> Any:
        body = await self._object_body(request)
        if len(json.dumps(body)) > 3000 + 2000:
            raise _HubSpotError(400, "VALIDATION_ERROR", "The request body is too long")
        limit = int(body.get("limit") or 10)
        if limit > SEARCH_PAGE:
            raise _HubSpotError(
                400, "VALIDATION_ERROR", f"limit {limit} exceeds the maximum of 200"
            )
        after = int(body.get("after") or 0)
        if after + limit > self.search_result_cap:
            raise _HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"Search results are limited to {self.search_result_cap} records; "
                f"after {after} with limit {limit} goes beyond",
            )
        groups = body.get("filterGroups") or []
        total_filters = sum(len(g.get("filters") or []) for g in groups)
        if (
            len(groups) > self.search_max_groups
            or any(len(g.get("filters") or []) > self.search_max_filters_per_group for g in groups)
            or total_filters > self.search_max_filters
        ):
            raise _HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"Too many filters: at most {self.search_max_groups} filterGroups of "
                f"{self.search_max_filters_per_group} filters, {self.search_max_filters} in all",
            )
        for group in groups:
            for flt in group.get("filters") or []:
                name = flt.get("propertyName")
                if name not in self.properties:
                    raise _HubSpotError(
                        400,
                        "VALIDATION_ERROR",
                        f"There was a problem with the request: property {name} does not exist",
                    )
                if flt.get("operator") in ("IN", "NOT_IN") and not isinstance(
                    flt.get("values"), list
                ):
                    raise _HubSpotError(
                        400, "VALIDATION_ERROR", "IN and NOT_IN filters need 'values' (an array)"
                    )
        sorts = body.get("sorts") or []
        if len(sorts) > 1:
            raise _HubSpotError(400, "VALIDATION_ERROR", "Only one sort is allowed")
        visible_before = self.clock.now() - dt.timedelta(seconds=self.search_delay)
        candidates = self._search_candidates(groups)
        self.last_search_examined = len(candidates)
        matches = [
            r
            for r in candidates
            if not r.archived
            and r.updated_at <= visible_before
            and (
                not groups
                or any(
                    all(
                        search_filter_accepts(
                            f, r.properties, self.properties[f["propertyName"]]["type"]
                        )
                        for f in g.get("filters") or []
                    )
                    for g in groups
                )
            )
        ]
        matches.sort(key=lambda r: int(r.id))
        if sorts:
            sort = sorts[0]
            if isinstance(sort, str):
                name, descending = sort.lstrip("-"), sort.startswith("-")
            else:
                name, descending = sort.get("propertyName"), sort.get("direction") == "DESCENDING"
            ptype = self.properties.get(str(name), {}).get("type")

            def key(r: _Contact) -> tuple[int, Any]:
                raw = r.properties.get(str(name))
                if raw is None:
                    return (1, 0)
                if ptype in ("date", "datetime"):
                    return (0, to_epoch_ms(raw) or 0)
                if ptype == "number":
                    return (0, float(raw))
                return (0, raw.lower())

            matches.sort(key=key, reverse=descending)
        page = matches[after : after + limit]
        result: dict[str, Any] = {
            "total": len(matches),
            "results": [
                self._render(r, body.get("properties"), default=_DEFAULT_SEARCH_PROPERTIES)
                for r in page
            ],
        }
        if after + limit < len(matches):
            result["paging"] = {"next": {"after": str(after + limit)}}
        return result

    def _group_candidates(self, group: Mapping[str, Any]) -> list[tuple[int, int]] | None:
        """The (epoch ms, id) index entries of the contacts `group` can accept: the narrowest
        range its filters put on one indexed property; None when no filter bounds one.

        An unparseable bound gives no entries: such a filter accepts nothing, as
        `search_filter_accepts` decides.
        """
        bounds: dict[str, tuple[int | None, int | None]] = {}
        for flt in group.get("filters") or []:
            name = flt.get("propertyName")
            operator = flt.get("operator")
            if (
                name not in self._sorted
                or operator not in _RANGE_OPERATORS
                or self.properties[name]["type"] not in ("date", "datetime")
            ):
                continue
            value = to_epoch_ms(str(flt.get("value", "")))
            top = value
            if operator == "BETWEEN":
                top = to_epoch_ms(str(flt["highValue"])) if flt.get("highValue") else None
            if value is None or top is None:
                return []
            bottom = {"GT": value + 1, "LT": None, "LTE": None}.get(operator, value)
            top = {"LT": value - 1, "GT": None, "GTE": None}.get(operator, top)
            low, high = bounds.get(name, (None, None))
            if bottom is not None:
                low = bottom if low is None else max(low, bottom)
            if top is not None:
                high = top if high is None else min(high, top)
            bounds[name] = (low, high)
        narrowest: list[tuple[int, int]] | None = None
        for name, (low, high) in bounds.items():
            entries = self._sorted[name]
            first = 0 if low is None else bisect.bisect_left(entries, (low, -1))
            last = len(entries) if high is None else bisect.bisect_right(entries, (high, 1 << 62))
            if narrowest is None or last - first < len(narrowest):
                narrowest = entries[first:last]
        return narrowest

    def _search_candidates(self, groups: Sequence[Mapping[str, Any]]) -> list[_Contact]:
        """The contacts a search must evaluate: when every filter group bounds an indexed
        property, only those the sorted indexes place within the groups' ranges (a superset
        of the matches); otherwise all of them."""
        slices = [self._group_candidates(g) for g in groups]
        if not groups or any(s is None for s in slices):
            return list(self.contacts.values())
        if sum(len(s or ()) for s in slices) * 2 >= len(self.contacts):
            return list(self.contacts.values())  # as many: a scan is cheaper than lookups
        if len(slices) == 1:
            return [self.contacts[str(entry[1])] for entry in slices[0] or ()]
        ids = {entry[1] for entries in slices for entry in entries or ()}
        return [self.contacts[str(i)] for i in ids]

    # -- lists --------------------------------------------------------------------------------

    def _list_or_404(self, list_id: str) -> _List:
        found = self.lists.get(list_id)
        if found is None or found.deleted:
            raise _HubSpotError(404, "OBJECT_NOT_FOUND", f"List {list_id} does not exist.")
        return found

    def _view(self, record: _Contact, depth: int = 0) -> RecordView:
        email = (record.properties.get("email") or "").lower()

        def in_list(list_id: str) -> bool:
            other = self.lists.get(list_id)
            if other is None or other.deleted or depth > 10:
                return False
            return record.id in self._members(other, depth + 1)

        def subscription(sub_id: str) -> str:
            status = self.subscription_status(email, int(sub_id)) if email else "NOT_SPECIFIED"
            return {"SUBSCRIBED": "OPT_IN", "NOT_SUBSCRIBED": "OPT_OUT"}.get(status, "NOT_OPTED")

        return RecordView(record.properties, record.history, in_list, subscription)

    def _members(self, lst: _List, depth: int = 0) -> dict[str, dt.datetime]:
        """Members of a list; a DYNAMIC list is evaluated against current records now."""
        if lst.processing_type != "DYNAMIC":
            return {
                m: t
                for m, t in lst.members.items()
                if m in self.contacts and not self.contacts[m].archived
            }
        assert lst.filter_branch is not None
        now = self.clock.now()
        current = {
            r.id
            for r in self.contacts.values()
            if not r.archived and branch_accepts(lst.filter_branch, self._view(r, depth), now)
        }
        for gone in set(lst.members) - current:
            del lst.members[gone]
        for new in current - set(lst.members):
            lst.members[new] = now
        return dict(lst.members)

    def _render_list(self, lst: _List, *, include_filters: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "listId": lst.id,
            "listVersion": lst.version,
            "name": lst.name,
            "objectTypeId": "0-1",
            "processingType": lst.processing_type,
            "processingStatus": "COMPLETE",
            "createdAt": _iso(lst.created_at),
            "updatedAt": _iso(lst.updated_at),
            "filtersUpdatedAt": _iso(lst.filters_updated_at),
            "createdById": "1",
            "updatedById": "1",
            "size": len(self._members(lst)),
        }
        if include_filters and lst.filter_branch is not None:
            out["filterBranch"] = lst.filter_branch
        return out

    def _validate_branch(self, branch: Any) -> dict[str, Any]:
        try:
            validate_branch(
                branch,
                lambda name: (self.properties.get(name) or {}).get("type"),
                lambda list_id: list_id in self.lists and not self.lists[list_id].deleted,
                lambda sub: sub.isdigit() and int(sub) in self.subscriptions,
            )
        except FilterError as exc:
            raise _HubSpotError(
                400, "VALIDATION_ERROR", str(exc), subCategory="ILS.INVALID_FILTER_BRANCH"
            ) from None
        return normalise_branch(branch)

    async def create_list(self, request: Request) -> Any:
        body = await self._object_body(request)
        name = str(body.get("name") or "").strip()
        processing = body.get("processingType")
        if (
            not name
            or body.get("objectTypeId") not in ("0-1",)
            or processing not in ("MANUAL", "DYNAMIC", "SNAPSHOT")
        ):
            raise _HubSpotError(
                400,
                "VALIDATION_ERROR",
                "name, objectTypeId (0-1 for contacts) and processingType (MANUAL, DYNAMIC or "
                "SNAPSHOT) are required",
            )
        if any(lst.name.lower() == name.lower() and not lst.deleted for lst in self.lists.values()):
            raise _HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"A list named '{name}' already exists.",
                subCategory="ILS.DUPLICATE_LIST_NAMES",
            )
        branch = body.get("filterBranch")
        if processing == "MANUAL" and branch is not None:
            raise _HubSpotError(400, "VALIDATION_ERROR", "MANUAL lists cannot have a filterBranch")
        if processing in ("DYNAMIC", "SNAPSHOT") and branch is None:
            raise _HubSpotError(400, "VALIDATION_ERROR", f"{processing} lists need a filterBranch")
        normalised = self._validate_branch(branch) if branch is not None else None
        now = self.clock.now()
        lst = _List(str(self._next_list_id), name, str(processing), normalised, now, now, now)
        self._next_list_id += 1
        self.lists[lst.id] = lst
        if processing == "SNAPSHOT":
            assert normalised is not None
            lst.processing_type = "DYNAMIC"
            lst.members = self._members(lst)
            lst.processing_type = "SNAPSHOT"
        return {"list": self._render_list(lst, include_filters=True)}

    async def get_lists(self, request: Request) -> Any:
        include = request.query_params.get("includeFilters", "").lower() == "true"
        ids = self._query_list(request, "listIds")
        found = [self.lists[i] for i in ids if i in self.lists and not self.lists[i].deleted]
        return {"lists": [self._render_list(x, include_filters=include) for x in found]}

    def _search_result(self, lst: _List) -> dict[str, Any]:
        """A list as list search returns it: default properties under additionalProperties."""
        out = self._render_list(lst, include_filters=False)
        size = out.pop("size")
        last_added = max(lst.members.values(), default=None)
        properties = {
            "hs_list_size": str(size),
            "hs_last_record_added_at": _iso(last_added) if last_added else "",
            "hs_folder_name": "",
            "hs_list_reference_count": "0",
        }
        out["additionalProperties"] = properties  # the defaults; others are not emulated
        return out

    async def search_lists(self, request: Request) -> Any:
        body = await self._object_body(request)
        count = int(body.get("count") or 20)
        if count > 500:
            raise _HubSpotError(400, "VALIDATION_ERROR", "count must be at most 500")
        offset = int(body.get("offset") or 0)
        query = str(body.get("query") or "").lower()
        kinds = set(body.get("processingTypes") or []) or {"MANUAL", "DYNAMIC", "SNAPSHOT"}
        ids = {str(i) for i in body.get("listIds") or []}
        found = [
            x
            for x in self.lists.values()
            if not x.deleted
            and query in x.name.lower()
            and x.processing_type in kinds
            and (not ids or x.id in ids)
        ]
        page = found[offset : offset + count]
        return {
            "lists": [self._search_result(x) for x in page],
            "offset": offset + len(page),
            "hasMore": offset + count < len(found),
            "total": len(found),
        }

    async def get_list(self, request: Request) -> Any:
        lst = self._list_or_404(request.path_params["list_id"])
        include = request.query_params.get("includeFilters", "").lower() == "true"
        return {"list": self._render_list(lst, include_filters=include)}

    async def get_list_by_name(self, request: Request) -> Any:
        name = request.path_params["name"].lower()
        for lst in self.lists.values():
            if not lst.deleted and lst.name.lower() == name:
                include = request.query_params.get("includeFilters", "").lower() == "true"
                return {"list": self._render_list(lst, include_filters=include)}
        raise _HubSpotError(
            404, "OBJECT_NOT_FOUND", f"List with name {request.path_params['name']} not found."
        )

    async def delete_list(self, request: Request) -> Any:
        lst = self._list_or_404(request.path_params["list_id"])
        lst.deleted = True
        return Response(status_code=204)

    async def update_list_filters(self, request: Request) -> Any:
        lst = self._list_or_404(request.path_params["list_id"])
        if lst.processing_type != "DYNAMIC":
            raise _HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"List {lst.id} is a {lst.processing_type} list: only DYNAMIC lists have filters",
            )
        body = await self._object_body(request)
        lst.filter_branch = self._validate_branch(body.get("filterBranch"))
        now = self.clock.now()
        lst.version += 1
        lst.updated_at = lst.filters_updated_at = now
        return {"updatedList": self._render_list(lst, include_filters=True)}

    async def update_list_name(self, request: Request) -> Any:
        lst = self._list_or_404(request.path_params["list_id"])
        name = request.query_params.get("listName", "").strip()
        if not name:
            raise _HubSpotError(400, "VALIDATION_ERROR", "listName is required")
        lst.name = name
        lst.updated_at = self.clock.now()
        return {"updatedList": self._render_list(lst, include_filters=False)}

    async def get_memberships(self, request: Request) -> Any:
        lst = self._list_or_404(request.path_params["list_id"])
        limit = int(request.query_params.get("limit", "100"))
        if limit > MEMBERSHIP_PAGE or limit < 1:
            raise _HubSpotError(400, "VALIDATION_ERROR", "limit must be between 1 and 250")
        after = request.query_params.get("after")
        members = sorted(self._members(lst).items(), key=lambda kv: int(kv[0]))
        start = int(after) if after else 0
        page = members[start : start + limit]
        body: dict[str, Any] = {
            "results": [{"recordId": m, "membershipTimestamp": _iso(t)} for m, t in page],
            "total": len(members),
        }
        if start + limit < len(members):
            body["paging"] = {"next": {"after": str(start + limit)}}
        return body

    def _manual(self, list_id: str) -> _List:
        lst = self._list_or_404(list_id)
        if lst.processing_type not in ("MANUAL", "SNAPSHOT"):
            raise _HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"List {list_id} has processingType {lst.processing_type}; memberships can only "
                "be changed for MANUAL or SNAPSHOT lists",
            )
        return lst

    def _change_members(
        self, lst: _List, add: Sequence[Any], remove: Sequence[Any]
    ) -> dict[str, Any]:
        if len(add) + len(remove) > self.membership_write_limit:
            raise _HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"At most {self.membership_write_limit} record ids per call",
            )
        now = self.clock.now()
        added, removed, missing = [], [], []
        for raw in add:
            rid = str(raw)
            if rid not in self.contacts or self.contacts[rid].archived:
                missing.append(rid)
            elif rid not in lst.members:
                lst.members[rid] = now
                added.append(rid)
        for raw in remove:
            rid = str(raw)
            if rid in lst.members:
                del lst.members[rid]
                removed.append(rid)
            elif rid not in self.contacts:
                missing.append(rid)
        if added or removed:
            lst.updated_at = now
        return {"recordIdsMissing": missing, "recordIdsRemoved": removed, "recordsIdsAdded": added}

    async def add_members(self, request: Request) -> Any:
        lst = self._manual(request.path_params["list_id"])
        body = await self._body(request)
        if not isinstance(body, list):
            raise _HubSpotError(400, "VALIDATION_ERROR", "The body must be an array of record ids")
        return self._change_members(lst, body, [])

    async def remove_members(self, request: Request) -> Any:
        lst = self._manual(request.path_params["list_id"])
        body = await self._body(request)
        if not isinstance(body, list):
            raise _HubSpotError(400, "VALIDATION_ERROR", "The body must be an array of record ids")
        return self._change_members(lst, [], body)

    async def add_and_remove_members(self, request: Request) -> Any:
        lst = self._manual(request.path_params["list_id"])
        body = await self._object_body(request)
        return self._change_members(
            lst, body.get("recordIdsToAdd") or [], body.get("recordIdsToRemove") or []
        )

    # -- communication preferences ------------------------------------------------------------

    async def definitions(self, request: Request) -> Any:
        definitions = list(self.subscriptions.values())
        if "/v3/" in request.url.path:
            return {"subscriptionDefinitions": [{**d, "id": str(d["id"])} for d in definitions]}
        now = _iso(self.clock.now())
        results = [{**d, "id": str(d["id"])} for d in definitions]
        return {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}

    def _sub(self, raw: Any) -> int:
        try:
            sub_id = int(raw)
        except (TypeError, ValueError):
            sub_id = -1
        if sub_id not in self.subscriptions:
            raise _HubSpotError(400, "VALIDATION_ERROR", f"Subscription {raw} does not exist")
        return sub_id

    @staticmethod
    def _address(raw: str) -> str:
        email = raw.strip().lower()
        if not _EMAIL.match(email):
            raise _HubSpotError(400, "VALIDATION_ERROR", f"{raw} is not a valid email address")
        return email

    def _public_status(self, email: str, sub_id: int, reason: str | None = None) -> dict[str, Any]:
        status = self.statuses.get(email, {}).get(sub_id)
        all_out = email in self.opted_out_of_all
        value = (
            "UNSUBSCRIBED"
            if all_out
            else {"SUBSCRIBED": "SUBSCRIBED", "NOT_SUBSCRIBED": "UNSUBSCRIBED"}.get(
                status.status if status else "", "NOT_SPECIFIED"
            )
        )
        when = status.timestamp if status else self.opted_out_of_all.get(email, self.clock.now())
        out: dict[str, Any] = {
            "subscriberIdString": email,
            "subscriptionId": sub_id,
            "subscriptionName": self.subscriptions[sub_id]["name"],
            "channel": "EMAIL",
            "status": value,
            "source": "PORTAL_WIDE_STATUS" if all_out else "SUBSCRIPTION_STATUS",
            "timestamp": _iso(when),
        }
        if status and status.legal_basis:
            out["legalBasis"] = status.legal_basis
            out["legalBasisExplanation"] = status.explanation or ""
        if reason:
            out["setStatusSuccessReason"] = reason
        return out

    def _set(
        self, email: str, sub_id: int, subscribed: bool, basis: str | None, explanation: str | None
    ) -> str:
        current = self.subscription_status(email, sub_id)
        wanted = "SUBSCRIBED" if subscribed else "NOT_SUBSCRIBED"
        if current == wanted:
            return "NO_STATUS_CHANGE"
        reason = "REQUESTED_CHANGE_OCCURRED"
        if subscribed and current == "NOT_SUBSCRIBED":
            reason = "RESUBSCRIBE_OCCURRED"
            self.opted_out_of_all.pop(email, None)
        self.statuses.setdefault(email, {})[sub_id] = _Status(
            wanted, self.clock.now(), basis, explanation
        )
        self._sync_optout_properties(email)
        return reason

    def _opt_out_of_all(self, email: str) -> None:
        self.opted_out_of_all[email] = self.clock.now()
        self._sync_optout_properties(email)

    async def v3_status(self, request: Request) -> Any:
        email = self._address(request.path_params["email"])
        statuses = []
        for sub_id, sub in self.subscriptions.items():
            status = self.subscription_status(email, sub_id)
            entry = {
                "id": str(sub_id),
                "name": sub["name"],
                "description": sub["description"],
                "status": "SUBSCRIBED" if status == "SUBSCRIBED" else "NOT_SUBSCRIBED",
                "sourceOfStatus": "PORTAL_WIDE_STATUS"
                if email in self.opted_out_of_all
                else "SUBSCRIPTION_STATUS",
            }
            stored = self.statuses.get(email, {}).get(sub_id)
            if stored and stored.legal_basis:
                entry["legalBasis"] = stored.legal_basis
                entry["legalBasisExplanation"] = stored.explanation or ""
            statuses.append(entry)
        return {"recipient": email, "subscriptionStatuses": statuses}

    async def _v3_change(self, request: Request, subscribe: bool) -> Any:
        body = await self._object_body(request)
        email = self._address(str(body.get("emailAddress") or ""))
        sub_id = self._sub(body.get("subscriptionId"))
        if subscribe and self.subscription_status(email, sub_id) == "NOT_SUBSCRIBED":
            raise _HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"{email} is not allowed to be resubscribed: the contact opted out and must "
                "resubscribe themselves",
            )
        self._set(
            email, sub_id, subscribe, body.get("legalBasis"), body.get("legalBasisExplanation")
        )
        sub = self.subscriptions[sub_id]
        return {
            "id": str(sub_id),
            "name": sub["name"],
            "description": sub["description"],
            "status": "SUBSCRIBED" if subscribe else "NOT_SUBSCRIBED",
            "sourceOfStatus": "SUBSCRIPTION_STATUS",
        }

    async def v3_subscribe(self, request: Request) -> Any:
        return await self._v3_change(request, True)

    async def v3_unsubscribe(self, request: Request) -> Any:
        return await self._v3_change(request, False)

    def _channel(self, request: Request) -> None:
        if request.query_params.get("channel", "EMAIL") != "EMAIL":
            raise _HubSpotError(400, "VALIDATION_ERROR", "channel must be EMAIL")

    async def v4_status(self, request: Request) -> Any:
        self._channel(request)
        email = self._address(request.path_params["email"])
        now = _iso(self.clock.now())
        return {
            "status": "COMPLETE",
            "results": [self._public_status(email, s) for s in self.subscriptions],
            "startedAt": now,
            "completedAt": now,
        }

    async def v4_set_status(self, request: Request) -> Any:
        email = self._address(request.path_params["email"])
        body = await self._object_body(request)
        if body.get("channel") != "EMAIL":
            raise _HubSpotError(400, "VALIDATION_ERROR", "channel must be EMAIL")
        sub_id = self._sub(body.get("subscriptionId"))
        state = body.get("statusState")
        if state not in ("SUBSCRIBED", "UNSUBSCRIBED", "NOT_SPECIFIED"):
            raise _HubSpotError(
                400,
                "VALIDATION_ERROR",
                "statusState must be SUBSCRIBED, UNSUBSCRIBED or NOT_SPECIFIED",
            )
        started = _iso(self.clock.now())
        reason = self._write_status(
            email, sub_id, state, body.get("legalBasis"), body.get("legalBasisExplanation")
        )
        return {
            "status": "COMPLETE",
            "results": [self._public_status(email, sub_id, reason)],
            "startedAt": started,
            "completedAt": _iso(self.clock.now()),
        }

    def _write_status(
        self, email: str, sub_id: int, state: str, basis: Any, explanation: Any
    ) -> str:
        """One v4 status write (single or batch endpoint alike); its setStatusSuccessReason.

        v4 re-subscribes an opted-out address when asked (as HubSpot does); only v3 refuses.
        """
        self.status_writes.append((email, sub_id, state))
        if state == "NOT_SPECIFIED":
            self.statuses.get(email, {}).pop(sub_id, None)
            self._sync_optout_properties(email)
            return "REQUESTED_CHANGE_OCCURRED"
        return self._set(
            email,
            sub_id,
            state == "SUBSCRIBED",
            basis if isinstance(basis, str) else None,
            explanation if isinstance(explanation, str) else None,
        )

    def _enterprise_only(self, scope: str) -> None:
        """Batch status calls need Marketing Hub Enterprise: 403 MISSING_SCOPES otherwise."""
        if self.enterprise_consent:
            return
        raise _HubSpotError(
            403,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call.",
            errors=[
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": [scope]},
                }
            ],
        )

    @staticmethod
    def _status_request_problem(index: int, item: Any) -> str | None:
        """What makes batch input `index` not a `PublicStatusRequest` (the spec's schema)."""
        where = f"inputs[{index}]"
        if not isinstance(item, dict):
            return f"{where}: expected an object"
        for name in ("channel", "statusState", "subscriberIdString", "subscriptionId"):
            if name not in item:
                return f"{where}.{name}: is required"
        if not isinstance(item["subscriberIdString"], str):
            return f"{where}.subscriberIdString: expected a string"
        sub = item["subscriptionId"]
        if isinstance(sub, bool) or not isinstance(sub, int):
            return f"{where}.subscriptionId: expected an integer"
        enums = (
            ("channel", _CHANNELS),
            ("statusState", _STATUS_STATES),
            ("legalBasis", _LEGAL_BASES),
        )
        for name, allowed in enums:
            if name in item and item[name] not in allowed:
                return f"{where}.{name}: {item[name]!r} is not one of {sorted(allowed)}"
        explanation = item.get("legalBasisExplanation")
        if explanation is not None and not isinstance(explanation, str):
            return f"{where}.legalBasisExplanation: expected a string"
        return None

    async def v4_batch_write(self, request: Request) -> Any:
        """Batch status writes (Enterprise only, like batch reads), at most `batch_limit` inputs.

        A body that is not a `BatchInputPublicStatusRequest` is refused whole (400); an input
        naming an invalid address or an unknown subscription fails alone and is reported in
        `errors` (200 with `numErrors`, the one answer the spec declares); each input is
        applied as the single `POST statuses/{email}` applies it.
        """
        self._enterprise_only("communication_preferences.statuses.batch.write")
        body = await self._object_body(request)
        inputs = self._inputs(body)
        for index, item in enumerate(inputs):
            problem = self._status_request_problem(index, item)
            if problem:
                raise _HubSpotError(400, "VALIDATION_ERROR", f"Invalid input JSON: {problem}")
        started = self.clock.now()
        failing = (
            self.faults.failing_indexes(len(inputs))
            if self.partial_failure_requested(request)
            else set()
        )
        results, errors = [], []
        for index, item in enumerate(inputs):
            raw = item["subscriberIdString"]
            email = raw.strip().lower()
            if index in failing:
                errors.append(
                    self._standard_error(
                        "VALIDATION_ERROR",
                        f"Could not update the subscription status of {raw} [injected failure]",
                        {"subscriberIdString": [raw]},
                    )
                )
                continue
            if not _EMAIL.match(email):
                errors.append(
                    self._standard_error(
                        "VALIDATION_ERROR",
                        f"{raw} is not a valid email address",
                        {"subscriberIdString": [raw]},
                    )
                )
                continue
            sub_id = item["subscriptionId"]
            if sub_id not in self.subscriptions:
                errors.append(
                    self._standard_error(
                        "VALIDATION_ERROR",
                        f"Subscription {sub_id} does not exist",
                        {"subscriberIdString": [raw], "subscriptionId": [str(sub_id)]},
                    )
                )
                continue
            try:
                reason = self._write_status(
                    email,
                    sub_id,
                    item["statusState"],
                    item.get("legalBasis"),
                    item.get("legalBasisExplanation"),
                )
            except _HubSpotError as exc:  # refused as the single endpoint refuses it
                errors.append(
                    self._standard_error(exc.category, exc.message, {"subscriberIdString": [raw]})
                )
                continue
            results.append(self._public_status(email, sub_id, reason))
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "requestedAt": _iso(started),
            "startedAt": _iso(started),
            "completedAt": _iso(self.clock.now()),
        }
        if errors:
            answer["numErrors"] = len(errors)
            answer["errors"] = errors
        return answer

    async def v4_unsubscribe_all(self, request: Request) -> Any:
        self._channel(request)
        email = self._address(request.path_params["email"])
        self._opt_out_of_all(email)
        now = _iso(self.clock.now())
        return {
            "status": "COMPLETE",
            "results": [self._public_status(email, s) for s in self.subscriptions],
            "startedAt": now,
            "completedAt": now,
        }

    async def v4_batch_read(self, request: Request) -> Any:
        """Batch status reads (Marketing Hub Enterprise only: 403 MISSING_SCOPES otherwise)."""
        self._enterprise_only("communication_preferences.statuses.batch.read")
        self._channel(request)
        body = await self._object_body(request)
        inputs = self._inputs(body)
        now = _iso(self.clock.now())
        results, errors = [], []
        for raw in inputs:
            if not isinstance(raw, str) or not _EMAIL.match(raw.strip()):
                errors.append(
                    self._standard_error(
                        "VALIDATION_ERROR",
                        f"{raw} is not a valid email address",
                        {"subscriberIdString": [str(raw)]},
                    )
                )
                continue
            email = raw.strip().lower()
            results.append(
                {
                    "subscriberIdString": email,
                    "statuses": [self._public_status(email, s) for s in self.subscriptions],
                }
            )
        body_out: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": now,
            "completedAt": now,
        }
        if errors:
            body_out["numErrors"] = len(errors)
            body_out["errors"] = errors
            return JSONResponse(body_out, status_code=207)
        return body_out
