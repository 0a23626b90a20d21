"""A field or tag a platform cannot hold is that field's (or tag's) problem, not the
platform's: it is left out of that platform's writes with one warning per run, and
everything else (other people, other fields, consent above all) is written."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prepare_world import World, warnings_about

from segsync.sync.plan import RecordError
from segsync.sync.report import RunReport

OK = [f"ok{i}@shop.test" for i in range(4)]


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


def _hubspot_errors(report: RunReport) -> list[RecordError]:
    return [e for e in report.errors if e.platform == "hubspot"]


def test_a_tag_hubspot_cannot_hold_skips_that_tag_only(world: World) -> None:
    for email in OK:
        world.mailchimp_signup(email, FNAME="Ok", LNAME="Before")
    world.sync()
    for email in OK:
        world.mailchimp_member(email, merge_fields={"LNAME": "Changed"})
    world.mailchimp_member(OK[0], status="unsubscribed")  # an opt-out made on Mailchimp
    world.mailchimp_signup("tia@shop.test", tags=["R&D;Sales", "VIP"], FNAME="Tia")

    for _run in range(2):
        report = world.sync()
        assert _hubspot_errors(report) == []
        assert len(warnings_about(report, "hubspot", "R&D;Sales")) <= 1
        for email in OK:
            assert (world.hs.contact_by_email(email) or {}).get("lastname") == "Changed"
        assert world.hs.subscription_status(OK[0]) != "SUBSCRIBED"
        tia = world.hs.contact_by_email("tia@shop.test")
        assert tia is not None
        assert tia.get("firstname") == "Tia"
        assert world.hubspot_tags("tia@shop.test") == {"vip"}
    first = world.sync()  # once more: still said, once, with the fix
    said = warnings_about(first, "hubspot", "R&D;Sales")
    assert len(said) <= 1
    # the other platforms hold the tag
    assert "R&D;Sales" in world.mc.get_member_tags("tia@shop.test")


def test_the_tag_warning_names_tag_platform_and_fix(world: World) -> None:
    world.mailchimp_signup("tia@shop.test", tags=["R&D;Sales"], FNAME="Tia")
    report = world.sync()
    said = warnings_about(report, "hubspot", "R&D;Sales")
    assert len(said) == 1
    assert "hubspot" in said[0]
    assert "fix" in said[0]
    assert _hubspot_errors(report) == []
    assert (world.hs.contact_by_email("tia@shop.test") or {}).get("firstname") == "Tia"


def test_a_property_of_another_type_skips_that_field_only(world: World) -> None:
    # the portal's own enumeration property `tier`; the schema says `tier: text`
    world.hubspot("POST", "/crm/v3/properties/contacts", json={
        "name": "tier", "label": "Tier", "type": "enumeration", "fieldType": "select",
        "groupName": "contactinformation",
        "options": [{"label": "Gold", "value": "gold", "displayOrder": 0}],
    })
    for i, email in enumerate(OK):
        world.mailchimp_signup(email, FNAME=f"U{i}", LNAME="X")
    report = world.sync()
    assert _hubspot_errors(report) == []
    said = warnings_about(report, "hubspot", "tier")
    assert len(said) == 1
    assert "enumeration" in said[0]
    assert "fix" in said[0]
    for email in OK:
        record = world.hs.contact_by_email(email)
        assert record is not None
        assert record.get("lastname") == "X"
        assert "tier" not in record or record["tier"] == ""
        assert world.hs.subscription_status(email) == "SUBSCRIBED"  # consent is written

    # a tier set on Mailchimp reaches Brevo, never blocks HubSpot, and HubSpot keeps its own
    world.mailchimp_member(OK[1], merge_fields={"TIER": "platinum", "LNAME": "Y"})
    report = world.sync()
    assert _hubspot_errors(report) == []
    assert len(warnings_about(report, "hubspot", "tier")) == 1
    assert (world.hs.contact_by_email(OK[1]) or {}).get("lastname") == "Y"
    assert (world.hs.contact_by_email(OK[1]) or {}).get("tier", "") == ""
    brevo = world.bv.contact(OK[1])
    assert brevo is not None
    assert brevo.attributes.get("TIER") == "platinum"
