"""Syncs against a portal whose search index lags (the strict reading): runs seconds apart
never take a record the index has not caught up with for a deleted, missing or new one.

Mailchimp (lived-in) and HubSpot, synced by the engine, with `on_delete: archive_elsewhere`
for HubSpot: a HubSpot record wrongly taken for deleted would archive its Mailchimp member.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from typing import Any

import pytest
from segsync_hubspot import HubSpotConnector, HubSpotEmulator
from segsync_hubspot.emulator.state import STRICT_SEARCH_INDEX_LAG

from segsync.clock import VirtualClock
from segsync.sync import Engine, SyncPolicy
from segsync.sync.report import RunReport
from segsync.testing.data import DEFAULT_SCHEMA

segsync_mailchimp = pytest.importorskip("segsync_mailchimp")

PLATFORMS = ("mailchimp", "hubspot")


class World:
    """A lived-in Mailchimp audience, a HubSpot portal with an index lag, an engine."""

    def __init__(self, lag: float) -> None:
        self.clock = VirtualClock(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC))
        self.mc = segsync_mailchimp.MailchimpEmulator(clock=self.clock, reject_fake_emails=False)
        self.mc.seed_lived_in()
        self.hs = HubSpotEmulator(clock=self.clock, search_delay_seconds=lag)
        for i in range(3):
            self.hs.seed_contact({"email": f"old{i}@lived.dev", "firstname": f"Old{i}"})
        self.clock.advance(3600)  # the portal's own records are long searchable
        local = "http://127.0.0.1:9"
        common: dict[str, Any] = {"schema": DEFAULT_SCHEMA, "clock": self.clock}
        self.connectors = {
            "mailchimp": segsync_mailchimp.MailchimpConnector(
                {"api_key": self.mc.default_api_key, "list_id": self.mc.default_list_id,
                 "base_url": local + self.mc.base_path},
                transport=self.mc.transport(), **common,
            ),
            "hubspot": HubSpotConnector(
                {"token": self.hs.default_api_key, "base_url": local},
                transport=self.hs.transport(), **common,
            ),
        }
        from segsync.state import open_store

        self.store = open_store("sqlite:///:memory:", clock=self.clock)
        self.engine = Engine(
            self.connectors, self.store, config="index-lag",
            policy=SyncPolicy(platforms=PLATFORMS, on_delete={"hubspot": "archive_elsewhere"}),
            schema=DEFAULT_SCHEMA, clock=self.clock,
        )
        self.loop = asyncio.new_event_loop()

    def sync(self) -> RunReport:
        report: RunReport = self.loop.run_until_complete(self.engine.sync())
        return report

    def close(self) -> None:
        async def shut() -> None:
            for connector in self.connectors.values():
                await connector.aclose()

        self.loop.run_until_complete(shut())
        self.loop.close()
        self.store.close()

    def hubspot_emails(self) -> Counter[str]:
        return Counter(
            str(r.properties.get("email")).lower()
            for r in self.hs.contacts.values() if not r.archived
        )

    def mailchimp_live(self) -> set[str]:
        lst = self.mc.lists[self.mc.default_list_id]
        return {m.email_address.lower() for m in lst.members.values() if m.status != "archived"}


@pytest.mark.parametrize("lag", [STRICT_SEARCH_INDEX_LAG, 0.0], ids=["strict", "lenient"])
def test_runs_seconds_apart_take_nothing_unindexed_for_deleted_or_new(lag: float) -> None:
    """Someone creates in HubSpot, seconds before the first run, a contact for an address
    Mailchimp holds (not yet searchable); run 1 writes HubSpot, run 2 starts a second later
    (its writes not yet searchable either). No run fails, nobody is archived anywhere, no
    address is held twice in HubSpot, and once the index caught up the runs converge to
    writing nothing."""
    w = World(lag)
    try:
        mailchimp_before = w.mailchimp_live()
        shared = sorted(mailchimp_before)[0]
        w.hs.seed_contact({"email": shared, "lastname": "FromHubSpot"})
        w.clock.advance(1)
        assert (shared in w.hs.unsearchable()) is (lag > 0)

        first = w.sync()
        w.clock.advance(1)  # within the index lag of run 1's writes
        assert bool(w.hs.unsearchable()) is (lag > 0)
        second = w.sync()
        w.clock.advance(600)
        third = w.sync()
        w.clock.advance(600)
        fourth = w.sync()

        for report in (first, second, third, fourth):
            assert report.status == "ok", (report.status, report.errors[:3])
        assert w.mailchimp_live() == mailchimp_before | {f"old{i}@lived.dev" for i in range(3)}
        held = w.hubspot_emails()
        assert [e for e, n in held.items() if n > 1] == [], "an address held twice in HubSpot"
        assert set(held) >= mailchimp_before
        assert (w.hs.contact_by_email(shared) or {}).get("lastname") == "FromHubSpot"
        assert fourth.writes == 0
    finally:
        w.close()
