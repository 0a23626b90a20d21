"""Brevo's error bodies and rate-limit headers: the one place the connector reads them.

Brevo answers every error with `{"code": "<enum>", "message": "<text>"}` (`errorModel`);
contact create/update add an optional `metadata` object (`contactErrorModel`). `parse_error`
turns such a response into (code, message); the connector's HTTP client is built with it
(`build_client(error_parser=...)`), and the membership calls use it for the 400 Brevo answers
when no item of a batch succeeded. Whether to retry is the HTTP layer's rule (429, 5xx); how
long to wait is the connector's `rate_limit_hints` (a 429 carries no `Retry-After`;
`x-sib-ratelimit-reset` says how many seconds remain until the window resets).
"""

from __future__ import annotations

import httpx

__all__ = ["RATE_LIMIT_HEADERS", "RATE_LIMIT_RESET", "parse_error"]

RATE_LIMIT_RESET = "x-sib-ratelimit-reset"
"""Seconds until the rate window resets (not an epoch)."""

RATE_LIMIT_HEADERS = ("x-sib-ratelimit-limit", "x-sib-ratelimit-remaining", RATE_LIMIT_RESET)
"""The headers Brevo sends on rate-limited endpoints."""


def parse_error(response: httpx.Response) -> tuple[str | None, str]:
    """(code, message) from a Brevo error response; the status text when the body is not JSON."""
    try:
        body = response.json()
    except ValueError:
        return None, (response.text[:500] or response.reason_phrase)
    if isinstance(body, dict):
        code = body.get("code")
        message = str(body.get("message") or response.reason_phrase)
        metadata = body.get("metadata")
        if isinstance(metadata, dict) and metadata.get("duplicate_identifiers"):
            message += f" (duplicate identifiers: {', '.join(metadata['duplicate_identifiers'])})"
        return (str(code) if code is not None else None), message[:1000]
    return None, str(body)[:1000]
