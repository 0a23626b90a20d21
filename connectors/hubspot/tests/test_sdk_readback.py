"""HubSpot's official Python SDK, pointed at the emulator on loopback, reads back what the
connector wrote: contact properties, the tag checkbox, list memberships and consent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from hubspot import HubSpot
from segsync_hubspot import HubSpotCompiler, HubSpotConnector, HubSpotEmulator

from segsync.connector import ContactChange
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema
from segsync.rules import ast

SCHEMA = Schema(
    fields={
        "first_name": FieldSpec(type=FieldType.TEXT),
        "country": FieldSpec(type=FieldType.ENUM, options=("FR", "BE")),
        "lifetime_value": FieldSpec(type=FieldType.NUMBER),
    }
)
TOKEN = HubSpotEmulator.default_api_key
Wrap = Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]


async def _write(base_url: str, checked: Wrap) -> tuple[str, str]:
    transport = checked(httpx.AsyncHTTPTransport())
    connector = HubSpotConnector(
        {"token": TOKEN, "base_url": base_url}, schema=SCHEMA, transport=transport
    )
    async with connector:
        await connector.prepare(SCHEMA.fields, ["vip", "b2b"])
        results = await connector.write(
            [
                ContactChange(
                    email="ada@example.com",
                    create=True,
                    fields={"first_name": "Ada", "country": "FR", "lifetime_value": 120.5},
                    tags_add=frozenset({"vip"}),
                    consent=ConsentStatus.SUBSCRIBED,
                    consent_basis="CONSENT_WITH_NOTICE",
                ),
                ContactChange(
                    email="alan@example.com",
                    create=True,
                    fields={"first_name": "Alan", "country": "BE"},
                    tags_add=frozenset({"vip", "b2b"}),
                    consent=ConsentStatus.UNSUBSCRIBED,
                ),
            ]
        )
        assert all(r.ok for r in results), results
        compiled = HubSpotCompiler(SCHEMA).compile(
            "fr-vip", ast.has_tag("vip") & (ast.field("country") == "FR")
        )
        assert compiled.definition is not None
        dynamic = await connector.publish_native("fr-vip", compiled.definition, None)
        manual = await connector.ensure_static("b2b", None)
        await connector.change_static_members(manual, ["alan@example.com"], [])
    return dynamic, manual


@pytest.mark.slow
def test_official_sdk_reads_back_what_the_connector_wrote(checked: Wrap) -> None:
    """hubspot-api-client sees the contacts, tags, lists and consent the connector wrote."""
    emulator = HubSpotEmulator()
    with emulator.serving() as base_url:
        dynamic, manual = asyncio.run(_write(base_url, checked))
        client = HubSpot(access_token=TOKEN, host=base_url)

        page = client.crm.contacts.basic_api.get_page(
            limit=10, properties=["email", "firstname", "country", "lifetime_value", "segsync_tags"]
        )
        by_email = {c.properties["email"]: c.properties for c in page.results}
        ada = client.crm.contacts.basic_api.get_by_id(
            "ada@example.com", id_property="email", properties=["firstname", "segsync_tags"]
        )
        alan = client.crm.contacts.basic_api.get_by_id("alan@example.com", id_property="email")
        dynamic_members = client.crm.lists.memberships_api.get_page(dynamic, limit=250)
        manual_members = client.crm.lists.memberships_api.get_page(manual, limit=250)
        listed = client.crm.lists.lists_api.get_by_id(dynamic, include_filters=True)
        alan_status = client.communication_preferences.status_api.get_email_status(
            "alan@example.com"
        )
        ada_status = client.communication_preferences.status_api.get_email_status("ada@example.com")

    assert by_email["ada@example.com"]["firstname"] == "Ada"
    assert by_email["ada@example.com"]["country"] == "FR"
    assert float(by_email["ada@example.com"]["lifetime_value"]) == 120.5
    assert set(by_email["alan@example.com"]["segsync_tags"].split(";")) == {"vip", "b2b"}
    assert ada.properties["segsync_tags"] == "vip"
    assert [m.record_id for m in dynamic_members.results] == [ada.id]
    assert [m.record_id for m in manual_members.results] == [alan.id]
    assert listed.list.processing_type == "DYNAMIC"
    assert listed.list.filter_branch is not None
    marketing = {s.name: s for s in alan_status.subscription_statuses}["Marketing Information"]
    assert marketing.status == "NOT_SUBSCRIBED"
    subscribed = {s.name: s for s in ada_status.subscription_statuses}["Marketing Information"]
    assert subscribed.status == "SUBSCRIBED"
    assert subscribed.legal_basis == "CONSENT_WITH_NOTICE"
