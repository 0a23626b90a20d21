"""The audience a Mailchimp connector works on: its catalog and the calls every part shares.

`MailchimpAudience` is the base of the connector's parts (`read`, `write`, `segments`): it
holds the HTTP client, the audience's catalog (merge fields, interest categories and their
interests, tags; loaded once, kept current by what segsync creates), the last-seen snapshot
of each member, and implements `check`, `account_identity` and `prepare`:

- `check` reads the audience (401/403/404 raise `ApiError`): one call;
- `account_identity` is the API root's `account_id` (`GET /`) with the audience id: the
  state is bound to both;
- `prepare` creates the missing merge fields (matching types; an incompatible existing one
  raises ValueError), interest categories and interests for group fields, and tags;
- tags are static segments: created by name (case-insensitive), found again when a create
  raced with someone else's, and their membership changed 500 adds + 500 removes a call.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from segsync.connector import AccountIdentity, Connector, PreflightItem, Unwritable
from segsync.http import ApiClient, ApiError, RequestStats
from segsync.mapping import PlatformMapping
from segsync.model import FieldSpec
from segsync_mailchimp.api import MAX_PAGE, path_segment
from segsync_mailchimp.config import MailchimpConfig
from segsync_mailchimp.fields import FieldPlace, member_places, merge_field_body

__all__ = ["AudienceCatalog", "MailchimpAudience", "MemberSnapshot", "chunks"]

#: member properties segsync writes, kept in a snapshot to skip writes that change nothing
SNAPSHOT_KEYS = ("merge_fields", "language", "vip", "email_type", "location", "contact_id")


@dataclasses.dataclass
class MemberSnapshot:
    """What segsync last saw of a member: for consent checks and skipping no-op writes."""

    status: str
    record: dict[str, Any]  # merge_fields and the member properties segsync writes
    tags: frozenset[str]
    interests: dict[str, bool]


@dataclasses.dataclass
class AudienceCatalog:
    """The audience's merge fields, interest categories and tags (loaded once, kept current)."""

    merge_types: dict[str, str] = dataclasses.field(default_factory=dict)  # tag -> type
    categories: dict[str, str] = dataclasses.field(default_factory=dict)  # title -> id
    interests: dict[str, dict[str, str]] = dataclasses.field(
        default_factory=dict
    )  # cat -> name->id
    tags: dict[str, int] = dataclasses.field(default_factory=dict)  # name -> segment id
    loaded: bool = False


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """`items` in slices of at most `size`."""
    return [items[i : i + size] for i in range(0, len(items), size)]


