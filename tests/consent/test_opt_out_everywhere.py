"""An opt-out anywhere is an opt-out everywhere, its own platform included, on the three
emulators from lived-in accounts (`lived_in.World`) with people acting between runs
(issue 13, item 7: the defects the foreign-actor campaign found). Each run is also judged
by the whole floor of `lived_in` (`World.sync` returns its violations)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("segsync_mailchimp")
pytest.importorskip("segsync_hubspot")
pytest.importorskip("segsync_brevo.emulator")

from lived_in import CONSENT_LIST, World

OLA = "ola.listunsub@lived.dev"  # Brevo: in Customers, listUnsubscribed from Newsletter
NOE = "noe.blocked@lived.dev"  # Brevo: blocklisted, in Customers
DEE = "dee.unsubscribed@lived.dev"  # Mailchimp: unsubscribed
BEN = "ben.pending@lived.dev"  # Mailchimp: pending; HubSpot: no status


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    try:
        yield w
    finally:
        w.close()


def sync(world: World) -> None:
    problems = world.sync()
    assert not problems, "\n".join(problems)


def blocklisted(world: World, email: str) -> bool:
    contact = world.bv.contact(email)
    assert contact is not None, email
    return bool(contact.email_blacklisted)


@pytest.mark.slow
def test_a_consent_list_unsubscribe_blocklists_the_person_in_brevo(world: World) -> None:
    """Ola left the declared consent list but is still in the user's Customers list: after
    one run she is blocklisted in Brevo (Brevo campaigns to Customers no longer reach her)
    and an opt-out on the other platforms; the blocklist has its ledger row."""
    sync(world)

    assert blocklisted(world, OLA)
    assert world.mc_status(OLA) == "unsubscribed"
    assert world.hs_status(OLA) == "NOT_SUBSCRIBED"
    rows = [e for e in world.store.ledger(world.config, email=OLA)
            if e.source == "sync" and e.platform == "brevo"]
    assert [(e.sent, e.source_platform) for e in rows] == [("unsubscribed", "brevo")]


@pytest.mark.slow
def test_an_unsubscribe_after_a_form_double_opt_in_lifted_the_blocklist(world: World) -> None:
    """Noe was blocklisted; a Brevo form's double opt-in lifted it (consent list, DOI
    attribute); she then unsubscribes from the consent list: blocklisted again by segsync,
    an opt-out everywhere."""
    sync(world)
    world.brevo_confirm_double_opt_in(NOE)
    sync(world)
    assert not blocklisted(world, NOE)

    world.brevo_unsubscribe_from_list(NOE, CONSENT_LIST)
    sync(world)

    assert blocklisted(world, NOE)
    assert world.mc_status(NOE) in ("unsubscribed", "cleaned")
    assert world.hs_status(NOE) == "NOT_SUBSCRIBED"


@pytest.mark.slow
@pytest.mark.parametrize("between", [True, False], ids=["run-between", "same-window"])
def test_a_new_opt_out_that_keeps_a_status_is_carried_over(world: World, between: bool) -> None:
    """Dee unsubscribed on Mailchimp, signs up again (pending), then opts out of all email on
    HubSpot, where she already read unsubscribed (status unchanged, evidence new): the new
    opt-out reaches Mailchimp, whether a run saw the sign-up first or not."""
    sync(world)
    assert world.hs_status(DEE) == "NOT_SUBSCRIBED"
    world.mailchimp_sign_up(DEE)
    assert world.mc_status(DEE) == "pending"
    if between:
        sync(world)
        assert world.mc_status(DEE) == "pending"
    world.clock.advance(60)
    world.hubspot_unsubscribe(DEE, everything=True)

    sync(world)

    assert world.mc_status(DEE) == "unsubscribed"


@pytest.mark.slow
def test_a_new_hard_bounce_blocklists_an_unblocklisted_contact(world: World) -> None:
    """Ola re-opts in by a Brevo form double opt-in (un-blocklisted, on the consent list),
    then hard-bounces on Mailchimp (cleaned): after one run she is blocklisted in Brevo."""
    sync(world)
    world.brevo_confirm_double_opt_in(OLA)
    sync(world)
    assert not blocklisted(world, OLA)
    assert world.mc_status(OLA) == "pending"  # re-confirmation asked, not subscribed

    world.mailchimp_clean(OLA)
    sync(world)

    assert blocklisted(world, OLA)
    assert world.hs_status(OLA) == "NOT_SUBSCRIBED"


@pytest.mark.slow
def test_no_ledger_row_for_a_status_hubspot_was_not_sent(world: World) -> None:
    """Ben is pending on Mailchimp; HubSpot cannot hold pending, so nothing is sent there:
    the ledger has no HubSpot row claiming `pending` was sent."""
    sync(world)

    rows = [e for e in world.store.ledger(world.config, email=BEN)
            if e.source == "sync" and e.platform == "hubspot"]
    assert rows == []
    assert str(world.hs.subscription_status(BEN, 101)) == "NOT_SPECIFIED"


@pytest.mark.slow
def test_an_unsubscribe_and_new_sign_up_between_runs_withdraws_the_copies(
    world: World,
) -> None:
    """Lea's opt-in (the Brevo consent list) was copied to Mailchimp and HubSpot; she
    unsubscribes on Mailchimp and signs up again (pending) before the next run: HubSpot is no
    longer SUBSCRIBED, Mailchimp stays pending (her confirmation is hers to give)."""
    lea = "lea.newsletter@lived.dev"
    sync(world)
    assert world.hs_status(lea) == "SUBSCRIBED"
    world.mailchimp_unsubscribe(lea)
    world.mailchimp_sign_up(lea)

    sync(world)

    assert world.mc_status(lea) == "pending"
    assert world.hs_status(lea) == "NOT_SUBSCRIBED"


@pytest.mark.slow
def test_leaving_the_consent_list_while_blocklisted_is_a_new_opt_out(world: World) -> None:
    """Lea is blocklisted in Brevo (an opt-out everywhere), re-subscribes on HubSpot (a newer
    opt-in), then leaves the Brevo consent list: Brevo's status does not change (still
    blocklisted) but its evidence does, a new opt-out that wins over the HubSpot opt-in."""
    lea = "lea.newsletter@lived.dev"
    sync(world)
    world.brevo_blocklist(lea)
    sync(world)
    world.hubspot_subscribe(lea)
    sync(world)
    assert world.hs_status(lea) == "SUBSCRIBED"
    world.clock.advance(60)
    world.brevo_unsubscribe_from_list(lea, CONSENT_LIST)

    sync(world)

    assert world.hs_status(lea) == "NOT_SUBSCRIBED"


@pytest.mark.slow
def test_an_opt_out_hidden_by_a_sign_up_before_any_run_is_not_demanded(world: World) -> None:
    """Ben is pending on Mailchimp; before the next run he unsubscribes and signs up again
    (pending): Mailchimp shows exactly what the last run saw, so no run can see that
    opt-out. The model (`lived_in`) does not demand its effects; the floor still holds."""
    sync(world)
    world.mailchimp_unsubscribe(BEN)
    world.mailchimp_sign_up(BEN)
    assert world.mc_status(BEN) == "pending"

    sync(world)

    assert world.mc_status(BEN) == "pending"
