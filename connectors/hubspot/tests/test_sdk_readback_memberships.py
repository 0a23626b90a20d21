"""HubSpot's official Python SDK reads back, over loopback, the lists a contact is in (the
memberships of a record, the other way round from a list's members), the properties and
subscription definitions segsync relies on, and contacts found by search once indexed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from hubspot import HubSpot
from segsync_hubspot import HubSpotConnector, HubSpotEmulator

from segsync.connector import ContactChange
from segsync.model import FieldSpec, FieldType, Schema

SCHEMA = Schema(fields={"first_name": FieldSpec(type=FieldType.TEXT)})
TOKEN = HubSpotEmulator.default_api_key
Wrap = Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]


async def _write(base_url: str, checked: Wrap) -> tuple[str, str]:
    connector = HubSpotConnector(
        {"token": TOKEN, "base_url": base_url},
        schema=SCHEMA,
        transport=checked(httpx.AsyncHTTPTransport()),
    )
    async with connector:
        await connector.prepare(SCHEMA.fields, ["vip"])
        results = await connector.write(
            [
                ContactChange(email="ada@example.com", create=True, fields={"first_name": "Ada"}),
                ContactChange(email="bob@example.com", create=True, fields={"first_name": "Bob"}),
            ]
        )
        assert all(r.ok for r in results), results
        first = await connector.ensure_static("b2b", None)
        second = await connector.ensure_static("partners", None)
        await connector.change_static_members(first, ["ada@example.com"], [])
        await connector.change_static_members(second, ["ada@example.com"], [])
    return first, second


@pytest.mark.slow
def test_official_sdk_reads_a_records_lists_properties_and_definitions(checked: Wrap) -> None:
    """hubspot-api-client: `memberships_api.get_lists` for a contact, the tag property's
    definition, the subscription definitions, and a search that finds what was written."""
    emulator = HubSpotEmulator(search_delay_seconds=0)
    with emulator.serving() as base_url:
        first, second = asyncio.run(_write(base_url, checked))
        client = HubSpot(access_token=TOKEN, host=base_url)
        ada = client.crm.contacts.basic_api.get_by_id("ada@example.com", id_property="email")
        bob = client.crm.contacts.basic_api.get_by_id("bob@example.com", id_property="email")
        ada_lists = client.crm.lists.memberships_api.get_lists(
            object_type_id="0-1", record_id=ada.id
        )
        bob_lists = client.crm.lists.memberships_api.get_lists(
            object_type_id="0-1", record_id=bob.id
        )
        tags = client.crm.properties.core_api.get_by_name("contacts", "segsync_tags")
        definitions = client.communication_preferences.definition_api.get_page()
        found = client.crm.contacts.search_api.do_search(
            public_object_search_request={
                "filterGroups": [{"filters": [
                    {"propertyName": "email", "operator": "EQ", "value": "bob@example.com"}
                ]}],
                "properties": ["email", "firstname"],
            }
        )

    assert sorted(m.list_id for m in ada_lists.results) == sorted([first, second])
    assert all(m.list_version >= 1 for m in ada_lists.results)
    assert bob_lists.results == []
    assert tags.type == "enumeration"
    assert tags.field_type == "checkbox"
    assert "vip" in {o.value for o in tags.options}
    names = {d.name for d in definitions.subscription_definitions}
    assert "Marketing Information" in names
    assert [r.properties["firstname"] for r in found.results] == ["Bob"]
