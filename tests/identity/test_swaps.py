"""Admins swap two people's addresses on one platform; segsync relinks, never cross-links.

Found by an outside tester (issues #13/#14): ANNA opted in (on HubSpot), BERT never did. A
Brevo admin swapped their addresses; every later run kept BERT in segsync's Brevo list of
subscribers, ANNA out of it, and tried to "rename" them on HubSpot, failing every run. On
HubSpot, a swap left two canonical contacts sharing one address. A record whose new address
is another known person's is that person's record now: one run converges (BERT out of
segsync's lists and subscribed nowhere, ANNA back in, each record holding its person's data),
the run is told which records were relinked, and the run after writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from swap_world import ANNA, BERT, PLATFORMS, TEMP, SwapWorld

from segsync.model import ConsentStatus
from segsync.sync.report import RunReport
from segsync.sync.snapshot import CanonicalView

pytest.importorskip("segsync_mailchimp")
pytest.importorskip("segsync_hubspot")
pytest.importorskip("segsync_brevo")

pytestmark = pytest.mark.slow


@pytest.fixture
def world() -> Iterator[SwapWorld]:
    world = SwapWorld()
    first = world.sync()
    assert first.errors == [], first.errors
    assert world.subscribed_anywhere(ANNA) == {
        "mailchimp": "subscribed", "hubspot": "SUBSCRIBED", "brevo": "in segsync's list"}
    assert world.subscribed_anywhere(BERT) == {}
    assert (world.in_annas(ANNA), world.in_annas(BERT)) == (set(PLATFORMS), set())
    yield world
    world.close()


def views(world: SwapWorld) -> dict[str, CanonicalView]:
    """Every canonical contact, by id."""
    return {cid: CanonicalView.decode(view)
            for cid, view, _ in world.store.scoped("identity").canonical_contacts()}


def identity_notes(report: RunReport) -> list[dict[str, str]]:
    return [d for d in report.diagnostics if d.get("step") == "identity"]


def assert_converged_after_swap(world: SwapWorld, report: RunReport, platform: str) -> None:
    """One run after the swap: nobody cross-linked, the relink told, the next run idle."""
    assert report.errors == [], report.errors
    assert world.subscribed_anywhere(BERT) == {}
    assert world.subscribed_anywhere(ANNA) == {
        "mailchimp": "subscribed", "hubspot": "SUBSCRIBED", "brevo": "in segsync's list"}
    assert (world.in_annas(ANNA), world.in_annas(BERT)) == (set(PLATFORMS), set())
    assert (world.mc.get_member(ANNA).merge_fields["FNAME"],
            world.mc.get_member(BERT).merge_fields["FNAME"]) == ("Anna", "Bert")
    assert (world.hs.contact_by_email(ANNA)["firstname"],
            world.hs.contact_by_email(BERT)["firstname"]) == ("Anna", "Bert")
    assert (world.bv.contact(ANNA).attributes["FIRSTNAME"],
            world.bv.contact(BERT).attributes["FIRSTNAME"]) == ("Anna", "Bert")
    emails = [view.email for view in views(world).values()]
    assert len(emails) == len(set(emails))  # no two people share an address
    notes = identity_notes(report)
    assert [n["platform"] for n in notes] == [platform]
    assert "swapped addresses" in notes[0]["message"]
    assert ANNA not in notes[0]["message"]
    assert BERT not in notes[0]["message"]

    after = world.sync()
    assert (after.errors, after.writes) == ([], 0)
    assert identity_notes(after) == []


def test_a_brevo_swap_relinks_both_records_and_converges_in_one_run(world: SwapWorld) -> None:
    """The tester's case: BERT's address now on ANNA's old Brevo record (in segsync's list,
    SEGSYNC_CONSENT subscribed); one run takes BERT out and puts ANNA back, nobody renamed."""
    world.swap("brevo")
    assert "segment: subs" in world.brevo_lists(BERT)  # ANNA's record, now at BERT's address

    report = world.sync()

    assert_converged_after_swap(world, report, "brevo")
    consent = {e: world.bv.contact(e).attributes.get("SEGSYNC_CONSENT") for e in (ANNA, BERT)}
    assert consent[BERT] != consent[ANNA]  # BERT's record no longer says ANNA's consent
    hubspot = report.platforms["hubspot"]
    assert (hubspot.created, hubspot.updated, hubspot.errors) == (0, 0, 0)  # no "rename"


def test_a_hubspot_swap_relinks_both_records_and_converges_in_one_run(
    world: SwapWorld,
) -> None:
    """HubSpot keeps subscriptions per address: after the swap ANNA's SUBSCRIBED is read on
    the record that was BERT's. Nobody ends up sharing an address, BERT subscribed nowhere."""
    world.swap("hubspot")

    report = world.sync()

    assert_converged_after_swap(world, report, "hubspot")


