"""The plan: a value listing the minimal writes of a run, per platform.

A plan is JSON (`to_json` / `from_json`), printable (`render`, terraform-like: a summary per
platform, then the first rows), and applied exactly by `Engine.apply`. It records the state
generation it was made from; applying it after the state moved is refused (`PlanStale`).

Contact changes are held as `ChangeRow` dicts (the fields of `ContactChange` plus `cid`),
not as models, so a plan for a large audience stays small in memory.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from typing import Any, NamedTuple, Required

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from segsync.connector import ContactChange
from segsync.model import ConsentStatus

__all__ = [
    "PLAN_FORMAT",
    "ChangeRow",
    "ConsentChange",
    "Member",
    "MembershipChange",
    "Plan",
    "PlanStale",
    "PlatformPlan",
    "Publication",
    "PublicationKind",
    "RecordError",
    "to_change",
    "writes_something",
]

PLAN_FORMAT = 1


class PlanStale(Exception):
    """The state moved since the plan was made; make a new plan."""


class RecordError(BaseModel):
    """One record a platform (or segsync) refused, with the platform's own message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: str
    email: str | None = None
    platform_id: str | None = None
    code: str | None = None
    message: str

    def row(self) -> tuple[str, str | None, str | None, str | None, str]:
        """As stored: (platform, email, platform_id, code, message)."""
        return (self.platform, self.email, self.platform_id, self.code, self.message)


class ChangeRow(TypedDict, total=False):
    """The minimal write for one contact on one platform: `cid` and the fields of
    `ContactChange` that are set (an update holds `platform_id`, a creation `create`)."""

    cid: Required[str]
    email: Required[str]
    platform_id: str
    create: bool
    fields: dict[str, Any]
    tags_add: list[str]
    tags_remove: list[str]
    consent: ConsentStatus
    consent_basis: str
    consent_source: str  # the platform the consent came from (for the ledger, not sent)
    consent_evidence: str  # what it rests on there (for the ledger, not sent)
    new_email: str


def writes_something(row: ChangeRow) -> bool:
    """Whether a row changes anything (more than naming its contact and record)."""
    return bool(
        row.get("create") or row.get("fields") or row.get("tags_add") or row.get("tags_remove")
        or row.get("consent") is not None or row.get("new_email")
    )


def to_change(row: ChangeRow) -> ContactChange:
    """The `ContactChange` of a plan row."""
    return ContactChange.model_validate({k: v for k, v in row.items() if k not in _NOT_SENT})


_NOT_SENT = frozenset({"cid", "consent_source", "consent_evidence"})
"""The keys of a `ChangeRow` that are the engine's own (the ledger's), not the platform's."""


class PublicationKind(enum.StrEnum):
    """What a publication does: create a static segment or a residual tag, publish a native
    segment, or delete an owned object no longer wanted (in this order when applied)."""

    STATIC = "static"
    TAG = "tag"
    NATIVE = "native"
    DELETE = "delete"


class Publication(BaseModel):
    """One segment object to create, publish or delete on a platform.

    `ref` is the platform's reference of the object segsync owns (None: to create);
    `definition` and `definition_hash` are a native segment's; `owned_kind` is the owned
    kind of the object a deletion removes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    segment: str
    kind: PublicationKind
    name: str
    ref: str | None = None
    definition: dict[str, Any] | None = None
    definition_hash: str | None = None
    owned_kind: str | None = None


class Member(NamedTuple):
    """A contact in a membership change: its id and the email the platform knows."""

    cid: str
    email: str


class MembershipChange(BaseModel):
    """Static segment `name` (of `segment`) on a platform: contacts to add and to remove."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    segment: str
    name: str
    add: list[Member] = Field(default_factory=list)
    remove: list[Member] = Field(default_factory=list)


