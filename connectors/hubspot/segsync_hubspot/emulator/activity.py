"""Marketing email activity in the emulated HubSpot (the API cannot write it).

`record_engagement` is the hook every emulator shares (`segsync.emulator.base.EngagementHook`):
HubSpot shows a marketing email's send, open and click in calculated contact properties
(`record_email`: `hs_email_delivered`, `hs_email_open`, `hs_email_click` and their last
dates). `hs_email_open` / `hs_email_click` are "Marketing emails opened / clicked": an email
opened again moves only the last open date, not the count. Whether that moves
`lastmodifieddate` is read two ways: HubSpot's knowledge base says any property change,
HubSpot's own activity included, moves it (the fact sheet, hubspot.md §3.1); no API document
says so of calculated properties. The emulator takes the stricter reading by default,
`engagement_moves_lastmodified = False`: the engagement properties change (and reach search
after the index lag, like any write) while `lastmodifieddate` stays, so an incremental read
by `lastmodifieddate` does not see them and only the engagement refresh does. Set it True
for the knowledge base's reading.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from segsync_hubspot.emulator.records import iso_time

__all__ = ["HubSpotActivity"]

_ACTIONS = ("send", "open", "click")


class HubSpotActivity:
    """The engagement hook over `HubSpotState.record_email`; see the module docstring."""

    #: whether recorded engagement moves `lastmodifieddate` (see the module docstring)
    engagement_moves_lastmodified: bool = False

    def record_engagement(
        self, email: str, action: str, campaign: str, *, at: dt.datetime | None = None
    ) -> None:
        """`action` of campaign `campaign` for the contact with `email`, at `at` (now); an
        open or click needs the campaign's send to the contact first (KeyError)."""
        if action not in _ACTIONS:
            raise ValueError(action)
        state: Any = self
        sent: set[tuple[str, str]] | None = getattr(self, "_sent_campaigns", None)
        if sent is None:
            sent = set()
            self._sent_campaigns = sent
        record = state._find_email(email)
        if record is None:
            raise KeyError(email)
        if action != "send" and (record.id, campaign) not in sent:
            raise KeyError(f"campaign {campaign!r} was never sent to {email}")
        sent.add((record.id, campaign))
        done: set[tuple[str, str, str]] = self.__dict__.setdefault("_acted_campaigns", set())
        before = record.properties.get("lastmodifieddate")
        if action != "send" and (record.id, campaign, action) in done:
            last = {"open": "hs_email_last_open_date", "click": "hs_email_last_click_date"}[action]
            state.set_engagement(email, **{last: iso_time(at or state.clock.now())})
        else:
            state.record_email(email, action, at=at)
        done.add((record.id, campaign, action))
        if not self.engagement_moves_lastmodified and before is not None:
            record.properties["lastmodifieddate"] = before
            state._reindex(record)

