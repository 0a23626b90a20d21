"""The Mailchimp connector: one audience (list) of the Marketing API v3.

Contract (see `segsync.connector`), as Mailchimp makes it:

- auth: the API key (`<hex>-<dc>`) as the HTTP Basic password; the base URL comes from its
  datacenter (`https://<dc>.api.mailchimp.com/3.0`) unless `base_url` overrides it;
- reads: `GET /lists/{id}/members` 1000 a page, sorted by `last_changed`, incremental through
  `since_last_changed` minus an overlap window; records already seen at the same
  `last_changed` are skipped (the cursor remembers them), archived members come back as
  deletions. A completed stream moves its mark to the platform's time at the start of the
  read (the first page's `Date` header, else the injected clock) when that is newer than
  anything seen, so a quiet audience is not re-read from its last bulk write forever;
- writes: batch subscribe `POST /lists/{id}` 500 members a call — new contacts with
  `update_existing: false` (so an existing member is never touched by a create), changes with
  `update_existing: true` and `status` only when consent changes; tags through static segment
  membership batches (500 adds + 500 removes a call); renames and marketing permissions
  through `PATCH` of the member;
- consent: never sends `subscribed` (or `pending`) for a member Mailchimp holds as
  unsubscribed or cleaned; with `reoptin_via_pending` a newer opt-in goes back as `pending`
  (Mailchimp's confirmation email), otherwise the change fails with the reason. New members
  get the canonical status, `transactional` where it is unknown;
- segments: saved segments (flat `match` any/all) published from the compiler's definition,
  tag names and group names in it resolved to ids; static segments are tags.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr, field_validator, model_validator

from segsync.connector import (
    Capabilities,
    ChangeResult,
    Connector,
    ConnectorConfig,
    ContactChange,
    GroupRepresentation,
    ReadPage,
    RemoteContact,
    SegmentRepresentation,
    TagRepresentation,
)
from segsync.http import (
    ApiClient,
    ApiError,
    MalformedAnswer,
    RateBudget,
    RequestStats,
    build_client,
)
from segsync.mapping import PlatformMapping, load_mapping
from segsync.model import Consent, ConsentStatus, FieldSpec, FieldType
from segsync.rules.compiler import PlatformCannotExpress
from segsync_mailchimp import errors
from segsync_mailchimp.emulator import subscriber_hash
from segsync_mailchimp.fields import (
    CONSENT_TO_STATUS,
    ENGAGEMENT_PATHS,
    STATUS_TO_CONSENT,
    FieldPlace,
    default_mapping,
    from_merge_value,
    merge_field_body,
    merge_tag_for,
    place_fields,
    to_merge_value,
)

__all__ = ["MailchimpConfig", "MailchimpConnector"]

log = logging.getLogger("segsync.mailchimp")

BATCH_MEMBERS = 500
SEGMENT_BULK = 500
PAGE_SIZE = 1000
OPT_OUT_STATUSES = frozenset({"unsubscribed", "cleaned"})
CONSENT_FLOOR = "ConsentFloor"


class MailchimpConfig(ConnectorConfig):
    """The `platforms.mailchimp` block of segsync.yaml."""

    api_key: SecretStr = Field(description="Marketing API key, `<32 hex>-<datacenter>`")
    list_id: str = Field(min_length=1, description="the audience (list) id")
    reoptin_via_pending: bool = Field(
        default=False,
        description="send a newer opt-in of an unsubscribed member as `pending` (a "
        "confirmation email) instead of refusing it",
    )
    merge_fields: dict[str, str] = Field(
        default_factory=dict, description="canonical field -> merge tag, where not derived"
    )
    marketing_permissions: dict[str, str] = Field(
        default_factory=dict,
        description="canonical boolean field -> marketing_permission_id (GDPR lists)",
    )
    overlap_seconds: float = Field(
        default=300.0, ge=0, description="re-read window before the cursor (clock skew)"
    )
    max_concurrency: int = Field(default=10, ge=1, le=10, description="Mailchimp allows 10")

    @field_validator("api_key")
    @classmethod
    def _key_shape(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("api_key is empty")
        return value

    @model_validator(mode="after")
    def _datacenter_known(self) -> MailchimpConfig:
        if self.base_url is None and "-" not in self.api_key.get_secret_value():
            raise ValueError(
                "api_key has no datacenter suffix (like '-us21'); give base_url instead"
            )
        return self

    @property
    def datacenter(self) -> str | None:
        key = self.api_key.get_secret_value()
        return key.rsplit("-", 1)[1] if "-" in key else None

    @property
    def api_root(self) -> str:
        """The API root URL, ending in /3.0."""
        if self.base_url:
            return self.base_url if self.base_url.endswith("/3.0") else self.base_url + "/3.0"
        return f"https://{self.datacenter}.api.mailchimp.com/3.0"


@dataclasses.dataclass
class _Snapshot:
    """What segsync last saw of a member: for consent checks and skipping no-op writes."""

    status: str
    record: dict[str, Any]  # merge_fields and the member properties segsync writes
    tags: frozenset[str]
    interests: dict[str, bool]


@dataclasses.dataclass
class _Catalog:
    """The audience's merge fields, interest categories and tags (loaded once, kept current)."""

    merge_types: dict[str, str] = dataclasses.field(default_factory=dict)  # tag -> type
    categories: dict[str, str] = dataclasses.field(default_factory=dict)  # title -> id
    interests: dict[str, dict[str, str]] = dataclasses.field(
        default_factory=dict
    )  # cat -> name->id
    tags: dict[str, int] = dataclasses.field(default_factory=dict)  # name -> segment id
    loaded: bool = False


