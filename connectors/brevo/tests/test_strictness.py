"""The Brevo emulator takes the strict reading where Brevo's behaviour is unverified (with a
switch for the lenient one), answers as the description shapes, and the connector works under
both readings."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator
from segsync_brevo.responsecheck import MISSING, response_validator

from segsync.clock import VirtualClock
from segsync.connector import ChangeResult, ContactChange, RemoteContact
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema

SCHEMA = Schema(fields={"first_name": FieldSpec(type=FieldType.TEXT)})
BASE = "https://api.brevo.com/v3"
DOI = {"double_opt_in": {"template_id": 7, "redirection_url": "https://example.com/ok"}}

World = tuple[BrevoConnector, BrevoEmulator, VirtualClock]


def run(
    body: Callable[[World], Awaitable[None]],
    config: dict[str, Any] | None = None,
    **emulator_options: Any,
) -> None:
    clock = VirtualClock()
    emulator = BrevoEmulator(clock=clock, **emulator_options)
    connector = BrevoConnector(
        {"api_key": emulator.api_key, **(config or {})},
        schema=SCHEMA,
        transport=emulator.transport(),
        clock=clock,
    )

    async def main() -> None:
        async with connector:
            await body((connector, emulator, clock))

    asyncio.run(main())


def api(emulator: BrevoEmulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=BASE, transport=emulator.transport(), headers={"api-key": emulator.api_key}
    )


async def read_all(connector: BrevoConnector) -> list[RemoteContact]:
    return [c async for page in connector.read() for c in page.contacts]


def test_strict_defaults_and_their_lenient_switches() -> None:
    """Unverified behaviours default to the strict reading."""
    assert not BrevoEmulator().double_opt_in_lifts_blocklist
    assert BrevoEmulator(double_opt_in_lifts_blocklist=True).double_opt_in_lifts_blocklist


@pytest.mark.parametrize("lenient", [False, True], ids=["strict", "lenient"])
def test_confirming_double_opt_in_and_the_blocklist(lenient: bool) -> None:
    """Strict: the person's confirmation does not lift Brevo's blocklist (unverified; fact
    sheet §2.8). In both readings the connector never lifts it itself and reads back what
    Brevo holds: unsubscribed while blocklisted, subscribed once the blocklist is gone."""

    async def body(world: World) -> None:
        connector, emu, clock = world
        await connector.prepare(SCHEMA.fields, [])
        [created] = await connector.write(
            [ContactChange(email="doi@example.com", create=True, consent=ConsentStatus.SUBSCRIBED)]
        )
        emu.blocklist("doi@example.com")
        clock.advance(1)
        [asked] = await connector.write(
            [
                ContactChange(
                    email="doi@example.com",
                    platform_id=created.platform_id,
                    consent=ConsentStatus.SUBSCRIBED,
                )
            ]
        )
        emu.confirm_double_opt_in("doi@example.com")
        clock.advance(1)
        [back] = await read_all(connector)
        stored = emu.contact("doi@example.com")

        assert asked.ok
        assert asked.code == "double_opt_in"
        assert emu.unblocklist_writes == []
        assert stored is not None
        assert stored.email_blacklisted is (not lenient)
        if lenient:
            assert back.consent.status is ConsentStatus.SUBSCRIBED
        else:
            assert back.consent.status is ConsentStatus.UNSUBSCRIBED
            assert back.consent.evidence == "emailBlacklisted=true"

    run(body, DOI, double_opt_in_lifts_blocklist=lenient)


def test_an_import_of_malformed_rows_fails_with_an_error() -> None:
    """A row Brevo cannot read (more cells than the header) fails the whole process:
    `status: failed` with an `error` (2026 description), and nothing of it is applied."""

    async def body(world: World) -> None:
        _, emu, clock = world
        async with api(emu) as client:
            started = await client.post(
                "/contacts/import",
                json={
                    "fileBody": "EMAIL;FIRSTNAME\nok@example.com;Ok\nx@example.com;X;extra",
                    "listIds": [1],
                },
            )
            clock.advance(3600)
            emu.advance_processes()
            pid = started.json()["processId"]
            one = (await client.get(f"/processes/{pid}")).json()
            listed = (await client.get("/processes")).json()["processes"]

        assert started.status_code == 202
        assert one["status"] == "failed"
        assert "row(s) 2" in one["error"]
        assert "info" not in one
        assert listed[0]["id"] == pid
        assert listed[0]["status"] == "failed"
        assert emu.contact("ok@example.com") is None

    run(body)


def test_a_failed_import_is_reported_per_contact_with_brevos_error() -> None:
    """When Brevo fails an import process, each change it carried is a failed result naming
    the process and Brevo's error; nothing is confirmed that Brevo did not take."""

    async def body(world: World) -> None:
        connector, emu, _ = world
        await connector.prepare(SCHEMA.fields, [])
        emu.fail_imports("Processing timeout exceeded")
        results = await connector.write(
            [
                ContactChange(email=f"imp{i}@example.com", create=True, fields={"first_name": "I"})
                for i in range(4)
            ]
        )
        emu.fail_imports(None)
        again = await connector.write(
            [
                ContactChange(email=f"imp{i}@example.com", create=True, fields={"first_name": "I"})
                for i in range(4)
            ]
        )

        assert emu.log.count("POST", re.compile("/contacts/import$")) == 2
        assert [r.ok for r in results] == [False] * 4
        assert all(r.code == "import_failed" for r in results)
        assert all("Processing timeout exceeded" in (r.error or "") for r in results)
        assert all(r.ok for r in again)

    run(body, {"import_threshold": 2})