class ConsentChange(BaseModel):
    """A consent change seen or decided by a plan, as the ledger records it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cid: str
    email: str
    platform: str  # "canonical" for the reconciled view
    previous: str | None
    new: str
    source: str
    at: str
    legal_basis: str | None = None
    evidence: str | None = None


class PlatformPlan(BaseModel):
    """What a plan does on one platform.

    `changes`: contact changes; `publications`: segment objects to create, publish or
    delete; `memberships`: static segment membership changes; `counts`: read, unchanged
    and the like, for the report.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    changes: list[ChangeRow] = Field(default_factory=list)
    publications: list[Publication] = Field(default_factory=list)
    memberships: list[MembershipChange] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)

    @property
    def creates(self) -> int:
        return sum(1 for c in self.changes if c.get("create"))

    @property
    def updates(self) -> int:
        return len(self.changes) - self.creates

    @property
    def is_empty(self) -> bool:
        return not (self.changes or self.publications or self.memberships)

    def tally(self) -> dict[str, int]:
        """How many creates, updates, tag, consent and membership changes."""
        return {
            "create": self.creates,
            "update": self.updates,
            "tags_added": sum(len(c.get("tags_add", ())) for c in self.changes),
            "tags_removed": sum(len(c.get("tags_remove", ())) for c in self.changes),
            "consent": sum(1 for c in self.changes if c.get("consent") is not None),
            "members_added": sum(len(m.add) for m in self.memberships),
            "members_removed": sum(len(m.remove) for m in self.memberships),
            "publications": len(self.publications),
        }


class Plan(BaseModel):
    """The writes of a run, per platform, and what the run found on the way."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int = PLAN_FORMAT
    plan_id: str
    config: str
    generation: int
    created_at: str
    platforms: dict[str, PlatformPlan]
    consent_events: list[ConsentChange] = Field(default_factory=list)
    errors: list[RecordError] = Field(default_factory=list)
    diagnostics: list[dict[str, str]] = Field(default_factory=list)
    conflicts: int = 0

    @property
    def is_empty(self) -> bool:
        """True when applying would write nothing."""
        return all(p.is_empty for p in self.platforms.values())

    @property
    def write_count(self) -> int:
        """Contact changes, publications and membership changes, in all."""
        return sum(
            len(p.changes) + len(p.publications) + sum(
                len(m.add) + len(m.remove) for m in p.memberships
            )
            for p in self.platforms.values()
        )

    def to_json(self) -> str:
        """The plan as JSON text."""
        return self.model_dump_json(indent=None)

    @classmethod
    def from_json(cls, text: str | bytes) -> Plan:
        """A plan from its JSON text (ValueError when it is not one)."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
            raise ValueError(f"not a segsync plan (format {PLAN_FORMAT})")
        return cls.model_validate(data)

    def summary(self) -> dict[str, dict[str, int]]:
        """Per platform, the tally of writes."""
        return {name: p.tally() for name, p in self.platforms.items()}

    def render(self, rows: int = 10) -> str:
        """A terraform-like text: the totals per platform, then the first rows of each."""
        return "\n".join(self._lines(rows))

    def _lines(self, rows: int) -> Iterator[str]:
        yield f"plan {self.plan_id} for {self.config!r} (state generation {self.generation})"
        if self.is_empty:
            yield "No changes. The platforms match the canonical view."
        for name, platform in self.platforms.items():
            t = platform.tally()
            yield (
                f"{name}: {t['create']} to create, {t['update']} to update, "
                f"+{t['tags_added']}/-{t['tags_removed']} tags, {t['consent']} consent, "
                f"+{t['members_added']}/-{t['members_removed']} members, "
                f"{t['publications']} segment publications"
            )
            for change in platform.changes[:rows]:
                yield "  " + _describe(change)
            if len(platform.changes) > rows:
                yield f"  ... and {len(platform.changes) - rows} more"
            for pub in platform.publications:
                verb = "update" if pub.ref else "create"
                yield f"  ~ {verb} {pub.kind} segment {pub.name!r}"
            for m in platform.memberships:
                yield f"  ~ segment {m.name!r}: +{len(m.add)} -{len(m.remove)} members"
        for diag in self.diagnostics:
            where = f"[{diag.get('platform')}] {diag.get('segment')}"
            yield f"diagnostic: {where}: {diag.get('message')}"
        if self.errors:
            yield f"{len(self.errors)} record error(s):"
            for error in self.errors[:rows]:
                who = error.email or error.platform_id or "(platform)"
                yield f"  ! [{error.platform}] {who}: {error.message}"


def _describe(change: ChangeRow) -> str:
    sign = "+" if change.get("create") else "~"
    parts: list[str] = []
    for name, value in (change.get("fields") or {}).items():
        parts.append(f"{name}={value!r}")
    if change.get("tags_add"):
        parts.append("tags +" + ",".join(change["tags_add"]))
    if change.get("tags_remove"):
        parts.append("tags -" + ",".join(change["tags_remove"]))
    if change.get("consent"):
        parts.append(f"consent={change['consent']}")
    if change.get("new_email"):
        parts.append(f"email->{change['new_email']}")
    return f"{sign} {change['email']}: " + (" ".join(parts) or "(create)")
