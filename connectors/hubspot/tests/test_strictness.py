"""The HubSpot emulator does what HubSpot documents and takes the strict reading where it is
uncertain (with a switch for the lenient one); the connector works under both readings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from segsync_hubspot import HubSpotConnector, HubSpotEmulator
from segsync_hubspot.emulator.scopes import PRIVATE_APP_SCOPES
from segsync_hubspot.emulator.state import STRICT_SEARCH_INDEX_LAG

from segsync.clock import VirtualClock
from segsync.connector import ContactChange, RemoteContact
from segsync.http import ApiError, MalformedAnswer
from segsync.model import FieldSpec, FieldType, Schema
from segsync.testing import between_pages

TOKEN = HubSpotEmulator.default_api_key
C = "/crm/objects/2026-03/contacts"
L = "/crm/lists/2026-03"
SCHEMA = Schema(fields={"first_name": FieldSpec(type=FieldType.TEXT)})
Wrap = Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]
Call = Callable[..., Awaitable[httpx.Response]]


def connector_on(emulator: HubSpotEmulator, checked: Wrap) -> HubSpotConnector:
    return HubSpotConnector(
        {"token": TOKEN, "base_url": "http://127.0.0.1:9"},
        schema=SCHEMA,
        transport=checked(emulator.transport()),
        clock=emulator.clock,
    )


def call_on(emulator: HubSpotEmulator, body: Callable[[Call], Awaitable[None]]) -> None:
    async def main() -> None:
        async with httpx.AsyncClient(
            transport=emulator.transport(),
            base_url="https://api.hubapi.com",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as client:
            await body(client.request)

    asyncio.run(main())


async def read_all(connector: HubSpotConnector, cursor: str | None = None) -> tuple[
    list[RemoteContact], str | None
]:
    pages = [p async for p in connector.read(cursor)]
    last = next((p.cursor for p in reversed(pages) if p.cursor), cursor)
    return [c for p in pages for c in p.contacts], last


def test_strict_defaults_and_their_lenient_switches() -> None:
    """Documented or uncertain behaviours default to the strict reading."""
    strict = HubSpotEmulator()
    assert strict.email_upsert_all_or_nothing
    assert strict.search_body_chars == 3000
    assert strict.token_scopes == PRIVATE_APP_SCOPES
    assert not strict.gdpr
    lenient = HubSpotEmulator(
        email_upsert_all_or_nothing=False, search_body_chars=5000, token_scopes=["x"], gdpr=True
    )
    assert not lenient.email_upsert_all_or_nothing
    assert lenient.token_scopes == frozenset({"x"})
    assert lenient.gdpr


# -- email upserts are all-or-nothing ----------------------------------------------------------


@pytest.mark.parametrize("all_or_nothing", [True, False], ids=["strict", "lenient"])
def test_an_email_upsert_with_one_bad_input(all_or_nothing: bool) -> None:
    """Docs: partial upserts are not supported by email. Strict: one bad input refuses the
    whole call (400, every error listed) and writes nothing; lenient: a 207."""
    emulator = HubSpotEmulator(email_upsert_all_or_nothing=all_or_nothing)

    async def body(call: Call) -> None:
        answer = await call(
            "POST",
            f"{C}/batch/upsert",
            json={
                "inputs": [
                    {"id": "ok@example.com", "idProperty": "email", "properties": {}},
                    {"id": "bad@example.com", "idProperty": "email",
                     "properties": {"no_such_property": "x"}},
                ]
            },
        )
        if all_or_nothing:
            assert answer.status_code == 400
            assert len(answer.json()["errors"]) == 1
            assert emulator.contact_by_email("ok@example.com") is None
        else:
            assert answer.status_code == 207
            assert emulator.contact_by_email("ok@example.com") is not None

    call_on(emulator, body)


@pytest.mark.parametrize("all_or_nothing", [True, False], ids=["strict", "lenient"])
def test_the_connector_writes_the_good_inputs_in_both_readings(
    all_or_nothing: bool, checked: Wrap
) -> None:
    """One refused address among 15 fails alone; the 14 others are written, either way."""
    emulator = HubSpotEmulator(clock=VirtualClock(), email_upsert_all_or_nothing=all_or_nothing)
    connector = connector_on(emulator, checked)
    changes = [
        ContactChange(email=f"ok{i}@example.com", create=True, fields={"first_name": "Ok"})
        for i in range(15)
    ]
    changes[4] = ContactChange(email="not-an-address", create=True)

    async def main() -> list[Any]:
        async with connector:
            await connector.prepare(SCHEMA.fields, [])
            return await connector.write(changes)

    results = asyncio.run(main())

    assert [i for i, r in enumerate(results) if not r.ok] == [4]
    assert len(emulator.contacts) == 14


# -- search: the index lags, bodies are at most 3,000 characters ---------------------------------


def test_search_does_not_find_a_write_until_the_index_caught_up() -> None:
    """Search is eventually consistent: a contact written is found only after its lag
    (between half and all of `search_delay_seconds`)."""
    clock = VirtualClock()
    emulator = HubSpotEmulator(clock=clock, search_delay_seconds=5)
    emulator.seed_contact({"email": "new@example.com"})
    found: list[int] = []

    async def body(call: Call) -> None:
        for _ in range(2):
            answer = await call("POST", f"{C}/search", json={"limit": 10})
            found.append(answer.json()["total"])
            clock.advance(6)

    call_on(emulator, body)

    assert found == [0, 1]


@pytest.mark.parametrize("lag", [5.0, 0.0], ids=["strict", "lenient"])
def test_incremental_reads_and_existence_checks_need_no_instant_search(
    lag: float, checked: Wrap
) -> None:
    """With or without an index lag: an edit made just before a read is read by the next
    one (the read overlap), and writing an address someone just created in HubSpot (not yet
    searchable) updates that contact instead of creating a second one (upsert by email)."""
    clock = VirtualClock()
    emulator = HubSpotEmulator(clock=clock, search_delay_seconds=lag)
    connector = connector_on(emulator, checked)
    emulator.seed_contact({"email": "early@example.com"})
    clock.advance(60)

    async def main() -> tuple[list[str], list[str], int]:
        async with connector:
            await connector.prepare(SCHEMA.fields, [])
            for i in range(20):  # written just before the read, some not yet searchable
                emulator.seed_contact({"email": f"late{i}@example.com"})
                clock.advance(0.25)
            first, cursor = await read_all(connector)
            clock.advance(30)
            second, _ = await read_all(connector, cursor)
            fresh = emulator.seed_contact({"email": "fresh@example.com"})
            [result] = await connector.write(
                [ContactChange(email="fresh@example.com", create=True,
                               fields={"first_name": "F"})]
            )
            assert result.ok
            assert result.platform_id == fresh
            return [c.email for c in first], [c.email for c in second], len(emulator.contacts)

    first, second, count = asyncio.run(main())

    assert "early@example.com" in first
    assert {f"late{i}@example.com" for i in range(20)} <= set(first + second)
    assert count == 22
    assert (emulator.contact_by_email("fresh@example.com") or {})["firstname"] == "F"


@pytest.mark.parametrize(("limit", "status"), [(3000, 3000), (5000, 400)])
def test_search_bodies_above_3000_characters_are_refused(limit: int, status: int) -> None:
    """Search guide: a body of more than 3,000 characters is a 400 (lenient: 5,000)."""
    emulator = HubSpotEmulator(search_body_chars=limit)
    values = [f"v{i:04d}@example.com" for i in range(200)]
    payload = {
        "filterGroups": [{"filters": [
            {"propertyName": "email", "operator": "IN", "values": values}
        ]}],
        "limit": 10,
    }
    size = len(json.dumps(payload, separators=(",", ":")))
    assert 3000 < size <= 5000

    async def body(call: Call) -> None:
        answer = await call(
            "POST", f"{C}/search", content=json.dumps(payload, separators=(",", ":")),
            headers={"content-type": "application/json"},
        )
        assert answer.status_code == (400 if limit == 3000 else 200)
        if limit == 3000:
            assert "3000" in answer.json()["message"]

    call_on(emulator, body)
    assert status in (3000, 400)


def test_the_connectors_search_bodies_stay_under_the_limit(checked: Wrap) -> None:
    """The connector's reads fit the strict 3,000-character limit (they pass unrefused)."""
    clock = VirtualClock()
    emulator = HubSpotEmulator(clock=clock, search_body_chars=3000)
    for i in range(30):
        emulator.seed_contact({"email": f"c{i}@example.com"})
    clock.advance(3600)
    connector = connector_on(emulator, checked)

    async def main() -> list[RemoteContact]:
        async with connector:
            first, cursor = await read_all(connector)
            clock.advance(3600)
            again, _ = await read_all(connector, cursor)
            return first + again

    assert len(asyncio.run(main())) == 30
    assert [s for _, _, s in emulator.log.entries if s >= 400] == []


