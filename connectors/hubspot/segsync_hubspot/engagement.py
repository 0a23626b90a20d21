"""Engagement HubSpot reports, read-only, as canonical engagement values (absent = no data).

HubSpot keeps marketing-email engagement in calculated contact properties, read with every
search page of `read` (no extra call): `hs_email_delivered` -> `emails_delivered`,
`hs_email_open` -> `opens`, `hs_email_click` -> `clicks`, `hs_email_last_open_date` ->
`last_open`, `hs_email_last_click_date` -> `last_click`; `lifecyclestage` -> `lifecycle_stage`.
HubSpot has no open rate, click rate or rating property: those stay absent.

No data is not zero: the email figures are reported only once HubSpot has emailed the
contact, i.e. `hs_email_delivered` > 0 or `hs_email_last_send_date` is set; a contact segsync
created (never emailed) contributes none of them, whatever HubSpot shows as 0.

`read_engagement` catches values that changed without `lastmodifieddate` moving (HubSpot's
knowledge base says any property change moves it, HubSpot's own activity included; no API
document says so of these calculated properties, so segsync does not rely on it, and the
emulator's default is the stricter reading): one search for contacts whose last send, open
or click date is at or after the previous refresh, 200 a page, paged by
`hs_object_id` (so past the 10,000-result search cap). Cost: ceil(active / 200) calls, where
active = contacts emailed or engaging since the previous refresh (the first: every emailed
contact, ceil(emailed / 200)).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping
from typing import Any

from segsync.connector import EngagementPage

__all__ = [
    "EMAIL_PROPERTIES",
    "ENGAGEMENT_READ_PROPERTIES",
    "contact_engagement",
    "read_engagement_pages",
]

#: canonical engagement name -> HubSpot property, and its kind (count or time)
EMAIL_PROPERTIES: Mapping[str, tuple[str, str]] = {
    "emails_delivered": ("hs_email_delivered", "count"),
    "opens": ("hs_email_open", "count"),
    "clicks": ("hs_email_click", "count"),
    "last_open": ("hs_email_last_open_date", "time"),
    "last_click": ("hs_email_last_click_date", "time"),
}
#: the properties that show HubSpot has emailed the contact
SENT_PROPERTIES = ("hs_email_delivered", "hs_email_last_send_date")
#: every property `contact_engagement` reads
ENGAGEMENT_READ_PROPERTIES = tuple(
    sorted({p for p, _ in EMAIL_PROPERTIES.values()} | set(SENT_PROPERTIES) | {"lifecyclestage"})
)


def _time(raw: Any) -> dt.datetime | None:
    text = str(raw or "").strip()
    if not text:
        return None
    try:
        if text.lstrip("-").isdigit():
            return dt.datetime.fromtimestamp(int(text) / 1000, tz=dt.UTC)
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _count(raw: Any) -> int | None:
    try:
        number = float(str(raw).strip())
    except ValueError:
        return None
    return int(number) if number >= 0 and number.is_integer() else None


def emailed(props: Mapping[str, Any]) -> bool:
    """Whether HubSpot has emailed the contact (a delivery counted, or a last send date)."""
    delivered = _count(props.get("hs_email_delivered")) if props.get("hs_email_delivered") else 0
    return bool(delivered) or _time(props.get("hs_email_last_send_date")) is not None


def contact_engagement(props: Mapping[str, Any]) -> dict[str, Any]:
    """A contact's engagement from its properties; see the module docstring."""
    out: dict[str, Any] = {}
    stage = str(props.get("lifecyclestage") or "").strip()
    if stage:
        out["lifecycle_stage"] = stage
    if not emailed(props):
        return out
    for name, (prop, kind) in EMAIL_PROPERTIES.items():
        raw = props.get(prop)
        if raw in (None, ""):
            continue
        value = _count(raw) if kind == "count" else _time(raw)
        if value is not None:
            out[name] = value
    return out


async def read_engagement_pages(
    search: Any, cursor: str | None, now: dt.datetime, page_size: int, overlap_ms: int = 0
) -> AsyncIterator[EngagementPage]:
    """`read_engagement` over `search(body) -> answer` (POST contacts/search); the cursor is
    the refresh's start in epoch ms (the next refresh starts `overlap_ms` before it: search
    is eventually consistent)."""
    started = round(now.timestamp() * 1000)
    since = max(0, int(cursor) - overlap_ms) if cursor and cursor.isdigit() else None
    last_id = 0
    dates = ("hs_email_last_send_date", "hs_email_last_open_date", "hs_email_last_click_date")
    while True:
        after_id = {"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)}
        if since is None:
            groups = [
                {"filters": [after_id, {"propertyName": p, "operator": "HAS_PROPERTY"}]}
                for p in ("hs_email_last_send_date", "hs_email_delivered")
            ]
        else:
            groups = [
                {"filters": [after_id, {"propertyName": p, "operator": "GTE", "value": str(since)}]}
                for p in dates
            ]
        answer = await search(
            {
                "filterGroups": groups,
                "sorts": ["hs_object_id"],  # ascending (the spec: a property name)
                "properties": list(ENGAGEMENT_READ_PROPERTIES),
                "limit": page_size,
                "after": "0",
            }
        )
        results = answer.get("results") or []
        values = {
            str(r["id"]): found
            for r in results
            if (found := contact_engagement(r.get("properties") or {}))
        }
        if values:
            yield EngagementPage(values=values, cursor=None)
        if len(results) < page_size or (answer.get("paging") or {}).get("next") is None:
            break
        last_id = max(int(r["id"]) for r in results)
    yield EngagementPage(values={}, cursor=str(started))
