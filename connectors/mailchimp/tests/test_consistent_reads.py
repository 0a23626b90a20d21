"""Mailchimp reads never lose an edit made while they page, nor a tag edit made in Mailchimp.

The emulator's `after_read_page` hook makes the edits between two pages of a read, as
people working in the account do while segsync pages through it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from segsync_mailchimp import MailchimpConnector, MailchimpEmulator, subscriber_hash

from segsync.clock import VirtualClock
from segsync.connector import ReadPage, RemoteContact
from segsync.model import FieldSpec, FieldType, Schema

KEY = MailchimpEmulator.default_api_key
LIST = MailchimpEmulator.default_list_id
AUDIENCE = 2500  # three pages of 1000

World = tuple[MailchimpEmulator, MailchimpConnector, VirtualClock]


def run(
    body: Callable[[World], Awaitable[None]],
    *,
    emulator_options: dict[str, Any] | None = None,
    **config: Any,
) -> None:
    clock = VirtualClock()
    emulator = MailchimpEmulator(clock=clock, **(emulator_options or {}))
    connector = MailchimpConnector(
        {"api_key": KEY, "list_id": LIST, **config},
        transport=emulator.transport(),
        clock=clock,
        schema=Schema(fields={"first_name": FieldSpec(type=FieldType.TEXT)}),
    )

    async def main() -> None:
        async with connector:
            await body((emulator, connector, clock))

    asyncio.run(main())


async def read(
    connector: MailchimpConnector, cursor: str | None
) -> tuple[list[RemoteContact], str]:
    pages: list[ReadPage] = [p async for p in connector.read(cursor)]
    last = next((p.cursor for p in reversed(pages) if p.cursor), cursor)
    assert last is not None
    return [c for p in pages for c in p.contacts], last


def seed(emulator: MailchimpEmulator, clock: VirtualClock, count: int) -> list[str]:
    """`count` members, each changed a second after the previous one."""
    emails = []
    for i in range(count):
        emails.append(f"member{i:05d}@segsync.dev")
        emulator.seed_member(emails[-1], merge_fields={"FNAME": f"M{i}"})
        clock.advance(1)
    return emails


def edit(emulator: MailchimpEmulator, email: str, first_name: str) -> None:
    """A person edits a member in Mailchimp (its last_changed moves to now)."""
    member = emulator.get_member(email)
    assert member is not None
    member.merge_fields["FNAME"] = first_name
    member.last_changed = emulator.clock.now()


def test_an_edit_after_the_first_page_loses_no_member() -> None:
    """2,500 members, one edited after page 1: the full read still has every member, and
    the edit is read by it or by the next incremental read (offset paging over last_changed
    used to skip the member that moved into the edited one's place, for good)."""

    async def body(world: World) -> None:
        emulator, connector, clock = world
        emails = seed(emulator, clock, AUDIENCE)
        clock.advance(3600)

        def after_page(answered: int) -> None:
            if answered == 1:
                clock.advance(1)
                edit(emulator, emails[5], "Edited")

        emulator.after_read_page = after_page
        first, cursor = await read(connector, None)
        emulator.after_read_page = None
        clock.advance(3600)
        second, _ = await read(connector, cursor)

        assert {c.email for c in first} == set(emails), "a member is missing from the full read"
        read_values = [(c.email, c.fields.get("first_name")) for c in first + second]
        assert (emails[5], "Edited") in read_values, "the edit is read by this read or the next"
        assert {c.email for c in second} <= {emails[5]}

    run(body)


def test_a_read_longer_than_the_overlap_loses_no_edit() -> None:
    """Pages that take 400 s each (a read far longer than the 300 s overlap) with an edit
    between two of them: the next read has it, because the cursor is the read's start, not
    its end."""

    async def body(world: World) -> None:
        emulator, connector, clock = world
        emails = seed(emulator, clock, AUDIENCE)
        clock.advance(3600)

        def slow_pages(answered: int) -> None:
            clock.advance(400)
            if answered == 2:  # after the first page below the read's bound
                edit(emulator, emails[2000], "During")

        emulator.after_read_page = slow_pages
        first, cursor = await read(connector, None)
        emulator.after_read_page = None
        clock.advance(60)
        second, _ = await read(connector, cursor)

        # the edited member left the read's set before its page: the next read has it
        assert {c.email for c in first} >= set(emails) - {emails[2000]}
        read_values = [(c.email, c.fields.get("first_name")) for c in first + second]
        assert (emails[2000], "During") in read_values

    run(body)


def test_members_archived_while_paging_do_not_hide_others() -> None:
    """Members archived between pages leave the active set: no other member is skipped."""

    async def body(world: World) -> None:
        emulator, connector, clock = world
        emails = seed(emulator, clock, AUDIENCE)
        clock.advance(3600)

        def archive_some(answered: int) -> None:
            if answered in (1, 3):
                clock.advance(5)
                for email in emails[10 * answered : 10 * answered + 7]:
                    member = emulator.get_member(email)
                    assert member is not None
                    member.status = "archived"
                    member.last_changed = clock.now()

        emulator.after_read_page = archive_some
        first, _ = await read(connector, None)

        active = {c.email for c in first if not c.deleted}
        assert active | {c.email for c in first if c.deleted} >= set(emails)

    run(body)


@pytest.mark.parametrize("bump", [False, True], ids=["strict", "lenient"])
def test_tag_edits_made_in_mailchimp_reach_incremental_reads(bump: bool) -> None:
    """A tag added and one removed in Mailchimp reach an incremental read whether or not tag
    edits move last_changed: at the latest with the periodic full read."""

    async def body(world: World) -> None:
        emulator, connector, clock = world
        emulator.seed_member("tagged@segsync.dev", tags=["Old"])
        emulator.seed_member("quiet@segsync.dev")
        clock.advance(60)
        _, cursor = await read(connector, None)
        clock.advance(60)
        async with httpx.AsyncClient(
            base_url="https://us21.api.mailchimp.com/3.0",
            transport=emulator.transport(),
            auth=("anystring", KEY),
        ) as client:
            answer = await client.post(
                f"/lists/{LIST}/members/{subscriber_hash('tagged@segsync.dev')}/tags",
                json={
                    "tags": [
                        {"name": "New", "status": "active"},
                        {"name": "Old", "status": "inactive"},
                    ]
                },
            )
            assert answer.status_code == 204
        clock.advance(3600 + 1)  # past tag_refresh_seconds
        contacts, cursor = await read(connector, cursor)
        clock.advance(60)
        after, _ = await read(connector, cursor)

        tagged = {c.email: c.tags for c in contacts}
        assert tagged["tagged@segsync.dev"] == frozenset({"New"})
        assert after == [], "the full read is not repeated before its period"

    run(body, emulator_options={"tag_changes_bump_last_changed": bump}, tag_refresh_seconds=3600)


def test_no_full_read_when_the_refresh_is_off() -> None:
    """With tag_refresh_seconds 0, incremental reads stay incremental however long apart."""

    async def body(world: World) -> None:
        emulator, connector, clock = world
        emulator.seed_member("one@segsync.dev")
        clock.advance(60)
        _, cursor = await read(connector, None)
        clock.advance(30 * 24 * 3600)
        again, _ = await read(connector, cursor)

        assert again == []

    run(body, tag_refresh_seconds=0)
