"""An address HubSpot holds as another contact's `hs_additional_emails`.

The emulator takes the strict reading of what HubSpot leaves open: a lookup or an upsert by
`idProperty=email` finds a contact by an additional email too. The connector never writes a
person's data through such an address: it refuses the creation (one batch read per 100
creations, no upsert sent) with the other contact's id and the fix.
"""

from __future__ import annotations

import asyncio
import re

import httpx
from segsync_hubspot import HubSpotConnector, HubSpotEmulator
from segsync_hubspot.write import ADDITIONAL_EMAIL

from segsync.clock import VirtualClock
from segsync.connector import ContactChange

UPSERT = re.compile(r"/contacts/batch/upsert$")


def _portal() -> tuple[HubSpotEmulator, HubSpotConnector, str]:
    clock = VirtualClock()
    emulator = HubSpotEmulator(clock=clock)
    emulator.seed_lived_in()
    bob = emulator.seed_contact(
        {"email": "bob@portal.test", "firstname": "Bob", "hs_additional_emails": "Al@Portal.test"}
    )
    connector = HubSpotConnector(
        {"token": emulator.api_key, "base_url": "http://127.0.0.1:9"},
        transport=emulator.transport(), clock=clock,
    )
    return emulator, connector, bob


def test_lookups_by_email_find_a_contact_by_its_additional_email() -> None:
    """The strict reading: batch read by email finds BOB's contact for his additional
    address (any case), and the connector keys it by BOB's own address only."""
    _, connector, bob = _portal()

    async def main() -> tuple[list[dict[str, object]], dict[str, object]]:
        async with connector:
            found = await connector._records_by_email(["al@portal.test"], ["email"])
            keyed = await connector._batch_read_by_email(["AL@portal.test"], ["email"])
            return found, keyed

    found, keyed = asyncio.run(main())
    assert [r["id"] for r in found] == [bob]
    assert set(keyed) == {"bob@portal.test"}


def test_a_creation_at_another_contacts_additional_email_is_refused_unsent() -> None:
    """Creating AL refuses with BOB's id, address and the fix; BOB keeps his data; the
    other creation of the batch goes through."""
    emulator, connector, bob = _portal()
    emulator.log.clear()
    changes = [
        ContactChange(email="al@portal.test", create=True, fields={"first_name": "Al"}),
        ContactChange(email="cy@portal.test", create=True, fields={"first_name": "Cy"}),
    ]

    async def main() -> list[object]:
        async with connector:
            return list(await connector.write(changes))

    al, cy = asyncio.run(main())
    assert (al.ok, al.code, al.platform_id) == (False, ADDITIONAL_EMAIL, None)
    assert bob in (al.error or "")
    assert "bob@portal.test" in (al.error or "")
    assert "fix: remove al@portal.test" in (al.error or "")
    assert cy.ok
    assert cy.created
    assert emulator.contact_by_email("bob@portal.test")["firstname"] == "Bob"
    assert emulator.log.count("POST", UPSERT) == 1


def test_erasing_an_address_held_as_another_contacts_additional_email_keeps_that_contact(
) -> None:
    """Erasing AL (no record of his own) never GDPR-deletes BOB's contact: unconfirmed,
    naming the contact and the fix; an address of its own is erased as before."""
    emulator, connector, bob = _portal()
    emulator.seed_contact({"email": "cy@portal.test", "firstname": "Cy"})

    async def main() -> tuple[object, object]:
        async with connector:
            return (await connector.erase("al@portal.test", None),
                    await connector.erase("cy@portal.test", None))

    al, cy = asyncio.run(main())
    assert (al.confirmed, cy.confirmed) == (False, True)
    assert bob in (al.error or "")
    assert "fix: remove the address" in (al.error or "")
    assert emulator.contact_by_email("bob@portal.test")["firstname"] == "Bob"
    assert emulator.contact_by_email("cy@portal.test") is None


def test_the_emulator_finds_a_contact_by_an_additional_email_everywhere() -> None:
    """The strict reading, over the wire: batch read and upsert by `idProperty=email`, and
    search's free-text `query`, find BOB's contact by his additional address; a filter on
    `email` does not (it is the primary address only)."""
    emulator, _, bob = _portal()
    emulator.seed_contact({"email": "cy@portal.test", "firstname": "Cy"})
    contacts = "/crm/v3/objects/contacts"

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            transport=emulator.transport(), base_url="http://127.0.0.1:9",
            headers={"Authorization": f"Bearer {emulator.api_key}"},
        ) as client:
            return [
                await client.post(f"{contacts}/batch/read", json={
                    "idProperty": "email", "inputs": [{"id": "al@portal.test"}],
                    "properties": ["email"], "propertiesWithHistory": []}),
                await client.post(f"{contacts}/search", json={"query": "al@portal.test"}),
                await client.post(f"{contacts}/search", json={"filterGroups": [{"filters": [
                    {"propertyName": "email", "operator": "EQ", "value": "al@portal.test"}]}]}),
                await client.post(f"{contacts}/batch/upsert", json={"inputs": [{
                    "idProperty": "email", "id": "al@portal.test",
                    "properties": {"firstname": "Al"}, "objectWriteTraceId": "0"}]}),
            ]

    emulator.clock.advance(emulator.read_lag_seconds)
    read, query, filtered, upsert = asyncio.run(main())
    assert [r["id"] for r in read.json()["results"]] == [bob]
    assert [r["id"] for r in query.json()["results"]] == [bob]
    assert filtered.json()["results"] == []
    assert [(r["id"], r["new"]) for r in upsert.json()["results"]] == [(bob, False)]
    assert emulator.contact_by_email("bob@portal.test")["firstname"] == "Al"
