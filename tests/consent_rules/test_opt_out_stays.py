"""An opt-out is lifted only by the person's explicit opt-in, and a withdrawn opt-in reaches
every account, on the three lived-in emulated accounts (`lived_in.World`: people in every
status, the users acting in the platforms between runs).

- a Mailchimp member archived and added back as `transactional` (same contact id) is no
  opt-in: the opt-out stays the view and is written back there; a later re-import on Brevo
  is blocklisted, and an audience rebound to, where she holds a 300-day-old opt-in, gets the
  opt-out;
- an opt-in withdrawn in one audience (subscribed, then unsubscribed and pending again)
  reaches the audience rebound back to, which still holds her `subscribed`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

pytest.importorskip("segsync_mailchimp")
pytest.importorskip("segsync_hubspot")
pytest.importorskip("segsync_brevo.emulator")

from lived_in import CONSENT_LIST, PLATFORMS, World
from segsync_mailchimp import MailchimpConnector
from segsync_mailchimp.api import iso_time

from segsync.cli.rebind import rebind
from segsync.state import LedgerEntry
from segsync.sync import Engine, SyncPolicy
from segsync.testing.data import DEFAULT_SCHEMA

DEE = "dee.unsubscribed@lived.dev"  # unsubscribed on Mailchimp, a customer on Brevo
ADA = "ada.subscribed@lived.dev"  # subscribed on Mailchimp, tagged vip


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    assert w.sync() == []
    assert w.sync() == []
    yield w
    w.close()


def _point_mailchimp_at(world: World, list_id: str) -> None:
    """The configuration's Mailchimp `list_id` is now `list_id`; then `segsync rebind`."""
    old = world.connectors["mailchimp"]
    world.loop.run_until_complete(old.aclose())
    world.connectors["mailchimp"] = MailchimpConnector(
        {"api_key": world.mc.default_api_key, "list_id": list_id,
         "base_url": "http://127.0.0.1:9" + world.mc.base_path, "reoptin_via_pending": True},
        transport=world.recorders["mailchimp"], schema=DEFAULT_SCHEMA, clock=world.clock,
    )
    world.engine = Engine(
        world.connectors, world.store, config=world.config,
        policy=SyncPolicy(platforms=PLATFORMS, reconfirm=frozenset({"mailchimp"})),
        schema=DEFAULT_SCHEMA, clock=world.clock,
    )
    outcome = world.loop.run_until_complete(rebind(
        "mailchimp", world.connectors["mailchimp"], world.store.scoped(world.config),
        clock=world.clock))
    assert outcome.done, outcome


def _audience_b(world: World, **people: str) -> str:
    """Another audience of the same account, with `people` (email -> status) who opted in
    300 days ago."""
    lst = world.mc.seed_list("Audience B")
    for email, status in people.items():
        world.mc.seed_member(email, status, list_id=lst.id,
                             timestamp_opt=iso_time(world.clock.now() - dt.timedelta(days=300)),
                             ip_opt="198.51.100.4")
    return str(lst.id)


def _ledger(world: World, email: str) -> list[LedgerEntry]:
    return [e for e in world.store.ledger(world.config) if e.email == email]


def test_a_member_added_back_as_transactional_does_not_lift_her_opt_out(world: World) -> None:
    assert world.consent_on(DEE) == dict.fromkeys(PLATFORMS, "unsubscribed")
    member = world.mc.get_member(DEE)
    assert member is not None
    # the user archives her and adds her back as transactional (Mailchimp keeps her id)
    member.status, member.compliance_blocked = "archived", False
    world.mc._touch(member)
    member.status = "transactional"  # hook: add_member(email, "transactional")
    world.mc._touch(member)
    world.people[DEE].touched = True

    assert world.sync() == []

    assert world.consent_on(DEE) == dict.fromkeys(PLATFORMS, "unsubscribed")
    assert not [e for e in _ledger(world, DEE)
                if e.platform == "canonical" and e.new != "unsubscribed"]
    written = _ledger(world, DEE)[-1]
    assert (written.platform, written.source, written.sent) == (
        "mailchimp", "sync", "unsubscribed")
    rows = len(world.store.ledger(world.config))
    assert world.sync() == []
    assert len(world.store.ledger(world.config)) == rows  # converged in one run

    # Brevo's user deletes her and imports her again (a customer, not blocklisted)
    contact = world.bv.contact(DEE)
    assert contact is not None
    del world.bv.contacts[contact.id]  # hook: delete_contact(email)
    world.bv._by_email.pop(DEE, None)
    world.bv.seed_contact(DEE, lists=(world.user_lists["Customers"],))
    world.user_members.add((DEE, world.user_lists["Customers"]))
    assert world.sync() == []
    assert world.consent_on(DEE)["brevo"] == "unsubscribed"

    # Mailchimp is pointed at another audience where she opted in 300 days ago
    _point_mailchimp_at(world, _audience_b(world, **{DEE: "subscribed"}))
    world.sync()

    b = world.mc.lists[world.connectors["mailchimp"].config.list_id]
    assert [m.status for m in b.members.values() if m.email_address == DEE] == ["unsubscribed"]
    assert world.consent_on(DEE)["hubspot"] == "unsubscribed"
    assert world.consent_on(DEE)["brevo"] == "unsubscribed"
    contact = world.bv.contact(DEE)
    assert contact is not None
    assert world.user_lists[CONSENT_LIST] not in contact.list_ids
    assert not [e for e in _ledger(world, DEE)
                if e.platform == "canonical" and e.new != "unsubscribed"]


def test_an_opt_in_withdrawn_in_one_audience_reaches_the_audience_rebound_back_to(
    world: World,
) -> None:
    a = world.mc.default_list_id
    assert world.mc_status(ADA) == "subscribed"
    b = _audience_b(world, **{ADA: "subscribed"})
    _point_mailchimp_at(world, b)
    world.sync()
    world.sync()
    # in audience B she unsubscribes and signs up again (not confirmed yet): one change seen
    member = world.mc.get_member(ADA, list_id=b)
    assert member is not None
    member.status = "pending"  # hook: unsubscribe(email) then sign_up(email)
    world.mc._touch(member)
    world.sync()
    assert world.consent_on(ADA)["hubspot"] == "unsubscribed"

    _point_mailchimp_at(world, a)  # back to audience A, where she is still subscribed
    world.sync()

    assert world.mc_status(ADA) == "unsubscribed"
    assert world.mc.lists[b].members[member.id].status == "pending"  # left to her
    written = _ledger(world, ADA)[-1]
    assert (written.platform, written.sent) == ("mailchimp", "unsubscribed")
    assert "opt-in withdrawn" in (written.evidence or "")
    # the view is her newer sign-up (pending): Mailchimp is in `sync.reconfirm`, so the next
    # run asks her to confirm there too, as over any opt-out; then nothing more
    world.sync()
    assert world.mc_status(ADA) == "pending"
    rows = len(world.store.ledger(world.config))
    world.sync()
    assert len(world.store.ledger(world.config)) == rows  # converged
    assert world.consent_on(ADA)["hubspot"] == "unsubscribed"
