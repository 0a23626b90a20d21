"""Contacts deleted or archived on a platform (issue 14, items 2 and 13a), on lived-in
emulated accounts where people delete, archive, edit and re-create while segsync runs."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deletes_world import ANA, BEN, CEM, World

from segsync.sync import Engine
from segsync.sync.pull import RunScope
from segsync.sync.report import RunReport
from segsync.testing.data import DEFAULT_SCHEMA


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


def _scoped(world: World, *platforms: str) -> RunReport:
    """A sync of the selected platforms alone (`--select`), on the world's state."""
    engine = Engine(world.connectors, world.store, config="deletes", policy=world.engine.policy,
                    schema=DEFAULT_SCHEMA, clock=world.clock,
                    scope=RunScope(platforms=frozenset(platforms)))
    world.clock.advance(600)
    return world.loop.run_until_complete(engine.sync())


@pytest.mark.slow
def test_a_deletion_read_by_a_selected_run_is_acted_on_where_that_run_did_not_reach() -> None:
    """`on_delete: {mailchimp: archive_elsewhere}`: a run selecting Mailchimp reads a member
    archived there; the archive waits (pending) for the platforms it left out: a run
    selecting Mailchimp and HubSpot archives the person in HubSpot, the full run then in
    Brevo; nothing is pending after it, and the run after writes nothing."""
    world = World(on_delete={"mailchimp": "archive_elsewhere"})
    try:
        world.sync()
        world.user_archives_in_mailchimp(BEN)
        alone = _scoped(world, "mailchimp")
        assert alone.errors == []
        assert world.holds(BEN) == {"mailchimp": False, "hubspot": True, "brevo": True}
        [waiting] = world.engine.state.deletions(pending=True)
        assert (waiting.platform, waiting.email, waiting.found_by) == ("mailchimp", BEN, "read")
        again = _scoped(world, "mailchimp")  # a selected run again: still waiting
        assert again.writes == 0
        assert len(world.engine.state.deletions(pending=True)) == 1
        two = _scoped(world, "mailchimp", "hubspot")
        assert two.errors == []
        assert world.holds(BEN) == {"mailchimp": False, "hubspot": False, "brevo": True}
        assert len(world.engine.state.deletions(pending=True)) == 1  # Brevo still waits
        full = world.sync()
        after = world.sync()
        assert [full.errors, after.errors] == [[], []]
        assert world.holds(BEN) == {"mailchimp": False, "hubspot": False, "brevo": False}
        assert "archived on brevo" in deletes(full)[0]["message"]
        assert world.engine.state.deletions(pending=True) == []
        assert after.writes == 0
        assert world.holds(ANA) == world.holds(CEM) == dict.fromkeys(world.holds(ANA), True)
    finally:
        world.close()


@pytest.mark.slow
def test_an_archive_refused_is_retried_as_an_archive() -> None:
    """`on_delete: {mailchimp: archive_elsewhere}`: HubSpot refuses the archive of a member
    read archived in Mailchimp; the deletion stays pending while the archive is owed, and
    the next run sends the archive again (not an update), after which nothing is pending."""
    world = World(on_delete={"mailchimp": "archive_elsewhere"})
    try:
        world.sync()
        world.user_archives_in_mailchimp(BEN)
        world.refuse_archive_in_hubspot(BEN)
        refused = world.sync()
        assert [(e.platform, e.email) for e in refused.errors] == [("hubspot", BEN)]
        assert world.holds(BEN) == {"mailchimp": False, "hubspot": True, "brevo": False}
        assert len(world.engine.state.deletions(pending=True)) == 1
        world.accept_writes()
        retried = world.plan()
        [row] = retried.platforms["hubspot"].changes
        assert row.get("archive") is True
        assert world.sync().errors == []
        assert world.holds(BEN) == {"mailchimp": False, "hubspot": False, "brevo": False}
        assert world.engine.state.deletions(pending=True) == []
        assert world.engine.state.owed() == []
        assert world.sync().writes == 0
    finally:
        world.close()


@pytest.mark.slow
def test_a_deletion_under_keep_is_not_held_by_a_selected_run() -> None:
    """Under `keep` (the default) a deletion acts on nothing elsewhere: a selected run reads
    it and is done with it (nothing waits; the other platforms keep the person)."""
    world = World()
    try:
        world.sync()
        world.user_archives_in_mailchimp(BEN)
        _scoped(world, "mailchimp")
        assert world.engine.state.deletions(pending=True) == []
        assert world.sync().writes == 0
        assert world.holds(BEN) == {"mailchimp": False, "hubspot": True, "brevo": True}
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
