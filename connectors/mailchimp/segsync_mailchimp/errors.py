"""Mailchimp's errors: the one table of them, and how the HTTP layer reads them.

Mailchimp answers errors with `application/problem+json`:
``{"type", "title", "status", "detail", "instance"[, "errors": [{"field", "message"}]]}``.
`ERROR_TITLES` is the platform's error glossary (name -> status and title); the emulator
answers with it, and `parse_error`, which the connector's HTTP client is built with
(`build_client(error_parser=...)`), turns such a response into (code, message): the code is
the `title` ("Member In Compliance State", "Resource Not Found", ...), the message is `detail`
followed by the field errors. Whether to retry is the HTTP layer's rule (429, 5xx); how long
to wait is the connector's `rate_limit_hints` (Mailchimp sends no rate headers).
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["ERROR_DOC_URL", "ERROR_TITLES", "parse_error", "problem_body"]


#: glossary name -> (HTTP status, problem title)
ERROR_TITLES: dict[str, tuple[int, str]] = {
    "BadRequest": (400, "Bad Request"),
    "InvalidAction": (400, "Invalid Action"),
    "InvalidResource": (400, "Invalid Resource"),
    "JSONParseError": (400, "JSON Parse Error"),
    "MemberExists": (400, "Member Exists"),
    "MemberInComplianceState": (400, "Member In Compliance State"),
    "ForgottenEmailNotSubscribed": (400, "Forgotten Email Not Subscribed"),
    "APIKeyMissing": (401, "API Key Missing"),
    "APIKeyInvalid": (401, "API Key Invalid"),
    "Forbidden": (403, "Forbidden"),
    "UserDisabled": (403, "User Disabled"),
    "WrongDatacenter": (403, "Wrong Datacenter"),
    "ResourceNotFound": (404, "Resource Not Found"),
    "MethodNotAllowed": (405, "Method Not Allowed"),
    "ResourceNestingTooDeep": (414, "Resource Nesting Too Deep"),
    "InvalidMethodOverride": (422, "Invalid Method Override"),
    "RequestedFieldsInvalid": (422, "Requested Fields Invalid"),
    "TooManyRequests": (429, "Too Many Requests"),
    "InternalServerError": (500, "Internal Server Error"),
    "ComplianceRelated": (503, "Compliance Related"),
}

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
