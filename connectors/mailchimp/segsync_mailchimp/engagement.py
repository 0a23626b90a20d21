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

`read_engagement` (values that change without moving `last_changed`): the audience's sent
campaigns (`GET /campaigns?list_id&status=sent`, 1000 a page), each campaign's email activity
(`GET /reports/{id}/email-activity`, 1000 recipients a page) tallied per member into
`emails_delivered` (sends less bounces), `opens` and `clicks` (campaigns opened / clicked: an
email opened three times counts once, as in Mailchimp's `avg_open_rate`), `last_open`,
`last_click`, then
the members' `stats` and `member_rating` (`GET /lists/{id}/members?fields=...`, 1000 a page).
Campaigns are read `max_concurrency` (10 connections) at a time. Each listing is paged by
offset, every page after the first starting one item into the previous one, so an item that
leaves the listing between two pages (a member archived) skips no one (`_all_pages`): a
listing of n items takes about ceil(n/999) calls. Cost: ceil(C/999) + sum over campaigns of
ceil(recipients/999) + ceil(M/999) calls. Each refresh reads the totals whole (the `since`
filter of the report gives only new actions, not totals).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import math
from collections.abc import AsyncIterator, Mapping
from typing import Any

from segsync.connector import TYPICAL_CALL_SECONDS, EngagementPage, Estimate
from segsync_mailchimp.api import MAX_PAGE, iso_time, parse_time, path_segment
from segsync_mailchimp.audience import MailchimpAudience

__all__ = [
    "EMAILED_KEYS",
    "ActivityTally",
    "MailchimpEngagement",
    "gate_member_engagement",
    "member_location",
]

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


@dataclasses.dataclass
class ActivityTally:
    """Per member (subscriber hash) totals over the campaigns' email activity read."""

    delivered: dict[str, int] = dataclasses.field(default_factory=dict)
    opens: dict[str, int] = dataclasses.field(default_factory=dict)
    clicks: dict[str, int] = dataclasses.field(default_factory=dict)
    last_open: dict[str, dt.datetime] = dataclasses.field(default_factory=dict)
    last_click: dict[str, dt.datetime] = dataclasses.field(default_factory=dict)

    def add(self, entry: Mapping[str, Any]) -> None:
        """One `emails[]` item of an email-activity report: the member was sent the campaign
        (delivered unless it bounced), opened and clicked once however many actions it shows."""
        member = str(entry.get("email_id") or "")
        if not member:
            return
        actions = entry.get("activity") or []
        bounced = any(a.get("action") == "bounce" for a in actions)
        self.delivered[member] = self.delivered.get(member, 0) + (0 if bounced else 1)
        kinds = {a.get("action") for a in actions}
        if "open" in kinds:
            self.opens[member] = self.opens.get(member, 0) + 1
        if "click" in kinds:
            self.clicks[member] = self.clicks.get(member, 0) + 1
        for action in actions:
            kind = action.get("action")
            when = _time(action.get("timestamp"))
            if when is None:
                continue
            if kind == "open" and (member not in self.last_open or when > self.last_open[member]):
                self.last_open[member] = when.astimezone(dt.UTC)
            elif kind == "click" and (
                member not in self.last_click or when > self.last_click[member]
            ):
                self.last_click[member] = when.astimezone(dt.UTC)

    def values(self, member: str) -> dict[str, Any]:
        """The member's tallied engagement (empty when no campaign was sent to it)."""
        if member not in self.delivered:
            return {}
        out: dict[str, Any] = {
            "emails_delivered": self.delivered[member],
            "opens": self.opens.get(member, 0),
            "clicks": self.clicks.get(member, 0),
        }
        if member in self.last_open:
            out["last_open"] = self.last_open[member]
        if member in self.last_click:
            out["last_click"] = self.last_click[member]
        return out


class MailchimpEngagement(MailchimpAudience):
    """`read_engagement`: see the module docstring."""

    def engagement_estimate(self, contacts: int) -> Estimate:
        """What a refresh of `contacts` members costs, campaigns not counted (each adds
        ceil(recipients / 1000) calls): the campaign listing and the members' pages."""
        calls = 1 + math.ceil(contacts / MAX_PAGE)
        seconds = calls * TYPICAL_CALL_SECONDS / max(1, self.capabilities.max_concurrency)
        return Estimate(contacts=contacts, calls=calls, seconds=seconds,
                        notes=("plus ceil(recipients / 1000) calls per sent campaign",))

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

    async def _activity(self, campaign_id: str) -> list[Mapping[str, Any]]:
        """Every recipient of a campaign with its actions (`emails[]`)."""
        entries: list[Mapping[str, Any]] = []
        async for emails in self._all_pages(
            f"/reports/{path_segment(campaign_id)}/email-activity",
            "emails",
            "GET /reports/{id}/email-activity",
            exclude_fields="emails._links,_links",
        ):
            entries += emails
        return entries

    async def read_engagement(self, cursor: str | None) -> AsyncIterator[EngagementPage]:
        """Every emailed member's engagement, 1000 members a page; the cursor is the time
        the refresh started (each refresh reads the figures whole: they are totals)."""
        started = iso_time(self.clock.now())
        tally = ActivityTally()
        campaign_ids: list[str] = []
        async for campaigns in self._all_pages(
            "/campaigns",
            "campaigns",
            "GET /campaigns",
            list_id=self.config.list_id,
            status="sent",
            sort_field="send_time",
            sort_dir="ASC",
            fields="campaigns.id,campaigns.send_time,total_items",
        ):
            campaign_ids += [str(c["id"]) for c in campaigns]
        if not campaign_ids:  # nothing sent: no member was emailed, none has engagement
            yield EngagementPage(values={}, cursor=started)
            return
        width = max(1, self.capabilities.max_concurrency)
        for start in range(0, len(campaign_ids), width):
            chunk = campaign_ids[start : start + width]
            for entries in await asyncio.gather(*(self._activity(c) for c in chunk)):
                for entry in entries:
                    tally.add(entry)
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
        yield EngagementPage(values={}, cursor=started)
