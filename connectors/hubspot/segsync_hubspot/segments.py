"""HubSpot lists: segsync's segments, static lists and tag lists.

Contract (`Connector.publish_native`, `ensure_static`, `find_owned`, `change_static_members`,
`delete_owned`, `segment_members`), as HubSpot makes it: a native segment is an owned DYNAMIC
list whose filter branch is the compiler's definition (with `filterBranchOperator` on every
level and the synced subscription type's id in place of the compiler's placeholder); a static
segment is an owned MANUAL list; every owned list is named `<list_prefix><name>`. A list
creation whose answer was lost is retried, and a retry that meets a list of that name takes
it. Memberships change 100 record ids a call (emails looked up 100 a batch read) and are read
250 a page. With `tags_as: lists` each tag is a MANUAL list named `<list_prefix>tag <tag>`;
the reads and writes use the tag lists kept here.

Ownership: HubSpot list names are unique (case-insensitive) across the portal, and people
name lists too. A new segment list whose name `<list_prefix><name>` someone else's list holds
is created as `<list_prefix><name> [2]` (then `[3]`, ...; `creation_name` says which and names
the other list): a list segsync did not create is never adopted, written or deleted. A
segment switching kind (MANUAL <-> DYNAMIC) keeps its name: the engine deletes segsync's
list of the old kind before creating the new one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from segsync.connector import ChangeResult
from segsync.http import ApiError
from segsync.model import FieldSpec
from segsync_hubspot.account import HubSpotAccount
from segsync_hubspot.client import path_segment
from segsync_hubspot.compiler import HubSpotCompiler
from segsync_hubspot.limits import BATCH_INPUTS, MEMBERSHIP_PAGE

__all__ = ["MAX_DISTINCT", "HubSpotSegments"]

log = logging.getLogger("segsync.hubspot")

MAX_DISTINCT = 50
"""The most distinct names tried for one list (`<name> [2]` ... `<name> [MAX_DISTINCT]`)."""


def _distinct(base: str, n: int) -> str:
    return base if n < 2 else f"{base} [{n}]"



def _with_operators(branch: Mapping[str, Any]) -> dict[str, Any]:
    """A filter branch with `filterBranchOperator` on every level (HubSpot requires it)."""
    out = dict(branch)
    out.setdefault("filterBranchOperator", branch.get("filterBranchType"))
    out["filterBranches"] = [_with_operators(b) for b in branch.get("filterBranches") or []]
    out.setdefault("filters", [])
    return out


def _with_subscription(branch: dict[str, Any], subscription: str) -> dict[str, Any]:
    """`branch` with the compiler's subscription placeholder replaced by the real id."""
    placeholder = HubSpotCompiler.SUBSCRIPTION
    out = dict(branch)
    out["filters"] = [
        {
            **f,
            "subscriptionIds": [
                subscription if s == placeholder else s for s in f.get("subscriptionIds") or []
            ],
        }
        if f.get("filterType") == "EMAIL_SUBSCRIPTION"
        else f
        for f in branch.get("filters") or []
    ]
    out["filterBranches"] = [
        _with_subscription(b, subscription) for b in branch.get("filterBranches") or []
    ]
    return out


