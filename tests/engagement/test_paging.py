"""Paged engagement refreshes in lived-in accounts where people come and go between two
pages: a deletion (Brevo) or an archive (Mailchimp) before the offset, with a sign-up so the
total stays the same, skips no one, and the next refreshes do not take the page as read."""

from __future__ import annotations

import pytest
from test_emulators import DAY, EMAILED, World

from segsync.state import open_store


def _last_open(world: World, email: str, platform: str) -> object:
    found = world.views().get(email)
    return found and found["contact"].engagement.get(f"{platform}.last_open")


@pytest.mark.slow
def test_a_brevo_deletion_and_sign_up_between_pages_skips_no_one() -> None:
    world = World(open_store("sqlite:///:memory:"), page_size=3)
    try:
        world.sync()
        world.clock.advance(DAY.total_seconds())
        order = sorted(world.bv.contacts.values(), key=lambda c: (c.created_at, c.id))
        gone, reader = order[0], order[3]  # the first of page 1; the first of page 2
        assert reader.email == "bv.half@x.example"
        for email, sends in EMAILED.items():  # a new campaign reaches everyone
            for name, *_ in sends:
                if name == "brevo":
                    world.email(name, email, "send", "news")
        world.email("brevo", reader.email, "open", "news")  # 3 of 5 now, today
        acted: list[int] = []

        def act(pages: int) -> None:
            if world.refreshing != "brevo" or acted:
                return
            acted.append(pages)
            del world.bv.contacts[gone.id]
            world.bv._by_email.pop(gone.email, None)
            world.bv.seed_contact("newcomer@lived.dev")  # the total stays the same

        world.bv.after_read_page = act
        world.sync()
        world.bv.after_read_page = None
        assert acted
        opened = world.clock.now()
        assert _last_open(world, reader.email, "brevo") >= opened - DAY
        assert reader.email in world.members("mailchimp")
        world.clock.advance(DAY.total_seconds())
        world.sync()  # the next refresh keeps it
        assert reader.email in world.members("hubspot")
    finally:
        world.close()


@pytest.mark.slow
@pytest.mark.parametrize("control", [False, True])
def test_a_mailchimp_archive_between_pages_skips_no_one(
    control: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("segsync_mailchimp.engagement.MAX_PAGE", 2)
    world = World(open_store("sqlite:///:memory:"), page_size=2)
    try:
        world.sync()
        world.clock.advance(DAY.total_seconds())
        members = [m for m in world.mc.lists[world.mc.default_list_id].members.values()
                   if m.status != "archived"]
        gone, reader = members[0], members[2]  # the first of page 1; the first of page 2
        for n in range(3):
            world.email("mailchimp", reader.email_address, "send", f"promo {n}")
            world.email("mailchimp", reader.email_address, "open", f"promo {n}")
        acted: list[int] = []

        def act(pages: int) -> None:
            if world.refreshing != "mailchimp" or acted or control:
                return
            acted.append(pages)
            gone.status = "archived"
            gone.last_changed = world.clock.now()

        world.mc.after_read_page = act
        world.sync()
        world.mc.after_read_page = None
        assert bool(acted) is not control
        found = world.views()[reader.email_address]["contact"].engagement
        assert found["mailchimp.opens"] == 3
        assert reader.email_address in world.members("hubspot")
    finally:
        world.close()
