"""HubSpot's error bodies as (code, message): the connector's one error table.

HubSpot answers errors with `{"status": "error", "message", "correlationId", "category",
"subCategory"?, "errors"?, "context"?}` and rate limits with `{"status": "error", "message",
"errorType": "RATE_LIMIT", "policyName", "correlationId"}`. `error_code_and_message` is the
parser the HTTP layer gets through `build_client(error_parser=...)`; how long a 429 asks to
wait is `client.RATE_LIMIT_HINTS`.
"""

from __future__ import annotations

import httpx

__all__ = ["error_code_and_message"]


def error_code_and_message(response: httpx.Response) -> tuple[str | None, str]:
    """(policyName, category or errorType; message) of a HubSpot error body; tolerant of
    other shapes."""
    try:
        body = response.json()
    except ValueError:
        return None, (response.text[:500] or response.reason_phrase)
    if not isinstance(body, dict):
        return None, str(body)[:1000]
    code = body.get("policyName") or body.get("category") or body.get("errorType")
    message = str(body.get("message") or response.reason_phrase)
    details = [str(e.get("message")) for e in body.get("errors") or [] if isinstance(e, dict)]
    if details and not any(d in message for d in details):
        message = f"{message} ({'; '.join(details)})"
    return (str(code) if code else None), message[:2000]
