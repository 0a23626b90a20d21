"""HubSpot's documented limits, as data shared by the connector and the emulator.

Sources: reference/hubspot.md (usage guidelines, search docs, contacts and lists guides).
"""

from __future__ import annotations

__all__ = [
    "BATCH_INPUTS",
    "BURST_BY_TIER",
    "BURST_SECONDS",
    "CONSENT_BATCH_INPUTS",
    "DAILY_BY_TIER",
    "MEMBERSHIP_PAGE",
    "SEARCH_CAP",
    "SEARCH_PAGE",
    "SEARCH_PER_SECOND",
]

BURST_BY_TIER: dict[str, int] = {
    "free": 100,
    "starter": 100,
    "professional": 190,
    "enterprise": 190,
}
"""Requests per rolling `BURST_SECONDS` for a private app or service key, by account tier."""

BURST_SECONDS = 10.0

DAILY_BY_TIER: dict[str, int] = {
    "free": 250_000,
    "starter": 250_000,
    "professional": 625_000,
    "enterprise": 1_000_000,
}
"""Requests a day per account, by tier (Professional: 625,000 per the current usage page)."""

SEARCH_PER_SECOND = 5
"""CRM search requests a second per account (search answers carry no rate headers)."""

SEARCH_PAGE = 200
"""Results a search page holds at most."""

SEARCH_CAP = 10_000
"""Results one search query pages through; paging beyond is a 400."""

BATCH_INPUTS = 100
"""Inputs of a CRM batch call (read, create, update, upsert, archive)."""

CONSENT_BATCH_INPUTS = BATCH_INPUTS
"""Inputs of a subscription-status batch call (read, write). The communication-preferences
descriptions and guides state no cap of their own; HubSpot's batch cap of 100 is assumed."""

MEMBERSHIP_PAGE = 250
"""List memberships a page holds at most."""
