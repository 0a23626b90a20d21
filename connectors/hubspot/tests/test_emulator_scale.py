"""The HubSpot emulator at scale: indexed search and journaled batches behave as brute force.

Searches whose filter groups all bound `createdate` or `lastmodifieddate` evaluate only the
contacts the sorted indexes place in range; batch upserts and creates journal the contacts they
touch instead of copying every contact. Both must answer exactly as a full scan and a full
copy would, and do work in proportion to the request, not to the number of contacts.
"""

from __future__ import annotations

import asyncio
import copy
import random
import types
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import pytest
import segsync_hubspot.emulator.records as records_module
from segsync_hubspot import HubSpotEmulator
from segsync_hubspot.filters import to_epoch_ms

from segsync.clock import VirtualClock

AUTH = {"authorization": f"Bearer {HubSpotEmulator.default_api_key}"}
SEARCH = "/crm/v3/objects/contacts/search"
UPSERT = "/crm/v3/objects/contacts/batch/upsert"
CREATE = "/crm/v3/objects/contacts/batch/create"


class BruteForceEmulator(HubSpotEmulator):
    """The reference: every search evaluates its filters on every contact."""

    def _search_candidates(self, groups: Sequence[Mapping[str, Any]]) -> list[Any]:
        return list(self.contacts.values())


def post_all(
    emulator: HubSpotEmulator, requests: Sequence[tuple[str, dict[str, Any]]]
) -> list[tuple[int, Any]]:
    """POST each (path, body) in order; the (status, JSON body) answers."""

    async def main() -> list[tuple[int, Any]]:
        async with httpx.AsyncClient(
            transport=emulator.transport(), base_url="https://api.hubapi.com", headers=AUTH
        ) as client:
            answers = []
            for path, body in requests:
                response = await client.post(path, json=body)
                answers.append((response.status_code, response.json()))
            return answers

    return asyncio.run(main())


def ms(emulator: HubSpotEmulator, seconds_ago: float) -> str:
    return str(round(emulator.clock.now().timestamp() * 1000 - seconds_ago * 1000))


def populate(emulator: HubSpotEmulator, clock: VirtualClock, seed: int) -> None:
    """The same seeded history of creates, edits, renames, archives and batches."""
    rng = random.Random(seed)
    ids: list[str] = []
    for i in range(240):
        ids.append(emulator.seed_contact({"email": f"c{i}@example.com", "firstname": f"F{i % 7}"}))
        clock.advance(rng.choice([0, 0, 1, 2.5, 30]))
    for step in range(160):
        target = rng.choice(ids)
        roll = rng.random()
        if roll < 0.5:
            emulator.modify_contact(target, {"firstname": f"M{step % 5}"})
        elif roll < 0.6:
            emulator.modify_contact(target, {"email": f"renamed{step}@example.com"})
        elif roll < 0.7:
            emulator.contacts[target].archived = True
        else:
            emulator.modify_contact(target, {"lastname": f"L{step}", "firstname": ""})
        clock.advance(rng.choice([0, 1, 7]))
    batches: list[tuple[str, dict[str, Any]]] = []
    for k in range(6):
        inputs = [
            {
                "id": f"c{rng.randrange(300)}@example.com",
                "idProperty": "email",
                "properties": {"firstname": f"B{k}", "lastname": "x" * j},
            }
            for j in range(12)
        ]
        unique = {i["id"]: i for i in inputs}
        batches.append((UPSERT, {"inputs": list(unique.values())}))
    batches.append((UPSERT, {"inputs": [{"id": "bad", "idProperty": "email", "properties": {}}]}))
    for path, body in batches:
        post_all(emulator, [(path, body)])
        clock.advance(3)
    clock.advance(60)


