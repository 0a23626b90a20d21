"""Email campaign events in the emulated Brevo (the API cannot write these).

Test hook (no HTTP): `record_campaign_event(email, event, campaign_id, at=None, url=...)`,
`event` one of `sent`, `delivered`, `opened`, `clicked`, `hardBounce`, `softBounce`. They
show in the contact's `statistics` on `GET /contacts/{identifier}` as the spec shapes them
(getExtendedContactDetails): `messagesSent`/`delivered`/`hardBounces`/`softBounces`
[{campaignId, eventTime}], `opened` [{campaignId, count, eventTime, ip}] (one per campaign,
`eventTime` the latest open: unverified, the spec says "UTC date-time of the event"),
`clicked` [{campaignId, links: [{count, eventTime, ip, url}]}], over Brevo's default window
(the last 90 days). Recording an event does not move the contact's `modifiedAt`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from segsync_brevo.emulator.state import BrevoState, ContactRecord

__all__ = ["STATISTICS_WINDOW", "BrevoActivity"]

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


class BrevoActivity(BrevoState):
    """Campaign events per contact, and the `statistics` they make."""

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
