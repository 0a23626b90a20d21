"""The Mailchimp emulator's state: audiences, members, merge fields, groups, segments.

`MailchimpState` is the emulator's state and the operations on it that the routes share
(validating and applying a member body, status transitions under the compliance flag, tags
as static segments, evaluating a saved segment). Tests arrange and inspect it without HTTP
through `seed_<thing>` / `get_<thing>` (`seed_list`, `seed_member`, `seed_merge_field`,
`seed_lived_in` for an audience in use before segsync, `get_member`, `get_member_tags`,
`get_segment_matches`) and the `lists` attribute; people act on the platform between or
during runs through `confirm_double_opt_in`, `unsubscribe` and `bounce`, and while a read
pages through `after_read_page` (called after each page of `GET /lists/{id}/members` is
answered, with the number of such pages answered so far: what it changes lands between that
page and the next). Validation failures raise `ApiProblem`, which the routes turn into
Mailchimp's problem+json answers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import random
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from segsync.clock import Clock
from segsync.emulator.fixture import FixtureError, Seedable
from segsync_mailchimp.api import iso_time, subscriber_hash
from segsync_mailchimp.emulator.conditions import CONDITION_EVALUATORS, date_of
from segsync_mailchimp.emulator.fixture import MailchimpFixture, MemberFixture
from segsync_mailchimp.errors import ERROR_TITLES

__all__ = [
    "ApiProblem",
    "AudienceList",
    "InterestCategory",
    "MailchimpState",
    "Member",
    "MergeField",
    "Segment",
]

MAX_MEMBER_TAGS_SHOWN = 50
STATUSES_WRITABLE = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
FAKE_DOMAINS = ("example.com", "example.org", "example.net")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


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
        status, default_title = ERROR_TITLES[name]
        super().__init__(detail)
        self.status = status
        self.title = title or default_title
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


def not_found() -> ApiProblem:
    return ApiProblem("ResourceNotFound", "The requested resource could not be found.")


def invalid(detail: str, errors: list[dict[str, str]] | None = None) -> ApiProblem:
    return ApiProblem("InvalidResource", detail, errors=errors)


def schema_invalid(field: str, message: str) -> ApiProblem:
    return invalid(
        "The resource submitted could not be validated. For field-specific details, see the "
        "'errors' array.",
        [{"field": field, "message": message}],
    )


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
    unsubscribe_reason: str = ""
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
    #: the audience's settings as created (`POST /lists`): contact, campaign_defaults, ...
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)


class MailchimpState(Seedable):
    """The emulated account's audiences and the operations on them; see the module docstring.

    `load_fixture(data)` / `from_fixture(path_or_name)` stage a lived-in account from a
    `MailchimpFixture` (`segsync_mailchimp.emulator.fixture`); the bundled `lived-in` one
    holds the people `seed_lived_in` stages, and more.

    The emulator's `__init__` sets every attribute declared here.
    """

    clock: Clock
    random: random.Random
    default_list_id: ClassVar[str]
    lists: dict[str, AudienceList]
    reject_fake_emails: bool
    tag_changes_bump_last_changed: bool
    batch_items_need_status: bool
    tag_search_pages: bool
    after_read_page: Callable[[int], Any] | None  # set by `Emulator` (segsync.emulator.base)

    if TYPE_CHECKING:  # defined by `Emulator`

        async def read_page_served(self) -> None: ...

    _ids: itertools.count[int]
    _segment_ids: itertools.count[int]
    fixture_model = MailchimpFixture

    # -- seeding / inspection ---------------------------------------------------------------

    def seed_list(self, name: str, *, list_id: str | None = None) -> AudienceList:
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

    def seed_member(
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
        """Seed a member directly (as if the person signed up); unsubscribed/cleaned are blocked.
        An address the audience holds stays the same member (its `contact_id` kept)."""
        lst = self.lists[list_id or self.default_list_id]
        member = self._new_member(lst, email, status)
        held = lst.members.get(member.id)
        if held is not None:
            member.contact_id, member.unique_email_id = held.contact_id, held.unique_email_id
            member.web_id = held.web_id
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

    def seed_merge_field(
        self, tag: str, name: str, type_: str = "text", *, list_id: str | None = None
    ) -> MergeField:
        """Create a merge field as the account's user would (every member gets it empty)."""
        lst = self.lists[list_id or self.default_list_id]
        tag = tag.upper()
        order = len(lst.merge_fields) + 1
        field = MergeField(order, tag, name, type_, display_order=order + 1)
        lst.merge_fields[tag] = field
        for member in lst.members.values():
            member.merge_fields.setdefault(tag, "")
        return field

    def seed_lived_in(self, *, list_id: str | None = None) -> dict[str, str]:
        """An audience people have used for years, before segsync: email -> status.

        The user's own merge field (`COMPANY`) and tags (`Customers 2023`, `Webinar`), and a
        member in every status, each with some of them: subscribed through a form (with
        `timestamp_opt` and `ip_opt`), pending (double opt-in asked, never confirmed),
        transactional (a customer who never opted in), unsubscribed by the person (who had
        opted in once) and cleaned (hard bounce). Archived members are left to the tests.
        """
        lid = list_id or self.default_list_id
        if "COMPANY" not in self.lists[lid].merge_fields:
            self.seed_merge_field("COMPANY", "Company", list_id=lid)
        opted = iso_time(self.clock.now() - dt.timedelta(days=400))
        people: list[tuple[str, str, dict[str, Any], tuple[str, ...], dict[str, Any]]] = [
            (
                "ada.subscribed@lived.dev",
                "subscribed",
                {"FNAME": "Ada", "COMPANY": "Analytical"},
                ("Customers 2023", "Webinar"),
                {"timestamp_opt": opted, "ip_opt": "198.51.100.20", "source": "Hosted Signup Form"},
            ),
            (
                "ben.pending@lived.dev",
                "pending",
                {"FNAME": "Ben"},
                ("Webinar",),
                {"source": "Hosted Signup Form", "ip_signup": "198.51.100.21"},
            ),
            (
                "cy.transactional@lived.dev",
                "transactional",
                {"FNAME": "Cy", "COMPANY": "Cyclops"},
                ("Customers 2023",),
                {"source": "E-commerce"},
            ),
            (
                "dee.unsubscribed@lived.dev",
                "unsubscribed",
                {"FNAME": "Dee", "COMPANY": "Deep"},
                ("Customers 2023",),
                {"timestamp_opt": opted, "unsubscribe_reason": "I no longer want these emails"},
            ),
            (
                "eve.cleaned@lived.dev",
                "cleaned",
                {"FNAME": "Eve"},
                ("Webinar",),
                {"timestamp_opt": opted},
            ),
        ]
        for email, status, merge, tags, attrs in people:
            self.seed_member(email, status, list_id=lid, merge_fields=merge, tags=tags, **attrs)
        return {email: status for email, status, *_ in people}

    def apply_fixture(self, fixture: MailchimpFixture) -> None:
        """Stage `fixture`'s audiences (see `segsync_mailchimp.emulator.fixture`); raises
        FixtureError naming the place of a value Mailchimp would refuse or a time after now."""
        problems: list[str] = []
        for a, audience in enumerate(fixture.audiences):
            where = f"audiences[{a}]"
            lid = audience.id or self.default_list_id
            lst = self.lists.get(lid) or self.seed_list(audience.name or lid, list_id=lid)
            if audience.name:
                lst.name = audience.name
            if audience.created is not None:
                lst.created = self.fixture_time(audience.created, f"{where}.created")
            for spec in audience.merge_fields:
                field = self.seed_merge_field(spec.tag, spec.name, spec.type, list_id=lid)
                field.required = spec.required
                if spec.choices:
                    field.options["choices"] = list(spec.choices)
                if spec.date_format:
                    field.options["date_format"] = spec.date_format
            for tag in audience.tags:
                self._tag_segment(lst, tag, create=True)
            for m, spec_m in enumerate(audience.members):
                try:
                    self._fixture_member(lst, spec_m, f"{where}.members[{m}]")
                except ApiProblem as exc:
                    fields = "; ".join(
                        f"{e.get('field')}: {e.get('message')}" for e in exc.errors or []
                    )
                    problems.append(f"{where}.members[{m}]: {exc.detail} {fields}".strip())
            for spec_s in audience.segments:
                now = self.clock.now()
                segment = Segment(next(self._segment_ids), spec_s.name, "saved", now, now)
                segment.options = {"match": spec_s.match, "conditions": list(spec_s.conditions)}
                lst.segments[segment.id] = segment
        if problems:
            raise FixtureError("<data>", problems)

    def _fixture_member(self, lst: AudienceList, spec: MemberFixture, place: str) -> Member:
        created = self.fixture_time(spec.created, f"{place}.created")
        changed = self.fixture_time(spec.last_changed, f"{place}.last_changed")
        if spec.last_changed is None:
            changed = created
        if changed < created:
            raise FixtureError("<data>", [f"{place}.last_changed: before created"])
        merge = self._validate_merge_fields(lst, spec.merge_fields, creating=False)
        unknown = {k.upper() for k in spec.merge_fields} - set(lst.merge_fields)
        if unknown:
            raise FixtureError(
                "<data>", [f"{place}.merge_fields: no merge field {', '.join(sorted(unknown))}"]
            )
        status = spec.status
        member = self.seed_member(
            spec.email,
            "unsubscribed" if status == "archived" else status,
            list_id=lst.id,
            merge_fields=merge,
            tags=spec.tags,
            ip_opt=spec.ip_opt,
            ip_signup=spec.ip_signup,
            source=spec.source,
            unsubscribe_reason=spec.unsubscribe_reason,
            language=spec.language,
            vip=spec.vip,
        )
        if status == "archived":
            member.status = "archived"
            member.compliance_blocked = False
        member.created = created
        member.last_changed = changed
        if spec.timestamp_opt is not None:
            opted = self.fixture_time(spec.timestamp_opt, f"{place}.timestamp_opt")
            member.timestamp_opt = iso_time(opted)
        elif status == "subscribed":
            member.timestamp_opt = iso_time(created)
        else:
            member.timestamp_opt = ""
        for segment in lst.segments.values():
            if member.id in segment.members:
                segment.members[member.id] = changed
        return member

    # -- people acting on the platform (between or during runs) -----------------------------

    def _person(self, email: str, list_id: str | None) -> Member:
        member = self.get_member(email, list_id)
        if member is None or member.status == "archived":
            raise KeyError(f"{email} is not a member of audience {list_id or self.default_list_id}")
        return member

    def confirm_double_opt_in(
        self, email: str, *, ip: str = "203.0.113.7", list_id: str | None = None
    ) -> Member:
        """The person clicks the confirmation link: pending -> subscribed, with opt-in time and IP.

        Only a pending member can confirm (ValueError otherwise); confirming lifts the
        compliance flag of a member who had unsubscribed before (the way back Mailchimp allows).
        """
        member = self._person(email, list_id)
        if member.status != "pending":
            raise ValueError(f"{email} is {member.status}, not pending: nothing to confirm")
        member.status = "subscribed"
        member.timestamp_opt = iso_time(self.clock.now())
        member.ip_opt = ip
        member.compliance_blocked = False
        member.unsubscribe_reason = ""
        self._touch(member)
        return member

    def unsubscribe(self, email: str, *, reason: str = "", list_id: str | None = None) -> Member:
        """The person unsubscribes (footer link): `unsubscribed`, blocked from re-subscription."""
        member = self._person(email, list_id)
        member.status = "unsubscribed"
        member.compliance_blocked = True
        member.unsubscribe_reason = reason
        self._touch(member)
        return member

    def bounce(self, email: str, *, list_id: str | None = None) -> Member:
        """A hard bounce: Mailchimp cleans the member (`cleaned`, blocked from re-subscription)."""
        member = self._person(email, list_id)
        member.status = "cleaned"
        member.compliance_blocked = True
        self._touch(member)
        return member

    def get_member(self, email: str, list_id: str | None = None) -> Member | None:
        """A member by email (None when absent)."""
        return self.lists[list_id or self.default_list_id].members.get(subscriber_hash(email))

    def get_member_tags(self, email: str, list_id: str | None = None) -> set[str]:
        lst = self.lists[list_id or self.default_list_id]
        h = subscriber_hash(email)
        return {s.name for s in lst.segments.values() if s.type == "static" and h in s.members}

    def get_segment_matches(self, list_id: str, segment_id: int) -> set[str]:
        """Emails a segment selects, whatever their status (saved: evaluated now)."""
        lst = self.lists[list_id]
        segment = lst.segments[segment_id]
        return {m.email_address.lower() for m in self._segment_members(lst, segment)}

    # -- Emulator contract ------------------------------------------------------------------

    # -- operations the routes share --------------------------------------------------------

    def _touch(self, member: Member) -> None:
        member.last_changed = self.clock.now()

    def _new_member(self, lst: AudienceList, email: str, status: str) -> Member:
        now = self.clock.now()
        h = subscriber_hash(email)
        web_id = next(self._ids)
        # contact_id: the member's own, whatever its address becomes (never a later member's)
        contact_id = hashlib.sha1(f"{lst.id}:{h}:{web_id}".encode(), usedforsecurity=False)
        return Member(
            email_address=email.strip(),
            status=status,
            merge_fields=dict.fromkeys(lst.merge_fields, ""),
            interests={i: False for c in lst.categories.values() for i in c.interests},
            created=now,
            last_changed=now,
            unique_email_id=h[:10],
            contact_id=contact_id.hexdigest()[:32],
            web_id=web_id,
            timestamp_signup="",
            timestamp_opt=iso_time(now) if status == "subscribed" else "",
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
            "last_changed": iso_time(m.last_changed),
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
            "unsubscribe_reason": m.unsubscribe_reason,
            "tags_count": len(tags),
            "tags": tags[:MAX_MEMBER_TAGS_SHOWN],
            "list_id": lst.id,
            "_links": [],
        }

    def _check_email(self, email: Any) -> str:
        if not isinstance(email, str) or not email.strip():
            raise schema_invalid("email_address", "Schema describes string, NULL found instead")
        email = email.strip()
        if not _EMAIL.match(email):
            raise invalid(
                f"{email} looks fake or invalid, please enter a real email address.",
                [{"field": "email_address", "message": "This value should be a valid email."}],
            )
        domain = email.rsplit("@", 1)[1].lower()
        if self.reject_fake_emails and (domain in FAKE_DOMAINS or domain.endswith(".invalid")):
            raise invalid(f"{email} looks fake or invalid, please enter a real email address.")
        return str(email)

    def _validate_merge_fields(
        self, lst: AudienceList, values: Any, *, creating: bool
    ) -> dict[str, Any]:
        """Validated merge values by tag; unknown keys dropped; 400 with field errors."""
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise schema_invalid("merge_fields", "Schema describes object, array found instead")
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
            raise invalid("Your merge fields were invalid.", errors)
        return out

    def _validate_interests(self, lst: AudienceList, values: Any) -> dict[str, bool]:
        if values is None:
            return {}
        if not isinstance(values, dict):
            raise schema_invalid("interests", "Schema describes object, array found instead")
        known = {i for c in lst.categories.values() for i in c.interests}
        out: dict[str, bool] = {}
        for key, value in values.items():
            if key not in known:
                raise invalid(
                    f"Invalid interest ID: '{key}'.",
                    [{"field": "interests", "message": f"Invalid interest ID: '{key}'"}],
                )
            if not isinstance(value, bool):
                raise schema_invalid(f"interests.{key}", "Schema describes boolean")
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
        now = iso_time(self.clock.now())
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
        # a new tag keeps the name as written; names match case-insensitively
        spelled = {str(n).casefold(): str(n) for n in names}
        wanted = set(spelled)
        now = self.clock.now()
        changed = False
        for name in spelled.values():
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
        if changed:
            self._tag_edited(member)

    def _tag_edited(self, member: Member) -> None:
        """A tag of `member` was added or removed: `last_changed` moves only when
        `tag_changes_bump_last_changed` (unverified for Mailchimp; off by default)."""
        if self.tag_changes_bump_last_changed:
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
            raise schema_invalid("", "Required fields were not provided: status")
        if new_status is not None and new_status not in STATUSES_WRITABLE:
            raise schema_invalid("status", f"Value is not one of {list(STATUSES_WRITABLE)}")
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
            if not isinstance(value, str) or date_of(value, fmt) is None:
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
        parsed = date_of(str(value), fmt)
        return parsed.isoformat() if parsed else ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value
