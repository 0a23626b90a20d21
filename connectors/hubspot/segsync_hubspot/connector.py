"""The HubSpot connector: contacts, tags, consent and lists through HubSpot's CRM APIs.

`HubSpotConnector` composes its parts, each a module with its own contract: `client` (HTTP
client, auth, API paths, pacing, error parsing), `account` (the shared state, property
catalog, consent reads, `check`), `segments` (owned lists and tag lists), `read` and `write`.
The platform's facts are class data here: capabilities, rate-limit hints, the credential
shape, the shipped mapping (`mapping.yaml`), the compiler and the emulator (both by path; the
emulator is imported only when asked for).

- Auth: a private-app token or service key (`Authorization: Bearer ...`); `base_url`
  overrides `https://api.hubapi.com` (e.g. a `segsync emulate hubspot` server).
- Paths carry the configured `api_version` (`2026-03` by default; `v3` for the older paths).
- Tags: a multi-checkbox property (`tags_property`) or one MANUAL list per tag
  (`tags_as: lists`). Canonical enum fields become enumeration properties.
- Pacing: 100 (or 190, by tier) requests per rolling 10 s, 5 searches a second, the daily cap.
- Search lags writes by a few seconds (`listing_lags`): the re-check before writing also
  reads the records a plan writes by id (`read_by_id`, batch reads of 100).
- The rule compiler (`compiler()`) is built from this connector's config and mapping, so the
  configured tags property and a property renamed by the mapping are what its DYNAMIC lists
  filter on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from segsync.connector import (
    Capabilities,
    ConnectorConfig,
    GroupRepresentation,
    SegmentRepresentation,
    TagRepresentation,
)
from segsync.http import RateLimitHints
from segsync_hubspot.client import (
    DEFAULT_BASE_URL,
    RATE_LIMIT_HINTS,
    api_paths,
    hubspot_client,
    rate_windows,
    tier_budget,
)
from segsync_hubspot.config import HubSpotConfig
from segsync_hubspot.erase import erase as erase_contact
from segsync_hubspot.limits import BATCH_INPUTS, SEARCH_PAGE
from segsync_hubspot.read import HubSpotReads
from segsync_hubspot.write import HubSpotWrites

__all__ = ["HubSpotConfig", "HubSpotConnector", "api_paths"]


class HubSpotConnector(HubSpotReads, HubSpotWrites):
    """segsync's HubSpot connector; see the module docstring."""

    name: ClassVar[str] = "hubspot"
    title: ClassVar[str] = "HubSpot"
    config_model: ClassVar[type[ConnectorConfig]] = HubSpotConfig
    compiler_path: ClassVar[str | None] = "segsync_hubspot.compiler:HubSpotCompiler"
    emulator_path: ClassVar[str | None] = "segsync_hubspot.emulator:HubSpotEmulator"
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    rate_limit_hints: ClassVar[RateLimitHints] = RATE_LIMIT_HINTS
    credential_patterns: ClassVar[tuple[str, ...]] = (
        r"\bpat-[a-z]{2,4}\d?-[0-9a-f-]{20,}",  # a private-app token: pat-<region>-<uuid>
    )
    default_mapping: ClassVar[str | None] = "mapping.yaml"
    erase = erase_contact  # GDPR erasure: see erase.py
    #: search (the change listing) lags writes: the re-check reads written records by id
    listing_lags: ClassVar[bool] = True
    capabilities: ClassVar[Capabilities] = Capabilities(
        write_batch_size=BATCH_INPUTS,
        read_page_size=SEARCH_PAGE,
        membership_batch_size=BATCH_INPUTS,
        max_concurrency=10,
        rate_windows=rate_windows("starter"),
        tags=TagRepresentation.MULTI_CHECKBOX,
        groups=GroupRepresentation.ENUM_PROPERTY,
        native_segments=SegmentRepresentation.DYNAMIC_LIST,
        static_segments="list",
        consent_not_held=frozenset({"pending"}),  # no double opt-in state in v4 statuses
        notes=(
            "search: 200 a page, 10,000 results a query (reads are windowed on lastmodifieddate)",
            "batch upsert by email: 100 inputs a call",
            "100 requests / 10 s (190 on Professional and Enterprise), 5 searches a second",
        ),
    )

    def __init__(self, config: HubSpotConfig | Mapping[str, Any], **kwargs: Any) -> None:
        """`config` is the `platforms.hubspot` block; the keywords are those of `Connector`.
        Without a `budget`, the account is paced by its configured tier."""
        cfg = config if isinstance(config, HubSpotConfig) else HubSpotConfig.model_validate(config)
        if kwargs.get("budget") is None:
            kwargs["budget"] = tier_budget(
                cfg, max_concurrency=self.capabilities.max_concurrency, clock=kwargs.get("clock")
            )
        super().__init__(cfg, **kwargs)
        self.cfg = cfg
        self.paths = api_paths(cfg.api_version)
        self.client = hubspot_client(
            cfg,
            budget=self.budget,
            clock=self.clock,
            transport=self.transport,
            rate_limit_hints=type(self).rate_limit_hints,
        )
        self._properties = None
        self._tag_labels = {}
        self._tag_lists = {}
        self._subscription = None  # resolved (and a configured one checked) on first use
        self._subscription_name = None
        self._batch_consent = cfg.consent_batch_reads
        self._batch_consent_writes = cfg.consent_batch_writes
        self._batch_consent_writes_seen = False  # a batch status write has succeeded
        self._group_ready = False
