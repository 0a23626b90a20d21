"""Mailchimp's error bodies and what segsync does about each.

Mailchimp answers errors with `application/problem+json`:
``{"type", "title", "status", "detail", "instance"[, "errors": [{"field", "message"}]]}``.
`parse_error` turns such a response into (code, message) for `segsync.http`: the code is the
`title` ("Member In Compliance State", "Resource Not Found", ...), the message is `detail`
followed by the field errors. Mailchimp sends no `Retry-After` and no rate headers, so
`retry_after` returns None and the HTTP layer backs off exponentially.
"""

from __future__ import annotations

import enum
from typing import Any

import httpx

from segsync.clock import Clock

__all__ = [
    "ERROR_TITLES",
    "ErrorAction",
    "parse_error",
    "problem_body",
    "resolution",
    "retry_after",
]


class ErrorAction(enum.StrEnum):
    """What segsync does when Mailchimp answers with an error."""

    RETRY = "retry"  # transient: the HTTP layer retries
    RATE_LIMITED = "rate_limited"  # too many connections: back off, then retry
    FAIL_CONFIG = "fail_config"  # credentials, datacenter, list id: stop the run
    FAIL_RECORD = "fail_record"  # this record is refused; report Mailchimp's message


#: glossary name -> (HTTP status, problem title, action)
ERROR_TITLES: dict[str, tuple[int, str, ErrorAction]] = {
    "BadRequest": (400, "Bad Request", ErrorAction.FAIL_RECORD),
    "InvalidAction": (400, "Invalid Action", ErrorAction.FAIL_RECORD),
    "InvalidResource": (400, "Invalid Resource", ErrorAction.FAIL_RECORD),
    "JSONParseError": (400, "JSON Parse Error", ErrorAction.FAIL_RECORD),
    "MemberExists": (400, "Member Exists", ErrorAction.FAIL_RECORD),
    "MemberInComplianceState": (400, "Member In Compliance State", ErrorAction.FAIL_RECORD),
    "ForgottenEmailNotSubscribed": (
        400,
        "Forgotten Email Not Subscribed",
        ErrorAction.FAIL_RECORD,
    ),
    "APIKeyMissing": (401, "API Key Missing", ErrorAction.FAIL_CONFIG),
    "APIKeyInvalid": (401, "API Key Invalid", ErrorAction.FAIL_CONFIG),
    "Forbidden": (403, "Forbidden", ErrorAction.FAIL_CONFIG),
    "UserDisabled": (403, "User Disabled", ErrorAction.FAIL_CONFIG),
    "WrongDatacenter": (403, "Wrong Datacenter", ErrorAction.FAIL_CONFIG),
    "ResourceNotFound": (404, "Resource Not Found", ErrorAction.FAIL_RECORD),
    "MethodNotAllowed": (405, "Method Not Allowed", ErrorAction.FAIL_RECORD),
    "ResourceNestingTooDeep": (414, "Resource Nesting Too Deep", ErrorAction.FAIL_RECORD),
    "InvalidMethodOverride": (422, "Invalid Method Override", ErrorAction.FAIL_RECORD),
    "RequestedFieldsInvalid": (422, "Requested Fields Invalid", ErrorAction.FAIL_RECORD),
    "TooManyRequests": (429, "Too Many Requests", ErrorAction.RATE_LIMITED),
    "InternalServerError": (500, "Internal Server Error", ErrorAction.RETRY),
    "ComplianceRelated": (503, "Compliance Related", ErrorAction.FAIL_RECORD),
}

_BY_TITLE = {title: action for _, (_, title, action) in ERROR_TITLES.items()}

ERROR_DOC_URL = "https://mailchimp.com/developer/marketing/docs/errors/"


def problem_body(
    status: int,
    title: str,
    detail: str,
    *,
    instance: str = "",
    errors: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A problem+json body exactly as Mailchimp shapes it."""
    body: dict[str, Any] = {
        "type": ERROR_DOC_URL,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors is not None:
        body["errors"] = errors
    return body


def parse_error(response: httpx.Response) -> tuple[str | None, str]:
    """(title, detail + field errors) from a Mailchimp error; the status text for empty bodies."""
    try:
        body = response.json()
    except ValueError:
        # Mailchimp may answer 429/403 without a body at very high volumes
        return None, (
            response.text[:300] or response.reason_phrase or f"HTTP {response.status_code}"
        )
    if not isinstance(body, dict):
        return None, str(body)[:1000]
    title = body.get("title")
    detail = str(body.get("detail") or title or "")
    field_errors = body.get("errors") or []
    if isinstance(field_errors, list) and field_errors:
        parts = [
            f"{e.get('field') or '(body)'}: {e.get('message')}"
            for e in field_errors
            if isinstance(e, dict)
        ]
        detail = f"{detail} ({'; '.join(parts)})"
    return (str(title) if title else None), detail[:1000]


def retry_after(response: httpx.Response, clock: Clock) -> float | None:
    """Mailchimp sends no Retry-After or reset header: always None (exponential backoff)."""
    return None


def resolution(status: int, title: str | None) -> ErrorAction:
    """What to do with an error, from its problem title, else its status."""
    if title and title in _BY_TITLE:
        return _BY_TITLE[title]
    if status == 429:
        return ErrorAction.RATE_LIMITED
    if status >= 500 or status == 0:
        return ErrorAction.RETRY
    if status in (401, 403):
        return ErrorAction.FAIL_CONFIG
    return ErrorAction.FAIL_RECORD
