"""The plan: a value listing the minimal writes of a run, per platform.

A plan is JSON (`to_json` / `from_json`), printable (`render`, terraform-like: a summary per
platform, then the first rows), and applied exactly by `Engine.apply`. It records the state
generation it was made from; applying it after the state moved is refused (`PlanStale`).

Contact changes are held as plain dicts (the fields of `ContactChange` plus `cid`), not as
models, so a plan for a large audience stays small in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from segsync.connector import ContactChange

__all__ = ["PLAN_FORMAT", "Plan", "PlanStale", "PlatformPlan", "RecordError", "to_change"]

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


def to_change(row: dict[str, Any]) -> ContactChange:
    """The `ContactChange` of a plan row."""
    return ContactChange.model_validate({k: v for k, v in row.items() if k != "cid"})


class PlatformPlan(BaseModel):
    """What a plan does on one platform.

    `changes`: contact changes (dicts: `cid` + the fields of `ContactChange`);
    `publications`: segments to publish, `{segment, kind (native|static), name, definition,
    definition_hash, ref}`; `memberships`: static segment membership changes,
    `{segment, name, add: [[cid, email]...], remove: [[cid, email]...]}`;
    `counts`: read, unchanged and the like, for the report.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    changes: list[dict[str, Any]] = Field(default_factory=list)
    publications: list[dict[str, Any]] = Field(default_factory=list)
    memberships: list[dict[str, Any]] = Field(default_factory=list)
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
            "members_added": sum(len(m["add"]) for m in self.memberships),
            "members_removed": sum(len(m["remove"]) for m in self.memberships),
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
    consent_events: list[dict[str, Any]] = Field(default_factory=list)
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
                len(m["add"]) + len(m["remove"]) for m in p.memberships
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
                verb = "update" if pub.get("ref") else "create"
                yield f"  ~ {verb} {pub['kind']} segment {pub['name']!r}"
            for m in platform.memberships:
                yield f"  ~ segment {m['name']!r}: +{len(m['add'])} -{len(m['remove'])} members"
        for diag in self.diagnostics:
            where = f"[{diag.get('platform')}] {diag.get('segment')}"
            yield f"diagnostic: {where}: {diag.get('message')}"
        if self.errors:
            yield f"{len(self.errors)} record error(s):"
            for error in self.errors[:rows]:
                who = error.email or error.platform_id or "(platform)"
                yield f"  ! [{error.platform}] {who}: {error.message}"


def _describe(change: dict[str, Any]) -> str:
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
