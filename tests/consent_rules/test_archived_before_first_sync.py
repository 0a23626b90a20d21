"""A Mailchimp member archived before segsync's first run (read as a deletion, never linked)
is never added back by a creation for her address, in that run or a later one, and her
records elsewhere are not archived (`on_delete: archive_elsewhere` is about records segsync
linked). On the three lived-in emulated accounts (`lived_in.World`)."""

from __future__ import annotations

import pytest

pytest.importorskip("segsync_mailchimp")
pytest.importorskip("segsync_hubspot")
pytest.importorskip("segsync_brevo.emulator")

from lived_in import PLATFORMS, SUBSCRIPTION_ID, World

from segsync.sync import Engine, SyncPolicy
from segsync.testing.data import DEFAULT_SCHEMA

HAL = "hal.subscribed@lived.dev"  # subscribed on HubSpot


def test_a_member_archived_before_the_first_run_is_not_added_back() -> None:
    world = World()
    try:
        world.engine = Engine(
            world.connectors, world.store, config=world.config,
            policy=SyncPolicy(platforms=PLATFORMS, reconfirm=frozenset({"mailchimp"}),
                              on_delete={"mailchimp": "archive_elsewhere"}),
            schema=DEFAULT_SCHEMA, clock=world.clock,
        )
        hal = world.mc.seed_member(HAL, "subscribed", merge_fields={"FNAME": "Hal"})
        hal.status = "archived"  # hook: archive_member(email)
        world.mc._touch(hal)

        assert world.sync() == []

        assert hal.status == "archived"
        assert world.hs.subscription_status(HAL, SUBSCRIPTION_ID) == "SUBSCRIBED"
        assert world.bv.contact(HAL) is not None  # not archived elsewhere
        assert world.mc_status("ada.subscribed@lived.dev") == "subscribed"  # others synced
        assert not world.errors, world.errors

        # a later run, her HubSpot record edited: still nothing sent to Mailchimp for her
        record = world.hs._find_email(HAL)
        assert record is not None
        world.hs.modify_contact(record.id, {"firstname": "Hal 2"})
        assert world.sync() == []
        assert world.sync() == []
        assert hal.status == "archived"
        assert world.hs.subscription_status(HAL, SUBSCRIPTION_ID) == "SUBSCRIBED"
        assert world.bv.contact(HAL) is not None
        assert not world.errors, world.errors
    finally:
        world.close()