# -- scopes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "scope"),
    [
        ("POST", f"{C}/search", {"limit": 1}, "crm.objects.contacts.read"),
        ("POST", f"{C}/batch/upsert", {"inputs": []}, "crm.objects.contacts.write"),
        ("POST", "/crm/properties/2026-03/contacts",
         {"name": "x", "label": "x", "type": "string", "fieldType": "text",
          "groupName": "contactinformation"}, "crm.schemas.contacts.write"),
        ("GET", f"{L}/1/memberships", None, "crm.lists.read"),
        ("PUT", f"{L}/1/memberships/add", ["1"], "crm.lists.write"),
        ("GET", "/communication-preferences/2026-03/statuses/a@example.com",
         None, "communication_preferences.read"),
    ],
)
def test_each_endpoint_needs_its_scopes(
    method: str, path: str, body: Any, scope: str
) -> None:
    """A token without the endpoint's scope gets 403 MISSING_SCOPES naming it; the other
    endpoints still answer."""
    withheld = {scope, "communication_preferences.read_write"}  # read_write would do too
    emulator = HubSpotEmulator(token_scopes=PRIVATE_APP_SCOPES - withheld)

    async def run(call: Call) -> None:
        refused = await call(method, path, json=body) if body is not None else await call(
            method, path
        )
        other = await call("GET", "/account-info/2026-03/details")

        assert refused.status_code == 403
        assert refused.json()["category"] == "MISSING_SCOPES"
        wanted = refused.json()["errors"][0]["context"]["requiredGranularScopes"]
        assert scope in wanted
        assert other.status_code == 200

    call_on(emulator, run)


