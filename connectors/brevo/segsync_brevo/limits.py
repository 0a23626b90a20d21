"""Brevo's published request limits per API tier, shared by the connector and its emulator.

The connector paces itself from them (`RateBudget` windows); the emulator enforces them.
"""

from __future__ import annotations

import dataclasses

__all__ = ["TIERS", "TierLimits"]


@dataclasses.dataclass(frozen=True)
class TierLimits:
    """Requests allowed on one API tier (fact sheet section 8)."""

    contacts_per_second: int
    contacts_per_hour: int
    others_per_hour: int


TIERS: dict[str, TierLimits] = {
    "general": TierLimits(10, 36_000, 100),
    "advanced": TierLimits(20, 72_000, 200),
    "extended": TierLimits(60, 216_000, 200),
}
"""Per-tier limits; `extended` beyond the contacts rate is not published (assumed)."""
