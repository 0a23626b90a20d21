"""`opens` and `clicks` are marketing emails opened / clicked on every platform: a person
who opens one email of four three times has opened one email (open rate 0.25), not three."""

from __future__ import annotations

import datetime as dt

import pytest
from test_emulators import DAY, PLATFORMS, World

from segsync.state import open_store


@pytest.mark.slow
def test_an_email_opened_again_counts_once_on_every_platform() -> None:
    world = World(open_store("sqlite:///:memory:"))
    try:
        now = world.clock.now()
        people = {p: f"again.{p}@x.example" for p in PLATFORMS}
        customers = next(iter(world.bv.lists))
        for platform, email in people.items():
            world.mc.seed_member(email, "subscribed", source="Hosted Signup Form")
            if platform == "hubspot":
                world.hs.seed_contact({"email": email})
            elif platform == "brevo":
                world.bv.seed_contact(email, lists=(customers,))
            for n in range(4):
                world.email(platform, email, "send", f"again {n}", now - 3 * DAY * (4 - n))
            for k in range(3):  # the last email, opened three times; clicked twice
                world.email(platform, email, "open", "again 3",
                            now - 3 * DAY + dt.timedelta(hours=k + 1))
            for k in range(2):
                world.email(platform, email, "click", "again 3",
                            now - 3 * DAY + dt.timedelta(hours=k + 2))
        world.sync()
        views = world.views()
        for platform, email in people.items():
            engagement = views[email]["contact"].engagement
            assert engagement[f"{platform}.opens"] == 1, (platform, engagement)
            assert engagement[f"{platform}.clicks"] == 1, (platform, engagement)
            assert engagement["open_rate"] == 0.25, (platform, engagement)
            assert engagement["click_rate"] == 0.25, (platform, engagement)
            assert engagement[f"{platform}.last_open"] == now - 3 * DAY + dt.timedelta(hours=3)
        for platform in PLATFORMS:
            assert not set(people.values()) & world.members(platform), platform
    finally:
        world.close()
