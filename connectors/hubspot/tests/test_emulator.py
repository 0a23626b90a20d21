"""The HubSpot emulator behaves as the fact sheet says HubSpot does, for what the connector uses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from segsync_hubspot import HubSpotEmulator

from segsync.clock import VirtualClock

TOKEN = HubSpotEmulator.default_api_key
C = "/crm/objects/2026-03/contacts"
L = "/crm/lists/2026-03"
P = "/crm/properties/2026-03/contacts"
CP = "/communication-preferences/2026-03"

Call = Callable[..., Awaitable[httpx.Response]]


def run(emulator: HubSpotEmulator, body: Callable[[Call], Awaitable[None]]) -> None:
    async def main() -> None:
        async with httpx.AsyncClient(
            transport=emulator.transport(),
            base_url="http://127.0.0.1:9",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as client:

            async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
                return await client.request(method, path, **kwargs)

            await body(call)

    asyncio.run(main())


def emu(**kwargs: Any) -> HubSpotEmulator:
    return HubSpotEmulator(clock=kwargs.pop("clock", VirtualClock()), **kwargs)


def upsert(*emails: str, **props: str) -> dict[str, Any]:
    return {"inputs": [{"id": e, "idProperty": "email", "properties": dict(props)} for e in emails]}


def test_wrong_token_gets_hubspots_401_body() -> None:
    """A request without the app's token is refused with HubSpot's error body."""
    emulator = emu()

    async def body(call: Call) -> None:
        response = await call("GET", C, headers={"Authorization": "Bearer nope"})

        assert response.status_code == 401
        data = response.json()
        assert data["status"] == "error"
        assert data["category"] == "INVALID_AUTHENTICATION"
        assert {"message", "correlationId"} <= set(data)

    run(emulator, body)


def test_contacts_page_100_at_most_with_after_cursor() -> None:
    """GET contacts pages by record id with `after`; a limit over 100 is a 400."""
    emulator = emu()
    for i in range(250):
        emulator.seed_contact({"email": f"p{i}@example.com"})

    async def body(call: Call) -> None:
        sizes, after = [], None
        while True:
            params: dict[str, Any] = {"limit": 100, **({"after": after} if after else {})}
            page = (await call("GET", C, params=params)).json()
            sizes.append(len(page["results"]))
            after = page.get("paging", {}).get("next", {}).get("after")
            if not after:
                break
        too_many = await call("GET", C, params={"limit": 101})

        assert sizes == [100, 100, 50]
        assert too_many.status_code == 400

    run(emulator, body)


def test_batch_limits_upsert_flags_and_conflicts() -> None:
    """Batches take 100 inputs; upsert says `new`; a duplicate email on create is a 409."""
    emulator = emu()

    async def body(call: Call) -> None:
        over = await call(
            "POST", f"{C}/batch/upsert", json=upsert(*(f"x{i}@example.com" for i in range(101)))
        )
        first = await call("POST", f"{C}/batch/upsert", json=upsert("a@example.com", firstname="A"))
        again = await call("POST", f"{C}/batch/upsert", json=upsert("A@example.com", firstname="B"))
        duplicate = await call("POST", C, json={"properties": {"email": "a@example.com"}})

        assert over.status_code == 400
        assert over.json()["category"] == "VALIDATION_ERROR"
        assert first.json()["results"][0]["new"] is True
        assert again.json()["results"][0]["new"] is False
        assert again.json()["results"][0]["properties"]["firstname"] == "B"
        assert duplicate.status_code == 409
        assert duplicate.json()["category"] == "CONFLICT"
        assert "Existing ID: 101" in duplicate.json()["message"]

    run(emulator, body)


def test_upsert_207_names_each_refused_record() -> None:
    """An invalid record gets its own error in a 207; the others are written (the lenient
    reading: by default an email upsert is all-or-nothing, see test_strictness.py)."""
    emulator = emu(email_upsert_all_or_nothing=False)

    async def body(call: Call) -> None:
        payload = {
            "inputs": [
                {
                    "id": "ok@example.com",
                    "idProperty": "email",
                    "properties": {"firstname": "Ok"},
                    "objectWriteTraceId": "0",
                },
                {
                    "id": "bad@example.com",
                    "idProperty": "email",
                    "properties": {"hs_email_optout": "true"},
                    "objectWriteTraceId": "1",
                },
                {
                    "id": "odd@example.com",
                    "idProperty": "email",
                    "properties": {"no_such_property": "x"},
                    "objectWriteTraceId": "2",
                },
            ]
        }
        response = await call("POST", f"{C}/batch/upsert", json=payload)
        data = response.json()

        assert response.status_code == 207
        assert [r["objectWriteTraceId"] for r in data["results"]] == ["0"]
        assert data["numErrors"] == 2
        by_trace = {e["context"]["objectWriteTraceId"][0]: e for e in data["errors"]}
        assert "READ_ONLY_VALUE" in by_trace["1"]["message"]
        assert "PROPERTY_DOESNT_EXIST" in by_trace["2"]["message"]
        assert emulator.contact_by_email("bad@example.com") is None

    run(emulator, body)


def test_batch_read_missing_ids_is_207_and_create_without_trace_ids_fails_whole() -> None:
    """Batch read answers 207 for missing ids; batch create without trace ids is all or nothing."""
    emulator = emu()
    known = emulator.seed_contact({"email": "k@example.com"})

    async def body(call: Call) -> None:
        read = await call(
            "POST",
            f"{C}/batch/read",
            json={
                "inputs": [{"id": known}, {"id": "999"}],
                "properties": ["email"],
                "propertiesWithHistory": [],
            },
        )
        create = await call(
            "POST",
            f"{C}/batch/create",
            json={
                "inputs": [
                    {"properties": {"email": "new@example.com"}},
                    {"properties": {"email": "k@example.com"}},
                ]
            },
        )

        assert read.status_code == 207
        assert read.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"
        assert create.status_code == 409
        assert emulator.contact_by_email("new@example.com") is None

    run(emulator, body)


def _search(after: int = 0, limit: int = 200, groups: Any = None, sorts: Any = None) -> Any:
    return {
        "filterGroups": groups or [],
        "sorts": sorts or [],
        "properties": ["email"],
        "limit": limit,
        "after": str(after),
    }


def test_search_limits_and_the_10000_cap() -> None:
    """Search: 200 a page, 5 groups x 6 filters (18 in all), one sort, 400 past 10,000."""
    emulator = emu(enforce_rate_limits=False)
    emulator.seed_contact({"email": "s@example.com"})
    flt = {"propertyName": "email", "operator": "HAS_PROPERTY"}

    async def body(call: Call) -> None:
        async def status(payload: Any) -> int:
            return (await call("POST", f"{C}/search", json=payload)).status_code

        assert await status(_search()) == 200
        assert await status(_search(limit=201)) == 400
        assert await status(_search(after=9_800)) == 200
        assert await status(_search(after=9_801)) == 400
        assert await status(_search(groups=[{"filters": [flt]}] * 6)) == 400
        assert await status(_search(groups=[{"filters": [flt] * 7}])) == 400
        assert await status(_search(groups=[{"filters": [flt] * 6}] * 3)) == 200
        assert (
            await status(_search(groups=[{"filters": [flt] * 6}] * 3 + [{"filters": [flt]}])) == 400
        )
        assert await status(_search(sorts=["email", "createdate"])) == 400
        assert (
            await status(
                _search(
                    groups=[
                        {
                            "filters": [
                                {
                                    "propertyName": "email",
                                    "operator": "IN",
                                    "value": "s@example.com",
                                }
                            ]
                        }
                    ]
                )
            )
            == 400
        )

    run(emulator, body)


def test_search_filters_case_rules_and_total() -> None:
    """EQ on strings ignores case, IN needs lowercase values, ranges on dates use epoch ms."""
    emulator = emu(enforce_rate_limits=False)
    emulator.seed_contact({"email": "Mixed@Example.com", "firstname": "Zoë"})
    emulator.seed_contact({"email": "other@example.com", "firstname": "Ada"})
    assert isinstance(emulator.clock, VirtualClock)
    emulator.clock.advance(emulator.read_lag_seconds)  # until search finds them

    async def body(call: Call) -> None:
        async def emails(*filters: dict[str, Any]) -> list[str]:
            data = (
                await call("POST", f"{C}/search", json=_search(groups=[{"filters": list(filters)}]))
            ).json()
            return [r["properties"]["email"] for r in data["results"]]

        assert await emails({"propertyName": "firstname", "operator": "EQ", "value": "ZOË"}) == [
            "Mixed@Example.com"
        ]
        assert await emails({"propertyName": "firstname", "operator": "IN", "values": ["ada"]}) == [
            "other@example.com"
        ]
        assert (
            await emails({"propertyName": "firstname", "operator": "IN", "values": ["Ada"]}) == []
        )
        assert (
            len(await emails({"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}))
            == 2
        )

    run(emulator, body)


def test_search_is_limited_to_5_a_second_with_hubspots_body() -> None:
    """A sixth search in one second gets HubSpot's secondly 429, without rate headers."""
    clock = VirtualClock()
    emulator = emu(clock=clock)

    async def body(call: Call) -> None:
        statuses = [
            (await call("POST", f"{C}/search", json=_search())).status_code for _ in range(6)
        ]
        limited = await call("POST", f"{C}/search", json=_search())
        clock.advance(1.0)
        later = await call("POST", f"{C}/search", json=_search())

        assert statuses == [200] * 5 + [429]
        assert limited.json()["message"] == "You have reached your secondly limit."
        assert limited.json()["policyName"] == "SECONDLY"
        assert "x-hubspot-ratelimit-max" not in limited.headers
        assert later.status_code == 200

    run(emulator, body)


