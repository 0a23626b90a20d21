"""The HTTP client of one Mailchimp account: base URL, auth, error parsing, rate-limit hints.

`mailchimp_client(config, ...)` is the only place the connector gets HTTP from. It talks to
`https://<dc>.api.mailchimp.com/3.0` (the key's datacenter) unless `base_url` overrides it,
authenticates with the key as the HTTP Basic password (the key is registered for redaction),
turns problem+json errors into (title, detail) with `errors.parse_error`, and waits after a
429 as `RATE_LIMIT_HINTS` say: Mailchimp sends no rate headers, so the HTTP layer backs off
exponentially unless a `Retry-After` appears. Its timeout (`CALL_TIMEOUT`, 130 s) is above
the 120 s Mailchimp lets a call run, so a 500-member batch subscribe is not cut off (and
sent again) while the server is still applying it.
"""

from __future__ import annotations

import httpx

from segsync.clock import Clock
from segsync.http import RETRY_AFTER, ApiClient, RateBudget, RateLimitHints, build_client
from segsync_mailchimp import errors
from segsync_mailchimp.api import CALL_TIMEOUT
from segsync_mailchimp.config import MailchimpConfig

__all__ = ["RATE_LIMIT_HINTS", "mailchimp_client"]

RATE_LIMIT_HINTS = RateLimitHints(headers=(RETRY_AFTER,))
"""No rate headers at all (only a cap of 10 connections): `Retry-After` if ever sent, else
exponential backoff."""


def mailchimp_client(
    config: MailchimpConfig,
    *,
    budget: RateBudget,
    clock: Clock,
    transport: httpx.AsyncBaseTransport | None,
    rate_limit_hints: RateLimitHints = RATE_LIMIT_HINTS,
) -> ApiClient:
    """The account's `ApiClient` (see the module docstring); `transport` is the test seam."""
    key = config.api_key.get_secret_value()
    return build_client(
        platform="mailchimp",
        base_url=config.api_root,
        auth=httpx.BasicAuth("segsync", key),
        secrets=[key],
        budget=budget,
        transport=transport,
        clock=clock,
        error_parser=errors.parse_error,
        retry_after=rate_limit_hints,
        credential="api_key",
        timeout=CALL_TIMEOUT,
    )
