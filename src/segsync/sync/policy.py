"""The sync policy: who wins a conflict, which way each field flows, what is never synced.

Built from the `sync:` block of the configuration (`SyncPolicy.from_config`) or directly.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Direction", "SyncPolicy"]

OWNED_TAG_PREFIX = "segsync:"


class Direction(enum.StrEnum):
    """How one field flows for one platform."""

    BOTH = "both"
    SOURCE_ONLY = "source-only"  # read from that platform, never written to it
    DESTINATION_ONLY = "destination-only"  # written to that platform, never read from it


class SyncPolicy(BaseModel):
    """How reconcile settles conflicts and which platforms read and write what.

    - `platforms`: the platforms synced, in order (the last tie-breaker);
    - `default`: "latest" (the newest change wins) or a platform priority list;
    - `fields`: per field, a priority list (or "latest") overriding `default`;
      `tags` and `consent` and `email` may be named too (consent opt-outs always win);
    - `directions`: per field (or "*" for all), per platform, `Direction`;
    - `platform_fields`: per platform, the fields it carries (absent: every field);
    - `reconfirm`: platforms with a re-confirmation path (Mailchimp `pending`, Brevo double
      opt-in): where they hold an opt-out and a newer opt-in was given elsewhere, they are
      sent `pending`; other platforms holding an opt-out keep it (never `subscribed`);
    - `excluded_tags`: tags never synced as tags; tags starting with `segsync:` (the tags
      connectors give materialised segments and residuals) are always excluded, and a
      person's tag named like a segment is an ordinary tag;
    - `on_delete`: per platform, what a record deleted or archived there does elsewhere:
      "keep" (default: the others are left as they are) or "archive_elsewhere" (the
      person's records on the other platforms are archived). Either way it is recorded, never
      written or re-created there.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    platforms: tuple[str, ...]
    default: str | tuple[str, ...] = "latest"
    fields: dict[str, str | tuple[str, ...]] = Field(default_factory=dict)
    directions: dict[str, dict[str, Direction]] = Field(default_factory=dict)
    platform_fields: dict[str, frozenset[str]] = Field(default_factory=dict)
    reconfirm: frozenset[str] = frozenset()
    excluded_tags: frozenset[str] = frozenset()
    on_delete: dict[str, Literal["keep", "archive_elsewhere"]] = Field(default_factory=dict)
    #: per platform, the consent statuses it cannot hold (`Capabilities.consent_not_held`):
    #: never planned there (the connector would send nothing, run after run)
    consent_not_held: dict[str, frozenset[str]] = Field(default_factory=dict)

    @classmethod
    def from_config(cls, sync: Any, platforms: Sequence[str], **extra: Any) -> SyncPolicy:
        """Build from a `sync:` block (the config's SyncConfig, a dict, or None)."""
        data: Mapping[str, Any]
        if sync is None:
            data = {}
        elif isinstance(sync, Mapping):
            data = sync
        else:
            data = sync.model_dump(mode="json")
        conflicts = data.get("conflicts") or {}
        default = conflicts.get("default", "latest")
        directions = data.get("direction") or data.get("directions") or {}
        return cls(
            platforms=tuple(platforms),
            default=default if isinstance(default, str) else tuple(default),
            fields={
                k: v if isinstance(v, str) else tuple(v)
                for k, v in (conflicts.get("fields") or {}).items()
            },
            directions=directions,
            reconfirm=frozenset(data.get("reconfirm") or ()),
            on_delete=dict(data.get("on_delete") or {}),
            **extra,
        )

    def direction(self, field: str, platform: str) -> Direction:
        """How `field` flows for `platform`."""
        for key in (field, "*"):
            per = self.directions.get(key)
            if per is not None and platform in per:
                return per[platform]
        return Direction.BOTH

    def reads(self, platform: str, field: str) -> bool:
        """Whether a change of `field` on `platform` counts."""
        if not self.directions and not self.platform_fields:  # the common case, kept fast
            return True
        carried = self.platform_fields.get(platform)
        if carried is not None and field not in carried and field not in _BUILTIN:
            return False
        return self.direction(field, platform) is not Direction.DESTINATION_ONLY

    def writes(self, platform: str, field: str) -> bool:
        """Whether `field` is written to `platform`."""
        if not self.directions and not self.platform_fields:
            return True
        carried = self.platform_fields.get(platform)
        if carried is not None and field not in carried and field not in _BUILTIN:
            return False
        return self.direction(field, platform) is not Direction.SOURCE_ONLY

    def priority(self, field: str) -> tuple[str, ...] | None:
        """The priority list of `field` (None: latest change wins)."""
        rule = self.fields.get(field, self.default)
        return None if isinstance(rule, str) else rule

    def archives_elsewhere(self, platform: str) -> bool:
        """Whether a record deleted on `platform` archives the person on the others."""
        return self.on_delete.get(platform) == "archive_elsewhere"

    def synced_tag(self, tag: str) -> bool:
        """Whether a tag is synced as a tag (segment tags never are)."""
        return not tag.startswith(OWNED_TAG_PREFIX) and tag not in self.excluded_tags


_BUILTIN = ("email", "tags", "consent")
