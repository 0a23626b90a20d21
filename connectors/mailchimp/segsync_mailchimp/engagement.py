"""Engagement Mailchimp reports, read-only, as canonical engagement values (absent = no data).

A member record (`read`) carries `stats` {avg_open_rate, avg_click_rate}, `member_rating`,
`timestamp_signup`, `timestamp_opt`, `ip_opt` and `source`. Mailchimp fills `stats` with 0.0
and `member_rating` with 2 for a member that was never emailed (every member segsync creates),
and `timestamp_opt` with the write time of an API opt-in, so these are gated:

- `open_rate`, `click_rate`, `member_rating` are reported only once the member has been emailed:
  in `read`, when a rate is above 0 (an open or click proves a send); in `read_engagement`,
  when a sent campaign's email activity lists the member (it lists every recipient);
- `opted_in_at` (`timestamp_opt`) only with opt-in evidence beyond an API write: an `ip_opt`,
  or a `source` that is not an API source (a form, an import by a person);
- `signup_at` (`timestamp_signup`) whenever set; `signup_source` (`source`) unless it is an
  API source with no sign-up time or IP (what an API write, segsync's copy, leaves).

`read_engagement` (values that change without moving `last_changed`) keeps, in its cursor,
what the campaigns' email activity showed so far, and reads again only what may have moved:

1. the audience's sent campaigns (`GET /campaigns?list_id&status=sent`, with `emails_sent`);
2. each campaign's email activity (`GET /reports/{id}/email-activity`): a campaign not read
   before, whole (it lists every recipient); one read before, only the recipients with an
   action after its last read less `OVERLAP` (1 h, for clock skew and reporting lag:
   `since`, which gives those actions only). Per member it is tallied into
   `emails_delivered` (campaigns received less those that bounced), `opens` and `clicks`
   (campaigns opened / clicked: an email opened three times counts once, as in Mailchimp's
   `avg_open_rate`), `last_open`, `last_click`. Every figure is a set or a latest time, so
   an action read twice (the overlap, a page read again) counts once;
3. the members' `stats` and `member_rating` (`GET /lists/{id}/members?fields=...`): read
   whole every refresh (a rate moves with every send and open; no filter gives the moved).

The cursor (JSON) holds the audience, the refresh's time, the last full read's, per campaign
the time its activity was read up to and its `emails_sent`, and per member (subscriber hash)
the count of campaigns received and the sorted ordinals of the campaigns it opened, clicked
and bounced in, with its latest open and click, zlib-compressed: about 28 bytes a member,
2.9 MB at 100,000 (`bench/engagement_cost.py`). It grows with the actions Mailchimp keeps and
is rebuilt by every full read. Everything is read whole (a full read) on the first refresh,
every `FULL_EVERY` (7 days), and when what a `since` read cannot see happened: a campaign gone
from the listing (deleted: its actions must leave the tallies), a campaign whose `emails_sent`
changed (recipients added: `since` shows actions, not sends), another audience, a cursor not
of this format. Assumed, not verified on Mailchimp: a sent campaign's recipients are fixed,
and an action shows in the report within `OVERLAP` of its time; what breaks either is right
again at the next full read, at most `FULL_EVERY` later. A bounce after the campaign was read
is an action like an open (`since` shows it), so it turns a delivery into a bounce
incrementally. Archived members are left out by the members' listing (their tallies stay: an
archived member who comes back has its history); an erased member's tallies leave at the
next full read once Mailchimp stops listing it.

Campaigns' reports are read `max_concurrency` (10 connections) at a time, each paged. Each
listing is paged by offset, every page after the first starting one item into the previous
one, so an item that leaves the listing between two pages (a member archived) skips no one
(`_all_pages`); an item that enters a `since` listing between two pages (a new action) may be
missed by this refresh and is read by the next (its time is after this refresh began). A
listing of n items takes `listing_calls(n)` = max(1, ceil((n - 1) / 999)) calls. Cost, C
campaigns, R_c recipients of campaign c, A_c recipients with an action since its last read
(less the overlap), M members, L = `listing_calls`:

- full read: L(C) + sum over campaigns of L(R_c) + L(M);
- later refreshes: L(C) + sum over campaigns read before of L(A_c) + sum over new campaigns
  of L(R_c) + L(M): L(C) + C + new campaigns' pages + L(M) while at most 1000 recipients of
  a campaign act between two refreshes. At 100,000 members and 50 campaigns to all: 5,152
  calls for a full read (about 10 min at 1 s a call, 10 connections), 152 for a later one
  (about 2 min: the members' 101 pages, one after another).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import dataclasses
import datetime as dt
import json
import logging
import math
import zlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from segsync.connector import TYPICAL_CALL_SECONDS, EngagementPage, Estimate
from segsync_mailchimp.api import MAX_PAGE, iso_time, parse_time, path_segment
from segsync_mailchimp.audience import MailchimpAudience

__all__ = [
    "EMAILED_KEYS",
    "ActivityTally",
    "MailchimpEngagement",
    "MemberActivity",
    "RefreshCursor",
    "gate_member_engagement",
    "listing_calls",
    "member_location",
]

log = logging.getLogger("segsync.mailchimp.engagement")

#: the format of the refresh cursor (another: a full read)
CURSOR_VERSION = 1

#: items each page re-reads of the previous one, to notice items that left the listing
PAGE_OVERLAP = 1

#: engagement values Mailchimp reports as 0 / 2 for a member never emailed: kept only with
#: evidence of a send
EMAILED_KEYS = frozenset({"open_rate", "click_rate", "member_rating"})


def _is_api_source(source: Any) -> bool:
    return not source or str(source).strip().lower().startswith("api")


def _time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if not value:
        return None
    try:
        return parse_time(str(value))
    except ValueError:
        return None


def gate_member_engagement(
    record: Mapping[str, Any], found: Mapping[str, Any], *, emailed: bool | None = None
) -> dict[str, Any]:
    """`found` (values read from a member record by path) less what Mailchimp fabricates:
    see the module docstring. `emailed` is what the caller knows of a send (None: unknown,
    then a rate above 0 is the evidence)."""
    out = {k: v for k, v in found.items() if v not in (None, "")}
    stats = record.get("stats") or {}
    if emailed is None:
        emailed = any(
            isinstance(stats.get(k), int | float) and stats[k] > 0
            for k in ("avg_open_rate", "avg_click_rate")
        )
    if not emailed:
        for key in EMAILED_KEYS:
            out.pop(key, None)
    if "opted_in_at" in out and not record.get("ip_opt") and _is_api_source(record.get("source")):
        out.pop("opted_in_at")
    if (
        "signup_source" in out
        and _is_api_source(record.get("source"))
        and not (record.get("timestamp_signup") or record.get("ip_signup"))
    ):
        out.pop("signup_source")  # an API write (segsync's own copy) says nothing of a sign-up
    for key in ("signup_at", "opted_in_at", "last_open", "last_click"):
        if key in out:
            when = _time(out[key])
            if when is None:
                out.pop(key)
            else:
                out[key] = when.astimezone(dt.UTC)
    return out


def member_location(record: Mapping[str, Any]) -> dict[str, Any]:
    """The member's `location.country_code` and `location.timezone` where set (else none)."""
    location = record.get("location") or {}
    out = {}
    for key in ("country_code", "timezone"):
        value = location.get(key)
        if isinstance(value, str) and value.strip():
            out[key] = value.strip().upper() if key == "country_code" else value.strip()
    return out


