"""Segments on a Mailchimp audience: saved segments, tags as static segments, memberships.

Contract (`Connector.publish_native`, `ensure_static`, `change_static_members`,
`delete_owned`, `find_owned`, `segment_members`), as Mailchimp makes it: a native segment is
a saved segment (one flat `match` any/all list of conditions) published from the compiler's
definition, whose tag names and group option names are resolved to ids here (missing tags,
interest categories and interests are created first; a merge field the audience lacks raises
`PlatformCannotExpress`). A static segment is a tag, whose membership changes 500 adds + 500
removes a call, one result per address. Segment members are listed whatever their status.

Ownership: Mailchimp tags are case-insensitive and people make their own, so the tag of a
static segment is named `segsync:<name>` (`static_tag`), a name only segsync uses (and that
the engine never syncs as a tag): a person's tag named like a segment is never adopted or
rewritten, and keeps flowing as an ordinary tag.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from segsync.connector import ChangeResult
from segsync.rules.compiler import PlatformCannotExpress
from segsync_mailchimp.api import MAX_PAGE, MAX_SEGMENT_BULK, path_segment, subscriber_hash
from segsync_mailchimp.audience import MailchimpAudience, chunks

__all__ = ["STATIC_TAG_PREFIX", "MailchimpSegments", "static_tag"]

#: condition types that filter on a merge field (which must exist on the audience)
MERGE_CONDITIONS = frozenset({"TextMerge", "SelectMerge", "DateMerge", "BirthdayMerge"})

#: the prefix of the tags segsync owns: the engine never syncs such a tag as a tag
STATIC_TAG_PREFIX = "segsync:"


def static_tag(name: str) -> str:
    """The Mailchimp tag of the static segment `name`: `segsync:<name>` (a residual tag,
    already `segsync:<segment>:<hash>`, is its own name)."""
    return name if name.startswith(STATIC_TAG_PREFIX) else STATIC_TAG_PREFIX + name


class MailchimpSegments(MailchimpAudience):
    """Native (saved) and static (tag) segments; see the module docstring."""

    async def _resolve(self, definition: Mapping[str, Any]) -> dict[str, Any]:
        """Replace tag names and group option names in a compiled definition by their ids."""
        cat = await self._load_catalog()
        conditions: list[dict[str, Any]] = []
        names = [
            str(c["value"])
            for c in definition.get("conditions", [])
            if c.get("condition_type") == "StaticSegment" and isinstance(c.get("value"), str)
        ]
        tag_ids = await self._ensure_tags(names) if names else cat.tags
        for condition in definition.get("conditions", []):
            c = dict(condition)
            if c.get("condition_type") in MERGE_CONDITIONS and (
                str(c.get("field", "")).upper() not in cat.merge_types
            ):
                raise PlatformCannotExpress(
                    f"the audience has no merge field {c.get('field')!r} (fields are created by "
                    "prepare; marketing permissions cannot be filtered on)"
                )
            if c.get("condition_type") == "StaticSegment" and isinstance(c.get("value"), str):
                c["value"] = tag_ids[c["value"].casefold()]
            if c.get("condition_type") == "Interests":
                group = str(c["field"]).removeprefix("interests-")
                if group not in cat.categories:
                    spec = self.schema.get(group)
                    await self._ensure_group(group, spec.options if spec else c["value"])
                missing = [v for v in c["value"] if v not in cat.interests.get(group, {})]
                if missing:
                    await self._ensure_group(group, missing)
                c["field"] = f"interests-{cat.categories[group]}"
                c["value"] = [cat.interests[group][v] for v in c["value"]]
            conditions.append(c)
        return {"match": definition.get("match", "all"), "conditions": conditions}

    async def publish_native(
        self, name: str, definition: Mapping[str, Any], ref: str | None
    ) -> str:
        """Create or update an owned saved segment; returns its id."""
        options = await self._resolve(definition)
        body = {"name": name, "options": options}
        if ref is not None:
            response = await self.client.request(
                "PATCH",
                f"{self._list_path}/segments/{path_segment(ref)}",
                endpoint="PATCH /lists/{id}/segments/{id}",
                json=body,
                ok=(404,),
            )
            if response.status_code != 404:
                return str(response.json()["id"])
        response = await self.client.request(
            "POST", self._list_path + "/segments", endpoint="POST /lists/{id}/segments", json=body
        )
        return str(response.json()["id"])

    async def find_owned(self, kind: str, name: str) -> str | None:
        """The id of the saved segment (native) called `name` or of the tag (static) called
        `static_tag(name)`, or None: never a person's tag named like the segment."""
        if kind != "native":
            tag = await self._find_tag(static_tag(name))
            return None if tag is None else str(tag)
        segments = await self._paged(
            "/segments", "segments", "GET /lists/{id}/segments", type="saved"
        )
        return next((str(s["id"]) for s in segments if s.get("name") == name), None)

    async def ensure_static(self, name: str, ref: str | None) -> str:
        """The tag (static segment) `static_tag(name)`, created when missing; returns its id."""
        if ref is not None:
            response = await self.client.request(
                "GET",
                f"{self._list_path}/segments/{path_segment(ref)}",
                endpoint="GET /lists/{id}/segments/{id}",
                params={"fields": "id,name,type"},
                ok=(404,),
            )
            if response.status_code != 404:
                return str(response.json()["id"])
        tag = static_tag(name)
        tags = await self._ensure_tags([tag])
        return str(tags[tag.casefold()])

    async def change_static_members(
        self, ref: str, add: Sequence[str], remove: Sequence[str]
    ) -> list[ChangeResult]:
        """Bulk membership 500 adds + 500 removes a call; one result per email."""
        failed: dict[int, str] = {}
        emails = [*add, *remove]
        add_items = [(i, e) for i, e in enumerate(add)]
        remove_items = [(len(add) + i, e) for i, e in enumerate(remove)]
        add_chunks = chunks(add_items, MAX_SEGMENT_BULK)
        remove_chunks = chunks(remove_items, MAX_SEGMENT_BULK)
        await asyncio.gather(
            *(
                self._bulk(
                    ref,
                    add_chunks[n] if n < len(add_chunks) else [],
                    remove_chunks[n] if n < len(remove_chunks) else [],
                    failed,
                )
                for n in range(max(len(add_chunks), len(remove_chunks)))
            )
        )
        return [
            ChangeResult(
                email=e, ok=i not in failed, error=failed.get(i), platform_id=subscriber_hash(e)
            )
            for i, e in enumerate(emails)
        ]

    async def delete_owned(self, kind: str, ref: str) -> None:
        """Delete an owned segment or tag (already gone is fine)."""
        await self.client.request(
            "DELETE",
            f"{self._list_path}/segments/{path_segment(ref)}",
            endpoint="DELETE /lists/{id}/segments/{id}",
            ok=(404,),
        )
        self._catalog.tags = {n: i for n, i in self._catalog.tags.items() if str(i) != str(ref)}

    async def segment_members(self, ref: str) -> AsyncIterator[str]:
        """Every email in a segment or tag, whatever the member's status."""
        offset = 0
        while True:
            page = await self.client.get_json(
                f"{self._list_path}/segments/{path_segment(ref)}/members",
                endpoint="GET /lists/{id}/segments/{id}/members",
                params={
                    "count": MAX_PAGE,
                    "offset": offset,
                    "include_cleaned": "true",
                    "include_transactional": "true",
                    "include_unsubscribed": "true",
                    "fields": "members.email_address,total_items",
                },
            )
            members = page.get("members") or []
            for member in members:
                yield str(member["email_address"])
            offset += len(members)
            if not members or offset >= int(page.get("total_items", 0)):
                return
