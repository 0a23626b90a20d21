"""The HubSpot connector: contacts, tags, consent and lists through HubSpot's CRM APIs.

- Auth: a private-app token or service key (`Authorization: Bearer ...`); `base_url`
  overrides `https://api.hubapi.com` (e.g. a `segsync emulate hubspot` server).
- Paths carry the configured `api_version` (`2026-03` by default; `v3` for the older paths).
- Reads: CRM search on `lastmodifieddate`, 200 a page, in time windows that are split in two
  while a window holds more than the 10,000 results search can page through, so no change is
  dropped (a window whose offsets shifted under edits made during the read is read again);
  incremental reads start `read_overlap_seconds` before the cursor (search is eventually
  consistent), and the cursor remembers the records read near it, so each change is read
  once.
- Writes: batch upsert by email, 100 inputs a call, with per-record results from 207 answers;
  a whole-batch 400 is bisected so that one bad record does not fail the others.
- Tags: a multi-checkbox property (`tags_property`, options created before values are written;
  option values are the case-folded tag, labels the tag as first written) or one MANUAL list
  per tag (`tags_as: lists`). Canonical enum fields become enumeration properties.
- Consent: read from `hs_email_optout*` / `hs_email_bad_address` and the subscription
  statuses; opt-outs are written through the communication-preferences API with the legal
  basis when known; a `subscribed` write for an opted-out or bounced address is refused
  locally and never sent.
- Pacing: 100 (or 190, by tier) requests per rolling 10 s, 5 searches a second, the daily cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr

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
from segsync.model import Consent, ConsentStatus, FieldSpec, FieldType
from segsync_hubspot.compiler import HubSpotCompiler
from segsync_hubspot.errors import error_code_and_message, retry_after_seconds
from segsync_hubspot.fields import (
    ENGAGEMENT_TARGETS,
    PropertyTarget,
    decode_value,
    encode_value,
    target_for,
)
from segsync_hubspot.limits import (
    BATCH_INPUTS,
    BURST_BY_TIER,
    BURST_SECONDS,
    CONSENT_BATCH_INPUTS,
    DAILY_BY_TIER,
    MEMBERSHIP_PAGE,
    SEARCH_CAP,
    SEARCH_PAGE,
    SEARCH_PER_SECOND,
)

__all__ = ["HubSpotConfig", "HubSpotConnector", "api_paths"]

log = logging.getLogger("segsync.hubspot")

LEGAL_BASES = frozenset(
    {
        "LEGITIMATE_INTEREST_PQL",
        "LEGITIMATE_INTEREST_CLIENT",
        "PERFORMANCE_OF_CONTRACT",
        "CONSENT_WITH_NOTICE",
        "NON_GDPR",
        "PROCESS_AND_STORE",
        "LEGITIMATE_INTEREST_OTHER",
    }
)
"""HubSpot's `legalBasis` values; a canonical basis outside this set is not sent."""

BATCH = BATCH_INPUTS

_STATUS_STATE: dict[ConsentStatus, str] = {
    ConsentStatus.SUBSCRIBED: "SUBSCRIBED",
    ConsentStatus.UNSUBSCRIBED: "UNSUBSCRIBED",
    ConsentStatus.BOUNCED: "UNSUBSCRIBED",
}
"""The v4 `statusState` written for a canonical consent; others write no status."""


class HubSpotConfig(ConnectorConfig):
    """The `platforms.hubspot` block of segsync.yaml."""

    token: SecretStr = Field(description="private-app token or service key")
    api_version: str = Field(default="2026-03", description="dated version (2026-03) or v3")
    tier: Literal["free", "starter", "professional", "enterprise"] = "starter"
    tags_as: Literal["property", "lists"] = "property"
    tags_property: str = "segsync_tags"
    property_group: str = "segsync"
    subscription_id: int | None = Field(
        default=None, description="subscription type for consent (default: the default one)"
    )
    legal_basis: str | None = Field(
        default=None, description="legalBasis sent when a change carries none (GDPR portals)"
    )
    read_overlap_seconds: float = Field(default=60.0, ge=0)
    consent_batch_reads: bool = Field(
        default=True,
        description=(
            "read subscription statuses in batches (Marketing Hub Enterprise); without them "
            "consent is read from the hs_email_optout* properties (opt-outs only)"
        ),
    )
    consent_batch_writes: bool = Field(
        default=True,
        description=(
            "write subscription statuses in batches (Marketing Hub Enterprise); without them, "
            "or when HubSpot refuses the batch endpoint, one call per address"
        ),
    )
    list_prefix: str = "segsync: "


def api_paths(version: str) -> dict[str, str]:
    """The path prefixes of each API family for `version` (`v3` or a dated one)."""
    if version == "v3":
        return {
            "contacts": "/crm/v3/objects/contacts",
            "lists": "/crm/v3/lists",
            "properties": "/crm/v3/properties/contacts",
            "consent": "/communication-preferences/v4",
        }
    return {
        "contacts": f"/crm/objects/{version}/contacts",
        "lists": f"/crm/lists/{version}",
        "properties": f"/crm/properties/{version}/contacts",
        "consent": f"/communication-preferences/{version}",
    }


def _ms(when: dt.datetime) -> int:
    return round(when.timestamp() * 1000)


def _parse_time(raw: str | None) -> dt.datetime | None:
    if not raw:
        return None
    try:
        if raw.isdigit():
            return dt.datetime.fromtimestamp(int(raw) / 1000, tz=dt.UTC)
        return dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None


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


def _encode_cursor(mark: int, recent: Mapping[str, int]) -> str:
    """`<ms>` or `<ms>;<id>:<ms>,...`: the high-water mark and the records read near it."""
    if not recent:
        return str(mark)
    return f"{mark};" + ",".join(f"{k}:{v}" for k, v in sorted(recent.items()))