def listing_calls(items: int, page: int | None = None) -> int:
    """The calls `_all_pages` takes for a listing of `items` that does not move, `page` (1000)
    a page: the first page, then `page - PAGE_OVERLAP` new items a page."""
    size = MAX_PAGE if page is None else page
    step = max(1, size - min(PAGE_OVERLAP, size - 1))
    return 1 if items <= size else 1 + math.ceil((items - size) / step)


def _stamp(when: dt.datetime | None) -> int | str | None:
    """A time as the cursor keeps it: POSIX seconds (Mailchimp's times are to the second),
    else ISO text."""
    if when is None:
        return None
    return int(when.timestamp()) if when.microsecond == 0 else when.isoformat()


def _unstamp(raw: Any) -> dt.datetime | None:
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return dt.datetime.fromtimestamp(raw, dt.UTC)
    if isinstance(raw, str):
        return dt.datetime.fromisoformat(raw).astimezone(dt.UTC)
    raise ValueError(f"not a time: {raw!r}")


def _mark(ordinals: list[int], ordinal: int) -> None:
    """Add `ordinal` to the sorted list once."""
    at = bisect.bisect_left(ordinals, ordinal)
    if at == len(ordinals) or ordinals[at] != ordinal:
        ordinals.insert(at, ordinal)


