"""A record moved onto the address of a person whose own record there is gone, without
segsync knowing it yet, is still a moved record: what it holds is its former person's.

On lived-in accounts (`swap_world`, Brevo declaring the user's own newsletter list as its
consent list): ANNA opts in on Brevo (the newsletter list). Then, between two runs, a Brevo
user deletes BERT's contact and changes ANNA's contact to BERT's address. segsync learns of
the deletion only by asking (Brevo lists no deletions). The moved contact's list membership
and first name are ANNA's: BERT is never subscribed by them, nor renamed "Anna", anywhere.
The same holds on HubSpot (an archived contact, another contact given its address).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from segsync_brevo import BrevoConnector
from swap_world import ANNA, BERT, SwapWorld

from segsync.testing.data import DEFAULT_SCHEMA


@pytest.fixture
def world() -> Iterator[SwapWorld]:
    w = SwapWorld()
    newsletter = next(i for i, lst in w.bv.lists.items()
                      if lst["name"] == "Newsletter (the user's own)")
    w.connectors["brevo"] = BrevoConnector(
        {"api_key": w.bv.api_key, "consent": {"lists": [newsletter]}},
        transport=w.bv.transport(), schema=DEFAULT_SCHEMA, clock=w.clock,
    )
    w.newsletter = newsletter  # type: ignore[attr-defined]
    yield w
    w.close()


def _brevo(world: SwapWorld, method: str, path: str, **kwargs: object) -> None:
    world._call(world.bv, {"api-key": world.bv.api_key}, method, path, **kwargs)


def _hubspot(world: SwapWorld, method: str, path: str, **kwargs: object) -> None:
    world._call(world.hs, {"Authorization": f"Bearer {world.hs.api_key}"}, method, path,
                **kwargs)


def _first_names(world: SwapWorld, email: str) -> dict[str, object]:
    member = world.mc.get_member(email)
    contact = world.bv.contact(email)
    record = world.hs.contact_by_email(email)
    return {
        "mailchimp": member.merge_fields.get("FNAME") if member else None,
        "brevo": contact.attributes.get("FIRSTNAME") if contact else None,
        "hubspot": record.get("firstname") if record else None,
    }


def test_brevo_contact_moved_onto_a_deleted_contact_carries_no_opt_in(world: SwapWorld) -> None:
    world.sync()
    world.sync()
    # ANNA joins the newsletter on Brevo (the declared consent list): an opt-in with proof
    _brevo(world, "POST", f"/contacts/lists/{world.newsletter}/contacts/add",  # type: ignore[attr-defined]
           json={"emails": [ANNA]})
    world.sync()
    assert world.mc.get_member(ANNA) is not None
    assert "mailchimp" in world.subscribed_anywhere(ANNA)
    assert "mailchimp" not in world.subscribed_anywhere(BERT)
    # a Brevo user deletes BERT's contact, then gives ANNA's contact BERT's address
    _brevo(world, "DELETE", f"/contacts/{BERT}")
    world.brevo_readdress(ANNA, BERT)
    report = world.sync()
    world.sync()

    assert any(d.get("step") == "identity" and d.get("platform") == "brevo"
               for d in report.diagnostics)
    # nothing of ANNA's opt-in is BERT's: not subscribed on Mailchimp nor HubSpot
    member = world.mc.get_member(BERT)
    assert member is not None
    assert member.status not in ("subscribed", "pending")
    assert world.hs.subscription_status(BERT) != "SUBSCRIBED"
    # nor her name: BERT keeps his own everywhere, the moved contact gets it
    assert _first_names(world, BERT) == {"mailchimp": "Bert", "brevo": "Bert",
                                         "hubspot": "Bert"}
    # ANNA keeps her data and her opt-in
    assert _first_names(world, ANNA)["mailchimp"] == "Anna"
    assert world.mc.get_member(ANNA).status == "subscribed"  # type: ignore[union-attr]


def test_hubspot_contact_moved_onto_an_archived_contact_carries_nothing(
    world: SwapWorld,
) -> None:
    world.sync()
    world.sync()
    bert_id = (world.hs.contact_by_email(BERT) or {})["hs_object_id"]
    _hubspot(world, "DELETE", f"/crm/v3/objects/contacts/{bert_id}")  # archived, unread
    world.hubspot_readdress(ANNA, BERT)
    world.sync()
    world.sync()

    assert _first_names(world, BERT) == {"mailchimp": "Bert", "brevo": "Bert",
                                         "hubspot": "Bert"}
    assert _first_names(world, ANNA)["mailchimp"] == "Anna"
    assert "mailchimp" not in world.subscribed_anywhere(BERT)
