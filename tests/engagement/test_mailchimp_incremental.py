"""The Mailchimp engagement refresh through the engine, day after day, in the lived-in world
of `test_emulators`: the refresh after the first reads the campaigns it knows `since` the last
one, its calls in the run report are the formula, and the state holds what a full read gives,
though people open, unsubscribe and are archived between two refreshes and between two pages."""

from __future__ import annotations

from typing import Any

import pytest
from segsync_mailchimp.engagement import listing_calls
from test_emulators import DAY, World

from segsync.state import open_store
from segsync.sync.snapshot import PlatformRecord, jsonify


def _full_read(world: World) -> dict[str, dict[str, Any]]:
    """What a full refresh (no cursor) reads now, by platform id, in the state's JSON form."""

    async def read() -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        async for page in world.connectors["mailchimp"].read_engagement(None):
            out.update({k: {n: jsonify(x) for n, x in v.items()} for k, v in page.values.items()})
        return out

    return world.loop.run_until_complete(read())


def _held(world: World) -> dict[str, dict[str, Any]]:
    """The refreshed Mailchimp engagement the state holds, by platform id."""
    return {r.platform_id: dict(PlatformRecord.loads(r.payload).refreshed)
            for r in world.store.base_rows("engaged", "mailchimp") if not r.deleted}


def _members(world: World) -> int:
    return sum(m.status != "archived"
               for m in world.mc.lists[world.mc.default_list_id].members.values())


@pytest.mark.slow
def test_a_days_refresh_reads_since_the_last_at_the_formula_and_holds_a_full_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pages of 2: the first refresh costs the full formula; the next day, after three
    people act, the refresh costs L(C) + C + L(members) and the state holds what a full read
    gives; people opening, unsubscribing and archived during a refresh are right the day
    after."""
    monkeypatch.setattr("segsync_mailchimp.engagement.MAX_PAGE", 2)
    world = World(open_store("sqlite:///:memory:"), page_size=2)
    try:
        campaigns = len(world.mc.campaigns)
        recipients = sum(listing_calls(len(c.recipients)) for c in world.mc.campaigns.values())
        full_cost = listing_calls(campaigns) + recipients + listing_calls(_members(world))
        first = world.sync()  # the refresh runs before the copies are written
        assert first.platforms["mailchimp"].engagement_calls == full_cost

        world.clock.advance(DAY.total_seconds())
        world.email("mailchimp", "mc.quiet@x.example", "open", "mailchimp 0")  # an old email
        world.email("mailchimp", "mc.reader@x.example", "open", "mailchimp 2")  # again
        world.email("mailchimp", "ada.subscribed@lived.dev", "click", "spring")  # the user's
        members = _members(world)
        report = world.sync()
        later = report.platforms["mailchimp"].engagement_calls
        assert later == listing_calls(campaigns) + campaigns + listing_calls(members)
        assert later < listing_calls(campaigns) + recipients + listing_calls(members)  # full
        full = _full_read(world)
        held = _held(world)
        assert {k: held[k] for k in full} == full
        assert full  # the emailed members, their figures moved by the opens
        views = world.views()
        assert views["mc.quiet@x.example"]["contact"].engagement["mailchimp.opens"] == 1
        assert views["mc.reader@x.example"]["contact"].engagement["mailchimp.opens"] == 3

        # between two pages of the next refresh's members listing: an open, an archive
        world.clock.advance(DAY.total_seconds())
        acted: list[int] = []

        def act(pages: int) -> None:
            if world.refreshing != "mailchimp" or acted:
                return
            acted.append(pages)
            world.email("mailchimp", "mc.quiet@x.example", "open", "mailchimp 1")
            gone = world.mc.get_member("mixed@x.example")
            assert gone is not None
            gone.status = "archived"
            gone.last_changed = world.clock.now()

        world.mc.unsubscribe("mc.reader@x.example")
        world.mc.after_read_page = act
        world.sync()
        world.mc.after_read_page = None
        assert acted
        world.clock.advance(DAY.total_seconds())
        world.sync()
        full = _full_read(world)
        held = _held(world)
        assert {k: held[k] for k in full} == full
        engagement = world.views()["mc.quiet@x.example"]["contact"].engagement
        assert engagement["mailchimp.opens"] == 2
    finally:
        world.close()