def test_list_membership_writes_need_read_and_write() -> None:
    """crm-lists `security`: membership writes need crm.lists.read as well as write."""
    emulator = HubSpotEmulator(token_scopes=PRIVATE_APP_SCOPES - {"crm.lists.read"})

    async def run(call: Call) -> None:
        answer = await call("PUT", f"{L}/1/memberships/add", json=["1"])
        assert answer.status_code == 403

    call_on(emulator, run)


def test_the_connector_reports_a_missing_scope(checked: Wrap) -> None:
    """Without crm.schemas.contacts.write, preparing segsync's properties fails with
    HubSpot's 403, not silently (and the token is not in the error)."""
    emulator = HubSpotEmulator(
        clock=VirtualClock(), token_scopes=PRIVATE_APP_SCOPES - {"crm.schemas.contacts.write"}
    )
    connector = connector_on(emulator, checked)

    async def main() -> None:
        async with connector:
            await connector.prepare(SCHEMA.fields, ["alpha"])

    with pytest.raises(ApiError) as caught:
        asyncio.run(main())
    assert caught.value.status == 403
    assert TOKEN not in str(caught.value)


# -- the lists a record is in --------------------------------------------------------------------


def test_the_lists_a_record_is_in(checked: Wrap) -> None:
    """`GET /crm/v3/lists/records/0-1/{id}/memberships` lists a contact's MANUAL and DYNAMIC
    lists (with `listVersion`), nothing for a contact in none, 404 for an unknown record."""
    clock = VirtualClock()
    emulator = HubSpotEmulator(clock=clock)
    ann = emulator.seed_contact({"email": "ann@example.com", "firstname": "Ann"})
    bob = emulator.seed_contact({"email": "bob@example.com", "firstname": "Bob"})

    async def body(call: Call, read: Call) -> None:
        manual = (await call("POST", L, json={
            "name": "m", "objectTypeId": "0-1", "processingType": "MANUAL"})).json()["list"]
        dynamic = (await call("POST", L, json={
            "name": "d", "objectTypeId": "0-1", "processingType": "DYNAMIC",
            "filterBranch": {"filterBranchType": "OR", "filters": [], "filterBranches": [
                {"filterBranchType": "AND", "filters": [
                    {"filterType": "PROPERTY", "property": "firstname",
                     "operation": {"operationType": "MULTISTRING", "operator": "IS_EQUAL_TO",
                                   "values": ["Ann"]}}],
                 "filterBranches": []}]}})).json()["list"]
        await call("PUT", f"{L}/{manual['listId']}/memberships/add", json=[ann])
        in_lists = await read("GET", f"/crm/v3/lists/records/0-1/{ann}/memberships")
        none = await read("GET", f"/crm/v3/lists/records/0-1/{bob}/memberships")
        missing = await read("GET", "/crm/v3/lists/records/0-1/999999/memberships")

        assert in_lists.status_code == 200
        assert {r["listId"] for r in in_lists.json()["results"]} == {
            manual["listId"], dynamic["listId"]}
        assert all(r["listVersion"] >= 1 for r in in_lists.json()["results"])
        assert none.json() == {"results": [], "total": 0}
        assert missing.status_code == 404

    async def main() -> None:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(
            transport=emulator.transport(), base_url="https://api.hubapi.com", headers=auth
        ) as plain, httpx.AsyncClient(  # the reads are checked against the lists spec
            transport=checked(emulator.transport()),
            base_url="https://api.hubapi.com",
            headers=auth,
        ) as client:
            await body(plain.request, client.request)

    asyncio.run(main())


