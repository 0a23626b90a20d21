"""The Brevo HTTP client: construction, auth, pacing, and the request helper every part uses.

Auth is the `api-key` header. Requests to `/contacts*` count against the tier's per-second and
per-hour contacts windows, every other endpoint against the hourly one (`TIERS`); `BrevoCalls`
sends each request in its scope through the one `ApiClient`, built with the platform's error
parser (`errors.parse_error`) and rate-limit hints (`RATE_LIMIT_HINTS`).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from segsync.clock import Clock
from segsync.connector import Connector
from segsync.http import (
    GENERIC_RATE_LIMIT_HINTS,
    ApiClient,
    RateBudget,
    RateLimitHeader,
    RateLimitHints,
    RateWindow,
    RequestStats,
    build_client,
)
from segsync_brevo.config import BrevoConfig
from segsync_brevo.errors import RATE_LIMIT_RESET, parse_error
from segsync_brevo.limits import TIERS

__all__ = [
    "CREDENTIAL_PATTERNS",
    "RATE_LIMIT_HINTS",
    "BrevoCalls",
    "brevo_client",
    "tier_budget",
]

RATE_LIMIT_HINTS = RateLimitHints(
    headers=(RateLimitHeader(name=RATE_LIMIT_RESET), *GENERIC_RATE_LIMIT_HINTS.headers)
)
"""A 429 carries no `Retry-After`: `x-sib-ratelimit-reset` (seconds, not an epoch) says how
long to wait; the standard headers are read after it."""

CREDENTIAL_PATTERNS = (
    r"\bxkeysib-[0-9A-Za-z-]{16,}",  # API key
    r"\bxsmtpsib-[0-9A-Za-z-]{16,}",  # SMTP key
)
"""The shapes of Brevo's credentials, redacted from every log line."""


def tier_budget(config: BrevoConfig, max_concurrency: int, clock: Clock) -> RateBudget:
    """The request budget of the configured API tier."""
    tier = TIERS[config.tier]
    return RateBudget(
        max_concurrency=max_concurrency,
        windows=(
            RateWindow(tier.contacts_per_second, 1.0, "contacts"),
            RateWindow(tier.contacts_per_hour, 3600.0, "contacts"),
            RateWindow(tier.others_per_hour, 3600.0, "hourly"),
        ),
        clock=clock,
    )


def brevo_client(
    config: BrevoConfig,
    *,
    base_url: str,
    budget: RateBudget,
    transport: httpx.AsyncBaseTransport | None,
    clock: Clock,
    rate_limit_hints: RateLimitHints,
) -> ApiClient:
    """The connector's HTTP client: the key in `api-key` (and redacted), Brevo's errors."""
    key = config.api_key.get_secret_value()
    return build_client(
        platform="brevo",
        base_url=config.base_url or base_url,
        headers={"api-key": key, "accept": "application/json"},
        secrets=[key],
        budget=budget,
        transport=transport,
        clock=clock,
        error_parser=parse_error,
        retry_after=rate_limit_hints,
        credential="api_key",
    )


class BrevoCalls(Connector):
    """Requests through the connector's client, each in its rate scope (a connector part)."""

    config: BrevoConfig
    client: ApiClient

    @property
    def stats(self) -> RequestStats:
        return self.client.stats

    async def aclose(self) -> None:
        await self.client.aclose()

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
        """One request; `label` is the path template the stats count it under."""
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

    async def missing(self, platform_ids: Sequence[str]) -> set[str]:
        """The contacts of `platform_ids` Brevo no longer holds (`GET /contacts/{id}` answers
        404; Brevo lists no deletions). One call per id: asked only for records a read found
        made again next to them, so rarely."""
        gone: set[str] = set()
        for pid in platform_ids:
            if not pid.isdigit():
                continue
            response = await self._call(
                "GET", f"/contacts/{pid}", "/contacts/{identifier}",
                params={"identifierType": "contact_id"}, ok=(404,),
            )
            if response.status_code == 404:
                gone.add(pid)
        return gone

    async def _get_contact(self, email: str) -> dict[str, Any] | None:
        """The contact with this email as Brevo returns it, or None when there is none."""
        response = await self._call(
            "GET",
            f"/contacts/{urllib.parse.quote(email, safe='')}",
            "/contacts/{identifier}",
            params={"identifierType": "email_id"},
            ok=(404,),
        )
        if response.status_code == 404:
            return None
        data: dict[str, Any] = response.json()
        return data
