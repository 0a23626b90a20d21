"""The HubSpot account fixture: a portal as people left it before segsync came.

Schema (YAML or JSON; unknown keys refused; times are `segsync.emulator.fixture.Stamp`):

    subscription_types:        # beyond HubSpot's defaults (99 internal, 101, 102, 103, 105)
      - {id: 104, name: Product updates, purpose: Marketing}
    property_groups: [{name: company_data, label: Company data}]
    properties:                # the user's own contact properties
      - {name: plan, label: Plan, type: enumeration, field_type: select,
         group: company_data, options: [free, pro]}
    lists:                     # MANUAL lists (members by email) or DYNAMIC (a filterBranch)
      - {name: Trade show 2024, members: [ada@lived.dev]}
    contacts:
      - email: ada@lived.dev
        properties: {firstname: Ada, plan: pro}
        created: 900d          # createdate
        modified: 30d          # lastmodifieddate (default: created)
        subscriptions: {101: SUBSCRIBED, 104: NOT_SUBSCRIBED}   # per subscription type
        legal_basis: CONSENT_WITH_NOTICE                        # of the SUBSCRIBED ones
        email_optout: true     # opted out of all email (hs_email_optout)
        hard_bounced: true     # hs_email_bad_address
        archived: true         # in the recycle bin

A NOT_SUBSCRIBED status is staged as the person unsubscribing after having subscribed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from segsync.emulator.fixture import FixtureModel, Stamp

__all__ = ["HubSpotFixture"]


class SubscriptionTypeFixture(FixtureModel):
    id: int = Field(gt=0)
    name: str = Field(min_length=1)
    purpose: str = "Marketing"
    default: bool = False
    active: bool = True
    internal: bool = False
    method: Literal["Email", "SMS", "WhatsApp"] = "Email"


class PropertyGroupFixture(FixtureModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str = Field(min_length=1)


class PropertyFixture(FixtureModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,98}$")
    label: str = Field(min_length=1)
    type: Literal["string", "number", "date", "datetime", "enumeration", "bool"] = "string"
    field_type: Literal[
        "text", "textarea", "number", "date", "select", "radio", "checkbox",
        "booleancheckbox", "phonenumber", "html", "file",
    ] = "text"
    group: str = "contactinformation"
    options: tuple[str, ...] = ()


class ListFixture(FixtureModel):
    name: str = Field(min_length=1)
    processing_type: Literal["MANUAL", "DYNAMIC"] = "MANUAL"
    members: tuple[str, ...] = ()
    filter_branch: dict[str, Any] | None = None
    created: Stamp | None = None


class ContactFixture(FixtureModel):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    properties: dict[str, str | int | float | bool] = Field(default_factory=dict)
    created: Stamp | None = None
    modified: Stamp | None = None
    subscriptions: dict[int, Literal["SUBSCRIBED", "NOT_SUBSCRIBED"]] = Field(
        default_factory=dict
    )
    legal_basis: str | None = "CONSENT_WITH_NOTICE"
    explanation: str | None = "signed up on the website"
    email_optout: bool = False
    hard_bounced: bool = False
    archived: bool = False


class HubSpotFixture(FixtureModel):
    """A HubSpot portal's pre-existing data; see the module docstring."""

    subscription_types: tuple[SubscriptionTypeFixture, ...] = ()
    property_groups: tuple[PropertyGroupFixture, ...] = ()
    properties: tuple[PropertyFixture, ...] = ()
    lists: tuple[ListFixture, ...] = ()
    contacts: tuple[ContactFixture, ...] = ()

    @field_validator("contacts")
    @classmethod
    def _unique_emails(cls, contacts: tuple[ContactFixture, ...]) -> tuple[ContactFixture, ...]:
        seen: set[str] = set()
        for contact in contacts:
            key = contact.email.strip().lower()
            if key in seen:
                raise ValueError(f"{contact.email} appears twice")
            seen.add(key)
        return contacts


