"""Campaign sends, opens and clicks in the emulated Mailchimp (the API cannot write these).

Test hooks (no HTTP): `record_engagement` (the hook every emulator shares,
`segsync.emulator.base.EngagementHook`) and, below it, `record_campaign` (a sent campaign to
an audience), `record_send`, `record_open`, `record_click`, `record_bounce` (one member's
activity at a time). Each moves the
member's `stats` (avg_open_rate, avg_click_rate: campaigns opened / clicked over campaigns
received) but never `last_changed`, as Mailchimp does. Routes, as the spec shapes them:
`GET /campaigns` (`list_id`, `status`, `since_send_time`, `before_send_time`, `sort_field`,
`sort_dir`, `count` <= 1000, `offset`) -> {campaigns, total_items}; `GET /reports/{id}/
email-activity` (`since`, `count`, `offset`) -> {emails: [{campaign_id, list_id,
list_is_active, email_id, email_address, activity: [{action, type, timestamp, url, ip}]}],
campaign_id, total_items}: every recipient of the campaign (by subscriber hash), with `since`
only those with an action strictly after it, and only those actions. A time parameter that is
not an ISO 8601 time is a 400 naming it (never ignored).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from segsync_mailchimp.api import iso_time, parse_time, subscriber_hash
from segsync_mailchimp.emulator.routes import MailchimpRoutes
from segsync_mailchimp.emulator.state import invalid, not_found, schema_invalid

__all__ = ["Campaign", "MailchimpActivityRoutes"]


@dataclasses.dataclass
class Campaign:
    id: str
    list_id: str
    send_time: dt.datetime
    web_id: int
    #: subscriber hash -> (email as sent, actions in order)
    recipients: dict[str, tuple[str, list[dict[str, Any]]]] = dataclasses.field(
        default_factory=dict
    )


def _time_param(query: Mapping[str, str], name: str) -> dt.datetime | None:
    """The query's ISO 8601 time `name` (None when absent); a 400 naming it when malformed."""
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_time(raw)
    except ValueError:
        raise schema_invalid(name, "Invalid date-time format") from None