@pytest.mark.parametrize(("tier", "burst"), [("starter", 100), ("professional", 190)])
def test_ten_second_rolling_limit_by_tier(tier: str, burst: int) -> None:
    """The burst limit answers HubSpot's TEN_SECONDLY_ROLLING 429 with its headers."""
    clock = VirtualClock()
    emulator = emu(clock=clock, tier=tier)

    async def body(call: Call) -> None:
        ok = [await call("GET", C) for _ in range(burst)]
        limited = await call("GET", C)
        clock.advance(10.0)
        later = await call("GET", C)

        assert {r.status_code for r in ok} == {200}
        assert ok[0].headers["x-hubspot-ratelimit-max"] == str(burst)
        assert ok[0].headers["x-hubspot-ratelimit-interval-milliseconds"] == "10000"
        assert ok[-1].headers["x-hubspot-ratelimit-remaining"] == "0"
        assert limited.status_code == 429
        assert limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"
        assert limited.json()["errorType"] == "RATE_LIMIT"
        assert later.status_code == 200

    run(emulator, body)


def test_daily_limit() -> None:
    """Past the daily cap every call gets HubSpot's DAILY 429."""
    emulator = emu(daily_limit=3)

    async def body(call: Call) -> None:
        statuses = [(await call("GET", C)).status_code for _ in range(4)]
        limited = await call("GET", C)

        assert statuses == [200, 200, 200, 429]
        assert limited.json()["message"] == "You have reached your daily limit."

    run(emulator, body)


