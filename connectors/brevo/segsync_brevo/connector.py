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
- reads are incremental on `modifiedSince` with an overlap window; small change sets go
  through single-contact calls, large ones through the asynchronous `/contacts/import`.

`BrevoConnector` composes its parts, each a module with its own contract: `client` (HTTP
client, auth, pacing), `account` (attributes, folder and lists; `check`, `prepare`), `read`,
`write` and `imports`, and `segments`. The platform's facts are class data here:
capabilities, attribute types and names, rate-limit hints, credential shapes, the shipped
mapping (`mapping.yaml`), the compiler and the emulator (both imported only when asked for,
by path).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from segsync.clock import Clock
from segsync.connector import (
    Capabilities,
    ConnectorConfig,
    GroupRepresentation,
    SegmentRepresentation,
    TagRepresentation,
)
from segsync.http import RateBudget, RateLimitHints, RateWindow
from segsync.mapping import PlatformMapping, load_mapping
from segsync.model import FieldType, Schema
from segsync_brevo.client import (
    CREDENTIAL_PATTERNS,
    RATE_LIMIT_HINTS,
    brevo_client,
    tier_budget,
)
from segsync_brevo.config import BrevoConfig, DoubleOptIn
from segsync_brevo.engagement import BrevoEngagement
from segsync_brevo.erase import erase as erase_contact
from segsync_brevo.imports import BrevoImports, ReadBackPool
from segsync_brevo.limits import TIERS
from segsync_brevo.read import BrevoReads
from segsync_brevo.segments import MEMBERSHIP_BATCH
from segsync_brevo.write import ImportCostModel

__all__ = ["BrevoConfig", "BrevoConnector", "DoubleOptIn", "ImportCostModel"]

log = logging.getLogger("segsync.brevo")


class BrevoConnector(BrevoImports, BrevoReads, BrevoEngagement):
    """The Brevo connector; see the module docstring."""

    name = "brevo"
    title = "Brevo"
    config_model = BrevoConfig
    compiler_path = "segsync_brevo.compiler:BrevoCompiler"
    emulator_path = "segsync_brevo.emulator:BrevoEmulator"
    default_base_url = "https://api.brevo.com/v3"
    rate_limit_hints: ClassVar[RateLimitHints] = RATE_LIMIT_HINTS
    credential_patterns: ClassVar[tuple[str, ...]] = CREDENTIAL_PATTERNS
    default_mapping: ClassVar[str | None] = "mapping.yaml"
    #: the engagement refresh reads the statistics of each contact in a list with new
    #: campaign activity, one call per contact (about 2 h 48 min per 100,000 at 10 calls/s
    #: when a campaign reached them all): only when `engagement.platforms.brevo` asks
    engagement_refresh_by_default: ClassVar[bool] = False
    erase = erase_contact  # GDPR erasure: see erase.py
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
        """`mapping` may be a PlatformMapping, or None for the shipped one; the other
        keywords are those of `Connector`. Without a `budget`, the tier's limits pace it."""
        super().__init__(
            config, schema=schema, mapping=mapping, transport=transport, clock=clock, budget=budget
        )
        if budget is None:
            self.budget = tier_budget(self.config, self.capabilities.max_concurrency, self.clock)
        self.client = brevo_client(
            self.config,
            base_url=self.default_base_url,
            budget=self.budget,
            transport=transport,
            clock=self.clock,
            rate_limit_hints=type(self).rate_limit_hints,
        )
        self.cost = ImportCostModel(
            contacts_per_second=TIERS[self.config.tier].contacts_per_second,
            concurrency=self.capabilities.max_concurrency,
        )
        self._attributes = None
        self._folder_id = None
        self._owned_lists = None
        self._made_names = {}
        self._made = []
        self._known = collections.OrderedDict()
        self._reachable = collections.OrderedDict()
        self._left_lists = {}
        self._known_limit = 50_000  # a bounded cache, not the audience
        self._read_backs = ReadBackPool(self._read_back_pass)
        self.field_map = mapping if isinstance(mapping, PlatformMapping) else _shipped_mapping()
        if self.mapping is None:
            self.mapping = self.field_map  # what the compiler sees: the shipped mapping


def _shipped_mapping() -> PlatformMapping | None:
    """The mapping this package ships (`mapping.yaml`), or None when it cannot be loaded."""
    try:
        return load_mapping(BrevoConnector.name)
    except (OSError, ValueError) as exc:
        log.warning("brevo: default mapping not loaded (%s); attribute names from field names", exc)
        return None
