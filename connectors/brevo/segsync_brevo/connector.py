"""The Brevo connector: contacts, attributes, lists and consent through the Brevo API v3.

How segsync's model lands on Brevo (see docs/platforms/brevo.md):

- fields are contact attributes (UPPER_CASE names) created with the right category and type
  by `prepare`; values are coerced before sending, and a value Brevo would drop silently is a
  failed result instead;
- tags are lists in an owned folder (default) or the options of a multiple-choice attribute;
  enum fields ("groups") are category attributes;
- consent: `emailBlacklisted` is the opt-out; the other statuses live in an owned category
  attribute. segsync never sends `emailBlacklisted: false`; a blocklisted person comes back
  only through Brevo's double opt-in, and only when configured;
- segments cannot be created through Brevo's API: they are materialised as owned lists;
- reads are incremental on `modifiedSince` with an overlap window, de-duplicated through the
  cursor, whose mark moves to the start of a completed read (the platform's `Date`, else the
  injected clock) when that is newer than anything read; small change sets go through
  single-contact calls, large ones through the asynchronous `/contacts/import`, the threshold
  chosen from measured costs, with process polling inside the hourly budget of non-contact
  endpoints; concurrent imports share one read-back pass.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import dataclasses
import datetime as dt
import json
import logging
import math
import re
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from segsync.clock import Clock
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
    RateWindow,
    RequestStats,
    build_client,
)
from segsync.mapping import FieldMapping, PlatformMapping, load_mapping
from segsync.model import Consent, ConsentStatus, FieldSpec, FieldType, Schema
from segsync_brevo.emulator import TIERS
from segsync_brevo.errors import parse_error, retry_after

__all__ = ["BrevoConfig", "BrevoConnector", "DoubleOptIn", "ImportCostModel"]

log = logging.getLogger("segsync.brevo")

LIST_PAGE = 50
MEMBERS_PAGE = 500
MEMBERSHIP_BATCH = 150
IMPORT_MAX_BYTES = 8 * 1024 * 1024  # Brevo allows 10 MB and recommends staying near 8
TAG_LIST_PREFIX = "tag: "
SEGMENT_LIST_PREFIX = "segment: "
BASE_LIST_NAME = "segsync contacts"
CONSENT_VALUES: dict[ConsentStatus, int] = {
    ConsentStatus.SUBSCRIBED: 1,
    ConsentStatus.NON_SUBSCRIBED: 2,
    ConsentStatus.PENDING: 3,
    ConsentStatus.UNSUBSCRIBED: 4,
    ConsentStatus.BOUNCED: 5,
}
"""The owned consent category attribute: canonical status -> enumeration value."""


class DoubleOptIn(BaseModel):
    """Brevo's double opt-in: the confirmation template, the page after the click, the lists."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    template_id: int = Field(gt=0, description="a template whose doiTemplate is true")
    redirection_url: str
    include_list_ids: tuple[int, ...] = Field(
        default=(), description="lists joined on confirmation (default: segsync's own list)"
    )


class BrevoConfig(ConnectorConfig):
    """The `brevo` block of segsync.yaml."""

    api_key: SecretStr
    tier: Literal["general", "advanced", "extended"] = "general"
    tags: Literal["lists", "attribute"] = Field(
        default="lists", description="tags as lists in the owned folder, or one attribute"
    )
    tags_attribute: str = "SEGSYNC_TAGS"
    folder: str = Field(default="segsync", description="the owned folder of tag/segment lists")
    consent_attribute: str = "SEGSYNC_CONSENT"
    attribute_names: dict[str, str] = Field(
        default_factory=dict, description="canonical field -> Brevo attribute name overrides"
    )
    double_opt_in: DoubleOptIn | None = None
    import_threshold: int | None = Field(
        default=None, ge=1, description="fixed size from which imports are used (None: measured)"
    )
    read_overlap_seconds: float = Field(default=300.0, ge=0)
    import_timeout_seconds: float = Field(default=3 * 3600.0, gt=0)


@dataclasses.dataclass
class ImportCostModel:
    """Estimates (updated from what is measured) that choose single calls or an import.

    A single-contact call costs one request in the contacts bucket; an import costs one
    request plus Brevo's processing time (a fixed part and a part per contact), plus polls of
    the hourly bucket and one read-back request per 1000 contacts.
    """

    contacts_per_second: float
    concurrency: int
    call_seconds: float = 0.2
    import_base_seconds: float = 30.0
    import_seconds_per_contact: float = 0.005

    def single_seconds(self, n: int) -> float:
        """Seconds to write `n` contacts one call each."""
        per_call = max(1.0 / self.contacts_per_second, self.call_seconds / self.concurrency)
        return n * per_call

    def import_seconds(self, n: int) -> float:
        """Seconds to import `n` contacts, read-back included."""
        readback = math.ceil(n / 1000) / self.contacts_per_second
        return self.import_base_seconds + self.import_seconds_per_contact * n + readback

    def threshold(self) -> int:
        """The smallest change set for which an import is cheaper than single calls."""
        n = 1
        while n < 10**6 and self.import_seconds(n) >= self.single_seconds(n):
            n = max(n + 1, int(n * 1.1))
        lo = max(1, int(n / 1.1))
        while lo < n and self.import_seconds(lo) >= self.single_seconds(lo):
            lo += 1
        return lo

    def observe_import(self, n: int, seconds: float) -> None:
        """Blend in the measured duration of an import of `n` contacts."""
        fixed = max(0.0, seconds - self.import_seconds_per_contact * n)
        self.import_base_seconds = 0.5 * self.import_base_seconds + 0.5 * fixed

    def observe_call(self, seconds: float) -> None:
        """Blend in the measured duration of one single-contact call."""
        self.call_seconds = 0.8 * self.call_seconds + 0.2 * seconds


@dataclasses.dataclass
class _Known:
    """What the last read (or write) showed of one contact."""

    id: str
    blocklisted: bool
    tags: frozenset[str]
    fields: dict[str, Any]
    consent: ConsentStatus


@dataclasses.dataclass
class _Op:
    """One change, translated into Brevo terms."""

    index: int
    change: ContactChange
    email: str
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)
    blocklist: bool = False
    add_lists: set[int] = dataclasses.field(default_factory=set)
    remove_lists: set[int] = dataclasses.field(default_factory=set)
    new_email: str | None = None
    double_opt_in: bool = False
    has_boolean: bool = False
    #: subscribed/pending asked while the blocklist is unknown: checked before it counts
    verify_consent: bool = False
    code: str | None = None
    note: str | None = None

    @property
    def clears(self) -> bool:
        return any(v in ("", []) for v in self.attributes.values())

    @property
    def importable(self) -> bool:
        """Imports set attributes and add to lists; renames, booleans and DOI need single calls."""
        return not (self.new_email or self.double_opt_in or self.has_boolean)


