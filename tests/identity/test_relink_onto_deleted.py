"""A record relinked onto a person whose record on that platform was deleted carries
nothing of its former person (finding 5).

On lived-in accounts (`swap_world`): BERT is archived on HubSpot (segsync records him deleted
there), then a HubSpot user changes ANNA's record to BERT's address. The record is relinked
to BERT with its base (it replaces his deleted one), so what it holds is taken as what it is:
nothing of ANNA (her name, her tag) reaches BERT's records anywhere; the HubSpot record gets
BERT's data, and ANNA, who no longer has a HubSpot record, gets one again.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from segsync_mailchimp.emulator.state import subscriber_hash
from swap_world import ANNA, BERT, SwapWorld


@pytest.fixture
def world() -> Iterator[SwapWorld]:
    w = SwapWorld()
    yield w
    w.close()


def _mailchimp(world: SwapWorld, method: str, path: str, **kwargs: object) -> None:
    world._call(world.mc, {"Authorization": f"Bearer {world.mc.api_key}"}, method,
                f"/lists/{world.mc.default_list_id}{path}", **kwargs)


def _hubspot(world: SwapWorld, method: str, path: str, **kwargs: object) -> None:
    world._call(world.hs, {"Authorization": f"Bearer {world.hs.api_key}"}, method, path,
                **kwargs)


def test_a_record_relinked_onto_a_deleted_record_carries_nothing(world: SwapWorld) -> None:
    world.sync()
    _mailchimp(world, "POST", f"/members/{subscriber_hash(ANNA)}/tags",
               json={"tags": [{"name": "AnnaTag", "status": "active"}]})
    _mailchimp(world, "POST", f"/members/{subscriber_hash(BERT)}/tags",
               json={"tags": [{"name": "BertTag", "status": "active"}]})
    world.sync()
    anna_id = (world.hs.contact_by_email(ANNA) or {})["hs_object_id"]
    bert_id = (world.hs.contact_by_email(BERT) or {})["hs_object_id"]
    _hubspot(world, "DELETE", f"/crm/v3/objects/contacts/{bert_id}")  # archived on HubSpot
    _mailchimp(world, "PATCH", f"/members/{subscriber_hash(BERT)}",
               json={"merge_fields": {"FNAME": "Bertram"}})
    found = world.sync()  # the update finds BERT archived there: recorded deleted
    assert any(d.get("step") == "delete" and d.get("platform") == "hubspot"
               and BERT in str(d.get("message")) for d in found.diagnostics)
    world.hubspot_readdress(ANNA, BERT)  # a HubSpot user: ANNA's record now holds BERT's address
    world.sync()
    world.sync()

    bert_mc = world.mc.get_member(BERT)
    assert bert_mc is not None
    assert bert_mc.merge_fields.get("FNAME") == "Bertram"
    assert world.mc.get_member_tags(BERT) == {"BertTag"}
    bert_bv = world.bv.contact(BERT)
    assert bert_bv is not None
    assert bert_bv.attributes.get("FIRSTNAME") == "Bertram"
    assert "AnnaTag" not in (bert_bv.attributes.get("SEGSYNC_TAGS") or [])
    # the moved HubSpot record is BERT's now, with his data
    moved = world.hs.contact_by_email(BERT)
    assert moved is not None
    assert moved["hs_object_id"] == anna_id
    assert moved.get("firstname") == "Bertram"
    assert "annatag" not in moved.get("segsync_tags", "")
    # ANNA keeps her data, and has a HubSpot record again
    anna_mc = world.mc.get_member(ANNA)
    assert anna_mc is not None
    assert anna_mc.merge_fields.get("FNAME") == "Anna"
    assert "AnnaTag" in world.mc.get_member_tags(ANNA)
    anna_hs = world.hs.contact_by_email(ANNA)
    assert anna_hs is not None
    assert anna_hs.get("firstname") == "Anna"
