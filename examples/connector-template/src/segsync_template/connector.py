"""The Template platform's connector: config, capabilities and the connector contract.

Everything platform-specific is data on the class: `capabilities`, `rate_limit_hints`,
`credential_patterns`, `default_mapping` (the `mapping.yaml` shipped in this package),
`compiler_path` and `emulator_path` (both imported only when asked for), `OWNED_PATHS`.
HTTP goes through `segsync.http.build_client` (the `transport` seam).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import SecretStr

from segsync.connector import (
    Capabilities,
    ChangeResult,
    Connector,
    ConnectorConfig,
    ContactChange,
    ReadPage,
    RemoteContact,
    SegmentRepresentation,
    TagRepresentation,
)
from segsync.http import (
    RETRY_AFTER,
    ApiClient,
    RateLimitHints,
    RateWindow,
    RequestStats,
    build_client,
)
from segsync.mapping import PlatformMapping, load_mapping
from segsync.model import Consent, ConsentStatus, FieldSpec, FieldType

__all__ = ["TemplateConfig", "TemplateConnector"]

#: canonical field type -> the platform's attribute type
FIELD_TYPES: dict[FieldType, str] = {
    FieldType.NUMBER: "number",
    FieldType.INTEGER: "number",
    FieldType.DATE: "date",
    FieldType.ENUM: "enum",
}

#: an owned object's kind -> its collection path
OWNED_PATHS: dict[str, str] = {"segment": "/v1/segments", "list": "/v1/lists"}


class TemplateConfig(ConnectorConfig):
    """`api_key` is a secret: never logged, never in reprs."""

    api_key: SecretStr


def to_platform(value: Any) -> Any:
    """A canonical value as the platform's JSON."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, frozenset | set):
        return sorted(value)
    return value


def attribute_names(mapping: PlatformMapping | None) -> dict[str, str]:
    """Canonical field -> platform attribute, as `mapping` renames them (the others keep
    their canonical name)."""
    if mapping is None:
        return {}
    return {name: entry.path for name, entry in mapping.fields.items()}


