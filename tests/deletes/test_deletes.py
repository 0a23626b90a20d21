"""Contacts deleted or archived on a platform (issue 14, items 2 and 13a), on lived-in
emulated accounts where people delete, archive, edit and re-create while segsync runs."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deletes_world import ANA, BEN, CEM, World

from segsync.sync.report import RunReport


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


def deletes(report: RunReport) -> list[dict[str, str]]:
    return [d for d in report.diagnostics if d.get("step") == "delete"]


def counts(report: RunReport) -> dict[str, tuple[int, int]]:
    return {n: (p.created, p.updated) for n, p in report.platforms.items()}


def test_a_contact_deleted_in_brevo_is_recorded_once_not_an_error_loop(world: World) -> None:
    """A Brevo user deletes a linked contact, someone edits that person in HubSpot: the next
    run updates Mailchimp, learns from Brevo's "Contact does not exist" that the record is
    gone, reports it once (not as a record error) and never re-creates it; the run after
    writes nothing and reports nothing."""
    assert world.sync().errors == []
    world.user_deletes_in_brevo(ANA)
    world.user_renames_in_hubspot(ANA, "Anna")

    found = world.sync()
    again = world.sync()

    assert found.errors == []
    assert found.status == "ok"
    [note] = deletes(found)
    assert note["platform"] == "brevo"
    assert ANA in note["message"]
    assert world.first_name("mailchimp", ANA) == "Anna"  # the other platforms are updated
    assert again.errors == []
    assert deletes(again) == []
    assert again.writes == 0
    assert world.holds(ANA) == {"mailchimp": True, "hubspot": True, "brevo": False}
    [gone] = world.engine.state.deletions()
    assert (gone.platform, gone.email, gone.found_by) == ("brevo", ANA, "write")
    # the others were kept (`on_delete` defaults to keep), the rest of the audience untouched
    assert world.holds(BEN) == world.holds(CEM) == dict.fromkeys(world.holds(BEN), True)


def test_a_member_archived_in_mailchimp_is_read_deleted_and_not_recreated(world: World) -> None:
    """A Mailchimp user archives a member; an edit of that person in HubSpot reaches Brevo
    but never Mailchimp (no re-subscribe, no re-creation); the deletion is recorded in the
    state and reported once."""
    world.sync()
    world.user_archives_in_mailchimp(BEN)
    world.user_renames_in_hubspot(BEN, "Benedikt")

    found = world.sync()
    world.user_renames_in_hubspot(BEN, "Benno")
    again = world.sync()

    assert found.errors == []
    assert again.errors == []
    [note] = deletes(found)
    assert note["platform"] == "mailchimp"
    assert BEN in note["message"]
    assert deletes(again) == []
    assert world.first_name("mailchimp", BEN) is None  # still archived
    assert world.mc.get_member(BEN).status == "archived"  # type: ignore[union-attr]
    assert world.first_name("brevo", BEN) == "Benno"
    [row] = [r for r in world.store.base_rows("deletes", "mailchimp") if r.cid == BEN]
    assert row.deleted
    [gone] = world.engine.state.deletions()
    assert (gone.platform, gone.found_by, gone.acted) == ("mailchimp", "read", True)


def test_archive_elsewhere_archives_the_person_on_the_other_platforms() -> None:
    """`on_delete: {mailchimp: archive_elsewhere}`: a member archived in Mailchimp is
    archived in HubSpot (restorable) and deleted in Brevo (it has no archive); nobody else
    is touched, and the run after writes nothing."""
    world = World(on_delete={"mailchimp": "archive_elsewhere"})
    try:
        world.sync()
        world.user_archives_in_mailchimp(BEN)
        found = world.sync()
        after = world.sync()
        assert found.errors == []
        assert after.errors == []
        [note] = deletes(found)
        assert "archived on brevo, hubspot" in note["message"]
        assert world.holds(BEN) == {"mailchimp": False, "hubspot": False, "brevo": False}
        record = next(r for r in world.hs.contacts.values()
                      if r.properties.get("email") == BEN)
        assert record.archived  # HubSpot's archive (restorable), not a GDPR delete
        assert world.holds(ANA) == world.holds(CEM) == dict.fromkeys(world.holds(ANA), True)
        assert after.writes == 0
        assert deletes(after) == []
    finally:
        world.close()


def test_archive_elsewhere_after_a_delete_found_by_a_write() -> None:
    """`on_delete: {brevo: archive_elsewhere}`: Brevo has no listing of deleted contacts, so
    the deletion is found by the write of one run and the person archived on the others by
    the next."""
    world = World(on_delete={"brevo": "archive_elsewhere"})
    try:
        world.sync()
        world.user_deletes_in_brevo(ANA)
        world.user_renames_in_hubspot(ANA, "Anna")
        found = world.sync()
        acted = world.sync()
        after = world.sync()
        assert [r.errors for r in (found, acted, after)] == [[], [], []]
        assert len(deletes(found)) == 1
        assert len(deletes(acted)) == 1
        assert "archived on hubspot, mailchimp" in deletes(acted)[0]["message"]
        assert world.holds(ANA) == {"mailchimp": False, "hubspot": False, "brevo": False}
        assert world.mc.get_member(ANA).status == "archived"  # type: ignore[union-attr]
        assert after.writes == 0
        assert deletes(after) == []
        assert world.holds(CEM) == dict.fromkeys(world.holds(CEM), True)
    finally:
        world.close()


def test_a_person_recreated_by_a_platform_user_is_linked_again(world: World) -> None:
    """After a deletion is recorded, a Brevo user adds the person again (a new record, same
    email): the next run links it and brings it to the canonical view, like any record."""
    world.sync()
    world.user_deletes_in_brevo(ANA)
    world.user_renames_in_hubspot(ANA, "Anna")
    world.sync()
    world.sync()
    world.bv.seed_contact(ANA)  # re-created in Brevo, without a first name
    world.clock.advance(5)

    linked = world.sync()
    after = world.sync()

    assert linked.errors == []
    assert counts(linked)["brevo"] == (0, 1)
    assert world.first_name("brevo", ANA) == "Anna"
    assert after.writes == 0
    assert after.errors == []
    [row] = [r for r in world.store.base_rows("deletes", "brevo") if r.cid == ANA]
    assert not row.deleted


def test_a_contact_archived_in_hubspot_is_not_recreated_by_an_update(world: World) -> None:
    """A HubSpot user archives a contact (its incremental read does not show archived ones);
    an edit of that person in Brevo is not upserted into a new HubSpot contact: the update
    finds the linked contact gone, records it and reports it once."""
    world.sync()
    world.user_archives_in_hubspot(CEM)
    world.bv.contact(CEM).attributes["FIRSTNAME"] = "Cemile"  # type: ignore[union-attr]
    world.bv.contact(CEM).modified_at = world.clock.now()  # type: ignore[union-attr]
    world.clock.advance(5)

    found = world.sync()
    again = world.sync()

    live = [r for r in world.hs.contacts.values()
            if r.properties.get("email") == CEM and not r.archived]
    assert live == []  # no new contact made by an upsert
    assert found.errors == []
    assert again.errors == []
    [note] = deletes(found)
    assert note["platform"] == "hubspot"
    assert CEM in note["message"]
    assert world.first_name("mailchimp", CEM) == "Cemile"
    assert deletes(again) == []
    assert again.writes == 0


def test_a_member_deleted_permanently_in_mailchimp_is_found_by_the_update(
    world: World,
) -> None:
    """A Mailchimp user deletes a member permanently (no archived listing shows it): the
    update of that member is answered "Resource Not Found", recorded, reported once."""
    world.sync()
    lst = world.mc.lists[world.mc.default_list_id]
    del lst.members[world.mc.get_member(BEN).id]  # type: ignore[union-attr]
    world.user_renames_in_hubspot(BEN, "Benedikt")

    found = world.sync()
    again = world.sync()

    assert found.errors == []
    assert again.errors == []
    [note] = deletes(found)
    assert note["platform"] == "mailchimp"
    assert BEN in note["message"]
    assert world.mc.get_member(BEN) is None  # not re-created
    assert world.first_name("brevo", BEN) == "Benedikt"
    assert deletes(again) == []
    assert again.writes == 0