class MailchimpAudience(Connector):
    """The state and shared calls of the connector's parts; see the module docstring.

    The connector's `__init__` sets every attribute declared here.
    """

    config: MailchimpConfig
    client: ApiClient
    _catalog: AudienceCatalog
    _catalog_lock: asyncio.Lock
    _known: dict[str, MemberSnapshot]
    _list_path: str

    @property
    def stats(self) -> RequestStats:
        return self.client.stats

    async def aclose(self) -> None:
        await self.client.aclose()

    def _places(self) -> dict[str, FieldPlace]:
        """Where each schema field lives (recomputed when `prepare` extends the schema)."""
        key = id(self.schema)
        if getattr(self, "_places_key", None) != key:
            mapping = self.mapping if isinstance(self.mapping, PlatformMapping) else None
            self._places_cache = member_places(self.schema, mapping, self.config)
            self._places_key = key
        return self._places_cache

    async def _get(self, path: str, endpoint: str, **params: Any) -> Any:
        return await self.client.get_json(self._list_path + path, endpoint=endpoint, params=params)

    async def _paged(self, path: str, key: str, endpoint: str, **params: Any) -> list[Any]:
        items: list[Any] = []
        offset = 0
        while True:
            page = await self._get(path, endpoint, count=MAX_PAGE, offset=offset, **params)
            batch = page.get(key) or []
            items.extend(batch)
            offset += len(batch)
            if not batch or offset >= int(page.get("total_items", 0)):
                return items

    async def _load_catalog(self) -> AudienceCatalog:
        async with self._catalog_lock:
            cat = self._catalog
            if cat.loaded:
                return cat
            fields, categories, tags = await asyncio.gather(
                self._paged(
                    "/merge-fields",
                    "merge_fields",
                    "GET /lists/{id}/merge-fields",
                    fields="merge_fields.tag,merge_fields.type,total_items",
                ),
                self._paged(
                    "/interest-categories",
                    "categories",
                    "GET /lists/{id}/interest-categories",
                    fields="categories.id,categories.title,total_items",
                ),
                self._static_segments(),
            )
            cat.merge_types = {f["tag"]: f["type"] for f in fields}
            cat.categories = {c["title"]: c["id"] for c in categories}
            cat.tags = {str(t["name"]).casefold(): int(t["id"]) for t in tags}
            for title, cid in cat.categories.items():
                interests = await self._paged(
                    f"/interest-categories/{path_segment(cid)}/interests",
                    "interests",
                    "GET /lists/{id}/interest-categories/{id}/interests",
                )
                cat.interests[title] = {i["name"]: i["id"] for i in interests}
            cat.loaded = True
            return cat

    # -- check / prepare ----------------------------------------------------------------------

    async def check(self) -> None:
        """Read the audience: one authenticated call that also proves the configured audience
        exists (401/403 raise ApiError; a 404 raises one naming `list_id` and the account's
        audiences, read with one more call)."""
        try:
            await self.client.get_json(
                self._list_path, endpoint="GET /lists/{id}", params={"fields": "id,name"}
            )
        except ApiError as exc:
            if exc.status != 404:
                raise
            found = await self.client.get_json(
                "/lists", endpoint="GET /lists",
                params={"fields": "lists.id,lists.name", "count": 10},
            )
            known = ", ".join(
                f"{x.get('id')} ({x.get('name')})" for x in (found or {}).get("lists") or []
            )
            raise ApiError(
                platform=exc.platform, endpoint=exc.endpoint, status=404, code="no_audience",
                message=f"mailchimp.list_id: audience {self.config.list_id} does not exist in "
                f"this account; fix: set list_id to one of its audiences: {known or 'none'}",
            ) from None

    async def audience_size(self) -> int:
        """The audience's members in every status but archived (`total_items` of a
        one-member page of `GET /lists/{id}/members`; `stats.member_count` counts
        subscribed members only)."""
        page = await self._get(
            "/members", "GET /lists/{id}/members", count=1, fields="total_items"
        )
        return int((page or {}).get("total_items") or 0)

    async def preflight(self) -> list[PreflightItem]:
        """The audience's name and its merge fields (read only)."""
        audience = await self.client.get_json(
            self._list_path, endpoint="GET /lists/{id}", params={"fields": "id,name"}
        )
        catalog = await self._load_catalog()
        return [
            PreflightItem(
                label="audience", value=f"{audience.get('name', '')} ({self.config.list_id})"
            ),
            PreflightItem(label="merge fields", value=", ".join(sorted(catalog.merge_types))),
        ]

    async def account_identity(self) -> AccountIdentity:
        """The account and audience the key reaches: the API root (`GET /`, its
        `account_id` and `account_name`) and the configured audience id. The state is bound
        to both: another account, or another audience of the same account, is another
        binding (member ids are per audience)."""
        root = await self.client.get_json(
            "/", endpoint="GET /", params={"fields": "account_id,account_name"}
        )
        account = str((root or {}).get("account_id") or "")
        if not account:
            raise ValueError("GET / answered without an account_id")
        name = str((root or {}).get("account_name") or account)
        return AccountIdentity(
            id=f"{account}/{self.config.list_id}",
            label=f"{name}, audience {self.config.list_id}",
        )

    async def prepare(
        self, fields: Mapping[str, FieldSpec], tags: Sequence[str]
    ) -> list[Unwritable]:
        """Create missing merge fields (matching types), interest categories/interests, tags.

        An existing merge field of an incompatible type is returned as `Unwritable` (the
        field is left out of writes); two fields mapped to one merge tag raise ValueError.
        """
        if fields:
            merged = {**self.schema.fields, **fields}
            self.schema = self.schema.model_copy(update={"fields": merged})
        cat = await self._load_catalog()
        problems: list[Unwritable] = []
        taken: dict[str, str] = {}
        places = self._places()
        for name in fields:
            place = places.get(name)
            if place is None:
                continue  # read-only engagement: nothing to create
            if place.group:
                await self._ensure_group(name, place.spec.options)
                continue
            tag = place.merge_tag
            if tag is None:
                continue  # a member property (language) or part of a merge field
            if tag in taken:
                raise ValueError(
                    f"fields {taken[tag]!r} and {name!r} both map to merge tag {tag!r}; "
                    "set platforms.mailchimp.merge_fields for one of them"
                )
            taken[tag] = name
            body = merge_field_body(name, tag, place.spec, place.merge_type)
            existing = cat.merge_types.get(tag)
            if existing is None:
                created = await self.client.request(
                    "POST",
                    self._list_path + "/merge-fields",
                    endpoint="POST /lists/{id}/merge-fields",
                    json=body,
                )
                cat.merge_types[tag] = created.json()["type"]
            elif existing != body["type"] and not (
                existing == "radio" and body["type"] == "dropdown"
            ):
                problems.append(Unwritable("field", name, (
                    f"merge field {tag} is {existing!r} on Mailchimp but field {name!r} needs "
                    f"{body['type']!r}; fix: change the schema type of {name!r}, map it to "
                    "another merge field, or change the merge field in Mailchimp"
                )))
        await self._ensure_tags(tags)
        return problems

    async def _ensure_group(self, name: str, options: Iterable[str]) -> None:
        cat = self._catalog
        if name not in cat.categories:
            created = await self.client.request(
                "POST",
                self._list_path + "/interest-categories",
                endpoint="POST /lists/{id}/interest-categories",
                json={"title": name, "type": "checkboxes"},
            )
            cat.categories[name] = created.json()["id"]
            cat.interests[name] = {}
        cid = cat.categories[name]
        for option in options:
            if option not in cat.interests.setdefault(name, {}):
                created = await self.client.request(
                    "POST",
                    f"{self._list_path}/interest-categories/{path_segment(cid)}/interests",
                    endpoint="POST /lists/{id}/interest-categories/{id}/interests",
                    json={"name": option},
                )
                cat.interests[name][option] = created.json()["id"]

    async def _ensure_tags(self, names: Iterable[str]) -> dict[str, int]:
        """Tag ids by casefolded name (tags are case-insensitive), creating missing tags."""
        cat = await self._load_catalog()
        missing: dict[str, str] = {}
        for name in names:
            if name.casefold() not in cat.tags:
                missing.setdefault(name.casefold(), name)
        for name in sorted(missing.values()):
            try:
                response = await self.client.request(
                    "POST",
                    self._list_path + "/segments",
                    endpoint="POST /lists/{id}/segments",
                    json={"name": name, "static_segment": []},
                )
            except ApiError as exc:
                # created meanwhile (by someone else, or by a retried call whose answer was lost)
                found = await self._find_tag(name) if exc.status == 400 else None
                if found is None:
                    raise
                cat.tags[name.casefold()] = found
                continue
            cat.tags[name.casefold()] = int(response.json()["id"])
        return cat.tags

    async def _static_segments(self) -> list[dict[str, Any]]:
        """Every tag of the audience (`{id, name}`), paged through its static segments."""
        return await self._paged(
            "/segments",
            "segments",
            "GET /lists/{id}/segments",
            type="static",
            fields="segments.id,segments.name,total_items",
        )

    async def _find_tag(self, name: str) -> int | None:
        """The id of the existing tag called exactly `name` (case-insensitive), or None.

        Tag search matches by prefix and answers at most `TAG_SEARCH_LIMIT` tags: when the
        exact name is not among them and `total_items` says more matched, the audience's
        tags are paged through (`GET /lists/{id}/segments?type=static`).
        """
        wanted = name.casefold()
        found = await self._get("/tag-search", "GET /lists/{id}/tag-search", name=name)
        tags = found.get("tags") or []
        for tag in tags:
            if str(tag.get("name", "")).casefold() == wanted:
                return int(tag["id"])
        if int(found.get("total_items") or 0) <= len(tags):
            return None
        for tag in await self._static_segments():
            if str(tag.get("name", "")).casefold() == wanted:
                return int(tag["id"])
        return None

    def _remember(self, record: Mapping[str, Any], tags: Iterable[str]) -> None:
        """Keep the snapshot of a member record Mailchimp returned."""
        self._known[str(record["id"])] = MemberSnapshot(
            status=str(record.get("status")),
            record={k: record[k] for k in SNAPSHOT_KEYS if k in record},
            tags=frozenset(t.casefold() for t in tags),
            interests={k: bool(v) for k, v in (record.get("interests") or {}).items()},
        )

    async def _bulk(
        self,
        segment_id: int | str,
        add: Sequence[tuple[int, str]],
        remove: Sequence[tuple[int, str]],
        failed: dict[int, str],
    ) -> list[str]:
        """One segment bulk call; returns the emails Mailchimp refused."""
        body: dict[str, Any] = {}
        if add:
            body["members_to_add"] = [e for _, e in add]
        if remove:
            body["members_to_remove"] = [e for _, e in remove]
        index_of = {e.lower(): i for i, e in (*add, *remove)}
        try:
            response = await self.client.request(
                "POST",
                f"{self._list_path}/segments/{path_segment(segment_id)}",
                endpoint="POST /lists/{id}/segments/{id}",
                json=body,
                idempotent=True,
            )
        except ApiError as exc:
            for email in index_of:
                failed[index_of[email]] = exc.message
            return list(index_of)
        refused: list[str] = []
        for error in response.json().get("errors") or []:
            for email in error.get("email_addresses") or []:
                refused.append(email)
                if email.lower() in index_of:
                    failed[index_of[email.lower()]] = str(error.get("error"))
        return refused