def test_checkbox_options_multi_values_and_read_only_properties() -> None:
    """Checkbox values are `;`-joined options (`;x` appends); unknown ones are INVALID_OPTION."""
    emulator = emu()

    async def body(call: Call) -> None:
        created = await call(
            "POST",
            P,
            json={
                "name": "segsync_tags",
                "label": "Tags",
                "type": "enumeration",
                "fieldType": "checkbox",
                "groupName": "contactinformation",
                "options": [
                    {"label": v, "value": v, "hidden": False, "displayOrder": i}
                    for i, v in enumerate(("a", "b", "c"))
                ],
            },
        )
        again = await call(
            "POST",
            P,
            json={
                "name": "segsync_tags",
                "label": "Tags",
                "type": "enumeration",
                "fieldType": "checkbox",
                "groupName": "contactinformation",
            },
        )
        mismatched = await call(
            "POST",
            P,
            json={
                "name": "score",
                "label": "Score",
                "type": "number",
                "fieldType": "text",
                "groupName": "contactinformation",
            },
        )
        await call("POST", f"{C}/batch/upsert", json=upsert("t@example.com", segsync_tags="a;b"))
        await call("POST", f"{C}/batch/upsert", json=upsert("t@example.com", segsync_tags=";c"))
        appended = emulator.contact_by_email("t@example.com")
        bad = await call(
            "POST", f"{C}/batch/upsert", json=upsert("t@example.com", segsync_tags="a;zzz")
        )
        cleared = await call(
            "POST", f"{C}/batch/upsert", json=upsert("t@example.com", segsync_tags="")
        )

        assert created.status_code == 201
        assert again.status_code == 409
        assert mismatched.status_code == 400
        assert appended is not None
        assert appended["segsync_tags"] == "a;b;c"
        assert bad.status_code == 400  # email upserts are all-or-nothing
        assert "INVALID_OPTION" in bad.json()["errors"][0]["message"]
        assert "zzz was not one of the allowed options" in bad.json()["errors"][0]["message"]
        assert cleared.status_code == 200
        assert "segsync_tags" not in (emulator.contact_by_email("t@example.com") or {})

    run(emulator, body)


