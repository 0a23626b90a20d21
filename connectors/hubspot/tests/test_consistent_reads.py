"""HubSpot reads never lose a contact or an edit when people act in HubSpot while they page.

The emulator's `after_read_page` hook (see `segsync.emulator.base`) runs between two pages of
a contacts search: contacts archived there move the unread ones back (offset paging), edits
and opt-outs move `lastmodifieddate` past the read's start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
from segsync_hubspot import HubSpotConnector, HubSpotEmulator

from segsync.clock import VirtualClock
from segsync.connector import ReadPage, RemoteContact
from segsync.testing import between_pages

TOKEN = HubSpotEmulator.default_api_key
AUDIENCE = 500  # three pages of 200

World = tuple[HubSpotEmulator, HubSpotConnector, VirtualClock, list[str]]


def run(body: Callable[[World], Awaitable[None]]) -> None:
    clock = VirtualClock()
    emulator = HubSpotEmulator(clock=clock, enforce_rate_limits=False)
    ids = []
    for i in range(AUDIENCE):
        ids.append(emulator.seed_contact({"email": f"c{i:04d}@example.com", "firstname": "A"}))
        if i % 50 == 0:
            clock.advance(1)
    clock.advance(3600)
    connector = HubSpotConnector(
        {"token": TOKEN, "base_url": "http://127.0.0.1:9"},
        transport=emulator.transport(),
        clock=clock,
    )

    async def main() -> None:
        async with connector:
            await body((emulator, connector, clock, ids))

    asyncio.run(main())


async def read(connector: HubSpotConnector, cursor: str | None) -> tuple[list[RemoteContact], str]:
    pages: list[ReadPage] = [p async for p in connector.read(cursor)]
    last = next((p.cursor for p in reversed(pages) if p.cursor), cursor)
    assert last is not None
    return [c for p in pages for c in p.contacts], last


async def archive(emulator: HubSpotEmulator, contact_ids: list[str]) -> None:
    """Someone deletes contacts in HubSpot (archived: search no longer finds them)."""
    async with httpx.AsyncClient(
        base_url="https://api.hubapi.com",
        transport=emulator.transport(),
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        for contact_id in contact_ids:
            answer = await client.delete(f"/crm/v3/objects/contacts/{contact_id}")
            assert answer.status_code == 204


def test_contacts_archived_between_pages_hide_no_other_contact() -> None:
    """Contacts of the first page archived after it is served: every other contact is still
    read (offset paging used to skip as many contacts as were archived before the offset)."""

    async def body(world: World) -> None:
        emulator, connector, clock, ids = world
        gone = ids[3:10]

        async def act(served: int) -> None:
            if served == 1:
                clock.advance(1)
                await archive(emulator, gone)

        with between_pages(emulator, act):
            contacts, _ = await read(connector, None)

        emails = [c.email for c in contacts]
        expected = {f"c{i:04d}@example.com" for i in range(AUDIENCE) if ids[i] not in gone}
        assert expected <= set(emails), sorted(expected - set(emails))[:5]
        assert len(emails) == len(set(emails))

    run(body)


def test_edits_and_opt_outs_between_pages_are_read_by_this_read_or_the_next() -> None:
    """Contacts edited or opted out while the read pages, before and after the offset, some of
    them while others are archived: the next incremental read has every change."""

    async def body(world: World) -> None:
        emulator, connector, clock, ids = world
        edited = [ids[0], ids[250], ids[-1]]
        opted_out = "c0001@example.com"

        async def act(served: int) -> None:
            clock.advance(1)
            if served == 1:
                for contact_id in edited:
                    emulator.modify_contact(contact_id, {"firstname": "Edited"})
                emulator.unsubscribe_all(opted_out)
                await archive(emulator, ids[5:8])
            clock.advance(400)  # a slow read: longer than the overlap

        with between_pages(emulator, act):
            first, cursor = await read(connector, None)
        clock.advance(60)
        second, _ = await read(connector, cursor)

        latest = {c.platform_id: c for c in first + second}
        assert all(latest[i].fields.get("first_name") == "Edited" for i in edited)
        by_email = {c.email: c for c in first + second}
        assert by_email[opted_out].consent.is_opt_out
        assert {c.platform_id for c in second} <= {*edited, ids[1]}

    run(body)