def _ok(results: list[ChangeResult]) -> bool:
    return all(r.ok for r in results)


def test_contact_statistics_have_the_described_shape() -> None:
    """`GET /contacts/{id}` carries `statistics` with each campaign event list (empty where no
    campaign ran), not an empty object."""

    async def body(world: World) -> None:
        connector, emu, _ = world
        await connector.prepare(SCHEMA.fields, [])
        assert _ok(await connector.write([ContactChange(email="s@example.com", create=True)]))
        async with api(emu) as client:
            data = (await client.get("/contacts/s@example.com")).json()

        stats = data["statistics"]
        assert stats["messagesSent"] == []
        assert stats["opened"] == []
        assert stats["clicked"] == []
        assert stats["unsubscriptions"] == {"userUnsubscription": [], "adminUnsubscription": []}

    run(body)


def test_a_folders_lists_carry_no_folder_id_and_the_connector_needs_none() -> None:
    """`GET /contacts/folders/{id}/lists` items have no `folderId` (getFolderLists); the
    connector finds its lists in its folder without it, and `/contacts/lists` keeps it."""

    async def body(world: World) -> None:
        connector, emu, _ = world
        await connector.prepare(SCHEMA.fields, ["alpha"])
        results = await connector.write(
            [ContactChange(email="t@example.com", create=True, tags_add=frozenset({"alpha"}))]
        )
        async with api(emu) as client:
            folders = (await client.get("/contacts/folders")).json()["folders"]
            folder = max(f["id"] for f in folders)
            in_folder = (await client.get(f"/contacts/folders/{folder}/lists")).json()["lists"]
            everywhere = (await client.get("/contacts/lists")).json()["lists"]
        [back] = await read_all(connector)

        assert _ok(results)
        assert in_folder
        assert all("folderId" not in item for item in in_folder)
        assert all("folderId" in item for item in everywhere)
        assert back.tags == frozenset({"alpha"})

    run(body, enforce_rate_limits=False)


def test_the_response_validator_flags_an_answer_outside_the_description() -> None:
    """The validator the conformance runs use fails a list item missing a required count."""
    validator = response_validator()
    if validator is None:
        pytest.skip(MISSING)
    good = {"lists": [{"id": 1, "name": "a", "totalBlacklisted": 0, "totalSubscribers": 0,
                       "uniqueSubscribers": 0, "folderId": 1}], "count": 1}
    bad = {"lists": [{"id": 1, "name": "a", "folderId": 1}], "count": 1}

    assert validator.problems("GET", "/v3/contacts/lists", 200, good) == []
    assert any("totalSubscribers" in p for p in validator.problems("GET", "/v3/contacts/lists",
                                                                    200, bad))
    assert validator.problems("GET", "/v3/contacts/lists", 201, good)  # undeclared success