def _decode_cursor(cursor: str | None) -> tuple[int, dict[str, int]]:
    if not cursor:
        return 0, {}
    head, _, tail = cursor.partition(";")
    recent = {}
    for item in filter(None, tail.split(",")):
        key, _, value = item.partition(":")
        recent[key] = int(value)
    return int(head), recent


class HubSpotConnector(Connector):
    """segsync's HubSpot connector; see the module docstring."""

    name: ClassVar[str] = "hubspot"
    title: ClassVar[str] = "HubSpot"
    config_model: ClassVar[type[ConnectorConfig]] = HubSpotConfig
    compiler_path: ClassVar[str | None] = "segsync_hubspot.compiler:HubSpotCompiler"
    emulator_path: ClassVar[str | None] = "segsync_hubspot.emulator:HubSpotEmulator"
    default_base_url: ClassVar[str] = "https://api.hubapi.com"
    capabilities: ClassVar[Capabilities] = Capabilities(
        write_batch_size=BATCH,
        read_page_size=SEARCH_PAGE,
        membership_batch_size=BATCH,
        max_concurrency=10,
        rate_windows=(
            RateWindow(BURST_BY_TIER["starter"], BURST_SECONDS),
            RateWindow(SEARCH_PER_SECOND, 1.0, scope="search"),
            RateWindow(DAILY_BY_TIER["starter"], 86_400.0),
        ),
        tags=TagRepresentation.MULTI_CHECKBOX,
        groups=GroupRepresentation.ENUM_PROPERTY,
        native_segments=SegmentRepresentation.DYNAMIC_LIST,
        static_segments="list",
        notes=(
            "search: 200 a page, 10,000 results a query (reads are windowed on lastmodifieddate)",
            "batch upsert by email: 100 inputs a call",
            "100 requests / 10 s (190 on Professional and Enterprise), 5 searches a second",
        ),
    )

    #: results one search query pages through (HubSpot: 10,000; a 400 beyond)
    search_cap: ClassVar[int] = SEARCH_CAP

    def __init__(self, config: Any, **kwargs: Any) -> None:
        if kwargs.get("budget") is None:
            cfg = (
                config
                if isinstance(config, HubSpotConfig)
                else HubSpotConfig.model_validate(config)
            )
            windows = (
                RateWindow(BURST_BY_TIER[cfg.tier], BURST_SECONDS),
                RateWindow(SEARCH_PER_SECOND, 1.0, scope="search"),
                RateWindow(DAILY_BY_TIER[cfg.tier], 86_400.0),
            )
            kwargs["budget"] = RateBudget(
                max_concurrency=self.capabilities.max_concurrency,
                windows=windows,
                clock=kwargs.get("clock"),
            )
            config = cfg
        super().__init__(config, **kwargs)
        self.cfg: HubSpotConfig = self.config  # type: ignore[assignment]
        self.paths = api_paths(self.cfg.api_version)
        self.client: ApiClient = build_client(
            platform=self.name,
            base_url=self.cfg.base_url or self.default_base_url,
            headers={"Authorization": f"Bearer {self.cfg.token.get_secret_value()}"},
            secrets=self.cfg.secrets(),
            budget=self.budget,
            transport=self.transport,
            clock=self.clock,
            error_parser=error_code_and_message,
            retry_after=retry_after_seconds,
        )
        self._properties: dict[str, dict[str, Any]] | None = None
        self._tag_labels: dict[str, str] = {}
        self._tag_lists: dict[str, str] = {}
        self._subscription: int | None = self.cfg.subscription_id
        self._batch_consent = self.cfg.consent_batch_reads
        self._batch_consent_writes = self.cfg.consent_batch_writes
        self._batch_consent_writes_seen = False  # a batch status write has succeeded
        self._group_ready = False

    @property
    def stats(self) -> RequestStats:
        return self.client.stats

    async def aclose(self) -> None:
        await self.client.aclose()

    # -- small helpers ------------------------------------------------------------------------

    async def _json(self, method: str, path: str, label: str, **kwargs: Any) -> Any:
        response = await self.client.request(method, path, endpoint=label, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _target(self, name: str, spec: FieldSpec | None) -> PropertyTarget:
        """The property of canonical `name`: the mapping's path when a mapping names one."""
        platform_path = getattr(self.mapping, "platform_path", None)
        path = platform_path(name) if callable(platform_path) else None
        return target_for(name, spec, path if isinstance(path, str) else None)

    def _targets(self) -> dict[str, tuple[PropertyTarget, FieldSpec | None]]:
        """Every canonical field this connector reads/writes, with its property."""
        out: dict[str, tuple[PropertyTarget, FieldSpec | None]] = {}
        for name, spec in self.schema.fields.items():
            out[name] = (self._target(name, spec), spec)
        if not out:
            for name in ("first_name", "last_name", "phone", "company", "city", "country"):
                out[name] = (self._target(name, None), None)
        return out

    def _read_properties(self) -> list[str]:
        names = {
            "email",
            "lastmodifieddate",
            "hs_object_id",
            "hs_email_optout",
            "hs_email_bad_address",
        }
        names |= {t.name for t, _ in self._targets().values()}
        names |= {t.name for t in ENGAGEMENT_TARGETS.values()}
        if self.cfg.tags_as == "property":
            names.add(self.cfg.tags_property)
        if self._subscription is not None:
            names.add(f"hs_email_optout_{self._subscription}")
        return sorted(names)

    async def _subscription_id(self) -> int:
        if self._subscription is None:
            body = await self._json(
                "GET", f"{self.paths['consent']}/definitions", "GET consent definitions"
            )
            results = body.get("results") or body.get("subscriptionDefinitions") or []
            marketing = (
                [d for d in results if d.get("isDefault")]
                or [d for d in results if d.get("purpose") == "Marketing"]
                or results
            )
            if not marketing:
                raise ApiError(
                    platform=self.name,
                    endpoint="GET consent definitions",
                    status=200,
                    message="the account has no email subscription types",
                )
            self._subscription = int(marketing[0]["id"])
        return self._subscription

    # -- check / prepare ------------------------------------------------------------------------

    async def check(self) -> None:
        """One cheap authenticated read: a contact page of one."""
        await self._json("GET", self.paths["contacts"], "GET contacts", params={"limit": 1})

    async def _load_properties(self) -> dict[str, dict[str, Any]]:
        if self._properties is None:
            body = await self._json("GET", self.paths["properties"], "GET properties")
            self._properties = {p["name"]: p for p in body.get("results") or []}
            tag_prop = self._properties.get(self.cfg.tags_property)
            if tag_prop:
                for option in tag_prop.get("options") or []:
                    self._tag_labels.setdefault(
                        option["value"], option.get("label") or option["value"]
                    )
        return self._properties

    async def prepare(self, fields: Mapping[str, FieldSpec], tags: Sequence[str]) -> None:
        """Create missing properties (with matching types) and the tag options or lists."""
        known = await self._load_properties()

        for name, spec in fields.items():
            if spec.read_only:
                continue
            target = self._target(name, spec)
            existing = known.get(target.name)
            if existing is None:
                if target.builtin:
                    continue
                await self._ensure_group()
                body: dict[str, Any] = {
                    "name": target.name,
                    "label": name,
                    "type": target.type,
                    "fieldType": target.field_type,
                    "groupName": self.cfg.property_group,
                    "description": f"segsync canonical field {name}",
                }
                if target.type == "enumeration":
                    body["options"] = [
                        {"label": o, "value": o, "displayOrder": i, "hidden": False}
                        for i, o in enumerate(spec.options)
                    ]
                known[target.name] = await self._create_property(body)
                continue
            if existing.get("type") != target.type and not target.builtin:
                raise ApiError(
                    platform=self.name,
                    endpoint="prepare",
                    status=409,
                    code="TYPE_MISMATCH",
                    message=(
                        f"property {target.name} exists with type {existing.get('type')}, "
                        f"but field {name} needs {target.type}"
                    ),
                )
            if target.type == "enumeration" and spec.options and not target.builtin:
                await self._ensure_options(target.name, {o: o for o in spec.options})
        if self.cfg.tags_as == "property":
            await self._ensure_tag_property({tag.casefold(): tag for tag in tags})
        else:
            for tag in tags:
                await self._tag_list(tag)

    async def _ensure_group(self) -> None:
        """segsync's property group, created once per connector (a 409 means it exists)."""
        if self._group_ready:
            return
        await self.client.request(
            "POST",
            f"{self.paths['properties']}/groups",
            endpoint="POST property group",
            json={"name": self.cfg.property_group, "label": "segsync", "displayOrder": -1},
            ok=(409,),  # it exists (ours, or an answer lost before a retry)
            idempotent=True,
        )
        self._group_ready = True

    async def _ensure_tag_property(self, wanted: Mapping[str, str]) -> None:
        """The tag checkbox property with options `wanted` (value -> label): created when
        missing (in segsync's group), else completed with the options it lacks."""
        known = await self._load_properties()
        if self.cfg.tags_property in known:
            await self._ensure_options(self.cfg.tags_property, wanted)
            return
        await self._ensure_group()
        options = [
            {"label": label, "value": value, "displayOrder": i, "hidden": False}
            for i, (value, label) in enumerate(sorted(wanted.items()))
        ]
        known[self.cfg.tags_property] = await self._create_property(
            {
                "name": self.cfg.tags_property,
                "label": "segsync tags",
                "type": "enumeration",
                "fieldType": "checkbox",
                "groupName": self.cfg.property_group,
                "options": options,
                "description": "tags kept in sync by segsync",
            }
        )
        for value, label in wanted.items():
            self._tag_labels.setdefault(value, label)

    async def _create_property(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create a property; a 409 (it exists: e.g. our own, whose answer was lost) reads it."""
        response = await self.client.request(
            "POST",
            self.paths["properties"],
            endpoint="POST property",
            json=dict(body),
            idempotent=True,
            ok=(409,),
        )
        if response.status_code == 409:
            existing: dict[str, Any] = await self._json(
                "GET", f"{self.paths['properties']}/{body['name']}", "GET property"
            )
            return existing
        created: dict[str, Any] = response.json()
        return created

    async def _ensure_options(self, prop: str, wanted: Mapping[str, str]) -> None:
        """Add the options `wanted` (value -> label) that `prop` lacks, in one PATCH."""
        known = await self._load_properties()
        record = known.get(prop)
        if record is None:
            return
        options = list(record.get("options") or [])
        have = {o["value"] for o in options}
        missing = [(v, label) for v, label in sorted(wanted.items()) if v not in have]
        if not missing:
            return
        options += [
            {"label": label, "value": value, "displayOrder": len(options) + i, "hidden": False}
            for i, (value, label) in enumerate(missing)
        ]
        known[prop] = await self._json(
            "PATCH",
            f"{self.paths['properties']}/{prop}",
            "PATCH property",
            json={"options": options},
            idempotent=True,  # the full option list
        )
        if prop == self.cfg.tags_property:
            for value, label in missing:
                self._tag_labels.setdefault(value, label)

    # -- reads ----------------------------------------------------------------------------------

    def _search_body(
        self, low: int, high: int | None, after: int, limit: int | None = None
    ) -> dict[str, Any]:
        filters = [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(low)}]
        if high is not None:
            filters.append(
                {"propertyName": "lastmodifieddate", "operator": "LT", "value": str(high)}
            )
        return {
            "filterGroups": [{"filters": filters}],
            "sorts": [],
            "properties": self._read_properties(),
            "limit": limit or self.capabilities.read_page_size,
            "after": str(after),
        }

    async def _search(
        self, low: int, high: int | None, after: int, *, limit: int | None = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._json(
            "POST",
            f"{self.paths['contacts']}/search",
            "POST contacts/search",
            json=self._search_body(low, high, after, limit),
            scope="search",
            idempotent=True,
        )
        return result

    async def read(self, cursor: str | None = None) -> AsyncIterator[ReadPage]:
        """Contacts modified since `cursor` (all when None), window by window; see the module."""
        if self._subscription is None:
            await self._subscription_id()
        if self.cfg.tags_as == "lists":
            await self._load_tag_lists()
        mark, already = _decode_cursor(cursor)
        overlap = int(self.cfg.read_overlap_seconds * 1000)
        low = max(0, mark - overlap) if cursor else 0
        started = _ms(self.clock.now())
        windows: list[tuple[int, int | None, bool]] = [(low, None, False)]
        seen: set[str] = set()
        stamps: dict[str, int] = {}
        tag_members = await self._tag_memberships() if self.cfg.tags_as == "lists" else {}
        while windows:
            lo, hi, rescan = windows.pop(0)
            page = await self._search(lo, hi, 0)
            total = int(page.get("total") or 0)
            if total > self.search_cap:
                top = hi if hi is not None else max(started, lo) + 1
                earliest = min(
                    (
                        _ms(t)
                        for r in page.get("results") or []
                        if (t := _parse_time((r.get("properties") or {}).get("lastmodifieddate")))
                    ),
                    default=lo,
                )
                if lo < earliest < top and not int(
                    (await self._search(lo, earliest, 0, limit=1)).get("total") or 0
                ):
                    lo = earliest  # nothing changed before the page's oldest: start there
                if top - lo > 1:
                    middle = lo + (top - lo) // 2
                    windows[0:0] = [(lo, middle, False), (middle, hi, False)]
                    continue
                log.warning(
                    "hubspot: over %d contacts changed in one millisecond (%d); "
                    "the rest is read on a later run",
                    self.search_cap,
                    lo,
                )
            in_window: set[str] = set()
            after = 0
            while True:
                results = []
                for record in page.get("results") or []:
                    stamp = _parse_time((record.get("properties") or {}).get("lastmodifieddate"))
                    ms = _ms(stamp) if stamp is not None else 0
                    in_window.add(str(record["id"]))
                    if record["id"] in seen or already.get(str(record["id"])) == ms:
                        continue  # read in this run, or in the overlap of the last one
                    seen.add(record["id"])
                    stamps[str(record["id"])] = ms
                    mark = max(mark, ms)
                    results.append(record)
                contacts = await self._to_remote(results, tag_members)
                nxt = (page.get("paging") or {}).get("next", {}).get("after")
                if nxt is not None and int(nxt) <= after:  # a cursor that repeats: pages never end
                    raise MalformedAnswer(
                        platform=self.name,
                        endpoint="POST contacts/search",
                        status=200,
                        code="paging",
                        message=f"the next-page cursor {nxt!r} does not advance past {after}",
                    )
                last = nxt is None or int(nxt) + self.capabilities.read_page_size > self.search_cap
                if nxt is None and hi is None and len(in_window) < total <= self.search_cap:
                    raise MalformedAnswer(  # pages that end before their own total
                        platform=self.name,
                        endpoint="POST contacts/search",
                        status=200,
                        code="paging",
                        message=f"the pages ended after {len(in_window)} of total {total}",
                    )
                if last and hi is not None and not rescan and len(in_window) < total:
                    # records changed during the read left the window and shifted the offsets
                    # of others past us: read the window once more (seen ones are skipped)
                    windows.insert(0, (lo, hi, True))
                    yield ReadPage(contacts, None)
                    break
                # a finished window is a safe resume point: later windows start after it; the
                # mark never passes the read's start, so changes made during it are re-read
                resume = None
                if last:
                    point = min(mark, started)
                    recent = {
                        k: v for k, v in {**already, **stamps}.items() if v >= point - overlap
                    }
                    resume = _encode_cursor(point, recent)
                yield ReadPage(contacts, resume)
                if last:
                    break
                after = int(nxt)
                page = await self._search(lo, hi, after)

    async def _to_remote(
        self, results: Sequence[Mapping[str, Any]], tag_members: Mapping[str, set[str]]
    ) -> list[RemoteContact]:
        statuses = await self._statuses(
            [r["properties"]["email"] for r in results if (r.get("properties") or {}).get("email")]
        )
        out = []
        for record in results:
            props = record.get("properties") or {}
            email = props.get("email")
            if not email:
                continue
            fields = {}
            for name, (target, spec) in self._targets().items():
                if name == "email":
                    continue
                fields[name] = decode_value(target, spec, props.get(target.name))
            engagement = {
                name: decode_value(t, None, props.get(t.name))
                for name, t in ENGAGEMENT_TARGETS.items()
                if props.get(t.name) not in (None, "")
            }
            if self.cfg.tags_as == "property":
                raw = props.get(self.cfg.tags_property) or ""
                tags = frozenset(self._tag_labels.get(v, v) for v in raw.split(";") if v)
            else:
                tags = frozenset(tag_members.get(record["id"], set()))
            out.append(
                RemoteContact(
                    platform_id=str(record["id"]),
                    email=email,
                    fields=fields,
                    tags=tags,
                    consent=self._consent(props, statuses.get(email.lower())),
                    engagement=engagement,
                    updated_at=_parse_time(props.get("lastmodifieddate")),
                )
            )
        return out

    def _consent(self, props: Mapping[str, Any], status: Mapping[str, Any] | None) -> Consent:
        sub = self._subscription
        when = _parse_time(status.get("timestamp")) if status else None
        basis = status.get("legalBasis") if status else None
        if props.get("hs_email_bad_address") == "true":
            return Consent(status=ConsentStatus.BOUNCED, source=self.name)
        if (
            props.get("hs_email_optout") == "true"
            or (sub is not None and props.get(f"hs_email_optout_{sub}") == "true")
            or (status and status.get("status") == "UNSUBSCRIBED")
        ):
            return Consent(
                status=ConsentStatus.UNSUBSCRIBED,
                updated_at=when,
                source=self.name,
                legal_basis=basis,
            )
        if status and status.get("status") == "SUBSCRIBED":
            return Consent(
                status=ConsentStatus.SUBSCRIBED,
                updated_at=when,
                source=self.name,
                legal_basis=basis,
            )
        return Consent(status=ConsentStatus.NON_SUBSCRIBED, source=self.name)

    async def _statuses(self, emails: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The configured subscription's status per address (batch read, 100 a call).

        Where the account has no batch status API (403: it needs Marketing Hub Enterprise),
        it returns nothing from then on and consent comes from the opt-out properties alone.
        """
        if not emails or not self._batch_consent:
            return {}
        sub = await self._subscription_id()
        out: dict[str, dict[str, Any]] = {}

        async def one(chunk: Sequence[str]) -> None:
            response = await self.client.request(
                "POST",
                f"{self.paths['consent']}/statuses/batch/read",
                endpoint="POST consent statuses/batch/read",
                params={"channel": "EMAIL"},
                json={"inputs": list(chunk)},
                idempotent=True,
            )
            for result in response.json().get("results") or []:
                for status in result.get("statuses") or []:
                    if int(status.get("subscriptionId", -1)) == sub:
                        out[str(result["subscriberIdString"]).lower()] = status

        try:
            await asyncio.gather(
                *(one(emails[i : i + BATCH]) for i in range(0, len(emails), BATCH))
            )
        except ApiError as exc:
            if exc.status != 403:
                raise
            log.warning(
                "hubspot: no batch subscription statuses (%s); reading opt-outs only", exc.message
            )
            self._batch_consent = False
            return {}
        return out

    # -- writes ----------------------------------------------------------------------------------

    def _properties_for(self, change: ContactChange) -> tuple[dict[str, str], str | None]:
        """The property values of a change (fields only), or why a value cannot be written."""
        targets = self._targets()
        props: dict[str, str] = {}
        problems = []
        for name, value in change.fields.items():
            spec = self.schema.fields.get(name)
            target, spec = targets.get(name, (self._target(name, spec), spec))
            if target.read_only:
                continue
            if spec is not None:
                try:
                    value = spec.coerce(value)
                except ValueError as exc:
                    problems.append(f"{name}: {exc}")
                    continue
            text = encode_value(target, spec, value)
            if target.type == "enumeration" and ";" in text and not target.multi:
                problems.append(f"{name}: {text!r} contains ';', which HubSpot options cannot")
            props[target.name] = text
        if change.new_email:
            props["email"] = change.new_email
        return props, ("; ".join(problems) or None)

    async def write(self, changes: Sequence[ContactChange]) -> list[ChangeResult]:
        """Upsert by email, 100 a call; tags and consent as described in the module docstring."""
        results: list[ChangeResult | None] = [None] * len(changes)
        pending: list[int] = []
        for i, change in enumerate(changes):
            if change.is_empty:
                results[i] = ChangeResult(
                    email=change.email, ok=True, platform_id=change.platform_id
                )
            else:
                pending.append(i)
        if not pending:
            return [r for r in results if r is not None]
        tags_mode = self.cfg.tags_as
        invalid: dict[int, str] = {}
        for i in pending:
            bad = sorted(t for t in changes[i].tags_add | changes[i].tags_remove if ";" in t)
            if bad and tags_mode == "property":
                invalid[i] = f"tags {bad} contain ';', which HubSpot options cannot hold"
        pending = [i for i in pending if i not in invalid]
        if tags_mode == "property":
            wanted = {t.casefold(): t for i in pending for t in changes[i].tags_add}
            if wanted:
                await self._ensure_tag_property(wanted)
        await self._ensure_enum_options([changes[i] for i in pending])
        current_tags: dict[str, set[str]] = {}
        needs_tags = [
            changes[i].email
            for i in pending
            if changes[i].tags_remove and not changes[i].create and tags_mode == "property"
        ]
        if needs_tags:
            current_tags = await self._current_tags(needs_tags)
        # consent guard: never subscribe an address HubSpot holds as opted out or bounced
        refused: dict[int, str] = {}
        subscribing = [i for i in pending if changes[i].consent is ConsentStatus.SUBSCRIBED]
        if subscribing:
            held = await self._held_opt_outs([changes[i].email for i in subscribing])
            for i in subscribing:
                why = held.get(changes[i].email.strip().lower())
                if why:
                    refused[i] = why
        inputs: list[tuple[int, dict[str, Any]]] = []
        for i in pending:
            change = changes[i]
            props, problem = self._properties_for(change)
            if problem:
                invalid[i] = problem
                continue
            if tags_mode == "property" and (change.tags_add or change.tags_remove):
                adds = sorted({t.casefold() for t in change.tags_add})
                if change.tags_remove and not change.create:
                    have = current_tags.get(change.email.strip().lower(), set())
                    keep = (have - {t.casefold() for t in change.tags_remove}) | set(adds)
                    props[self.cfg.tags_property] = ";".join(sorted(keep))
                elif adds:
                    props[self.cfg.tags_property] = (
                        ";".join(adds) if change.create else ";" + ";".join(adds)
                    )
            if props or change.create:
                inputs.append(
                    (
                        i,
                        {
                            "idProperty": "email",
                            "id": change.email.strip(),
                            "properties": props,
                            "objectWriteTraceId": str(i),
                        },
                    )
                )
        verdicts = await self._upsert(inputs)
        for i, problem in invalid.items():
            verdicts[i] = (False, None, False, problem, "INVALID_VALUE")
        pending = sorted([*pending, *(i for i in invalid if i not in pending)])
        for i in pending:
            change = changes[i]
            ok, platform_id, created, error, code = verdicts.get(
                i, (True, change.platform_id, False, None, None)
            )
            results[i] = ChangeResult(
                email=change.email,
                ok=ok,
                platform_id=platform_id,
                created=created,
                error=error,
                code=code,
            )
        confirmed = [i for i in pending if (r := results[i]) is not None and r.ok]
        if tags_mode == "lists":
            await self._resolve_ids(changes, results, confirmed)
            await self._write_tag_lists(changes, results, confirmed)
        await self._write_consent(changes, results, [i for i in confirmed if i not in refused])
        for i, why in refused.items():
            prior = results[i]
            assert prior is not None
            results[i] = prior.model_copy(
                update={
                    "ok": False,
                    "partial": prior.ok
                    and bool(changes[i].fields or changes[i].tags_add or changes[i].tags_remove),
                    "error": f"not re-subscribed: HubSpot holds {changes[i].email} as {why}",
                    "code": "CONSENT_OPT_OUT",
                }
            )
        return [r for r in results if r is not None]

    async def _ensure_enum_options(self, changes: Sequence[ContactChange]) -> None:
        """Create options of open enumeration properties before values are written."""
        wanted: dict[str, dict[str, str]] = {}
        for change in changes:
            for name, value in change.fields.items():
                spec = self.schema.fields.get(name)
                if spec is None or spec.type not in (FieldType.ENUM, FieldType.MULTI_ENUM):
                    continue
                target = self._target(name, spec)
                if target.builtin or target.type != "enumeration" or value is None:
                    continue
                values = value if isinstance(value, frozenset | set | list | tuple) else [value]
                for v in values:
                    wanted.setdefault(target.name, {})[str(v)] = str(v)
        for prop, options in wanted.items():
            await self._load_properties()
            await self._ensure_options(prop, options)

    async def _batch_read_by_email(
        self, emails: Sequence[str], properties: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """Records by lowercased email (100 a call), for those that exist."""
        out: dict[str, dict[str, Any]] = {}
        unique = sorted({e.strip().lower() for e in emails})

        async def one(chunk: Sequence[str]) -> None:
            response = await self.client.request(
                "POST",
                f"{self.paths['contacts']}/batch/read",
                endpoint="POST contacts/batch/read",
                json={
                    "idProperty": "email",
                    "inputs": [{"id": e} for e in chunk],
                    "properties": list(properties),
                    "propertiesWithHistory": [],
                },
                idempotent=True,
                ok=(207,),
            )
            for record in response.json().get("results") or []:
                email = (record.get("properties") or {}).get("email")
                if email:
                    out[email.lower()] = record

        await asyncio.gather(*(one(unique[i : i + BATCH]) for i in range(0, len(unique), BATCH)))
        return out

    async def _current_tags(self, emails: Sequence[str]) -> dict[str, set[str]]:
        records = await self._batch_read_by_email(emails, ["email", self.cfg.tags_property])
        return {
            email: {v for v in (r["properties"].get(self.cfg.tags_property) or "").split(";") if v}
            for email, r in records.items()
        }

    async def _held_opt_outs(self, emails: Sequence[str]) -> dict[str, str]:
        """Addresses HubSpot holds as opted out or bounced -> which of the two."""
        sub = await self._subscription_id()
        records = await self._batch_read_by_email(
            emails, ["email", "hs_email_optout", "hs_email_bad_address", f"hs_email_optout_{sub}"]
        )
        statuses = await self._statuses(sorted({e.strip().lower() for e in emails}))
        held: dict[str, str] = {}
        for email in {e.strip().lower() for e in emails}:
            props = (records.get(email) or {}).get("properties") or {}
            consent = self._consent(props, statuses.get(email))
            if consent.is_opt_out:
                held[email] = consent.status.value
        return held

    async def _upsert(
        self, inputs: Sequence[tuple[int, dict[str, Any]]]
    ) -> dict[int, tuple[bool, str | None, bool, str | None, str | None]]:
        """Batch upserts at 100 inputs, concurrently; a verdict per change index."""
        verdicts: dict[int, tuple[bool, str | None, bool, str | None, str | None]] = {}

        async def send(chunk: Sequence[tuple[int, dict[str, Any]]]) -> None:
            try:
                response = await self.client.request(
                    "POST",
                    f"{self.paths['contacts']}/batch/upsert",
                    endpoint="POST contacts/batch/upsert",
                    json={"inputs": [body for _, body in chunk]},
                    ok=(207,),
                    # by email, values set or `;`-appended: sending it twice changes nothing
                    idempotent=True,
                )
            except ApiError as exc:
                if exc.status != 400 or len(chunk) == 1:
                    for i, _ in chunk:
                        verdicts[i] = (False, None, False, exc.message, exc.code)
                    return
                half = len(chunk) // 2  # isolate the refused record(s)
                await send(chunk[:half])
                await send(chunk[half:])
                return
            body = response.json()
            by_trace = {str(r.get("objectWriteTraceId")): r for r in body.get("results") or []}
            by_email = {
                str((r.get("properties") or {}).get("email", "")).lower(): r
                for r in body.get("results") or []
            }
            errors: dict[str, dict[str, Any]] = {}
            for error in body.get("errors") or []:
                context = error.get("context") or {}
                for key in context.get("objectWriteTraceId") or []:
                    errors[str(key)] = error
                for key in context.get("ids") or []:
                    errors.setdefault(f"email:{str(key).lower()}", error)
            for i, item in chunk:
                record = by_trace.get(str(i)) or by_email.get(item["id"].lower())
                error = errors.get(str(i)) or errors.get(f"email:{item['id'].lower()}")
                if record is not None:
                    verdicts[i] = (True, str(record["id"]), bool(record.get("new")), None, None)
                elif error is not None:
                    verdicts[i] = (
                        False,
                        None,
                        False,
                        str(error.get("message")),
                        str(error.get("category") or "") or None,
                    )
                else:
                    verdicts[i] = (False, None, False, "HubSpot did not confirm this record", None)

        # HubSpot refuses a batch naming one email twice: later changes go in later rounds
        rounds: list[list[tuple[int, dict[str, Any]]]] = []
        for item in inputs:
            email = item[1]["id"].lower()
            for batch in rounds:
                if all(other["id"].lower() != email for _, other in batch):
                    batch.append(item)
                    break
            else:
                rounds.append([item])
        for batch in rounds:
            await asyncio.gather(*(send(batch[i : i + BATCH]) for i in range(0, len(batch), BATCH)))
        return verdicts

    async def _write_consent(
        self,
        changes: Sequence[ContactChange],
        results: list[ChangeResult | None],
        indexes: Iterable[int],
    ) -> None:
        """Opt-outs and opt-ins through the subscription statuses, a result per change.

        Batch writes (`statuses/batch/write`, 100 inputs a call) where the account has them;
        where HubSpot refuses them (403: Marketing Hub Enterprise only) or the config turns
        them off, one `statuses/{email}` call per address. Callers leave out the addresses
        that must not be re-subscribed; this method sends what it is given.
        """
        todo = [i for i in indexes if changes[i].consent in _STATUS_STATE]
        if not todo:
            return
        sub = await self._subscription_id()
        inputs = {i: self._status_input(changes[i], sub) for i in todo}
        failures: dict[int, tuple[str, str | None]] = {}

        async def single(i: int) -> None:
            body = dict(inputs[i])
            email = body.pop("subscriberIdString")
            try:
                await self.client.request(
                    "POST",
                    f"{self.paths['consent']}/statuses/{email}",
                    endpoint="POST consent statuses/{email}",
                    json=body,
                    idempotent=True,
                )
            except ApiError as exc:
                failures[i] = (exc.message, exc.code)

        async def batch(chunk: Sequence[int]) -> None:
            if not self._batch_consent_writes:
                await asyncio.gather(*(single(i) for i in chunk))
                return
            try:
                response = await self.client.request(
                    "POST",
                    f"{self.paths['consent']}/statuses/batch/write",
                    endpoint="POST consent statuses/batch/write",
                    json={"inputs": [inputs[i] for i in chunk]},
                    ok=(207,),
                    # statuses are set, not toggled: sending them twice changes nothing
                    idempotent=True,
                )
            except ApiError as exc:
                if exc.status == 403:
                    if self._batch_consent_writes:
                        log.warning(
                            "hubspot: no batch subscription status writes (%s); "
                            "writing one address a call",
                            exc.message,
                        )
                    self._batch_consent_writes = False
                    await asyncio.gather(*(single(i) for i in chunk))
                elif exc.status == 400 and len(chunk) > 1:
                    half = len(chunk) // 2  # isolate the refused input(s)
                    await batch(chunk[:half])
                    await batch(chunk[half:])
                else:
                    for i in chunk:
                        failures[i] = (exc.message, exc.code)
                return
            self._batch_consent_writes_seen = True
            failures.update(self._status_verdicts(chunk, inputs, response.json()))

        # one batch never names an address twice: later changes go in later rounds
        rounds: list[list[int]] = []
        seen: dict[str, int] = {}  # address -> rounds that already name it
        for i in todo:
            email = inputs[i]["subscriberIdString"].lower()
            seen[email] = seen.get(email, 0) + 1
            if seen[email] > len(rounds):
                rounds.append([])
            rounds[seen[email] - 1].append(i)
        step = CONSENT_BATCH_INPUTS
        for group in rounds:
            chunks = [group[k : k + step] for k in range(0, len(group), step)]
            unknown = self._batch_consent_writes and not self._batch_consent_writes_seen
            if unknown and len(chunks) > 1:
                await batch(chunks[0])  # learn whether the account has batch writes first
                chunks = chunks[1:]
            await asyncio.gather(*(batch(chunk) for chunk in chunks))
        for i, (error, code) in failures.items():
            prior = results[i]
            assert prior is not None
            results[i] = prior.model_copy(
                update={"ok": False, "partial": True, "error": error, "code": code}
            )

    def _status_input(self, change: ContactChange, sub: int) -> dict[str, Any]:
        """The `PublicStatusRequest` of one change, with its legal basis when one is known."""
        body: dict[str, Any] = {
            "subscriberIdString": (change.new_email or change.email).strip(),
            "channel": "EMAIL",
            "subscriptionId": sub,
            "statusState": _STATUS_STATE.get(change.consent, "NOT_SPECIFIED")
            if change.consent
            else "NOT_SPECIFIED",
        }
        basis = change.consent_basis or self.cfg.legal_basis
        if basis and basis.upper() in LEGAL_BASES:
            body["legalBasis"] = basis.upper()
            body["legalBasisExplanation"] = f"recorded by segsync for {change.consent}"
        return body

    @staticmethod
    def _status_verdicts(
        chunk: Sequence[int], inputs: Mapping[int, Mapping[str, Any]], answer: Mapping[str, Any]
    ) -> dict[int, tuple[str, str | None]]:
        """The inputs of a batch status write that failed -> (error, code), from its answer.

        An input is confirmed by a result naming its address and subscription; an error whose
        context names the address fails it; an input neither confirms nor fails is reported
        as unconfirmed rather than assumed written.
        """
        done = {
            (str(r.get("subscriberIdString", "")).lower(), int(r.get("subscriptionId", -1)))
            for r in answer.get("results") or []
        }
        errors: dict[str, Mapping[str, Any]] = {}
        for error in answer.get("errors") or []:
            context = error.get("context") or {}
            for values in context.values() if isinstance(context, Mapping) else ():
                for value in values if isinstance(values, list) else ():
                    errors.setdefault(str(value).strip().lower(), error)
        out: dict[int, tuple[str, str | None]] = {}
        for i in chunk:
            email = str(inputs[i]["subscriberIdString"]).lower()
            if (email, int(inputs[i]["subscriptionId"])) in done:
                continue
            error = errors.get(email)
            if error is not None:
                out[i] = (
                    str(error.get("message") or "HubSpot refused this status"),
                    str(error.get("category") or "") or None,
                )
            else:
                out[i] = ("HubSpot did not confirm this subscription status", None)
        return out

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
                f"{self.paths['lists']}/object-type-id/0-1/name/{name}",
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

    async def _resolve_ids(
        self,
        changes: Sequence[ContactChange],
        results: list[ChangeResult | None],
        indexes: Sequence[int],
    ) -> None:
        """Fill in record ids that no upsert returned (tag-only changes), by email."""
        unknown = [
            i
            for i in indexes
            if (r := results[i]) is not None
            and r.platform_id is None
            and (changes[i].tags_add or changes[i].tags_remove)
        ]
        if not unknown:
            return
        records = await self._batch_read_by_email([changes[i].email for i in unknown], ["email"])
        for i in unknown:
            record = records.get(changes[i].email.strip().lower())
            prior = results[i]
            assert prior is not None
            if record is None:
                results[i] = prior.model_copy(
                    update={
                        "ok": False,
                        "error": "no HubSpot contact with this email",
                        "code": "OBJECT_NOT_FOUND",
                    }
                )
            else:
                results[i] = prior.model_copy(update={"platform_id": str(record["id"])})

    async def _write_tag_lists(
        self,
        changes: Sequence[ContactChange],
        results: list[ChangeResult | None],
        indexes: Sequence[int],
    ) -> None:
        plan: dict[str, tuple[list[str], list[str]]] = {}
        for i in indexes:
            result = results[i]
            if result is None or result.platform_id is None:
                continue
            for tag in changes[i].tags_add:
                plan.setdefault(await self._tag_list(tag), ([], []))[0].append(result.platform_id)
            for tag in changes[i].tags_remove:
                plan.setdefault(await self._tag_list(tag), ([], []))[1].append(result.platform_id)
        for list_id, (add, remove) in plan.items():
            await self._change_ids(list_id, add, remove)

    # -- segments and static lists ---------------------------------------------------------------

    async def publish_native(
        self, name: str, definition: Mapping[str, Any], ref: str | None
    ) -> str:
        """Create (or update the filters of) an owned DYNAMIC list; return its list id."""
        branch = _with_operators(definition["filterBranch"])
        branch = _with_subscription(branch, str(await self._subscription_id()))
        if ref is not None:
            await self._json(
                "PUT",
                f"{self.paths['lists']}/{ref}/update-list-filters",
                "PUT list filters",
                json={"filterBranch": branch},
            )
            return ref
        return await self._create_list(
            {
                "name": f"{self.cfg.list_prefix}{name}",
                "objectTypeId": "0-1",
                "processingType": "DYNAMIC",
                "filterBranch": branch,
            }
        )

    async def ensure_static(self, name: str, ref: str | None) -> str:
        """Create an owned MANUAL list (or confirm `ref` exists); return its list id."""
        if ref is not None:
            await self._json("GET", f"{self.paths['lists']}/{ref}", "GET list")
            return ref
        return await self._create_list(
            {
                "name": f"{self.cfg.list_prefix}{name}",
                "objectTypeId": "0-1",
                "processingType": "MANUAL",
            }
        )

    async def find_owned(self, kind: str, name: str) -> str | None:
        """The id of the owned list of `name` (DYNAMIC for native, MANUAL for static), or None."""
        response = await self.client.request(
            "GET",
            f"{self.paths['lists']}/object-type-id/0-1/name/{self.cfg.list_prefix}{name}",
            endpoint="GET list by name",
            ok=(404,),
        )
        if response.status_code == 404:
            return None
        found = response.json()["list"]
        wanted = "DYNAMIC" if kind == "native" else "MANUAL"
        return str(found["listId"]) if found.get("processingType") == wanted else None

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
                f"{self.paths['lists']}/object-type-id/0-1/name/{body['name']}",
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
                f"{self.paths['lists']}/{ref}/memberships/add-and-remove",
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
                f"{self.paths['properties']}/{self.cfg.tags_property}",
                "PATCH property",
                json={"options": options},
            )
            return
        with contextlib.suppress(ApiError):
            await self._json("DELETE", f"{self.paths['lists']}/{ref}", "DELETE list")

    async def _member_ids(self, ref: str) -> AsyncIterator[str]:
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": MEMBERSHIP_PAGE}
            if after:
                params["after"] = after
            body = await self._json(
                "GET",
                f"{self.paths['lists']}/{ref}/memberships",
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
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
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
