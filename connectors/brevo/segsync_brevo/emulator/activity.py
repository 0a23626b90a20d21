"""Email campaign events in the emulated Brevo (the API cannot write these).

Test hook (no HTTP): `record_campaign_event(email, event, campaign_id, at=None, url=...)`,
`event` one of `sent`, `delivered`, `opened`, `clicked`, `hardBounce`, `softBounce`. They
show in the contact's `statistics` on `GET /contacts/{identifier}` as the spec shapes them
(getExtendedContactDetails): `messagesSent`/`delivered`/`hardBounces`/`softBounces`
[{campaignId, eventTime}], `opened` [{campaignId, count, eventTime, ip}] (one per campaign,
`eventTime` the latest open: unverified, the spec says "UTC date-time of the event"),
`clicked` [{campaignId, links: [{count, eventTime, ip, url}]}], over Brevo's default window
(the last 90 days). Recording an event does not move the contact's `modifiedAt`.

Campaigns: a campaign is sent to lists (`record_campaign(lists, sent_at)`); an event of a
campaign id never recorded makes it, sent at the event's time to the contact's lists. A
`sent` event adds the contact's lists to its campaign's. `GET /contacts/lists/{id}` shows, in
`campaignStats`, the campaigns sent to the list (with `startDate`/`endDate`, only those sent
between them) with their counters (getCampaignStats): `sent`, `delivered`, `hardBounces`,
`softBounces`, `viewed` (opens), `uniqueViews` and `trackableViews` (contacts who opened),
`clickers` (clicks), `uniqueClicks` (contacts who clicked), `complaints`, `unsubscriptions`.

`record_engagement` is the hook every emulator shares (`segsync.emulator.base.
EngagementHook`): a named campaign's first `send` records it (sent to the contact's lists);
`send` records `sent` and `delivered`, `open` `opened`, `click` `clicked`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from segsync_brevo.emulator.state import BrevoState, ContactRecord

__all__ = ["STATISTICS_WINDOW", "BrevoActivity", "SentCampaign"]

STATISTICS_WINDOW = dt.timedelta(days=90)
_LISTS = {
    "sent": "messagesSent",
    "delivered": "delivered",
    "hardBounce": "hardBounces",
    "softBounce": "softBounces",
}


def _utc(when: dt.datetime) -> str:
    """An event time as the spec describes it: UTC, to the second."""
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")


@dataclasses.dataclass
class SentCampaign:
    """An email campaign as sent: when, and to which lists."""

    id: int
    sent_at: dt.datetime
    lists: set[int] = dataclasses.field(default_factory=set)


_HOOK_EVENTS = {"send": ("sent", "delivered"), "open": ("opened",), "click": ("clicked",)}


class BrevoActivity(BrevoState):
    """Campaign events per contact, and the `statistics` they make."""

    @property
    def sent_campaigns(self) -> dict[int, SentCampaign]:
        """Sent email campaigns by id (made on first use)."""
        found: dict[int, SentCampaign] | None = getattr(self, "_sent_campaigns", None)
        if found is None:
            found = {}
            self._sent_campaigns = found
        return found

    def record_campaign(
        self, lists: set[int] | list[int], *, sent_at: dt.datetime | None = None
    ) -> int:
        """An email campaign sent to `lists` at `sent_at` (now); its id."""
        campaign_id = 1 + max(self.sent_campaigns, default=0)
        self.sent_campaigns[campaign_id] = SentCampaign(
            campaign_id, sent_at or self.clock.now(), set(lists)
        )
        return campaign_id

    def record_engagement(
        self, email: str, action: str, campaign: str, *, at: dt.datetime | None = None
    ) -> None:
        """The shared engagement hook; see the module docstring."""
        if action not in _HOOK_EVENTS:
            raise ValueError(action)
        named: dict[str, int] | None = getattr(self, "_named_campaigns", None)
        if named is None:
            named = {}
            self._named_campaigns = named
        contact = self.contact(email)
        if contact is None:
            raise KeyError(email)
        if action == "send" and campaign not in named:
            named[campaign] = self.record_campaign(contact.list_ids, sent_at=at)
        campaign_id = named.get(campaign)
        sent = campaign_id is not None and any(
            e[0] == "sent" and e[1] == campaign_id for e in self._events().get(contact.id, [])
        )
        if campaign_id is None or (action != "send" and not sent):
            raise KeyError(f"campaign {campaign!r} was never sent to {email}")
        for event in _HOOK_EVENTS[action]:
            self.record_campaign_event(email, event, campaign_id, at=at)

    def list_campaign_stats(
        self, list_id: int, start: dt.datetime | None, end: dt.datetime | None
    ) -> list[dict[str, Any]]:
        """`campaignStats` of `GET /contacts/lists/{id}`; see the module docstring."""
        counts: dict[int, dict[str, int]] = {}
        readers: dict[int, set[int]] = {}
        clickers: dict[int, set[int]] = {}
        for contact_id, events in self._events().items():
            for event, cid, _when, _url in events:
                tally = counts.setdefault(cid, dict.fromkeys(
                    ("sent", "delivered", "hardBounces", "softBounces", "viewed", "clickers"), 0))
                key = {"opened": "viewed", "clicked": "clickers"}.get(event, event)
                if key in tally:
                    tally[key] += 1
                if event == "opened":
                    readers.setdefault(cid, set()).add(contact_id)
                if event == "clicked":
                    clickers.setdefault(cid, set()).add(contact_id)
        out = []
        for campaign in sorted(self.sent_campaigns.values(), key=lambda c: c.id):
            if list_id not in campaign.lists or (
                start is not None and end is not None
                and not start <= campaign.sent_at <= end
            ):
                continue
            tally = counts.get(campaign.id, {})
            views = len(readers.get(campaign.id, ()))
            out.append({"campaignId": campaign.id, "stats": {
                "uniqueClicks": len(clickers.get(campaign.id, ())),
                "clickers": tally.get("clickers", 0),
                "complaints": 0,
                "delivered": tally.get("delivered", 0),
                "sent": tally.get("sent", 0),
                "softBounces": tally.get("softBounces", 0),
                "hardBounces": tally.get("hardBounces", 0),
                "uniqueViews": views,
                "trackableViews": views,
                "unsubscriptions": 0,
                "viewed": tally.get("viewed", 0),
            }})
        return out

    def _events(self) -> dict[int, list[tuple[str, int, dt.datetime, str]]]:
        found: dict[int, list[tuple[str, int, dt.datetime, str]]] | None = getattr(
            self, "_campaign_events", None
        )
        if found is None:
            found = {}
            self._campaign_events = found
        return found

    def record_campaign_event(
        self,
        email: str,
        event: str,
        campaign_id: int,
        *,
        at: dt.datetime | None = None,
        url: str = "https://example.com/",
    ) -> None:
        """One campaign event for the contact with `email` at `at` (now)."""
        if event not in (*_LISTS, "opened", "clicked"):
            raise ValueError(event)
        contact = self.contact(email)
        if contact is None:
            raise KeyError(email)
        when = at or self.clock.now()
        campaign = self.sent_campaigns.get(campaign_id)
        if campaign is None:  # an event of a campaign never recorded: sent then, to its lists
            campaign = self.sent_campaigns[campaign_id] = SentCampaign(
                campaign_id, when, set(contact.list_ids))
        elif event == "sent":
            campaign.lists |= contact.list_ids
        self._events().setdefault(contact.id, []).append((event, campaign_id, when, url))

    def contact_statistics(self, contact: ContactRecord) -> dict[str, Any]:
        """`statistics` of `GET /contacts/{identifier}`; see the module docstring."""
        floor = self.clock.now() - STATISTICS_WINDOW
        events = [e for e in self._events().get(contact.id, []) if e[2] >= floor]
        out: dict[str, Any] = {
            "messagesSent": [],
            "hardBounces": [],
            "softBounces": [],
            "complaints": [],
            "unsubscriptions": {"userUnsubscription": [], "adminUnsubscription": []},
            "opened": [],
            "clicked": [],
            "transacAttributes": [],
            "delivered": [],
        }
        opens: dict[int, list[dt.datetime]] = {}
        clicks: dict[int, dict[str, list[dt.datetime]]] = {}
        for event, campaign, when, url in events:
            if event in _LISTS:
                out[_LISTS[event]].append({"campaignId": campaign, "eventTime": _utc(when)})
            elif event == "opened":
                opens.setdefault(campaign, []).append(when)
            else:
                clicks.setdefault(campaign, {}).setdefault(url, []).append(when)
        out["opened"] = [
            {
                "campaignId": campaign,
                "count": len(times),
                "eventTime": _utc(max(times)),
                "ip": "198.51.100.7",
            }
            for campaign, times in opens.items()
        ]
        out["clicked"] = [
            {
                "campaignId": campaign,
                "links": [
                    {
                        "count": len(times),
                        "eventTime": _utc(max(times)),
                        "ip": "198.51.100.7",
                        "url": url,
                    }
                    for url, times in by_url.items()
                ],
            }
            for campaign, by_url in clicks.items()
        ]
        return out
