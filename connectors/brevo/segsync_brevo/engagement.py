"""Engagement Brevo reports, read-only, as canonical engagement values (absent = no data).

The figures: a contact's `statistics` on `GET /contacts/{id}` (getExtendedContactDetails), the
per-campaign event lists of the last 90 days (Brevo's default window): `delivered` ->
`emails_delivered` (campaigns delivered), the campaigns in `opened` -> `opens` (marketing
emails opened: a campaign opened three times counts once, `opened[].count` is openings), the
campaigns in `clicked` -> `clicks`, the latest `eventTime` of each -> `last_open`,
`last_click`. No data is not zero: a contact with no `messagesSent` and no `delivered` event in
the window (every contact segsync created that no campaign reached) has none, and a refresh
that reads it clears what an earlier one found (events age out of the window).

Brevo gives per-contact events only one contact per call (`GET /contacts` carries no
statistics; campaign recipient exports, `POST /emailCampaigns/{id}/exportRecipients`, give
neither counts nor times and sit on the 100-an-hour family; the webhook history export sends
its link to a `notifyURL`; `/smtp/statistics/events` is transactional email). So the refresh
reads statistics only for the contacts whose figures may have moved since the last one:

1. every list (`GET /contacts/lists`, 50 a page) and, per list, the campaigns sent to it in
   the window with their counters (`GET /contacts/lists/{id}?startDate&endDate`,
   `campaignStats`: sent, delivered, views, clicks, bounces...). A list whose campaigns or
   counters differ from the last refresh's (a send, an open, a click, a campaign leaving the
   window) is *moved*;
2. the contacts (`GET /contacts`, 1000 a page, oldest first, each page starting 50 contacts
   into the previous one; contacts already listed (by id) are dropped, and when the page
   does not start with one already listed, contacts before the offset were deleted since,
   so the offset steps back a page: sign-ups (listed last) and deletions during the refresh
   skip no one);
   a contact's statistics are read when it is in (or unsubscribed from) a moved list, or was
   modified since the last refresh;
3. everyone, on the first refresh and then every `FULL_EVERY` (7 days): activity no list shows
   (campaigns sent to a segment, a contact removed from every list it was emailed through)
   is at most that old.

The cursor (JSON) holds the last refresh's time, the last full read's, and each list's
counters digest. Cost: ceil(L / 50) + L + ceil(N / 950) + R calls (a page a step back for
each page where contacts before the offset were deleted since the last), all on the contacts
family (General plan: 10 a second, 36,000 an hour), L lists, N contacts, R contacts in moved
lists or modified. 100,000 contacts in lists no campaign reached in the window: about 106 + L
calls (seconds); all in one list that a campaign reached and someone opened since the last
refresh: 101,000 + L calls, about 2 h 48 min on General (1 h 24 min on Advanced, 20 a second; 28 min
on Extended, 60 a second); the weekly full read costs the same.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import math
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from segsync.connector import TYPICAL_CALL_SECONDS, EngagementPage, Estimate
from segsync_brevo.segments import BrevoSegments

__all__ = ["BrevoEngagement", "RefreshCursor", "statistics_engagement"]


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
        "opens": len({e.get("campaignId") for e in opened}),
        "clicks": len({c.get("campaignId") for c in stats.get("clicked") or []}),
    }
    last_open = _latest([_time(e.get("eventTime")) for e in opened])
    last_click = _latest([_time(link.get("eventTime")) for link in links])
    if last_open is not None:
        out["last_open"] = last_open
    if last_click is not None:
        out["last_click"] = last_click
    return out


def _utc_param(when: dt.datetime) -> str:
    """A date-time query value as the spec writes it (UTC, YYYY-MM-DDTHH:mm:ss.SSSZ)."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _digest(stats: Any) -> str:
    """A short digest of a list's `campaignStats` (empty: no campaign in the window)."""
    if not stats:
        return ""
    text = json.dumps(stats, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class RefreshCursor:
    """What a Brevo refresh keeps for the next: see the module docstring."""

    at: dt.datetime
    full_at: dt.datetime
    lists: Mapping[str, str]

    def dumps(self) -> str:
        return json.dumps({"at": self.at.isoformat(), "full": self.full_at.isoformat(),
                           "lists": dict(self.lists)}, sort_keys=True)

    @classmethod
    def loads(cls, text: str | None) -> RefreshCursor | None:
        """The cursor `dumps` wrote; None for anything else (an older cursor: a full read)."""
        try:
            data = json.loads(text or "")
            return cls(dt.datetime.fromisoformat(data["at"]),
                       dt.datetime.fromisoformat(data["full"]),
                       {str(k): str(v) for k, v in data["lists"].items()})
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


class BrevoEngagement(BrevoSegments):
    """`read_engagement`: see the module docstring."""

    #: what a refresh costs, for `segsync check` when it is off (see the module docstring)
    engagement_refresh_cost: ClassVar[str] = (
        "it reads each contact's statistics, one call per contact in a list a campaign "
        "reached since the last one: up to about 2 h 48 min per 100,000 contacts at 10 "
        "calls a second"
    )
    #: how often every contact's statistics are read, whatever the lists say
    FULL_EVERY: ClassVar[dt.timedelta] = dt.timedelta(days=7)
    #: the window of a contact's `statistics` (Brevo: the last 90 days)
    WINDOW: ClassVar[dt.timedelta] = dt.timedelta(days=90)
    #: how far before the last refresh a modification counts (Brevo's clock vs ours)
    OVERLAP: ClassVar[dt.timedelta] = dt.timedelta(minutes=5)

    def engagement_estimate(self, contacts: int) -> Estimate:
        """What a full refresh of `contacts` people costs (the first one, then weekly): the
        listing and one statistics call each, paced by the contacts family's windows (the
        lists' calls, a few per list, are left out)."""
        caps = self.capabilities
        calls = 1 + math.ceil(contacts / caps.read_page_size) + contacts
        paced = [calls / w.requests * w.seconds for w in caps.rate_windows
                 if w.scope in ("default", "contacts")]
        answered = calls * TYPICAL_CALL_SECONDS / max(1, caps.max_concurrency)
        return Estimate(contacts=contacts, calls=calls, seconds=max([answered, *paced]),
                        notes=("one GET /contacts/{id} per contact: Brevo has no bulk route "
                               "for per-contact statistics",))

    async def _statistics(self, contact_id: str) -> dict[str, Any]:
        """The contact's engagement (none when it was deleted since it was listed)."""
        response = await self._call(
            "GET",
            f"/contacts/{urllib.parse.quote(contact_id, safe='')}",
            "/contacts/{identifier}",
            params={"identifierType": "contact_id"},
            ok=(404,),
        )
        if response.status_code == 404:
            return {}  # deleted since it was listed: what was read of it before is gone
        return statistics_engagement((response.json() or {}).get("statistics"))

    async def _list_digests(self, now: dt.datetime) -> dict[str, str]:
        """Every list's `campaignStats` digest over the window ending `now`."""
        ids: list[int] = []
        offset = 0
        while True:
            response = await self._call(
                "GET", "/contacts/lists", "/contacts/lists",
                params={"limit": 50, "offset": offset, "sort": "asc"},
            )
            data = response.json() or {}
            page = data.get("lists") or []
            ids += [int(lst["id"]) for lst in page]
            offset += len(page)
            if not page or offset >= int(data.get("count") or 0):
                break
        window = {"startDate": _utc_param(now - self.WINDOW), "endDate": _utc_param(now)}
        width = max(1, self.capabilities.max_concurrency)
        out: dict[str, str] = {}
        for start in range(0, len(ids), width):
            chunk = ids[start : start + width]
            answers = await asyncio.gather(*(
                self._call("GET", f"/contacts/lists/{i}", "/contacts/lists/{listId}",
                           params=window, ok=(404,))
                for i in chunk
            ))
            for list_id, response in zip(chunk, answers, strict=True):
                if response.status_code != 404:  # deleted since listed: its members show it
                    out[str(list_id)] = _digest((response.json() or {}).get("campaignStats"))
        return out

    async def read_engagement(self, cursor: str | None) -> AsyncIterator[EngagementPage]:
        """The statistics of the contacts whose figures may have moved (see the module
        docstring), one page of values per 1000 contacts listed (`{}`: read, no data)."""
        now = self.clock.now().astimezone(dt.UTC)
        last = RefreshCursor.loads(cursor)
        full = last is None or now >= last.full_at + self.FULL_EVERY
        digests = await self._list_digests(now)
        moved = {int(i) for i, d in digests.items() if last is None or d != last.lists.get(i, "")}
        since = None if last is None else last.at - self.OVERLAP

        def due(contact: Mapping[str, Any]) -> bool:
            if full:
                return True
            lists = set(contact.get("listIds") or []) | set(contact.get("listUnsubscribed") or [])
            changed = _time(contact.get("modifiedAt"))
            return bool(lists & moved) or (
                since is not None and (changed is None or changed >= since))

        limit = self.capabilities.read_page_size
        width = max(1, self.capabilities.max_concurrency)
        overlap = min(max(1, limit // 20), limit - 1)  # none for pages of 1: no progress
        seen: set[str] = set()  # ids listed so far (a few MB for 100,000)
        start = 0
        while True:
            response = await self._call(
                "GET",
                "/contacts",
                "/contacts",
                params={"limit": limit, "offset": start, "sort": "asc"},
            )
            data = response.json() or {}
            listed = data.get("contacts") or []
            ids = [str(c.get("id")) for c in listed]
            if start > 0 and ids and ids[0] not in seen:
                # none of the overlap came back: contacts before the offset were deleted
                # since the last page and the listing moved back, so step back, skip no one
                start = max(0, start - limit)
                continue
            due_ids = [i for c, i in zip(listed, ids, strict=True)
                       if i not in seen and c.get("email") and due(c)]
            seen.update(ids)
            values: dict[str, dict[str, Any]] = {}
            for begin in range(0, len(due_ids), width):
                chunk = due_ids[begin : begin + width]
                found = await asyncio.gather(*(self._statistics(i) for i in chunk))
                values.update(zip(chunk, found, strict=True))
            if values:
                yield EngagementPage(values=values, cursor=None)
            if len(listed) < limit:
                break
            start += len(listed) - overlap
        yield EngagementPage(values={}, cursor=RefreshCursor(
            now, now if full or last is None else last.full_at, digests).dumps())
