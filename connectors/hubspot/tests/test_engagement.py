"""Engagement read from HubSpot: email properties in the search, no data is not zero."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from segsync_hubspot import HubSpotConnector, HubSpotEmulator

from segsync.clock import VirtualClock
from segsync.connector import ContactChange, RemoteContact

TOKEN = HubSpotEmulator.default_api_key
Wrap = Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]
World = tuple[HubSpotEmulator, HubSpotConnector, VirtualClock]


def run(clock: VirtualClock, checked: Wrap, body: Callable[[World], Awaitable[None]]) -> None:
    emulator = HubSpotEmulator(clock=clock, enforce_rate_limits=False)
    connector = HubSpotConnector(
        {"token": TOKEN, "base_url": "http://127.0.0.1:9"},
        transport=checked(emulator.transport()),
        clock=clock,
    )

    async def main() -> None:
        async with connector:
            await body((emulator, connector, clock))

    asyncio.run(main())


async def read_all(connector: HubSpotConnector, cursor: str | None = None) -> dict[str, Any]:
    out: dict[str, RemoteContact] = {}
    async for page in connector.read(cursor):
        out.update({c.email: c for c in page.contacts})
    return out


async def refresh(
    connector: HubSpotConnector, cursor: str | None = None
) -> tuple[dict[str, dict[str, Any]], str | None]:
    values: dict[str, dict[str, Any]] = {}
    async for page in connector.read_engagement(cursor):
        values.update({k: dict(v) for k, v in page.values.items()})
        cursor = page.cursor or cursor
    return values, cursor


def test_copy_segsync_created_shows_no_email_figures_until_a_send(
    clock: VirtualClock, checked: Wrap
) -> None:
    """HubSpot shows 0 for a contact never emailed: read as no data; after a recorded send,
    open and click the figures are read."""

    async def body(world: World) -> None:
        emu, connector, clock = world
        await connector.write([ContactChange(email="copy@segsync.dev", create=True)])
        contact_id = emu.contact_by_email("copy@segsync.dev")["hs_object_id"]
        emu.set_engagement("copy@segsync.dev", hs_email_open="0", hs_email_delivered="0")
        clock.advance(120)
        copy = (await read_all(connector))["copy@segsync.dev"]
        assert not {"emails_delivered", "opens", "clicks"} & set(copy.engagement)
        assert (await refresh(connector))[0] == {}

        sent = clock.now()
        emu.record_email("copy@segsync.dev", "send", at=sent)
        emu.record_email("copy@segsync.dev", "open", at=sent + dt.timedelta(minutes=5))
        emu.record_email("copy@segsync.dev", "click", at=sent + dt.timedelta(minutes=6))
        clock.advance(120)
        got = (await read_all(connector))["copy@segsync.dev"].engagement
        assert got["emails_delivered"] == 1
        assert (got["opens"], got["clicks"]) == (1, 1)
        assert got["last_open"] == sent + dt.timedelta(minutes=5)
        assert got["last_click"] == sent + dt.timedelta(minutes=6)
        assert "open_rate" not in got
        assert "member_rating" not in got
        values, _ = await refresh(connector)
        assert values[str(contact_id)]["opens"] == 1

    run(clock, checked, body)


def test_read_engagement_is_incremental_over_preexisting_contacts(
    clock: VirtualClock, checked: Wrap
) -> None:
    """Contacts people emailed long before segsync are read on the first refresh; the next
    one reads only those with a send, open or click since."""

    async def body(world: World) -> None:
        emu, connector, clock = world
        old = clock.now()
        for i in range(5):
            emu.seed_contact({"email": f"old{i}@example.com", "lifecyclestage": "customer"})
            emu.record_email(f"old{i}@example.com", "send", at=old)
        emu.seed_contact({"email": "never@example.com"})
        clock.advance(3600)
        values, cursor = await refresh(connector)
        emails = {emu.contacts[k].properties["email"] for k in values}
        assert emails == {f"old{i}@example.com" for i in range(5)}
        assert all(v["lifecycle_stage"] == "customer" for v in values.values())

        clock.advance(3600)
        emu.record_email("old3@example.com", "open")
        clock.advance(120)
        again, _ = await refresh(connector, cursor)
        assert {emu.contacts[k].properties["email"] for k in again} == {"old3@example.com"}
        assert again[next(iter(again))]["opens"] == 1

    run(clock, checked, body)


async def read_with_cursor(
    connector: HubSpotConnector, cursor: str | None = None
) -> tuple[dict[str, RemoteContact], str | None]:
    out: dict[str, RemoteContact] = {}
    async for page in connector.read(cursor):
        out.update({c.email: c for c in page.contacts})
        cursor = page.cursor or cursor
    return out, cursor


@pytest.mark.parametrize("moves", [False, True], ids=["cursor-stays", "cursor-moves"])
def test_engagement_is_read_whether_or_not_it_moves_lastmodifieddate(
    clock: VirtualClock, checked: Wrap, moves: bool
) -> None:
    """Whether HubSpot moves `lastmodifieddate` for its calculated email properties is read
    two ways (the emulator's `engagement_moves_lastmodified`); the incremental read sees an
    open only when it does, the engagement refresh sees it either way, and the search the
    refresh makes finds it once the index lag has passed."""

    async def body(world: World) -> None:
        emu, connector, clock = world
        emu.engagement_moves_lastmodified = moves
        emu.seed_contact({"email": "reader@example.com"})
        emu.seed_contact({"email": "bystander@example.com"})
        emu.record_engagement("reader@example.com", "send", "june")
        clock.advance(3600)
        _, cursor = await read_with_cursor(connector)
        first, engaged = await refresh(connector)
        contact_id = emu.contact_by_email("reader@example.com")["hs_object_id"]
        assert set(first) == {contact_id}
        stamp = emu.contact_by_email("reader@example.com")["lastmodifieddate"]

        clock.advance(3600)
        emu.record_engagement("reader@example.com", "open", "june")
        assert (emu.contact_by_email("reader@example.com")["lastmodifieddate"] != stamp) is moves
        clock.advance(600)  # past the search index lag
        seen, _ = await read_with_cursor(connector, cursor)
        assert ("reader@example.com" in seen) is moves
        if moves:
            assert seen["reader@example.com"].engagement["opens"] == 1
        values, _ = await refresh(connector, engaged)
        assert values[contact_id]["opens"] == 1
        assert values[contact_id]["last_open"] is not None

    run(clock, checked, body)


def test_the_hook_refuses_an_open_of_an_email_never_sent(
    clock: VirtualClock, checked: Wrap
) -> None:
    async def body(world: World) -> None:
        emu, _, _ = world
        emu.seed_contact({"email": "a@example.com"})
        with pytest.raises(KeyError):
            emu.record_engagement("a@example.com", "open", "never-sent")
        with pytest.raises(ValueError, match="bounce"):
            emu.record_engagement("a@example.com", "bounce", "x")

    run(clock, checked, body)
