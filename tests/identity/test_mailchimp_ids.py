"""Mailchimp members are linked by their `contact_id`, which a change of address keeps.

Found by an outside tester (tester 14, findings 2 and 3): a Mailchimp user changed a
member's address (`PATCH .../members/{hash}` with a new `email_address`); its `id`, the MD5
of the address, changed with it, and segsync, linking members by `id`, saw someone new: it
created them on HubSpot and Brevo next to the old records, which stayed subscribed (the
person twice; a later opt-out never reached the old records), and re-created a person
deleted on Brevo. A rename on a platform is an update of the same contact (docs/sync.md).
States made when the platform id was the hash move to the new ids on the first run (each
record is linked by its alias, the hash), nothing created, nobody duplicated.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from swap_world import ANNA, BERT, SwapWorld

from segsync.sync.snapshot import CanonicalView

pytest.importorskip("segsync_mailchimp")
pytest.importorskip("segsync_hubspot")
pytest.importorskip("segsync_brevo")

from segsync_mailchimp import subscriber_hash

pytestmark = pytest.mark.slow

NEW = "anna.new@shop.test"


@pytest.fixture
def world() -> Iterator[SwapWorld]:
    world = SwapWorld()
    first = world.sync()
    assert first.errors == [], first.errors
    yield world
    world.close()


def emails(world: SwapWorld) -> list[str]:
    """Every canonical contact's address (one per person)."""
    return sorted(CanonicalView.decode(view).email
                  for _, view, _ in world.store.scoped("identity").canonical_contacts())


def mailchimp_ids(world: SwapWorld) -> dict[str, str]:
    """The platform ids segsync's id map links Mailchimp members by, per address (looked
    up by each member's contact_id and hash)."""
    lst = world.mc.lists[world.mc.default_list_id]
    by_pid = {m.contact_id: m.email_address for m in lst.members.values()}
    by_pid.update({h: m.email_address for h, m in lst.members.items()})
    known = world.store.cids_by_platform_id("identity", "mailchimp", sorted(by_pid))
    return {by_pid[pid]: pid for pid in known}


def test_a_mailchimp_rename_renames_the_person_everywhere(world: SwapWorld) -> None:
    """Finding 2: ANNA's address changed in Mailchimp; one run renames her records on
    HubSpot and Brevo (nothing created, her old address held nowhere, still subscribed),
    and the run after writes nothing."""
    world.mailchimp_readdress(ANNA, NEW)

    report = world.sync()

    assert report.errors == [], report.errors
    assert sum(p.created for p in report.platforms.values()) == 0
    assert world.hs.contact_by_email(ANNA) is None
    assert world.hs.contact_by_email(NEW)["firstname"] == "Anna"
    assert world.bv.contact(ANNA) is None
    assert world.bv.contact(NEW).attributes["FIRSTNAME"] == "Anna"
    # (HubSpot keeps subscriptions per address: its renamed record's is not asserted here)
    assert {k: v for k, v in world.subscribed_anywhere(NEW).items() if k != "hubspot"} == {
        "mailchimp": "subscribed", "brevo": "in segsync's list"}
    assert ANNA not in emails(world)
    assert NEW in emails(world)
    after = world.sync()
    assert (after.errors, after.writes) == ([], 0)


def test_an_opt_out_after_a_mailchimp_rename_reaches_every_record(world: SwapWorld) -> None:
    """Finding 2's consequence: the renamed person unsubscribes in Mailchimp; the opt-out
    reaches her (only) records on HubSpot and Brevo, none left subscribed at either
    address."""
    world.mailchimp_readdress(ANNA, NEW)
    assert world.sync().errors == []
    world._call(world.mc, {"Authorization": f"Bearer {world.mc.api_key}"}, "PATCH",
                f"/lists/{world.mc.default_list_id}/members/{subscriber_hash(NEW)}",
                json={"status": "unsubscribed"})

    report = world.sync()

    assert report.errors == [], report.errors
    assert world.subscribed_anywhere(NEW) == {}
    assert world.hs.contact_by_email(ANNA) is None
    assert world.bv.contact(ANNA) is None


def test_a_mailchimp_rename_of_a_person_deleted_on_brevo_recreates_nobody(
    world: SwapWorld,
) -> None:
    """Finding 3: BERT deleted on Brevo (recorded), then renamed in Mailchimp: Brevo gets
    no record at either address; HubSpot's record is renamed."""
    world._call(world.bv, {"api-key": world.bv.api_key}, "DELETE", f"/contacts/{BERT}",
                params={"identifierType": "email_id"})
    world._call(world.mc, {"Authorization": f"Bearer {world.mc.api_key}"}, "PATCH",
                f"/lists/{world.mc.default_list_id}/members/{subscriber_hash(BERT)}",
                json={"merge_fields": {"FNAME": "Bertie"}})
    assert world.sync().errors == []
    world.mailchimp_readdress(BERT, "robert@shop.test")

    reports = [world.sync(), world.sync()]

    assert [r.errors for r in reports] == [[], []]
    assert world.bv.contact(BERT) is None
    assert world.bv.contact("robert@shop.test") is None
    assert world.hs.contact_by_email(BERT) is None
    assert world.hs.contact_by_email("robert@shop.test")["firstname"] == "Bertie"
    assert BERT not in emails(world)
    assert "robert@shop.test" in emails(world)


def _as_old_scheme(world: SwapWorld) -> None:
    """The state as the connector left it when a member's platform id was its subscriber
    hash: every Mailchimp link moved to the hash, the read cursor without its id scheme."""
    store = world.store
    lst = world.mc.lists[world.mc.default_list_id]
    moves = [(m.contact_id, h) for h, m in lst.members.items()]
    store.readdress_records("identity", "mailchimp", moves)
    cursor = store.cursor("identity", "mailchimp")
    assert cursor is not None
    data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    data.pop("i")
    store.set_pending_cursor("identity", "mailchimp",
                             base64.urlsafe_b64encode(json.dumps(data).encode()).decode())
    store.finish("identity")
    assert store.cursor("identity", "mailchimp") != cursor


def test_a_state_of_hash_ids_moves_to_contact_ids_without_a_duplicate(
    world: SwapWorld,
) -> None:
    """An old state (platform ids: subscriber hashes): the first run links every member by
    its alias (nothing created, no duplicate, no error) and moves it to its contact_id,
    whether or not it changed since; a rename after that is a rename everywhere."""
    before = emails(world)
    _as_old_scheme(world)
    lst = world.mc.lists[world.mc.default_list_id]
    assert set(mailchimp_ids(world).values()) <= set(lst.members)  # hashes

    report = world.sync()

    assert report.errors == [], report.errors
    assert sum(p.created for p in report.platforms.values()) == 0
    assert emails(world) == before
    ids = mailchimp_ids(world)
    assert ids[ANNA] == lst.members[subscriber_hash(ANNA)].contact_id
    assert ids[BERT] == lst.members[subscriber_hash(BERT)].contact_id
    assert not set(ids.values()) & set(lst.members)  # no hash left
    world.mailchimp_readdress(ANNA, NEW)
    renamed = world.sync()
    assert renamed.errors == [], renamed.errors
    assert sum(p.created for p in renamed.platforms.values()) == 0
    assert world.hs.contact_by_email(ANNA) is None
    assert world.bv.contact(NEW) is not None
    assert world.bv.contact(ANNA) is None
    assert {"mailchimp", "brevo"} <= set(world.subscribed_anywhere(NEW))
