"""The HTTP client of one HubSpot account: base URL, auth, API paths, pacing, error parsing.

`hubspot_client(config, ...)` is the only place the connector gets HTTP from: it talks to
`https://api.hubapi.com` unless `base_url` overrides it, authenticates with the private-app
token or service key as a Bearer token, turns HubSpot's error bodies into (category, message)
with `errors.error_code_and_message`, and waits after a 429 as the `rate_limit_hints` it is
given say (`RATE_LIMIT_HINTS`: HubSpot sends no `Retry-After` on API 429s; the body names the
policy that was hit). `tier_budget` paces an account by its tier, `api_paths` gives the path
prefixes of an API version.
"""

from __future__ import annotations

import urllib.parse

import httpx

from segsync.clock import Clock
from segsync.http import (
    RETRY_AFTER,
    ApiClient,
    BodyWait,
    RateBudget,
    RateLimitHints,
    RateWindow,
    build_client,
)
from segsync_hubspot.config import HubSpotConfig
from segsync_hubspot.errors import error_code_and_message
from segsync_hubspot.limits import BURST_BY_TIER, BURST_SECONDS, DAILY_BY_TIER, SEARCH_PER_SECOND

__all__ = [
    "DEFAULT_BASE_URL",
    "RATE_LIMIT_HINTS",
    "api_paths",
    "hubspot_client",
    "path_segment",
    "rate_windows",
    "tier_budget",
]

DEFAULT_BASE_URL = "https://api.hubapi.com"

RATE_LIMIT_HINTS = RateLimitHints(
    headers=(RETRY_AFTER,),
    body=(
        BodyWait(field="policyName", equals="TEN_SECONDLY_ROLLING", seconds=10.0),
        BodyWait(field="policyName", equals="SECONDLY", seconds=1.0),
        BodyWait(field="policyName", equals="DAILY"),
        BodyWait(field="message", contains="ten_secondly_rolling limit", seconds=10.0),
        BodyWait(field="message", contains="secondly limit", seconds=1.0),
        BodyWait(field="message", contains="daily limit"),
        BodyWait(field="errorType", equals="RATE_LIMIT", seconds=10.0),
    ),
)
"""How long a HubSpot 429 asks to wait: `Retry-After` if ever sent, else by the policy the body
names (10 s for the rolling burst window, 1 s for search, not within this run for the daily
cap), else 10 s for any other rate-limit body."""


def path_segment(value: object) -> str:
    """`value` as one URL path segment: every reserved character escaped, `.`/`..` too.

    Emails, list names and ids never change the request's target: `/`, `?`, `#` and `%` are
    escaped, and a segment of dots is spelled `%2E`. An empty value raises ValueError (it would
    name the collection instead of an item).
    """
    text = urllib.parse.quote(str(value), safe="")
    if not text:
        raise ValueError("an empty value cannot name a HubSpot resource")
    if text.strip(".") == "":
        text = text.replace(".", "%2E")
    return text


def api_paths(version: str) -> dict[str, str]:
    """The path prefixes of each API family for `version` (`v3` or a dated one)."""
    if version == "v3":
        return {
            "contacts": "/crm/v3/objects/contacts",
            "lists": "/crm/v3/lists",
            "properties": "/crm/v3/properties/contacts",
            "consent": "/communication-preferences/v4",
        }
    version = path_segment(version)
    return {
        "contacts": f"/crm/objects/{version}/contacts",
        "lists": f"/crm/lists/{version}",
        "properties": f"/crm/properties/{version}/contacts",
        "consent": f"/communication-preferences/{version}",
    }


def rate_windows(tier: str) -> tuple[RateWindow, ...]:
    """The request windows of an account of `tier`: the rolling burst, search, the day."""
    return (
        RateWindow(BURST_BY_TIER[tier], BURST_SECONDS),
        RateWindow(SEARCH_PER_SECOND, 1.0, scope="search"),
        RateWindow(DAILY_BY_TIER[tier], 86_400.0),
    )


def tier_budget(config: HubSpotConfig, *, max_concurrency: int, clock: Clock | None) -> RateBudget:
    """The pacing of an account of the configured tier."""
    return RateBudget(
        max_concurrency=max_concurrency, windows=rate_windows(config.tier), clock=clock
    )


def hubspot_client(
    config: HubSpotConfig,
    *,
    budget: RateBudget,
    clock: Clock,
    transport: httpx.AsyncBaseTransport | None,
    rate_limit_hints: RateLimitHints = RATE_LIMIT_HINTS,
) -> ApiClient:
    """The account's `ApiClient` (see the module docstring); `transport` is the test seam."""
    return build_client(
        platform="hubspot",
        base_url=config.base_url or DEFAULT_BASE_URL,
        headers={"Authorization": f"Bearer {config.token.get_secret_value()}"},
        secrets=config.secrets(),
        budget=budget,
        transport=transport,
        clock=clock,
        error_parser=error_code_and_message,
        retry_after=rate_limit_hints,
        credential="token",
    )