@dataclasses.dataclass(slots=True)
class MemberActivity:
    """What the campaigns' email activity showed of one member: how many campaigns it
    received, the (sorted) ordinals of those it opened, clicked and bounced in, its latest
    open and click."""

    received: int = 0
    opened: list[int] = dataclasses.field(default_factory=list)
    clicked: list[int] = dataclasses.field(default_factory=list)
    bounced: list[int] = dataclasses.field(default_factory=list)
    last_open: dt.datetime | None = None
    last_click: dt.datetime | None = None


class ActivityTally:
    """Per member (subscriber hash) what the email activity read so far shows; campaigns are
    named by ordinal (`campaigns[i]` is campaign i's id). Adding an action already counted
    changes nothing, so a tally can be carried from one refresh to the next."""

    def __init__(self) -> None:
        self.campaigns: list[str] = []
        self.members: dict[str, MemberActivity] = {}
        self._ordinals: dict[str, int] = {}

    def ordinal(self, campaign_id: str) -> int:
        """The campaign's ordinal (a new one for a campaign not seen)."""
        found = self._ordinals.get(campaign_id)
        if found is None:
            found = self._ordinals[campaign_id] = len(self.campaigns)
            self.campaigns.append(campaign_id)
        return found

    def knows(self, campaign_id: str) -> bool:
        return campaign_id in self._ordinals

    def add(self, entry: Mapping[str, Any], ordinal: int, *, whole: bool) -> None:
        """One `emails[]` item of campaign `ordinal`'s report. `whole`: the report was read
        without `since`, so the item is a recipient (received once); either way its actions
        mark the campaign opened / clicked / bounced for the member, once."""
        member = str(entry.get("email_id") or "")
        if not member:
            return
        found = self.members.get(member)
        if found is None:
            found = self.members[member] = MemberActivity()
        if whole:
            found.received += 1
        for action in entry.get("activity") or []:
            kind = action.get("action")
            when = _time(action.get("timestamp"))
            when = when.astimezone(dt.UTC) if when is not None else None
            if kind == "open":
                _mark(found.opened, ordinal)
                if when is not None and (found.last_open is None or when > found.last_open):
                    found.last_open = when
            elif kind == "click":
                _mark(found.clicked, ordinal)
                if when is not None and (found.last_click is None or when > found.last_click):
                    found.last_click = when
            elif kind == "bounce":
                _mark(found.bounced, ordinal)

    def values(self, member: str) -> dict[str, Any]:
        """The member's tallied engagement (empty when no campaign was sent to it)."""
        found = self.members.get(member)
        if found is None or found.received == 0:
            return {}
        out: dict[str, Any] = {
            "emails_delivered": max(0, found.received - len(found.bounced)),
            "opens": len(found.opened),
            "clicks": len(found.clicked),
        }
        if found.last_open is not None:
            out["last_open"] = found.last_open
        if found.last_click is not None:
            out["last_click"] = found.last_click
        return out

    def dumps(self) -> str:
        """The members' part, compact: zlib-compressed JSON rows, base64."""
        rows = [
            [h, m.received, m.opened, m.clicked, m.bounced, _stamp(m.last_open),
             _stamp(m.last_click)]
            for h, m in sorted(self.members.items())
        ]
        raw = json.dumps(rows, separators=(",", ":")).encode()
        return base64.b64encode(zlib.compress(raw, 9)).decode("ascii")

    @classmethod
    def loads(cls, campaigns: list[str], members: str) -> ActivityTally:
        """The tally `dumps` wrote, campaigns by ordinal (ValueError when it is not one)."""
        tally = cls()
        for campaign_id in campaigns:
            tally.ordinal(campaign_id)
        if len(tally.campaigns) != len(campaigns):
            raise ValueError("a campaign twice")
        try:
            rows = json.loads(zlib.decompress(base64.b64decode(members, validate=True)))
        except (zlib.error, binascii.Error) as exc:
            raise ValueError(str(exc)) from None
        limit = len(campaigns)
        for h, received, opened, clicked, bounced, last_open, last_click in rows:
            opens, clicks, bounces = (sorted({int(o) for o in m})
                                      for m in (opened, clicked, bounced))
            if any(o < 0 or o >= limit for m in (opens, clicks, bounces) for o in m):
                raise ValueError("a campaign ordinal out of range")
            tally.members[str(h)] = MemberActivity(
                int(received), opens, clicks, bounces, _unstamp(last_open), _unstamp(last_click)
            )
        return tally