class MailchimpActivityRoutes(MailchimpRoutes):
    """Campaign activity state, its test hooks and its two read routes."""

    @property
    def campaigns(self) -> dict[str, Campaign]:
        """Sent campaigns by id (created on first use)."""
        found: dict[str, Campaign] | None = getattr(self, "_campaigns", None)
        if found is None:
            found = {}
            self._campaigns = found
        return found

    # -- test hooks -------------------------------------------------------------------------

    def record_campaign(
        self, *, list_id: str | None = None, sent_at: dt.datetime | None = None
    ) -> str:
        """A campaign sent to an audience (no recipients yet); its id."""
        lid = list_id or self.default_list_id
        if lid not in self.lists:
            raise KeyError(lid)
        web_id = next(self._ids)
        cid = f"c{web_id:09x}"
        self.campaigns[cid] = Campaign(cid, lid, sent_at or self.clock.now(), web_id)
        return cid

    def _recipient(self, email: str, campaign_id: str) -> tuple[str, list[dict[str, Any]]]:
        campaign = self.campaigns[campaign_id]
        h = subscriber_hash(email)
        if h not in campaign.recipients:
            raise KeyError(f"{email} was not sent campaign {campaign_id}")
        return campaign.recipients[h]

    def record_send(self, email: str, campaign_id: str) -> None:
        """`campaign_id` was sent to the member `email` (of the campaign's audience)."""
        campaign = self.campaigns[campaign_id]
        member = self.lists[campaign.list_id].members.get(subscriber_hash(email))
        if member is None:
            raise KeyError(email)
        campaign.recipients.setdefault(member.id, (member.email_address, []))
        self._restat(campaign.list_id, member.id)

    def _act(self, email: str, campaign_id: str, action: dict[str, Any]) -> None:
        _, actions = self._recipient(email, campaign_id)
        actions.append(action)
        self._restat(self.campaigns[campaign_id].list_id, subscriber_hash(email))

    def record_open(self, email: str, campaign_id: str, *, at: dt.datetime | None = None) -> None:
        """The member opened the campaign at `at` (now)."""
        when = iso_time(at or self.clock.now())
        self._act(email, campaign_id, {"action": "open", "timestamp": when, "ip": "198.51.100.7"})

    def record_click(
        self,
        email: str,
        campaign_id: str,
        *,
        at: dt.datetime | None = None,
        url: str = "https://example.com/",
    ) -> None:
        """The member clicked `url` in the campaign at `at` (now)."""
        when = iso_time(at or self.clock.now())
        self._act(
            email,
            campaign_id,
            {"action": "click", "timestamp": when, "url": url, "ip": "198.51.100.7"},
        )

    def record_bounce(
        self, email: str, campaign_id: str, *, hard: bool = True, at: dt.datetime | None = None
    ) -> None:
        """The campaign bounced for the member (activity only; `bounce()` cleans it)."""
        when = iso_time(at or self.clock.now())
        kind = "hard" if hard else "soft"
        self._act(email, campaign_id, {"action": "bounce", "type": kind, "timestamp": when})

    def _restat(self, list_id: str, member_hash: str) -> None:
        """The member's stats from the campaigns it received; `last_changed` stays."""
        member = self.lists[list_id].members.get(member_hash)
        if member is None:
            return
        received = opened = clicked = 0
        for campaign in self.campaigns.values():
            if campaign.list_id != list_id or member_hash not in campaign.recipients:
                continue
            actions = campaign.recipients[member_hash][1]
            received += 1
            opened += any(a["action"] == "open" for a in actions)
            clicked += any(a["action"] == "click" for a in actions)
        if received:
            member.avg_open_rate = round(opened / received, 4)
            member.avg_click_rate = round(clicked / received, 4)

    def record_engagement(
        self, email: str, action: str, campaign: str, *, at: dt.datetime | None = None
    ) -> None:
        """The shared engagement hook (`segsync.emulator.base.EngagementHook`): campaign
        `campaign`'s first `send` records a campaign to the default audience sent at `at`;
        `send` adds the member to its recipients, `open` / `click` record its actions."""
        named: dict[str, str] | None = getattr(self, "_named_campaigns", None)
        if named is None:
            named = {}
            self._named_campaigns = named
        if action == "send":
            if campaign not in named:
                named[campaign] = self.record_campaign(sent_at=at)
            self.record_send(email, named[campaign])
        elif campaign not in named:
            raise KeyError(f"campaign {campaign!r} was never sent")
        elif action == "open":
            self.record_open(email, named[campaign], at=at)
        elif action == "click":
            self.record_click(email, named[campaign], at=at)
        else:
            raise ValueError(action)

    # -- routes -----------------------------------------------------------------------------

    async def route_get_campaigns(self, request: Request) -> Response:
        q = request.query_params
        count, offset = self._page(request)
        status = q.get("status")
        if status and status not in ("save", "paused", "schedule", "sending", "sent"):
            raise invalid("Invalid status", [{"field": "status", "message": "Invalid value"}])
        if q.get("sort_field") and q["sort_field"] not in ("create_time", "send_time"):
            raise invalid("Invalid sort_field")
        since, before = _time_param(q, "since_send_time"), _time_param(q, "before_send_time")
        found = [
            c
            for c in self.campaigns.values()
            if (not q.get("list_id") or c.list_id == q["list_id"])
            and (status in (None, "", "sent"))
            and (since is None or c.send_time >= since)
            and (before is None or c.send_time < before)
        ]
        found.sort(key=lambda c: (c.send_time, c.web_id), reverse=q.get("sort_dir") == "DESC")
        items = [
            {
                "id": c.id,
                "web_id": c.web_id,
                "type": "regular",
                "status": "sent",
                "send_time": iso_time(c.send_time),
                "emails_sent": len(c.recipients),
                "recipients": {"list_id": c.list_id, "list_is_active": True},
            }
            for c in found[offset : offset + count]
        ]
        return self._reply(request, {"campaigns": items, "total_items": len(found)})

    async def route_get_email_activity(self, request: Request) -> Response:
        campaign = self.campaigns.get(request.path_params["campaign_id"])
        if campaign is None:
            raise not_found()
        count, offset = self._page(request)
        after = _time_param(request.query_params, "since")
        emails = []
        for h, (email, actions) in sorted(campaign.recipients.items()):
            shown = [a for a in actions if after is None or parse_time(a["timestamp"]) > after]
            if after is not None and not shown:
                continue
            emails.append(
                {
                    "campaign_id": campaign.id,
                    "list_id": campaign.list_id,
                    "list_is_active": True,
                    "email_id": h,
                    "email_address": email,
                    "activity": [dict(a) for a in shown],
                    "_links": [],
                }
            )
        return self._reply(
            request,
            {
                "emails": emails[offset : offset + count],
                "campaign_id": campaign.id,
                "total_items": len(emails),
                "_links": [],
            },
        )
