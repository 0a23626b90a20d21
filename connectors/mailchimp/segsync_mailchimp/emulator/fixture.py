"""The Mailchimp account fixture: audiences as people left them before segsync came.

Schema (YAML or JSON; unknown keys refused; times are `segsync.emulator.fixture.Stamp`):

    audiences:
      - id: a1b2c3d4e5          # default: the emulator's default audience
        name: Newsletter        # renames it when it exists
        merge_fields:           # the user's own (FNAME, LNAME, ADDRESS, PHONE exist already)
          - {tag: COMPANY, name: Company, type: text}
          - {tag: PLAN, name: Plan, type: dropdown, choices: [free, pro]}
        tags: [VIP]             # tags made in the UI, even with no member yet
        segments:               # saved segments (conditions as Mailchimp's API takes them)
          - {name: Pros, match: all, conditions: [{condition_type: ..., ...}]}
        members:
          - email: ada@lived.dev
            status: subscribed  # subscribed|pending|transactional|unsubscribed|cleaned|archived
            merge_fields: {FNAME: Ada}
            tags: [VIP]
            created: 900d       # when they joined
            last_changed: 30d   # default: created
            timestamp_opt: 400d # opt-in time (subscribed: default created)
            ip_opt: 198.51.100.20
            source: Hosted Signup Form
            unsubscribe_reason: ...

Unsubscribed and cleaned members are blocked from re-subscription by API (as on Mailchimp);
an archived member keeps its merge fields and tags and is hidden from listings.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from segsync.emulator.fixture import FixtureModel, Stamp

__all__ = ["AudienceFixture", "MailchimpFixture", "MemberFixture", "MergeFieldFixture"]

class MergeFieldFixture(FixtureModel):
    tag: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,9}$")
    name: str = Field(min_length=1)
    type: Literal[
        "text", "number", "address", "phone", "date", "url", "imageurl", "radio", "dropdown",
        "birthday", "zip",
    ] = "text"
    choices: tuple[str, ...] = ()
    date_format: str | None = None
    required: bool = False


class MemberFixture(FixtureModel):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    status: Literal["subscribed", "pending", "transactional", "unsubscribed", "cleaned", "archived"]
    merge_fields: dict[str, Any] = Field(default_factory=dict)
    tags: tuple[str, ...] = ()
    created: Stamp | None = None
    last_changed: Stamp | None = None
    timestamp_opt: Stamp | None = None
    ip_opt: str = ""
    ip_signup: str = ""
    source: str = "API - Generic"
    unsubscribe_reason: str = ""
    language: str = ""
    vip: bool = False


class SegmentFixture(FixtureModel):
    name: str = Field(min_length=1)
    match: Literal["any", "all"] = "any"
    conditions: tuple[dict[str, Any], ...] = Field(min_length=1)


class AudienceFixture(FixtureModel):
    id: str | None = Field(default=None, pattern=r"^[0-9a-z]{10}$")
    name: str | None = None
    created: Stamp | None = None
    merge_fields: tuple[MergeFieldFixture, ...] = ()
    tags: tuple[str, ...] = ()
    segments: tuple[SegmentFixture, ...] = ()
    members: tuple[MemberFixture, ...] = ()

    @field_validator("members")
    @classmethod
    def _unique_emails(cls, members: tuple[MemberFixture, ...]) -> tuple[MemberFixture, ...]:
        seen: set[str] = set()
        for member in members:
            key = member.email.strip().lower()
            if key in seen:
                raise ValueError(f"{member.email} appears twice in one audience")
            seen.add(key)
        return members


class MailchimpFixture(FixtureModel):
    """A Mailchimp account's pre-existing audiences; see the module docstring."""

    audiences: tuple[AudienceFixture, ...] = Field(min_length=1)