class _Refused(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class BrevoConnector(Connector):
    """The Brevo connector; see the module docstring."""

    name = "brevo"
    title = "Brevo"
    config_model = BrevoConfig
    compiler_path = "segsync_brevo.compiler:BrevoCompiler"
    emulator_path = "segsync_brevo.emulator:BrevoEmulator"
    default_base_url = "https://api.brevo.com/v3"
    capabilities = Capabilities(
        write_batch_size=10_000,
        read_page_size=1000,
        membership_batch_size=MEMBERSHIP_BATCH,
        max_concurrency=10,
        rate_windows=(
            RateWindow(10, 1.0, "contacts"),
            RateWindow(36_000, 3600.0, "contacts"),
            RateWindow(100, 3600.0, "hourly"),
        ),
        tags=TagRepresentation.LISTS,
        groups=GroupRepresentation.CATEGORY_ATTRIBUTE,
        native_segments=SegmentRepresentation.NONE,
        static_segments="list",
        notes=(
            "segments cannot be created through Brevo's API: materialised as owned lists",
            "bulk writes go through /contacts/import (asynchronous); /contacts/batch is deprecated",
            "emailBlacklisted is never cleared; re-opt-in only through double opt-in",
        ),
    )

    #: canonical field type -> (attribute category, attribute type)
    ATTRIBUTE_TYPES: ClassVar[dict[FieldType, tuple[str, str]]] = {
        FieldType.TEXT: ("normal", "text"),
        FieldType.PHONE: ("normal", "text"),
        FieldType.NUMBER: ("normal", "float"),
        FieldType.INTEGER: ("normal", "float"),
        FieldType.BOOLEAN: ("normal", "boolean"),
        FieldType.DATE: ("normal", "date"),
        FieldType.DATETIME: ("normal", "text"),  # Brevo dates hold days only: ISO text keeps it all
        FieldType.ENUM: ("category", "category"),
        FieldType.MULTI_ENUM: ("normal", "multiple-choice"),
    }
    #: canonical field names with a Brevo attribute of their own
    ATTRIBUTE_NAMES: ClassVar[dict[str, str]] = {
        "first_name": "FIRSTNAME",
        "last_name": "LASTNAME",
    }

    config: BrevoConfig

    def __init__(
        self,
        config: ConnectorConfig | Mapping[str, Any],
        *,
        schema: Schema | None = None,
        mapping: Any = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        budget: RateBudget | None = None,
    ) -> None:
        super().__init__(
            config, schema=schema, mapping=mapping, transport=transport, clock=clock, budget=budget
        )
        tier = TIERS[self.config.tier]
        if budget is None:
            self.budget = RateBudget(
                max_concurrency=self.capabilities.max_concurrency,
                windows=(
                    RateWindow(tier.contacts_per_second, 1.0, "contacts"),
                    RateWindow(tier.contacts_per_hour, 3600.0, "contacts"),
                    RateWindow(tier.others_per_hour, 3600.0, "hourly"),
                ),
                clock=self.clock,
            )
        key = self.config.api_key.get_secret_value()
        self.client: ApiClient = build_client(
            platform="brevo",
            base_url=self.config.base_url or self.default_base_url,
            headers={"api-key": key, "accept": "application/json"},
            secrets=[key],
            budget=self.budget,
            transport=transport,
            clock=self.clock,
            error_parser=parse_error,
            retry_after=retry_after,
        )
        self.cost = ImportCostModel(
            contacts_per_second=tier.contacts_per_second,
            concurrency=self.capabilities.max_concurrency,
        )
        self._attributes: dict[str, dict[str, Any]] | None = None
        self._folder_id: int | None = None
        self._owned_lists: dict[str, int] | None = None  # list name -> id, in the owned folder
        self._known: collections.OrderedDict[str, _Known] = collections.OrderedDict()
        self._known_limit = 50_000  # a bounded cache, not the audience
        self._read_backs = _ReadBackPool(self._read_back_pass)
        self.field_map: PlatformMapping | None = (
            mapping if isinstance(mapping, PlatformMapping) else _default_mapping()
        )

    @property
    def stats(self) -> RequestStats:
        return self.client.stats

    async def aclose(self) -> None:
        await self.client.aclose()

    # -- requests ------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        label: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        ok: Sequence[int] = (),
        idempotent: bool | None = None,
    ) -> httpx.Response:
        scope = "contacts" if path.startswith("/contacts") else "hourly"
        return await self.client.request(
            method,
            path,
            endpoint=f"{method} {label}",
            params=params,
            json=json_body,
            scope=scope,
            ok=ok,
            idempotent=idempotent,
        )

    # -- check and prepare ---------------------------------------------------------------

    async def check(self) -> None:
        """The key works: the account's attributes can be read."""
        await self._load_attributes(refresh=True)

    async def _load_attributes(self, *, refresh: bool = False) -> dict[str, dict[str, Any]]:
        if self._attributes is None or refresh:
            data = (await self._call("GET", "/contacts/attributes", "/contacts/attributes")).json()
            self._attributes = {a["name"].upper(): a for a in data.get("attributes", [])}
        return self._attributes

    def _mapped(self, field_name: str) -> FieldMapping | None:
        return self.field_map.fields.get(field_name) if self.field_map is not None else None

    def attribute_name(self, field_name: str) -> str:
        """The Brevo attribute of a canonical field: config, then the mapping, then a default."""
        if field_name in self.config.attribute_names:
            return self.config.attribute_names[field_name].upper()
        entry = self._mapped(field_name)
        if entry is not None and entry.path.startswith("attributes."):
            return entry.path.split(".", 1)[1].upper()
        if field_name in self.ATTRIBUTE_NAMES:
            return self.ATTRIBUTE_NAMES[field_name]
        return re.sub(r"[^A-Z0-9_]", "_", field_name.upper())

    def _wanted_type(self, spec: FieldSpec) -> tuple[str, str]:
        if spec.type is FieldType.ENUM and not spec.options:
            return ("normal", "text")
        return self.ATTRIBUTE_TYPES[spec.type]

    async def prepare(self, fields: Mapping[str, FieldSpec], tags: Sequence[str]) -> None:
        """Create the attributes, options, folder and tag lists that writes need."""
        attributes = await self._load_attributes()
        for name, spec in fields.items():
            if spec.read_only:
                continue
            category, kind = self._wanted_type(spec)
            await self._ensure_attribute(
                self.attribute_name(name), category, kind, spec.options, attributes
            )
        consent_options = tuple(s.value for s in CONSENT_VALUES)
        await self._ensure_attribute(
            self.config.consent_attribute.upper(),
            "category",
            "category",
            consent_options,
            attributes,
            values=CONSENT_VALUES,
        )
        if self.config.tags == "attribute":
            await self._ensure_attribute(
                self.config.tags_attribute.upper(),
                "normal",
                "multiple-choice",
                tuple(tags),
                attributes,
            )
        else:
            await self._tag_lists(tags, create=True)

    async def _ensure_attribute(
        self,
        name: str,
        category: str,
        kind: str,
        options: Sequence[str],
        attributes: dict[str, dict[str, Any]],
        values: Mapping[Any, int] | None = None,
    ) -> None:
        existing = attributes.get(name)
        path = f"/contacts/attributes/{category}/{urllib.parse.quote(name)}"
        label = "/contacts/attributes/{category}/{name}"
        if existing is None:
            body: dict[str, Any] = {}
            if category == "category":
                body["enumeration"] = [
                    {"value": (values or {}).get(o, i + 1), "label": o}
                    for i, o in enumerate(options)
                ]
                body["type"] = "category"
            else:
                body["type"] = kind
                if kind == "multiple-choice":
                    body["multiCategoryOptions"] = list(options) or ["-"]
            await self._call("POST", path, label, json_body=body, idempotent=True, ok=(400,))
            entry: dict[str, Any] = {"name": name, "category": category, "type": kind}
            if category == "category":
                entry["enumeration"] = body["enumeration"]
            if kind == "multiple-choice":
                entry["multiCategoryOptions"] = body["multiCategoryOptions"]
            attributes[name] = entry
            return
        if existing.get("category") == "category":
            enumeration = list(existing.get("enumeration") or [])
            labels = {e["label"] for e in enumeration}
            missing = [o for o in options if o not in labels]
            if missing:
                top = max([0, *(int(e["value"]) for e in enumeration)])
                added = [
                    {"value": (values or {}).get(o, top + i + 1), "label": o}
                    for i, o in enumerate(missing)
                ]
                await self._call(
                    "PUT",
                    f"/contacts/attributes/category/{urllib.parse.quote(name)}",
                    label,
                    json_body={"enumeration": enumeration + added},
                )
                existing["enumeration"] = enumeration + added
        elif existing.get("type") == "multiple-choice":
            await self._ensure_options(name, options)

    async def _ensure_options(self, name: str, options: Iterable[str]) -> None:
        attributes = await self._load_attributes()
        existing = attributes[name]
        have = list(existing.get("multiCategoryOptions") or [])
        missing = sorted(set(options) - set(have))
        if missing:
            await self._call(
                "PUT",
                f"/contacts/attributes/normal/{urllib.parse.quote(name)}",
                "/contacts/attributes/{category}/{name}",
                json_body={"multiCategoryOptions": missing},
            )
            existing["multiCategoryOptions"] = have + missing

    # -- folder and owned lists ------------------------------------------------------------

    async def _folder(self, *, create: bool) -> int | None:
        if self._folder_id is None:
            offset = 0
            while self._folder_id is None:
                data = (
                    await self._call(
                        "GET",
                        "/contacts/folders",
                        "/contacts/folders",
                        params={"limit": LIST_PAGE, "offset": offset, "sort": "asc"},
                    )
                ).json()
                folders = data.get("folders") or []
                for folder in folders:
                    if folder.get("name") == self.config.folder:
                        self._folder_id = int(folder["id"])
                offset += len(folders)
                if not folders or offset >= int(data.get("count") or 0):
                    break
            if self._folder_id is None and create:
                response = await self._call(
                    "POST",
                    "/contacts/folders",
                    "/contacts/folders",
                    json_body={"name": self.config.folder},
                )
                self._folder_id = int(response.json()["id"])
        return self._folder_id

    async def _lists(self, *, create_folder: bool = False) -> dict[str, int]:
        """Lists of the owned folder by name (empty when the folder does not exist)."""
        if self._owned_lists is None:
            folder = await self._folder(create=create_folder)
            if folder is None:
                return {}
            owned: dict[str, int] = {}
            offset = 0
            while True:
                data = (
                    await self._call(
                        "GET",
                        f"/contacts/folders/{folder}/lists",
                        "/contacts/folders/{folderId}/lists",
                        params={"limit": LIST_PAGE, "offset": offset, "sort": "asc"},
                    )
                ).json()
                lists = data.get("lists") or []
                for item in lists:
                    owned[str(item["name"])] = int(item["id"])
                offset += len(lists)
                if not lists or offset >= int(data.get("count") or 0):
                    break
            self._owned_lists = owned
        return self._owned_lists

    async def _owned_list(self, name: str) -> int:
        lists = await self._lists(create_folder=True)
        if name not in lists:
            folder = await self._folder(create=True)
            response = await self._call(
                "POST",
                "/contacts/lists",
                "/contacts/lists",
                json_body={"name": name, "folderId": folder},
            )
            lists[name] = int(response.json()["id"])
        return lists[name]

    async def _tag_lists(self, tags: Iterable[str], *, create: bool) -> dict[str, int]:
        """Tag -> list id for `tags` (created when `create`)."""
        out = {}
        for tag in sorted(set(tags)):
            name = TAG_LIST_PREFIX + tag
            if create:
                out[tag] = await self._owned_list(name)
            else:
                lists = await self._lists()
                if name in lists:
                    out[tag] = lists[name]
        return out

    # -- reading ---------------------------------------------------------------------------

    def read(self, cursor: str | None = None) -> AsyncIterator[ReadPage]:
        """Contacts modified since the cursor, oldest-created first, page by page."""
        return self._read(cursor)

    async def _read(self, cursor: str | None) -> AsyncIterator[ReadPage]:
        since, seen = _decode_cursor(cursor)
        overlap = dt.timedelta(seconds=self.config.read_overlap_seconds)
        attributes = await self._load_attributes()
        tag_ids: dict[int, str] = {}
        if self.config.tags == "lists":
            lists = await self._lists()
            tag_ids = {
                i: n[len(TAG_LIST_PREFIX) :]
                for n, i in lists.items()
                if n.startswith(TAG_LIST_PREFIX)
            }
        params: dict[str, Any] = {"limit": self.capabilities.read_page_size, "sort": "asc"}
        if since is not None:
            params["modifiedSince"] = _iso(since - overlap)
        high = since
        emitted: set[str] = set()
        fresh: dict[str, str] = {}
        offset = 0
        started = self.clock.now()  # replaced by the platform's own time when it tells it
        while True:
            response = await self._call(
                "GET", "/contacts", "/contacts", params={**params, "offset": offset}
            )
            if offset == 0:
                started = _platform_time(response) or started
            data = response.json()
            raw_contacts = data.get("contacts") or []
            page: list[RemoteContact] = []
            for raw in raw_contacts:
                cid, stamp = str(raw["id"]), str(raw["modifiedAt"])
                modified = _parse_time(stamp)
                if high is None or modified > high:
                    high = modified
                if modified >= high - overlap:  # only these can go into the next cursor
                    fresh[cid] = stamp
                if cid in emitted or seen.get(cid) == stamp:
                    continue
                emitted.add(cid)
                remote = self._to_remote(raw, attributes, tag_ids)
                if remote is not None:
                    page.append(remote)
            offset += len(raw_contacts)
            count = int(data.get("count") or 0)
            if not raw_contacts and offset < count:  # pages that end before their own count
                raise MalformedAnswer(
                    platform=self.name,
                    endpoint="GET /contacts",
                    status=200,
                    code="paging",
                    message=f"the pages ended at {offset} of count {count}",
                )
            last = not raw_contacts or offset >= count
            next_cursor = None
            if last:  # everything up to the start of the read is read: the mark may move there
                mark = started if high is None else max(high, started)
                next_cursor = _encode_cursor(mark, {**seen, **fresh}, overlap)
            if page or last:
                yield ReadPage(contacts=page, cursor=next_cursor)
            if last:
                return

    def _to_remote(
        self,
        raw: Mapping[str, Any],
        attributes: Mapping[str, Mapping[str, Any]],
        tag_ids: Mapping[int, str],
    ) -> RemoteContact | None:
        email = raw.get("email")
        if not email or str(email).endswith("@mailin-sms.com"):
            return None  # SMS-only contacts have no (real) email
        values = raw.get("attributes") or {}
        fields: dict[str, Any] = {}
        for name, spec in self.schema.fields.items():
            attribute = self.attribute_name(name)
            entry = self._mapped(name)
            if attribute not in values or (entry is not None and not entry.readable):
                continue
            try:
                value = self._decode(spec, attributes.get(attribute), values[attribute])
                fields[name] = _transformed(entry, value)
            except (ValueError, TypeError) as exc:
                log.warning("brevo contact %s: %s not read: %s", raw.get("id"), attribute, exc)
        if self.config.tags == "attribute":
            tags = frozenset(values.get(self.config.tags_attribute.upper()) or ())
        else:
            tags = frozenset(tag_ids[i] for i in raw.get("listIds") or () if i in tag_ids)
        status = self._consent_from(raw, attributes)
        updated = _parse_time(str(raw["modifiedAt"]))
        blocklisted = bool(raw.get("emailBlacklisted"))
        self._remember(
            str(email).lower(),
            _Known(str(raw["id"]), blocklisted, tags, dict(fields), status),
        )
        return RemoteContact(
            platform_id=str(raw["id"]),
            email=str(email),
            fields=fields,
            tags=tags,
            consent=Consent(status=status, updated_at=updated, source=self.name),
            updated_at=updated,
        )

    def _consent_from(
        self, raw: Mapping[str, Any], attributes: Mapping[str, Mapping[str, Any]]
    ) -> ConsentStatus:
        values = raw.get("attributes") or {}
        label = _label(
            attributes.get(self.config.consent_attribute.upper()),
            values.get(self.config.consent_attribute.upper()),
        )
        if raw.get("emailBlacklisted"):
            return ConsentStatus.BOUNCED if label == "bounced" else ConsentStatus.UNSUBSCRIBED
        if label == ConsentStatus.PENDING and values.get("DOUBLE_OPT-IN") == 1:
            return ConsentStatus.SUBSCRIBED  # the person confirmed
        if label in (ConsentStatus.SUBSCRIBED, ConsentStatus.PENDING, ConsentStatus.NON_SUBSCRIBED):
            return ConsentStatus(label)
        if label is not None:
            return ConsentStatus.NON_SUBSCRIBED  # opted out once, blocklist cleared in Brevo
        return ConsentStatus.SUBSCRIBED if raw.get("listIds") else ConsentStatus.NON_SUBSCRIBED

    @staticmethod
    def _decode(spec: FieldSpec, attribute: Mapping[str, Any] | None, raw: Any) -> Any:
        if attribute is not None and attribute.get("category") == "category":
            label = _label(attribute, raw)
            if label is None:
                raise ValueError(f"{raw!r} is not a value of the category")
            return spec.coerce(label)
        if spec.type is FieldType.INTEGER and isinstance(raw, float) and raw.is_integer():
            return int(raw)
        return spec.coerce(raw)

    def _remember(self, email: str, known: _Known) -> None:
        self._known[email] = known
        self._known.move_to_end(email)
        while len(self._known) > self._known_limit:
            self._known.popitem(last=False)

    # -- writing: translation ------------------------------------------------------------

    async def write(self, changes: Sequence[ContactChange]) -> list[ChangeResult]:
        """Apply changes: single calls below the import threshold, imports above it."""
        results: list[ChangeResult | None] = [None] * len(changes)
        ops: list[_Op] = []
        for index, change in enumerate(changes):
            if change.is_empty:
                results[index] = ChangeResult(
                    email=change.email, ok=True, platform_id=change.platform_id
                )
                continue
            try:
                op = await self._translate(index, change)
            except _Refused as refused:
                results[index] = ChangeResult(
                    email=change.email,
                    ok=False,
                    platform_id=change.platform_id,
                    error=refused.message,
                    code=refused.code,
                )
                continue
            if op is None:
                results[index] = ChangeResult(
                    email=change.email, ok=True, platform_id=change.platform_id
                )
                continue
            ops.append(op)
        importable = [op for op in ops if op.importable]
        if importable and len(importable) >= self.import_threshold():
            for index, result in (await self._write_by_import(importable)).items():
                results[index] = result
            ops = [op for op in ops if not op.importable]
        for start in range(0, len(ops), 100):
            chunk = ops[start : start + 100]
            for op, result in zip(
                chunk, await asyncio.gather(*(self._write_single(op) for op in chunk)), strict=True
            ):
                results[op.index] = result
        return [r for r in results if r is not None]

    def import_threshold(self) -> int:
        """Change-set size from which imports are used (configured, or from the cost model)."""
        return self.config.import_threshold or self.cost.threshold()

    async def _translate(self, index: int, change: ContactChange) -> _Op | None:
        """The Brevo form of a change; None when nothing differs from what was last read."""
        email = change.email.strip().lower()
        known = self._known.get(email)
        op = _Op(index=index, change=change, email=email)
        attributes = await self._load_attributes()
        fields = dict(change.fields)
        if known is not None and not change.create:
            fields = {k: v for k, v in fields.items() if known.fields.get(k) != v}
        problems = []
        for name, value in fields.items():
            spec = self.schema.get(name)
            if spec is None:
                problems.append(f"{name}: not a field of the schema")
                continue
            entry = self._mapped(name)
            if spec.read_only or (entry is not None and not entry.writable):
                continue
            attribute = self.attribute_name(name)
            try:
                op.attributes[attribute] = await self._encode(
                    spec, attribute, _transformed(entry, value), attributes
                )
            except ValueError as exc:
                problems.append(f"{name} ({attribute}): {exc}")
                continue
            meta = attributes.get(attribute) or {}
            if meta.get("type") == "boolean":
                op.has_boolean = True
        if problems:
            raise _Refused(
                "not sent: values Brevo would drop silently or cannot hold: " + "; ".join(problems),
                "invalid_value",
            )
        await self._translate_tags(op, known)
        await self._translate_consent(op, known)
        if change.new_email:
            op.new_email = change.new_email.strip().lower()
            if op.new_email == email:
                op.new_email = None
        if op.code == "consent_floor" and not self._has_more_than_consent(op):
            raise _Refused(op.note or "", "consent_floor")
        if not (
            op.attributes
            or op.blocklist
            or op.add_lists
            or op.remove_lists
            or op.new_email
            or op.double_opt_in
            or change.create
        ):
            return None
        return op

    async def _encode(
        self, spec: FieldSpec, attribute: str, value: Any, attributes: Mapping[str, Any]
    ) -> Any:
        """The value Brevo stores for `attribute`, or ValueError saying why it would be dropped."""
        meta = attributes.get(attribute)
        if meta is None:
            category, kind = self._wanted_type(spec)
            await self._ensure_attribute(
                attribute, category, kind, spec.options, self._attributes or {}
            )
            meta = (self._attributes or {})[attribute]
        if value is None:
            return [] if meta.get("type") == "multiple-choice" else ""
        canonical = spec.coerce(value)
        if meta.get("category") == "category":
            text = str(canonical)
            for entry in meta.get("enumeration") or []:
                if entry["label"] == text:
                    return int(entry["value"])
            raise ValueError(f"{text!r} is not a value of the category attribute")
        kind = meta.get("type") or "text"
        if kind == "float":
            if isinstance(canonical, bool) or not isinstance(canonical, int | float):
                raise ValueError(f"{canonical!r} is not a number")
            if not math.isfinite(canonical):
                raise ValueError(f"{canonical!r} is not a finite number")
            return canonical
        if kind == "boolean":
            if not isinstance(canonical, bool):
                raise ValueError(f"{canonical!r} is not a boolean")
            return canonical
        if kind == "date":
            if isinstance(canonical, dt.datetime):
                raise ValueError("a date attribute cannot hold a time of day")
            if not isinstance(canonical, dt.date):
                raise ValueError(f"{canonical!r} is not a date")
            return canonical.isoformat()
        if kind == "multiple-choice":
            options = (
                set(canonical) if isinstance(canonical, frozenset | set | list | tuple) else None
            )
            if options is None:
                raise ValueError(f"{canonical!r} is not a set of options")
            missing = options - set(meta.get("multiCategoryOptions") or ())
            if missing:
                raise ValueError(f"{sorted(missing)} are not options of the attribute")
            return sorted(options)
        if isinstance(canonical, dt.datetime):
            return canonical.astimezone(dt.UTC).isoformat()
        if isinstance(canonical, dt.date):
            return canonical.isoformat()
        if isinstance(canonical, bool | int | float | str):
            return str(canonical)
        raise ValueError(f"{canonical!r} cannot be written as text")

    async def _translate_tags(self, op: _Op, known: _Known | None) -> None:
        change = op.change
        adds, removes = set(change.tags_add), set(change.tags_remove) - set(change.tags_add)
        if known is not None and not change.create:
            adds -= known.tags
            removes &= known.tags
        if not (adds or removes):
            return
        if self.config.tags == "attribute":
            name = self.config.tags_attribute.upper()
            current = known.tags if known is not None else None
            if current is None and not change.create:
                current = await self._fetch_tags(op.email)
            await self._ensure_options(name, adds)
            op.attributes[name] = sorted(((current or frozenset()) | adds) - removes)
            return
        lists = await self._tag_lists(adds, create=True)
        op.add_lists |= set(lists.values())
        if removes:
            op.remove_lists |= set((await self._tag_lists(removes, create=False)).values())

    async def _fetch_tags(self, email: str) -> frozenset[str] | None:
        raw = await self._get_contact(email)
        if raw is None:
            return None
        return frozenset(
            (raw.get("attributes") or {}).get(self.config.tags_attribute.upper()) or ()
        )

    async def _get_contact(self, email: str) -> dict[str, Any] | None:
        response = await self._call(
            "GET",
            f"/contacts/{urllib.parse.quote(email)}",
            "/contacts/{identifier}",
            params={"identifierType": "email_id"},
            ok=(404,),
        )
        if response.status_code == 404:
            return None
        data: dict[str, Any] = response.json()
        return data

    async def _translate_consent(self, op: _Op, known: _Known | None) -> None:
        change = op.change
        status = change.consent
        if status is None and change.create:
            status = ConsentStatus.NON_SUBSCRIBED
        if status is None:
            return
        if known is not None and not change.create and known.consent == status:
            return
        attribute = self.config.consent_attribute.upper()
        if status in (ConsentStatus.UNSUBSCRIBED, ConsentStatus.BOUNCED):
            op.blocklist = True
            op.attributes[attribute] = CONSENT_VALUES[status]
            return
        if status is ConsentStatus.NON_SUBSCRIBED:
            op.attributes[attribute] = CONSENT_VALUES[status]
            return
        blocklisted = known.blocklisted if known is not None else None
        if blocklisted is None and not change.create:
            op.verify_consent = True  # singles look first; imports check their read-back
        if blocklisted:
            self._consent_floor(op)
            return
        if status is ConsentStatus.PENDING and self.config.double_opt_in is not None:
            op.double_opt_in = True
            op.code, op.note = "double_opt_in", "double opt-in confirmation requested"
        op.attributes[attribute] = CONSENT_VALUES[status]

    def _consent_floor(self, op: _Op) -> None:
        """A blocklisted contact asked to be subscribed: ask again by DOI, or drop the ask."""
        attribute = self.config.consent_attribute.upper()
        op.verify_consent = False
        if self.config.double_opt_in is not None:
            op.double_opt_in = True
            op.attributes[attribute] = CONSENT_VALUES[ConsentStatus.PENDING]
            op.code, op.note = "double_opt_in", "double opt-in confirmation requested"
            return
        op.attributes.pop(attribute, None)
        op.code = "consent_floor"
        op.note = (
            "the contact is blocklisted in Brevo (they opted out); segsync never clears "
            "emailBlacklisted, and no double opt-in is configured to ask them again"
        )

    # -- writing: single calls -------------------------------------------------------------

    async def _write_single(self, op: _Op) -> ChangeResult:
        change = op.change
        started = self.clock.monotonic()
        try:
            if op.verify_consent:
                raw = await self._get_contact(op.email)
                if raw is not None and raw.get("emailBlacklisted"):
                    self._consent_floor(op)
                    if op.code == "consent_floor" and not self._has_more_than_consent(op):
                        return self._failed(op, op.note or "", op.code)
            if op.double_opt_in:
                await self._double_opt_in(op)
            if change.create:
                platform_id, created = await self._create(op)
            else:
                platform_id, created = await self._update(op), False
        except ApiError as exc:
            return ChangeResult(
                email=change.email,
                ok=False,
                platform_id=change.platform_id,
                error=exc.message,
                code=exc.code or str(exc.status),
            )
        self.cost.observe_call(self.clock.monotonic() - started)
        self._forget(op)
        return ChangeResult(
            email=change.email,
            ok=True,
            partial=op.code == "consent_floor",
            platform_id=platform_id,
            created=created,
            code=op.code,
            error=op.note,
        )

    @staticmethod
    def _has_more_than_consent(op: _Op) -> bool:
        return bool(op.attributes or op.add_lists or op.remove_lists or op.new_email)

    async def _create(self, op: _Op) -> tuple[str | None, bool]:
        body: dict[str, Any] = {"email": op.email, "updateEnabled": True}
        if op.attributes:
            body["attributes"] = op.attributes
        if op.blocklist:
            body["emailBlacklisted"] = True
        if op.add_lists:
            body["listIds"] = sorted(op.add_lists)
        # updateEnabled makes a repeat harmless, so a lost answer may be retried
        response = await self._call(
            "POST", "/contacts", "/contacts", json_body=body, idempotent=True
        )
        if response.status_code == 201:
            return str(response.json()["id"]), True
        raw = await self._get_contact(op.email)
        if op.remove_lists and raw is not None:
            await self._call(
                "PUT",
                f"/contacts/{raw['id']}",
                "/contacts/{identifier}",
                params={"identifierType": "contact_id"},
                json_body={"unlinkListIds": sorted(op.remove_lists)},
            )
        return (str(raw["id"]) if raw else None), False

    async def _update(self, op: _Op) -> str | None:
        change = op.change
        body: dict[str, Any] = {}
        attributes = dict(op.attributes)
        if op.new_email:
            attributes["EMAIL"] = op.new_email
            known = self._known.get(op.email)
            blocklisted = known.blocklisted if known is not None else None
            if blocklisted is None:
                raw = await self._get_contact(op.email)
                blocklisted = bool(raw and raw.get("emailBlacklisted"))
            if blocklisted:
                body["emailBlacklisted"] = True  # a new email alone would clear the blocklist
        if attributes:
            body["attributes"] = attributes
        if op.blocklist:
            body["emailBlacklisted"] = True
        if op.add_lists:
            body["listIds"] = sorted(op.add_lists)
        if op.remove_lists:
            body["unlinkListIds"] = sorted(op.remove_lists)
        if not body:
            return change.platform_id
        if change.platform_id:
            path, params = f"/contacts/{change.platform_id}", {"identifierType": "contact_id"}
        else:
            path, params = (
                f"/contacts/{urllib.parse.quote(op.email)}",
                {"identifierType": "email_id"},
            )
        await self._call("PUT", path, "/contacts/{identifier}", params=params, json_body=body)
        return change.platform_id

    async def _double_opt_in(self, op: _Op) -> None:
        settings = self.config.double_opt_in
        assert settings is not None
        lists = list(settings.include_list_ids) or [await self._owned_list(BASE_LIST_NAME)]
        await self._call(
            "POST",
            "/contacts/doubleOptinConfirmation",
            "/contacts/doubleOptinConfirmation",
            json_body={
                "email": op.email,
                "includeListIds": lists,
                "templateId": settings.template_id,
                "redirectionUrl": settings.redirection_url,
            },
            idempotent=True,
        )

    def _forget(self, op: _Op) -> None:
        """Drop what was known of a contact just written (the next read refreshes it)."""
        self._known.pop(op.email, None)

    # -- writing: imports ------------------------------------------------------------------

    async def _write_by_import(self, ops: Sequence[_Op]) -> dict[int, ChangeResult]:
        """Write `ops` through `/contacts/import`; one result per op index.

        Concurrent calls (the engine's write batches) share one read-back pass: each joins
        the pool on entry and leaves it with its read-back request (or on failure).
        """
        ticket = self._read_backs.join()
        try:
            return await self._import_and_confirm(ops, ticket)
        finally:
            self._read_backs.leave(ticket)

    async def _import_and_confirm(
        self, ops: Sequence[_Op], ticket: _ReadBackTicket
    ) -> dict[int, ChangeResult]:
        base = await self._owned_list(BASE_LIST_NAME)
        groups: dict[tuple[frozenset[int], bool, bool], list[_Op]] = collections.defaultdict(list)
        for op in ops:
            groups[(frozenset(op.add_lists), op.blocklist, op.clears)].append(op)
        # a list set shared by few contacts is cheaper as membership calls than as an import
        merged: dict[tuple[frozenset[int], bool, bool], list[_Op]] = collections.defaultdict(list)
        late_adds: dict[int, list[_Op]] = collections.defaultdict(list)
        for (lists, blocklist, clears), members in groups.items():
            if lists and len(members) < MEMBERSHIP_BATCH:
                merged[(frozenset(), blocklist, clears)].extend(members)
                for list_id in lists:
                    late_adds[list_id].extend(members)
            else:
                merged[(lists, blocklist, clears)].extend(members)
        submitted = self.clock.now()
        processes: list[tuple[int, list[_Op]]] = []
        failures: dict[int, ChangeResult] = {}
        for (lists, blocklist, clears), members in merged.items():
            for chunk in _chunks_by_size(members, IMPORT_MAX_BYTES):
                body: dict[str, Any] = {
                    "jsonBody": [{"email": op.email, "attributes": op.attributes} for op in chunk],
                    "listIds": sorted(lists | {base}),
                    "updateExistingContacts": True,
                    "emptyContactsAttributes": clears,
                    "disableNotification": True,
                }
                if blocklist:
                    body["emailBlacklist"] = True
                try:
                    response = await self._call(
                        "POST",
                        "/contacts/import",
                        "/contacts/import",
                        json_body=body,
                        idempotent=True,
                    )
                except ApiError as exc:
                    for op in chunk:
                        failures[op.index] = self._failed(op, exc.message, exc.code)
                    continue
                processes.append((int(response.json()["processId"]), chunk))
        outcome = await self._wait_for(
            [pid for pid, _ in processes], sum(len(c) for _, c in processes)
        )
        imported: list[_Op] = []
        for pid, chunk in processes:
            status = outcome.get(pid, "timeout")
            if status == "completed":
                imported.extend(chunk)
            else:
                message = (
                    f"Brevo import process {pid} ended as {status!r}"
                    if status != "timeout"
                    else f"Brevo import process {pid} did not complete in time"
                )
                for op in chunk:
                    failures[op.index] = self._failed(op, message, "import_" + status)
        found = await self._read_backs.request(ticket, submitted, {op.email for op in imported})
        results: dict[int, ChangeResult] = dict(failures)
        for op in imported:
            if op.email not in found:
                results[op.index] = self._failed(
                    op,
                    "Brevo's import did not take this contact (see the import report)",
                    "import_rejected",
                )
        confirmed = [op for op in imported if op.index not in results]
        membership_errors: dict[str, str] = {}
        for list_id, members in late_adds.items():
            emails = [op.email for op in members if op.index not in results]
            for result in await self._membership(list_id, emails, "add"):
                if not result.ok:
                    membership_errors[result.email] = result.error or "list membership refused"
        removals: dict[int, list[str]] = collections.defaultdict(list)
        for op in confirmed:
            for list_id in op.remove_lists:
                removals[list_id].append(op.email)
        for list_id, emails in removals.items():
            await self._membership(list_id, emails, "remove")
        await self._after_import_consent(confirmed, found)
        for op in confirmed:
            contact_id, created_at, _ = found[op.email]
            self._forget(op)
            if op.email in membership_errors:
                results[op.index] = ChangeResult(
                    email=op.change.email,
                    ok=True,
                    partial=True,
                    platform_id=contact_id,
                    created=created_at >= submitted,
                    error=membership_errors[op.email],
                )
                continue
            results[op.index] = ChangeResult(
                email=op.change.email,
                ok=True,
                partial=op.code == "consent_floor",
                platform_id=contact_id,
                created=created_at >= submitted,
                code=op.code,
                error=op.note,
            )
        return results

    async def _after_import_consent(
        self, ops: Sequence[_Op], found: Mapping[str, tuple[str, dt.datetime, bool]]
    ) -> None:
        """Blocklisted contacts an import marked subscribed: restore, then DOI or report."""
        attribute = self.config.consent_attribute.upper()
        for op in ops:
            if not (op.verify_consent and found[op.email][2]):
                continue
            self._consent_floor(op)
            value = CONSENT_VALUES[
                ConsentStatus.PENDING if op.double_opt_in else ConsentStatus.UNSUBSCRIBED
            ]
            try:
                await self._call(
                    "PUT",
                    f"/contacts/{found[op.email][0]}",
                    "/contacts/{identifier}",
                    params={"identifierType": "contact_id"},
                    json_body={"attributes": {attribute: value}},
                )
                if op.double_opt_in:
                    await self._double_opt_in(op)
            except ApiError as exc:
                op.code, op.note = "consent_floor", f"{op.note}; {exc.message}"

    def _failed(self, op: _Op, message: str, code: str | None) -> ChangeResult:
        return ChangeResult(
            email=op.change.email,
            ok=False,
            platform_id=op.change.platform_id,
            error=message,
            code=code,
        )

    async def _wait_for(self, process_ids: Sequence[int], size: int) -> dict[int, str]:
        """Poll processes until they end; the status of each ("timeout" when it never did).

        Polls come at 0.2, 0.6, 1.4, 3 ... times the cost model's estimate (each wait doubles,
        from 2 s up to 5 min), so a quicker import than expected is seen early and a slower
        one costs a few polls. `/processes` counts against the hourly budget, which the rate
        windows enforce; one `GET /processes` page covers up to 50 processes at once.
        """
        pending = set(process_ids)
        outcome: dict[int, str] = {}
        durations: list[float] = []
        if not pending:
            return outcome
        started = self.clock.monotonic()
        deadline = started + self.config.import_timeout_seconds
        delay = min(300.0, max(2.0, 0.2 * self.cost.import_seconds(size)))
        await self.clock.sleep(delay)
        while pending:
            if len(pending) == 1:
                [pid] = pending
                response = await self._call(
                    "GET", f"/processes/{pid}", "/processes/{processId}", ok=(404,)
                )
                items = [response.json()] if response.status_code == 200 else []
                if response.status_code == 404:
                    outcome[pid] = "not_found"
                    pending.discard(pid)
            else:
                items = await self._recent_processes(min(pending))
            for item in items:
                pid = int(item["id"])
                if pid in pending and item.get("status") in ("completed", "failed", "cancelled"):
                    outcome[pid] = str(item["status"])
                    pending.discard(pid)
                    took = _process_seconds(item)
                    if took is not None:
                        durations.append(took)
            if not pending:
                break
            if self.clock.monotonic() + delay > deadline:
                break
            await self.clock.sleep(delay)
            delay = min(delay * 2, 300.0)
        for pid in pending:
            outcome[pid] = "timeout"
        if durations:
            # Brevo (2026) dates processes: learn from the real duration, not the poll times
            self.cost.observe_import(size, max(durations))
        elif not pending:
            self.cost.observe_import(size, self.clock.monotonic() - started)
        return outcome

    async def _recent_processes(self, oldest: int) -> list[dict[str, Any]]:
        """Processes newest first, 50 a page, down to process `oldest`."""
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            data = (
                await self._call(
                    "GET",
                    "/processes",
                    "/processes",
                    params={"limit": 50, "offset": offset, "sort": "desc"},
                )
            ).json()
            page = list(data.get("processes") or [])
            items += page
            offset += len(page)
            if (
                not page
                or min(int(p["id"]) for p in page) <= oldest
                or offset >= int(data.get("count") or 0)
            ):
                return items

    async def _read_back_pass(
        self, since: dt.datetime, emails: set[str]
    ) -> dict[str, tuple[str, dt.datetime, bool]]:
        """Email -> (id, createdAt, emailBlacklisted) of the `emails` modified since `since`."""
        if not emails:
            return {}
        found: dict[str, tuple[str, dt.datetime, bool]] = {}
        overlap = dt.timedelta(seconds=self.config.read_overlap_seconds)
        offset = 0
        while True:
            data = (
                await self._call(
                    "GET",
                    "/contacts",
                    "/contacts",
                    params={
                        "limit": 1000,
                        "offset": offset,
                        "sort": "asc",
                        "modifiedSince": _iso(since - overlap),
                    },
                )
            ).json()
            contacts = data.get("contacts") or []
            for raw in contacts:
                email = str(raw.get("email") or "").lower()
                if email in emails:
                    found[email] = (
                        str(raw["id"]),
                        _parse_time(str(raw["createdAt"])),
                        bool(raw.get("emailBlacklisted")),
                    )
            offset += len(contacts)
            if not contacts or offset >= int(data.get("count") or 0):
                return found

    # -- static segments (owned lists) -----------------------------------------------------

    async def ensure_static(self, name: str, ref: str | None) -> str:
        """The owned list `segment: <name>` in the owned folder (created when missing)."""
        if ref is not None:
            response = await self._call(
                "GET", f"/contacts/lists/{int(ref)}", "/contacts/lists/{listId}", ok=(404,)
            )
            if response.status_code == 200:
                return ref
        return str(await self._owned_list(SEGMENT_LIST_PREFIX + name))

    async def find_owned(self, kind: str, name: str) -> str | None:
        """The id of the owned list `segment: <name>` in the owned folder, or None."""
        found = (await self._lists()).get(SEGMENT_LIST_PREFIX + name)
        return None if found is None else str(found)

    async def change_static_members(
        self, ref: str, add: Sequence[str], remove: Sequence[str]
    ) -> list[ChangeResult]:
        """Add and remove members by email, 150 a call."""
        list_id = int(ref)
        results = await self._membership(list_id, [e.strip().lower() for e in add], "add")
        results += await self._membership(list_id, [e.strip().lower() for e in remove], "remove")
        return results

    async def _membership(
        self, list_id: int, emails: Sequence[str], action: str
    ) -> list[ChangeResult]:
        """One result per email; "already there" / "already gone" count as done."""
        emails = list(dict.fromkeys(emails))
        chunks = [emails[i : i + MEMBERSHIP_BATCH] for i in range(0, len(emails), MEMBERSHIP_BATCH)]
        path = f"/contacts/lists/{list_id}/contacts/{action}"
        label = "/contacts/lists/{listId}/contacts/" + action

        async def send(chunk: list[str]) -> list[ChangeResult]:
            response = await self._call(
                "POST", path, label, json_body={"emails": chunk}, ok=(400,), idempotent=True
            )
            if response.status_code == 400:
                code, message = parse_error(response)
                if message != "Contact already in list and/or does not exist":
                    return [
                        ChangeResult(email=e, ok=False, error=message, code=code) for e in chunk
                    ]
                failed = set(chunk)
            else:
                failed = set(response.json().get("contacts", {}).get("failure") or ())
            out = []
            for email in chunk:
                if email not in failed or action == "remove":
                    out.append(ChangeResult(email=email, ok=True))
                    continue
                raw = await self._get_contact(email)
                if raw is not None and list_id in (raw.get("listIds") or ()):
                    out.append(ChangeResult(email=email, ok=True, platform_id=str(raw["id"])))
                else:
                    out.append(
                        ChangeResult(
                            email=email,
                            ok=False,
                            code="document_not_found",
                            error="Contact already in list and/or does not exist: "
                            "the contact does not exist in Brevo",
                        )
                    )
            return out

        batches = await asyncio.gather(*(send(chunk) for chunk in chunks))
        return [result for batch in batches for result in batch]

    async def delete_owned(self, kind: str, ref: str) -> None:
        """Delete an owned list (segment, tag or list) or the owned folder; gone is fine."""
        if kind in ("segment", "list", "tag"):
            path, label = f"/contacts/lists/{int(ref)}", "/contacts/lists/{listId}"
        elif kind == "folder":
            path, label = f"/contacts/folders/{int(ref)}", "/contacts/folders/{folderId}"
        else:
            raise ValueError(f"brevo: cannot delete owned objects of kind {kind!r}")
        await self._call("DELETE", path, label, ok=(404,))
        self._owned_lists = None
        if kind == "folder":
            self._folder_id = None

    async def segment_members(self, ref: str) -> AsyncIterator[str]:
        """Emails in an owned list, or in a Brevo segment when `ref` is `segment:<id>`."""
        if ref.startswith("segment:"):
            path, label, page = "/contacts", "/contacts", 1000
            params: dict[str, Any] = {"segmentId": int(ref.split(":", 1)[1])}
        else:
            path = f"/contacts/lists/{int(ref)}/contacts"
            label, page, params = "/contacts/lists/{listId}/contacts", MEMBERS_PAGE, {}
        offset = 0
        while True:
            data = (
                await self._call(
                    "GET",
                    path,
                    label,
                    params={**params, "limit": page, "offset": offset, "sort": "asc"},
                )
            ).json()
            contacts = data.get("contacts") or []
            for raw in contacts:
                if raw.get("email"):
                    yield str(raw["email"])
            offset += len(contacts)
            if not contacts or offset >= int(data.get("count") or 0):
                return

    async def platform_segments(self) -> list[dict[str, Any]]:
        """Brevo's own segments (read-only through the API): id, name, category."""
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            data = (
                await self._call(
                    "GET",
                    "/contacts/segments",
                    "/contacts/segments",
                    params={"limit": LIST_PAGE, "offset": offset},
                )
            ).json()
            segments = data.get("segments") or []
            out += [
                {"id": s["id"], "name": s.get("segmentName"), "category": s.get("categoryName")}
                for s in segments
            ]
            offset += len(segments)
            if not segments or offset >= int(data.get("count") or 0):
                return out


