"""The HubSpot emulator's state, and the helpers tests seed and inspect it with.

`HubSpotState` is an account: HubSpot's built-in contact properties and property groups,
contacts (`ContactRecords`), lists (DYNAMIC ones evaluated from their filter branch, now),
subscription types and per-address subscription statuses (with opt-outs of all email). Its
constructor's keyword arguments are the emulator's knobs (API versions, tier, limits,
Marketing Hub Enterprise, a GDPR-enabled portal, the search index lag, the token's scopes,
all-or-nothing email upserts). Where HubSpot's behaviour is uncertain the default is the
strict reading and the knob gives the lenient one (docs/fidelity.md).

Test hooks (no HTTP): `seed_contact`, `modify_contact`, `set_engagement`, `hard_bounce`,
`add_subscription`, `set_subscription`, `unsubscribe_all` change state as HubSpot or a person
would; `seed_lived_in` stages a portal used before segsync; `contact_by_email`,
`subscription_status`, `list_members` read it; `status_writes` records every v4 status write;
`last_search_examined` counts the contacts the last search evaluated; `unsearchable()` lists
the contacts search does not find yet (the index lag), `read_lag_seconds` how long to wait.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from segsync.emulator.fixture import Seedable
from segsync_hubspot.emulator.fixture import HubSpotFixture, apply_hubspot_fixture
from segsync_hubspot.emulator.records import (
    BatchJournal,
    ContactRecord,
    ContactRecords,
    HubSpotError,
    ListRecord,
    StatusRecord,
    iso_time,
)
from segsync_hubspot.emulator.scopes import PRIVATE_APP_SCOPES
from segsync_hubspot.filters import RecordView, branch_accepts
from segsync_hubspot.limits import (
    BATCH_INPUTS,
    BURST_BY_TIER,
    DAILY_BY_TIER,
    SEARCH_CAP,
    SEARCH_PER_SECOND,
)

__all__ = ["HubSpotState"]

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
    ("hs_email_last_send_date", "datetime", "date", True),
    ("hs_email_first_send_date", "datetime", "date", True),
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

STRICT_SEARCH_INDEX_LAG = 5.0
"""Seconds before a write is visible to CRM search in the strict reading (docs: search is
eventually consistent, "may take a few moments"; the lag is unstated, so a few seconds)."""

SEARCH_INDEX_LAG = STRICT_SEARCH_INDEX_LAG
"""The constructor's default lag: the strict reading; `search_delay_seconds=0` gives an
instantly consistent search (docs/fidelity.md)."""

SEARCH_BODY_CHARS = 3000
"""Characters a search request body may hold (search guide: 3,000; a 400 beyond)."""

_INDEXED_PROPERTIES = ("createdate", "lastmodifieddate")
"""Datetime properties kept in a sorted (epoch ms, id) index that range searches start from."""


class HubSpotState(ContactRecords, Seedable):
    """The account's state; see the module docstring. Keyword arguments are its knobs.

    `load_fixture(data)` / `from_fixture(path_or_name)` stage a lived-in portal from a
    `HubSpotFixture` (`segsync_hubspot.emulator.fixture`; bundled: `lived-in`)."""

    fixture_model = HubSpotFixture

    def apply_fixture(self, fixture: HubSpotFixture) -> None:
        """Stage a validated fixture (see `segsync_hubspot.emulator.fixture`)."""
        apply_hubspot_fixture(self, fixture)

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
        search_delay_seconds: float | None = None,
        search_body_chars: int = SEARCH_BODY_CHARS,
        batch_limit: int = BATCH_INPUTS,
        membership_write_limit: int = 100_000,
        enterprise_consent: bool = True,
        gdpr: bool = False,
        email_upsert_all_or_nothing: bool = True,
        token_scopes: Iterable[str] | None = None,
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
        #: seconds before a write is searchable (None: the module's `SEARCH_INDEX_LAG`, read
        #: when the account is made, so a test suite can make the strict lag its default)
        self.search_delay = (
            SEARCH_INDEX_LAG if search_delay_seconds is None else search_delay_seconds
        )
        self.search_body_chars = search_body_chars
        self.batch_limit = batch_limit
        self.membership_write_limit = membership_write_limit
        self.enterprise_consent = enterprise_consent
        self.gdpr = gdpr
        self.email_upsert_all_or_nothing = email_upsert_all_or_nothing
        self.token_scopes = frozenset(PRIVATE_APP_SCOPES if token_scopes is None else token_scopes)
        self.portal_id = portal_id
        super().__init__(**kwargs)
        self.contacts: dict[str, ContactRecord] = {}
        self._by_email: dict[str, str] = {}
        #: per indexed property: sorted (epoch ms, int id) of every contact holding a value
        self._sorted: dict[str, list[tuple[int, int]]] = {n: [] for n in _INDEXED_PROPERTIES}
        #: per indexed property: contact id -> its key in `_sorted`
        self._sorted_keys: dict[str, dict[str, int]] = {n: {} for n in _INDEXED_PROPERTIES}
        self._journal: BatchJournal | None = None
        self._lagging: set[str] = set()
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
        self.lists: dict[str, ListRecord] = {}
        self._next_list_id = 1
        self.subscriptions: dict[int, dict[str, Any]] = {}
        self.statuses: dict[str, dict[int, StatusRecord]] = {}
        self.opted_out_of_all: dict[str, dt.datetime] = {}
        #: (email, subscription id, statusState) of every v4 status write, in order (test hook)
        self.status_writes: list[tuple[str, int, str]] = []
        self._correlation = 0
        # a portal's definitions as HubSpot ships them: the default marketing type (101) comes
        # after an internal default one; an inactive and an SMS default type follow
        self.add_subscription(
            99, "Service notices", "Customer Service", default=True, internal=True
        )
        self.add_subscription(101, "Marketing Information", "Marketing", default=True)
        self.add_subscription(102, "One to One", "Sales")
        self.add_subscription(103, "Newsletter (retired)", "Marketing", active=False)
        self.add_subscription(105, "SMS offers", "Marketing", default=True, method="SMS")

    @property
    def read_lag_seconds(self) -> float:
        """Seconds until every write is found by search (the conformance kit waits this long
        before it reads back what it wrote)."""
        return float(self.search_delay)

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

    def archive_contact(self, contact_id: str) -> None:
        """Archive a contact as a person in HubSpot would (the recycle bin, restorable for
        90 days)."""
        self._archive_record(self.contacts[contact_id])

    def record_email(self, email: str, action: str, *, at: dt.datetime | None = None) -> None:
        """A marketing email `send`, `open` or `click` for the contact with `email` at `at`
        (now), as HubSpot's calculated properties show it: `send` adds to
        `hs_email_delivered` and sets `hs_email_last_send_date` (and the first one), `open` /
        `click` add to `hs_email_open` / `hs_email_click` and set their last dates. Moves
        `lastmodifieddate`, as any property change does."""
        record = self._find_email(email)
        assert record is not None, email
        when = iso_time(at or self.clock.now())
        props = record.properties
        count, last = {
            "send": ("hs_email_delivered", "hs_email_last_send_date"),
            "open": ("hs_email_open", "hs_email_last_open_date"),
            "click": ("hs_email_click", "hs_email_last_click_date"),
        }[action]
        values = {count: str(int(float(props.get(count) or 0)) + 1), last: when}
        if action == "send" and not props.get("hs_email_first_send_date"):
            values["hs_email_first_send_date"] = when
        self._apply(record, values, allow_read_only=True)

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

    def add_subscription(
        self,
        sub_id: int,
        name: str,
        purpose: str = "Marketing",
        *,
        default: bool = False,
        active: bool = True,
        internal: bool = False,
        method: str = "Email",
    ) -> None:
        """Define a subscription type (and its read-only `hs_email_optout_<id>` property),
        as an admin would: default, inactive, internal or of another channel (`method`)."""
        now = self.clock.now()
        self.subscriptions[sub_id] = {
            "id": sub_id,
            "name": name,
            "description": f"{name} emails",
            "purpose": purpose,
            "communicationMethod": method,
            "isActive": active,
            "isDefault": default,
            "isInternal": internal,
            "createdAt": iso_time(now),
            "updatedAt": iso_time(now),
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

    def set_subscription(
        self,
        email: str,
        sub_id: int = 101,
        *,
        subscribed: bool,
        legal_basis: str | None = None,
        explanation: str | None = None,
    ) -> None:
        """Set an address's status for one subscription (as the person, or a form, would)."""
        self._set(email.strip().lower(), sub_id, subscribed, legal_basis, explanation)

    def seed_lived_in(self) -> dict[str, str]:
        """A portal people have used for years, before segsync: email -> what it holds.

        Besides the default definitions (an internal one, an inactive one, an SMS one), the
        user's own email type `Product updates` (104). Contacts: subscribed to 101 through a
        form (`CONSENT_WITH_NOTICE`), unsubscribed from 101, unsubscribed from all email
        (`hs_email_optout`, once subscribed to 101), hard-bounced, subscribed only to the
        user's own type, subscribed only to the internal type, and one with no status at all.
        """
        if 104 not in self.subscriptions:
            self.add_subscription(104, "Product updates", "Marketing")
        people = {
            "sam.subscribed@lived.dev": "SUBSCRIBED on 101",
            "una.unsubscribed@lived.dev": "UNSUBSCRIBED on 101",
            "olga.optout@lived.dev": "hs_email_optout",
            "bob.bounced@lived.dev": "hs_email_bad_address",
            "nina.own-type@lived.dev": "SUBSCRIBED on 104 only",
            "ivan.internal@lived.dev": "SUBSCRIBED on 99 only",
            "cara.customer@lived.dev": "nothing",
        }
        for email in people:
            first = email.split(".")[0].capitalize()
            self.seed_contact({"email": email, "firstname": first, "lifecyclestage": "customer"})
        form = {"legal_basis": "CONSENT_WITH_NOTICE", "explanation": "signed up on the website"}
        self.set_subscription("sam.subscribed@lived.dev", 101, subscribed=True, **form)
        self.set_subscription("una.unsubscribed@lived.dev", 101, subscribed=True, **form)
        self.set_subscription("una.unsubscribed@lived.dev", 101, subscribed=False)
        self.set_subscription("olga.optout@lived.dev", 101, subscribed=True, **form)
        self.unsubscribe_all("olga.optout@lived.dev")
        self.hard_bounce("bob.bounced@lived.dev")
        self.set_subscription("nina.own-type@lived.dev", 104, subscribed=True, **form)
        self.set_subscription("ivan.internal@lived.dev", 99, subscribed=True)
        return people

    def unsubscribe_all(self, email: str) -> None:
        """Opt an address out of all email (as the person would through a footer link)."""
        self._opt_out_of_all(email.strip().lower())

    def list_members(self, list_id: str) -> set[str]:
        """Record ids currently in a list (DYNAMIC lists evaluated now)."""
        return set(self._members(self.lists[list_id]))

    def _property_record(
        self, spec: Mapping[str, Any], *, hubspot_defined: bool = False, read_only: bool = False
    ) -> dict[str, Any]:
        now = iso_time(self.clock.now())
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

    def _view(self, record: ContactRecord, depth: int = 0) -> RecordView:
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

    def _members(self, lst: ListRecord, depth: int = 0) -> dict[str, dt.datetime]:
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

    def _change_members(
        self, lst: ListRecord, add: Sequence[Any], remove: Sequence[Any]
    ) -> dict[str, Any]:
        if len(add) + len(remove) > self.membership_write_limit:
            raise HubSpotError(
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
            "timestamp": iso_time(when),
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
        self.statuses.setdefault(email, {})[sub_id] = StatusRecord(
            wanted, self.clock.now(), basis, explanation
        )
        self._sync_optout_properties(email)
        return reason

    def _require_legal_basis(self, basis: Any, explanation: Any) -> None:
        """On a GDPR portal, consent given needs `legalBasis` and `legalBasisExplanation`."""
        if not self.gdpr:
            return
        missing = [
            name
            for name, value in (("legalBasis", basis), ("legalBasisExplanation", explanation))
            if not (isinstance(value, str) and value.strip())
        ]
        if missing:
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"{' and '.join(missing)} required: GDPR is enabled for portal {self.portal_id}",
            )

    def _opt_out_of_all(self, email: str) -> None:
        self.opted_out_of_all[email] = self.clock.now()
        self._sync_optout_properties(email)

    def _write_status(
        self, email: str, sub_id: int, state: str, basis: Any, explanation: Any
    ) -> str:
        """One v4 status write (single or batch endpoint alike); its setStatusSuccessReason.

        v4 re-subscribes an opted-out address when asked (as HubSpot does); only v3 refuses.
        On a GDPR portal (`gdpr`), a SUBSCRIBED write without a legal basis and an explanation
        is refused (400) and not recorded.
        """
        if state == "SUBSCRIBED":
            self._require_legal_basis(basis, explanation)
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
