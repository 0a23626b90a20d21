"""Consent findings of the outside tester (issue #13): races during a run, and Brevo.

Every test runs the engine over the three lived-in emulated accounts of `lived_in.World`
(people in every status, the user's own lists and tags), with people acting in a platform
*during* a run where the finding does: right before a given request (the emulator's
`draw_fault`, drawn once per request before it is served) or right after the read
(`after_read_page`, once the last page was sent).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("segsync_mailchimp")
pytest.importorskip("segsync_hubspot")
pytest.importorskip("segsync_brevo.emulator")

from lived_in import SUBSCRIPTION_ID, World

from segsync.sync.report import RunReport

JON = "jon.unspecified@lived.dev"  # a HubSpot contact with no subscription status
HAL = "hal.subscribed@lived.dev"  # SUBSCRIBED on HubSpot, in the user's Brevo list
ADA = "ada.subscribed@lived.dev"  # subscribed on Mailchimp, tagged vip
DEE = "dee.unsubscribed@lived.dev"  # unsubscribed on Mailchimp, in the user's Brevo list


@pytest.fixture
def world() -> Any:
    w = World()
    yield w
    w.close()


def sync(w: World) -> RunReport:
    """One engine run, once HubSpot's search shows what people did (the index lag); the
    floor's own checks are the tests' here."""
    w.clock.advance(w.hs.read_lag_seconds)
    report = w.loop.run_until_complete(w.engine.sync())
    w.clock.advance(600)
    return report


def wrote(report: RunReport) -> int:
    """Records, consent statuses, tags and members written by a run, on every platform."""
    return sum(
        p.created + p.updated + p.consent_changes + p.tags_added + p.tags_removed
        + p.members_added + p.members_removed
        for p in report.platforms.values()
    )


def before_request(
    emulator: Any, wanted: Callable[[str, str], bool], act: Callable[[], None]
) -> list[str]:
    """Run `act` once, right before the first request `wanted(method, path)` is served."""
    fired: list[str] = []
    draw = emulator.draw_fault

    def hooked(method: str, path: str) -> str | None:
        if not fired and wanted(method, path):
            fired.append(f"{method} {path}")
            act()
        return draw(method, path)

    emulator.draw_fault = hooked
    return fired


def signs_up_on_mailchimp(w: World, email: str, first_name: str | None = None) -> None:
    """The person gives an explicit opt-in on Mailchimp (a form)."""
    merge = {"FNAME": first_name} if first_name else None
    w.mc.seed_member(email, "subscribed", merge_fields=merge, ip_opt="203.0.113.9",
                     timestamp_opt="2026-11-02T09:30:00+00:00")


# -- 1. HubSpot: an opt-out made during the run is not overwritten -------------------------


def test_hubspot_opt_out_of_all_right_before_the_status_write_is_not_overwritten(
    world: World,
) -> None:
    """Jon opts in on Mailchimp; while segsync writes it to HubSpot he unsubscribes from all
    email there, right before the status batch write. HubSpot refuses to resubscribe him
    (the emulator's strict reading); the run reports a consent-floor refusal (no ledger row
    for a status not written), the next run spreads his opt-out, the one after is quiet."""
    w = world
    assert not sync(w).errors
    signs_up_on_mailchimp(w, JON)
    fired = before_request(
        w.hs, lambda m, p: m == "POST" and p.endswith("/statuses/batch/write"),
        lambda: w.hs.unsubscribe_all(JON),
    )
    ledger_before = len(w.store.ledger(w.config))

    report = sync(w)

    assert fired
    assert w.hs.subscription_status(JON, SUBSCRIPTION_ID) == "NOT_SUBSCRIBED"
    assert (w.hs.contact_by_email(JON) or {}).get("hs_email_optout") == "true"
    refusals = [e for e in report.errors if e.platform == "hubspot"]
    assert [(e.email, e.code) for e in refusals] == [(JON, "CONSENT_OPT_OUT")]
    assert "not re-subscribed" in refusals[0].message
    rows = [r for r in w.store.ledger(w.config)[ledger_before:]
            if r.platform == "hubspot" and r.source == "sync"]
    assert [(r.email, r.sent or r.new) for r in rows if r.email == JON] == []

    report = sync(w)  # his opt-out, read from HubSpot, goes everywhere
    assert w.mc_status(JON) == "unsubscribed"
    assert not [e for e in report.errors if e.email == JON]
    assert wrote(sync(w)) == 0


def test_hubspot_opt_out_during_the_upserts_is_seen_by_the_guard_read(world: World) -> None:
    """Jon (a new first name and an opt-in from Mailchimp) unsubscribes from the managed
    type while segsync upserts his record: the guard read right before the status write
    sees it, and no SUBSCRIBED is sent for him (HubSpot itself would resubscribe a
    per-type opt-out: only the guard stands between)."""
    w = world
    assert not sync(w).errors
    signs_up_on_mailchimp(w, JON, first_name="Jonathan")
    fired = before_request(
        w.hs, lambda m, p: m == "POST" and p.endswith("/contacts/batch/upsert"),
        lambda: w.hs.set_subscription(JON, SUBSCRIPTION_ID, subscribed=False),
    )
    writes_before = len(w.hs.status_writes)

    report = sync(w)

    assert fired
    assert (w.hs.contact_by_email(JON) or {}).get("firstname") == "Jonathan"
    assert w.hs.subscription_status(JON, SUBSCRIPTION_ID) == "NOT_SUBSCRIBED"
    assert (JON, SUBSCRIPTION_ID, "SUBSCRIBED") not in w.hs.status_writes[writes_before:]
    assert [(e.email, e.code) for e in report.errors if e.platform == "hubspot"] == [
        (JON, "CONSENT_OPT_OUT")
    ]
    sync(w)
    assert w.mc_status(JON) == "unsubscribed"
    assert wrote(sync(w)) == 0


def test_the_ledger_previous_of_a_hubspot_opt_in_is_what_hubspot_held_then(
    world: World,
) -> None:
    """Jon subscribes himself on HubSpot (a form) while segsync upserts the opt-in it brings
    from Mailchimp: the ledger row of segsync's write says HubSpot held `subscribed` before
    it (the guard read's word), not the `non_subscribed` of the last run."""
    w = world
    assert not sync(w).errors
    signs_up_on_mailchimp(w, JON, first_name="Jonathan")
    before_request(
        w.hs, lambda m, p: m == "POST" and p.endswith("/contacts/batch/upsert"),
        lambda: w.hs.set_subscription(JON, SUBSCRIPTION_ID, subscribed=True,
                                      legal_basis="CONSENT_WITH_NOTICE", explanation="form"),
    )
    ledger_before = len(w.store.ledger(w.config))

    report = sync(w)

    assert not report.errors
    rows = [r for r in w.store.ledger(w.config)[ledger_before:]
            if r.platform == "hubspot" and r.source == "sync" and r.email == JON]
    assert [(r.previous, r.sent) for r in rows] == [("subscribed", "subscribed")]


# -- 2. Brevo: a blocklist made during the run survives a rename ---------------------------


def test_brevo_blocklist_made_after_the_read_survives_a_rename(world: World) -> None:
    """Hal is renamed in HubSpot; right after segsync read Brevo, he blocklists himself
    there (an unsubscribe link). Brevo clears the blocklist when an email changes: the
    rename must carry `emailBlacklisted: true`, read right before it."""
    w = world
    assert not sync(w).errors
    new = "hal.new@lived.dev"
    hal_id = next(i for i, r in w.hs.contacts.items() if r.properties.get("email") == HAL)
    w.hs.modify_contact(hal_id, {"email": new})
    # after the read and its re-check (segsync.sync.recheck, which would defer Hal's writes),
    # before the rename's own guard read
    pages = before_request(
        w.bv, lambda m, p: m == "GET" and p.startswith("/v3/contacts/") and "hal" in p,
        lambda: w.bv.blocklist(HAL),
    )

    sync(w)

    assert pages
    contact = w.bv.contact(new)
    assert contact is not None, "the rename reached Brevo"
    assert contact.email_blacklisted
    assert new not in w.bv.unblocklist_writes
    sync(w)  # his opt-out, read from Brevo, goes everywhere
    assert w.hs.subscription_status(new, SUBSCRIPTION_ID) == "NOT_SUBSCRIBED"
    assert wrote(sync(w)) == 0


# -- 3. Brevo: unsubscribing from a list segsync writes is an opt-out ----------------------


def test_brevo_unsubscribe_from_a_segsync_list_is_an_opt_out_everywhere(world: World) -> None:
    """Ada (subscribed on Mailchimp, tagged vip) is in segsync's Brevo list `tag: vip`; she
    clicks its unsubscribe link (Brevo `listUnsubscribed`). That is her opt-out: segsync
    spreads it (Mailchimp unsubscribed, HubSpot, Brevo blocklisted), the evidence names the
    list, her vip tag stays (leaving a list is not an untagging), and she is never put back
    in the list."""
    w = world
    assert not sync(w).errors
    vip = next(i for i, d in w.bv.lists.items() if d["name"] == "tag: vip")
    contact = w.bv.contact(ADA)
    assert contact is not None
    assert vip in contact.list_ids
    w.bv.unsubscribe_from_list(ADA, vip)
    ledger_before = len(w.store.ledger(w.config))

    sync(w)

    assert w.mc_status(ADA) == "unsubscribed"
    assert w.hs.subscription_status(ADA, SUBSCRIPTION_ID) == "NOT_SUBSCRIBED"
    contact = w.bv.contact(ADA)
    assert contact is not None
    assert contact.email_blacklisted
    assert vip not in contact.list_ids
    assert "vip" in w.mc.get_member_tags(ADA)
    seen = [r for r in w.store.ledger(w.config)[ledger_before:]
            if r.email == ADA and r.platform == "canonical"]
    assert [r.new for r in seen] == ["unsubscribed"]
    assert f"listUnsubscribed={vip} (tag: vip)" in (seen[0].evidence or "")
    assert wrote(sync(w)) == 0


# -- 4. Brevo: a blocklist lifted by an admin is restored -----------------------------------


def test_brevo_blocklist_lifted_by_an_admin_is_restored_and_runs_stay_quiet(
    world: World,
) -> None:
    """Dee unsubscribed on Mailchimp: segsync blocklisted her in Brevo. An admin lifts it
    (`emailBlacklisted: false`): she is reachable by Brevo campaigns again, so the next run
    blocklists her again; the run after writes nothing. Un-blocklisted people whose
    canonical consent is no opt-out are not written at all."""
    w = world
    sync(w)
    assert not sync(w).errors
    contact = w.bv.contact(DEE)
    assert contact is not None
    assert contact.email_blacklisted
    contact.email_blacklisted = False  # hook: the admin's `PUT {"emailBlacklisted": false}`
    contact.blocklist_source = None
    w.bv._touch(contact)

    report = sync(w)

    assert contact.email_blacklisted
    assert report.platforms["brevo"].consent_changes == 1
    assert report.platforms["brevo"].updated == 1
    assert wrote(sync(w)) == 0


# -- 5. Brevo: a value Brevo cannot hold (its attribute is gone) is not read ----------------


def test_a_deleted_brevo_field_attribute_clears_nothing_elsewhere(world: World) -> None:
    """Hal's country is FR everywhere; a Brevo admin deletes the COUNTRY attribute (every
    value goes), then edits Hal's first name there. The country Brevo can no longer hold
    is not read as cleared: Mailchimp and HubSpot keep FR, Brevo gets the attribute and
    the value back, and the next run is quiet."""
    w = world
    hal_id = next(i for i, r in w.hs.contacts.items() if r.properties.get("email") == HAL)
    w.hs.modify_contact(hal_id, {"country": "FR"})
    assert not sync(w).errors
    contact = w.bv.contact(HAL)
    assert contact is not None
    assert contact.attributes.get("COUNTRY") is not None
    w.bv.delete_attribute("COUNTRY")
    contact.attributes["FIRSTNAME"] = "Harold"  # hook: an edit in Brevo's UI
    w.bv._touch(contact)

    report = sync(w)

    assert not report.errors
    assert (w.hs.contact_by_email(HAL) or {}).get("country") == "FR"
    assert (w.hs.contact_by_email(HAL) or {}).get("firstname") == "Harold"
    assert "COUNTRY" in w.bv.attributes
    assert contact.attributes.get("COUNTRY") is not None
    assert wrote(sync(w)) == 0


def test_a_deleted_brevo_tags_attribute_removes_no_tag_elsewhere(world: World) -> None:
    """Cy (transactional on Mailchimp, never opted in) is tagged Webinar: in Brevo her tags
    live in segsync's SEGSYNC_TAGS attribute. An admin deletes it, then edits Cy there. Her
    tag is not removed anywhere, and the next runs restore it in Brevo and go quiet."""
    w = world
    cy = "cy.transactional@lived.dev"
    w.mailchimp_tag(cy, "vip")
    assert not sync(w).errors
    contact = w.bv.contact(cy)
    assert contact is not None
    assert "vip" in (contact.attributes.get("SEGSYNC_TAGS") or [])
    w.bv.delete_attribute("SEGSYNC_TAGS")
    contact.attributes["FIRSTNAME"] = "Cyrielle"  # hook: an edit in Brevo's UI
    w.bv._touch(contact)

    report = sync(w)

    assert not report.errors
    assert "vip" in w.mc.get_member_tags(cy)
    assert "SEGSYNC_TAGS" in w.bv.attributes
    assert "vip" in (contact.attributes.get("SEGSYNC_TAGS") or [])
    assert wrote(sync(w)) == 0
