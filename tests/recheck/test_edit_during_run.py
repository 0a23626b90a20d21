"""Re-check before apply (segsync.sync.recheck; outside tester, finding 14.1).

A person edits a record on a platform *while* segsync pages that platform (after the
record's page was read). The plan was merged on the older read, so its writes of that
contact, on every platform, wait for the next run, which merges the new edit (latest change
wins); an opt-out of that contact is written all the same. Every test runs the engine over
the three lived-in emulated accounts of `lived_in.World`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("segsync_mailchimp")
pytest.importorskip("segsync_hubspot")
pytest.importorskip("segsync_brevo.emulator")

from lived_in import PLATFORMS, SUBSCRIPTION_ID, World

from segsync.sync.report import RunReport
from segsync.testing import between_pages

ADA = "ada.subscribed@lived.dev"  # subscribed on Mailchimp, on HubSpot without a status


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    sync(w)
    sync(w)  # Ada is synced everywhere
    yield w
    w.close()


def sync(w: World) -> RunReport:
    report: RunReport = w.loop.run_until_complete(w.engine.sync())
    w.clock.advance(600)
    return report


def hs_id(w: World, email: str) -> str:
    return str(next(i for i, r in w.hs.contacts.items() if r.properties.get("email") == email))


def mc_edit(w: World, email: str, **merge: Any) -> None:
    """A Mailchimp user edits the member's merge fields."""
    member = w.mc.get_member(email)
    assert member is not None
    member.merge_fields.update(merge)
    member.last_changed = w.clock.now()


def first_names(w: World, email: str) -> dict[str, Any]:
    mc = w.mc.get_member(email)
    hs = w.hs.contact_by_email(email)
    bv = w.bv.contact(email)
    return {
        "mailchimp": mc.merge_fields.get("FNAME") if mc else None,
        "hubspot": hs.get("firstname") if hs else None,
        "brevo": bv.attributes.get("FIRSTNAME") if bv else None,
    }


def recheck_notes(report: RunReport) -> list[dict[str, str]]:
    return [d for d in report.diagnostics if d.get("step") == "recheck"]


def during_read(w: World, emulator: Any, act: Any) -> Any:
    """Run `act` once, after the first page of `emulator`'s listing, a second later."""
    fired: list[int] = []

    def once(served: int) -> None:
        if not fired:
            fired.append(served)
            w.clock.advance(1)
            act()

    return between_pages(emulator, once), fired


def test_hubspot_edit_during_the_read_is_not_overwritten(world: World) -> None:
    """Mailchimp's user renames Ada 'Adeline'; a minute later, while segsync pages HubSpot,
    HubSpot's user types 'Adda'. The run does not write 'Adeline' over 'Adda' (nor anywhere:
    the merge was stale), says so, and the next runs spread 'Adda' (the latest edit)."""
    w = world
    ada = hs_id(w, ADA)
    mc_edit(w, ADA, FNAME="Adeline")
    w.clock.advance(60)
    hook, fired = during_read(w, w.hs, lambda: w.hs.modify_contact(ada, {"firstname": "Adda"}))
    with hook:
        report = sync(w)
    assert fired
    assert first_names(w, ADA)["hubspot"] == "Adda", "the edit made during the read is kept"
    assert first_names(w, ADA)["brevo"] != "Adeline", "no write of the stale merge"
    notes = recheck_notes(report)
    assert [n["platform"] for n in notes] == ["hubspot"]
    assert notes[0]["message"].startswith("1 contact(s) changed on hubspot during this run")
    sync(w)
    sync(w)
    assert first_names(w, ADA) == dict.fromkeys(PLATFORMS, "Adda")


def test_mailchimp_edit_during_the_read_is_not_overwritten(world: World) -> None:
    """HubSpot's user renames Ada 'Adah'; a minute later, while segsync pages Mailchimp,
    Mailchimp's user types 'Adelie': kept, and spread by the next runs."""
    w = world
    w.hs.modify_contact(hs_id(w, ADA), {"firstname": "Adah"})
    w.clock.advance(60)
    hook, fired = during_read(w, w.mc, lambda: mc_edit(w, ADA, FNAME="Adelie"))
    with hook:
        report = sync(w)
    assert fired
    assert first_names(w, ADA)["mailchimp"] == "Adelie"
    assert [n["platform"] for n in recheck_notes(report)] == ["mailchimp"]
    sync(w)
    sync(w)
    assert first_names(w, ADA) == dict.fromkeys(PLATFORMS, "Adelie")


