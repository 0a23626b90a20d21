"""Engagement Brevo reports, read-only, as canonical engagement values (absent = no data).

The route: a contact's `statistics` on `GET /contacts/{id}` (getExtendedContactDetails), the
per-campaign event lists of the last 90 days (Brevo's default window): `delivered` ->
`emails_delivered` (campaigns delivered), `opened[].count` summed -> `opens`,
`clicked[].links[].count` summed -> `clicks`, the latest `eventTime` of each -> `last_open`,
`last_click`. `GET /contacts` (the list `read` pages) carries no statistics, so this is one
call per contact; the documented alternatives cost more or say less: campaign recipient
exports (`POST /emailCampaigns/{id}/exportRecipients`, one per campaign and recipient type,
then `GET /processes/{id}` and a CSV download, on the 100-an-hour family of the General plan,
and no event times), the webhook history export (`POST /webhooks/export`: its CSV link goes
to a `notifyURL` segsync does not serve), `/smtp/statistics/events` (transactional email
only).

No data is not zero: a contact with no `messagesSent` and no `delivered` event in the window
(every contact segsync created that no campaign reached) contributes nothing.

`read_engagement`: `GET /contacts` 1000 a page for the ids, then `GET /contacts/{id}` for
each, `max_concurrency` at a time. Cost: N + ceil(N / 1000) calls on the contacts family
(General plan: 10 a second, 36,000 an hour): 100,000 contacts take 101,000 calls, about
2 h 48 min. Each refresh reads the figures whole (they are window totals).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from typing import Any

from segsync.connector import EngagementPage
from segsync_brevo.segments import BrevoSegments

__all__ = ["BrevoEngagement", "statistics_engagement"]


def _time(raw: Any) -> dt.datetime | None:
    text = str(raw or "").strip()
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _latest(times: list[dt.datetime | None]) -> dt.datetime | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _int(raw: Any) -> int:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0 else 0


def statistics_engagement(statistics: Mapping[str, Any] | None) -> dict[str, Any]:
    """A contact's engagement from its `statistics`; see the module docstring."""
    stats = statistics or {}
    delivered = stats.get("delivered") or []
    if not (stats.get("messagesSent") or delivered):
        return {}  # no campaign reached the contact in the window: no data
    opened = stats.get("opened") or []
    links = [link for c in stats.get("clicked") or [] for link in c.get("links") or []]
    out: dict[str, Any] = {
        "emails_delivered": len({e.get("campaignId") for e in delivered}),
        "opens": sum(_int(e.get("count")) for e in opened),
        "clicks": sum(_int(link.get("count")) for link in links),
    }
    last_open = _latest([_time(e.get("eventTime")) for e in opened])
    last_click = _latest([_time(link.get("eventTime")) for link in links])
    if last_open is not None:
        out["last_open"] = last_open
    if last_click is not None:
        out["last_click"] = last_click
    return out


class BrevoEngagement(BrevoSegments):
    """`read_engagement`: see the module docstring."""

    async def _statistics(self, contact_id: str) -> dict[str, Any]:
        response = await self._call(
            "GET",
            f"/contacts/{urllib.parse.quote(contact_id, safe='')}",
            "/contacts/{identifier}",
            params={"identifierType": "contact_id"},
            ok=(404,),
        )
        if response.status_code == 404:
            return {}  # deleted since it was listed
        return statistics_engagement((response.json() or {}).get("statistics"))

    async def read_engagement(self, cursor: str | None) -> AsyncIterator[EngagementPage]:
        """Every contact's statistics, one page of values per 1000 contacts; the cursor is
        the refresh's start (each refresh reads the window's figures whole)."""
        started = self.clock.now().astimezone(dt.UTC).isoformat()
        offset = 0
        limit = self.capabilities.read_page_size
        width = max(1, self.capabilities.max_concurrency)
        while True:
            response = await self._call(
                "GET",
                "/contacts",
                "/contacts",
                params={"limit": limit, "offset": offset, "sort": "asc"},
            )
            data = response.json() or {}
            ids = [str(c["id"]) for c in data.get("contacts") or [] if c.get("email")]
            values: dict[str, dict[str, Any]] = {}
            for start in range(0, len(ids), width):
                chunk = ids[start : start + width]
                found = await asyncio.gather(*(self._statistics(i) for i in chunk))
                values.update({i: v for i, v in zip(chunk, found, strict=True) if v})
            if values:
                yield EngagementPage(values=values, cursor=None)
            offset += len(data.get("contacts") or [])
            if not data.get("contacts") or offset >= int(data.get("count") or 0):
                break
        yield EngagementPage(values={}, cursor=started)
