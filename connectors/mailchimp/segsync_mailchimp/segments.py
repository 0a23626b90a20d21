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
rewritten, and keeps flowing as an ordinary tag. A name segsync would give a new object (the
tag `segsync:<name>`, the saved segment `<name>`) that an object segsync did not create
already holds gets a distinct one, `<name> [2]`, `<name> [3]`, ... (`creation_name` says
which, and names the other object). An owned static segment the state recorded under its bare
name (segsync before `segsync:` tags) is a person's tag now: `disowned` says so, it is never
written or deleted again, and the segment gets its `segsync:` tag.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

from segsync.connector import ChangeResult
from segsync.mapping import PlatformMapping
from segsync.model import FieldSpec
from segsync.rules.compiler import PlatformCannotExpress
from segsync_mailchimp.api import MAX_PAGE, MAX_SEGMENT_BULK, path_segment, subscriber_hash
from segsync_mailchimp.audience import MailchimpAudience, chunks
from segsync_mailchimp.fields import member_places

__all__ = ["STATIC_TAG_PREFIX", "MailchimpSegments", "distinct_name", "static_tag"]

log = logging.getLogger("segsync.mailchimp")

#: condition types that filter on a merge field (which must exist on the audience)
MERGE_CONDITIONS = frozenset({"TextMerge", "SelectMerge", "DateMerge", "BirthdayMerge"})

#: the prefix of the tags segsync owns: the engine never syncs such a tag as a tag
STATIC_TAG_PREFIX = "segsync:"


#: the most distinct names tried for one object (`<name> [2]` ... `<name> [MAX_DISTINCT]`)
MAX_DISTINCT = 50


def static_tag(name: str) -> str:
    """The Mailchimp tag of the static segment `name`: `segsync:<name>` (a residual tag,
    already `segsync:<segment>:<hash>`, is its own name)."""
    return name if name.startswith(STATIC_TAG_PREFIX) else STATIC_TAG_PREFIX + name


def distinct_name(base: str, n: int) -> str:
    """The `n`-th name segsync gives an object whose name `base` someone else holds."""
    return base if n < 2 else f"{base} [{n}]"


def _rank(base: str, found: str) -> int | None:
    """Which of `distinct_name(base, n)` `found` is (1 for `base`; names compare
    case-insensitively), or None when it is none of them."""
    if found.casefold() == base.casefold():
        return 1
    match = re.fullmatch(re.escape(base.casefold()) + r" \[(\d+)\]", found.casefold())
    return int(match.group(1)) if match and int(match.group(1)) >= 2 else None