BRANCH = {
    "filterBranchType": "OR",
    "filters": [],
    "filterBranches": [
        {
            "filterBranchType": "AND",
            "filterBranches": [],
            "filters": [
                {
                    "filterType": "PROPERTY",
                    "property": "firstname",
                    "operation": {
                        "operationType": "MULTISTRING",
                        "operator": "IS_EQUAL_TO",
                        "values": ["Ada"],
                    },
                }
            ],
        }
    ],
}


def test_list_filter_branch_validation() -> None:
    """Lists refuse filter branches HubSpot refuses, and MANUAL lists with filters."""
    emulator = emu()

    def create(name: str, kind: str, branch: Any) -> dict[str, Any]:
        body = {"name": name, "objectTypeId": "0-1", "processingType": kind}
        return {**body, "filterBranch": branch} if branch is not None else body

    and_root = {**BRANCH, "filterBranchType": "AND"}
    wrong_op = {
        **BRANCH,
        "filterBranches": [
            {
                **BRANCH["filterBranches"][0],
                "filters": [
                    {
                        "filterType": "PROPERTY",
                        "property": "firstname",
                        "operation": {
                            "operationType": "NUMBER",
                            "operator": "IS_EQUAL_TO",
                            "value": 1,
                        },
                    }
                ],
            }
        ],
    }

    async def body(call: Call) -> None:
        statuses = [
            (await call("POST", L, json=create(n, k, b))).status_code
            for n, k, b in (
                ("ok", "DYNAMIC", BRANCH),
                ("and-root", "DYNAMIC", and_root),
                ("wrong-op", "DYNAMIC", wrong_op),
                ("manual", "MANUAL", BRANCH),
                ("ok", "MANUAL", None),
                ("no-filter", "DYNAMIC", None),
            )
        ]

        assert statuses == [200, 400, 400, 400, 400, 400]

    run(emulator, body)


def test_dynamic_lists_evaluate_and_refuse_membership_writes() -> None:
    """DYNAMIC lists follow their filters (and filter updates); only MANUAL take writes."""
    emulator = emu()
    ada = emulator.seed_contact({"email": "ada@example.com", "firstname": "ada"})
    bob = emulator.seed_contact({"email": "bob@example.com", "firstname": "Bob"})
    none = emulator.seed_contact({"email": "none@example.com"})

    async def body(call: Call) -> None:
        dynamic = (
            await call(
                "POST",
                L,
                json={
                    "name": "d",
                    "objectTypeId": "0-1",
                    "processingType": "DYNAMIC",
                    "filterBranch": BRANCH,
                },
            )
        ).json()["list"]
        manual = (
            await call(
                "POST", L, json={"name": "m", "objectTypeId": "0-1", "processingType": "MANUAL"}
            )
        ).json()["list"]
        refused = await call("PUT", f"{L}/{dynamic['listId']}/memberships/add", json=[bob])
        added = await call("PUT", f"{L}/{manual['listId']}/memberships/add", json=[bob, "999"])
        first = emulator.list_members(dynamic["listId"])
        negated = {
            **BRANCH,
            "filterBranches": [
                {
                    **BRANCH["filterBranches"][0],
                    "filters": [
                        {
                            "filterType": "PROPERTY",
                            "property": "firstname",
                            "operation": {
                                "operationType": "MULTISTRING",
                                "operator": "IS_NOT_EQUAL_TO",
                                "values": ["Ada"],
                                "includeObjectsWithNoValueSet": True,
                            },
                        }
                    ],
                }
            ],
        }
        updated = await call(
            "PUT", f"{L}/{dynamic['listId']}/update-list-filters", json={"filterBranch": negated}
        )
        second = emulator.list_members(dynamic["listId"])
        fetched = (
            await call("GET", f"{L}/{dynamic['listId']}", params={"includeFilters": "true"})
        ).json()["list"]

        assert refused.status_code == 400
        assert added.json() == {
            "recordIdsMissing": ["999"],
            "recordIdsRemoved": [],
            "recordsIdsAdded": [bob],
        }
        assert first == {ada}
        assert updated.json()["updatedList"]["listVersion"] == 2
        assert second == {bob, none}
        assert fetched["filterBranch"]["filterBranchOperator"] == "OR"

    run(emulator, body)


