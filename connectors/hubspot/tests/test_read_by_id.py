"""`read_by_id`: HubSpot records read directly, past search's index lag.

Search lags writes, so an edit made seconds ago is not in a search's answer; a batch read
by id reads the record itself. `read_by_id` reads 100 ids a call with the search read's
properties and conversion (statuses 100 a call), and answers an id HubSpot no longer holds
(archived, deleted, unknown) `deleted`. The emulator's batch read is checked against the
API descriptions (`archived` only archived records, 207 naming the ids not found).
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable
from typing import Any

import httpx
from segsync_hubspot import HubSpotConnector, HubSpotEmulator

from segsync.clock import VirtualClock
from segsync.connector import ContactChange, RemoteContact
from segsync.model import FieldSpec, FieldType, Schema

Wrap = Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]
SCHEMA = Schema(fields={
    "first_name": FieldSpec(type=FieldType.TEXT),
    "country": FieldSpec(type=FieldType.ENUM, options=("FR", "BE", "DE")),
})

BATCH_READ = re.compile(r"/contacts/batch/read$")
STATUS_READ = re.compile(r"/statuses/batch/read$")
SEARCH = re.compile(r"/contacts/search$")


def _connector(emulator: HubSpotEmulator, clock: VirtualClock) -> HubSpotConnector:
    return HubSpotConnector(
        {"token": emulator.api_key, "base_url": "http://127.0.0.1:9"},
        schema=SCHEMA, transport=emulator.transport(), clock=clock,
    )


def _portal(clock: VirtualClock) -> tuple[HubSpotEmulator, list[str]]:
    """A portal used before segsync, and 150 contacts of its own (some opted in, some out,
    some with a country and engagement)."""
    emulator = HubSpotEmulator(clock=clock)
    emulator.seed_lived_in()
    ids = []
    for i in range(150):
        email = f"p{i:03d}@segsync.dev"
        ids.append(emulator.seed_contact({"email": email, "firstname": f"P{i}",
                                          "country": "BE" if i % 3 else ""}))
        if i % 7 == 0:
            emulator.unsubscribe_all(email)
        elif i % 2:
            emulator.set_subscription(email, 101, subscribed=True,
                                      legal_basis="CONSENT_WITH_NOTICE", explanation="form")
        if i % 11 == 0:
            emulator.record_email(email, "send")
    clock.advance(emulator.read_lag_seconds)  # search finds what was seeded
    return emulator, ids


def _by_id(connector: HubSpotConnector, ids: list[str]) -> list[RemoteContact]:
    async def main() -> list[RemoteContact]:
        found: list[RemoteContact] = await connector.read_by_id(ids)
        return found

    return asyncio.run(main())


def _searched(connector: HubSpotConnector) -> dict[str, RemoteContact]:
    async def main() -> dict[str, RemoteContact]:
        return {c.platform_id: c async for page in connector.read(None) for c in page.contacts}

    return asyncio.run(main())


def test_read_by_id_reads_as_search_does_and_sees_what_search_does_not_yet() -> None:
    """Every record read by id is the record the search read gives (fields, tags, consent
    and its evidence, engagement), in ceil(n / 100) batch reads and ceil(n / 100) status
    reads; an edit made a second ago is in the answer by id, not yet in search's; archived,
    unknown and non-HubSpot ids come back deleted with no email."""
    clock = VirtualClock()
    emulator, ids = _portal(clock)
    connector = _connector(emulator, clock)
    searched = _searched(connector)
    assert len(searched) > 150
    emulator.log.clear()

    read = {c.platform_id: c for c in _by_id(connector, sorted(searched))}
    assert read == searched
    assert emulator.log.count("POST", BATCH_READ) == math.ceil(len(searched) / 100)
    assert emulator.log.count("POST", STATUS_READ) == math.ceil(len(searched) / 100)
    assert emulator.log.count("POST", SEARCH) == 0

    clock.advance(60)
    emulator.modify_contact(ids[5], {"firstname": "Renamed"})
    emulator.archive_contact(ids[6])
    clock.advance(1)  # well within search's lag
    again = {c.platform_id: c for c in _by_id(connector, [ids[5], ids[6], "999999", "abc"])}
    assert again[ids[5]].fields["first_name"] == "Renamed"
    assert again[ids[5]].deleted is False
    for gone in (ids[6], "999999", "abc"):
        assert (again[gone].deleted, again[gone].email) == (True, ""), gone
    assert _searched(connector)[ids[5]].fields["first_name"] == "P5", "search lags"


def test_the_emulator_batch_read_answers_archived_records_only_when_asked(
    checked: Wrap,
) -> None:
    """`archived=false` (the default): an archived record is named not found in a 207's
    errors; `archived=true`: only archived records, with `archivedAt`, the live ones named
    not found; any other value is a 400."""
    clock = VirtualClock()
    emulator = HubSpotEmulator(clock=clock)
    emulator.seed_lived_in()
    live = emulator.seed_contact({"email": "live@segsync.dev"})
    gone = emulator.seed_contact({"email": "gone@segsync.dev"})
    clock.advance(30)
    emulator.archive_contact(gone)
    client = httpx.AsyncClient(transport=checked(emulator.transport()),
                               base_url="http://127.0.0.1:9",
                               headers={"Authorization": f"Bearer {emulator.api_key}"})

    async def read(archived: str | None) -> tuple[int, dict[str, Any]]:
        params = {"archived": archived} if archived is not None else {}
        response = await client.post(
            "/crm/v3/objects/contacts/batch/read", params=params,
            json={"inputs": [{"id": live}, {"id": gone}], "properties": ["email"],
                  "propertiesWithHistory": []})
        return response.status_code, response.json()

    async def main() -> None:
        for archived in (None, "false"):
            status, body = await read(archived)
            assert status == 207
            assert [r["id"] for r in body["results"]] == [live]
            assert body["results"][0]["archived"] is False
            assert "archivedAt" not in body["results"][0]
            assert [e["context"]["ids"] for e in body["errors"]] == [[gone]]
            assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
        status, body = await read("true")
        assert status == 207
        assert [(r["id"], r["archived"]) for r in body["results"]] == [(gone, True)]
        assert body["results"][0]["archivedAt"] == body["results"][0]["updatedAt"]
        assert [e["context"]["ids"] for e in body["errors"]] == [[live]]
        status, _ = await read("yes")
        assert status == 400
        await client.aclose()

    asyncio.run(main())


def test_read_by_id_reads_tag_lists_as_the_search_read_does() -> None:
    """With `tags_as: lists`, a record read by id carries the tags its lists hold, as the
    search read gives them, beside the portal's own contacts."""
    clock = VirtualClock()
    emulator = HubSpotEmulator(clock=clock)
    emulator.seed_lived_in()
    connector = HubSpotConnector(
        {"token": emulator.api_key, "base_url": "http://127.0.0.1:9", "tags_as": "lists"},
        schema=SCHEMA, transport=emulator.transport(), clock=clock,
    )

    async def main() -> tuple[dict[str, RemoteContact], dict[str, RemoteContact]]:
        async with connector:
            await connector.prepare({}, ["vip", "b2b"])
            [made] = await connector.write([ContactChange(
                email="l@segsync.dev", create=True, tags_add=frozenset({"vip", "b2b"}))])
            await connector.write([ContactChange(
                email="l@segsync.dev", platform_id=made.platform_id,
                tags_remove=frozenset({"vip"}))])
            clock.advance(emulator.read_lag_seconds)
            searched = {c.platform_id: c async for p in connector.read() for c in p.contacts}
            read = {c.platform_id: c for c in await connector.read_by_id(sorted(searched))}
            return searched, read

    searched, read = asyncio.run(main())
    assert read == searched
    assert {c.email: c.tags for c in read.values() if c.tags} == {
        "l@segsync.dev": frozenset({"b2b"})}