@dataclasses.dataclass
class _Cursor:
    """Incremental position: per stream a high-water mark, and what was seen near it.

    The mark is the newest `last_changed` read, or the time a completed read started when
    that is later; the next read starts at the mark minus the overlap. Old cursors (the
    newest `last_changed` only, or a plain timestamp) decode to the same fields.
    """

    members: str | None = None
    archived: str | None = None
    seen: set[str] = dataclasses.field(default_factory=set)  # "hash@last_changed"

    def encode(self) -> str:
        data = {"m": self.members, "a": self.archived, "seen": sorted(self.seen)}
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()

    @classmethod
    def decode(cls, text: str | None) -> _Cursor:
        if not text:
            return cls()
        try:
            data = json.loads(base64.urlsafe_b64decode(text.encode()))
            return cls(data.get("m"), data.get("a"), set(data.get("seen") or ()))
        except (ValueError, TypeError):
            # a plain timestamp is accepted as a cursor too
            return cls(text, text)


def _parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _platform_time(response: httpx.Response) -> dt.datetime | None:
    """The platform's clock from the HTTP `Date` header (None when absent or unreadable)."""
    value = response.headers.get("date")
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


_MERGE_CONDITIONS = frozenset({"TextMerge", "SelectMerge", "DateMerge", "BirthdayMerge"})
_SNAPSHOT_KEYS = ("merge_fields", "language", "vip", "email_type", "location")


def _same(have: Any, want: Any) -> bool:
    if have is None:
        have = ""
    if str(have) == str(want):
        return True
    try:
        return float(have) == float(want)
    except (TypeError, ValueError):
        return False


def _holds(record: Mapping[str, Any], fragment: Mapping[str, Any]) -> bool:
    """True when every value of `fragment` is already in `record` (nested by key)."""
    for key, want in fragment.items():
        have = record.get(key)
        if isinstance(want, Mapping):
            if not isinstance(have, Mapping) or not _holds(have, want):
                return False
        elif not _same(have, want):
            return False
    return True


def _deep_update(target: dict[str, Any], fragment: Mapping[str, Any]) -> None:
    for key, value in fragment.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = json.loads(json.dumps(value)) if isinstance(value, Mapping) else value