def test_memberships_read_250_a_page() -> None:
    """Memberships page at 250 at most, ordered by record id."""
    emulator = emu()
    ids = [emulator.seed_contact({"email": f"m{i}@example.com"}) for i in range(260)]

    async def body(call: Call) -> None:
        manual = (
            await call(
                "POST", L, json={"name": "m", "objectTypeId": "0-1", "processingType": "MANUAL"}
            )
        ).json()["list"]
        await call("PUT", f"{L}/{manual['listId']}/memberships/add", json=ids)
        first = (
            await call("GET", f"{L}/{manual['listId']}/memberships", params={"limit": 250})
        ).json()
        rest = (
            await call(
                "GET",
                f"{L}/{manual['listId']}/memberships",
                params={"limit": 250, "after": first["paging"]["next"]["after"]},
            )
        ).json()
        too_many = await call("GET", f"{L}/{manual['listId']}/memberships", params={"limit": 251})

        assert len(first["results"]) == 250
        assert [r["recordId"] for r in first["results"] + rest["results"]] == ids
        assert too_many.status_code == 400

    run(emulator, body)


def test_v3_refuses_resubscribing_an_opted_out_address_v4_allows_it() -> None:
    """v3 subscribe refuses an opted-out address; the dated (v4) API re-subscribes it."""
    emulator = emu()
    emulator.seed_contact({"email": "o@example.com"})

    async def body(call: Call) -> None:
        out = await call(
            "POST",
            "/communication-preferences/v3/unsubscribe",
            json={"emailAddress": "o@example.com", "subscriptionId": "101"},
        )
        props = emulator.contact_by_email("o@example.com") or {}
        v3 = await call(
            "POST",
            "/communication-preferences/v3/subscribe",
            json={"emailAddress": "o@example.com", "subscriptionId": "101"},
        )
        v4 = await call(
            "POST",
            f"{CP}/statuses/o@example.com",
            json={
                "channel": "EMAIL",
                "subscriptionId": 101,
                "statusState": "SUBSCRIBED",
                "legalBasis": "CONSENT_WITH_NOTICE",
                "legalBasisExplanation": "asked",
            },
        )

        assert out.status_code == 200
        assert props["hs_email_optout_101"] == "true"
        assert v3.status_code == 400
        assert v4.json()["results"][0]["setStatusSuccessReason"] == "RESUBSCRIBE_OCCURRED"
        assert v4.json()["results"][0]["legalBasis"] == "CONSENT_WITH_NOTICE"

    run(emulator, body)


def test_unsubscribe_all_sets_hs_email_optout() -> None:
    """Opting out of all email shows on the contact's read-only hs_email_optout."""
    emulator = emu()
    emulator.seed_contact({"email": "all@example.com"})

    async def body(call: Call) -> None:
        await call(
            "POST", f"{CP}/statuses/all@example.com/unsubscribe-all", params={"channel": "EMAIL"}
        )
        status = (
            await call("GET", f"{CP}/statuses/all@example.com", params={"channel": "EMAIL"})
        ).json()

        assert (emulator.contact_by_email("all@example.com") or {})["hs_email_optout"] == "true"
        assert {s["status"] for s in status["results"]} == {"UNSUBSCRIBED"}

    run(emulator, body)


def test_api_version_is_configuration() -> None:
    """Paths carry the configured versions; others are HubSpot 404s."""
    emulator = emu(versions=("2026-09",))

    async def body(call: Call) -> None:
        dated = await call("GET", "/crm/objects/2026-09/contacts")
        other = await call("GET", "/crm/objects/2026-03/contacts")

        assert dated.status_code == 200
        assert other.status_code == 404
        assert other.json()["status"] == "error"

    run(emulator, body)


def test_additional_emails_are_unique_like_the_primary_one() -> None:
    """An address among a contact's hs_additional_emails finds it and cannot be reused."""
    emulator = emu()
    owner = emulator.seed_contact(
        {"email": "main@example.com", "hs_additional_emails": "Old@Example.com;other@example.com"}
    )

    async def body(call: Call) -> None:
        found = await call("GET", f"{C}/old@example.com", params={"idProperty": "email"})
        taken = await call("POST", C, json={"properties": {"email": "other@example.com"}})

        assert found.json()["id"] == owner
        assert taken.status_code == 409

    run(emulator, body)


def test_one_email_twice_in_a_batch_is_refused() -> None:
    """A batch upsert naming the same email twice is a 400, and nothing is written."""
    emulator = emu()

    async def body(call: Call) -> None:
        response = await call(
            "POST", f"{C}/batch/upsert", json=upsert("d@example.com", "D@example.com")
        )

        assert response.status_code == 400
        assert "Duplicate IDs" in response.json()["message"]
        assert emulator.contact_by_email("d@example.com") is None

    run(emulator, body)