# -- helpers ---------------------------------------------------------------------------------


def _default_mapping() -> PlatformMapping | None:
    """The shipped `mappings/brevo.yaml`, or None when it cannot be loaded."""
    try:
        return load_mapping("brevo")
    except (OSError, ValueError) as exc:
        log.warning("brevo: default mapping not loaded (%s); attribute names from field names", exc)
        return None


def _transformed(entry: FieldMapping | None, value: Any) -> Any:
    """A text value with the mapping's transforms (trim, case) applied."""
    if entry is None or not isinstance(value, str):
        return value
    for transform in entry.transforms:
        value = transform.apply(value)
    return value


def _label(attribute: Mapping[str, Any] | None, raw: Any) -> str | None:
    """The label of a category attribute's value (by id, or already a label)."""
    if raw is None or attribute is None:
        return None
    for entry in attribute.get("enumeration") or []:
        if entry.get("value") == raw or entry.get("label") == raw:
            return str(entry["label"])
    return None


def _process_seconds(item: Mapping[str, Any]) -> float | None:
    """How long a process ran, when Brevo dates it (`created_at`, `completed_at`)."""
    try:
        created = _parse_time(str(item["created_at"]))
        completed = _parse_time(str(item["completed_at"]))
    except (KeyError, ValueError):
        return None
    return max(0.0, (completed - created).total_seconds())


