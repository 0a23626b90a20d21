"""`segsync erase` over the three emulators, on lived-in accounts (issue 13, item 6)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from world import YAN, ZOE, ZOE_KEY, World, state_rows_naming

from segsync.state.base import erasure_hash


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


@pytest.fixture
def enforcing() -> Iterator[World]:
    w = World(enforce=True)
    yield w
    w.close()


def synced(world: World) -> None:
    """The first syncs: everyone everywhere, the ledger holding ZOE's consent changes."""
    world.sync()
    world.sync()
    assert world.holds(ZOE_KEY) == {"mailchimp": True, "hubspot": True, "brevo": True}
    assert any(e.email == ZOE_KEY for e in world.engine.state.ledger())


def test_erase_deletes_everywhere_and_forgets_in_the_state(world: World) -> None:
    synced(world)
    kept_before = world.holds(YAN)
    mc_tags_before = world.mc.get_member_tags(YAN)

    report = world.erase(ZOE)

    assert report.confirmed, report.render()
    assert world.holds(ZOE_KEY) == {"mailchimp": False, "hubspot": False, "brevo": False}
    assert ZOE_KEY in world.hs.gdpr_blocklist
    # the other people, in the same tag, lists and Brevo list, are untouched
    assert world.holds(YAN) == kept_before
    assert world.mc.get_member_tags(YAN) == mc_tags_before
    assert set(world.hs.lists["900"].members) == {world.hs._by_email[YAN]}
    assert world.bv.contact(YAN).list_ids >= {world.bv_customers}
    # the state: no row names the address; the tombstone and the ledger rows stay
    assert state_rows_naming(world.store, ZOE_KEY) == []
    digest = erasure_hash(world.store.erasure_key(), ZOE_KEY)
    assert [h for h, _ in world.engine.state.tombstones()] == [digest]
    kept = [e for e in world.engine.state.ledger() if e.email == f"erased:{digest}"]
    assert kept
    assert all(e.cid == f"erased:{digest}" for e in kept)
    assert YAN in {e.email for e in world.engine.state.ledger()}


def test_a_sync_after_the_erasure_never_recreates_the_person(world: World) -> None:
    synced(world)
    world.erase(ZOE)

    for _ in range(2):
        report = world.sync()
        assert world.holds(ZOE_KEY) == {"mailchimp": False, "hubspot": False, "brevo": False}
        assert not [e for e in report.errors if e.code == "erased_person"]
    assert state_rows_naming(world.store, ZOE_KEY) == []


def test_a_platform_reimporting_an_erased_person_is_skipped_and_reported(world: World) -> None:
    synced(world)
    world.erase(ZOE)
    # a foreign actor: someone imports ZOE into Brevo again, in the user's own list
    world.bv.seed_contact(ZOE_KEY, lists=(world.bv_customers,), attributes={"FIRSTNAME": "Z"})

    report = world.sync()

    assert world.holds(ZOE_KEY) == {"mailchimp": False, "hubspot": False, "brevo": True}
    flagged = [e for e in report.errors if e.code == "erased_person"]
    assert [e.platform for e in flagged] == ["brevo"]
    assert ZOE_KEY not in flagged[0].message
    assert "erased:" in flagged[0].message
    assert state_rows_naming(world.store, ZOE_KEY) == []


def test_under_enforce_a_reimported_person_is_erased_again(enforcing: World) -> None:
    world = enforcing
    synced(world)
    world.erase(ZOE)
    world.mc.seed_member(ZOE_KEY, "subscribed", tags=("Customers 2023",))  # signs up again
    world.bv.seed_contact(ZOE_KEY, lists=(world.bv_customers,))

    report = world.sync()

    assert world.holds(ZOE_KEY) == {"mailchimp": False, "hubspot": False, "brevo": False}
    # erased again: reported as a diagnostic, never a record error
    assert report.errors == []
    assert report.status == "ok"
    notes = [d for d in report.diagnostics if d.get("step") == "erase"]
    assert sorted(d["platform"] for d in notes) == ["brevo", "mailchimp"]
    assert all("erased there again" in d["message"] for d in notes)
    assert {n: p.erased for n, p in report.platforms.items()} == {
        "mailchimp": 1, "hubspot": 0, "brevo": 1}
    assert state_rows_naming(world.store, ZOE_KEY) == []
    # a plan alone writes nothing: it reports, it does not erase
    world.bv.seed_contact(ZOE_KEY, lists=(world.bv_customers,))
    world.loop.run_until_complete(world.engine.plan())
    assert world.holds(ZOE_KEY)["brevo"]


def test_erasing_twice_is_fine(world: World) -> None:
    synced(world)
    world.erase(ZOE)

    again = world.erase(ZOE)

    assert again.confirmed, again.render()
    person = again.people[0]
    assert person.platforms["mailchimp"].already_absent
    assert person.platforms["brevo"].already_absent
    assert person.forgotten == 0
    assert len(world.engine.state.tombstones()) == 1


def test_a_platform_down_is_reported_and_a_rerun_completes(world: World) -> None:
    synced(world)
    world.switches["brevo"].down = True

    report = world.erase(ZOE)

    assert not report.confirmed
    assert report.unconfirmed_platforms() == ["brevo"]
    assert report.people[0].platforms["brevo"].error
    assert ZOE_KEY not in (report.people[0].platforms["brevo"].error or "").lower()
    [owed] = world.engine.state.owed_erasures()
    assert (owed.platform, owed.email) == ("brevo", ZOE_KEY)
    # the next sync reaching Brevo performs the erasure owed there, without
    # `sync.erasure: enforce`, and reports it (not as a record error)
    world.switches["brevo"].down = False
    run = world.sync()
    assert world.holds(ZOE_KEY) == {"mailchimp": False, "hubspot": False, "brevo": False}
    assert run.errors == []
    assert run.status == "ok"
    assert run.platforms["brevo"].erased == 1
    [note] = [d for d in run.diagnostics if d.get("step") == "erase"]
    assert note["platform"] == "brevo"
    assert ZOE_KEY not in note["message"].lower()
    assert world.engine.state.owed_erasures() == []
    assert state_rows_naming(world.store, ZOE_KEY) == []
    assert world.holds(YAN) == {"mailchimp": True, "hubspot": True, "brevo": True}
    after = world.sync()
    assert after.platforms["brevo"].erased == 0
    assert after.errors == []

    rerun = world.erase(ZOE)

    assert rerun.confirmed, rerun.render()
    assert world.holds(ZOE_KEY) == {"mailchimp": False, "hubspot": False, "brevo": False}


def test_an_unknown_person_is_confirmed_absent_and_tombstoned(world: World) -> None:
    synced(world)

    report = world.erase("never.seen@lived.dev")

    assert report.confirmed
    assert report.people[0].platforms["brevo"].already_absent
    assert report.people[0].forgotten == 0
    assert len(world.engine.state.tombstones()) == 1