def test_a_mailchimp_swap_relinks_both_records_and_converges_in_one_run(
    world: SwapWorld,
) -> None:
    """The emulator renames a member on a PATCH of `email_address`, like Mailchimp."""
    world.swap("mailchimp")

    report = world.sync()

    assert_converged_after_swap(world, report, "mailchimp")


def test_a_brevo_swap_made_while_segsync_reads_converges_by_the_next_run(
    world: SwapWorld,
) -> None:
    """The admin swaps on Brevo while segsync pages through HubSpot: whichever run sees the
    swap relinks the records; no run errs, and two runs leave everyone as they should be."""
    swapped: list[int] = []

    async def swap_now(served: int) -> None:
        if not swapped:
            swapped.append(served)
            await world.brevo_readdress_now(ANNA, TEMP)
            await world.brevo_readdress_now(BERT, ANNA)
            await world.brevo_readdress_now(TEMP, BERT)

    world.hs.after_read_page = swap_now

    during = world.sync()
    world.hs.after_read_page = None
    report = world.sync()

    assert swapped
    assert during.errors == [], during.errors
    assert len(identity_notes(during) + identity_notes(report)) == 1
    assert report.errors == [], report.errors
    assert world.subscribed_anywhere(BERT) == {}
    assert (world.in_annas(ANNA), world.in_annas(BERT)) == (set(PLATFORMS), set())
    assert (world.bv.contact(ANNA).attributes["FIRSTNAME"],
            world.bv.contact(BERT).attributes["FIRSTNAME"]) == ("Anna", "Bert")
    after = world.sync()
    assert (after.errors, after.writes) == ([], 0)


def test_a_rename_onto_a_free_address_stays_a_rename(world: SwapWorld) -> None:
    """ANNA's Brevo record moved to an address nobody holds: she is renamed everywhere (no
    creation, no relink), and keeps her consent; BERT is untouched."""
    new = "anna.new@shop.test"
    world.brevo_readdress(ANNA, new)

    report = world.sync()

    assert report.errors == [], report.errors
    assert identity_notes(report) == []
    assert sum(p.created for p in report.platforms.values()) == 0
    assert world.mc.get_member(ANNA) is None
    assert world.mc.get_member(new) is not None
    assert world.hs.contact_by_email(new)["firstname"] == "Anna"
    assert world.hs.contact_by_email(ANNA) is None
    known = {view.email: view for view in views(world).values()}
    assert ANNA not in known
    assert known[new].consent is ConsentStatus.SUBSCRIBED
    assert world.mc.get_member(new).status == "subscribed"
    assert world.subscribed_anywhere(BERT) == {}


def test_the_run_after_a_rename_writes_nothing(world: SwapWorld) -> None:
    """The rename above, then one more run: nothing to write, no error."""
    world.brevo_readdress(ANNA, "anna.new@shop.test")
    assert world.sync().errors == []

    after = world.sync()

    assert (after.errors, after.writes) == ([], 0)