@dataclasses.dataclass
class RefreshCursor:
    """What a refresh keeps for the next (see the module docstring): the audience, its time,
    the last full read's, per campaign the time read up to and `emails_sent`, the tally."""

    list_id: str
    at: dt.datetime
    full_at: dt.datetime
    read_to: dict[str, dt.datetime]
    sent: dict[str, int | None]
    tally: ActivityTally

    def dumps(self) -> str:
        campaigns = [[c, self.read_to[c].isoformat(), self.sent.get(c)]
                     for c in self.tally.campaigns]
        return json.dumps({
            "v": CURSOR_VERSION, "list": self.list_id, "at": self.at.isoformat(),
            "full": self.full_at.isoformat(), "campaigns": campaigns,
            "members": self.tally.dumps(),
        }, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str | None) -> RefreshCursor | None:
        """The cursor `dumps` wrote; None for anything else (an older cursor: a full read)."""
        try:
            data = json.loads(text or "")
            if data["v"] != CURSOR_VERSION:
                return None
            campaigns = [(str(c), dt.datetime.fromisoformat(t), None if s is None else int(s))
                         for c, t, s in data["campaigns"]]
            return cls(
                str(data["list"]),
                dt.datetime.fromisoformat(data["at"]),
                dt.datetime.fromisoformat(data["full"]),
                {c: t for c, t, _ in campaigns},
                {c: s for c, _, s in campaigns},
                ActivityTally.loads([c for c, _, _ in campaigns], str(data["members"])),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


class MailchimpEngagement(MailchimpAudience):
    """`read_engagement`: see the module docstring."""

    #: how often every campaign's activity is read whole, whatever the cursor holds
    FULL_EVERY: ClassVar[dt.timedelta] = dt.timedelta(days=7)
    #: how far before a campaign's last read its next `since` starts (clocks, report lag)
    OVERLAP: ClassVar[dt.timedelta] = dt.timedelta(hours=1)

    def engagement_estimate(self, contacts: int) -> Estimate:
        """What a refresh of `contacts` members costs, campaigns not counted: the campaign
        listing and the members' pages (each campaign adds `listing_calls(recipients)` on a
        full read, about one call on a later refresh)."""
        calls = 1 + listing_calls(contacts)
        seconds = calls * TYPICAL_CALL_SECONDS / max(1, self.capabilities.max_concurrency)
        return Estimate(contacts=contacts, calls=calls, seconds=seconds,
                        notes=("plus, per sent campaign, listing_calls(recipients) (about "
                               "recipients / 999) on the first refresh and weekly, about one "
                               "call on later ones",))

    async def _all_pages(
        self, path: str, key: str, endpoint: str, **params: Any
    ) -> AsyncIterator[list[Any]]:
        """Every item of an offset-paged listing, each once, though items leave it between
        pages: each page after the first starts `PAGE_OVERLAP` items early, and when none
        of those was seen (items left before the offset, so the listing moved back) it
        steps back a page until it meets one (items already yielded are dropped by `id` or
        `email_id`; ids are kept for the listing's length)."""
        seen: set[str] = set()
        offset = 0  # where the next unseen item should be
        start = 0
        while True:
            page = await self.client.get_json(
                path, endpoint=endpoint, params={**params, "count": MAX_PAGE, "offset": start}
            )
            batch = page.get(key) or []
            ids = [str(item.get("id") or item.get("email_id") or "") for item in batch]
            if start > 0 and ids and ids[0] and ids[0] not in seen:
                start = max(0, start - MAX_PAGE)  # the listing moved back: no gap allowed
                continue
            fresh = [item for item, i in zip(batch, ids, strict=True) if not i or i not in seen]
            seen.update(ids)
            if fresh:
                yield fresh
            offset = start + len(batch)
            if len(batch) < MAX_PAGE or offset >= int(page.get("total_items", 0)):
                return
            start = max(0, offset - min(PAGE_OVERLAP, len(batch) - 1))

    async def _sent_campaigns(self) -> dict[str, int | None]:
        """The audience's sent campaigns, oldest first: id -> `emails_sent`."""
        found: dict[str, int | None] = {}
        async for campaigns in self._all_pages(
            "/campaigns",
            "campaigns",
            "GET /campaigns",
            list_id=self.config.list_id,
            status="sent",
            sort_field="send_time",
            sort_dir="ASC",
            fields="campaigns.id,campaigns.send_time,campaigns.emails_sent,total_items",
        ):
            for campaign in campaigns:
                sent = campaign.get("emails_sent")
                found[str(campaign["id"])] = sent if isinstance(sent, int) else None
        return found

    async def _tally_activity(
        self, tally: ActivityTally, campaign_id: str, since: dt.datetime | None
    ) -> None:
        """Add a campaign's email activity to `tally`: every recipient with its actions, or
        (`since`) the recipients with actions after `since`, those actions only."""
        ordinal = tally.ordinal(campaign_id)
        params = {"exclude_fields": "emails._links,_links"}
        if since is not None:
            params["since"] = iso_time(since)
        async for emails in self._all_pages(
            f"/reports/{path_segment(campaign_id)}/email-activity",
            "emails",
            "GET /reports/{id}/email-activity",
            **params,
        ):
            for entry in emails:
                tally.add(entry, ordinal, whole=since is None)

    def _since(self, read_to: dt.datetime) -> dt.datetime:
        """The `since` of a campaign read up to `read_to`: `OVERLAP` earlier, to the second
        below, less one second (`since` is exclusive and Mailchimp's times are to the
        second), so every action at or after `read_to - OVERLAP` is listed."""
        return (read_to - self.OVERLAP).replace(microsecond=0) - dt.timedelta(seconds=1)

    def _full_read_reason(
        self, last: RefreshCursor | None, listed: Mapping[str, int | None], now: dt.datetime
    ) -> str | None:
        """Why this refresh must read every campaign whole (None: it need not)."""
        if last is None:
            return "no cursor of this format"
        if last.list_id != self.config.list_id:
            return "another audience"
        if now >= last.full_at + self.FULL_EVERY or now < last.at:
            return "the periodic full read"
        gone = [c for c in last.tally.campaigns if c not in listed]
        if gone:
            return f"{len(gone)} campaign(s) no longer listed"
        moved = [c for c in last.tally.campaigns if listed[c] != last.sent.get(c)]
        if moved:
            return f"{len(moved)} campaign(s) whose emails_sent changed"
        return None

    async def read_engagement(self, cursor: str | None) -> AsyncIterator[EngagementPage]:
        """Every emailed member's engagement, 1000 members a page; the cursor is what the
        next refresh reads from (see the module docstring)."""
        now = self.clock.now().astimezone(dt.UTC)
        last = RefreshCursor.loads(cursor)
        listed = await self._sent_campaigns()
        reason = self._full_read_reason(last, listed, now)
        if reason is not None or last is None:
            log.debug("mailchimp engagement: a full read (%s)", reason)
            tally, read_to, full_at = ActivityTally(), {}, now
        else:
            tally, read_to, full_at = last.tally, last.read_to, last.full_at
        jobs = [(c, self._since(read_to[c]) if tally.knows(c) else None) for c in listed]
        for campaign_id, _ in jobs:
            tally.ordinal(campaign_id)  # ordinals in listing order, before any task runs
        gate = asyncio.Semaphore(max(1, self.capabilities.max_concurrency))

        async def one(campaign_id: str, since: dt.datetime | None) -> None:
            async with gate:
                await self._tally_activity(tally, campaign_id, since)

        tasks = [asyncio.ensure_future(one(c, since)) for c, since in jobs]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        state = RefreshCursor(self.config.list_id, now, full_at,
                              dict.fromkeys(listed, now), dict(listed), tally)
        if not listed:  # nothing sent: no member was emailed, none has engagement
            yield EngagementPage(values={}, cursor=state.dumps())
            return
        async for members in self._all_pages(
            self._list_path + "/members",
            "members",
            "GET /lists/{id}/members",
            fields="members.id,members.contact_id,members.stats,members.member_rating,total_items",
        ):
            values: dict[str, dict[str, Any]] = {}
            for record in members:
                member = str(record["id"])
                sent = tally.values(member)
                if not sent:
                    continue  # never emailed: no data (Mailchimp's 0.0 and rating 2 are not)
                stats = record.get("stats") or {}
                found = {
                    "open_rate": stats.get("avg_open_rate"),
                    "click_rate": stats.get("avg_click_rate"),
                    "member_rating": record.get("member_rating"),
                }
                values[str(record.get("contact_id") or member)] = {  # the platform id
                    **{k: v for k, v in found.items() if isinstance(v, int | float)},
                    **sent,
                }
            if values:
                yield EngagementPage(values=values, cursor=None)
        yield EngagementPage(values={}, cursor=state.dumps())