def _free(base: str, taken: Mapping[str, Any], what: str) -> tuple[str, str | None]:
    """The first of `distinct_name(base, n)` not in `taken` (casefolded name -> id), and a
    note naming the object holding `base` when it is taken."""
    if base.casefold() not in taken:
        return base, None
    for n in range(2, MAX_DISTINCT + 1):
        candidate = distinct_name(base, n)
        if candidate.casefold() not in taken:
            return candidate, (
                f"the {what} {base!r} (id {taken[base.casefold()]}) was not created by segsync"
            )
    raise PlatformCannotExpress(f"every name from {base!r} to {distinct_name(base, n)!r} is taken")


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
        """Create or update an owned saved segment; returns its id. An update keeps the name
        the segment has (a distinct one where the segment's name was taken); a creation takes
        `creation_name`."""
        options = await self._resolve(definition)
        if ref is not None:
            found = await self.client.request(
                "GET",
                f"{self._list_path}/segments/{path_segment(ref)}",
                endpoint="GET /lists/{id}/segments/{id}",
                params={"fields": "id,name,type"},
                ok=(404,),
            )
            if found.status_code != 404:
                response = await self.client.request(
                    "PATCH",
                    f"{self._list_path}/segments/{path_segment(ref)}",
                    endpoint="PATCH /lists/{id}/segments/{id}",
                    json={"name": str(found.json().get("name") or name), "options": options},
                    ok=(404,),
                )
                if response.status_code != 404:
                    return str(response.json()["id"])
        named, note = await self.creation_name("native", name)
        if note:
            log.warning("mailchimp: %s; segment %r is published as %r", note, name, named)
        response = await self.client.request(
            "POST", self._list_path + "/segments", endpoint="POST /lists/{id}/segments",
            json={"name": named, "options": options},
        )
        return str(response.json()["id"])

    async def planned_objects(
        self,
        fields: Mapping[str, FieldSpec],
        tags: Sequence[str],
        definitions: Sequence[Mapping[str, Any]],
    ) -> list[str]:
        """What `prepare(fields, tags)` and publishing `definitions` would create now: merge
        fields, interest categories and interests, tags (reads the audience's catalog)."""
        cat = await self._load_catalog()
        out: list[str] = []
        schema = self.schema.model_copy(update={"fields": {**self.schema.fields, **fields}})
        mapping = self.mapping if isinstance(self.mapping, PlatformMapping) else None
        places = member_places(schema, mapping, self.config)

        def group(title: str, options: Iterable[str]) -> None:
            if title not in cat.categories:
                out.append(f"interest category {title!r}")
            have = cat.interests.get(title, {})
            out.extend(f"interest {o!r} in {title!r}" for o in options if o not in have)

        def tag(name: str) -> None:
            if name.casefold() not in cat.tags:
                out.append(f"tag {name!r}")

        for name in fields:
            place = places.get(name)
            if place is None:
                continue
            if place.group:
                group(name, place.spec.options)
            elif place.merge_tag is not None and place.merge_tag not in cat.merge_types:
                out.append(f"merge field {place.merge_tag} for {name!r}")
        for name in tags:
            tag(name)
        for definition in definitions:
            for c in definition.get("conditions", []):
                if c.get("condition_type") == "StaticSegment" and isinstance(c.get("value"), str):
                    tag(str(c["value"]))
                elif c.get("condition_type") == "Interests":
                    spec = self.schema.get(str(c["field"]).removeprefix("interests-"))
                    title = str(c["field"]).removeprefix("interests-")
                    group(title, [*(spec.options if spec else ()), *c.get("value", [])])
        return list(dict.fromkeys(out))

    async def _saved_segments(self) -> dict[str, str]:
        """The audience's saved segments: casefolded name -> id."""
        segments = await self._paged(
            "/segments", "segments", "GET /lists/{id}/segments", type="saved",
            fields="segments.id,segments.name,total_items",
        )
        return {str(s.get("name", "")).casefold(): str(s["id"]) for s in segments}

    async def _taken(self, kind: str) -> dict[str, str]:
        """The names taken now (read fresh: the catalog may predate a person's new tag,
        which `_ensure_tags` would then adopt)."""
        if kind == "native":
            return await self._saved_segments()
        return await self._fresh_tags()

    async def creation_name(self, kind: str, name: str) -> tuple[str, str | None]:
        """The name a new owned object gets: the tag `segsync:<name>` (static) or the saved
        segment `<name>` (native), or the first free `... [n]` when someone else's object
        holds it (the note names that object)."""
        if kind != "native" and name.startswith(STATIC_TAG_PREFIX):
            # a residual tag (`segsync:<segment>:<hash>`): the contact writes carry it and a
            # native definition filters on it by that very name, which only segsync uses
            return name, None
        base = name if kind == "native" else static_tag(name)
        return _free(base, await self._taken(kind), "saved segment" if kind == "native" else "tag")

    async def find_owned(self, kind: str, name: str) -> str | None:
        """The id of the object segsync creates for `name` (the last of its distinct names
        that exists: segsync takes the first free one), or None."""
        base = name if kind == "native" else static_tag(name)
        taken = await (self._saved_segments() if kind == "native" else self._fresh_tags())
        ranked = [(r, ref) for found, ref in taken.items() if (r := _rank(base, found))]
        return max(ranked)[1] if ranked else None

    async def _fresh_tags(self) -> dict[str, str]:
        return {str(t["name"]).casefold(): str(t["id"]) for t in await self._static_segments()}

    async def disowned(
        self, objects: Sequence[tuple[str, str, str]]
    ) -> dict[tuple[str, str], str]:
        """Owned static segments whose tag is not one of segsync's `segsync:` names: tags an
        older segsync recorded under the segment's bare name, which people use as tags."""
        statics = [(kind, name, ref) for kind, name, ref in objects if kind != "native"]
        if not statics:
            return {}
        names = {ref: found for found, ref in (await self._fresh_tags()).items()}
        out: dict[tuple[str, str], str] = {}
        for kind, name, ref in statics:
            found = names.get(str(ref))
            if found is not None and _rank(static_tag(name).casefold(), found) is None:
                out[(kind, name)] = (
                    f"the tag {found!r} (id {ref}) was recorded as segment {name!r} by an older "
                    f"segsync; it is left to people as an ordinary tag, and the segment is "
                    f"published as the tag {static_tag(name)!r}"
                )
        return out

    async def ensure_static(self, name: str, ref: str | None) -> str:
        """The tag (static segment) `static_tag(name)` (or its distinct name), created when
        missing; `ref` is kept only while it is a tag of segsync's names."""
        if ref is not None:
            response = await self.client.request(
                "GET",
                f"{self._list_path}/segments/{path_segment(ref)}",
                endpoint="GET /lists/{id}/segments/{id}",
                params={"fields": "id,name,type"},
                ok=(404,),
            )
            if response.status_code != 404:
                found = str(response.json().get("name") or "")
                if _rank(static_tag(name), found) is not None:
                    return str(response.json()["id"])
                log.warning("mailchimp: tag %r (id %s) is not segsync's; segment %r gets its "
                            "own tag", found, ref, name)
        tag, note = await self.creation_name("static", name)
        if note:
            log.warning("mailchimp: %s; segment %r is published as the tag %r", note, name, tag)
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
            ChangeResult(email=e, ok=i not in failed, error=failed.get(i), platform_id=self._pid(e))
            for i, e in enumerate(emails)
        ]

    def _pid(self, email: str) -> str | None:
        """The member's platform id (`contact_id`) where a read or write saw it, else None."""
        known = self._known.get(subscriber_hash(email))
        contact_id = known.record.get("contact_id") if known is not None else None
        return str(contact_id) if contact_id else None

    async def delete_owned(self, kind: str, ref: str) -> None:
        """Delete an owned segment or tag (already gone is fine); a tag not of segsync's
        `segsync:` names (an older segsync's bare-named one, people's now) is left alone."""
        if kind != "native":
            found = await self.client.request(
                "GET",
                f"{self._list_path}/segments/{path_segment(ref)}",
                endpoint="GET /lists/{id}/segments/{id}",
                params={"fields": "id,name,type"},
                ok=(404,),
            )
            body = found.json() if found.status_code != 404 else {}
            name = str(body.get("name") or "")
            if body.get("type") == "static" and not name.startswith(STATIC_TAG_PREFIX):
                log.warning("mailchimp: tag %r (id %s) is not segsync's; not deleted", name, ref)
                return
        await self.client.request(
            "DELETE",
            f"{self._list_path}/segments/{path_segment(ref)}",
            endpoint="DELETE /lists/{id}/segments/{id}",
            ok=(404,),
        )
        gone = {n for n, i in self._catalog.tags.items() if str(i) == str(ref)}
        self._catalog.tags = {n: i for n, i in self._catalog.tags.items() if str(i) != str(ref)}
        if gone:  # nobody carries a deleted tag any more: a tag made again under its name
            for known in self._known.values():  # starts empty, and its adds are sent
                if known.tags & gone:
                    known.tags = frozenset(known.tags - gone)

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
