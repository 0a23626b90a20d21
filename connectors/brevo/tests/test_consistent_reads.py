"""Brevo reads never lose a contact or an edit when people act in Brevo while they page.

The emulator's `after_read_page` hook (see `segsync.emulator.base`) runs between two pages of
`GET /contacts`: contacts deleted there move the unread ones back (offset paging in creation
order), edits and unsubscribes move `modifiedAt` past the read's start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator

from segsync.clock import VirtualClock
from segsync.connector import ReadPage, RemoteContact
from segsync.model import FieldSpec, FieldType, Schema
from segsync.testing import between_pages

KEY = BrevoEmulator.default_api_key
AUDIENCE = 2500  # three pages of 1000

World = tuple[BrevoEmulator, BrevoConnector, VirtualClock, list[str]]


def run(body: Callable[[World], Awaitable[None]]) -> None:
    clock = VirtualClock()
    emulator = BrevoEmulator(clock=clock, enforce_rate_limits=False)
    emails = []
    for i in range(AUDIENCE):
        emails.append(f"c{i:04d}@example.com")
        emulator.seed_contact(emails[-1], attributes={"FIRSTNAME": "A"})
        if i % 100 == 0:
            clock.advance(1)
    clock.advance(3600)
    connector = BrevoConnector(
        {"api_key": KEY},
        transport=emulator.transport(),
        clock=clock,
        schema=Schema(fields={"first_name": FieldSpec(type=FieldType.TEXT)}),
    )

    async def main() -> None:
        async with connector:
            await body((emulator, connector, clock, emails))

    asyncio.run(main())


async def read(connector: BrevoConnector, cursor: str | None) -> tuple[list[RemoteContact], str]:
    pages: list[ReadPage] = [p async for p in connector.read(cursor)]
    last = next((p.cursor for p in reversed(pages) if p.cursor), cursor)
    assert last is not None
    return [c for p in pages for c in p.contacts], last


async def delete(emulator: BrevoEmulator, emails: list[str]) -> None:
    """Someone deletes contacts in Brevo."""
    async with httpx.AsyncClient(
        base_url="https://api.brevo.com/v3",
        transport=emulator.transport(),
        headers={"api-key": KEY},
    ) as client:
        for email in emails:
            answer = await client.delete(f"/contacts/{email}")
            assert answer.status_code == 204, answer.text


def edit(emulator: BrevoEmulator, email: str) -> None:
    """A person edits FIRSTNAME in Brevo's interface."""
    record = emulator.contact(email)
    assert record is not None
    record.attributes["FIRSTNAME"] = "Edited"
    record.modified_at = emulator.clock.now()


def test_contacts_deleted_between_pages_hide_no_other_contact() -> None:
    """Contacts of the first page deleted after it is served (and more after the second):
    every other contact is still read (offset paging used to skip as many)."""

    async def body(world: World) -> None:
        emulator, connector, clock, emails = world
        gone = {1: emails[3:10], 2: [*emails[1200:1203], emails[1999]]}

        async def act(served: int) -> None:
            clock.advance(1)
            await delete(emulator, gone.get(served, []))

        with between_pages(emulator, act):
            contacts, _ = await read(connector, None)

        read_emails = [c.email for c in contacts]
        expected = set(emails) - {e for es in gone.values() for e in es}
        assert expected <= set(read_emails), sorted(expected - set(read_emails))[:5]
        assert len(read_emails) == len(set(read_emails))

    run(body)


def test_edits_and_unsubscribes_during_a_slow_read_reach_the_next_read() -> None:
    """Contacts edited or unsubscribed while a read pages, before and after its offset, in a
    read far longer than the overlap: the next incremental read has every change, and
    nothing else."""

    async def body(world: World) -> None:
        emulator, connector, clock, emails = world
        edited = {1: [emails[0], emails[1500]], 2: [emails[2], emails[2400]]}
        unsubscribed = emails[1]

        async def act(served: int) -> None:
            clock.advance(1)
            for email in edited.get(served, []):
                edit(emulator, email)
            if served == 1:
                emulator.blocklist(unsubscribed)
            clock.advance(1000)

        with between_pages(emulator, act):
            first, cursor = await read(connector, None)
        clock.advance(60)
        second, _ = await read(connector, cursor)

        latest = {c.email: c for c in first + second}
        changed = {e for es in edited.values() for e in es}
        assert {e: latest[e].fields.get("first_name") for e in changed} == dict.fromkeys(
            changed, "Edited"
        )
        assert latest[unsubscribed].consent.is_opt_out
        assert {c.email for c in second} <= changed | {unsubscribed}

    run(body)