def test_a_quiet_run_costs_one_incremental_read_per_platform_and_defers_nothing(
    world: World,
) -> None:
    """Nothing changed during the run: the re-check reads each platform once, incrementally
    (HubSpot: one search; Mailchimp: its members and archived streams; Brevo: its contacts,
    decoded with the attribute catalogue the pull read seconds before), and HubSpot, whose
    search lags, also reads the one record it writes by id (a batch read and its
    subscription status: 2 calls); it defers nothing, and the planned write goes out. A run
    with nothing to write re-checks nothing."""
    w = world
    sync(w)  # converged
    mc_edit(w, ADA, FNAME="Adeline")
    w.clock.advance(60)
    report = sync(w)
    assert recheck_notes(report) == []
    assert {p: r.recheck_calls for p, r in report.platforms.items()} == {
        "mailchimp": 2, "hubspot": 1 + 2, "brevo": 1}
    assert first_names(w, ADA) == dict.fromkeys(PLATFORMS, "Adeline")
    quiet = sync(w)  # nothing planned: no re-check at all
    assert {p: r.recheck_calls for p, r in quiet.platforms.items()} == dict.fromkeys(
        PLATFORMS, 0)


def test_an_opt_out_of_a_deferred_contact_is_still_written(world: World) -> None:
    """Ada unsubscribes on Mailchimp; while segsync pages HubSpot, HubSpot's user renames
    her. Her writes wait for the next run, but her opt-out reaches HubSpot and Brevo in this
    run; the rename is kept and spread, and she stays opted out everywhere."""
    w = world
    w.mc.unsubscribe(ADA)
    w.clock.advance(60)
    ada = hs_id(w, ADA)
    hook, fired = during_read(w, w.hs, lambda: w.hs.modify_contact(ada, {"firstname": "Adda"}))
    with hook:
        report = sync(w)
    assert fired
    assert [n["platform"] for n in recheck_notes(report)] == ["hubspot"]
    assert w.hs.subscription_status(ADA, SUBSCRIPTION_ID) == "NOT_SUBSCRIBED"
    assert w.bv.contact(ADA).email_blacklisted
    assert first_names(w, ADA)["hubspot"] == "Adda"
    sync(w)
    assert first_names(w, ADA) == dict.fromkeys(PLATFORMS, "Adda")
    assert w.mc.get_member(ADA).status == "unsubscribed"
    assert w.hs.subscription_status(ADA, SUBSCRIPTION_ID) == "NOT_SUBSCRIBED"
    assert w.bv.contact(ADA).email_blacklisted


def test_a_saved_plan_is_rechecked_before_it_is_applied(world: World) -> None:
    """`plan` then `apply`: HubSpot's user types 'Adda' between the two; the apply does not
    write the plan's 'Adeline' over it, and the next runs spread 'Adda'."""
    w = world
    mc_edit(w, ADA, FNAME="Adeline")
    w.clock.advance(60)
    plan = w.loop.run_until_complete(w.engine.plan())
    assert any(row["cid"] == ADA for row in plan.platforms["hubspot"].changes)
    w.clock.advance(60)
    w.hs.modify_contact(hs_id(w, ADA), {"firstname": "Adda"})
    report = w.loop.run_until_complete(w.engine.apply(plan))
    w.clock.advance(600)
    assert first_names(w, ADA)["hubspot"] == "Adda"
    assert [n["platform"] for n in recheck_notes(report)] == ["hubspot"]
    assert report.platforms["hubspot"].recheck_calls >= 1  # its search, Ada's consent
    sync(w)
    sync(w)
    assert first_names(w, ADA) == dict.fromkeys(PLATFORMS, "Adda")


def test_an_opt_out_made_during_the_read_is_kept_and_spread(world: World) -> None:
    """Hal is renamed on HubSpot; while segsync pages Brevo, he blocklists himself there.
    The run does not send the rename (Brevo clears a blocklist on an email change) nor any
    other write of his; the next run spreads his opt-out and the rename, blocklist kept."""
    w = world
    hal = "hal.subscribed@lived.dev"
    new = "hal.new@lived.dev"
    w.hs.modify_contact(hs_id(w, hal), {"email": new})
    w.clock.advance(60)
    hook, fired = during_read(w, w.bv, lambda: w.bv.blocklist(hal))
    with hook:
        report = sync(w)
    assert fired
    assert [n["platform"] for n in recheck_notes(report)] == ["brevo"]
    assert w.bv.contact(new) is None
    assert w.bv.contact(hal).email_blacklisted
    sync(w)
    assert w.bv.contact(new).email_blacklisted
    assert w.hs.subscription_status(new, SUBSCRIPTION_ID) == "NOT_SUBSCRIBED"
    assert w.mc.get_member(new) is None or w.mc.get_member(new).status != "subscribed"
    sync(w)
    assert w.bv.contact(new).email_blacklisted