@pytest.mark.parametrize("lag", [STRICT_SEARCH_INDEX_LAG, 0.0], ids=["strict", "lenient"])
def test_a_read_while_the_index_catches_up_loses_nothing_and_fails_nothing(
    lag: float, checked: Wrap
) -> None:
    """Edits made just before an incremental read (as a sync's apply, then the next run)
    enter the index while the read pages, at the positions of their old records: the total
    grows past what the pages served. That is not a broken paging: the read ends normally,
    and what it did not see, the next one reads."""
    clock = VirtualClock()
    emulator = HubSpotEmulator(clock=clock, search_delay_seconds=lag)
    ids = [emulator.seed_contact({"email": f"p{i:03d}@example.com"}) for i in range(500)]
    clock.advance(3600)
    connector = connector_on(emulator, checked)

    def page_takes_a_second(served: int) -> None:
        clock.advance(1.0)

    async def main() -> tuple[list[RemoteContact], list[RemoteContact]]:
        async with connector:
            _, cursor = await read_all(connector)
            clock.advance(3600)
            for contact_id in ids[:450]:  # the oldest records, edited just now: first by id
                emulator.modify_contact(contact_id, {"firstname": "Edited"})
                clock.advance(0.01)
            with between_pages(emulator, page_takes_a_second):
                first, cursor = await read_all(connector, cursor)
            clock.advance(30)
            second, _ = await read_all(connector, cursor)
            return first, second

    first, second = asyncio.run(main())

    edited = {c.email for c in first + second if c.fields.get("first_name") == "Edited"}
    assert edited == {f"p{i:03d}@example.com" for i in range(450)}


def test_an_edited_record_is_found_with_its_previous_values_until_indexed() -> None:
    """Search holds the version it indexed: an edit made now is not found by its new value,
    the record is still found by its old one, until the lag has passed."""
    clock = VirtualClock()
    emulator = HubSpotEmulator(clock=clock, search_delay_seconds=STRICT_SEARCH_INDEX_LAG)
    ann = emulator.seed_contact({"email": "ann@example.com", "firstname": "Ann"})
    clock.advance(60)
    emulator.modify_contact(ann, {"firstname": "Anna"})
    found: list[tuple[int, int, str | None]] = []

    def named(value: str) -> dict[str, Any]:
        return {"filterGroups": [{"filters": [
            {"propertyName": "firstname", "operator": "EQ", "value": value}]}],
            "properties": ["firstname"], "limit": 10}

    async def body(call: Call) -> None:
        for _ in range(2):
            old = (await call("POST", f"{C}/search", json=named("Ann"))).json()
            new = (await call("POST", f"{C}/search", json=named("Anna"))).json()
            shown = old["results"][0]["properties"]["firstname"] if old["results"] else None
            found.append((old["total"], new["total"], shown))
            clock.advance(STRICT_SEARCH_INDEX_LAG)

    call_on(emulator, body)

    assert found == [(1, 0, "Ann"), (0, 1, None)]
    assert emulator.unsearchable() == []


class _GrowingIndex(HubSpotEmulator):
    """The index catches up while a read pages: from the second page of a window on, one
    record the pages already passed has entered it (the total grows by one)."""

    async def route_search(self, request: Any) -> Any:
        answer = await super().route_search(request)
        if isinstance(answer, dict) and int(json.loads(await request.body()).get("after") or 0):
            answer["total"] += 1
        return answer


def test_a_total_that_grows_while_paging_is_not_a_broken_paging(checked: Wrap) -> None:
    """A window whose last page counts more records than its pages served, because the index
    added some behind them, ends normally (the next read takes them); only pages ending
    before the window's smallest total are a broken paging."""
    clock = VirtualClock()
    emulator = _GrowingIndex(clock=clock)
    for i in range(450):
        emulator.seed_contact({"email": f"g{i:03d}@example.com"})
    clock.advance(60)

    async def main() -> list[RemoteContact]:
        async with connector_on(emulator, checked) as connector:
            contacts, _ = await read_all(connector)
            return contacts

    assert len({c.email for c in asyncio.run(main())}) == 450


class _ShortPages(HubSpotEmulator):
    """Pages that end before their own total, on every page: a broken paging."""

    async def route_search(self, request: Any) -> Any:
        answer = await super().route_search(request)
        if isinstance(answer, dict):
            answer["total"] += 5
        return answer


def test_pages_ending_before_every_total_are_a_broken_paging(checked: Wrap) -> None:
    clock = VirtualClock()
    emulator = _ShortPages(clock=clock)
    for i in range(250):
        emulator.seed_contact({"email": f"s{i:03d}@example.com"})
    clock.advance(60)

    async def main() -> None:
        async with connector_on(emulator, checked) as connector:
            await read_all(connector)

    with pytest.raises(MalformedAnswer, match="the pages ended after 250 of total 255"):
        asyncio.run(main())
