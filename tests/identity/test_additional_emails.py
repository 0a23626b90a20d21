"""A HubSpot contact's additional email is that contact's, never another person's record.

HubSpot finds a contact by any of its `hs_additional_emails` in a lookup or an upsert by
email. In lived-in accounts (`swap_world`), BERT's HubSpot contact lists CARLA's address (a
person segsync knows from Brevo) as an additional email: creating CARLA on HubSpot would
write her data onto BERT's record and link two people to one id. Each run refuses it per
record, naming both records and the fix, and writes nothing to BERT's record; the run never
fails; the same after `rebind hubspot` onto a portal whose BOB lists ALICE's address. The
engine itself refuses any answer that names another person's record. And an
address changed in HubSpot gets the person's subscription status in the same run (statuses
are per address), so the run after writes nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from swap_world import BERT, SwapWorld

from segsync.connector import ChangeResult, ContactChange

pytest.importorskip("segsync_hubspot")
from segsync_hubspot.write import ADDITIONAL_EMAIL

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "first_runs"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "accounts"))
from accounts_world import ALICE, BOB, LOCAL
from accounts_world import World as Accounts
from first_runs_world import World
from segsync_hubspot import HubSpotConnector, HubSpotEmulator

from segsync.cli.rebind import rebind
from segsync.testing.data import DEFAULT_SCHEMA

CARLA = "carla@shop.test"


@pytest.fixture
def world() -> Iterator[SwapWorld]:
    world = SwapWorld()
    world.bv.seed_contact(CARLA, attributes={"FIRSTNAME": "Carla"})
    bert = world.hs.contact_by_email(BERT)
    assert bert is not None
    world.hs.modify_contact(bert["hs_object_id"], {"hs_additional_emails": CARLA})
    yield world
    world.close()


def test_an_additional_email_of_another_contact_is_refused_not_written(
    world: SwapWorld,
) -> None:
    """Every run: one per-record error for CARLA on HubSpot naming BERT's contact and the
    fix; BERT's record keeps his data; CARLA reaches the other platforms."""
    bert_id = world.hs.contact_by_email(BERT)["hs_object_id"]
    for _ in range(2):
        report = world.sync()

        assert report.status != "failed"
        errors = [(e.platform, e.email, e.code) for e in report.errors]
        assert errors == [("hubspot", CARLA, ADDITIONAL_EMAIL)]
        message = report.errors[0].message
        assert bert_id in message
        assert BERT in message
        assert "additional email" in message
        assert "fix: remove" in message
        bert = world.hs.contact_by_email(BERT)
        assert (bert["hs_object_id"], bert["firstname"]) == (bert_id, "Bert")
        assert world.mc.get_member(CARLA).merge_fields["FNAME"] == "Carla"
        assert world.mc.get_member(BERT).merge_fields["FNAME"] == "Bert"


def test_a_platform_answering_with_another_persons_record_is_refused(
    world: SwapWorld, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connector that confirms CARLA's creation with BERT's record id: the engine
    reports it per record, links nothing, and the run completes (no broken id map)."""
    connector = world.connectors["hubspot"]
    bert_id = world.hs.contact_by_email(BERT)["hs_object_id"]
    real = connector.write

    async def write(changes: Sequence[ContactChange]) -> list[ChangeResult]:
        results = await real(changes)
        return [
            r.model_copy(update={"ok": True, "error": None, "code": None,
                                 "platform_id": bert_id})
            if r.email == CARLA else r
            for r in results
        ]

    monkeypatch.setattr(connector, "write", write)
    for _ in range(2):
        report = world.sync()

        assert report.status != "failed"
        assert [(e.email, e.code) for e in report.errors] == [(CARLA, "record_claimed")]
        assert bert_id in report.errors[0].message
        assert BERT in report.errors[0].message
        state = world.store.scoped("identity")
        linked = state.cids_by_platform_id("hubspot", [bert_id])
        assert linked == {bert_id: state.cids_by_email([BERT])[BERT]}
        assert world.hs.contact_by_email(BERT)["firstname"] == "Bert"


def test_a_portal_adopted_by_rebind_where_bob_lists_alices_address(
) -> None:
    """After `rebind hubspot` onto a portal where BOB's contact lists ALICE's address as an
    additional email: every run refuses ALICE there per record, BOB's contact keeps his
    name, and nobody is linked twice (the runs complete)."""
    world = Accounts()
    try:
        assert world.sync().errors == []
        portal = HubSpotEmulator(clock=world.clock)
        portal.portal_id = 99999999
        bob = portal.seed_contact(
            {"email": BOB, "firstname": "Robert", "hs_additional_emails": ALICE})
        world.clock.advance(600)
        world.replace("hubspot", HubSpotConnector(
            {"token": portal.default_api_key, "base_url": LOCAL, "subscription_id": 101},
            transport=portal.transport(), schema=DEFAULT_SCHEMA, clock=world.clock))
        world.loop.run_until_complete(
            rebind("hubspot", world.connectors["hubspot"], world.engine().state,
                   clock=world.clock))
        for _ in range(2):
            report = world.sync()

            assert report.status != "failed"
            assert [(e.platform, e.email, e.code) for e in report.errors] == [
                ("hubspot", ALICE, ADDITIONAL_EMAIL)]
            assert bob in report.errors[0].message
            assert portal.contact_by_email(BOB)["firstname"] in ("Bob", "Robert")
            assert portal.contact_by_email(BOB)["hs_object_id"] == bob
            assert world.mc.get_member(ALICE).merge_fields["FNAME"] == "Alice"
    finally:
        world.close()


@pytest.mark.slow
def test_an_address_changed_in_hubspot_gets_the_persons_status_in_one_run() -> None:
    """A crowd member opted in everywhere (the lived-in accounts of tests/first_runs) gets a
    new address in HubSpot, nobody else acting: the first run carries the address and sends
    her status for it to HubSpot (statuses are per address); the run after writes nothing."""
    world = World()
    world.sync()
    old, new = "person04@crowd.dev", "zz-moved@crowd.dev"
    assert world.hs.subscription_status(old) == "SUBSCRIBED"
    world.clock.advance(3600)
    world.hs.modify_contact(world.hs.contact_by_email(old)["hs_object_id"], {"email": new})
    world.clock.advance(120)

    first, _ = world.sync()

    assert first.errors == []
    assert world.hs.subscription_status(new) == "SUBSCRIBED"
    assert world.mc.get_member(new).status == "subscribed"
    after, _ = world.sync()
    assert (after.errors, after.writes) == ([], 0)
