"""An opt-out on a duplicate record is an opt-out of its person.

On lived-in accounts (`swap_world`), JOSE opted in on HubSpot and is synced everywhere. A
HubSpot user then makes a second contact at the decomposed (NFD) spelling of his address,
which normalises to his, and unsubscribes that one. The duplicate is reported and not
synced, but its opt-out is JOSE's: it reaches Mailchimp, Brevo and his own HubSpot record.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

import pytest
from swap_world import SwapWorld

JOSE = "jos\u00e9@shop.test"
JOSE_NFD = unicodedata.normalize("NFD", JOSE)


@pytest.fixture
def world() -> Iterator[SwapWorld]:
    w = SwapWorld()
    w.hs.seed_contact({"email": JOSE, "firstname": "Jose"})
    w.hs.set_subscription(JOSE, 101, subscribed=True, legal_basis="CONSENT_WITH_NOTICE",
                          explanation="web form")
    yield w
    w.close()


def _hubspot(world: SwapWorld, method: str, path: str, **kwargs: object) -> None:
    world._call(world.hs, {"Authorization": f"Bearer {world.hs.api_key}"}, method, path,
                **kwargs)


def test_an_opt_out_on_a_duplicate_reaches_every_platform(world: SwapWorld) -> None:
    world.sync()
    world.sync()
    assert world.subscribed_anywhere(JOSE).keys() >= {"mailchimp", "hubspot"}
    _hubspot(world, "POST", "/crm/v3/objects/contacts",
             json={"properties": {"email": JOSE_NFD, "firstname": "JoseDup"}})
    _hubspot(world, "POST", f"/communication-preferences/v4/statuses/{JOSE_NFD}",
             json={"channel": "EMAIL", "subscriptionId": 101,
                   "statusState": "UNSUBSCRIBED"})
    report = world.sync()
    world.sync()

    assert [e.code for e in report.errors if e.platform == "hubspot"] == ["duplicate"]
    member = world.mc.get_member(JOSE)
    assert member is not None
    assert member.status == "unsubscribed"
    assert world.hs.subscription_status(JOSE) != "SUBSCRIBED"
    contact = world.bv.contact(JOSE)
    assert contact is None or contact.email_blacklisted
    assert world.subscribed_anywhere(JOSE) == {}
    # nothing else of the duplicate is taken
    assert member.merge_fields.get("FNAME") == "Jose"
