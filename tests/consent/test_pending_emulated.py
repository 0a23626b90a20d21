"""`pending` survives HubSpot's "not specified" over the three emulators, starting from
lived-in accounts (`lived_in.World`), and the ledger rows of the runs are the proof."""

from __future__ import annotations

import pytest

pytest.importorskip("segsync_mailchimp")
pytest.importorskip("segsync_hubspot")
pytest.importorskip("segsync_brevo.emulator")

from lived_in import SUBSCRIPTION_ID, World

BEN = "ben.pending@lived.dev"  # pending on Mailchimp, no status on HubSpot, not on Brevo


def run(world: World) -> None:
    """One engine run (the whole floor of `lived_in` is judged by test_foreign_actors)."""
    world.loop.run_until_complete(world.engine.sync())
    world.clock.advance(600)


@pytest.mark.slow
def test_pending_survives_hubspot_not_specified_without_flapping() -> None:
    world = World()
    try:
        run(world)
        views = {p["email"]: p for _c, p, _d in world.store.canonical_contacts(world.config)}
        first = world.store.ledger(world.config, email=BEN)

        world.clock.advance(3600)
        run(world)
        run(world)

        assert world.mc_status(BEN) == "pending"
        assert str(world.hs.subscription_status(BEN, SUBSCRIPTION_ID)) == "NOT_SPECIFIED"
        again = {p["email"]: p for _c, p, _d in world.store.canonical_contacts(world.config)}
        assert views[BEN]["c"] == again[BEN]["c"] == "pending"
        assert again[BEN].get("cs") == "mailchimp"
        assert world.store.ledger(world.config, email=BEN) == first  # no flapping
        assert all(e.new != "non_subscribed" for e in first if e.platform == "canonical")
    finally:
        world.close()


@pytest.mark.slow
def test_a_copied_opt_in_is_proven_in_the_ledger_on_the_emulators() -> None:
    """Ada's Mailchimp opt-in reaches HubSpot as SUBSCRIBED; its row names Mailchimp, the
    evidence Mailchimp gave, and what HubSpot was sent."""
    world = World()
    try:
        run(world)
        rows = [e for e in world.store.ledger(world.config, email="ada.subscribed@lived.dev")
                if e.source == "sync" and e.platform == "hubspot"]
        assert [(e.sent, e.source_platform) for e in rows] == [("subscribed", "mailchimp")]
        assert "status=subscribed" in (rows[0].evidence or "")
        assert rows[0].email == "ada.subscribed@lived.dev"
    finally:
        world.close()
