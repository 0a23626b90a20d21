"""Brevo's official client (`brevo-python`) reads back, over loopback, what the connector wrote.

The emulator runs under uvicorn on a free 127.0.0.1 port in a background thread (the
emulator toolkit's `serving()`); the
connector writes to it over HTTP like to Brevo, and the SDK's synchronous client reads.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator

from segsync.connector import ContactChange
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema

brevo = pytest.importorskip("brevo", reason="brevo-python is not installed")

SCHEMA = Schema(
    fields={
        "first_name": FieldSpec(type=FieldType.TEXT),
        "country": FieldSpec(type=FieldType.ENUM, options=("FR", "BE")),
        "lifetime_value": FieldSpec(type=FieldType.NUMBER),
        "birthday": FieldSpec(type=FieldType.DATE),
    }
)


@pytest.mark.slow
def test_official_client_reads_what_the_connector_wrote() -> None:
    """Contacts, attributes, list memberships and the blocklist read back through the SDK."""
    emulator = BrevoEmulator(tier="extended")
    with emulator.serving() as base_url:

        async def write() -> list[str | None]:
            connector = BrevoConnector(
                {"api_key": emulator.api_key, "base_url": base_url, "tier": "extended"},
                schema=SCHEMA,
            )
            async with connector:
                await connector.prepare(SCHEMA.fields, ["vip"])
                results = await connector.write(
                    [
                        ContactChange(
                            email="Ada@Example.com",
                            create=True,
                            fields={
                                "first_name": "Ada",
                                "country": "FR",
                                "lifetime_value": 12.5,
                                "birthday": dt.date(1990, 12, 10),
                            },
                            consent=ConsentStatus.SUBSCRIBED,
                            tags_add=frozenset({"vip"}),
                        ),
                        ContactChange(
                            email="grace@example.com",
                            create=True,
                            consent=ConsentStatus.UNSUBSCRIBED,
                        ),
                    ]
                )
                assert all(r.ok for r in results), results
                return [r.platform_id for r in results]

        ids = asyncio.run(write())
        client = brevo.Brevo(api_key=emulator.api_key, base_url=base_url, max_retries=0)
        ada = client.contacts.get_contact_info("ada@example.com")
        grace = client.contacts.get_contact_info(ids[1], identifier_type="contact_id")
        listed = client.contacts.get_contacts(limit=10, sort="asc")
        attributes = {a.name: a for a in client.contacts.get_attributes().attributes or []}
        folders = client.contacts.get_folders(limit=10, offset=0)
        folder = next(f for f in folders.folders or [] if f.name == "segsync")
        lists = client.contacts.get_folder_lists(folder.id).lists or []
        vip = next(item for item in lists if item.name == "tag: vip")
        members = client.contacts.get_contacts_from_list(vip.id)

    country = {e.label: e.value for e in attributes["COUNTRY"].enumeration or []}
    values = ada.attributes.model_dump() if ada.attributes is not None else {}
    assert str(ada.id) == ids[0]
    assert ada.email == "ada@example.com"
    assert values["FIRSTNAME"] == "Ada"
    assert values["COUNTRY"] == country["FR"]
    assert values["LIFETIME_VALUE"] == 12.5
    assert values["BIRTHDAY"] == "1990-12-10"
    assert vip.id in ada.list_ids
    assert ada.email_blacklisted is False
    assert grace.email_blacklisted is True
    assert listed.count == 2
    assert [c.email for c in listed.contacts or []] == ["ada@example.com", "grace@example.com"]
    assert [c.email for c in members.contacts or []] == ["ada@example.com"]
    assert emulator.spec_violations == [] or emulator.validator is None