class TemplateConnector(Connector):
    """Reads and writes Template contacts; publishes flat-AND segments and static lists."""

    name: ClassVar[str] = "template"
    title: ClassVar[str] = "Template (example platform)"
    config_model: ClassVar[type[ConnectorConfig]] = TemplateConfig
    compiler_path: ClassVar[str | None] = "segsync_template.compiler:TemplateCompiler"
    emulator_path: ClassVar[str | None] = "segsync_template.emulator:TemplateEmulator"
    default_base_url: ClassVar[str] = "https://api.template.invalid"
    #: the platform answers a 429 with a standard Retry-After header
    rate_limit_hints: ClassVar[RateLimitHints] = RateLimitHints(headers=(RETRY_AFTER,))
    #: the shape of the platform's API keys, redacted from every log line and report
    credential_patterns: ClassVar[tuple[str, ...]] = (r"tpl-[A-Za-z0-9-]{8,}",)
    #: the field map shipped in this package; a user's `mappings:` entry extends or replaces it
    default_mapping: ClassVar[str | None] = "mapping.yaml"
    capabilities: ClassVar[Capabilities] = Capabilities(
        write_batch_size=50,
        read_page_size=100,
        membership_batch_size=100,
        max_concurrency=4,
        rate_windows=(RateWindow(requests=20, seconds=1.0),),
        tags=TagRepresentation.TAGS,
        native_segments=SegmentRepresentation.SAVED_SEGMENT,
        static_segments="list",
        notes=("saved segments are one flat AND of conditions",),
    )
    #: how far back an incremental read re-reads, for clock skew and same-second writes
    READ_OVERLAP: ClassVar[dt.timedelta] = dt.timedelta(seconds=60)

    def __init__(self, config: ConnectorConfig | Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        assert isinstance(self.config, TemplateConfig)
        if not isinstance(self.mapping, PlatformMapping):  # None or a file: load it
            self.mapping = load_mapping(self.name, self.mapping)
        self.attributes = attribute_names(self.mapping)
        key = self.config.api_key.get_secret_value()
        self.client: ApiClient = build_client(
            platform=self.name,
            base_url=self.config.base_url or self.default_base_url,
            headers={"Authorization": f"Bearer {key}"},
            secrets=[key],
            budget=self.budget,
            transport=self.transport,
            clock=self.clock,
        )

    @property
    def stats(self) -> RequestStats:
        return self.client.stats

    async def aclose(self) -> None:
        await self.client.aclose()

    async def check(self) -> None:
        await self.client.get_json("/v1/account")

    async def prepare(self, fields: Mapping[str, FieldSpec], tags: Sequence[str]) -> None:
        existing = await self.client.get_json("/v1/fields")
        known = {f["name"] for f in existing["fields"]}
        for name, spec in fields.items():
            attribute = self.attributes.get(name, name)
            if attribute not in known and not spec.read_only:
                await self.client.request(
                    "POST", "/v1/fields", endpoint="POST /v1/fields",
                    json={"name": attribute, "type": FIELD_TYPES.get(spec.type, "text")},
                )

    # -- reading ------------------------------------------------------------------------

    def to_remote(self, record: Mapping[str, Any]) -> RemoteContact:
        """A platform record as a canonical `RemoteContact` (unknown attributes ignored)."""
        canonical = {attribute: name for name, attribute in self.attributes.items()}
        fields = {}
        for attribute, value in record["attributes"].items():
            name = canonical.get(attribute, attribute)
            spec = self.schema.get(name)
            if spec is not None:
                fields[name] = spec.coerce(value)
        return RemoteContact(
            platform_id=record["id"],
            email=record["email"],
            fields=fields,
            tags=frozenset(record["tags"]),
            consent=Consent(status=ConsentStatus(record["consent"]), source=self.name),
            updated_at=dt.datetime.fromisoformat(record["updated_at"]),
        )

    async def read(self, cursor: str | None = None) -> AsyncIterator[ReadPage]:
        """Contacts updated since the cursor, re-reading `READ_OVERLAP` and skipping repeats.

        The cursor is JSON: the latest `updated_at` seen and the ids seen within the overlap
        before it, so a re-read record is returned again only if it changed.
        """
        state = json.loads(cursor) if cursor else None
        params: dict[str, Any] = {"limit": self.capabilities.read_page_size, "offset": 0}
        seen: dict[str, str] = dict(state["seen"]) if state else {}
        latest = dt.datetime.fromisoformat(state["latest"]) if state else None
        if latest is not None:
            params["updated_since"] = (latest - self.READ_OVERLAP).isoformat()
        returned: set[str] = set()
        while True:
            body = await self.client.get_json(
                "/v1/contacts", params=params, endpoint="GET /v1/contacts"
            )
            page = []
            for record in body["contacts"]:
                if record["id"] in returned or seen.get(record["id"]) == record["updated_at"]:
                    continue
                returned.add(record["id"])
                contact = self.to_remote(record)
                page.append(contact)
                if contact.updated_at and (latest is None or contact.updated_at > latest):
                    latest = contact.updated_at
                seen[record["id"]] = record["updated_at"]
            if latest is not None:
                horizon = latest - self.READ_OVERLAP
                seen = {
                    k: v for k, v in seen.items() if dt.datetime.fromisoformat(v) >= horizon
                }
            next_cursor = (
                json.dumps({"latest": latest.isoformat(), "seen": sorted(seen.items())})
                if latest is not None
                else cursor
            )
            yield ReadPage(page, next_cursor)
            if body["next_offset"] is None:
                return
            params["offset"] = body["next_offset"]

    # -- writing ------------------------------------------------------------------------

    def to_record(self, change: ContactChange) -> dict[str, Any]:
        """A change as one record of the batch endpoint (only what changes is sent)."""
        record: dict[str, Any] = {"email": change.email, "create": change.create}
        if change.fields:
            record["attributes"] = {
                self.attributes.get(k, k): to_platform(v) for k, v in change.fields.items()
            }
        if change.consent is not None:
            record["consent"] = change.consent.value
        if change.tags_add:
            record["tags_add"] = sorted(change.tags_add)
        if change.tags_remove:
            record["tags_remove"] = sorted(change.tags_remove)
        if change.new_email:
            record["new_email"] = change.new_email
        return record

    async def write(self, changes: Sequence[ContactChange]) -> list[ChangeResult]:
        results: dict[int, ChangeResult] = {}
        pending = []
        for index, change in enumerate(changes):
            if change.is_empty:
                results[index] = ChangeResult(
                    email=change.email, ok=True, platform_id=change.platform_id
                )
            else:
                pending.append(index)
        size = self.capabilities.write_batch_size
        for start in range(0, len(pending), size):
            batch = pending[start : start + size]
            response = await self.client.request(
                "POST", "/v1/contacts/batch", endpoint="POST /v1/contacts/batch",
                json={"contacts": [self.to_record(changes[i]) for i in batch]},
            )
            for index, verdict in zip(batch, response.json()["results"], strict=True):
                results[index] = ChangeResult(
                    email=changes[index].email,
                    ok=verdict["ok"],
                    platform_id=verdict.get("id"),
                    created=verdict.get("created", False),
                    error=verdict.get("error"),
                )
        return [results[i] for i in range(len(changes))]

    # -- segments -----------------------------------------------------------------------

    async def publish_native(
        self, name: str, definition: Mapping[str, Any], ref: str | None
    ) -> str:
        body = {"name": name, **definition}
        if ref is None:
            created = await self.client.request(
                "POST", "/v1/segments", endpoint="POST /v1/segments", json=body
            )
            return str(created.json()["id"])
        await self.client.request(
            "PUT", f"/v1/segments/{ref}", endpoint="PUT /v1/segments/{id}", json=body
        )
        return ref

    async def ensure_static(self, name: str, ref: str | None) -> str:
        if ref is not None:
            found = await self.client.request(
                "GET", f"/v1/lists/{ref}", endpoint="GET /v1/lists/{id}", ok=(404,)
            )
            if found.status_code != 404:
                return ref
        created = await self.client.request(
            "POST", "/v1/lists", endpoint="POST /v1/lists", json={"name": name}
        )
        return str(created.json()["id"])

    async def change_static_members(
        self, ref: str, add: Sequence[str], remove: Sequence[str]
    ) -> list[ChangeResult]:
        size = self.capabilities.membership_batch_size
        results: list[ChangeResult] = []
        for start in range(0, max(len(add), len(remove)), size):
            response = await self.client.request(
                "POST", f"/v1/lists/{ref}/members", endpoint="POST /v1/lists/{id}/members",
                json={"add": list(add[start : start + size]),
                      "remove": list(remove[start : start + size])},
                idempotent=True,
            )
            results.extend(
                ChangeResult(email=v["email"], ok=v["ok"], error=v.get("error"))
                for v in response.json()["results"]
            )
        return results

    async def delete_owned(self, kind: str, ref: str) -> None:
        path = OWNED_PATHS.get(kind)
        if path is None:
            raise ValueError(f"template has no owned {kind!r} (known: {', '.join(OWNED_PATHS)})")
        await self.client.request("DELETE", f"{path}/{ref}", endpoint=f"DELETE {path}/{{id}}")

    async def segment_members(self, ref: str) -> AsyncIterator[str]:
        # the platform gives segment ids an "s" prefix and list ids an "l"
        path = OWNED_PATHS["segment" if ref.startswith("s") else "list"]
        offset: int | None = 0
        while offset is not None:
            body = await self.client.get_json(
                f"{path}/{ref}/members",
                params={"offset": offset, "limit": self.capabilities.read_page_size},
                endpoint=f"GET {path}/{{id}}/members",
            )
            for email in body["emails"]:
                yield email
            offset = body["next_offset"]
