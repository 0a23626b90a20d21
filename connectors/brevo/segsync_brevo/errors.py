"""Brevo's error bodies and rate-limit headers, as the connector reads them.

Brevo answers every error with `{"code": "<enum>", "message": "<text>"}` (`errorModel`);
contact create/update add an optional `metadata` object (`contactErrorModel`). A 429 carries
no `Retry-After`; `x-sib-ratelimit-reset` says how many seconds remain until the window
resets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum

import httpx

from segsync.clock import Clock
from segsync.http import retry_after_seconds

__all__ = [
    "ERRORS",
    "RATE_LIMIT_HEADERS",
    "ErrorKind",
    "ErrorResolution",
    "parse_error",
    "resolve",
    "retry_after",
]

RATE_LIMIT_HEADERS = ("x-sib-ratelimit-limit", "x-sib-ratelimit-remaining", "x-sib-ratelimit-reset")
"""The headers Brevo sends on rate-limited endpoints (reset: seconds, not an epoch)."""


class ErrorKind(enum.StrEnum):
    """Whose problem an error is: the configuration, one record's data, or the moment."""

    CONFIG = "config"
    DATA = "data"
    TRANSIENT = "transient"


@dataclasses.dataclass(frozen=True)
class ErrorResolution:
    """What an error code means for segsync: its kind and a hint for the report."""

    kind: ErrorKind
    hint: str


ERRORS: dict[str, ErrorResolution] = {
    "unauthorized": ErrorResolution(ErrorKind.CONFIG, "check the Brevo API key"),
    "permission_denied": ErrorResolution(ErrorKind.CONFIG, "the key lacks a permission"),
    "account_under_validation": ErrorResolution(ErrorKind.CONFIG, "the account is not active yet"),
    "not_enough_credits": ErrorResolution(ErrorKind.CONFIG, "the plan's credits are used up"),
    "invalid_parameter": ErrorResolution(ErrorKind.DATA, "a value Brevo refuses"),
    "missing_parameter": ErrorResolution(ErrorKind.DATA, "a required value is missing"),
    "out_of_range": ErrorResolution(ErrorKind.DATA, "a value outside the allowed range"),
    "duplicate_parameter": ErrorResolution(
        ErrorKind.DATA, "the identifier belongs to another Brevo contact"
    ),
    "document_not_found": ErrorResolution(ErrorKind.DATA, "the record does not exist"),
    "method_not_allowed": ErrorResolution(ErrorKind.DATA, "Brevo does not allow this"),
    "account_in_process": ErrorResolution(ErrorKind.TRANSIENT, "the account is busy"),
    "duplicate_request": ErrorResolution(ErrorKind.TRANSIENT, "a request still in progress"),
    "too_many_requests": ErrorResolution(ErrorKind.TRANSIENT, "rate limit reached"),
}
"""Brevo error codes (`errorModel.code`, `contactErrorModel.code`) and what they mean."""


def resolve(code: str | None) -> ErrorResolution:
    """The resolution of an error code (unknown codes are data errors)."""
    return ERRORS.get(code or "", ErrorResolution(ErrorKind.DATA, "see the platform's message"))


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


def retry_after(response: httpx.Response, clock: Clock) -> float | None:
    """Seconds to wait after a 429: `x-sib-ratelimit-reset` (or `Retry-After`), else None."""
    value = response.headers.get("x-sib-ratelimit-reset")
    if value:
        with contextlib.suppress(ValueError):
            return max(0.0, float(value))
    return retry_after_seconds(response, clock)