def _dig(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


class MailchimpConnector(Connector):
    """Mailchimp Marketing API v3, one audience; see the module docstring."""

    name: ClassVar[str] = "mailchimp"
    title: ClassVar[str] = "Mailchimp"
    config_model: ClassVar[type[ConnectorConfig]] = MailchimpConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        write_batch_size=BATCH_MEMBERS,
        read_page_size=PAGE_SIZE,
        membership_batch_size=SEGMENT_BULK,
        max_concurrency=10,
        tags=TagRepresentation.TAGS,
        groups=GroupRepresentation.INTERESTS,
        native_segments=SegmentRepresentation.SAVED_SEGMENT,
        static_segments="tag",
        incremental_reads=True,
        notes=(
            "10 simultaneous connections per account, no rate headers",
            "batch subscribe 500 members a call; tag membership 500 adds + 500 removes a call",
            "saved segments: one flat any/all list of conditions",
            "unsubscribed and cleaned members are never set back to subscribed",
        ),
    )
    compiler_path: ClassVar[str | None] = "segsync_mailchimp.compiler:MailchimpCompiler"
    emulator_path: ClassVar[str | None] = "segsync_mailchimp.emulator:MailchimpEmulator"
    default_base_url: ClassVar[str] = "https://<dc>.api.mailchimp.com/3.0"

    config: MailchimpConfig

    def __init__(self, config: ConnectorConfig | Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        key = cfg.api_key.get_secret_value()
        if cfg.max_concurrency < self.budget.max_concurrency and "budget" not in kwargs:
            self.budget = RateBudget(max_concurrency=cfg.max_concurrency, clock=self.clock)
        self.client: ApiClient = build_client(
            platform=self.name,
            base_url=cfg.api_root,
            auth=httpx.BasicAuth("segsync", key),
            secrets=[key],
            budget=self.budget,
            transport=self.transport,
            clock=self.clock,
            error_parser=errors.parse_error,
            retry_after=errors.retry_after,
        )
        if self.mapping is None:
            self.mapping = default_mapping()
        elif isinstance(self.mapping, str | Path):
            self.mapping = load_mapping(self.name, self.mapping)
        self._catalog = _Catalog()
        self._catalog_lock = asyncio.Lock()
        self._known: dict[str, _Snapshot] = {}
        self._list_path = f"/lists/{cfg.list_id}"

    # -- plumbing -----------------------------------------------------------------------------

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
            places = place_fields(self.schema, mapping, self.config.merge_fields)
            # marketing permissions live in the member's marketing_permissions, not a field
            for name in self.config.marketing_permissions:
                places.pop(name, None)
            self._places_cache = places
            self._places_key = key
        return self._places_cache

    def _engagement(self, record: Mapping[str, Any]) -> dict[str, Any]:
        mapping = self.mapping if isinstance(self.mapping, PlatformMapping) else None
        if mapping is not None and mapping.engagement:
            found = mapping.engagement_from_platform(record)
        else:
            found = {name: _dig(record, path) for name, path in ENGAGEMENT_PATHS.items()}
        return {k: v for k, v in found.items() if v not in (None, "")}

    async def _get(self, path: str, endpoint: str, **params: Any) -> Any:
        return await self.client.get_json(self._list_path + path, endpoint=endpoint, params=params)

    async def _paged(self, path: str, key: str, endpoint: str, **params: Any) -> list[Any]:
        items: list[Any] = []
        offset = 0
        while True:
            page = await self._get(path, endpoint, count=PAGE_SIZE, offset=offset, **params)
            batch = page.get(key) or []
            items.extend(batch)
            offset += len(batch)
            if not batch or offset >= int(page.get("total_items", 0)):
                return items

    async def _load_catalog(self) -> _Catalog:
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
                self._get("/tag-search", "GET /lists/{id}/tag-search"),
            )
            cat.merge_types = {f["tag"]: f["type"] for f in fields}
            cat.categories = {c["title"]: c["id"] for c in categories}
            cat.tags = {t["name"].casefold(): int(t["id"]) for t in tags.get("tags") or []}
            for title, cid in cat.categories.items():
                interests = await self._paged(
                    f"/interest-categories/{cid}/interests",
                    "interests",
                    "GET /lists/{id}/interest-categories/{id}/interests",
                )
                cat.interests[title] = {i["name"]: i["id"] for i in interests}
            cat.loaded = True
            return cat

    # -- check / prepare ----------------------------------------------------------------------

    async def check(self) -> None:
        """Ping the account and read the audience (401/403/404 raise ApiError)."""
        await self.client.get_json("/ping", endpoint="GET /ping")
        await self.client.get_json(
            self._list_path, endpoint="GET /lists/{id}", params={"fields": "id,name"}
        )

    async def prepare(self, fields: Mapping[str, FieldSpec], tags: Sequence[str]) -> None:
        """Create missing merge fields (matching types), interest categories/interests, tags.

        Raises ValueError when an existing merge field has an incompatible type.
        """
        if fields:
            merged = {**self.schema.fields, **fields}
            self.schema = self.schema.model_copy(update={"fields": merged})
        cat = await self._load_catalog()
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
                raise ValueError(
                    f"merge field {tag} is {existing!r} on Mailchimp but field {name!r} needs "
                    f"{body['type']!r}"
                )
        await self._ensure_tags(tags)

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
                    f"{self._list_path}/interest-categories/{cid}/interests",
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

    async def _find_tag(self, name: str) -> int | None:
        """The id of the existing tag called `name` (case-insensitive), or None."""
        found = await self._get("/tag-search", "GET /lists/{id}/tag-search", name=name)
        for tag in found.get("tags") or []:
            if str(tag.get("name", "")).casefold() == name.casefold():
                return int(tag["id"])
        return None

    # -- reads ----------------------------------------------------------------------------------

    def _to_remote(self, record: Mapping[str, Any], tags: Iterable[str]) -> RemoteContact:
        cat = self._catalog
        merge = record.get("merge_fields") or {}
        fields: dict[str, Any] = {}
        mapped: set[str] = set()
        for name, place in self._places().items():
            if place.group:
                ids = cat.interests.get(name, {})
                held = record.get("interests") or {}
                fields[name] = frozenset(n for n, iid in ids.items() if held.get(iid))
            elif place.entry is not None:
                mapped.add(name)
            elif place.merge_tag in merge:
                fields[name] = from_merge_value(place.spec, merge[place.merge_tag])
        if mapped and isinstance(self.mapping, PlatformMapping):
            read = self.mapping.from_platform(record)
            fields.update({k: v for k, v in read.items() if k in mapped})
        for name, field_id in self.config.marketing_permissions.items():
            for perm in record.get("marketing_permissions") or []:
                if perm.get("marketing_permission_id") == field_id:
                    fields[name] = bool(perm.get("enabled"))
        engagement = self._engagement(record)
        status = str(record.get("status", "transactional"))
        changed = _parse_time(record["last_changed"]) if record.get("last_changed") else None
        opted = record.get("timestamp_opt") or None
        consent = Consent(
            status=STATUS_TO_CONSENT.get(status, ConsentStatus.NON_SUBSCRIBED),
            updated_at=changed if status != "subscribed" or not opted else _parse_time(opted),
            source=self.name,
        )
        return RemoteContact(
            platform_id=str(record["id"]),
            email=str(record["email_address"]),
            fields=fields,
            tags=frozenset(tags),
            consent=consent,
            engagement=engagement,
            updated_at=changed,
            deleted=status == "archived",
        )

    async def _all_tags(self, record: Mapping[str, Any]) -> list[str]:
        tags = [t["name"] for t in record.get("tags") or []]
        if int(record.get("tags_count") or 0) > len(tags):
            listed = await self._paged(
                f"/members/{record['id']}/tags", "tags", "GET /lists/{id}/members/{hash}/tags"
            )
            tags = [t["name"] for t in listed]
        return tags

    def read(self, cursor: str | None = None) -> AsyncIterator[ReadPage]:
        """Stream members changed since `cursor` (all when None), 1000 a page, de-duplicated."""
        return self._read(cursor)

    async def _read(self, cursor: str | None) -> AsyncIterator[ReadPage]:
        await self._load_catalog()
        state = _Cursor.decode(cursor)
        overlap = dt.timedelta(seconds=self.config.overlap_seconds)
        for stream in ("members", "archived"):
            mark: str | None = getattr(state, stream)
            params: dict[str, Any] = {
                "count": self.capabilities.read_page_size,
                "sort_field": "last_changed",
                "sort_dir": "ASC",
                "exclude_fields": "members._links,_links",
            }
            if stream == "archived":
                params["status"] = "archived"
            if mark:
                params["since_last_changed"] = _iso(_parse_time(mark) - overlap)
            offset = 0
            newest = _parse_time(mark) if mark else None
            started = self.clock.now()  # replaced by the platform's own time when it tells it
            while True:
                response = await self.client.request(
                    "GET",
                    self._list_path + "/members",
                    endpoint="GET /lists/{id}/members",
                    params={**params, "offset": offset},
                )
                if offset == 0:
                    started = _platform_time(response) or started
                page = response.json()
                records = page.get("members") or []
                offset += len(records)
                contacts: list[RemoteContact] = []
                fresh = [r for r in records if f"{r['id']}@{r['last_changed']}" not in state.seen]
                tag_lists = await asyncio.gather(*(self._all_tags(r) for r in fresh))
                for record, tags in zip(fresh, tag_lists, strict=True):
                    contact = self._to_remote(record, tags)
                    contacts.append(contact)
                    self._remember(record, tags)
                    changed = _parse_time(record["last_changed"])
                    if newest is None or changed > newest:
                        newest = changed
                    state.seen.add(f"{record['id']}@{record['last_changed']}")
                total = int(page.get("total_items", 0))
                if not records and offset < total:  # pages that end before their own total
                    raise MalformedAnswer(
                        platform=self.name,
                        endpoint="GET /lists/{id}/members",
                        status=200,
                        code="paging",
                        message=f"the pages ended at {offset} of total_items {total}",
                    )
                done = not records or offset >= total
                # only a completed stream has read everything up to the start of the read
                high = newest
                if done:
                    high = started if newest is None else max(newest, started)
                if high is not None:
                    setattr(state, stream, _iso(high))
                    floor = _parse_time(_iso(high)) - overlap
                    state.seen = {s for s in state.seen if _parse_time(s.split("@", 1)[1]) >= floor}
                if contacts or records or done:
                    yield ReadPage(contacts=contacts, cursor=state.encode())
                if done:
                    break

    def _remember(self, record: Mapping[str, Any], tags: Iterable[str]) -> None:
        self._known[str(record["id"])] = _Snapshot(
            status=str(record.get("status")),
            record={k: record[k] for k in _SNAPSHOT_KEYS if k in record},
            tags=frozenset(t.casefold() for t in tags),
            interests={k: bool(v) for k, v in (record.get("interests") or {}).items()},
        )

    # -- writes ---------------------------------------------------------------------------------

    def _merge_values(self, change: ContactChange) -> tuple[dict[str, Any], dict[str, bool]]:
        """(member body fragment: merge_fields and mapped properties, interests by id)."""
        body: dict[str, Any] = {}
        interests: dict[str, bool] = {}
        cat = self._catalog
        places = self._places()
        mapped: dict[str, Any] = {}
        for name, value in change.fields.items():
            place = places.get(name)
            if place is None and name not in ENGAGEMENT_PATHS and name not in self.schema.fields:
                # not in the schema: a merge field named after it, value as given
                place = FieldPlace(
                    name,
                    FieldSpec(type=FieldType.TEXT),
                    "merge_fields." + merge_tag_for(name, self.config.merge_fields),
                )
                body.setdefault("merge_fields", {})[place.merge_tag] = to_merge_value(None, value)
                continue
            if place is None or name in self.config.marketing_permissions:
                continue  # read-only engagement, or a marketing permission (PATCH)
            if place.group:
                wanted = set(value or ())
                for option, iid in cat.interests.get(name, {}).items():
                    interests[iid] = option in wanted
            elif place.entry is not None:
                mapped[name] = value
            else:
                body.setdefault("merge_fields", {})[place.merge_tag] = to_merge_value(
                    place.spec, value
                )
        if mapped and isinstance(self.mapping, PlatformMapping):
            _deep_update(body, self.mapping.to_platform(mapped))
        return body, interests

    def _permissions(self, change: ContactChange) -> list[dict[str, Any]]:
        return [
            {"marketing_permission_id": pid, "enabled": bool(change.fields[name])}
            for name, pid in self.config.marketing_permissions.items()
            if name in change.fields
        ]

    def _unchanged(
        self, change: ContactChange, merge: Mapping[str, Any], interests: Mapping[str, bool]
    ) -> bool:
        """True when the last-seen record already holds everything `change` asks for."""
        known = self._known.get(change.platform_id or subscriber_hash(change.email))
        if known is None or change.new_email or self._permissions(change):
            return False
        if change.consent is not None and CONSENT_TO_STATUS[change.consent] != known.status:
            return False
        if not _holds(known.record, merge):
            return False
        if any(known.interests.get(k, False) != v for k, v in interests.items()):
            return False
        adds = {t.casefold() for t in change.tags_add}
        removes = {t.casefold() for t in change.tags_remove}
        return adds <= known.tags and not (removes & known.tags)

    async def _platform_status(self, email: str, *, fresh: bool) -> str | None:
        """The member's status on Mailchimp (None when not on the list).

        `fresh` asks Mailchimp even when a read saw the member: before sending an opt-in,
        the person may have unsubscribed since.
        """
        h = subscriber_hash(email)
        if h in self._known and not fresh:
            return self._known[h].status
        response = await self.client.request(
            "GET",
            f"{self._list_path}/members/{h}",
            endpoint="GET /lists/{id}/members/{hash}",
            params={"fields": "id,status"},
            ok=(404,),
        )
        if response.status_code == 404:
            return None
        return str(response.json()["status"])

    def _status_to_send(
        self, change: ContactChange, current: str | None
    ) -> tuple[str | None, str | None]:
        """(status to send or None, refusal message or None) under the consent floor."""
        if change.consent is None:
            return None, None
        wanted = CONSENT_TO_STATUS[change.consent]
        if current is None or current not in OPT_OUT_STATUSES:
            if wanted == "transactional" and current not in (None, "transactional", "archived"):
                return None, None  # Mailchimp cannot demote a member to transactional
            return wanted, None
        if wanted in ("subscribed", "pending"):
            if self.config.reoptin_via_pending:
                return "pending", None
            return None, (
                f"{change.email} is {current} on Mailchimp; segsync never subscribes it again "
                "(set reoptin_via_pending to send a confirmation email)"
            )
        if wanted == current or wanted == "transactional":
            return None, None
        return wanted, None

    async def write(self, changes: Sequence[ContactChange]) -> list[ChangeResult]:
        """Apply changes: batch subscribe 500 a call, then tags 500 + 500 a call."""
        results: list[ChangeResult | None] = [None] * len(changes)
        pending: list[int] = []
        for index, change in enumerate(changes):
            if change.is_empty:
                results[index] = ChangeResult(
                    email=change.email, ok=True, platform_id=change.platform_id
                )
            else:
                pending.append(index)
        if not pending:
            return [r for r in results if r is not None]
        await self._load_catalog()
        payload: dict[int, tuple[dict[str, Any], dict[str, bool]]] = {}
        to_send: list[int] = []
        for index in pending:
            change = changes[index]
            merge, interests = self._merge_values(change)
            payload[index] = (merge, interests)
            if not self._unchanged(change, merge, interests):
                to_send.append(index)
            else:
                results[index] = ChangeResult(
                    email=change.email,
                    ok=True,
                    platform_id=change.platform_id or subscriber_hash(change.email),
                )
        pending = to_send
        failures: dict[int, tuple[str, str | None]] = {}
        created: set[int] = set()
        ids: dict[int, str] = {}

        # 1. creates: update_existing false, so an existing member is never touched here
        # a "create" for a member already read is an update (never a blind status write)
        creates = [
            i
            for i in pending
            if changes[i].create and subscriber_hash(changes[i].email) not in self._known
        ]
        exists = await self._batch_subscribe(
            [
                (i, self._member_item(changes[i], payload[i], self._create_status(changes[i])))
                for i in creates
            ],
            update_existing=False,
            failures=failures,
            created=created,
            ids=ids,
        )
        # 2. updates (and creates that turned out to exist): status only under the floor
        creating = set(creates)
        updates = [i for i in pending if i not in creating] + exists
        wants_status = [i for i in updates if changes[i].consent is not None]
        statuses = await asyncio.gather(
            *(
                self._platform_status(
                    changes[i].email,
                    fresh=changes[i].consent in (ConsentStatus.SUBSCRIBED, ConsentStatus.PENDING),
                )
                for i in wants_status
            )
        )
        current = dict(zip(wants_status, statuses, strict=True))
        items: list[tuple[int, dict[str, Any]]] = []
        for index in updates:
            change = changes[index]
            status, refusal = self._status_to_send(change, current.get(index))
            if refusal:
                failures[index] = (refusal, CONSENT_FLOOR)
            if current.get(index) is None and index in current and status is None:
                status = self._create_status(change)
            item = self._member_item(change, payload[index], status)
            if len(item) > 1:
                items.append((index, item))
        await self._batch_subscribe(
            items, update_existing=True, failures=failures, created=created, ids=ids
        )
        # 3. renames and marketing permissions: PATCH each member (no batch takes them)
        await asyncio.gather(
            *(
                self._patch_member(i, changes[i], failures)
                for i in pending
                if (changes[i].new_email or self._permissions(changes[i])) and i not in failures
            )
        )
        # 4. tags through static segment membership
        tag_failures = await self._write_tags(
            [
                (i, changes[i])
                for i in pending
                if i not in failures or failures[i][1] == CONSENT_FLOOR
            ]
        )
        for index in pending:
            change = changes[index]
            email = change.new_email or change.email
            pid = ids.get(index) or change.platform_id or subscriber_hash(email)
            if index in failures:
                message, code = failures[index]
                results[index] = ChangeResult(
                    email=change.email,
                    ok=False,
                    platform_id=pid,
                    error=message,
                    code=code,
                    partial=code == CONSENT_FLOOR,
                )
            elif index in tag_failures:
                results[index] = ChangeResult(
                    email=change.email,
                    ok=False,
                    platform_id=pid,
                    created=index in created,
                    error=tag_failures[index],
                    code="TagMembership",
                    partial=True,
                )
            else:
                results[index] = ChangeResult(
                    email=change.email, ok=True, platform_id=pid, created=index in created
                )
                self._record_write(change, payload[index])
        return [r for r in results if r is not None]

    @staticmethod
    def _create_status(change: ContactChange) -> str:
        """A new member's status: the canonical one, `transactional` when unknown."""
        return CONSENT_TO_STATUS[change.consent] if change.consent else "transactional"

    @staticmethod
    def _member_item(
        change: ContactChange, payload: tuple[dict[str, Any], dict[str, bool]], status: str | None
    ) -> dict[str, Any]:
        fragment, interests = payload
        item: dict[str, Any] = {"email_address": change.email}
        if status is not None:
            item["status"] = status
        item.update(fragment)
        if interests:
            item["interests"] = interests
        return item

    async def _batch_subscribe(
        self,
        items: Sequence[tuple[int, dict[str, Any]]],
        *,
        update_existing: bool,
        failures: dict[int, tuple[str, str | None]],
        created: set[int],
        ids: dict[int, str],
    ) -> list[int]:
        """Send items 500 a call (concurrently); return the indexes Mailchimp says exist."""
        exists: list[int] = []

        async def send(chunk: Sequence[tuple[int, dict[str, Any]]]) -> None:
            body = {
                "members": [item for _, item in chunk],
                "update_existing": update_existing,
            }
            by_email = {item["email_address"].lower(): index for index, item in chunk}
            try:
                response = await self.client.request(
                    "POST",
                    self._list_path,
                    endpoint="POST /lists/{id}",
                    json=body,
                    idempotent=True,  # batch subscribe is an upsert keyed by email
                )
            except ApiError as exc:
                for index, _ in chunk:
                    failures[index] = (exc.message, exc.code)
                return
            data = response.json()
            for member in data.get("new_members") or []:
                idx = by_email.get(str(member["email_address"]).lower())
                if idx is not None:
                    created.add(idx)
                    ids[idx] = str(member["id"])
                    self._remember(member, [t["name"] for t in member.get("tags") or []])
            for member in data.get("updated_members") or []:
                idx = by_email.get(str(member["email_address"]).lower())
                if idx is not None:
                    ids[idx] = str(member["id"])
                    self._remember(member, [t["name"] for t in member.get("tags") or []])
            for error in data.get("errors") or []:
                idx = by_email.get(str(error.get("email_address", "")).lower())
                if idx is None:
                    continue
                if error.get("error_code") == "ERROR_CONTACT_EXISTS" and not update_existing:
                    exists.append(idx)
                    continue
                message = str(error.get("error") or "")
                if error.get("field"):
                    message += f" ({error['field']}: {error.get('field_message', '')})"
                failures[idx] = (message, str(error.get("error_code") or "ERROR_GENERIC"))

        await asyncio.gather(*(send(chunk) for chunk in _chunks(items, BATCH_MEMBERS)))
        return sorted(exists)

    async def _patch_member(
        self, index: int, change: ContactChange, failures: dict[int, tuple[str, str | None]]
    ) -> None:
        body: dict[str, Any] = {}
        if change.new_email:
            body["email_address"] = change.new_email
        permissions = self._permissions(change)
        if permissions:
            body["marketing_permissions"] = permissions
        try:
            await self.client.request(
                "PATCH",
                f"{self._list_path}/members/{subscriber_hash(change.email)}",
                endpoint="PATCH /lists/{id}/members/{hash}",
                json=body,
            )
        except ApiError as exc:
            failures[index] = (exc.message, exc.code)
            return
        if change.new_email:
            known = self._known.pop(subscriber_hash(change.email), None)
            if known is not None:
                self._known[subscriber_hash(change.new_email)] = known

    async def _write_tags(self, work: Sequence[tuple[int, ContactChange]]) -> dict[int, str]:
        """Tag deltas through segment bulk membership; failing indexes -> Mailchimp's message."""
        adds: dict[str, list[tuple[int, str]]] = {}
        removes: dict[str, list[tuple[int, str]]] = {}
        for index, change in work:
            email = change.new_email or change.email
            known = self._known.get(subscriber_hash(email))
            for tag in sorted(change.tags_add):
                if known is None or tag.casefold() not in known.tags:
                    adds.setdefault(tag, []).append((index, email))
            for tag in sorted(change.tags_remove):
                if known is None or tag.casefold() in known.tags:
                    removes.setdefault(tag, []).append((index, email))
        if not adds and not removes:
            return {}
        tag_ids = await self._ensure_tags(adds)
        removes = {t: v for t, v in removes.items() if t.casefold() in tag_ids}
        failed: dict[int, str] = {}
        calls = []
        for tag in sorted(set(adds) | set(removes)):
            add_chunks = _chunks(adds.get(tag, []), SEGMENT_BULK)
            remove_chunks = _chunks(removes.get(tag, []), SEGMENT_BULK)
            for n in range(max(len(add_chunks), len(remove_chunks))):
                calls.append(
                    self._bulk(
                        tag_ids[tag.casefold()],
                        add_chunks[n] if n < len(add_chunks) else [],
                        remove_chunks[n] if n < len(remove_chunks) else [],
                        failed,
                    )
                )
        await asyncio.gather(*calls)
        for index, change in work:
            if index in failed:
                continue
            known = self._known.get(subscriber_hash(change.new_email or change.email))
            if known is not None:
                added = {t.casefold() for t in change.tags_add}
                removed = {t.casefold() for t in change.tags_remove}
                known.tags = frozenset((known.tags | added) - removed)
        return failed

    async def _bulk(
        self,
        segment_id: int,
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
                f"{self._list_path}/segments/{segment_id}",
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

    def _record_write(
        self, change: ContactChange, payload: tuple[dict[str, Any], dict[str, bool]]
    ) -> None:
        """Keep the snapshot of a confirmed write (batch answers already refreshed it)."""
        known = self._known.get(subscriber_hash(change.new_email or change.email))
        if known is None:
            return
        fragment, interests = payload
        _deep_update(known.record, fragment)
        known.interests.update(interests)

    # -- segments ----------------------------------------------------------------------------------

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
            if c.get("condition_type") in _MERGE_CONDITIONS and (
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
                f"{self._list_path}/segments/{ref}",
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
        """The id of the saved segment (native) or tag (static) called `name`, or None."""
        if kind != "native":
            tag = await self._find_tag(name)
            return None if tag is None else str(tag)
        segments = await self._paged(
            "/segments", "segments", "GET /lists/{id}/segments", type="saved"
        )
        return next((str(s["id"]) for s in segments if s.get("name") == name), None)

    async def ensure_static(self, name: str, ref: str | None) -> str:
        """The tag (static segment) `name`, created when missing; returns its id."""
        if ref is not None:
            response = await self.client.request(
                "GET",
                f"{self._list_path}/segments/{ref}",
                endpoint="GET /lists/{id}/segments/{id}",
                params={"fields": "id,name,type"},
                ok=(404,),
            )
            if response.status_code != 404:
                return str(response.json()["id"])
        tags = await self._ensure_tags([name])
        return str(tags[name.casefold()])

    async def change_static_members(
        self, ref: str, add: Sequence[str], remove: Sequence[str]
    ) -> list[ChangeResult]:
        """Bulk membership 500 adds + 500 removes a call; one result per email."""
        failed: dict[int, str] = {}
        emails = [*add, *remove]
        add_items = [(i, e) for i, e in enumerate(add)]
        remove_items = [(len(add) + i, e) for i, e in enumerate(remove)]
        add_chunks = _chunks(add_items, SEGMENT_BULK)
        remove_chunks = _chunks(remove_items, SEGMENT_BULK)
        await asyncio.gather(
            *(
                self._bulk(
                    int(ref),
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
            f"{self._list_path}/segments/{ref}",
            endpoint="DELETE /lists/{id}/segments/{id}",
            ok=(404,),
        )
        self._catalog.tags = {n: i for n, i in self._catalog.tags.items() if str(i) != str(ref)}

    async def segment_members(self, ref: str) -> AsyncIterator[str]:
        """Every email in a segment or tag, whatever the member's status."""
        offset = 0
        while True:
            page = await self.client.get_json(
                f"{self._list_path}/segments/{ref}/members",
                endpoint="GET /lists/{id}/segments/{id}/members",
                params={
                    "count": PAGE_SIZE,
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