def _parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_Found = dict[str, tuple[str, dt.datetime, bool]]


@dataclasses.dataclass(eq=False)
class _ReadBackTicket:
    """One import call's place in the read-back pool."""

    since: dt.datetime | None = None
    emails: set[str] = dataclasses.field(default_factory=set)
    answer: asyncio.Future[_Found] | None = None
    waiting: bool = False
    left: bool = False


class _ReadBackPool:
    """Joins the read-backs of concurrent imports into one pass over `/contacts`.

    Every import call `join`s on entry; `request` parks its emails until every call that
    joined has either requested or `leave`n, then the last one in runs one pass from the
    oldest submission for the union of the emails and hands each caller its own share.
    A lone import reads back alone, at once; one whose imports all failed reads nothing.
    """

    def __init__(self, read: Callable[[dt.datetime, set[str]], Awaitable[_Found]]) -> None:
        self._read = read
        self._active: list[_ReadBackTicket] = []
        self._passes: set[asyncio.Task[None]] = set()  # strong references while they run

    def join(self) -> _ReadBackTicket:
        ticket = _ReadBackTicket()
        self._active.append(ticket)
        return ticket

    def leave(self, ticket: _ReadBackTicket) -> None:
        """Drop `ticket` (done or failed); a pass it was holding up may start."""
        if ticket.left:
            return
        ticket.left = True
        if ticket in self._active:
            self._active.remove(ticket)
        self._maybe_run()

    async def request(
        self, ticket: _ReadBackTicket, since: dt.datetime, emails: set[str]
    ) -> _Found:
        """The `emails` found modified since `since - overlap`, read in a shared pass."""
        if not emails:
            self.leave(ticket)
            return {}
        ticket.since, ticket.emails, ticket.waiting = since, emails, True
        ticket.answer = asyncio.get_running_loop().create_future()
        answer = ticket.answer
        self._maybe_run()
        return await answer

    def _maybe_run(self) -> None:
        if not self._active or not all(t.waiting for t in self._active):
            return
        group, self._active = self._active, []
        for ticket in group:
            ticket.left = True
        task = asyncio.get_running_loop().create_task(self._pass(group))
        self._passes.add(task)
        task.add_done_callback(self._passes.discard)

    async def _pass(self, group: list[_ReadBackTicket]) -> None:
        since = min(t.since for t in group if t.since is not None)
        try:
            found = await self._read(since, set().union(*(t.emails for t in group)))
        except BaseException as exc:
            for ticket in group:
                if ticket.answer is not None and not ticket.answer.done():
                    ticket.answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for ticket in group:
            if ticket.answer is not None and not ticket.answer.done():
                ticket.answer.set_result({e: found[e] for e in ticket.emails if e in found})


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