def apply_hubspot_fixture(state: Any, fixture: HubSpotFixture) -> None:
    """Stage `fixture` in `state` (a `HubSpotState`); FixtureError names a refused place."""
    from segsync.emulator.fixture import FixtureError
    from segsync_hubspot.emulator.records import ListRecord, iso_time

    problems: list[str] = []
    for spec in fixture.subscription_types:
        state.add_subscription(
            spec.id, spec.name, spec.purpose, default=spec.default, active=spec.active,
            internal=spec.internal, method=spec.method,
        )
    for group in fixture.property_groups:
        state.groups[group.name] = {
            "name": group.name, "label": group.label, "displayOrder": len(state.groups),
            "archived": False,
        }
    for p, prop in enumerate(fixture.properties):
        if prop.name in state.properties:
            problems.append(f"properties[{p}].name: {prop.name} exists already")
            continue
        if prop.group not in state.groups:
            problems.append(f"properties[{p}].group: no property group {prop.group}")
            continue
        state.properties[prop.name] = state._property_record(
            {
                "name": prop.name, "label": prop.label, "type": prop.type,
                "fieldType": prop.field_type, "groupName": prop.group,
                "options": [{"label": o, "value": o} for o in prop.options],
            }
        )
    if problems:
        raise FixtureError("<data>", problems)
    for c, spec_c in enumerate(fixture.contacts):
        place = f"contacts[{c}]"
        created = state.fixture_time(spec_c.created, f"{place}.created")
        modified = created if spec_c.modified is None else state.fixture_time(
            spec_c.modified, f"{place}.modified"
        )
        if modified < created:
            raise FixtureError("<data>", [f"{place}.modified: before created"])
        for sub_id in spec_c.subscriptions:
            if sub_id not in state.subscriptions:
                raise FixtureError(
                    "<data>", [f"{place}.subscriptions.{sub_id}: no such subscription type"]
                )
        try:
            record_id = state.seed_contact(
                {"email": spec_c.email, **{k: _hs_string(v) for k, v in spec_c.properties.items()}}
            )
        except ValueError as exc:
            raise FixtureError("<data>", [f"{place}.properties: {exc}"]) from None
        email = spec_c.email.strip().lower()
        for sub_id, status in spec_c.subscriptions.items():
            state.set_subscription(
                email, sub_id, subscribed=True, legal_basis=spec_c.legal_basis,
                explanation=spec_c.explanation,
            )
            if status == "NOT_SUBSCRIBED":
                state.set_subscription(email, sub_id, subscribed=False)
        if spec_c.email_optout:
            state.unsubscribe_all(email)
        if spec_c.hard_bounced:
            state.hard_bounce(email)
        record = state.contacts[record_id]
        record.created_at, record.updated_at = created, modified
        record.properties["createdate"] = iso_time(created)
        record.properties["lastmodifieddate"] = iso_time(modified)
        for history in record.history.values():
            history[:] = [(value, created) for value, _ in history]
        for statuses in state.statuses.get(email, {}).values():
            statuses.timestamp = modified
        state._reindex(record)
        record.archived = spec_c.archived
    for n, spec_l in enumerate(fixture.lists):
        place = f"lists[{n}]"
        when = state.fixture_time(spec_l.created, f"{place}.created")
        members: dict[str, Any] = {}
        for m, email in enumerate(spec_l.members):
            record = state._find_email(email)
            if record is None:
                raise FixtureError("<data>", [f"{place}.members[{m}]: no contact {email}"])
            members[record.id] = when
        if spec_l.processing_type == "DYNAMIC":
            if spec_l.filter_branch is None or members:
                raise FixtureError(
                    "<data>", [f"{place}: a DYNAMIC list has a filter_branch and no members"]
                )
            try:
                branch = state._validate_branch(spec_l.filter_branch)
            except Exception as exc:  # the emulator's own refusal, located
                raise FixtureError("<data>", [f"{place}.filter_branch: {exc}"]) from None
        else:
            branch = None
        lst = ListRecord(
            str(state._next_list_id), spec_l.name, spec_l.processing_type, branch, when, when, when
        )
        lst.members = members
        state._next_list_id += 1
        state.lists[lst.id] = lst


def _hs_string(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
