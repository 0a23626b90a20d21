"""A stateful Mailchimp Marketing API emulator (the endpoints segsync and its tests use).

Served under `/3.0` like the real API, in-process (`transport()`) or on loopback
(`segsync emulate mailchimp`). It models, after the fact sheet (reference/mailchimp.md):

- auth: HTTP Basic with any user and the key as password, or `Bearer`/`OAuth` tokens; a
  `<dc>.api.mailchimp.com` host that is not the key's datacenter gets 403 Wrong Datacenter;
- members keyed by md5(lower(email)) (paths also take the raw email), with statuses,
  a compliance flag separate from the status (self-unsubscribed / cleaned members cannot be
  set `subscribed`: 400 Member In Compliance State), archive on DELETE, permanent delete
  with a per-list tombstone (400 Forgotten Email Not Subscribed on any later add);
- list paging (`count` silently capped at 1000, `offset`, `total_items`), `fields` /
  `exclude_fields`, `status`, `since_last_changed` / `before_last_changed`, sorting;
- merge fields with types and validation ("Your merge fields were invalid."), unknown
  merge keys dropped; interest categories and interests;
- tags as static segments (member tags endpoint, `tags` honoured only on creation, bulk
  membership at 500 adds + 500 removes a call, tag search by prefix);
- saved segments with one flat `match` any/all list of conditions, evaluated on read for
  the condition types in `CONDITION_EVALUATORS` (others are stored and match nobody);
  `member_count` counts subscribed members only;
- batch subscribe `POST /lists/{id}` (500 members, `update_existing`, `sync_tags`,
  per-record errors with `error_code`);
- problem+json errors, and 429 beyond 10 concurrent connections (no rate headers);
  `X-Trigger-Error: <glossary name>` answers with that error (Mailchimp's debugging aid).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from segsync.emulator import ConcurrencyLimit, Emulator, WindowLimit
from segsync_mailchimp.errors import ERROR_TITLES, problem_body

__all__ = [
    "CONDITION_EVALUATORS",
    "MailchimpEmulator",
    "subscriber_hash",
]

API_PREFIX = "/3.0"
MAX_PAGE = 1000
MAX_BATCH_MEMBERS = 500
MAX_SEGMENT_BULK = 500
MAX_MEMBER_TAGS_SHOWN = 50
STATUSES_WRITABLE = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
STATUSES_PATCH = ("subscribed", "unsubscribed", "cleaned", "pending")
MERGE_TYPES = (
    "text",
    "number",
    "address",
    "phone",
    "date",
    "url",
    "imageurl",
    "radio",
    "dropdown",
    "birthday",
    "zip",
)
FAKE_DOMAINS = ("example.com", "example.org", "example.net")
_HOST_DC = re.compile(r"^([a-z]+[0-9]+)\.api\.mailchimp\.com$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the hex MD5 of the lowercased address."""
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class ApiProblem(Exception):
    """Raised inside handlers; becomes a problem+json response."""

    def __init__(
        self,
        name: str,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        status, default_title, _ = ERROR_TITLES[name]
        super().__init__(detail)
        self.status = status
        self.title = title or default_title
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


def _not_found() -> ApiProblem:
    return ApiProblem("ResourceNotFound", "The requested resource could not be found.")


def _invalid(detail: str, errors: list[dict[str, str]] | None = None) -> ApiProblem:
    return ApiProblem("InvalidResource", detail, errors=errors)


def _schema_invalid(field: str, message: str) -> ApiProblem:
    return _invalid(
        "The resource submitted could not be validated. For field-specific details, see the "
        "'errors' array.",
        [{"field": field, "message": message}],
    )


# -- state ------------------------------------------------------------------------------


@dataclasses.dataclass
class MergeField:
    merge_id: int
    tag: str
    name: str
    type: str
    required: bool = False
    default_value: str = ""
    public: bool = False
    display_order: int = 0
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    help_text: str = ""


@dataclasses.dataclass
class Member:
    email_address: str
    status: str
    merge_fields: dict[str, Any]
    interests: dict[str, bool]
    created: dt.datetime
    last_changed: dt.datetime
    unique_email_id: str
    contact_id: str
    web_id: int
    email_type: str = "html"
    language: str = ""
    vip: bool = False
    location: dict[str, Any] = dataclasses.field(default_factory=dict)
    timestamp_signup: str = ""
    timestamp_opt: str = ""
    ip_signup: str = ""
    ip_opt: str = ""
    member_rating: int = 2
    avg_open_rate: float = 0.0
    avg_click_rate: float = 0.0
    source: str = "API - Generic"
    #: unsubscribed by the person / bounced: cannot be set `subscribed` by API
    compliance_blocked: bool = False
    marketing_permissions: dict[str, bool] = dataclasses.field(default_factory=dict)

    @property
    def id(self) -> str:
        return subscriber_hash(self.email_address)


@dataclasses.dataclass
class Segment:
    id: int
    name: str
    type: str  # "static" | "saved"
    created_at: dt.datetime
    updated_at: dt.datetime
    options: dict[str, Any] | None = None
    members: dict[str, dt.datetime] = dataclasses.field(default_factory=dict)  # hash -> added


@dataclasses.dataclass
class InterestCategory:
    id: str
    title: str
    type: str
    display_order: int = 0
    interests: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class AudienceList:
    id: str
    name: str
    web_id: int
    created: dt.datetime
    members: dict[str, Member] = dataclasses.field(default_factory=dict)
    merge_fields: dict[str, MergeField] = dataclasses.field(default_factory=dict)  # by tag
    segments: dict[int, Segment] = dataclasses.field(default_factory=dict)
    categories: dict[str, InterestCategory] = dataclasses.field(default_factory=dict)
    forgotten: set[str] = dataclasses.field(default_factory=set)  # hashes
    marketing_permissions: dict[str, str] = dataclasses.field(default_factory=dict)  # id -> text


# -- saved segment evaluation -----------------------------------------------------------

ConditionEvaluator = Callable[["MailchimpEmulator", AudienceList, Member, Mapping[str, Any]], bool]


def _text_ops(actual: str, op: str, value: str, *, numeric: bool) -> bool:
    """TextMerge / EmailAddress semantics: case-insensitive; `not`-ops include blanks."""
    a, v = actual.casefold(), str(value).casefold()
    if op == "blank":
        return a == ""
    if op == "blank_not":
        return a != ""
    if op in ("is", "not", "greater", "less") and numeric:
        if op in ("greater", "less") and a == "":
            return False
        try:
            fa, fv = float(a), float(v)
        except ValueError:
            return op == "not"
        return {"is": fa == fv, "not": fa != fv, "greater": fa > fv, "less": fa < fv}[op]
    match op:
        case "is":
            return a == v
        case "not":
            return a != v
        case "contains":
            return v in a
        case "notcontain":
            return v not in a
        case "starts":
            return a.startswith(v)
        case "ends":
            return a.endswith(v)
        case "greater":
            return a != "" and a > v
        case "less":
            return a != "" and a < v
    return False


def _merge_value(lst: AudienceList, member: Member, tag: str) -> tuple[MergeField | None, Any]:
    mf = lst.merge_fields.get(tag.upper())
    return mf, member.merge_fields.get(tag.upper(), "")


def _eval_text_merge(
    emu: MailchimpEmulator, lst: AudienceList, m: Member, c: Mapping[str, Any]
) -> bool:
    mf, value = _merge_value(lst, m, str(c["field"]))
    if mf is None:
        return False
    return _text_ops(str(value), str(c["op"]), str(c.get("value", "")), numeric=mf.type == "number")


def _eval_select_merge(
    emu: MailchimpEmulator, lst: AudienceList, m: Member, c: Mapping[str, Any]
) -> bool:
    mf, value = _merge_value(lst, m, str(c["field"]))
    if mf is None:
        return False
    op = str(c["op"])
    op = {"notcontain": "notcontain", "contains": "contains"}.get(op, op)
    return _text_ops(str(value), op, str(c.get("value", "")), numeric=False)


def _eval_email(emu: MailchimpEmulator, lst: AudienceList, m: Member, c: Mapping[str, Any]) -> bool:
    return _text_ops(m.email_address, str(c["op"]), str(c.get("value", "")), numeric=False)


def _date_of(text: str, date_format: str) -> dt.date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        pass
    fmt = date_format.upper().replace("YYYY", "%Y").replace("MM", "%m").replace("DD", "%d")
    try:
        return dt.datetime.strptime(text, fmt).date()
    except ValueError:
        return None


def _date_ops(actual: dt.date | None, op: str, target: dt.date | None) -> bool:
    if op == "blank":
        return actual is None
    if op == "blank_not":
        return actual is not None
    if actual is None or target is None:
        return op == "not" and actual is None
    return {
        "is": actual == target,
        "not": actual != target,
        "greater": actual > target,
        "less": actual < target,
    }.get(op, False)


def _eval_date_merge(
    emu: MailchimpEmulator, lst: AudienceList, m: Member, c: Mapping[str, Any]
) -> bool:
    mf, value = _merge_value(lst, m, str(c["field"]))
    if mf is None:
        return False
    fmt = str(mf.options.get("date_format") or "MM/DD/YYYY")
    return _date_ops(
        _date_of(str(value), fmt), str(c["op"]), _date_of(str(c.get("value", "")), fmt)
    )


def _eval_birthday(
    emu: MailchimpEmulator, lst: AudienceList, m: Member, c: Mapping[str, Any]
) -> bool:
    mf, value = _merge_value(lst, m, str(c["field"]))
    if mf is None:
        return False
    return _text_ops(str(value), str(c["op"]), str(c.get("value", "")), numeric=False)


def _eval_date(emu: MailchimpEmulator, lst: AudienceList, m: Member, c: Mapping[str, Any]) -> bool:
    field_name, op = str(c["field"]), str(c["op"])
    raw = {"timestamp_opt": m.timestamp_opt, "info_changed": _iso(m.last_changed)}.get(
        field_name, ""
    )
    actual = _parse_time(raw).date() if raw else None
    if op in ("within", "notwithin"):
        try:
            days = int(str(c.get("extra") or c.get("value")))
        except ValueError:
            return False
        inside = actual is not None and actual >= emu.clock.now().date() - dt.timedelta(days=days)
        return inside if op == "within" else not inside
    extra = c.get("extra")
    target = dt.date.fromisoformat(str(extra)[:10]) if extra else None
    return _date_ops(actual, op, target)


def _eval_static(
    emu: MailchimpEmulator, lst: AudienceList, m: Member, c: Mapping[str, Any]
) -> bool:
    segment = lst.segments.get(int(c["value"]))
    inside = segment is not None and m.id in segment.members
    return inside if c["op"] == "static_is" else not inside


def _eval_interests(
    emu: MailchimpEmulator, lst: AudienceList, m: Member, c: Mapping[str, Any]
) -> bool:
    wanted = [str(v) for v in (c.get("value") or [])]
    held = {k for k, v in m.interests.items() if v}
    match c["op"]:
        case "interestcontains":
            return any(w in held for w in wanted)
        case "interestcontainsall":
            return all(w in held for w in wanted)
        case "interestnotcontains":
            return not any(w in held for w in wanted)
    return False


def _eval_rating(
    emu: MailchimpEmulator, lst: AudienceList, m: Member, c: Mapping[str, Any]
) -> bool:
    v = float(c["value"])
    return {
        "is": m.member_rating == v,
        "not": m.member_rating != v,
        "greater": m.member_rating > v,
        "less": m.member_rating < v,
    }.get(str(c["op"]), False)


def _eval_vip(emu: MailchimpEmulator, lst: AudienceList, m: Member, c: Mapping[str, Any]) -> bool:
    return m.vip if c["op"] == "member" else not m.vip


def _eval_language(
    emu: MailchimpEmulator, lst: AudienceList, m: Member, c: Mapping[str, Any]
) -> bool:
    same = m.language.lower() == str(c.get("value", "")).lower()
    return same if c["op"] == "is" else not same


def _eval_ipgeo(emu: MailchimpEmulator, lst: AudienceList, m: Member, c: Mapping[str, Any]) -> bool:
    country = str(m.location.get("country_code") or "").upper()
    value = str(c.get("value", "")).upper()
    match c["op"]:
        case "ipgeocountry":
            return country == value
        case "ipgeonotcountry":
            return country != value
        case "ipgeostate":
            return str(m.location.get("region") or "").upper() == value
        case "ipgeonotstate":
            return str(m.location.get("region") or "").upper() != value
    return False


#: condition_type -> (evaluator, the ops it accepts)
CONDITION_EVALUATORS: dict[str, tuple[ConditionEvaluator, frozenset[str]]] = {
    "TextMerge": (
        _eval_text_merge,
        frozenset(
            {
                "is",
                "not",
                "contains",
                "notcontain",
                "starts",
                "ends",
                "greater",
                "less",
                "blank",
                "blank_not",
            }
        ),
    ),
    "EmailAddress": (
        _eval_email,
        frozenset({"is", "not", "contains", "notcontain", "starts", "ends", "greater", "less"}),
    ),
    "SelectMerge": (
        _eval_select_merge,
        frozenset({"is", "not", "blank", "blank_not", "contains", "notcontain"}),
    ),
    "DateMerge": (
        _eval_date_merge,
        frozenset({"is", "not", "less", "greater", "blank", "blank_not"}),
    ),
    "BirthdayMerge": (_eval_birthday, frozenset({"is", "not", "blank", "blank_not"})),
    "Date": (
        _eval_date,
        frozenset({"greater", "less", "is", "not", "blank", "blank_not", "within", "notwithin"}),
    ),
    "StaticSegment": (_eval_static, frozenset({"static_is", "static_not"})),
    "Interests": (
        _eval_interests,
        frozenset({"interestcontains", "interestcontainsall", "interestnotcontains"}),
    ),
    "MemberRating": (_eval_rating, frozenset({"is", "not", "greater", "less"})),
    "VIP": (_eval_vip, frozenset({"member", "notmember"})),
    "Language": (_eval_language, frozenset({"is", "not"})),
    "IPGeoCountryState": (
        _eval_ipgeo,
        frozenset({"ipgeocountry", "ipgeonotcountry", "ipgeostate", "ipgeonotstate"}),
    ),
}

#: condition types accepted and stored but not evaluated (they match nobody here)
STORED_CONDITION_TYPES = frozenset(
    {
        "Aim",
        "Automation",
        "CampaignPoll",
        "Conversation",
        "EmailClient",
        "SignupSource",
        "SurveyMonkey",
        "EcommCategory",
        "EcommNumber",
        "EcommPurchased",
        "EcommSpent",
        "EcommStore",
        "GoalActivity",
        "GoalTimestamp",
        "FuzzySegment",
        "IPGeoIn",
        "IPGeoInZip",
        "IPGeoUnknown",
        "IPGeoZip",
        "SocialAge",
        "SocialGender",
        "SocialInfluence",
        "SocialNetworkMember",
        "SocialNetworkFollow",
        "AddressMerge",
        "ZipMerge",
        "PredictedGender",
        "PredictedAge",
        "NewSubscribers",
    }
)


# -- the emulator -----------------------------------------------------------------------


class MailchimpEmulator(Emulator):
    """Stateful Mailchimp Marketing API v3 (see the module docstring for what is modelled).

    Seed state with `add_list` / `add_member`; inspect it with `lists`. Options:
    `max_segment_conditions` (unverified platform cap, default 5), `reject_fake_emails`
    (addresses at example.com/.org/.net look fake to Mailchimp), `tag_changes_bump_last_changed`.
    """

    platform: ClassVar[str] = "mailchimp"
    default_api_key: ClassVar[str] = "0123456789abcdef0123456789abcdef-us21"
    default_list_id: ClassVar[str] = "a1b2c3d4e5"
    max_connections: ClassVar[int] = 10
    base_path: ClassVar[str] = API_PREFIX

    def __init__(
        self,
        *,
        max_segment_conditions: int = 5,
        reject_fake_emails: bool = True,
        tag_changes_bump_last_changed: bool = True,
        create_default_list: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_segment_conditions = max_segment_conditions
        self.reject_fake_emails = reject_fake_emails
        self.tag_changes_bump_last_changed = tag_changes_bump_last_changed
        self.lists: dict[str, AudienceList] = {}
        self._ids = itertools.count(1)
        self._segment_ids = itertools.count(10001)
        self._auth_failure = "APIKeyInvalid"
        if create_default_list:
            self.add_list("segsync test audience", list_id=self.default_list_id)

    # -- seeding / inspection ---------------------------------------------------------------

    @property
    def datacenter(self) -> str:
        return self.api_key.rsplit("-", 1)[-1] if "-" in self.api_key else "us1"

    def add_list(self, name: str, *, list_id: str | None = None) -> AudienceList:
        """Create an audience with the default merge fields (FNAME, LNAME, ADDRESS, PHONE)."""
        lid = list_id or uuid.UUID(int=self.random.getrandbits(128)).hex[:10]
        lst = AudienceList(id=lid, name=name, web_id=next(self._ids), created=self.clock.now())
        for order, (tag, name_, type_) in enumerate(
            (
                ("FNAME", "First Name", "text"),
                ("LNAME", "Last Name", "text"),
                ("ADDRESS", "Address", "address"),
                ("PHONE", "Phone Number", "phone"),
            ),
            start=1,
        ):
            lst.merge_fields[tag] = MergeField(order, tag, name_, type_, display_order=order + 1)
        self.lists[lid] = lst
        return lst

    def add_member(
        self,
        email: str,
        status: str = "subscribed",
        *,
        list_id: str | None = None,
        merge_fields: Mapping[str, Any] | None = None,
        tags: Sequence[str] = (),
        compliance_blocked: bool | None = None,
        **attrs: Any,
    ) -> Member:
        """Seed a member directly (as if the person signed up); unsubscribed/cleaned are blocked."""
        lst = self.lists[list_id or self.default_list_id]
        member = self._new_member(lst, email, status)
        member.merge_fields.update({k.upper(): v for k, v in (merge_fields or {}).items()})
        for key, value in attrs.items():
            setattr(member, key, value)
        member.compliance_blocked = (
            status in ("unsubscribed", "cleaned")
            if compliance_blocked is None
            else compliance_blocked
        )
        lst.members[member.id] = member
        for tag in tags:
            self._tag_segment(lst, tag, create=True).members[member.id] = self.clock.now()  # type: ignore[union-attr]
        return member

    def member(self, email: str, list_id: str | None = None) -> Member | None:
        """A member by email (None when absent)."""
        return self.lists[list_id or self.default_list_id].members.get(subscriber_hash(email))

    def member_tags(self, email: str, list_id: str | None = None) -> set[str]:
        lst = self.lists[list_id or self.default_list_id]
        h = subscriber_hash(email)
        return {s.name for s in lst.segments.values() if s.type == "static" and h in s.members}

    def segment_matches(self, list_id: str, segment_id: int) -> set[str]:
        """Emails a segment selects, whatever their status (saved: evaluated now)."""
        lst = self.lists[list_id]
        segment = lst.segments[segment_id]
        return {m.email_address.lower() for m in self._segment_members(lst, segment)}

    # -- Emulator contract ------------------------------------------------------------------

    def error_response(self, status: int, code: str, message: str, **extra: Any) -> Response:
        titles = {
            "unauthorized": "API Key Invalid",
            "rate_limited": "Too Many Requests",
            "server_error": "Internal Server Error",
            "not_found": "Resource Not Found",
            "method_not_allowed": "Method Not Allowed",
        }
        if code == "not_found":
            message = "The requested resource could not be found."
        title = ERROR_TITLES[code][1] if code in ERROR_TITLES else titles.get(code, code)
        return self._problem(status, title, message, extra.get("errors"), extra.get("headers"))

    def _problem(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        instance = str(uuid.UUID(int=self.random.getrandbits(128)))
        body = problem_body(status, title, detail, instance=instance, errors=errors)
        return JSONResponse(
            body,
            status_code=status,
            media_type="application/problem+json",
            headers={
                "X-Request-Id": instance,
                "Link": "<https://us1.api.mailchimp.com/schema/3.0/ProblemDetailDocument.json>; "
                'rel="describedBy"',
                **(headers or {}),
            },
        )

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        key = None
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credential).decode()
            except (ValueError, UnicodeDecodeError):
                decoded = ""
            key = decoded.partition(":")[2]
        elif scheme.lower() in ("bearer", "oauth"):
            key = credential
        if not header:
            self._auth_failure = "APIKeyMissing"
            return False
        if key != self.api_key:
            self._auth_failure = "APIKeyInvalid"
            return False
        host = request.url.hostname or ""
        m = _HOST_DC.match(host)
        if m and m.group(1) != self.datacenter:
            self._auth_failure = "WrongDatacenter"
            return False
        return True

    def unauthorized_response(self) -> Response:
        name = self._auth_failure
        status, title, _ = ERROR_TITLES[name]
        detail = {
            "APIKeyMissing": "Your request did not include an API key.",
            "APIKeyInvalid": "Your API key may be invalid, or you've attempted to access the "
            "wrong datacenter.",
            "WrongDatacenter": "The API key provided is linked to a different datacenter.",
        }[name]
        return self._problem(status, title, detail)

    def rate_limits(self) -> Sequence[WindowLimit | ConcurrencyLimit]:
        return (ConcurrencyLimit("simultaneous connections", self.max_connections),)

    def rate_limited_response(
        self, limit: WindowLimit | ConcurrencyLimit, retry_after: float
    ) -> Response:
        # Mailchimp sends no Retry-After and no rate-limit headers
        return self._problem(
            429,
            "Too Many Requests",
            "You have exceeded the limit of 10 simultaneous connections.",
        )

    def routes(self) -> Sequence[BaseRoute]:
        p = API_PREFIX
        lp = p + "/lists/{list_id}"
        table: list[tuple[str, Callable[..., Any], list[str]]] = [
            (p + "/ping", self.ping, ["GET"]),
            (p + "/", self.root, ["GET"]),
            (p + "/lists", self.get_lists, ["GET"]),
            (lp, self.get_list, ["GET"]),
            (lp, self.batch_subscribe, ["POST"]),
            (lp + "/members", self.list_members, ["GET"]),
            (lp + "/members", self.post_member, ["POST"]),
            (lp + "/members/{member}", self.get_member, ["GET"]),
            (lp + "/members/{member}", self.put_member, ["PUT"]),
            (lp + "/members/{member}", self.patch_member, ["PATCH"]),
            (lp + "/members/{member}", self.archive_member, ["DELETE"]),
            (lp + "/members/{member}/actions/delete-permanent", self.delete_permanent, ["POST"]),
            (lp + "/members/{member}/tags", self.get_member_tags, ["GET"]),
            (lp + "/members/{member}/tags", self.post_member_tags, ["POST"]),
            (lp + "/merge-fields", self.get_merge_fields, ["GET"]),
            (lp + "/merge-fields", self.post_merge_field, ["POST"]),
            (lp + "/interest-categories", self.get_categories, ["GET"]),
            (lp + "/interest-categories", self.post_category, ["POST"]),
            (lp + "/interest-categories/{category_id}/interests", self.get_interests, ["GET"]),
            (lp + "/interest-categories/{category_id}/interests", self.post_interest, ["POST"]),
            (lp + "/tag-search", self.tag_search, ["GET"]),
            (lp + "/segments", self.get_segments, ["GET"]),
            (lp + "/segments", self.post_segment, ["POST"]),
            (lp + "/segments/{segment_id}", self.get_segment, ["GET"]),
            (lp + "/segments/{segment_id}", self.patch_segment, ["PATCH"]),
            (lp + "/segments/{segment_id}", self.delete_segment, ["DELETE"]),
            (lp + "/segments/{segment_id}", self.bulk_segment, ["POST"]),
            (lp + "/segments/{segment_id}/members", self.get_segment_members, ["GET"]),
        ]
        return [
            Route(path, self._handler(fn), methods=methods, name=f"{fn.__name__}_{methods[0]}")
            for path, fn, methods in table
        ]

    def _handler(self, fn: Callable[..., Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                trigger = request.headers.get("x-trigger-error")
                if trigger:
                    # Mailchimp's debugging aid: answer with the named glossary error
                    if trigger not in ERROR_TITLES:
                        raise _invalid(f"Unknown error name in X-Trigger-Error: {trigger}")
                    raise ApiProblem(trigger, f"Triggered {trigger} error.")
                return await fn(request)  # type: ignore[no-any-return]
            except ApiProblem as problem:
                return self._problem(
                    problem.status, problem.title, problem.detail, problem.errors, problem.headers
                )

        return endpoint

    # -- helpers ----------------------------------------------------------------------------

    def _list(self, request: Request) -> AudienceList:
        lst = self.lists.get(request.path_params["list_id"])
        if lst is None:
            raise _not_found()
        return lst

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise ApiProblem(
                "JSONParseError",
                "We encountered an unspecified JSON parsing error.",
                title="JSON Parse Error",
            ) from None
        if not isinstance(body, dict):
            raise _schema_invalid("", "Schema describes object, array found instead")
        return body

    @staticmethod
    def _hash_param(value: str) -> str:
        return subscriber_hash(value) if "@" in value else value.lower()

    def _page(self, request: Request) -> tuple[int, int]:
        q = request.query_params
        try:
            count = int(q.get("count", "10"))
            offset = int(q.get("offset", "0"))
        except ValueError:
            raise _schema_invalid("count", "Schema describes integer") from None
        return max(0, min(count, MAX_PAGE)), max(0, offset)

    def _reply(self, request: Request, data: dict[str, Any], status: int = 200) -> Response:
        q = request.query_params
        if q.get("fields"):
            data = _only_fields(data, [f.strip() for f in q["fields"].split(",") if f.strip()])
        elif q.get("exclude_fields"):
            data = _exclude_fields(
                data, [f.strip() for f in q["exclude_fields"].split(",") if f.strip()]
            )
        return JSONResponse(data, status_code=status)

    def _touch(self, member: Member) -> None:
        member.last_changed = self.clock.now()

    def _new_member(self, lst: AudienceList, email: str, status: str) -> Member:
        now = self.clock.now()
        h = subscriber_hash(email)
        return Member(
            email_address=email.strip(),
            status=status,
            merge_fields=dict.fromkeys(lst.merge_fields, ""),
            interests={i: False for c in lst.categories.values() for i in c.interests},
            created=now,
            last_changed=now,
            unique_email_id=h[:10],
            contact_id=hashlib.sha1(f"{lst.id}:{h}".encode(), usedforsecurity=False).hexdigest()[
                :32
            ],
            web_id=next(self._ids),
            timestamp_signup="",
            timestamp_opt=_iso(now) if status == "subscribed" else "",
        )

    def _member_json(self, lst: AudienceList, m: Member) -> dict[str, Any]:
        tags = [
            {"id": s.id, "name": s.name}
            for s in sorted(lst.segments.values(), key=lambda s: s.id)
            if s.type == "static" and m.id in s.members
        ]
        merge_fields: dict[str, Any] = {}
        for tag, mf in lst.merge_fields.items():
            value = m.merge_fields.get(tag, "")
            if mf.type == "number" and value == "":
                value = ""
            merge_fields[tag] = value
        return {
            "id": m.id,
            "email_address": m.email_address,
            "unique_email_id": m.unique_email_id,
            "contact_id": m.contact_id,
            "full_name": " ".join(
                str(x)
                for x in (m.merge_fields.get("FNAME", ""), m.merge_fields.get("LNAME", ""))
                if x
            ),
            "web_id": m.web_id,
            "email_type": m.email_type,
            "status": m.status,
            "consents_to_one_to_one_messaging": True,
            "merge_fields": merge_fields,
            "interests": {
                i: bool(m.interests.get(i, False))
                for c in lst.categories.values()
                for i in c.interests
            },
            "stats": {"avg_open_rate": m.avg_open_rate, "avg_click_rate": m.avg_click_rate},
            "ip_signup": m.ip_signup,
            "timestamp_signup": m.timestamp_signup,
            "ip_opt": m.ip_opt,
            "timestamp_opt": m.timestamp_opt,
            "member_rating": m.member_rating,
            "last_changed": _iso(m.last_changed),
            "language": m.language,
            "vip": m.vip,
            "email_client": "",
            "location": {
                "latitude": 0,
                "longitude": 0,
                "gmtoff": 0,
                "dstoff": 0,
                "country_code": "",
                "timezone": "",
                "region": "",
                **m.location,
            },
            "marketing_permissions": [
                {
                    "marketing_permission_id": pid,
                    "text": text,
                    "enabled": bool(m.marketing_permissions.get(pid, False)),
                }
                for pid, text in lst.marketing_permissions.items()
            ],
            "source": m.source,
            "tags_count": len(tags),
            "tags": tags[:MAX_MEMBER_TAGS_SHOWN],
            "list_id": lst.id,
            "_links": [],
        }

    def _check_email(self, email: Any) -> str:
        if not isinstance(email, str) or not email.strip():
            raise _schema_invalid("email_address", "Schema describes string, NULL found instead")
        email = email.strip()
        if not _EMAIL.match(email):
            raise _invalid(
                f"{email} looks fake or invalid, please enter a real email address.",
                [{"field": "email_address", "message": "This value should be a valid email."}],
            )
        domain = email.rsplit("@", 1)[1].lower()
        if self.reject_fake_emails and (domain in FAKE_DOMAINS or domain.endswith(".invalid")):
            raise _invalid(f"{email} looks fake or invalid, please enter a real email address.")
        return str(email)

    def _validate_merge_fields(
        self, lst: AudienceList, values: Any, *, creating: bool
    ) -> dict[str, Any]:
        """Validated merge values by tag; unknown keys dropped; 400 with field errors."""
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise _schema_invalid("merge_fields", "Schema describes object, array found instead")
        out: dict[str, Any] = {}
        errors: list[dict[str, str]] = []
        for key, value in values.items():
            mf = lst.merge_fields.get(str(key).upper())
            if mf is None:
                continue  # Mailchimp drops unknown merge keys silently
            problem = _merge_value_problem(mf, value)
            if problem:
                errors.append({"field": mf.tag, "message": problem})
            else:
                out[mf.tag] = _normalise_merge_value(mf, value)
        if creating:
            for mf in lst.merge_fields.values():
                if mf.required and out.get(mf.tag, "") in ("", None):
                    errors.append({"field": mf.tag, "message": "Please enter a value"})
        if errors:
            raise _invalid("Your merge fields were invalid.", errors)
        return out

    def _validate_interests(self, lst: AudienceList, values: Any) -> dict[str, bool]:
        if values is None:
            return {}
        if not isinstance(values, dict):
            raise _schema_invalid("interests", "Schema describes object, array found instead")
        known = {i for c in lst.categories.values() for i in c.interests}
        out: dict[str, bool] = {}
        for key, value in values.items():
            if key not in known:
                raise _invalid(
                    f"Invalid interest ID: '{key}'.",
                    [{"field": "interests", "message": f"Invalid interest ID: '{key}'"}],
                )
            if not isinstance(value, bool):
                raise _schema_invalid(f"interests.{key}", "Schema describes boolean")
            out[key] = value
        return out

    def _check_transition(
        self, lst: AudienceList, member: Member | None, email: str, status: str | None
    ) -> None:
        h = subscriber_hash(email)
        if member is None and h in lst.forgotten:
            raise ApiProblem(
                "ForgottenEmailNotSubscribed",
                f"{email} was permanently deleted and cannot be re-imported. The contact must "
                "re-subscribe to get back on the list.",
            )
        if status == "subscribed" and member is not None and member.compliance_blocked:
            raise ApiProblem(
                "MemberInComplianceState",
                f"{email} is in a compliance state due to unsubscribe, bounce, or compliance "
                "review and cannot be subscribed.",
            )

    def _apply_status(self, member: Member, status: str) -> None:
        if status == member.status:
            return
        member.status = status
        now = _iso(self.clock.now())
        if status == "subscribed":
            member.timestamp_opt = now
        if status in ("unsubscribed", "cleaned"):
            member.compliance_blocked = True
        elif status == "pending":
            pass  # confirmation email sent; flag stays until the person confirms
        self._touch(member)

    def _apply_body(
        self, lst: AudienceList, member: Member, body: Mapping[str, Any], *, creating: bool
    ) -> None:
        """Apply the writable fields of a member body (validation first, then mutation)."""
        merge = self._validate_merge_fields(lst, body.get("merge_fields"), creating=creating)
        interests = self._validate_interests(lst, body.get("interests"))
        changed = False
        for tag, value in merge.items():
            if member.merge_fields.get(tag, "") != value:
                member.merge_fields[tag] = value
                changed = True
        for iid, value in interests.items():
            if member.interests.get(iid, False) != value:
                member.interests[iid] = value
                changed = True
        for key in ("email_type", "language", "ip_signup", "ip_opt", "timestamp_signup"):
            if key in body and body[key] is not None and getattr(member, key) != body[key]:
                setattr(member, key, body[key])
                changed = True
        if "vip" in body and bool(body["vip"]) != member.vip:
            member.vip = bool(body["vip"])
            changed = True
        if isinstance(body.get("location"), dict):
            member.location.update(
                {k: v for k, v in body["location"].items() if k in ("latitude", "longitude")}
            )
        for perm in body.get("marketing_permissions") or []:
            if (
                isinstance(perm, dict)
                and perm.get("marketing_permission_id") in lst.marketing_permissions
            ):
                member.marketing_permissions[perm["marketing_permission_id"]] = bool(
                    perm.get("enabled")
                )
                changed = True
        if changed:
            self._touch(member)

    def _tag_segment(self, lst: AudienceList, name: str, *, create: bool) -> Segment | None:
        for segment in lst.segments.values():
            # tag names are case-insensitive on Mailchimp
            if segment.type == "static" and segment.name.casefold() == name.casefold():
                return segment
        if not create:
            return None
        now = self.clock.now()
        segment = Segment(next(self._segment_ids), name, "static", now, now)
        lst.segments[segment.id] = segment
        return segment

    def _set_tags(
        self, lst: AudienceList, member: Member, names: Sequence[str], *, replace: bool
    ) -> None:
        wanted = {str(n).casefold() for n in names}
        now = self.clock.now()
        changed = False
        for name in wanted:
            segment = self._tag_segment(lst, name, create=True)
            assert segment is not None
            if member.id not in segment.members:
                segment.members[member.id] = now
                changed = True
        if replace:
            for segment in lst.segments.values():
                if (
                    segment.type == "static"
                    and segment.name.casefold() not in wanted
                    and member.id in segment.members
                ):
                    del segment.members[member.id]
                    changed = True
        if changed and self.tag_changes_bump_last_changed:
            self._touch(member)

    def _upsert(
        self,
        lst: AudienceList,
        body: Mapping[str, Any],
        *,
        existing: Member | None,
        status: str | None,
        status_if_new: str | None = None,
        allow_tags: bool = True,
    ) -> tuple[Member, bool]:
        """Create or update one member; returns (member, created). Raises ApiProblem."""
        email = self._check_email(
            body.get("email_address")
            if existing is None
            else body.get("email_address") or existing.email_address
        )
        creating = existing is None or (existing.status == "archived" and status is not None)
        # an archived member comes back only with `status`; `status_if_new` alone does not
        new_status = status or (status_if_new if existing is None else None)
        if existing is None and new_status is None:
            raise _schema_invalid("", "Required fields were not provided: status")
        if new_status is not None and new_status not in STATUSES_WRITABLE:
            raise _schema_invalid("status", f"Value is not one of {list(STATUSES_WRITABLE)}")
        self._check_transition(lst, existing, email, new_status)
        if existing is None:
            member = self._new_member(lst, email, new_status or "transactional")
            self._apply_body(lst, member, body, creating=True)
            lst.members[member.id] = member
            member.compliance_blocked = member.status in ("unsubscribed", "cleaned")
            if allow_tags and body.get("tags"):
                self._set_tags(lst, member, list(body["tags"]), replace=False)
            return member, True
        self._apply_body(lst, existing, body, creating=False)
        if new_status is not None:
            self._apply_status(existing, new_status)
        return existing, creating

    # -- handlers: account and lists ---------------------------------------------------------

    async def ping(self, request: Request) -> Response:
        return JSONResponse({"health_status": "Everything's Chimpy!"})

    async def root(self, request: Request) -> Response:
        return JSONResponse(
            {
                "account_id": "segsync-emulator",
                "account_name": "segsync emulator",
                "login_id": "1",
                "email": "owner@segsync.dev",
                "role": "owner",
                "_links": [],
            }
        )

    def _list_json(self, lst: AudienceList) -> dict[str, Any]:
        counts = {
            s: sum(1 for m in lst.members.values() if m.status == s)
            for s in ("subscribed", "unsubscribed", "cleaned")
        }
        return {
            "id": lst.id,
            "web_id": lst.web_id,
            "name": lst.name,
            "date_created": _iso(lst.created),
            "double_optin": False,
            "marketing_permissions": bool(lst.marketing_permissions),
            "stats": {
                "member_count": counts["subscribed"],
                "unsubscribe_count": counts["unsubscribed"],
                "cleaned_count": counts["cleaned"],
                "merge_field_count": len(lst.merge_fields),
            },
            "_links": [],
        }

    async def get_lists(self, request: Request) -> Response:
        count, offset = self._page(request)
        items = list(self.lists.values())
        return self._reply(
            request,
            {
                "lists": [self._list_json(x) for x in items[offset : offset + count]],
                "total_items": len(items),
                "_links": [],
            },
        )

    async def get_list(self, request: Request) -> Response:
        return self._reply(request, self._list_json(self._list(request)))

    async def batch_subscribe(self, request: Request) -> Response:
        lst = self._list(request)
        body = await self._body(request)
        members = body.get("members")
        if not isinstance(members, list):
            raise _schema_invalid("", "Required fields were not provided: members")
        if len(members) > MAX_BATCH_MEMBERS:
            raise _schema_invalid(
                "members", f"Array has too many items ({len(members)}), maximum 500 allowed"
            )
        update_existing = bool(body.get("update_existing", False))
        sync_tags = bool(body.get("sync_tags", False))
        skip_dupes = request.query_params.get("skip_duplicate_check", "false").lower() == "true"
        failing = (
            self.faults.failing_indexes(len(members))
            if self.partial_failure_requested(request)
            else set()
        )
        new: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()
        for index, item in enumerate(members):
            email = str(item.get("email_address", "")) if isinstance(item, dict) else ""
            h = subscriber_hash(email)
            if not isinstance(item, dict):
                errors.append(_batch_error(email, "Schema describes object", "ERROR_GENERIC"))
                continue
            if h in seen:
                if skip_dupes:
                    continue
                errors.append(
                    _batch_error(email, f"{email} is a duplicate in this batch", "ERROR_GENERIC")
                )
                continue
            seen.add(h)
            if index in failing:
                errors.append(
                    _batch_error(
                        email,
                        "An unexpected internal error has occurred. Please try again later.",
                        "ERROR_GENERIC",
                    )
                )
                continue
            existing = lst.members.get(h)
            if existing is not None and existing.status != "archived" and not update_existing:
                errors.append(
                    _batch_error(
                        email,
                        f"{email} is already a list member, do you want to update? please provide "
                        "update_existing:true in the request body",
                        "ERROR_CONTACT_EXISTS",
                    )
                )
                continue
            try:
                member, created = self._upsert(
                    lst,
                    item,
                    existing=existing,
                    status=item.get("status"),
                    allow_tags=True,
                )
                if not created and sync_tags and "tags" in item:
                    self._set_tags(lst, member, list(item.get("tags") or []), replace=True)
            except ApiProblem as problem:
                field_error = (problem.errors or [{}])[0]
                errors.append(
                    _batch_error(
                        email,
                        problem.detail,
                        "ERROR_GENERIC",
                        field=field_error.get("field", ""),
                        field_message=field_error.get("message", ""),
                    )
                )
                continue
            (new if created else updated).append(self._member_json(lst, member))
        return JSONResponse(
            {
                "new_members": new,
                "updated_members": updated,
                "errors": errors,
                "total_created": len(new),
                "total_updated": len(updated),
                "error_count": len(errors),
                "_links": [],
            }
        )

    # -- handlers: members ------------------------------------------------------------------

    async def list_members(self, request: Request) -> Response:
        lst = self._list(request)
        q = request.query_params
        count, offset = self._page(request)
        status = q.get("status")
        members = [
            m
            for m in lst.members.values()
            if (m.status == status if status else m.status != "archived")
        ]
        try:
            if q.get("since_last_changed"):
                since = _parse_time(q["since_last_changed"])
                members = [m for m in members if m.last_changed >= since]
            if q.get("before_last_changed"):
                before = _parse_time(q["before_last_changed"])
                members = [m for m in members if m.last_changed < before]
        except ValueError:
            raise _schema_invalid("since_last_changed", "Invalid date-time format") from None
        if q.get("vip_only", "").lower() == "true":
            members = [m for m in members if m.vip]
        sort_field = q.get("sort_field")
        if sort_field == "last_changed":
            members.sort(
                key=lambda m: (m.last_changed, m.web_id), reverse=q.get("sort_dir") == "DESC"
            )
        elif sort_field in ("timestamp_opt", "timestamp_signup"):
            members.sort(key=lambda m: getattr(m, sort_field), reverse=q.get("sort_dir") == "DESC")
        page = members[offset : offset + count]
        return self._reply(
            request,
            {
                "members": [self._member_json(lst, m) for m in page],
                "list_id": lst.id,
                "total_items": len(members),
                "_links": [],
            },
        )

    def _member_or_404(self, lst: AudienceList, request: Request) -> Member:
        member = lst.members.get(self._hash_param(request.path_params["member"]))
        if member is None:
            raise _not_found()
        return member

    async def get_member(self, request: Request) -> Response:
        lst = self._list(request)
        return self._reply(request, self._member_json(lst, self._member_or_404(lst, request)))

    async def post_member(self, request: Request) -> Response:
        lst = self._list(request)
        body = await self._body(request)
        email = self._check_email(body.get("email_address"))
        if "status" not in body:
            raise _schema_invalid("", "Required fields were not provided: status")
        existing = lst.members.get(subscriber_hash(email))
        if existing is not None and existing.status != "archived":
            raise ApiProblem(
                "MemberExists",
                f"{email} is already a list member. Use PUT to insert or update list members.",
            )
        member, _ = self._upsert(lst, body, existing=existing, status=body["status"])
        return self._reply(request, self._member_json(lst, member))

    async def put_member(self, request: Request) -> Response:
        lst = self._list(request)
        body = await self._body(request)
        path_hash = self._hash_param(request.path_params["member"])
        existing = lst.members.get(path_hash)
        email = body.get("email_address") or (existing.email_address if existing else None)
        email = self._check_email(email)
        if subscriber_hash(email) != path_hash:
            raise ApiProblem(
                "MemberExists",
                f"{email} is already a list member. Use PUT to insert or update list members.",
            )
        if existing is None and "status_if_new" not in body and "status" not in body:
            raise _schema_invalid("", "Required fields were not provided: status_if_new")
        member, _ = self._upsert(
            lst,
            body,
            existing=existing,
            status=body.get("status"),
            status_if_new=body.get("status_if_new"),
            allow_tags=False,
        )
        return self._reply(request, self._member_json(lst, member))

    async def patch_member(self, request: Request) -> Response:
        lst = self._list(request)
        member = self._member_or_404(lst, request)
        body = await self._body(request)
        status = body.get("status")
        if status is not None and status not in STATUSES_PATCH:
            raise _schema_invalid("status", f"Value is not one of {list(STATUSES_PATCH)}")
        self._upsert(lst, body, existing=member, status=status, allow_tags=False)
        return self._reply(request, self._member_json(lst, member))

    async def archive_member(self, request: Request) -> Response:
        lst = self._list(request)
        member = self._member_or_404(lst, request)
        if member.status == "archived":
            raise ApiProblem(
                "MethodNotAllowed",
                "This list member cannot be removed.  Please contact support.",
                headers={"Allow": "GET, PUT"},
            )
        member.status = "archived"
        self._touch(member)
        return Response(status_code=204)

    async def delete_permanent(self, request: Request) -> Response:
        lst = self._list(request)
        member = self._member_or_404(lst, request)
        del lst.members[member.id]
        lst.forgotten.add(member.id)
        for segment in lst.segments.values():
            segment.members.pop(member.id, None)
        return Response(status_code=204)

    async def get_member_tags(self, request: Request) -> Response:
        lst = self._list(request)
        member = self._member_or_404(lst, request)
        count, offset = self._page(request)
        tags = [
            {"id": s.id, "name": s.name, "date_added": _iso(s.members[member.id])}
            for s in sorted(lst.segments.values(), key=lambda s: s.id)
            if s.type == "static" and member.id in s.members
        ]
        return self._reply(
            request,
            {
                "tags": tags[offset : offset + count],
                "total_items": len(tags),
                "_links": [],
            },
        )

    async def post_member_tags(self, request: Request) -> Response:
        lst = self._list(request)
        member = self._member_or_404(lst, request)
        body = await self._body(request)
        tags = body.get("tags")
        if not isinstance(tags, list):
            raise _schema_invalid("", "Required fields were not provided: tags")
        add = [t["name"] for t in tags if isinstance(t, dict) and t.get("status") == "active"]
        remove = {
            str(t["name"]).casefold()
            for t in tags
            if isinstance(t, dict) and t.get("status") == "inactive"
        }
        self._set_tags(lst, member, add, replace=False)
        changed = False
        for segment in lst.segments.values():
            if (
                segment.type == "static"
                and segment.name.casefold() in remove
                and member.id in segment.members
            ):
                del segment.members[member.id]
                changed = True
        if changed and self.tag_changes_bump_last_changed:
            self._touch(member)
        return Response(status_code=204)

    # -- handlers: merge fields and interests ----------------------------------------------

    def _merge_json(self, lst: AudienceList, mf: MergeField) -> dict[str, Any]:
        return {
            "merge_id": mf.merge_id,
            "tag": mf.tag,
            "name": mf.name,
            "type": mf.type,
            "required": mf.required,
            "default_value": mf.default_value,
            "public": mf.public,
            "display_order": mf.display_order,
            "options": mf.options,
            "help_text": mf.help_text,
            "list_id": lst.id,
            "_links": [],
        }

    async def get_merge_fields(self, request: Request) -> Response:
        lst = self._list(request)
        count, offset = self._page(request)
        fields = list(lst.merge_fields.values())
        if request.query_params.get("type"):
            fields = [f for f in fields if f.type == request.query_params["type"]]
        return self._reply(
            request,
            {
                "merge_fields": [self._merge_json(lst, f) for f in fields[offset : offset + count]],
                "list_id": lst.id,
                "total_items": len(fields),
                "_links": [],
            },
        )

    async def post_merge_field(self, request: Request) -> Response:
        lst = self._list(request)
        body = await self._body(request)
        name, type_ = body.get("name"), body.get("type")
        if not name or not type_:
            raise _schema_invalid("", "Required fields were not provided: name, type")
        if type_ not in MERGE_TYPES:
            raise _schema_invalid("type", f"Value is not one of {list(MERGE_TYPES)}")
        tag = str(body.get("tag") or "").upper()
        if not tag:
            tag = f"MMERGE{max((f.merge_id for f in lst.merge_fields.values()), default=0) + 1}"
        if not re.fullmatch(r"[A-Z0-9_]{1,10}", tag):
            raise _invalid(
                "Merge tags may only contain letters, numbers and underscores, and be at most "
                "10 characters long.",
                [{"field": "tag", "message": "Please enter a valid merge tag"}],
            )
        if tag in lst.merge_fields:
            raise _invalid(f'A Merge Field with the tag "{tag}" already exists for this list.')
        if len(lst.merge_fields) >= 30:
            raise _invalid("This list already has the maximum of 30 merge fields.")
        options = dict(body.get("options") or {})
        if type_ in ("radio", "dropdown") and not options.get("choices"):
            raise _invalid("Choices are required for dropdown and radio merge fields.")
        if type_ in ("date", "birthday"):
            options.setdefault("date_format", "MM/DD/YYYY" if type_ == "date" else "MM/DD")
        mf = MergeField(
            merge_id=max((f.merge_id for f in lst.merge_fields.values()), default=0) + 1,
            tag=tag,
            name=str(name),
            type=str(type_),
            required=bool(body.get("required", False)),
            default_value=str(body.get("default_value", "")),
            public=bool(body.get("public", False)),
            display_order=int(body.get("display_order") or len(lst.merge_fields) + 2),
            options=options,
            help_text=str(body.get("help_text", "")),
        )
        lst.merge_fields[tag] = mf
        for member in lst.members.values():
            member.merge_fields.setdefault(tag, "")
        return self._reply(request, self._merge_json(lst, mf))

    def _category(self, lst: AudienceList, request: Request) -> InterestCategory:
        category = lst.categories.get(request.path_params["category_id"])
        if category is None:
            raise _not_found()
        return category

    def _category_json(self, lst: AudienceList, c: InterestCategory) -> dict[str, Any]:
        return {
            "list_id": lst.id,
            "id": c.id,
            "title": c.title,
            "display_order": c.display_order,
            "type": c.type,
            "_links": [],
        }

    async def get_categories(self, request: Request) -> Response:
        lst = self._list(request)
        count, offset = self._page(request)
        cats = list(lst.categories.values())
        return self._reply(
            request,
            {
                "list_id": lst.id,
                "categories": [self._category_json(lst, c) for c in cats[offset : offset + count]],
                "total_items": len(cats),
                "_links": [],
            },
        )

    async def post_category(self, request: Request) -> Response:
        lst = self._list(request)
        body = await self._body(request)
        if not body.get("title") or body.get("type") not in (
            "checkboxes",
            "dropdown",
            "radio",
            "hidden",
        ):
            raise _schema_invalid("", "Required fields were not provided: title, type")
        cid = hashlib.md5(
            f"{lst.id}:{body['title']}:{next(self._ids)}".encode(), usedforsecurity=False
        ).hexdigest()[:10]
        category = InterestCategory(
            cid, str(body["title"]), str(body["type"]), int(body.get("display_order") or 0)
        )
        lst.categories[cid] = category
        return self._reply(request, self._category_json(lst, category))

    async def get_interests(self, request: Request) -> Response:
        lst = self._list(request)
        category = self._category(lst, request)
        count, offset = self._page(request)
        items = list(category.interests.values())
        return self._reply(
            request,
            {
                "interests": items[offset : offset + count],
                "list_id": lst.id,
                "category_id": category.id,
                "total_items": len(items),
                "_links": [],
            },
        )

    async def post_interest(self, request: Request) -> Response:
        lst = self._list(request)
        category = self._category(lst, request)
        body = await self._body(request)
        if not body.get("name"):
            raise _schema_invalid("", "Required fields were not provided: name")
        total = sum(len(c.interests) for c in lst.categories.values())
        if total >= 60:
            raise _invalid("This list already has the maximum of 60 group names.")
        if any(i["name"] == body["name"] for i in category.interests.values()):
            raise _invalid(f'Cannot add "{body["name"]}" because it already exists on the list.')
        iid = hashlib.md5(
            f"{category.id}:{body['name']}:{next(self._ids)}".encode(), usedforsecurity=False
        ).hexdigest()[:10]
        interest = {
            "category_id": category.id,
            "list_id": lst.id,
            "id": iid,
            "name": str(body["name"]),
            "subscriber_count": "0",
            "display_order": int(body.get("display_order") or 0),
            "_links": [],
        }
        category.interests[iid] = interest
        for member in lst.members.values():
            member.interests.setdefault(iid, False)
        return self._reply(request, interest)

    # -- handlers: tags and segments --------------------------------------------------------

    async def tag_search(self, request: Request) -> Response:
        lst = self._list(request)
        prefix = request.query_params.get("name", "")
        tags = [
            {"id": s.id, "name": s.name}
            for s in sorted(lst.segments.values(), key=lambda s: s.id)
            if s.type == "static" and s.name.lower().startswith(prefix.lower())
        ]
        return self._reply(request, {"tags": tags, "total_items": len(tags)})

    def _segment(self, lst: AudienceList, request: Request) -> Segment:
        try:
            sid = int(request.path_params["segment_id"])
        except ValueError:
            raise _not_found() from None
        segment = lst.segments.get(sid)
        if segment is None:
            raise _not_found()
        return segment

    def _segment_members(self, lst: AudienceList, segment: Segment) -> list[Member]:
        members = [m for m in lst.members.values() if m.status != "archived"]
        if segment.type == "static":
            return [m for m in members if m.id in segment.members]
        options = segment.options or {}
        conditions = options.get("conditions") or []
        if not conditions:
            return []
        combine = all if options.get("match") == "all" else any
        return [m for m in members if combine(self._condition_holds(lst, m, c) for c in conditions)]

    def _condition_holds(
        self, lst: AudienceList, member: Member, condition: Mapping[str, Any]
    ) -> bool:
        entry = CONDITION_EVALUATORS.get(str(condition.get("condition_type")))
        if entry is None:
            return False
        return entry[0](self, lst, member, condition)

    def _segment_json(self, lst: AudienceList, segment: Segment) -> dict[str, Any]:
        members = self._segment_members(lst, segment)
        data: dict[str, Any] = {
            "id": segment.id,
            "name": segment.name,
            "member_count": sum(1 for m in members if m.status == "subscribed"),
            "type": segment.type,
            "created_at": _iso(segment.created_at),
            "updated_at": _iso(segment.updated_at),
            "list_id": lst.id,
            "_links": [],
        }
        if segment.type == "saved":
            data["options"] = segment.options
        return data

    def _validate_options(self, lst: AudienceList, options: Any) -> dict[str, Any]:
        if not isinstance(options, dict):
            raise _schema_invalid("options", "Schema describes object, array found instead")
        match = options.get("match", "any")
        if match not in ("any", "all"):
            raise _schema_invalid("options.match", "Value is not one of ['any', 'all']")
        conditions = options.get("conditions")
        if isinstance(conditions, list) and any(isinstance(c, list) for c in conditions):
            # the PATCH schema's nested form: the same conditions, one level down
            conditions = [
                c for group in conditions for c in (group if isinstance(group, list) else [group])
            ]
        if not isinstance(conditions, list):
            raise _schema_invalid(
                "options.conditions", "Schema describes array, object found instead"
            )
        if len(conditions) > self.max_segment_conditions:
            raise _invalid(
                f"Segments may have at most {self.max_segment_conditions} conditions.",
                [
                    {
                        "field": "options.conditions",
                        "message": f"at most {self.max_segment_conditions} conditions",
                    }
                ],
            )
        for index, condition in enumerate(conditions):
            where = f"options.conditions.{index}"
            if not isinstance(condition, dict):
                raise _schema_invalid(where, "Schema describes object, array found instead")
            ctype = condition.get("condition_type")
            if ctype in CONDITION_EVALUATORS:
                ops = CONDITION_EVALUATORS[ctype][1]
                if condition.get("op") not in ops:
                    raise _schema_invalid(f"{where}.op", f"Value is not one of {sorted(ops)}")
                if ctype == "StaticSegment":
                    target = lst.segments.get(_int_or(condition.get("value"), -1))
                    if target is None or target.type != "static":
                        raise _invalid(
                            f"Static segment {condition.get('value')!r} does not exist.",
                            [{"field": f"{where}.value", "message": "unknown segment"}],
                        )
                if (
                    ctype in ("TextMerge", "SelectMerge", "DateMerge", "BirthdayMerge")
                    and str(condition.get("field", "")).upper() not in lst.merge_fields
                ):
                    raise _invalid(
                        f"Merge field {condition.get('field')!r} does not exist.",
                        [{"field": f"{where}.field", "message": "unknown merge field"}],
                    )
            elif ctype not in STORED_CONDITION_TYPES:
                raise _schema_invalid(
                    where, "Data did not match any of the schemas described in anyOf."
                )
        return {"match": match, "conditions": conditions}

    async def get_segments(self, request: Request) -> Response:
        lst = self._list(request)
        count, offset = self._page(request)
        kind = request.query_params.get("type")
        segments = [
            s
            for s in sorted(lst.segments.values(), key=lambda s: s.id)
            if kind is None or s.type == kind
        ]
        return self._reply(
            request,
            {
                "segments": [self._segment_json(lst, s) for s in segments[offset : offset + count]],
                "list_id": lst.id,
                "total_items": len(segments),
                "_links": [],
            },
        )

    async def post_segment(self, request: Request) -> Response:
        lst = self._list(request)
        body = await self._body(request)
        if not body.get("name"):
            raise _schema_invalid("", "Required fields were not provided: name")
        has_options, has_static = "options" in body, "static_segment" in body
        if has_options == has_static:
            raise _invalid('Must provide either an "options" field or a "static_segment" field')
        now = self.clock.now()
        if has_options:
            options = self._validate_options(lst, body["options"])
            segment = Segment(
                next(self._segment_ids), str(body["name"]), "saved", now, now, options
            )
        else:
            if self._tag_segment(lst, str(body["name"]), create=False) is not None:
                raise _invalid(f'Tag "{body["name"]}" already exists.')
            segment = Segment(next(self._segment_ids), str(body["name"]), "static", now, now)
            for email in body["static_segment"] or []:
                h = subscriber_hash(str(email))
                if h in lst.members:
                    segment.members[h] = now
        lst.segments[segment.id] = segment
        return self._reply(request, self._segment_json(lst, segment))

    async def get_segment(self, request: Request) -> Response:
        lst = self._list(request)
        return self._reply(request, self._segment_json(lst, self._segment(lst, request)))

    async def patch_segment(self, request: Request) -> Response:
        lst = self._list(request)
        segment = self._segment(lst, request)
        body = await self._body(request)
        if not body.get("name"):
            raise _schema_invalid("", "Required fields were not provided: name")
        if "options" in body and "static_segment" in body:
            raise _invalid('Must provide either an "options" field or a "static_segment" field')
        segment.name = str(body["name"])
        if "options" in body:
            if segment.type != "saved":
                raise _invalid("Cannot add conditions to a static segment.")
            segment.options = self._validate_options(lst, body["options"])
        if "static_segment" in body:
            if segment.type != "static":
                raise _invalid("Cannot set static members of a saved segment.")
            now = self.clock.now()
            segment.members = {
                subscriber_hash(str(e)): now
                for e in body["static_segment"] or []
                if subscriber_hash(str(e)) in lst.members
            }
        segment.updated_at = self.clock.now()
        return self._reply(request, self._segment_json(lst, segment))

    async def delete_segment(self, request: Request) -> Response:
        lst = self._list(request)
        segment = self._segment(lst, request)
        del lst.segments[segment.id]
        return Response(status_code=204)

    async def bulk_segment(self, request: Request) -> Response:
        lst = self._list(request)
        segment = self._segment(lst, request)
        body = await self._body(request)
        add = body.get("members_to_add") or []
        remove = body.get("members_to_remove") or []
        if len(add) > MAX_SEGMENT_BULK or len(remove) > MAX_SEGMENT_BULK:
            raise _invalid(
                "Maximum allowed member items exceeded, please provide at most 500 items in "
                "members_to_add field or members_to_remove field"
            )
        if segment.type != "static":
            raise _invalid("Cannot add or remove members of a saved segment.")
        now = self.clock.now()
        added: list[dict[str, Any]] = []
        removed: list[dict[str, Any]] = []
        missing: list[str] = []
        for email in add:
            member = lst.members.get(subscriber_hash(str(email)))
            if member is None or member.status == "archived":
                missing.append(str(email))
                continue
            if member.id not in segment.members:
                segment.members[member.id] = now
                if self.tag_changes_bump_last_changed:
                    self._touch(member)
                added.append(self._member_json(lst, member))
        for email in remove:
            member = lst.members.get(subscriber_hash(str(email)))
            if member is None:
                missing.append(str(email))
                continue
            if member.id in segment.members:
                del segment.members[member.id]
                if self.tag_changes_bump_last_changed:
                    self._touch(member)
                removed.append(self._member_json(lst, member))
        errors = (
            [
                {
                    "email_addresses": missing,
                    "error": "Email addresses are not subscribed to the list",
                }
            ]
            if missing
            else []
        )
        segment.updated_at = now
        return JSONResponse(
            {
                "members_added": added,
                "members_removed": removed,
                "errors": errors,
                "total_added": len(added),
                "total_removed": len(removed),
                "error_count": len(missing),
                "_links": [],
            }
        )

    async def get_segment_members(self, request: Request) -> Response:
        lst = self._list(request)
        segment = self._segment(lst, request)
        count, offset = self._page(request)
        q = request.query_params
        # subscribed and pending members always; the flags add the other statuses
        visible = {"subscribed", "pending"}
        for flag, status in (
            ("include_cleaned", "cleaned"),
            ("include_transactional", "transactional"),
            ("include_unsubscribed", "unsubscribed"),
        ):
            if q.get(flag, "false").lower() == "true":
                visible.add(status)
        members = [m for m in self._segment_members(lst, segment) if m.status in visible]
        return self._reply(
            request,
            {
                "members": [self._member_json(lst, m) for m in members[offset : offset + count]],
                "total_items": len(members),
                "_links": [],
            },
        )


# -- small pure helpers ------------------------------------------------------------------


def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _batch_error(
    email: str, message: str, code: str, *, field: str = "", field_message: str = ""
) -> dict[str, Any]:
    return {
        "email_address": email,
        "error": message,
        "error_code": code,
        "field": field,
        "field_message": field_message,
    }


def _merge_value_problem(mf: MergeField, value: Any) -> str | None:
    """Why Mailchimp refuses `value` for `mf` (None when accepted)."""
    if value is None or value == "":
        return None
    match mf.type:
        case "number":
            if isinstance(value, bool):
                return "Please enter a number"
            try:
                float(value)
            except (TypeError, ValueError):
                return "Please enter a number"
        case "date":
            fmt = str(mf.options.get("date_format") or "MM/DD/YYYY")
            if not isinstance(value, str) or _date_of(value, fmt) is None:
                return "Please enter a date"
        case "birthday":
            if not isinstance(value, str) or not re.fullmatch(r"\d{2}/\d{2}", value):
                return "Please enter a month (01-12) and a day (01-31)"
        case "dropdown" | "radio":
            if str(value) not in [str(c) for c in mf.options.get("choices", [])]:
                return "Please select one of the choices"
        case "address":
            if not isinstance(value, dict) or not all(
                value.get(k) for k in ("addr1", "city", "state", "zip")
            ):
                return "Please enter a complete address"
        case "text" | "phone" | "url" | "imageurl" | "zip":
            if not isinstance(value, str | int | float):
                return "Data did not match any of the schemas described in anyOf."
    return None


def _normalise_merge_value(mf: MergeField, value: Any) -> Any:
    if value is None:
        return ""
    if mf.type == "number" and value != "":
        number = float(value)
        return int(number) if number.is_integer() else number
    if mf.type == "date" and value != "":
        fmt = str(mf.options.get("date_format") or "MM/DD/YYYY")
        parsed = _date_of(str(value), fmt)
        return parsed.isoformat() if parsed else ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _split_path(path: str) -> list[str]:
    return [p for p in path.split(".") if p]


def _only_fields(data: dict[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """Mailchimp `fields`: keep only the dot paths listed (list items filtered alike)."""
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in _split_path(path):
            node = node.setdefault(part, {})

    def keep(value: Any, spec: dict[str, Any]) -> Any:
        if not spec:
            return value
        if isinstance(value, list):
            return [keep(v, spec) for v in value]
        if isinstance(value, dict):
            return {k: keep(value[k], sub) for k, sub in spec.items() if k in value}
        return value

    return keep(data, tree)  # type: ignore[no-any-return]


def _exclude_fields(data: dict[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """Mailchimp `exclude_fields`: drop the dot paths listed."""

    def drop(value: Any, parts: list[str]) -> None:
        if isinstance(value, list):
            for v in value:
                drop(v, parts)
        elif isinstance(value, dict) and parts:
            if len(parts) == 1:
                value.pop(parts[0], None)
            elif parts[0] in value:
                drop(value[parts[0]], parts[1:])

    copy = json.loads(json.dumps(data))
    for path in paths:
        drop(copy, _split_path(path))
    return copy  # type: ignore[no-any-return]