def _encode_cursor(high: dt.datetime | None, seen: Mapping[str, str], overlap: dt.timedelta) -> str:
    """since + the (id, modifiedAt) pairs inside the overlap window, grouped by stamp."""
    if high is None:
        return "v1:"
    floor = high - overlap
    by_stamp: dict[str, list[str]] = collections.defaultdict(list)
    for cid, stamp in seen.items():
        if _parse_time(stamp) >= floor:
            by_stamp[stamp].append(cid)
    payload = {"since": _iso(high), "seen": {s: sorted(ids) for s, ids in by_stamp.items()}}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return "v1:" + base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str | None) -> tuple[dt.datetime | None, dict[str, str]]:
    if not cursor or cursor == "v1:":
        return None, {}
    if not cursor.startswith("v1:"):
        raise ValueError(f"not a brevo cursor: {cursor[:20]!r}")
    payload = json.loads(base64.urlsafe_b64decode(cursor[3:].encode()))
    seen = {cid: stamp for stamp, ids in payload.get("seen", {}).items() for cid in ids}
    return _parse_time(payload["since"]), seen


def _chunks_by_size(ops: Sequence[_Op], limit: int) -> list[list[_Op]]:
    """`ops` cut into import bodies of at most `limit` bytes of JSON."""
    chunks: list[list[_Op]] = []
    current: list[_Op] = []
    size = 0
    for op in ops:
        item = len(json.dumps({"email": op.email, "attributes": op.attributes})) + 1
        if current and size + item > limit:
            chunks.append(current)
            current, size = [], 0
        current.append(op)
        size += item
    if current:
        chunks.append(current)
    return chunks