def search_bodies(emulator: HubSpotEmulator) -> list[dict[str, Any]]:
    """Windowed searches of every range operator, with the paths that fall back to a scan."""

    def flt(name: str, operator: str, value: str, high: str | None = None) -> dict[str, Any]:
        out = {"propertyName": name, "operator": operator, "value": value}
        if high is not None:
            out["highValue"] = high
        return out

    lmd, cd = "lastmodifieddate", "createdate"
    a, b, c = ms(emulator, 500), ms(emulator, 300), ms(emulator, 120)
    groups: list[list[dict[str, Any]]] = [
        [{"filters": [flt(lmd, "GTE", a), flt(lmd, "LT", b)]}],
        [{"filters": [flt(lmd, "GT", a), flt(lmd, "LTE", b)]}],
        [{"filters": [flt(lmd, "BETWEEN", a, c)]}],
        [{"filters": [flt(lmd, "BETWEEN", a)]}],  # no highValue: accepts nothing
        [{"filters": [flt(lmd, "GTE", "not a date")]}],
        [{"filters": [flt(lmd, "EQ", b)]}],
        [{"filters": [flt(lmd, "GTE", a)]}],
        [{"filters": [flt(lmd, "LT", c), flt("firstname", "EQ", "m1")]}],
        [{"filters": [flt(cd, "GTE", a)]}, {"filters": [flt(lmd, "LT", a)]}],
        [
            {"filters": [flt(lmd, "GTE", a), flt(lmd, "LT", b)]},
            {"filters": [flt(cd, "GTE", c), flt(lmd, "LT", ms(emulator, 100))]},
        ],
        [{"filters": [flt(cd, "LT", b), flt(lmd, "GTE", a), flt(lmd, "LT", c)]}],
        [{"filters": [flt(lmd, "GTE", a)]}, {"filters": [flt("firstname", "EQ", "f3")]}],
        [{"filters": [flt(lmd, "GTE", "2026-01-01"), flt(lmd, "LT", "2027-01-01")]}],
        [],
    ]
    # bounds one millisecond either side of stored values
    stamps = sorted({to_epoch_ms(r.properties[lmd]) or 0 for r in emulator.contacts.values()})
    for stamp in stamps[len(stamps) // 3 :: len(stamps) // 4]:
        below, at, above = str(stamp - 1), str(stamp), str(stamp + 1)
        groups += [
            [{"filters": [flt(lmd, "GT", below), flt(lmd, "LT", above)]}],
            [{"filters": [flt(lmd, "GTE", at), flt(lmd, "LTE", at)]}],
            [{"filters": [flt(lmd, "GT", at)]}, {"filters": [flt(lmd, "LT", at)]}],
            [{"filters": [flt(lmd, "BETWEEN", at, above)]}],
            [{"filters": [flt(lmd, "BETWEEN", below, at)]}],
            [
                {"filters": [flt(lmd, "EQ", at)]},
                {"filters": [flt(lmd, "GTE", a), flt(lmd, "LT", b)]},
            ],
        ]
    sorts: list[list[Any]] = [
        [],
        [{"propertyName": lmd, "direction": "ASCENDING"}],
        [{"propertyName": lmd, "direction": "DESCENDING"}],
        ["-createdate"],
    ]
    bodies = []
    for group in groups:
        for sort in sorts:
            for after in (0, 7):
                bodies.append(
                    {
                        "filterGroups": group,
                        "sorts": sort,
                        "limit": 25,
                        "after": str(after),
                        "properties": ["email", "firstname", lmd, cd],
                    }
                )
    return bodies


def state(emulator: HubSpotEmulator) -> dict[str, Any]:
    """Everything a batch may change, as plain values."""
    return {
        "contacts": {
            i: (dict(r.properties), copy.deepcopy(r.history), r.updated_at, r.archived)
            for i, r in emulator.contacts.items()
        },
        "by_email": dict(emulator._by_email),
        "next_id": emulator._next_id,
        "sorted": {n: list(v) for n, v in emulator._sorted.items()},
    }


def rebuilt_index(emulator: HubSpotEmulator, name: str) -> list[tuple[int, int]]:
    entries = []
    for contact_id, record in emulator.contacts.items():
        value = to_epoch_ms(record.properties[name]) if record.properties.get(name) else None
        if value is not None:
            entries.append((value, int(contact_id)))
    return sorted(entries)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.slow
def test_indexed_searches_answer_as_brute_force(seed: int) -> None:
    fast_clock, slow_clock = VirtualClock(), VirtualClock()
    fast = HubSpotEmulator(clock=fast_clock, enforce_rate_limits=False)
    slow = BruteForceEmulator(clock=slow_clock, enforce_rate_limits=False)
    populate(fast, fast_clock, seed)
    populate(slow, slow_clock, seed)
    assert state(fast) == state(slow)
    bodies = search_bodies(fast)
    examined = []
    answers_fast = []
    for body in bodies:
        answers_fast += post_all(fast, [(SEARCH, body)])
        examined.append(fast.last_search_examined)
    answers_slow = post_all(slow, [(SEARCH, body) for body in bodies])
    assert answers_fast == answers_slow
    assert all(status == 200 for status, _ in answers_fast)
    totals = [answer["total"] for _, answer in answers_fast]
    assert sum(1 for t in totals if t) > len(totals) / 2  # most windows hold something
    assert max(totals) > 25
    assert 0 in totals  # and the unsatisfiable ones nothing
    # bounded windows examine fewer contacts than the emulator holds; unbounded ones all
    everyone = len(fast.contacts)
    assert examined[0] < everyone / 2
    assert examined[13 * 8] == everyone  # no filter groups: every contact


@pytest.mark.parametrize("seed", [3, 4])
def test_indexes_stay_in_line_with_every_write(seed: int) -> None:
    clock = VirtualClock()
    emulator = HubSpotEmulator(clock=clock, enforce_rate_limits=False)
    populate(emulator, clock, seed)
    for name in ("createdate", "lastmodifieddate"):
        assert emulator._sorted[name] == rebuilt_index(emulator, name)
    for contact_id, record in emulator.contacts.items():
        if not record.archived:
            assert emulator._by_email[record.properties["email"].lower()] == contact_id
    for key, owner in emulator._by_email.items():
        assert emulator.contacts[owner].properties.get("email", "").lower() == key


def test_all_or_nothing_upsert_restores_contacts_emails_ids_and_indexes() -> None:
    clock = VirtualClock()
    emulator = HubSpotEmulator(
        clock=clock, enforce_rate_limits=False, email_upsert_all_or_nothing=True
    )
    for i in range(20):
        emulator.seed_contact({"email": f"c{i}@example.com", "firstname": "F"})
        clock.advance(1)
    before = state(emulator)
    inputs = [
        {"id": "c1@example.com", "idProperty": "email", "properties": {"firstname": "New"}},
        {"id": "n1@example.com", "idProperty": "email", "properties": {"firstname": "N"}},
        {"id": "c2@example.com", "idProperty": "email", "properties": {"email": "r@example.com"}},
        {"id": "c3@example.com", "idProperty": "email", "properties": {"hs_language": "xx"}},
    ]
    clock.advance(5)
    [(status, body)] = post_all(emulator, [(UPSERT, {"inputs": inputs})])
    assert status == 400, body
    assert state(emulator) == before
    assert emulator.contact_by_email("n1@example.com") is None
    assert emulator.contact_by_email("r@example.com") is None
    assert (emulator.contact_by_email("c2@example.com") or {})["firstname"] == "F"


def test_failed_batch_create_restores_everything() -> None:
    clock = VirtualClock()
    emulator = HubSpotEmulator(clock=clock, enforce_rate_limits=False)
    emulator.seed_contact({"email": "old@example.com"})
    before = state(emulator)
    inputs = [
        {"properties": {"email": "a@example.com"}},
        {"properties": {"email": "b@example.com", "hs_language": "xx"}},
    ]
    [(status, _)] = post_all(emulator, [(CREATE, {"inputs": inputs})])
    assert status == 400
    assert state(emulator) == before


@pytest.mark.slow
def test_100000_contacts_windowed_search_and_upsert_do_work_in_proportion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = VirtualClock()
    emulator = HubSpotEmulator(clock=clock, enforce_rate_limits=False)
    count = 100_000
    for i in range(count):
        emulator.seed_contact({"email": f"c{i}@example.com"})
        if i % 10 == 9:
            clock.advance(1)  # 10 contacts a second
    clock.advance(60)
    copied: list[int] = []

    def counting_deepcopy(value: Any) -> Any:
        copied.append(len(value) if isinstance(value, dict) else 1)
        return copy.deepcopy(value)

    monkeypatch.setattr(records_module, "copy", types.SimpleNamespace(deepcopy=counting_deepcopy))
    # a window of 500 s holds 5,000 contacts
    low, high = ms(emulator, 60 + 3000), ms(emulator, 60 + 2500)
    window = [
        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": low},
        {"propertyName": "lastmodifieddate", "operator": "LT", "value": high},
    ]
    inputs = [
        {
            "id": f"c{i * 997}@example.com" if i % 2 else f"new{i}@example.com",
            "idProperty": "email",
            "properties": {"firstname": "U"},
        }
        for i in range(100)
    ]
    searches = [
        (
            SEARCH,
            {
                "filterGroups": [{"filters": window}],
                "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                "limit": 200,
                "after": "4800",
            },
        ),
        (UPSERT, {"inputs": inputs}),
    ]
    (search_status, page), (upsert_status, upserted) = post_all(emulator, searches)
    assert search_status == 200
    assert page["total"] == 5000
    assert len(page["results"]) == 200
    assert "paging" not in page
    assert emulator.last_search_examined == 5000
    stamps = [r["properties"]["lastmodifieddate"] for r in page["results"]]
    assert stamps == sorted(stamps)
    assert upsert_status == 200
    assert sorted(r["new"] for r in upserted["results"]) == [False] * 50 + [True] * 50
    assert sum(copied) <= 100  # the contacts the batch touched, not all 100,000
    assert len(emulator.contacts) == count + 50
    assert (emulator.contact_by_email("c997@example.com") or {})["firstname"] == "U"