class HubSpotSegments(HubSpotAccount):
    """Owned lists: segments, static lists and tag lists; see the module docstring."""

    async def publish_native(
        self, name: str, definition: Mapping[str, Any], ref: str | None
    ) -> str:
        """Create (or update the filters of) an owned DYNAMIC list; return its list id."""
        branch = _with_operators(definition["filterBranch"])
        branch = _with_subscription(branch, str(await self._subscription_id()))
        if ref is not None:
            await self._json(
                "PUT",
                f"{self.paths['lists']}/{path_segment(ref)}/update-list-filters",
                "PUT list filters",
                json={"filterBranch": branch},
            )
            return ref
        return await self._create_list(
            {
                "name": await self._new_list_name(name),
                "objectTypeId": "0-1",
                "processingType": "DYNAMIC",
                "filterBranch": branch,
            }
        )

    async def ensure_static(self, name: str, ref: str | None) -> str:
        """Create an owned MANUAL list (or confirm `ref` exists); return its list id."""
        if ref is not None:
            await self._json("GET", f"{self.paths['lists']}/{path_segment(ref)}", "GET list")
            return ref
        return await self._create_list(
            {
                "name": await self._new_list_name(name),
                "objectTypeId": "0-1",
                "processingType": "MANUAL",
            }
        )

    async def planned_objects(
        self,
        fields: Mapping[str, FieldSpec],
        tags: Sequence[str],
        definitions: Sequence[Mapping[str, Any]],
    ) -> list[str]:
        """What `prepare(fields, tags)` would create now: properties, enumeration options,
        the tags property or its options, or tag lists (`tags_as: lists`). Reads only."""
        known = await self._load_properties()
        out: list[str] = []
        for name, spec in fields.items():
            if spec.read_only:
                continue
            target = self._target(name, spec)
            existing = known.get(target.name)
            if existing is None:
                if not target.builtin:
                    out.append(f"property {target.name} ({target.type}) for {name!r}")
                continue
            if target.type == "enumeration" and spec.options and not target.builtin:
                have = {o.get("value") for o in existing.get("options") or []}
                out.extend(f"option {o!r} of property {target.name}"
                           for o in spec.options if o not in have)
        if self.cfg.tags_as == "property":
            record = known.get(self.cfg.tags_property)
            if record is None and tags:
                out.append(f"property {self.cfg.tags_property} (tags)")
            have = {o.get("value") for o in (record or {}).get("options") or []}
            out.extend(f"option {t!r} of property {self.cfg.tags_property}"
                       for t in dict.fromkeys(t.casefold() for t in tags) if t not in have)
        else:
            for tag in tags:
                name = f"{self.cfg.list_prefix}tag {tag}"
                if tag.casefold() not in self._tag_lists and await self._list_named(name) is None:
                    out.append(f"list {name!r} (tag {tag!r})")
        if any(line.startswith("property ") for line in out) and not self._group_ready:
            groups = await self._json("GET", f"{self.paths['properties']}/groups",
                                      "GET property groups")
            if self.cfg.property_group not in {g.get("name") for g in groups.get("results") or []}:
                out.insert(0, f"property group {self.cfg.property_group!r}")
        return list(dict.fromkeys(out))

    async def _list_named(self, name: str) -> dict[str, Any] | None:
        response = await self.client.request(
            "GET",
            f"{self.paths['lists']}/object-type-id/0-1/name/" + path_segment(name),
            endpoint="GET list by name",
            ok=(404,),
        )
        return None if response.status_code == 404 else dict(response.json()["list"])

    async def creation_name(self, kind: str, name: str) -> tuple[str, str | None]:
        """The name a new owned list gets: `<list_prefix><name>`, or the first free
        `... [n]` when a list segsync did not create holds it (the note names that list)."""
        base = f"{self.cfg.list_prefix}{name}"
        held = await self._list_named(base)
        if held is None:
            return base, None
        note = (f"the list {held.get('name', base)!r} (id {held.get('listId')}) was not "
                "created by segsync")
        for n in range(2, MAX_DISTINCT + 1):
            if await self._list_named(_distinct(base, n)) is None:
                return _distinct(base, n), note
        raise ApiError(platform=self.name, endpoint="POST list", status=400, code=None,
                       message=f"every list name from {base!r} to {_distinct(base, n)!r} is taken")

    async def _new_list_name(self, name: str) -> str:
        named, note = await self.creation_name("static", name)
        if note:
            log.warning("hubspot: %s; segment %r gets the list %r", note, name, named)
        return named

    async def find_owned(self, kind: str, name: str) -> str | None:
        """The id of the list segsync creates for `name` (DYNAMIC for native, MANUAL for
        static): the last of its distinct names that exists (segsync takes the first free
        one), or None."""
        base = f"{self.cfg.list_prefix}{name}"
        wanted = "DYNAMIC" if kind == "native" else "MANUAL"
        last: dict[str, Any] | None = None
        for n in range(1, MAX_DISTINCT + 1):
            found = await self._list_named(_distinct(base, n))
            if found is None:
                break
            last = found
        if last is None or last.get("processingType") != wanted:
            return None
        return str(last["listId"])

    async def _create_list(self, body: Mapping[str, Any]) -> str:
        """Create a list, retried when the answer is lost. A retry that finds a list of that
        name (HubSpot: duplicate name) takes it, as the first attempt created it; a duplicate
        name on the first attempt is someone else's list, and an error."""
        stats = self.stats.endpoints["POST list"]
        retries_before = stats.retries
        response = await self.client.request(
            "POST",
            self.paths["lists"],
            endpoint="POST list",
            json=dict(body),
            idempotent=True,
            ok=(400,),
        )
        data = response.json()
        if response.status_code != 400:
            return str(data["list"]["listId"])
        duplicate = data.get("subCategory") == "ILS.DUPLICATE_LIST_NAMES"
        if duplicate and stats.retries > retries_before:
            found = await self._json(
                "GET",
                f"{self.paths['lists']}/object-type-id/0-1/name/{path_segment(body['name'])}",
                "GET list by name",
            )
            if found["list"]["processingType"] == body["processingType"]:
                return str(found["list"]["listId"])
        raise ApiError(
            platform=self.name,
            endpoint="POST list",
            status=400,
            code=str(data.get("category") or "") or None,
            message=str(data.get("message") or "HubSpot refused the list"),
            body=data,
        )

    async def _change_ids(
        self, ref: str, add: Sequence[str], remove: Sequence[str]
    ) -> dict[str, Any]:
        merged: dict[str, list[str]] = {
            "recordIdsMissing": [],
            "recordIdsRemoved": [],
            "recordsIdsAdded": [],
        }
        step = self.capabilities.membership_batch_size
        for start in range(0, max(len(add), len(remove)), step):
            body = await self._json(
                "PUT",
                f"{self.paths['lists']}/{path_segment(ref)}/memberships/add-and-remove",
                "PUT list memberships/add-and-remove",
                json={
                    "recordIdsToAdd": list(add[start : start + step]),
                    "recordIdsToRemove": list(remove[start : start + step]),
                },
            )
            for key in merged:
                merged[key] += [str(x) for x in body.get(key) or []]
        return merged

    async def change_static_members(
        self, ref: str, add: Sequence[str], remove: Sequence[str]
    ) -> list[ChangeResult]:
        """Add/remove members by email: ids looked up 100 a call, memberships 100 a call."""
        if not add and not remove:
            return []
        records = await self._batch_read_by_email([*add, *remove], ["email"])
        ids = {email: str(r["id"]) for email, r in records.items()}
        key = [e.strip().lower() for e in add], [e.strip().lower() for e in remove]
        body = await self._change_ids(
            ref, [ids[e] for e in key[0] if e in ids], [ids[e] for e in key[1] if e in ids]
        )
        missing = set(body["recordIdsMissing"])
        out = []
        for email in [*add, *remove]:
            rid = ids.get(email.strip().lower())
            if rid is None or rid in missing:
                out.append(
                    ChangeResult(
                        email=email,
                        ok=False,
                        error="no HubSpot contact with this email",
                        code="OBJECT_NOT_FOUND",
                    )
                )
            else:
                out.append(ChangeResult(email=email, ok=True, platform_id=rid))
        return out

    async def delete_owned(self, kind: str, ref: str) -> None:
        """Delete an owned list (segment, list, tag list) or remove an owned tag option."""
        if kind == "tag" and self.cfg.tags_as == "property":
            known = await self._load_properties()
            record = known.get(self.cfg.tags_property)
            if record is None:
                return
            options = [o for o in record.get("options") or [] if o["value"] != ref.casefold()]
            known[self.cfg.tags_property] = await self._json(
                "PATCH",
                f"{self.paths['properties']}/{path_segment(self.cfg.tags_property)}",
                "PATCH property",
                json={"options": options},
            )
            return
        with contextlib.suppress(ApiError):
            await self._json("DELETE", f"{self.paths['lists']}/{path_segment(ref)}", "DELETE list")

    async def _member_ids(self, ref: str) -> AsyncIterator[str]:
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": MEMBERSHIP_PAGE}
            if after:
                params["after"] = after
            body = await self._json(
                "GET",
                f"{self.paths['lists']}/{path_segment(ref)}/memberships",
                "GET list memberships",
                params=params,
            )
            for item in body.get("results") or []:
                yield str(item["recordId"])
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    async def segment_members(self, ref: str) -> AsyncIterator[str]:
        """Emails of a list's members (memberships 250 a page, emails 100 a batch read)."""
        ids = [rid async for rid in self._member_ids(ref)]
        for start in range(0, len(ids), BATCH_INPUTS):
            chunk = ids[start : start + BATCH_INPUTS]
            response = await self.client.request(
                "POST",
                f"{self.paths['contacts']}/batch/read",
                endpoint="POST contacts/batch/read",
                json={
                    "inputs": [{"id": i} for i in chunk],
                    "properties": ["email"],
                    "propertiesWithHistory": [],
                },
                idempotent=True,
                ok=(207,),
            )
            for record in response.json().get("results") or []:
                email = (record.get("properties") or {}).get("email")
                if email:
                    yield email

    # -- tags as MANUAL lists -------------------------------------------------------------------

    async def _load_tag_lists(self) -> None:
        """Find the owned tag lists (MANUAL lists named `<prefix>tag <tag>`), 500 a page."""
        marker = f"{self.cfg.list_prefix}tag "
        offset, more = 0, True
        while more:
            body = await self._json(
                "POST",
                f"{self.paths['lists']}/search",
                "POST lists/search",
                idempotent=True,
                json={
                    "query": marker,
                    "offset": offset,
                    "count": 500,
                    "listIds": [],
                    "processingTypes": ["MANUAL"],
                    "additionalProperties": [],
                },
            )
            for found in body.get("lists") or []:
                name = str(found.get("name", ""))
                if name.startswith(marker):
                    tag = name[len(marker) :]
                    self._tag_lists.setdefault(tag.casefold(), str(found["listId"]))
                    self._tag_labels.setdefault(tag.casefold(), tag)
            more = bool(body.get("hasMore"))
            offset = int(body.get("offset") or 0)

    async def _tag_list(self, tag: str) -> str:
        key = tag.casefold()
        if key not in self._tag_lists:
            name = f"{self.cfg.list_prefix}tag {tag}"
            response = await self.client.request(
                "GET",
                f"{self.paths['lists']}/object-type-id/0-1/name/{path_segment(name)}",
                endpoint="GET list by name",
                ok=(404,),
            )
            if response.status_code == 404:
                self._tag_lists[key] = await self.ensure_static(f"tag {tag}", None)
            else:
                self._tag_lists[key] = str(response.json()["list"]["listId"])
            self._tag_labels.setdefault(key, tag)
        return self._tag_lists[key]

    async def _tag_memberships(self) -> dict[str, set[str]]:
        members: dict[str, set[str]] = {}
        for key, list_id in self._tag_lists.items():
            async for record_id in self._member_ids(list_id):
                members.setdefault(record_id, set()).add(self._tag_labels.get(key, key))
        return members
