"""The Mailchimp connector: one audience (list) of the Marketing API v3.

`MailchimpConnector` composes its parts, each a module with its own contract: `client`
(HTTP client, auth, error parsing), `audience` (catalog, `check`, `prepare`), `read`,
`write` and `segments`. The platform's facts are class data here: capabilities, the
rate-limit hints, the credential shape, the shipped mapping (`mapping.yaml`), the compiler
and the emulator (both imported only when asked for, by path).

- auth: the API key (`<hex>-<dc>`) as the HTTP Basic password; the base URL comes from its
  datacenter (`https://<dc>.api.mailchimp.com/3.0`) unless `base_url` overrides it;
- the rule compiler (`compiler()`) is built from this connector's config and mapping, so a
  merge field renamed by either is the one its saved segments filter on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from segsync.connector import (
    Capabilities,
    ConnectorConfig,
    GroupRepresentation,
    SegmentRepresentation,
    TagRepresentation,
)
from segsync.http import RateBudget, RateLimitHints
from segsync.mapping import load_mapping
from segsync_mailchimp.api import MAX_BATCH_MEMBERS, MAX_PAGE, MAX_SEGMENT_BULK, path_segment
from segsync_mailchimp.audience import AudienceCatalog
from segsync_mailchimp.client import RATE_LIMIT_HINTS, mailchimp_client
from segsync_mailchimp.config import MailchimpConfig
from segsync_mailchimp.engagement import MailchimpEngagement
from segsync_mailchimp.erase import erase as erase_contact
from segsync_mailchimp.fields import default_mapping
from segsync_mailchimp.read import MailchimpReads
from segsync_mailchimp.segments import MailchimpSegments
from segsync_mailchimp.write import MailchimpWrites

__all__ = ["MailchimpConfig", "MailchimpConnector"]


class MailchimpConnector(MailchimpReads, MailchimpEngagement, MailchimpWrites, MailchimpSegments):
    """Mailchimp Marketing API v3, one audience; see the module docstring."""

    name: ClassVar[str] = "mailchimp"
    title: ClassVar[str] = "Mailchimp"
    config_model: ClassVar[type[ConnectorConfig]] = MailchimpConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        write_batch_size=MAX_BATCH_MEMBERS,
        read_page_size=MAX_PAGE,
        membership_batch_size=MAX_SEGMENT_BULK,
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
    rate_limit_hints: ClassVar[RateLimitHints] = RATE_LIMIT_HINTS
    credential_patterns: ClassVar[tuple[str, ...]] = (
        r"\b[0-9a-f]{32}-us\d{1,3}\b",  # an API key: 32 hex digits, then the datacenter
    )
    default_mapping: ClassVar[str | None] = "mapping.yaml"
    erase = erase_contact  # GDPR erasure: see erase.py

    def __init__(self, config: ConnectorConfig | Mapping[str, Any], **kwargs: Any) -> None:
        """`mapping` (keyword) may be a PlatformMapping, a file path, or None for the shipped
        mapping; the other keywords are those of `Connector`."""
        super().__init__(config, **kwargs)
        cfg = self.config
        if cfg.max_concurrency < self.budget.max_concurrency and "budget" not in kwargs:
            self.budget = RateBudget(max_concurrency=cfg.max_concurrency, clock=self.clock)
        self.client = mailchimp_client(
            cfg,
            budget=self.budget,
            clock=self.clock,
            transport=self.transport,
            rate_limit_hints=type(self).rate_limit_hints,
        )
        if self.mapping is None:
            self.mapping = default_mapping()
        elif isinstance(self.mapping, str | Path):
            self.mapping = load_mapping(self.name, self.mapping)
        self._catalog = AudienceCatalog()
        self._catalog_lock = asyncio.Lock()
        self._known = {}
        self._list_path = f"/lists/{path_segment(cfg.list_id)}"
