"""HubSpot's error bodies and how long its 429s ask callers to wait.

HubSpot answers errors with `{"status": "error", "message", "correlationId", "category",
"subCategory"?, "errors"?, "context"?}` and rate limits with `{"status": "error", "message",
"errorType": "RATE_LIMIT", "policyName", "correlationId"}` — without a `Retry-After` header, so
the wait comes from the policy that was hit (`RETRY_AFTER_BY_POLICY`).
"""

from __future__ import annotations

import datetime as dt

import httpx

from segsync.clock import Clock

__all__ = [
    "RETRY_AFTER_BY_POLICY",
    "error_code_and_message",
    "retry_after_seconds",
    "seconds_until_midnight",
]

RETRY_AFTER_BY_POLICY: dict[str, float] = {
    "TEN_SECONDLY_ROLLING": 10.0,  # the rolling burst window is 10 s
    "SECONDLY": 1.0,  # CRM search: 5 a second
}
"""Seconds to wait after a 429, by `policyName`; DAILY waits until the next midnight."""


def seconds_until_midnight(now: dt.datetime) -> float:
    """Seconds from `now` to the next midnight (UTC: the account's zone is not known)."""
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (tomorrow - now).total_seconds()


def error_code_and_message(response: httpx.Response) -> tuple[str | None, str]:
    """(category or policyName, message) of a HubSpot error body; tolerant of other shapes."""
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


def retry_after_seconds(response: httpx.Response, clock: Clock) -> float | None:
    """How long a HubSpot 429 asks to wait: Retry-After if sent, else by policy name."""
    header = response.headers.get("Retry-After")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
    if response.status_code != 429:
        return None
    try:
        body = response.json()
    except ValueError:
        body = {}
    policy = str(body.get("policyName") or "") if isinstance(body, dict) else ""
    if policy == "DAILY":
        return seconds_until_midnight(clock.now())
    if policy in RETRY_AFTER_BY_POLICY:
        return RETRY_AFTER_BY_POLICY[policy]
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    if "secondly" in message and "ten_secondly" not in message:
        return RETRY_AFTER_BY_POLICY["SECONDLY"]
    return RETRY_AFTER_BY_POLICY["TEN_SECONDLY_ROLLING"]
